"""The round-trip check's bookkeeping without a model: paragraphs of a docstring's prose, where and when a stored
back-translation is read back, and the chrF table against HumanEval's English (the back-translation through the
real server is tested in test_translation_server.py)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from cltrlib.data import load_humaneval
from cltrlib.jhumaneval import experiment as ex
from cltrlib.jhumaneval.mt import matching_build
from cltrlib.jhumaneval.roundtrip import english_prose, paragraphs, roundtrip_config, roundtrip_path, roundtrip_scores
from cltrlib.models import GEMMA3


def test_paragraphs_drop_examples_and_keep_blank_line_breaks():
    by_id = {p.task_id: p for p in load_humaneval()}
    p = by_id["HumanEval/1"]  # two prose paragraphs? at least one, and no doctest line
    paras = paragraphs(p.prompt, p)
    assert paras and not any(">>>" in x for x in paras) and all("\n" not in x for x in paras)
    assert " ".join(paras).split() == english_prose()["HumanEval/1"].split()
    fake = p.prompt.replace("Separate groups", "\n    Separate groups")  # a blank line starts a new paragraph
    assert len(paragraphs(fake, p)) == len(paras) + 1


def test_stored_round_trip_is_read_only_for_the_same_source_and_translator(tmp_path):
    src = tmp_path / "jhumaneval-x-mt.jsonl"
    src.write_text('{"task_id": "JHumanEval/0"}\n')
    path = roundtrip_path(src, GEMMA3, tmp_path)
    assert path.name == f"jhumaneval-x-mt.roundtrip-{GEMMA3}.jsonl"
    assert roundtrip_path(tmp_path / "jhuman-eval.jsonl.gz", GEMMA3, tmp_path).name.startswith("jhuman-eval.roundtrip")
    cfg = roundtrip_config(GEMMA3, src)
    assert cfg["direction"] == "ja->en" and cfg["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    path.write_text('{"task_id": "HumanEval/0", "ja": ["x"], "en": ["y"]}\n')
    (tmp_path / f"{path.name}.json").write_text(json.dumps(
        {"config": cfg, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
    assert matching_build(path, roundtrip_config(GEMMA3, src)) is not None
    src.write_text('{"task_id": "JHumanEval/1"}\n')  # the build changed: its round trip is stale
    assert matching_build(path, roundtrip_config(GEMMA3, src)) is None


def test_scores_rank_a_faithful_back_translation_above_a_poor_one():
    en = english_prose()
    tasks = ["HumanEval/0", "HumanEval/2", "HumanEval/13", "HumanEval/23", "HumanEval/27", "HumanEval/30"]
    meta = {"n_paragraphs": 6, "n_passed_through": 0, "config": {"model": GEMMA3, "mode": "completion"}}
    good = {"rows": [{"task_id": t, "ja": ["日本語"], "en": [en[t]]} for t in tasks], "meta": meta}
    poor = {"rows": [{"task_id": t, "ja": ["日本語"], "en": [" ".join(en[t].split()[:3])]} for t in tasks],
            "meta": {**meta, "n_passed_through": 2}}
    poor["rows"][0] = {"task_id": tasks[0], "ja": [en[tasks[0]]], "en": [en[tasks[0]]]}  # left in English
    corpus, per_task = roundtrip_scores({"published": good, "MT": poor}, n_boot=200)
    r = corpus.set_index("build")
    assert r.loc["published", "n_tasks"] == 5  # HumanEval/13 is a shot task
    assert r.loc["published", "chrF"] > 99 and r.loc["MT", "chrF"] < r.loc["published", "ci_low"]
    assert r.loc["MT", "ci_low"] <= r.loc["MT", "chrF"] <= r.loc["MT", "ci_high"]
    assert set(per_task.columns) >= {"task_id", "build", "chrf", "back-translation", "English"}
    text = ex.roundtrip_sentence(corpus)
    assert r.loc["MT", "diff CI high"] < 0 and pd.isna(r.loc["published", "minus published"])
    assert r.loc["MT", "chrF, passed-through as empty"] < r.loc["MT", "chrF"]  # its English-left-in paragraph
    assert "worse than the published set" in text and "2 of 6 paragraphs left in English" in text


def test_stored_round_trips_hold_no_japanese_and_realign_with_their_source():
    """The committed files carry only the English side (the published set's text is the data mirror's); reading
    re-derives the paragraphs from the source, and a source whose paragraphs no longer align is refused."""
    from cltrlib.jhumaneval.mt import BUILDS_DIR
    from cltrlib.jhumaneval.roundtrip import with_paragraphs

    stored = sorted(BUILDS_DIR.glob("*.roundtrip-*.jsonl"))
    assert stored, "no committed round trip"
    for path in stored:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert all(set(r) == {"task_id", "en"} for r in rows), path
    build = BUILDS_DIR / "jhumaneval-gemma3-270m-mt.jsonl"
    rows = [json.loads(line) for line in (BUILDS_DIR / f"jhumaneval-gemma3-270m-mt.roundtrip-{GEMMA3}.jsonl")
            .read_text(encoding="utf-8").splitlines()]
    full = with_paragraphs(rows, build)
    assert [len(r["ja"]) for r in full] == [len(r["en"]) for r in rows]
    with pytest.raises(ValueError, match="delete the .roundtrip file"):
        with_paragraphs([{"task_id": rows[0]["task_id"], "en": rows[0]["en"] + ["extra"]}], build)
