"""Data loaders: HumanEval from the wheel, JHumanEval from the mirror, clear errors, alignment."""

from __future__ import annotations

import gzip
import json

import pytest

from cltrlib.data import DataNotFoundError, load_humaneval, load_jhumaneval, load_problems
from cltrlib.data.multilingual import load_pawsx, load_pud, load_sib200, sib200_labels


def test_humaneval_and_jhumaneval_pair_by_task_id():
    en, ja = load_humaneval(), load_jhumaneval()
    assert len(en) == len(ja) == 164
    assert [p.task_id for p in en] == [p.task_id for p in ja]
    assert {p.language for p in en} == {"en"} and {p.language for p in ja} == {"ja"}
    assert ja[0].source_task_id == "JHumanEval/0" and ja[0].task_id == "HumanEval/0"
    assert all(a.entry_point == b.entry_point for a, b in zip(en, ja, strict=True))


def test_missing_data_dir_error_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("CLTR_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as err:
        load_jhumaneval()
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "CLTR_DATA_DIR" in msg


def test_data_dir_override_and_bad_records(monkeypatch, tmp_path):
    src = tmp_path / "jhumaneval"
    src.mkdir()
    row = {"task_id": "JHumanEval/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}
    with gzip.open(src / "jhuman-eval.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    monkeypatch.setenv("CLTR_DATA_DIR", str(tmp_path))
    assert [p.task_id for p in load_jhumaneval()] == ["HumanEval/0"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "X/1", "prompt": "p"}) + "\n")
    with pytest.raises(ValueError, match="lacks field"):
        load_problems(bad)
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        load_problems(bad)
    with pytest.raises(DataNotFoundError, match="Unknown data set"):
        load_problems("no-such-set")


def test_multilingual_corpora_are_aligned():
    en, ja = load_sib200("en", "test"), load_sib200("ja", "test")
    assert list(en.index_id) == list(ja.index_id) and list(en.category) == list(ja.category)
    assert len(sib200_labels()) == 7
    pen, pja = load_pawsx("en"), load_pawsx("ja")
    assert len(pen) == 2000 and len(pja) < 2000  # 'NS' placeholders dropped
    merged = pja.merge(pen, on="row", suffixes=("_ja", "_en"))
    assert (merged.label_ja == merged.label_en).all()
    assert list(load_pud("en").sent_id) == list(load_pud("ja").sent_id)
    with pytest.raises(ValueError, match="no language"):
        load_pud("xx")
