"""The explorer's parts without a browser: prompt diff, search, stored results, sandbox verdicts,
cancellable background generation (tiny random model on the real SmolLM2 tokenizer), the panel."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from cltrlib.codeeval import run_sample
from cltrlib.codegen import GenRequest, SamplingConfig, build_prompt_text, generate_batch
from cltrlib.codegen.prompts import stops_for
from cltrlib.explore import CodeEvalPanel, load_pairs, problem_results, search_problems, start_generation
from cltrlib.explore.codeeval import stored_results_html
from cltrlib.explore.stored import solve_category
from cltrlib.explore.textdiff import changed_fraction, diff_segments, segments_html
from cltrlib.store import RunStore


@pytest.fixture(scope="module")
def pairs():
    return load_pairs()


@pytest.fixture(scope="module")
def tiny_lm():
    """A randomly initialised 2-layer Llama with SmolLM2's real tokenizer: real decoding, seconds not minutes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cltrlib.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct", padding_side="left")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return LlamaForCausalLM(cfg).eval(), tok


# -- prompt diff ---------------------------------------------------------------------------------------------
def test_diff_marks_only_the_translated_docstring(pairs):
    for tid in ("HumanEval/0", "HumanEval/2", "HumanEval/163"):
        p = pairs[tid]
        left, right = diff_segments(p.ja.prompt_en, p.ja.prompt)
        assert "".join(s.text for s in left) == p.ja.prompt_en  # lossless on both sides
        assert "".join(s.text for s in right) == p.ja.prompt
        changed_en = "".join(s.text for s in left if s.changed)
        changed_ja = "".join(s.text for s in right if s.changed)
        assert f"def {p.en.entry_point}(" not in changed_en + changed_ja  # the signature is shared
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in changed_ja)
        assert not any("\u3040" <= ch <= "\u30ff" for ch in changed_en)
        assert 0 < changed_fraction(right) < 1


def test_diff_of_identical_prompts_marks_nothing():
    left, right = diff_segments("def f():\n    pass\n", "def f():\n    pass\n")
    assert not any(s.changed for s in left + right)
    assert "<mark" not in segments_html(right)


def test_highlight_html_escapes_code():
    left, right = diff_segments("x = 1 < 2\n# a\n", "x = 1 < 2\n# あ\n")
    out = segments_html(right)
    assert "&lt;" in out and '<mark class="cltr-translated"' in out and "あ" in out


# -- search --------------------------------------------------------------------------------------------------
def test_search_by_id_number_and_words(pairs):
    assert search_problems(pairs, "12") == ["HumanEval/12"]
    assert search_problems(pairs, "HumanEval/7") == ["HumanEval/7"]
    assert len(search_problems(pairs, "")) == len(pairs) == 164
    assert "HumanEval/0" in search_problems(pairs, "has_close")
    prime_en = search_problems(pairs, "prime")
    prime_ja = search_problems(pairs, "素数")
    assert prime_en and prime_ja and set(prime_ja) & set(prime_en)
    assert search_problems(pairs, "no such words anywhere xyzzy") == []


# -- stored results ------------------------------------------------------------------------------------------
def _store_eval_run(root, model, mode, rows):
    """An evaluation run laid out exactly as ``cltrlib.codeeval.run_evaluation`` writes it."""
    store = RunStore("evaluation", {"model": model, "mode": mode}, label=f"{model}-{mode}", root=root)
    out = store.path / "results.jsonl"
    out.write_text("".join(json.dumps({"task_id": t, "passed": ok, "language": lang, "model": model,
                                       "prompt_mode": mode, "completion": "", "result": "x"}) + "\n"
                           for t, lang, ok in rows))
    store.mark_complete({"results": str(out), "model": model})


def test_stored_results_categories(tmp_path):
    _store_eval_run(tmp_path, "m-a", "chat", [("HumanEval/3", "en", True), ("HumanEval/3", "ja", False),
                                             ("HumanEval/4", "en", True)])
    _store_eval_run(tmp_path, "m-b", "completion", [("JHumanEval/3", "ja", True), ("HumanEval/3", "en", True),
                                                   ("HumanEval/3", "en", False)])
    t = problem_results("HumanEval/3", root=tmp_path).set_index("model")
    assert t.loc["m-a", "solves"] == "EN only"
    assert t.loc["m-b", "solves"] == "both"
    assert t.loc["m-b", "EN"] == pytest.approx(0.5) and t.loc["m-b", "n_EN"] == 2
    assert problem_results("HumanEval/4", root=tmp_path).loc[0, "solves"] == "EN evaluated only"
    assert problem_results("HumanEval/99", root=tmp_path).empty


def test_no_stored_results_is_a_message_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    assert problem_results("HumanEval/1").empty
    assert "No stored results" in stored_results_html("HumanEval/1")


def test_solve_category():
    assert solve_category(0.0, 0.0) == "neither"
    assert solve_category(0.0, 1.0) == "JA only"
    assert solve_category(None, None) == "not evaluated"


# -- sandbox verdicts ----------------------------------------------------------------------------------------
def test_verdicts_pass_fail_with_line_and_timeout(pairs):
    p = pairs["HumanEval/2"].ja
    ok = run_sample({"completion": p.canonical_solution}, p)
    assert ok.passed and ok.failing_line == ""
    bad = run_sample({"completion": "    return 0.5\n"}, p)
    assert bad.status == "failed" and bad.result == "failed: AssertionError"
    assert bad.failing_line.startswith("assert") and "candidate" in bad.failing_line
    assert bad.program.splitlines()[bad.failing_lineno - 1].strip() == bad.failing_line
    err = run_sample({"completion": "    return undefined_name\n"}, p)
    assert "NameError" in err.result and "undefined_name" in err.failing_line
    slow = run_sample({"completion": "    while True:\n        pass\n"}, p, timeout=1.0)
    assert slow.status == "timeout"


# -- background generation -----------------------------------------------------------------------------------
def test_background_generation_matches_generate_batch(pairs, tiny_lm):
    model, tok = tiny_lm
    p = pairs["HumanEval/0"].ja
    cfg = SamplingConfig(max_new_tokens=24)
    updates = []
    job = start_generation("tiny", p, cfg, prompt_mode="chat", loader=lambda _: tiny_lm,
                           on_update=lambda j: updates.append((j.state, j.n_tokens)), update_every=0.0).wait(60)
    assert job.state == "done", job.error
    text, add_special = build_prompt_text(p, "chat", tok)
    direct = generate_batch(model, tok, [GenRequest(text, add_special)], cfg, stops_for("chat"))[0]
    assert job.text == direct  # the observed model changes nothing about decoding
    assert "completion" in job.sample or "solution" in job.sample
    states = [s for s, _ in updates]
    assert states[0] == "loading" and "generating" in states and states[-1] == "done"
    assert max(n for _, n in updates) >= 1


def test_background_generation_stops_when_cancelled(pairs, tiny_lm):
    p = pairs["HumanEval/0"].en
    hit = threading.Event()

    def on_update(job):
        if job.n_tokens >= 3:
            job.cancel()
            hit.set()

    job = start_generation("tiny", p, SamplingConfig(max_new_tokens=400), prompt_mode="completion",
                           loader=lambda _: tiny_lm, on_update=on_update, update_every=0.0).wait(60)
    assert hit.is_set()
    assert job.state == "cancelled" and 3 <= job.n_tokens <= 5
    assert not job.running


def test_generation_error_is_reported_not_raised(pairs):
    def broken(_):
        raise OSError("no such model folder")

    job = start_generation("x", pairs["HumanEval/0"].en, SamplingConfig(max_new_tokens=4), loader=broken).wait(30)
    assert job.state == "error" and "no such model folder" in job.error


# -- the panel -----------------------------------------------------------------------------------------------
def test_panel_generate_run_and_snapshot(pairs, tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    panel = CodeEvalPanel("smoke", model="tiny", task_id="HumanEval/2", max_new_tokens=16, pairs=pairs,
                          loader=lambda _: tiny_lm)
    assert "cltr-translated" in panel.prompts.value and "日本語" in panel.prompts.value
    job = panel.generate(wait=True)
    assert job.state == "done" and job.prompt_mode == "chat"
    assert panel.verdict is not None and panel.verdict.status in ("failed", "timeout")  # random weights
    assert 'class="cltr-verdict cltr-verdict-' in panel.verdict_box.value
    assert 'data-task="HumanEval/2"' in panel.verdict_box.value
    assert not panel.generate_button.disabled and panel.stop_button.disabled
    assert "sandbox: " + panel.verdict.status in panel.status.value
    first = panel.verdict
    assert panel.run_code().result == first.result  # the box holds what was run: rerunning it agrees
    snap = panel.snapshot_html()
    assert "cltr-snapshot" in snap and "cltr-verdict" in snap and "No stored results" in snap

    # edited code in the box is what "Run code in sandbox" runs: the reference solution passes
    panel.code.value = panel.current_problem.canonical_solution
    assert panel.run_code().passed
    panel.code.value = panel.current_problem.prompt.split("def ")[0] + "def truncate_number(number):\n    return number % 1.0\n"
    assert panel.run_code().passed

    panel.search.value = "prime"
    assert all("prime" in (pairs[t].en.prompt + t).lower() or "素数" in pairs[t].ja.prompt
               for _, t in panel.problem.options)
    panel.select("HumanEval/0")
    assert panel.problem.value == "HumanEval/0" and panel.verdict_box.value == ""


# -- embedding panel -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_encoder(tiny_lm):
    from cltrlib.models import load_tokenizer

    return tiny_lm[0], load_tokenizer("smollm2-135m-instruct", padding_side="right")


def test_embedding_panel_layers_and_baseline(tiny_encoder):
    from cltrlib.explore.embedding import EmbeddingPanel, similarity_figure

    panel = EmbeddingPanel("smoke", model="tiny", loader=lambda _: tiny_encoder)
    assert panel.en.value == panel.pick_pairs.texts["en"][0] and panel.ja.value == panel.pick_pairs.texts["ja"][0]
    job = panel.compute(wait=True)
    assert job.state == "done", job.error
    res = job.result
    n = len(panel.baseline_pairs.ids)
    for pooling in ("mean", "last"):
        assert res.pair[pooling].shape == (3,)  # embeddings + 2 layers
        assert res.random[pooling].shape == res.parallel[pooling].shape == (n, 3)
        assert np.all(np.abs(res.pair[pooling]) <= 1 + 1e-5)
    assert panel.plot.value[:4] == b"\x89PNG"
    assert "cltr-emb-table" in panel.summary.value and "<img" in panel.snapshot_html()
    # identical sentences: cosine 1 at every layer, whatever the weights
    panel.ja.value = panel.en.value
    same = panel.compute(wait=True).result
    assert np.allclose(same.pair["mean"], 1.0, atol=1e-5) and np.allclose(same.pair["last"], 1.0, atol=1e-5)
    assert same.random["mean"] is res.random["mean"]  # the baseline is computed once per model
    import matplotlib.pyplot as plt

    plt.close(similarity_figure(res))


def test_embedding_panel_stop_and_bad_input(tiny_encoder):
    from cltrlib.explore.embedding import EmbeddingPanel

    def cancelling_loader(_):
        panel.job.cancel()  # as if Stop were clicked while the model loads
        return tiny_encoder

    panel = EmbeddingPanel("smoke", model="tiny", loader=cancelling_loader)
    job = panel.compute(wait=True)
    assert job.state == "cancelled" and job.result is None and not panel.compute_button.disabled
    panel.loader = lambda _: tiny_encoder
    panel.en.value = " "
    job = panel.compute(wait=True)
    assert job.state == "error" and "English sentence" in job.error


# -- classification panel ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_classifier():
    """A random 2-layer Llama sequence classifier with SmolLM2's tokenizer and a transfer-run style meta."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from cltrlib.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct", padding_side="right")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=tok.pad_token_id)
    meta = {"label_names": ["other", "science"], "max_length": 64}
    return LlamaForSequenceClassification(cfg).eval(), tok, meta


def _classifiers_frame():
    import pandas as pd

    return pd.DataFrame([{"base_model": "tiny", "dataset": "sib200-science", "condition": "crosslingual",
                          "pattern": "ja16", "seed": 0, "adapter_dir": "/nowhere/tiny"}])


def test_classify_panel_probabilities_and_heatmap(tiny_classifier):
    from cltrlib.explore.classify import ClassifyPanel

    model, tok, meta = tiny_classifier
    panel = ClassifyPanel("smoke", classifiers=_classifiers_frame(), loader=lambda _: tiny_classifier)
    job = panel.classify(wait=True)
    assert job.state == "done", job.error
    assert job.probs.shape == (2,) and abs(job.probs.sum() - 1) < 1e-6
    assert "".join(t for t, _ in job.pieces) == tok.decode(tok(panel.text.value)["input_ids"], skip_special_tokens=True)
    assert all("\ufffd" not in t for t, _ in job.pieces)  # byte pieces of a character are merged
    assert "cltr-heatmap" in panel.result.value and all(ch in panel.result.value for ch in "科学者化石")
    assert job.calls == job.total_calls  # 1 classification + one call per batch of perturbed copies
    assert "cltr-clf-snapshot" in panel.snapshot_html()


def test_classify_panel_stop_and_no_classifiers(tiny_classifier, tmp_path):
    import pandas as pd

    from cltrlib.explore.classify import ClassifyPanel, available_classifiers

    def cancelling_loader(_):
        panel.job.cancel()
        return tiny_classifier

    panel = ClassifyPanel("smoke", classifiers=_classifiers_frame(), loader=cancelling_loader)
    job = panel.classify(wait=True)
    assert job.state == "cancelled" and job.probs is None
    assert available_classifiers(tmp_path).empty
    many = pd.DataFrame([{"base_model": m, "dataset": "d", "condition": "c", "pattern": f"ja{n}", "n_target": n,
                          "seed": 0, "adapter_dir": f"/x/{m}-{n}"}
                         for m in ("gemma3-270m", "smollm2-135m-instruct") for n in (0, 16, 104)])
    assert ClassifyPanel("smoke", classifiers=many).adapter.value == "/x/smollm2-135m-instruct-104"
    assert ClassifyPanel("local", classifiers=many).adapter.value == "/x/gemma3-270m-104"
    # a probe and a full-depth run of one pattern and seed: labelled apart, the full-depth one preferred (any order)
    both = pd.DataFrame([{"base_model": "gemma3-270m", "dataset": "d", "condition": "c", "pattern": "ja104",
                          "n_target": 104, "seed": s, "layers": layers, "epochs": ep, "adapter_dir": f"/x/{layers}-{s}"}
                         for layers, ep, s in [("LoRA top 1", 10, 1), ("LoRA all", 3, 0), ("LoRA top 1", 10, 0)]])
    for frame in (both, both.iloc[::-1]):
        panel = ClassifyPanel("local", classifiers=frame)
        assert panel.adapter.value == "/x/LoRA all-0"
        labels = [label for label, _ in panel.adapter.options]
        assert len(set(labels)) == 3 and any("LoRA all, 3 ep." in label for label in labels)
    empty = ClassifyPanel("smoke", classifiers=pd.DataFrame())
    assert empty.classify() is None and empty.classify_button.disabled
    assert "No fine-tuned classifiers" in empty.snapshot_html()
