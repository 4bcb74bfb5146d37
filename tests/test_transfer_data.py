"""Data patterns: sizes, label stratification, seeds, and no train/test leakage across languages."""

from __future__ import annotations

import pandas as pd
import pytest

from cltrlib.transfer.data import check_no_leakage, csv_data, load_bilingual, make_pattern, stratified_sample


@pytest.fixture(scope="module")
def sib_binary():
    return load_bilingual("sib200-science")


def test_sib200_binary_test_set_is_balanced_and_japanese(sib_binary):
    test = sib_binary.target_test
    assert set(test["lang"]) == {"ja"}
    assert test["label"].value_counts().nunique() == 1  # equal counts of 0 and 1
    assert sib_binary.label_names == ["not science/technology", "science/technology"]


def test_sib200_no_index_id_shared_between_training_and_test(sib_binary):
    check_no_leakage(sib_binary)
    test_ids = set(sib_binary.target_test["id"])
    for seed in (0, 1, 2):
        pat = make_pattern(sib_binary, "ja104", 104, seed, n_source=128)
        assert not test_ids & set(pat.train["id"]), "a test sentence (or its English translation) is in training"


def test_pawsx_test_rows_are_disjoint_by_row_index_from_all_training_rows():
    data = load_bilingual("pawsx", n_test=200)
    check_no_leakage(data)
    test_rows = set(data.target_test["id"])
    assert len(test_rows) == 200 and data.target_test["label"].mean() == 0.5
    assert not test_rows & set(data.source_train["id"])
    assert not test_rows & set(data.target_train["id"])
    assert set(data.source_train["lang"]) == {"en"} and set(data.target_train["lang"]) == {"ja"}


def test_check_no_leakage_catches_a_shared_id(sib_binary):
    leaky = load_bilingual("sib200-science")
    leaky.source_train = pd.concat([leaky.source_train, leaky.target_test.iloc[:1].assign(lang="en")])
    with pytest.raises(ValueError, match="also in source_train"):
        check_no_leakage(leaky)


def test_patterns_sizes_seeds_and_conditions(sib_binary):
    a = make_pattern(sib_binary, "ja16", 16, seed=0, n_source=64, n_test=40)
    b = make_pattern(sib_binary, "ja16", 16, seed=1, n_source=64, n_test=40)
    assert (a.train["lang"] == "ja").sum() == 16 and (a.train["lang"] == "en").sum() == 64
    assert set(a.train.loc[a.train.lang == "en", "id"]) == set(b.train.loc[b.train.lang == "en", "id"])
    assert set(a.train.loc[a.train.lang == "ja", "id"]) != set(b.train.loc[b.train.lang == "ja", "id"])
    assert a.test["id"].tolist() == b.test["id"].tolist() and a.test["label"].mean() == 0.5
    again = make_pattern(sib_binary, "ja16", 16, seed=0, n_source=64, n_test=40)
    assert a.train["id"].tolist() == again.train["id"].tolist()
    mono = make_pattern(sib_binary, "ja16", 16, seed=0, condition="monolingual", n_source=64, n_test=40)
    assert len(mono.train) == 16 and set(mono.train["lang"]) == {"ja"}
    # the same Japanese rows as the cross-lingual run of that seed: the conditions differ by the English rows only
    assert set(mono.train["id"]) == set(a.train.loc[a.train.lang == "ja", "id"])
    with pytest.raises(ValueError, match="monolingual"):
        make_pattern(sib_binary, "ja0", 0, seed=0, condition="monolingual")


def test_stratified_sample_keeps_both_labels_in_16_rows(sib_binary):
    s = stratified_sample(sib_binary.target_train, 16, seed=3)
    assert len(s) == 16 and set(s["label"]) == {0, 1}


def test_csv_data_with_split_column(tmp_path):
    rows = [{"id": i, "text": f"t{i}", "label": "esg" if i % 2 else "other", "language": lang,
             "split": "test" if (lang == "ja" and i >= 8) else "train"}
            for lang in ("en", "ja") for i in range(12)]
    path = tmp_path / "mine.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    data = csv_data(path)
    assert data.label_names == ["esg", "other"] and len(data.target_test) == 4
    assert not set(data.source_train["id"]) & set(data.target_test["id"])  # en translations of test rows dropped
    bad = tmp_path / "bad.csv"
    pd.DataFrame([{"text": "x", "label": 1}]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="language"):
        csv_data(bad)


def test_training_rows_are_one_to_one_by_label_by_default_and_natural_on_request(sib_binary):
    """Paper B samples training sets 1:1 by label; the corpus's natural rate (176 of 701 positive) is an option."""
    for n_target in (16, 104):
        pat = make_pattern(sib_binary, f"ja{n_target}", n_target, seed=1, n_source=128, n_test=100,
                           target_reserve=104)
        for lang, n in (("en", 128), ("ja", n_target)):
            labels = pat.train.loc[pat.train["lang"] == lang, "label"]
            assert len(labels) == n and labels.sum() * 2 == n, (lang, n_target)
    natural = make_pattern(sib_binary, "ja104", 104, seed=1, n_source=128, balance="natural")
    en = natural.train.loc[natural.train["lang"] == "en", "label"]
    assert len(en) == 128 and 0.2 < en.mean() < 0.3
    with pytest.raises(ValueError, match="balance"):
        make_pattern(sib_binary, "ja16", 16, seed=0, balance="even")


@pytest.mark.parametrize("balance", ["balanced", "natural"])
def test_target_rows_are_never_translations_of_source_rows(sib_binary, balance):
    """SIB-200 rows are aligned by index_id across languages: a Japanese training row must not share its id with an
    English training row (it would be a translation of it) nor with a test row."""
    test_ids = set(sib_binary.target_test["id"])
    sources = set()
    for seed in (0, 1, 2):
        for n_target in (16, 104):
            pat = make_pattern(sib_binary, f"ja{n_target}", n_target, seed, n_source=128, n_test=100,
                               balance=balance, target_reserve=104)
            en = set(pat.train.loc[pat.train["lang"] == "en", "id"])
            ja = set(pat.train.loc[pat.train["lang"] == "ja", "id"])
            assert len(ja) == n_target and not en & ja and not (en | ja) & test_ids
            sources.add(frozenset(en))
    assert len(sources) == 1  # one English subset for every seed and pattern (the reserve does not depend on them)
    # the whole English side (the paper profile's 1024 rows, capped by the corpus): the reserve keeps rows for ja104
    full = make_pattern(sib_binary, "ja104", 104, 0, n_source=None, balance=balance, target_reserve=104)
    en, ja = (set(full.train.loc[full.train["lang"] == lang, "id"]) for lang in ("en", "ja"))
    assert len(ja) == 104 and not en & ja and len(en) >= 140
    with pytest.raises(ValueError, match="target rows left"):
        make_pattern(sib_binary, "ja104", 104, 0, n_source=None, balance=balance)
