"""Translation through a REAL model server: llama.cpp's (``python -m llama_cpp.server``) serving the embedded
Gemma-3-270M GGUF on loopback, one thread, as the committed machine-translated JHumanEval builds were made.

A few segments translated and cached (a second pass sends no request); the translator's identity holds the served
model's GGUF sha256 and the prompt hash but not the port; a build interrupted by killing the server resumes and
translates only what is missing; repair rounds on a real draft. The post-edits and findings are checked on fixed
texts (pure functions). ~1 min on one thread.
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed: run `make env`")

from cltrlib.data import load_humaneval  # noqa: E402
from cltrlib.data.problems import read_jsonl  # noqa: E402
from cltrlib.jhumaneval.backends import SHOT_TASKS, ServedModelTranslator, translate_texts  # noqa: E402
from cltrlib.jhumaneval.build import build_jhumaneval  # noqa: E402
from cltrlib.jhumaneval.cache import TranslationCache  # noqa: E402
from cltrlib.jhumaneval.http import TranslationError  # noqa: E402
from cltrlib.jhumaneval.mt import build_config, matching_build, offline_translator  # noqa: E402
from cltrlib.jhumaneval.repair import code_names, post_edit, segment_findings  # noqa: E402
from cltrlib.jhumaneval.segment import segment_prompt  # noqa: E402
from cltrlib.jhumaneval.validate import japanese_share  # noqa: E402
from cltrlib.models import GEMMA3  # noqa: E402
from cltrlib.providers.http import RetryPolicy  # noqa: E402
from cltrlib.providers.llamacpp import LlamaCppServer, gguf_sha256  # noqa: E402

FAST = RetryPolicy(max_retries=0, backoff=0.05, max_wait=1.0, timeout=60.0)


@pytest.fixture(scope="module")
def server():
    srv = LlamaCppServer(GEMMA3, threads=1, n_ctx=2048).start()
    yield srv
    srv.stop()


def _segments(limit: int) -> list[str]:
    return [s.source for p in load_humaneval()[:limit] for _, s in segment_prompt(p.prompt).text_segments()]


def test_identity_has_model_revision_and_prompt_not_port(server):
    tr = ServedModelTranslator.for_server(server, policy=FAST)
    assert tr.mode == "completion"  # Gemma-3-270M is a base model: few-shot completion
    assert f"gguf-sha256:{gguf_sha256(server.path)}" in tr.name and tr.prompt_id in tr.name
    assert str(server.port) not in tr.name and "127.0.0.1/v1" in tr.name
    assert offline_translator(GEMMA3).name == tr.name  # what the committed build's sidecar records


def test_shots_are_published_prose_of_other_tasks(server):
    tr = ServedModelTranslator.for_server(server, policy=FAST)
    by_id = {p.task_id: p for p in load_humaneval()}
    own = segment_prompt(by_id[SHOT_TASKS[0]].prompt).text_segments()[0][1].source
    shots = tr.shots_for(own)
    assert len(shots) == 3 and own not in [en for en, _ in shots]
    assert [en for en, _ in shots] == [s[1] for s in tr.shots[1:4]]  # the spare stands in
    other = tr.shots_for("Return the sum of the list.")
    assert [en for en, _ in other] == [s[1] for s in tr.shots[:3]]
    prompt = tr.request(own, "en", "ja").prompt
    assert tr.shots[0][2] not in prompt and prompt.endswith(f"English: {own}\nJapanese:")
    assert all(japanese_share([ja]) > 0.3 for _, ja in shots)


def test_translates_segments_and_a_second_pass_sends_nothing(server, tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    tr = ServedModelTranslator.for_server(server, policy=FAST)
    texts = _segments(3)
    out = translate_texts(tr, texts, cache=cache, progress=False)
    assert tr.n_requests == len(set(texts)) and len(out) == len(texts)
    assert all(o.strip() and "\n" not in o for o in out)
    assert sum(japanese_share([o]) > 0.3 for o in out) >= len(out) - 1  # a 270M base model: mostly Japanese
    assert tr.usage["completion_tokens"] > 0 and tr.usage["prompt_tokens"] > 150 * len(set(texts))
    again = ServedModelTranslator.for_server(server, policy=FAST)
    assert translate_texts(again, texts, cache=cache, progress=False) == out and again.n_requests == 0
    assert cache.count(tr.name) == len(set(texts))


def test_killed_build_resumes_with_only_the_missing_segments(tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    n_unique = len(set(_segments(6)))
    srv = LlamaCppServer(GEMMA3, threads=1, n_ctx=2048).start()
    try:
        tr = ServedModelTranslator.for_server(srv, policy=FAST)

        def killer():
            while tr.n_requests < 6:
                time.sleep(0.01)
            srv.kill()

        t = threading.Thread(target=killer)
        t.start()
        with pytest.raises(TranslationError):
            build_jhumaneval(tr, tmp_path / "b.jsonl", cache=cache, limit=6, progress=False)
        t.join()
        assert not (tmp_path / "b.jsonl").exists()
        cached = cache.count(tr.name)
        assert 0 < cached < n_unique and cached % tr.batch_size == 0  # whole batches only
        srv.start()  # a fresh server on a new port: the same identity
        tr2 = ServedModelTranslator.for_server(srv, policy=FAST)
        assert tr2.name == tr.name
        rep = build_jhumaneval(tr2, tmp_path / "b.jsonl", cache=cache, limit=6, progress=False)
        assert tr2.n_requests == n_unique - cached and rep.n_tasks == 6 and rep.n_parse_ok == 6
        rows = read_jsonl(tmp_path / "b.jsonl")
        assert [r["prompt_en"] for r in rows] == [p.prompt for p in load_humaneval()[:6]]
    finally:
        srv.stop()


def test_repair_rounds_on_a_real_draft(server, tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    tr = ServedModelTranslator.for_server(server, policy=FAST)
    raw = build_jhumaneval(tr, tmp_path / "raw.jsonl", cache=cache, limit=4, progress=False)
    n_raw = tr.n_requests
    rep = build_jhumaneval(tr, tmp_path / "rep.jsonl", cache=cache, limit=4, progress=False, repair_rounds=2)
    log = rep.repair
    assert raw.repair is None and log["rounds"][0]["segments"] >= 1  # a 270M model's draft is never clean
    assert 1 <= len(log["rounds"]) <= 3 and 0 < tr.n_requests - n_raw <= sum(log["retranslated"])
    assert log["post_edited"]["segments"] <= log["rounds"][-1]["segments"] <= log["rounds"][0]["segments"]
    again = ServedModelTranslator.for_server(server, policy=FAST)
    build_jhumaneval(again, tmp_path / "rep2.jsonl", cache=cache, limit=4, progress=False, repair_rounds=2)
    assert again.n_requests == 0 and (tmp_path / "rep2.jsonl").read_bytes() == (tmp_path / "rep.jsonl").read_bytes()


def test_findings_and_post_edits_on_fixed_texts():
    p = load_humaneval()[0]  # has_close_elements(numbers, threshold)
    names = code_names(p)
    src = "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
    assert segment_findings(src, "リストnumbersの中に、thresholdより近い２つの数値があるか判定する", names) == []
    kinds = [k for k, _ in segment_findings(src, "リストの中に近い数値があるか判定する", names)]
    assert kinds == ["token_missing"]
    kinds = [k for k, _ in segment_findings(src, "given list of numbers closer to each other", names)]
    assert "no_japanese" in kinds
    text, applied = post_edit("Return 1.", "1を返す（" + "0" * 40)
    assert applied == ["cut_repetition", "drop_unmatched_brackets"] and text == "1を返す0"
    text, applied = post_edit("Return x.", "Return x.\n>>> f(1)")
    assert text == "Return x." and applied == ["drop_code_lines", "restore_english"]


def test_committed_build_is_read_only_when_its_configuration_matches(tmp_path):
    import json

    path = tmp_path / "b.jsonl"
    path.write_text('{"task_id": "JHumanEval/0"}\n')
    cfg = build_config(GEMMA3, 2)
    import hashlib

    side = {"config": cfg, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (tmp_path / "b.jsonl.json").write_text(json.dumps(side))
    assert matching_build(path, cfg) is not None
    assert matching_build(path, build_config(GEMMA3, 1)) is None  # other repair rounds
    assert matching_build(path, {**cfg, "prompt_id": "other"}) is None  # another prompt
    path.write_text('{"task_id": "JHumanEval/1"}\n')
    assert matching_build(path, cfg) is None  # the file changed since


def test_round_trip_back_translates_published_prose_to_english(server, tmp_path):
    from cltrlib.data.problems import JHUMANEVAL_RELPATH, resolve_data_file
    from cltrlib.jhumaneval.roundtrip import back_translate

    cache = TranslationCache(tmp_path / "c.sqlite")
    tr = ServedModelTranslator.for_server(server, policy=FAST)
    rows = [r for r in read_jsonl(resolve_data_file(JHUMANEVAL_RELPATH))
            if r["task_id"].split("/")[1] in ("2", "13", "23")]  # 13 is a shot task: skipped
    ja = rows[-1]["prompt"].split('"""')[1].strip().split("\n")[0]
    prompt = tr.request(ja, "ja", "en").prompt
    assert prompt.endswith(f"Japanese: {ja}\nEnglish:") and f"Japanese: {tr.shots[0][2]}\nEnglish: {tr.shots[0][1]}" \
        in prompt
    out = back_translate(rows, tr, cache=cache, progress=False)
    assert [r["task_id"] for r in out] == ["HumanEval/2", "HumanEval/23"]
    assert tr.n_requests == len({p for r in out for p in r["ja"]})
    for r in out:
        assert all(japanese_share([p]) > 0.3 for p in r["ja"]) and len(r["en"]) == len(r["ja"])
        assert all(e.strip() and japanese_share([e]) < 0.1 for e in r["en"]), r  # English came back
    again = ServedModelTranslator.for_server(server, policy=FAST)
    assert back_translate(rows, again, cache=cache, progress=False) == out and again.n_requests == 0
