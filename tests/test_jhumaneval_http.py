"""DeepL and OpenAI-compatible backends against real HTTP servers on 127.0.0.1.

Each server speaks the API's wire format (paths, auth header, JSON shapes, 429 with
Retry-After) and "translates" deterministically by tagging the text, so the tests
check the plumbing: batching, retries, errors, and the on-disk cache.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cltrlib.data.problems import read_jsonl
from cltrlib.jhumaneval.backends import DeepLTranslator, OpenAIChatTranslator, OpenAIRepairer, translate_texts
from cltrlib.jhumaneval.build import build_jhumaneval
from cltrlib.jhumaneval.cache import TranslationCache
from cltrlib.jhumaneval.http import RetryPolicy, TranslationError
from cltrlib.jhumaneval.segment import segment_prompt

FAST = RetryPolicy(max_retries=3, backoff=0.05, max_wait=5.0, timeout=10.0)


def fake_ja(text: str) -> str:
    return f"【訳】{text}"


class _Server:
    """A ThreadingHTTPServer on an ephemeral loopback port; ``script`` queues special answers."""

    def __init__(self, handler_cls):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict, str]] = []  # (status, headers, body) served before normal answers
        outer = self

        class Handler(handler_cls):
            server_state = outer

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _BaseHandler(BaseHTTPRequestHandler):
    server_state: _Server
    path_expected = ""

    def _send(self, status: int, body: str, headers: dict | None = None):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        st = self.server_state
        st.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "json": payload,
                            "t": time.monotonic()})
        if self.path != self.path_expected:
            return self._send(404, json.dumps({"message": f"no route {self.path}"}))
        if st.script:
            status, headers, body = st.script.pop(0)
            return self._send(status, body, headers)
        self.answer(payload)


class DeepLHandler(_BaseHandler):
    """DeepL API v2: POST /v2/translate, 'Authorization: DeepL-Auth-Key KEY', max 50 texts."""

    path_expected = "/v2/translate"

    def answer(self, payload):
        if self.headers.get("Authorization") != "DeepL-Auth-Key test-key:fx":
            return self._send(403, json.dumps({"message": "Wrong endpoint or key"}))
        texts = payload.get("text")
        if not isinstance(texts, list) or len(texts) > 50 or payload.get("target_lang") != "JA":
            return self._send(400, json.dumps({"message": "Bad request"}))
        body = {"translations": [{"detected_source_language": "EN", "text": fake_ja(t)} for t in texts]}
        self._send(200, json.dumps(body, ensure_ascii=False))


class ChatHandler(_BaseHandler):
    """OpenAI chat completions: POST /v1/chat/completions; the user message is a JSON array."""

    path_expected = "/v1/chat/completions"

    def answer(self, payload):
        if self.headers.get("Authorization") != "Bearer sk-test":
            return self._send(401, json.dumps({"error": {"message": "Incorrect API key"}}))
        items = json.loads(payload["messages"][-1]["content"])
        if items and isinstance(items[0], dict):  # repair pass: fix the draft
            out = [it["draft"].replace("型", "Kata") for it in items]
        else:
            out = [fake_ja(t) for t in items]
        content = "```json\n" + json.dumps(out, ensure_ascii=False) + "\n```"
        body = {"id": "chatcmpl-1", "object": "chat.completion", "model": payload["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}]}
        self._send(200, json.dumps(body, ensure_ascii=False))


@pytest.fixture
def deepl_server():
    srv = _Server(DeepLHandler)
    yield srv
    srv.close()


@pytest.fixture
def chat_server():
    srv = _Server(ChatHandler)
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path):
    return TranslationCache(tmp_path / "cache.sqlite")


TEXTS = [f"Return the sum of the first {n} numbers." for n in range(120)]


def test_deepl_batches_caches_and_rebuild_costs_nothing(deepl_server, cache):
    tr = DeepLTranslator("test-key:fx", base_url=deepl_server.url, policy=FAST)
    out = translate_texts(tr, TEXTS + TEXTS[:5], cache=cache, progress=False)
    assert out == [fake_ja(t) for t in TEXTS + TEXTS[:5]]
    sizes = [len(r["json"]["text"]) for r in deepl_server.requests]
    assert sizes == [50, 50, 20]  # batched at DeepL's limit, duplicates sent once
    assert all(r["json"]["source_lang"] == "EN" for r in deepl_server.requests)
    assert cache.count(tr.name) == 120
    n = len(deepl_server.requests)
    assert translate_texts(tr, TEXTS, cache=cache, progress=False) == [fake_ja(t) for t in TEXTS]
    assert len(deepl_server.requests) == n  # everything came from the cache


def test_deepl_429_retry_after_then_success(deepl_server, cache):
    deepl_server.script.append((429, {"Retry-After": "1"}, json.dumps({"message": "Too many requests"})))
    tr = DeepLTranslator("test-key:fx", base_url=deepl_server.url, policy=FAST)
    out = translate_texts(tr, TEXTS[:3], cache=cache, progress=False)
    assert out == [fake_ja(t) for t in TEXTS[:3]]
    first, second = deepl_server.requests
    assert second["t"] - first["t"] >= 0.95  # Retry-After honoured, not the 0.05 s backoff


def test_deepl_malformed_response_keeps_cache(deepl_server, cache):
    tr = DeepLTranslator("test-key:fx", base_url=deepl_server.url, policy=FAST)
    translate_texts(tr, TEXTS[:50], cache=cache, progress=False)
    deepl_server.script.append((200, {}, json.dumps({"translations": [{"detected_source_language": "EN"}]})))
    with pytest.raises(TranslationError, match=r"DeepL response from .* malformed"):
        translate_texts(tr, TEXTS[:60], cache=cache, progress=False)
    assert cache.count(tr.name) == 50  # what was cached is still there, nothing of the bad batch
    deepl_server.script.append((200, {}, "<html>gateway</html>"))
    with pytest.raises(TranslationError, match="not JSON"):
        translate_texts(tr, TEXTS[50:60], cache=cache, progress=False)
    assert cache.count(tr.name) == 50


def test_deepl_bad_key_is_not_retried(deepl_server, cache):
    tr = DeepLTranslator("wrong", base_url=deepl_server.url, policy=FAST)
    with pytest.raises(TranslationError, match="HTTP 403"):
        translate_texts(tr, TEXTS[:2], cache=cache, progress=False)
    assert len(deepl_server.requests) == 1


def test_deepl_gives_up_after_retries(deepl_server, cache):
    for _ in range(4):
        deepl_server.script.append((503, {}, json.dumps({"message": "busy"})))
    tr = DeepLTranslator("test-key:fx", base_url=deepl_server.url, policy=FAST)
    with pytest.raises(TranslationError, match="after 4 attempts; last error: HTTP 503"):
        translate_texts(tr, TEXTS[:2], cache=cache, progress=False)


def test_deepl_needs_a_key(monkeypatch):
    monkeypatch.delenv("DEEPL_AUTH_KEY", raising=False)
    with pytest.raises(TranslationError, match="DEEPL_AUTH_KEY"):
        DeepLTranslator()


def test_openai_chat_batches_retries_and_caches(chat_server, cache):
    chat_server.script.append((429, {"Retry-After": "1"}, json.dumps({"error": {"message": "Rate limit"}})))
    tr = OpenAIChatTranslator("tiny-mt", base_url=chat_server.url + "/v1", api_key="sk-test", policy=FAST,
                              glossary_lines=["- Kata → Kata"])
    out = translate_texts(tr, TEXTS[:45], cache=cache, progress=False)
    assert out == [fake_ja(t) for t in TEXTS[:45]]
    reqs = chat_server.requests
    assert reqs[1]["t"] - reqs[0]["t"] >= 0.95
    assert [len(json.loads(r["json"]["messages"][-1]["content"])) for r in reqs[1:]] == [20, 20, 5]
    assert "Kata → Kata" in reqs[1]["json"]["messages"][0]["content"]
    assert reqs[1]["json"]["model"] == "tiny-mt" and reqs[1]["json"]["temperature"] == 0.0
    n = len(reqs)
    translate_texts(tr, TEXTS[:45], cache=cache, progress=False)
    assert len(chat_server.requests) == n


def test_openai_malformed_answers_are_clear_errors(chat_server, cache):
    tr = OpenAIChatTranslator("tiny-mt", base_url=chat_server.url + "/v1", api_key="sk-test", policy=FAST)
    translate_texts(tr, TEXTS[:3], cache=cache, progress=False)
    chat_server.script.append((200, {}, json.dumps({"choices": []})))
    with pytest.raises(TranslationError, match=r"malformed response, no choices\[0\] text"):
        translate_texts(tr, TEXTS[3:6], cache=cache, progress=False)
    wrong_len = {"choices": [{"message": {"role": "assistant", "content": json.dumps(["only one"])}}]}
    chat_server.script.append((200, {}, json.dumps(wrong_len)))
    with pytest.raises(TranslationError, match="expected a JSON array of 3 strings"):
        translate_texts(tr, TEXTS[3:6], cache=cache, progress=False)
    assert cache.count(tr.name) == 3


def test_build_with_openai_backend_and_repair(chat_server, tmp_path, cache):
    tr = OpenAIChatTranslator("tiny-mt", base_url=chat_server.url + "/v1", api_key="sk-test", policy=FAST)
    rep = OpenAIRepairer("tiny-mt", base_url=chat_server.url + "/v1", api_key="sk-test", policy=FAST)
    out = tmp_path / "built.jsonl"
    report = build_jhumaneval(tr, out, cache=cache, repairer=rep, limit=3, progress=False)
    rows = read_jsonl(out)
    assert report.n_tasks == 3 and report.n_parse_ok == 3 and report.n_translated == report.n_text_segments
    from cltrlib.data import load_humaneval

    for row, prob in zip(rows, load_humaneval()[:3], strict=True):
        assert row["prompt_en"] == prob.prompt and row["canonical_solution"] == prob.canonical_solution
        sp = segment_prompt(prob.prompt)
        for _, seg in sp.text_segments():
            assert "【訳】" + seg.source.split()[0] in row["prompt"]
        assert sp.example_lines() == segment_prompt(row["prompt"], sp.functions).example_lines()
    n = len(chat_server.requests)
    build_jhumaneval(tr, tmp_path / "again.jsonl", cache=cache, repairer=rep, limit=3, progress=False)
    assert len(chat_server.requests) == n  # a rebuild costs nothing
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()


def test_cli_build_with_deepl_and_openai_servers(deepl_server, chat_server, tmp_path, capsys):
    from cltrlib.__main__ import main

    cache = str(tmp_path / "cli-cache.sqlite")
    out = tmp_path / "deepl.jsonl"
    rc = main(["jhumaneval", "build", "--backend", "deepl", "--deepl-key", "test-key:fx", "--base-url",
               deepl_server.url, "--limit", "2", "--out", str(out), "--cache", cache, "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_tasks"] == 2 and report["n_parse_ok"] == 2 and report["backend"] == "deepl"
    assert "【訳】" in read_jsonl(out)[0]["prompt"]
    rc = main(["jhumaneval", "build", "--backend", "openai", "--model", "tiny-mt", "--api-key", "sk-test",
               "--base-url", chat_server.url + "/v1", "--limit", "2", "--out", str(tmp_path / "oa.jsonl"),
               "--cache", cache, "--quiet"])
    assert rc == 0
    capsys.readouterr()
    chat_server.script.append((200, {}, json.dumps({"choices": [{"message": {"content": "not json"}}]})))
    rc = main(["jhumaneval", "build", "--backend", "openai", "--model", "other-model", "--api-key", "sk-test",
               "--base-url", chat_server.url + "/v1", "--limit", "1", "--out", str(tmp_path / "bad.jsonl"),
               "--cache", cache, "--quiet", "--max-retries", "0"])
    assert rc == 2 and "not a JSON array" in capsys.readouterr().err
    assert not (tmp_path / "bad.jsonl").exists()


def test_repair_rounds_with_a_translator_that_cannot_take_a_finding_fail_clearly(deepl_server, cache, tmp_path):
    """DeepL has no prompt to put a validator finding in: asking for repair rounds is an error that says what to do,
    raised after the drafts are cached (nothing translated is lost)."""
    from cltrlib.jhumaneval.build import build_jhumaneval

    tr = DeepLTranslator("test-key:fx", base_url=deepl_server.url, policy=FAST)
    with pytest.raises(ValueError, match="repair rounds need a translator.*build without repair rounds"):
        build_jhumaneval(tr, tmp_path / "b.jsonl", cache=cache, limit=1, repair_rounds=1, progress=False)
    assert cache.count(tr.name) > 0 and not (tmp_path / "b.jsonl").exists()
