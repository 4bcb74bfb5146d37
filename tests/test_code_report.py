"""Code-eval tables: run keys, one unit, exact intervals, paired statistics (hand counts), CLTR's joint bootstrap.

The tables are pure functions of stored per-sample results; these tests write such result files by hand (known
outcomes per problem), so every expected number is a hand count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cltrlib.codegen import report
from cltrlib.metrics import bootstrap_cltr_ci
from cltrlib.models import SMOLLM2

N = 20


def _run(tmp: Path, model: str, dataset: str, language: str, mode: str, solved: set[int], n_problems: int = N,
         n: int = 1) -> dict:
    """A stored evaluation run's summary with per-sample results: problem i passes iff i is in ``solved``."""
    path = tmp / f"{model.replace('/', '_')}-{dataset}-{mode}-{n}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n_problems):
            for j in range(n):
                fh.write(json.dumps({"task_id": f"HumanEval/{i}", "sample_idx": j, "language": language,
                                     "passed": i in solved}) + "\n")
    return {"model": model, "dataset": dataset, "prompt_mode": mode, "n": n, "temperature": 0.0 if n == 1 else 0.8,
            "results": str(path)}


EN_SOLVED = {0, 1, 2, 3, 4, 5, 6, 7}  # 8 of 20
JA_SOLVED = {0, 1, 8, 9, 10}  # 5 of 20: both solve 0, 1; only EN 2..7 (6); only JA 8, 9, 10 (3)


def test_runs_differing_only_in_prompt_mode_or_dataset_all_appear(tmp_path):
    summaries = [
        _run(tmp_path, SMOLLM2, "humaneval", "en", "chat", EN_SOLVED),
        _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "chat", JA_SOLVED),
        _run(tmp_path, SMOLLM2, "jhumaneval-rebuilt", "ja", "chat", JA_SOLVED | {11}),
        _run(tmp_path, SMOLLM2, "humaneval", "en", "completion", set()),
        _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "completion", set()),
    ]
    ce = report.code_eval_table(summaries)
    assert len(ce) == 5 and len(ce.drop_duplicates(list(report.RUN_KEY))) == 5
    t1 = report.table1(ce)
    ours = t1[t1.source == "ours"]
    assert len(ours) == 3
    assert set(zip(ours.prompt_mode, ours["JA data set"], strict=True)) == {
        ("chat", "jhumaneval"), ("chat", "jhumaneval-rebuilt"), ("completion", "jhumaneval")}
    gap = report.language_gap_table(summaries)
    assert len(gap) == 3
    rebuilt = gap[gap["JA data set"] == "jhumaneval-rebuilt"].iloc[0]
    assert rebuilt["JA pass@1 (%)"] == pytest.approx(30.0) and rebuilt["EN pass@1 (%)"] == pytest.approx(40.0)
    comp = gap[gap.prompt_mode == "completion"].iloc[0]
    assert comp["EN-JA gap (pt)"] == 0 and comp["only EN"] == 0 and comp["McNemar p"] == 1.0


def test_two_runs_with_one_key_are_an_error_not_a_silent_replacement(tmp_path):
    a = _run(tmp_path, SMOLLM2, "humaneval", "en", "chat", EN_SOLVED)
    b = dict(a, results=str(tmp_path / "copy.jsonl"))
    Path(b["results"]).write_text(Path(a["results"]).read_text())
    with pytest.raises(ValueError, match="share the key"):
        report.code_eval_table([a, b])


def test_pass1_with_one_sample_gets_the_exact_interval_in_percent(tmp_path):
    zero = _run(tmp_path, SMOLLM2, "humaneval", "en", "completion", set())
    row = report.code_eval_table([zero]).iloc[0]
    # A percentile bootstrap of 0/20 collapses to [0, 0]; Clopper-Pearson's exact interval is [0, 16.8]%.
    assert row["pass@k (%)"] == 0 and row["ci_low (%)"] == 0
    assert row["ci_high (%)"] == pytest.approx(16.84, abs=0.01)
    assert row["ci_method"] == report.CI_EXACT and row["solved"] == 0
    eight = report.code_eval_table([_run(tmp_path, SMOLLM2, "humaneval", "en", "chat", EN_SOLVED)]).iloc[0]
    assert eight["pass@k (%)"] == pytest.approx(40.0)
    assert (eight["ci_low (%)"], eight["ci_high (%)"]) == pytest.approx((19.12, 63.95), abs=0.01)  # scipy binomtest


def test_many_samples_use_the_bootstrap(tmp_path):
    row = report.code_eval_table([_run(tmp_path, SMOLLM2, "humaneval", "en", "chat", EN_SOLVED, n=3)]).iloc[0]
    assert row["ci_method"] == report.CI_BOOTSTRAP and np.isnan(row["solved"])


def test_discordant_counts_and_mcnemar_against_a_hand_count(tmp_path):
    summaries = [_run(tmp_path, SMOLLM2, "humaneval", "en", "chat", EN_SOLVED),
                 _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "chat", JA_SOLVED)]
    row = report.language_gap_table(summaries).iloc[0]
    assert (row["only EN"], row["only JA"]) == (6, 3)
    # Exact McNemar: 2 * P(X <= 3), X ~ Binomial(9, 1/2) = 2 * (1 + 9 + 36 + 84) / 512.
    assert row["McNemar p"] == pytest.approx(2 * 130 / 512)
    assert row["EN-JA gap (pt)"] == pytest.approx(15.0)
    assert row["gap CI low (pt)"] <= 15.0 <= row["gap CI high (pt)"]
    assert row["gap CI low (pt)"] <= 0 and not row["CLTR bounded"]  # 9 discordant problems cannot bound the gap


def test_cltr_bootstrap_resamples_the_runs_jointly():
    rng = np.random.default_rng(1)
    hp = rng.random(40) < 0.6
    lp = hp & (rng.random(40) < 0.5)
    # L'p equals Hp problem by problem: full transfer. Resampled jointly, every replicate's CLTR is exactly 1;
    # resampled independently it would scatter.
    point, lo, hi, undefined = bootstrap_cltr_ci(hp.astype(float), lp.astype(float), hp.astype(float))
    assert point == pytest.approx(1.0) and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    assert undefined == 0.0


def test_cltr_rows_by_pair_mode_and_dataset_with_unbounded_note(tmp_path):
    after = "my-org/ja-continued"
    summaries = [
        _run(tmp_path, SMOLLM2, "humaneval", "en", "chat", set(range(12))),
        _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "chat", {0, 1}),
        _run(tmp_path, after, "humaneval", "en", "chat", set(range(12))),
        _run(tmp_path, after, "jhumaneval", "ja", "chat", set(range(7))),
        _run(tmp_path, SMOLLM2, "jhumaneval-rebuilt", "ja", "chat", set(range(11))),
        _run(tmp_path, after, "jhumaneval-rebuilt", "ja", "chat", set(range(12))),
    ]
    table = report.cltr_table(summaries, [(SMOLLM2, after)])
    assert len(table) == 2
    pub = table[table["JA data set"] == "jhumaneval"].iloc[0]
    assert pub["CLTR"] == pytest.approx((7 - 2) / (12 - 2))  # hand count
    assert pub["CLTR CI low"] <= pub["CLTR"] <= pub["CLTR CI high"] and pub["CLTR bounded"]
    assert pub["Hp (%)"] == pytest.approx(60.0) and pub["L'p (%)"] == pytest.approx(35.0)
    reb = table[table["JA data set"] == "jhumaneval-rebuilt"].iloc[0]
    assert reb["CLTR"] == pytest.approx(1.0) and not reb["CLTR bounded"]  # 12 vs 11: gap CI includes 0
    assert reb["note"] == report.UNBOUNDED_NOTE
    with pytest.raises(ValueError, match="lacks evaluation runs"):
        report.cltr_table(summaries, [(SMOLLM2, "missing-model")])


def test_cltr_csv_is_in_percent_throughout(tmp_path):
    summaries = [_run(tmp_path, SMOLLM2, "humaneval", "en", "chat", {0}),
                 _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "chat", set())]
    table = report.cltr_csv(report.paper_table2(), None, report.language_gap_table(summaries))
    assert all(c.endswith(("(%)", "(pt)")) for c in table.columns if "pass@1" in c or "gap" in c)
    paper = table[table.source == "paper"].set_index("model")
    assert paper.loc["swallow-7b-instruct-hf", "JA pass@1 (%)"] == pytest.approx(1.83)
    ours = table[table.source != "paper"].iloc[0]
    assert ours["EN pass@1 (%)"] == pytest.approx(5.0) and ours["EN-JA gap (pt)"] == pytest.approx(5.0)
    assert isinstance(table, pd.DataFrame)


def test_soft_gap_sits_beside_the_pass1_gap_on_the_same_problems(tmp_path):
    """Real SmolLM2 log-likelihoods on the first 2 problems (stored runs), beside a hand-made pass@1 gap."""
    summaries = [dict(_run(tmp_path, SMOLLM2, "humaneval", "en", "chat", {0}, n_problems=2), limit=2),
                 dict(_run(tmp_path, SMOLLM2, "jhumaneval", "ja", "chat", set(), n_problems=2), limit=2)]
    gap = report.language_gap_table(summaries)
    assert gap.iloc[0]["first N"] == 2
    row = report.with_soft_gap(gap).iloc[0]
    assert row["log-lik n_problems"] == 2 and row["EN-JA gap (pt)"] == pytest.approx(50.0)
    assert row["log-lik CI low"] <= row["log-lik gap (nats/token)"] <= row["log-lik CI high"]
    assert row["pass@1 gap rel. CI width"] == pytest.approx((row["gap CI high (pt)"] - row["gap CI low (pt)"]) / 50)
    assert row["CI width ratio"] == pytest.approx(row["pass@1 gap rel. CI width"] / row["log-lik rel. CI width"])


def test_only_the_published_jhumaneval_64_prompt_does_not_parse():
    assert report.unparsable_prompts("jhumaneval") == ["HumanEval/64"]
    assert report.unparsable_prompts("humaneval") == []


def test_cltr_pairs_a_completing_base_with_a_chatting_successor(tmp_path):
    after = "my-org/ja-chat"
    summaries = [_run(tmp_path, SMOLLM2, "humaneval", "en", "completion", set(range(10))),
                 _run(tmp_path, SMOLLM2, "jhumaneval", "ja", "completion", set(range(5))),
                 _run(tmp_path, after, "humaneval", "en", "chat", set(range(10))),
                 _run(tmp_path, after, "jhumaneval", "ja", "chat", set(range(3)))]
    row = report.cltr_table(summaries, [(SMOLLM2, after)]).iloc[0]
    assert row["prompt_mode"] == "completion->chat" and row["CLTR"] == pytest.approx((3 - 5) / (10 - 5))
