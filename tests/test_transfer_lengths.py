"""Input lengths of the Paper B classifiers: fitted to the data per model, so no language is cut more than another."""

from __future__ import annotations

import pytest

from cltrlib.study import PROFILES
from cltrlib.transfer.data import load_bilingual
from cltrlib.transfer.experiment import fitted_max_length, texts_by_language


@pytest.mark.parametrize("model", PROFILES["local"].transfer.models)
def test_local_profile_truncates_no_language(model):
    s = PROFILES["local"].transfer
    data = load_bilingual(s.dataset)
    n, report = fitted_max_length(model, data, s.max_length)
    assert set(report["language"]) == {"en", "ja"}
    assert (report["truncated_share"] == 0).all(), report  # uncapped: nothing cut, in either language
    assert (report["max_length"] == n).all() and n == report["max_tokens"].max()
    assert report.set_index("language").loc["ja", "n"] == len(data.target_train) + len(data.target_test)


def test_a_cap_that_binds_cuts_japanese_more_than_english():
    """The artefact the fitted length removes (the old local cap of 64 tokens, SmolLM2)."""
    data = load_bilingual("sib200-science")
    _, report = fitted_max_length("smollm2-135m-instruct", data, cap=64)
    share = report.set_index("language")["truncated_share"]
    assert share["ja"] > 0.5 > 0.1 > share["en"]
    assert sum(len(t) for t in texts_by_language(data).values()) == 701 + 701 + 152
