"""The soft EN–JA measure: canonical-solution log-likelihoods on the embedded SmolLM2 (real weights, 2 problems)."""

from __future__ import annotations

import math

import pytest
import torch

from cltrlib.codeeval import likelihood
from cltrlib.data import load_problems
from cltrlib.models import SMOLLM2, load


@pytest.fixture(scope="module")
def smollm2():
    return load(SMOLLM2, "generate")


def test_scoring_only_the_target_logits_equals_the_full_forward_pass(smollm2):
    model, tok = smollm2
    context = tok("def add(a, b):\n", add_special_tokens=False).input_ids
    target = likelihood.target_ids(tok, "    return a + b\n")
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=torch.tensor([context + target])).logits[0].float(), -1)
    by_hand = sum(float(logp[len(context) + i - 1, t]) for i, t in enumerate(target))
    assert likelihood.sequence_logprob(model, context, target) == pytest.approx(by_hand, abs=1e-3)


def test_both_languages_score_the_same_target_tokens_after_their_own_prompt(smollm2):
    _, tok = smollm2
    en, ja = load_problems("humaneval")[0], load_problems("jhumaneval")[0]
    en_ctx, _ = likelihood.scored_context(en, "chat", tok)
    ja_ctx, _ = likelihood.scored_context(ja, "chat", tok)
    assert en_ctx.endswith(en.prompt) and ja_ctx.endswith(ja.prompt)  # chat: the reply restates the stub
    assert "関数" in ja_ctx and "関数" not in en_ctx
    rows_en = likelihood.score_canonical(SMOLLM2, "humaneval", limit=2, progress=False)
    rows_ja = likelihood.score_canonical(SMOLLM2, "jhumaneval", limit=2, progress=False)
    assert list(rows_en["n_tokens"]) == list(rows_ja["n_tokens"])
    assert (rows_en["mean_logprob"] < 0).all()
    assert not rows_en["mean_logprob"].equals(rows_ja["mean_logprob"])


def test_an_interrupted_run_resumes_without_rescoring_or_duplicating(smollm2):
    store = likelihood._store(SMOLLM2, "humaneval", "completion", 3)
    first = likelihood.score_canonical(SMOLLM2, "humaneval", "completion", limit=3, progress=False)
    # Simulate a kill after the first problem: keep one record, drop the completion mark.
    store.records_file.write_text(store.records_file.read_text().splitlines(keepends=True)[0])
    store.summary_file.unlink()
    again = likelihood.score_canonical(SMOLLM2, "humaneval", "completion", limit=3, progress=False)
    assert list(again["task_id"]) == list(first["task_id"])
    assert again["logprob"].to_numpy() == pytest.approx(first["logprob"].to_numpy(), abs=1e-4)


def test_soft_gap_pairs_problems_and_reports_a_relative_width(smollm2):
    gap = likelihood.soft_gap(SMOLLM2, limit=2)
    assert gap["n_problems"] == 2 and gap["ci_low"] <= gap["gap"] <= gap["ci_high"]
    assert gap["gap"] == pytest.approx(gap["en_mean_logprob"] - gap["ja_mean_logprob"])


def test_relative_ci_width():
    assert likelihood.relative_ci_width(0.5, 0.25, 0.75) == pytest.approx(1.0)
    assert likelihood.relative_ci_width(-0.02, -0.04, 0.0) == pytest.approx(2.0)
    assert math.isinf(likelihood.relative_ci_width(0.0, -0.1, 0.1))


def test_soft_table_caps_a_models_problems_with_its_own_limit(smollm2):
    from cltrlib.jhumaneval.experiment import soft_table

    builds = {"published": "jhumaneval"}
    capped = soft_table([SMOLLM2], builds, limit=3, limits={SMOLLM2: 2}, progress=False)
    assert list(capped["n_problems"]) == [2]
    # the profile-wide limit wins when it is the smaller one; a limit for another model changes nothing
    assert list(soft_table([SMOLLM2], builds, limit=2, limits={SMOLLM2: 3}, progress=False)["n_problems"]) == [2]
    assert list(soft_table([SMOLLM2], builds, limit=3, limits={"gemma3-270m": 1}, progress=False)["n_problems"]) == [3]


def test_soft_limits_must_be_model_count_pairs():
    from cltrlib.study import study

    s = study("local").jhumaneval
    assert dict(s.soft_limits)["gemma3-270m"] == 82 and "gemma3-270m" in s.soft_models
    with pytest.raises(ValueError, match="soft_limits"):
        s.override(soft_limits=(("gemma3-270m", 0),))
