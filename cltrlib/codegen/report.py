"""Code-eval tables: pass@k with bootstrap CIs (long format), Paper A Tables 1 and 2, CLTR.

Tables are pure functions of stored evaluation results, so regenerating them takes
seconds. Paper numbers come from the model registry and are printed beside ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cltrlib.data import normalise_task_id
from cltrlib.metrics import bootstrap_ci, bootstrap_cltr_ci, cltr_or_nan, per_problem_pass_at_k
from cltrlib.models import PAPER_MODELS, get_spec

N_PAPER_PROBLEMS = 164


def load_results(summary: dict) -> pd.DataFrame:
    """Per-sample results of one evaluation run (task_id, passed, language, model, prompt_mode, ...)."""
    with open(summary["results"], encoding="utf-8") as fh:
        df = pd.DataFrame([json.loads(line) for line in fh if line.strip()])
    df["task_id"] = df["task_id"].astype(str).map(normalise_task_id)
    df["dataset"] = summary["dataset"]
    return df


def per_problem(df: pd.DataFrame, k: int = 1) -> pd.Series:
    """Per-problem pass@k (index task_id), the unit every CI resamples."""
    grouped = df.groupby("task_id")["passed"]
    ns, cs = grouped.size(), grouped.sum()
    return pd.Series(per_problem_pass_at_k(ns.tolist(), cs.astype(int).tolist(), k), index=ns.index)


def code_eval_table(summaries: Sequence[dict], ks: Sequence[int] = (1,), seed: int = 0) -> pd.DataFrame:
    """Long format: model, dataset, language, prompt_mode, n, k, pass_at_k, ci_low, ci_high, n_problems."""
    rows = []
    for s in summaries:
        df = load_results(s)
        n = int(df.groupby("task_id").size().min())
        for k in ks:
            if k > n:
                continue
            vals = per_problem(df, k)
            lo, hi = bootstrap_ci(vals.to_numpy(), seed=seed)
            rows.append({"model": s["model"], "dataset": s["dataset"], "language": str(df["language"].iloc[0]),
                         "prompt_mode": s["prompt_mode"], "n": n, "k": k, "pass_at_k": float(vals.mean()),
                         "ci_low": lo, "ci_high": hi, "n_problems": int(vals.size)})
    return pd.DataFrame(rows)


def table1(code_eval: pd.DataFrame) -> pd.DataFrame:
    """Paper A Table 1 layout (pass@1 %): the paper's models with their numbers, then ours."""
    rows = [{"Model": m.name, "Size": m.size, "source": "paper", "prompt_mode": "",
             "HumanEval": m.paper_humaneval, "JHumanEval": m.paper_jhumaneval}
            for m in PAPER_MODELS.values() if "A1" in m.paper_tables]
    k1 = code_eval[code_eval.k == 1]
    for (model, mode), grp in k1.groupby(["model", "prompt_mode"], sort=False):
        by_lang = grp.set_index("language")["pass_at_k"]
        rows.append({"Model": model, "Size": get_spec(model).size, "source": "ours", "prompt_mode": mode,
                     "HumanEval": 100 * by_lang.get("en", np.nan), "JHumanEval": 100 * by_lang.get("ja", np.nan)})
    return pd.DataFrame(rows)


def paper_table2() -> pd.DataFrame:
    """Paper A Table 2 recomputed from counts out of 164 (CLTR from unrounded rates)."""
    rows = []
    for m in PAPER_MODELS.values():
        if "A2" not in m.paper_tables:
            continue
        base = PAPER_MODELS.get(m.base) if m.base else None
        row = {"Model": m.name, "En": m.en, "Ja": m.ja, "Code": m.code, "HumanEval": m.paper_humaneval,
               "JHumanEval": m.paper_jhumaneval, "CLTR (paper)": m.paper_cltr, "CLTR (recomputed)": np.nan}
        if base is not None:
            hp, lp, after = (round(v * N_PAPER_PROBLEMS / 100) for v in
                             (base.paper_humaneval, base.paper_jhumaneval, m.paper_jhumaneval))
            row["CLTR (recomputed)"] = cltr_or_nan(hp, lp, after)
        rows.append(row)
    return pd.DataFrame(rows)


def cltr_table(summaries: Sequence[dict], pairs: Sequence[tuple[str, str]], prompt_mode: str | None = None,
               seed: int = 0) -> pd.DataFrame:
    """CLTR with paired bootstrap CIs for (base, after) model pairs evaluated here.

    Pairs are matched on problems present in all four runs (base EN/JA, after EN/JA).
    """
    per: dict[tuple[str, str], pd.Series] = {}
    for s in summaries:
        if prompt_mode is None or s["prompt_mode"] == prompt_mode:
            df = load_results(s)
            per[(s["model"], str(df["language"].iloc[0]))] = per_problem(df, 1)
    rows = []
    for base, after in pairs:
        keys = [(base, "en"), (base, "ja"), (after, "en"), (after, "ja")]
        if any(k not in per for k in keys):
            missing = [f"{m}/{lang}" for m, lang in keys if (m, lang) not in per]
            raise ValueError(f"CLTR pair ({base}, {after}) lacks evaluation runs: {missing}")
        common = per[keys[0]].index
        for k in keys[1:]:
            common = common.intersection(per[k].index)
        hp, lp, hp2, lp2 = (per[k].loc[common].to_numpy() for k in keys)
        point, lo, hi, undef = bootstrap_cltr_ci(hp, lp, lp2, seed=seed)
        rows.append({"source": "ours", "base": base, "model": after, "Hp": hp.mean(), "Lp": lp.mean(),
                     "Hp_after": hp2.mean(), "Lp_after": lp2.mean(), "cltr": point, "ci_low": lo, "ci_high": hi,
                     "undefined_share": undef, "n_problems": len(common)})
    return pd.DataFrame(rows)


def language_gap_table(summaries: Sequence[dict], seed: int = 0) -> pd.DataFrame:
    """EN minus JA pass@1 per model and prompt mode, with a paired bootstrap CI (the Hp - Lp gap)."""
    from cltrlib.metrics import bootstrap_diff_ci

    per: dict[tuple[str, str], dict[str, pd.Series]] = {}
    for s in summaries:
        df = load_results(s)
        per.setdefault((s["model"], s["prompt_mode"]), {})[str(df["language"].iloc[0])] = per_problem(df, 1)
    rows = []
    for (model, mode), langs in per.items():
        if {"en", "ja"} <= set(langs):
            common = langs["en"].index.intersection(langs["ja"].index)
            diff, lo, hi = bootstrap_diff_ci(langs["en"].loc[common].to_numpy(), langs["ja"].loc[common].to_numpy(),
                                             seed=seed)
            rows.append({"model": model, "prompt_mode": mode, "Hp": langs["en"].loc[common].mean(),
                         "Lp": langs["ja"].loc[common].mean(), "gap": diff, "ci_low": lo, "ci_high": hi,
                         "n_problems": len(common)})
    return pd.DataFrame(rows)


def cltr_csv(paper_table2_df: pd.DataFrame, ours: pd.DataFrame | None, gap: pd.DataFrame) -> pd.DataFrame:
    """The ``cltr.csv`` table of notebook 03: Paper A Table 2 rows (source "paper"), our CLTR pairs if any, then our
    EN-JA gaps (source "ours (EN-JA gap)")."""
    paper_rows = paper_table2_df.assign(source="paper").rename(columns={"Model": "model", "CLTR (recomputed)": "cltr"})
    return pd.concat([paper_rows[["source", "model", "HumanEval", "JHumanEval", "cltr", "CLTR (paper)"]],
                      ours, gap.assign(source="ours (EN-JA gap)")], ignore_index=True)
