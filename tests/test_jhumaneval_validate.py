"""Validator: finds the published JHumanEval's defects unaided, and each check fires on a planted defect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cltrlib.__main__ import main
from cltrlib.data import load_humaneval
from cltrlib.data.problems import JHUMANEVAL_RELPATH, read_jsonl, resolve_data_file
from cltrlib.jhumaneval.validate import untranslated_english, validate_file, validate_rows


@pytest.fixture(scope="module")
def published_report():
    return validate_file(resolve_data_file(JHUMANEVAL_RELPATH), timeout=60.0)  # solutions run in the sandbox


def _defects(report, check):
    return {d.task_id for d in report.defects if d.check == check}


def test_published_defects_are_found(published_report):
    r = published_report
    assert r.n_records == 164 and len(r.tasks) == 164
    assert _defects(r, "parse_error") == {"HumanEval/64"}          # '"""def vowels_count' fused by translation
    assert _defects(r, "canonical_fails") == {"HumanEval/64"}      # ... so its canonical solution cannot run
    assert _defects(r, "example_changed") == {"HumanEval/108", "HumanEval/109", "HumanEval/129", "HumanEval/145"}
    assert _defects(r, "bracket_mismatch") == {"HumanEval/129"}     # '(N >= 2))'
    assert not _defects(r, "example_missing")
    assert _defects(r, "untranslated_english") == {"HumanEval/143"}
    assert _defects(r, "untranslated_heading") == {"HumanEval/66", "HumanEval/99", "HumanEval/106"}
    assert _defects(r, "code_field_changed") == {"HumanEval/70"}   # canonical_solution lost its final newline
    assert len(_defects(r, "prompt_en_mismatch")) == 142           # prompt_en is not the real HumanEval prompt
    quote_style = {d.task_id for d in r.defects if d.check == "code_changed" and "'''…'''" in d.detail}
    assert {"HumanEval/69", "HumanEval/77", "HumanEval/157"} <= quote_style  # ''' became """
    assert not _defects(r, "missing_task") and not _defects(r, "duplicate_task")
    passed = sum(t.canonical == "passed" for t in r.tasks)
    assert passed == 163
    assert all(t.japanese_share > 0.2 for t in r.tasks)  # lowest: HumanEval/94, mostly number lists
    detail = next(d.detail for d in r.defects if d.task_id == "HumanEval/108" and d.check == "example_changed")
    assert "'>>> count_nums([-1, 11, -11]) == 1' became '>> count_nums([-1, 11, -11]) == 1'" == detail
    minor = next(d for d in r.defects if d.task_id == "HumanEval/2" and d.check == "prompt_en_mismatch")
    assert minor.severity == "minor" and "leading whitespace" in minor.detail


def test_report_is_json_and_a_table(published_report):
    d = published_report.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["n_defects"] == len(d["defects"]) and d["counts"]["parse_error"] == 1
    df = published_report.to_frame()
    assert list(df.columns) == ["task_id", "check", "severity", "detail"] and len(df) == d["n_defects"]


def _clean_rows(n=5):
    """Records that are exactly right: English prompts with their prose replaced by Japanese."""
    from cltrlib.jhumaneval.segment import reassemble, segment_prompt

    rows = []
    for p in load_humaneval()[:n]:
        sp = segment_prompt(p.prompt)
        ja = reassemble(sp, {i: "これは日本語の説明文です。" for i, _ in sp.text_segments()})
        rows.append({"task_id": p.task_id.replace("Human", "JHuman"), "prompt_en": p.prompt, "prompt": ja,
                     "entry_point": p.entry_point, "canonical_solution": p.canonical_solution, "test": p.test})
    return rows


def test_clean_rows_have_no_defects():
    ref = load_humaneval()[:5]
    rep = validate_rows(_clean_rows(), reference=ref)
    assert rep.ok, rep.defects
    assert all(t.canonical == "passed" for t in rep.tasks)


def test_each_check_fires_on_a_planted_defect():
    ref = load_humaneval()[:5]
    rows = _clean_rows()
    rows[0]["prompt"] = rows[0]["prompt"].replace("threshold: float", "threshold: int")       # signature
    rows[1]["prompt"] = rows[1]["prompt"].replace(">>> separate_paren_groups", ">>> separate_groups")
    rows[2]["prompt"] = rows[2]["prompt"].replace("これは日本語の説明文です。", "Return the decimal part of the number.", 1)
    rows[3]["canonical_solution"] = "    return False\n"                                           # fails the tests
    rows[4]["prompt"] = rows[4]["prompt"].replace("    >>>", "    >>", 1)
    rows.append(dict(rows[0]))                                                                     # duplicate
    del rows[2]["prompt_en"]                                                                      # schema
    rep = validate_rows(rows, reference=ref)
    got = {(d.task_id, d.check) for d in rep.defects}
    assert ("HumanEval/0", "code_changed") in got
    assert ("HumanEval/1", "example_changed") in got or ("HumanEval/1", "example_missing") in got
    assert ("HumanEval/2", "schema") in got
    assert ("HumanEval/2", "missing_task") in got  # a record without the schema is not counted as the task
    assert ("HumanEval/3", "canonical_fails") in got and ("HumanEval/3", "code_field_changed") in got
    assert ("HumanEval/4", "example_changed") in got
    assert ("HumanEval/0", "duplicate_task") in got
    rows = _clean_rows(3)
    rows[2]["prompt"] = rows[2]["prompt"].replace("これは日本語の説明文です。", "Return the decimal part of the number.", 1)
    rep = validate_rows(rows, reference=ref[:3], run_solutions=False)
    assert {(d.task_id, d.check) for d in rep.defects} == {("HumanEval/2", "untranslated_english")}


def test_untranslated_english_ignores_names_and_literals():
    assert untranslated_english(["私たちの太陽系にはVenus, Earth, Mars, Jupiterがある"], set()) == []
    assert untranslated_english(['"the number of odd elements in the', 'string" を返す'], set()) == []
    assert untranslated_english(["* sentence contains only letters"], {"sentence"}) == ["sentence contains only letters"]


def test_cli_validate_exit_codes_and_json(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _clean_rows(5)))
    # only 5 of 164 tasks: missing tasks are defects
    assert main(["jhumaneval", "validate", str(good), "--json", "--no-run"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"missing_task": 159}
    assert main(["jhumaneval", "validate", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_validate_published_lists_defects(capsys):
    rc = main(["jhumaneval", "validate", str(resolve_data_file(JHUMANEVAL_RELPATH)), "--no-run", "--ignore-minor"])
    assert rc == 1
    text = capsys.readouterr().out
    assert "HumanEval/64" in text and "parse_error" in text and Path(text.splitlines()[-1].split(":")[0]).name


def test_published_file_is_untouched():
    rows = read_jsonl(resolve_data_file(JHUMANEVAL_RELPATH))
    assert len(rows) == 164
