"""Our Paper A Table 2 from continual pre-training: the arithmetic on known per-problem outcomes, and the whole
stage (corpus, contamination check, training, every evaluation) on tiny real runs of the Llama-2 stand-in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cltrlib.metrics import cltr
from cltrlib.pretrain import report
from cltrlib.pretrain.pipeline import StageResult

BASE = "some-base"
TASKS = [f"HumanEval/{i}" for i in range(8)]


def _summary(tmp_path, name: str, passed: list[int], lang: str) -> dict:
    path = tmp_path / f"{name}-{lang}.jsonl"
    path.write_text("".join(json.dumps({"task_id": t, "passed": bool(p), "language": lang}) + "\n"
                            for t, p in zip(TASKS, passed, strict=True)))
    return {"results": str(path), "dataset": "humaneval" if lang == "en" else "jhumaneval", "model": name,
            "prompt_mode": "completion"}


def _soft(values: list[float], lang: str) -> pd.DataFrame:
    return pd.DataFrame({"task_id": TASKS, "language": lang, "mean_logprob": values})


def _checkpoint_rows() -> pd.DataFrame:
    rows = []
    for cond, tokens in (("base", 0), ("ja", 100), ("ja", 200), ("en", 200)):
        rows.append({"base": BASE, "condition": cond, "tokens": tokens, "folder": "x",
                     **{f"ppl_{lang}{s}": v for lang in ("ja", "en") for s, v in (("", 10.0), ("_low", 9.0),
                                                                                    ("_high", 11.0))}})
    return pd.DataFrame(rows)


@pytest.fixture()
def known(tmp_path) -> StageResult:
    """Base solves 6/8 in English and 2/8 in Japanese; after ja 4/8 Japanese, after the en control 2/8."""
    p1 = {(BASE, "base"): {"en": _summary(tmp_path, "b", [1, 1, 1, 1, 1, 1, 0, 0], "en"),
                           "ja": _summary(tmp_path, "b", [1, 1, 0, 0, 0, 0, 0, 0], "ja")},
          (BASE, "ja"): {"en": _summary(tmp_path, "j", [1, 1, 1, 1, 1, 0, 0, 0], "en"),
                         "ja": _summary(tmp_path, "j", [1, 1, 1, 1, 0, 0, 0, 0], "ja")},
          (BASE, "en"): {"en": _summary(tmp_path, "e", [1, 1, 1, 1, 1, 1, 1, 0], "en"),
                         "ja": _summary(tmp_path, "e", [1, 0, 1, 0, 0, 0, 0, 0], "ja")}}
    soft = {(BASE, "base", 0): {"en": _soft([-1.0] * 8, "en"), "ja": _soft([-2.0] * 8, "ja")},
            (BASE, "ja", 100): {"en": _soft([-1.0] * 8, "en"), "ja": _soft([-1.8] * 8, "ja")},
            (BASE, "ja", 200): {"en": _soft([-1.1] * 8, "en"), "ja": _soft([-1.5] * 8, "ja")},
            (BASE, "en", 200): {"en": _soft([-0.9] * 8, "en"), "ja": _soft([-1.9] * 8, "ja")}}
    return StageResult(settings=None, runs=[], checkpoints=_checkpoint_rows(), pass1=p1, soft=soft)


def test_table2_from_known_outcomes(known):
    t = report.cltr_table(known).set_index("condition")
    assert list(t.index) == ["base", "ja", "en"]
    assert t.loc["base", "Hp"] == 6 / 8 and t.loc["base", "Lp"] == 2 / 8 and np.isnan(t.loc["base", "cltr"])
    assert t.loc["ja", "L'p"] == 4 / 8 and t.loc["ja", "H'p"] == 5 / 8 and t.loc["ja", "tokens"] == 200
    assert t.loc["ja", "cltr"] == pytest.approx(cltr(6 / 8, 2 / 8, 4 / 8)) == pytest.approx(0.5)
    assert t.loc["en", "cltr"] == pytest.approx(0.0)
    assert t.loc["ja", "cltr_low"] <= t.loc["ja", "cltr"] <= t.loc["ja", "cltr_high"]
    assert t.loc["ja", "L'p_low"] < 0.5 < t.loc["ja", "L'p_high"]  # Wilson interval of 4/8
    # soft CLTR from the final checkpoint (200 tokens), not the middle one: (-1.5 - -2) / (-1 - -2)
    assert t.loc["ja", "soft_cltr"] == pytest.approx(0.5) and t.loc["en", "soft_cltr"] == pytest.approx(0.1)
    md = report.markdown_table(report.cltr_table(known))
    assert md.loc[1, "JHumanEval % (Lp / L'p)"].startswith("50.0 [") and md.loc[1, "CLTR"].startswith("0.50 [")


def test_contrast_with_the_english_control(known):
    c = report.contrast_table(known).set_index("condition")
    assert list(c.index) == ["ja"]
    assert c.loc["ja", "L'p_diff"] == pytest.approx(2 / 8)  # 4/8 - 2/8, same problems
    assert (c.loc["ja", "only_condition"], c.loc["ja", "only_control"]) == (2, 0)  # tasks 1, 3 vs none (2 both)
    assert c.loc["ja", "mcnemar_p"] == pytest.approx(0.5)
    assert c.loc["ja", "soft_L'_diff"] == pytest.approx(0.4)
    # constant per-problem differences: the bootstrap CI collapses onto the point, clearly beyond zero
    assert "beyond the CI" in report.contrast_sentences(report.contrast_table(known))


@pytest.mark.usefixtures("standins_on")
def test_stage_on_tiny_real_runs(tmp_path, monkeypatch):
    """Corpus, contamination report, two conditions trained, every checkpoint evaluated, pass@1 through the sandbox:
    the table's numbers are the stored runs' numbers."""
    from cltrlib.codegen.report import load_results
    from cltrlib.pretrain import pipeline
    from cltrlib.study import study

    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    s = study("rehearsal").pretrain.override(conditions=("ja", "en"), tokens=256, seq_len=64, checkpoints=2,
                                             soft_limit=2, pass1_limit=2, pass1_conditions=("ja", "en"),
                                             max_new_tokens=8, ppl_blocks=2)
    result = pipeline.run_stage(s, progress=False)
    ck = result.checkpoints
    assert list(ck.condition) == ["base", "ja", "ja", "en", "en"] and list(ck.tokens) == [0, 128, 256, 128, 256]
    assert (ck.ppl_ja_low <= ck.ppl_ja).all() and (ck.ppl_ja <= ck.ppl_ja_high).all()
    table = report.cltr_table(result).set_index("condition")
    ja_final = result.soft[(s.models[0], "ja", 256)]["ja"]
    assert table.loc["ja", "soft_L'"] == pytest.approx(ja_final.mean_logprob.mean())
    lp_after = load_results(result.pass1[(s.models[0], "ja")]["ja"]).passed.mean()
    assert table.loc["ja", "L'p"] == pytest.approx(lp_after) and table.loc["ja", "n_problems"] == 2
    contamination = pipeline.contamination_table(result.sources)
    assert set(contamination.source) == {"ja", "en"} and (contamination.contaminated_after == 0).all()
    again = pipeline.run_stage(s, progress=False)  # everything read back from the store
    pd.testing.assert_frame_equal(again.checkpoints, ck)


def test_rows_for_notebook_03(known, tmp_path):
    from cltrlib.tables import write_table

    table = report.cltr_table(known)
    write_table(table, "pretrain_cltr", out_dir=tmp_path)
    rows = report.table2_rows(tmp_path / "pretrain_cltr.csv").set_index("condition")
    assert list(rows.index) == ["ja", "en"] and rows.loc["ja", "model"] == f"{BASE} + ja"
    assert rows.loc["ja", "L'p (%)"] == pytest.approx(50.0) and rows.loc["ja", "CLTR"] == pytest.approx(0.5)
    assert report.table2_rows(tmp_path / "missing.csv").empty
