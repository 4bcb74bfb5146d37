"""The OpenAI provider against a real server: llama.cpp's (``python -m llama_cpp.server``, built by ``make env``)
serving the embedded models' own GGUF files on loopback, one thread each.

EN and JA generation for both models; greedy stable across runs on a fresh server; a server killed mid-run (a clear error, then the
run resumes after a restart with nothing lost or duplicated); a fault-injecting proxy in front of the server (429,
500 and reset connections, then forwarding: the retries succeed; a permanent 500: a clear error naming the server
and the status); the paper profile's API rows sent through the proxy (the request shape an API gets).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed: run `make env`")

from cltrlib.codegen.engine import SamplingConfig  # noqa: E402
from cltrlib.codegen.pipeline import run_plan  # noqa: E402
from cltrlib.codegen.prompts import COMPLETION_STOPS, problem_request  # noqa: E402
from cltrlib.codegen.run import GenerationConfig, generation_store, run_generation  # noqa: E402
from cltrlib.data import load_humaneval, load_jhumaneval  # noqa: E402
from cltrlib.models import EMBEDDED, GEMMA3, SMOLLM2  # noqa: E402
from cltrlib.providers import ProviderError, Request  # noqa: E402
from cltrlib.providers.http import RetryPolicy  # noqa: E402
from cltrlib.providers.llamacpp import NEUTRAL_SAMPLING, LlamaCppServer, gguf_sha256  # noqa: E402
from cltrlib.providers.openai import OpenAIProvider  # noqa: E402
from cltrlib.study import CodeEvalSettings  # noqa: E402

FAST = RetryPolicy(max_retries=3, backoff=0.05, max_wait=2.0, timeout=120.0)
CAP = 48  # new tokens: enough for a line or two of code, seconds per request on one thread


@pytest.fixture(scope="module")
def servers():
    """Both embedded models served at once (one thread each; ~0.3 GB of memory together)."""
    started = {name: LlamaCppServer(name, threads=1, n_ctx=2048).start() for name in EMBEDDED}
    yield started
    for srv in started.values():
        srv.stop()


def provider_for(srv: LlamaCppServer, base_url: str | None = None, **kw) -> OpenAIProvider:
    opts = srv.options()
    return OpenAIProvider(base_url=base_url or opts["base_url"], api_model=opts["api_model"],
                          revision=opts["revision"], extra_body=dict(opts["extra_body"]), policy=kw.pop("policy", FAST),
                          **kw)


@pytest.mark.parametrize("name", EMBEDDED)
def test_en_and_ja_generation_through_the_server(servers, name):
    srv = servers[name]
    assert srv.revision == f"gguf-sha256:{gguf_sha256(srv.path)}" and len(srv.revision) == len("gguf-sha256:") + 64
    for dataset in ("humaneval", "jhumaneval"):
        cfg = GenerationConfig(model=name, dataset=dataset, limit=2, max_new_tokens=CAP, **srv.options())
        run = run_generation(cfg, progress=False)
        recs = run.records()
        assert [r["task_id"] for r in recs] == ["HumanEval/0", "HumanEval/1"]
        assert {r["language"] for r in recs} == {"en" if dataset == "humaneval" else "ja"}
        assert run.store.config["provider"] == {"provider": "openai", "server": "http://127.0.0.1/v1",
                                                "api_model": name, "revision": srv.revision,
                                                "extra_body": NEUTRAL_SAMPLING}
        for r in recs:
            assert r["provider"]["revision"] == srv.revision and r["base_url"] == srv.base_url
            assert 0 < r["usage"]["completion_tokens"] <= CAP and r["usage"]["prompt_tokens"] > 20
            assert r["finish_reason"] in ("stop", "length") and r["served"]["model"] == name
            assert r["prompt_mode"] == ("chat" if name == SMOLLM2 else "completion")
            assert "solution" in r or "completion" in r
        assert any(r["raw"].strip() for r in recs)
        again = run_generation(cfg, progress=False)  # stored: read back, nothing generated
        assert again.store.path == run.store.path and again.records() == recs


def test_greedy_is_stable_across_two_runs(tmp_path):
    """Two runs of the same requests, each on a freshly started server, give the same texts.

    Not guaranteed on one server that has served other prompts before: llama.cpp reuses the KV cache of the longest
    prompt prefix it shares with the previous request, so how a prompt is split into batches depends on that
    request, and its logits are not bit-identical across batch sizes (llama.cpp's server documents this for
    ``cache_prompt``). Measured here: Gemma's greedy text for HumanEval/0 as the server's first request differs from
    the text it gets after any other prompt (the other two prompts were unaffected).
    """
    reqs = [problem_request(p, "completion") for p in load_humaneval()[:2] + load_jhumaneval()[:1]]
    cfg = SamplingConfig(max_new_tokens=32)
    runs = []
    for k in range(2):
        with LlamaCppServer(GEMMA3, threads=1, n_ctx=2048, log=tmp_path / f"server{k}.log") as srv:
            runs.append([c.text for c in provider_for(srv, concurrency=1).generate(reqs, cfg, COMPLETION_STOPS,
                                                                                   progress=False)])
    assert runs[0] == runs[1] and any(t.strip() for t in runs[0])


class FaultProxy:
    """A real HTTP server on loopback that answers the first requests from ``faults`` (an HTTP status, or "reset":
    the connection closed without an answer), then forwards to ``upstream``; it records every request."""

    def __init__(self, upstream: str, faults: list[int | str] | None = None, permanent: int | None = None):
        self.upstream, self.faults, self.permanent = upstream.rstrip("/"), list(faults or []), permanent
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                             **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append({"method": method, "path": self.path, "json": json.loads(raw or b"null"),
                                           "auth": self.headers.get("Authorization")})
                    fault = outer.permanent if method == "POST" and outer.permanent else (
                        outer.faults.pop(0) if method == "POST" and outer.faults else None)
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)  # no status line: the client sees the connection dropped
                    return
                if fault is not None:
                    headers = {"Retry-After": "0"} if fault == 429 else {}
                    return self._answer(int(fault), json.dumps({"error": {"message": f"injected {fault}"}}).encode(),
                                        headers)
                up = requests.request(method, outer.upstream + self.path, data=raw or None,
                                      headers={"Content-Type": "application/json"}, timeout=300)
                self._answer(up.status_code, up.content)

            def do_GET(self):  # noqa: N802 - http.server naming
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_storm_of_429_500_and_resets_is_ridden_out(servers):
    srv = servers[SMOLLM2]
    reqs = [problem_request(p, "completion") for p in load_humaneval()[:2]]
    cfg = SamplingConfig(max_new_tokens=16)
    direct = [c.text for c in provider_for(srv).generate(reqs, cfg, COMPLETION_STOPS, progress=False)]
    proxy = FaultProxy(srv.base_url.removesuffix("/v1"), faults=[429, 500, "reset", 503, 429])
    try:
        prov = provider_for(srv, base_url=proxy.url + "/v1", concurrency=1, policy=RetryPolicy(
            max_retries=5, backoff=0.05, max_wait=1.0, timeout=120.0))
        via = [c.text for c in prov.generate(reqs, cfg, COMPLETION_STOPS, progress=False)]
    finally:
        proxy.close()
    assert via == direct  # retried until forwarded; greedy gives the server's own texts
    assert len(proxy.posts()) == 2 + 5 and not proxy.faults


def test_a_permanent_500_is_a_clear_error_naming_the_server_and_status(servers):
    srv = servers[SMOLLM2]
    proxy = FaultProxy(srv.base_url.removesuffix("/v1"), permanent=500)
    try:
        prov = provider_for(srv, base_url=proxy.url + "/v1", concurrency=1)
        with pytest.raises(ProviderError) as err:
            prov.generate([problem_request(load_humaneval()[0], "completion")], SamplingConfig(max_new_tokens=8),
                          progress=False)
    finally:
        proxy.close()
    msg = str(err.value)
    assert f"{proxy.url}/v1/completions failed after 4 attempts; last error: HTTP 500" in msg
    assert f"server {proxy.url}/v1" in msg and "0 of 1 requests finished" in msg
    assert len(proxy.posts()) == 4


def test_a_server_killed_mid_run_resumes_after_restart_with_nothing_lost_or_duplicated(tmp_path):
    srv = LlamaCppServer(SMOLLM2, threads=1, n_ctx=2048, log=tmp_path / "server.log").start()
    limit = 6
    cfg = GenerationConfig(model=SMOLLM2, prompt_mode="completion", limit=limit, max_new_tokens=24, **srv.options())
    prov = provider_for(srv, concurrency=1)
    records = generation_store(cfg, "completion", prov.identity()).records_file
    done = threading.Event()

    def kill_after_two_records() -> None:
        while not done.is_set():
            if records.exists() and records.read_bytes().count(b"\n") >= 2:
                srv.kill()  # SIGKILL, as a crash: the request in flight is cut off
                return
            time.sleep(0.02)

    threading.Thread(target=kill_after_two_records, daemon=True).start()
    try:
        with pytest.raises(ProviderError, match=r"through the OpenAI-compatible server http://127\.0\.0\.1:\d+/v1 "
                                                r"failed: .*run again to resume"):
            run_generation(cfg, provider=prov, progress=False)
        done.set()
        before = [json.loads(line) for line in records.read_text().splitlines()]
        assert 2 <= len(before) < limit
        srv.port = None  # a restarted server gets a new port: the key drops a loopback port, so the run resumes
        srv.start()
        cfg2 = GenerationConfig(**{**cfg.__dict__, "base_url": srv.base_url})
        run = run_generation(cfg2, provider=provider_for(srv, concurrency=1), progress=False)
    finally:
        done.set()
        srv.stop()
    assert run.store.records_file == records
    stored = [json.loads(line) for line in records.read_text().splitlines()]
    ids = [r["task_id"] for r in stored]
    assert sorted(ids) == sorted(p.task_id for p in load_humaneval()[:limit]) and len(set(ids)) == limit
    assert stored[:len(before)] == before  # what was stored before the crash is kept as it was
    assert [r["task_id"] for r in run.records()] == [f"HumanEval/{i}" for i in range(limit)]


def test_the_paper_api_rows_send_an_api_shaped_request(servers, monkeypatch, capsys):
    """Paper A's GPT rows with OPENAI_API_KEY set, pointed (OPENAI_BASE_URL) at the proxy in front of the
    llama.cpp server (which answers any model name with its one model): generated, evaluated, keyed by the API."""
    srv = servers[SMOLLM2]
    proxy = FaultProxy(srv.base_url.removesuffix("/v1"), faults=[429])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", proxy.url + "/v1")
    try:
        configs = CodeEvalSettings(models=(), api_models=("gpt-4-0613",), datasets=("humaneval",), limit=1,
                                   max_new_tokens=CAP).generation_configs()
        (summary,) = run_plan(configs, progress=False)
    finally:
        proxy.close()
    assert summary["model"] == "gpt-4-0613" and summary["n_samples"] == 1 and summary["prompt_mode"] == "chat"
    posts = proxy.posts()
    assert len(posts) == 2  # the 429, then the retry
    body = posts[-1]["json"]
    assert posts[-1]["path"] == "/v1/chat/completions" and posts[-1]["auth"] == "Bearer sk-test"
    assert body["model"] == "gpt-4-0613" and body["temperature"] == 0.0 and body["max_tokens"] == CAP
    assert body["n"] == 1 and isinstance(body["seed"], int) and "stop" not in body
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert load_humaneval()[0].prompt.strip() in body["messages"][0]["content"]
    cfg = json.loads((open(summary["generation_store"] + "/config.json")).read())
    assert cfg["provider"] == {"provider": "openai", "server": "http://127.0.0.1/v1", "api_model": "gpt-4-0613",
                               "revision": None}
    assert "sk-test" not in json.dumps(cfg)


def test_stops_beyond_the_cap_are_applied_to_the_returned_text(servers):
    """A provider that may send 1 stop (as OpenAI's API may send 4 of our 6): the server ends on the one it got,
    the others end the text client-side at the earliest one, as a server with every stop would have."""
    srv = servers[GEMMA3]
    proxy = FaultProxy(srv.base_url.removesuffix("/v1"))
    # A pattern a 270M base model continues with another function: the text runs into "\ndef", which is not sent.
    prompt = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(4)) + "def f4():\n"
    try:
        prov = provider_for(srv, base_url=proxy.url + "/v1", max_stops=1, concurrency=1)
        (c,) = prov.generate([Request(prompt=prompt)], SamplingConfig(max_new_tokens=CAP), ("\nclass", "\ndef"),
                             progress=False)
    finally:
        proxy.close()
    (post,) = proxy.posts()
    assert post["json"]["stop"] == ["\nclass"]  # only as many as allowed were sent
    assert c.text.endswith("\ndef") and c.text.count("\ndef") == 1 and "\nclass" not in c.text
    assert c.text.startswith("    return 4") and c.finish_reason == "stop"
    assert c.usage["completion_tokens"] == CAP  # the server went on past "\ndef": the cut was ours


def test_the_cli_generates_through_a_server(servers, tmp_path, capsys):
    from cltrlib.__main__ import main

    srv = servers[GEMMA3]
    out = tmp_path / "samples.jsonl"
    rc = main(["codegen", "generate", "--model", GEMMA3, "--limit", "1", "--max-new-tokens", "16", "--provider",
               "openai", "--base-url", srv.base_url, "--out", str(out)])
    assert rc == 0
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    # --api-model not given: the one model the server lists
    assert rec["provider"]["api_model"] == GEMMA3 and rec["provider"]["server"] == "http://127.0.0.1/v1"
    rc = main(["codegen", "generate", "--model", GEMMA3, "--limit", "1", "--provider", "openai", "--base-url",
               "http://127.0.0.1:9/v1", "--api-model", "x", "--max-retries", "0"])
    assert rc == 2 and "http://127.0.0.1:9/v1" in capsys.readouterr().err
