"""Lengths sized from the data: no language is truncated, and the report says so (real SmolLM2 tokenizer)."""

from __future__ import annotations

from cltrlib.data.multilingual import load_pawsx
from cltrlib.lengths import fit_max_length, token_lengths, truncation_report
from cltrlib.models import SMOLLM2, load_tokenizer


def test_a_fixed_cap_truncates_japanese_far_more_and_a_fitted_length_truncates_nothing():
    tok = load_tokenizer(SMOLLM2)
    texts = {lang: load_pawsx(lang)["sentence1"].head(200).tolist() for lang in ("en", "ja", "zh")}
    capped = truncation_report(tok, texts, 48).set_index("language")["truncated_share"]
    assert capped["ja"] > 0.8 and capped["en"] < 0.05  # the artefact the fitted length removes
    n = fit_max_length(tok, texts)
    assert n == max(int(token_lengths(tok, t).max()) for t in texts.values())
    report = truncation_report(tok, texts, n)
    assert (report["truncated_share"] == 0).all() and (report["max_length"] == n).all()
    assert fit_max_length(tok, texts, cap=40) == 40
