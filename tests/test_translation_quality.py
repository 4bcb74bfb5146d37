"""chrF of builds against the published JHumanEval, the worst-task view and the experiment's pass@1 table (pure
functions on the published file and fixed outcomes; no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cltrlib.data.problems import JHUMANEVAL_RELPATH, load_humaneval, read_jsonl, resolve_data_file
from cltrlib.jhumaneval.backends import SHOT_TASKS
from cltrlib.jhumaneval.experiment import findings, pass1_table
from cltrlib.jhumaneval.quality import chrf_scores, prose, side_by_side_html, worst_tasks
from cltrlib.metrics import clopper_pearson, mcnemar_exact

pytest.importorskip("sacrebleu")


@pytest.fixture(scope="module")
def published():
    return read_jsonl(resolve_data_file(JHUMANEVAL_RELPATH))


def test_prose_leaves_out_examples_and_code(published):
    he = load_humaneval()
    text = prose(published[0]["prompt"], he[0])
    assert "判定する" in text and ">>>" not in text and "def " not in text
    assert prose(he[0].prompt, he[0]).startswith("Check if in given list of numbers")


def test_chrf_identity_floor_and_excluded_shots(published):
    english = [{"task_id": r["task_id"], "prompt": r["prompt_en"]} for r in published]
    damaged = [dict(r, prompt=r["prompt"].replace("返す", "戻る")) for r in published]
    corpus, per = chrf_scores({"same": published, "english": english, "damaged": damaged}, published,
                              exclude=SHOT_TASKS, n_boot=200)
    c = corpus.set_index("build")
    assert (c["n_tasks"] == 164 - len(SHOT_TASKS)).all()
    assert c.loc["same", "chrF"] == pytest.approx(100) and c.loc["same", "ci_low"] == pytest.approx(100)
    assert c.loc["english", "chrF"] < 20 < c.loc["damaged", "chrF"] < 100
    assert c.loc["damaged", "ci_low"] <= c.loc["damaged", "chrF"] <= c.loc["damaged", "ci_high"]
    assert not set(per["task_id"]) & set(SHOT_TASKS)
    worst = worst_tasks(per, "damaged", n=5, others=["english"])
    assert len(worst) == 5 and list(worst.columns) == ["task_id", "chrF", "English", "published", "damaged", "english"]
    scores = per[per["build"] == "damaged"].set_index("task_id")["chrf"]
    assert scores.loc[worst["task_id"]].tolist() == sorted(scores)[:5]
    html = side_by_side_html(worst, "worst")
    assert html.startswith("<!doctype html>") and "<br>" in html


def test_pass1_table_is_paired_and_exact():
    idx = [f"HumanEval/{i}" for i in range(10)]
    en = pd.Series([1, 1, 1, 0, 0, 0, 0, 0, 0, 1], index=idx, dtype=float)
    pub = pd.Series([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], index=idx, dtype=float)
    mt = pd.Series([0, 0, 1, 1, 0, 0, 0, 0, 0, 0], index=idx, dtype=float)
    t = pass1_table("m", "chat", {"english": en, "published": pub, "mt": mt}).set_index("data set")
    assert t.loc["english", "solved"] == 4 and t.loc["mt", "solved"] == 2
    lo, hi = clopper_pearson(2, 10)
    assert t.loc["mt", "CP low (%)"] == pytest.approx(100 * lo) and t.loc["mt", "CP high (%)"] == pytest.approx(100 * hi)
    assert (t.loc["mt", "only EN"], t.loc["mt", "only this"]) == (3, 1)
    assert (t.loc["mt", "only published"], t.loc["mt", "only this "]) == (1, 1)
    assert t.loc["mt", "McNemar p vs published"] == pytest.approx(mcnemar_exact(1, 1))
    assert np.isnan(t.loc["published", "McNemar p vs published"])
    text = findings(pd.DataFrame([{"build": "a", "chrF": 50.0, "ci_low": 40.0, "ci_high": 60.0, "n_tasks": 160},
                                  {"build": "b", "chrF": 9.0, "ci_low": 8.0, "ci_high": 10.0, "n_tasks": 160}]),
                    None, t.reset_index(), None)
    assert "a 50.0 [40.0, 60.0]" in text and "mt 2/10 = 20.00%" in text
    rounds = pd.DataFrame([{"stage": "round 0", "segments": 9, "tasks": 5, "copied_demonstration": 4},
                           {"stage": "round 1", "segments": 8, "tasks": 5, "copied_demonstration": 3},
                           {"stage": "post-edited", "segments": 6, "tasks": 4, "copied_demonstration": 0}])
    text = findings(pd.DataFrame([{"build": "a", "chrF": 50.0, "ci_low": 40.0, "ci_high": 60.0, "n_tasks": 160},
                                  {"build": "b", "chrF": 9.0, "ci_low": 8.0, "ci_high": 10.0, "n_tasks": 160}]),
                    None, None, rounds)
    assert "flagged segments 9 (in 5 tasks)" in text and "**Copied demonstrations**: 4 raw segments" in text
    assert "3 after the repair round(s), 0 after the post-edit" in text
