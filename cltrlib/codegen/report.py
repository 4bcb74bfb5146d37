"""Code-eval tables: pass@k with intervals (long format), Paper A Tables 1 and 2, the EN-JA gap and CLTR.

Tables are pure functions of stored evaluation results, so regenerating them takes seconds. Paper numbers come from
the model registry and are printed beside ours.

Conventions every table here follows:

- **One unit: percent** (as the paper), column names ending in ``(%)``; gaps in percentage points ``(pt)``. CLTR is a
  ratio and has no unit.
- **Every run is keyed by (model, data set, prompt mode, n, temperature)** (``RUN_KEY``), never by (model, language):
  a second Japanese data set (the rebuilt JHumanEval) or a second prompt mode is a row of its own, and two stored runs
  with the same key are an error, not a silent replacement. An English run pairs with every Japanese run of the same
  (model, prompt mode, n, temperature).
- **Intervals that do not collapse at small counts**: pass@1 with n=1 is a binomial rate over problems, so its 95%
  interval is exact (Clopper-Pearson; a percentile bootstrap of 0/20 gives [0, 0], the exact interval [0, 16.8]%).
  pass@k with n>1 averages per-problem estimates: percentile bootstrap over problems.
- **EN vs JA on the same problems is paired**: the gap carries a paired bootstrap CI, the discordant counts (solved
  only from the English / only from the Japanese prompt) and the exact McNemar p-value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cltrlib.data import normalise_task_id
from cltrlib.metrics import (
    bootstrap_ci,
    bootstrap_cltr_ci,
    bootstrap_diff_ci,
    clopper_pearson,
    cltr_or_nan,
    discordant_counts,
    mcnemar_exact,
    per_problem_pass_at_k,
)
from cltrlib.models import PAPER_MODELS, get_spec

N_PAPER_PROBLEMS = 164
RUN_KEY = ("model", "dataset", "prompt_mode", "n", "temperature")
# What an EN run and a JA run must share to be compared (the same model, asked the same way).
PAIR_KEY = ("model", "prompt_mode", "n", "temperature")
CI_EXACT = "Clopper-Pearson (exact)"
CI_BOOTSTRAP = "bootstrap over problems"
UNBOUNDED_NOTE = "Hp-Lp 95% CI includes 0: CLTR unbounded"
SOFT_COLUMNS = ["pass@1 gap rel. CI width", "log-lik gap (nats/token)", "log-lik CI low", "log-lik CI high",
                "log-lik n_problems", "EN likelier (%)", "log-lik rel. CI width", "CI width ratio"]


def run_key(summary: dict) -> tuple:
    """(model, dataset, prompt_mode, n, temperature) of an evaluation summary: what identifies a row."""
    return (summary["model"], str(summary["dataset"]), summary["prompt_mode"], int(summary.get("n", 1)),
            float(summary.get("temperature", 0.0)))


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


class Run:
    """One evaluation run read back: its key, language, samples per problem and per-problem pass@1."""

    def __init__(self, summary: dict):
        self.summary = summary
        self.key = run_key(summary)
        self.model, self.dataset, self.prompt_mode, self.n, self.temperature = self.key
        self.results = load_results(summary)
        self.language = str(self.results["language"].iloc[0])
        self.min_n = int(self.results.groupby("task_id").size().min())
        self.pass1 = per_problem(self.results, 1)
        self.limit = summary.get("limit")  # first-N problems of the data set (None: all)

    @property
    def pair_key(self) -> tuple:
        return (self.model, self.prompt_mode, self.n, self.temperature)


def read_runs(summaries: Sequence[dict]) -> list[Run]:
    """Every summary's run, in order; two runs with the same ``RUN_KEY`` are an error (one would hide the other)."""
    runs, seen = [], {}
    for s in summaries:
        run = Run(s)
        if run.key in seen:
            raise ValueError(f"two evaluation runs share the key {dict(zip(RUN_KEY, run.key, strict=True))}: "
                             f"{seen[run.key]} and {s['results']}; a table row would hide one of them")
        seen[run.key] = s["results"]
        runs.append(run)
    return runs


def en_ja_pairs(runs: Sequence[Run]) -> list[tuple[Run, Run]]:
    """(English run, Japanese run) for every JA run with an EN run of the same model, prompt mode and sampling."""
    pairs = []
    for ja in runs:
        if ja.language != "ja":
            continue
        for en in runs:
            if en.language == "en" and en.pair_key == ja.pair_key:
                pairs.append((en, ja))
    return pairs


def rate_interval(passed: pd.Series, n_samples: int, seed: int = 0) -> tuple[float, float, str]:
    """95% interval of a pass@1 rate over problems, in fractions, and its method: exact for n=1 (binomial),
    bootstrap over problems otherwise."""
    vals = passed.to_numpy(dtype=float)
    if vals.size == 0:
        return float("nan"), float("nan"), ""
    if n_samples == 1:
        lo, hi = clopper_pearson(int(round(vals.sum())), int(vals.size))
        return lo, hi, CI_EXACT
    lo, hi = bootstrap_ci(vals, seed=seed)
    return lo, hi, CI_BOOTSTRAP


def code_eval_table(summaries: Sequence[dict], ks: Sequence[int] = (1,), seed: int = 0) -> pd.DataFrame:
    """Long format, one row per (run, k): the run key, language, solved problems (n=1), pass@k (%) and its 95% CI
    (%), the CI method and the number of problems."""
    rows = []
    for run in read_runs(summaries):
        for k in ks:
            if k > run.min_n:
                continue
            vals = per_problem(run.results, k)
            if k == 1:
                lo, hi, method = rate_interval(vals, run.min_n, seed)
            else:
                (lo, hi), method = bootstrap_ci(vals.to_numpy(), seed=seed), CI_BOOTSTRAP
            rows.append({"model": run.model, "dataset": run.dataset, "language": run.language,
                         "prompt_mode": run.prompt_mode, "n": run.n, "temperature": run.temperature, "k": k,
                         "solved": int(vals.sum()) if run.min_n == 1 else np.nan,
                         "pass@k (%)": 100 * float(vals.mean()), "ci_low (%)": 100 * lo, "ci_high (%)": 100 * hi,
                         "ci_method": method, "n_problems": int(vals.size)})
    return pd.DataFrame(rows)


def _paper_rate(percent: float) -> tuple[float, float, float]:
    """A paper pass@1 (%) as its count out of 164 with the exact 95% interval (%)."""
    count = round(percent * N_PAPER_PROBLEMS / 100)
    lo, hi = clopper_pearson(count, N_PAPER_PROBLEMS)
    return percent, 100 * lo, 100 * hi


def table1(code_eval: pd.DataFrame) -> pd.DataFrame:
    """Paper A Table 1 layout (pass@1 %, 95% CIs): the paper's models (exact intervals from their counts out of
    164), then one row of ours per (model, prompt mode, sampling, Japanese data set)."""
    rows = []
    for m in PAPER_MODELS.values():
        if "A1" not in m.paper_tables:
            continue
        (he, he_lo, he_hi), (jhe, jhe_lo, jhe_hi) = _paper_rate(m.paper_humaneval), _paper_rate(m.paper_jhumaneval)
        rows.append({"Model": m.name, "Size": m.size, "source": "paper", "prompt_mode": "", "n": 1,
                     "temperature": 0.0, "JA data set": "jhumaneval", "HumanEval (%)": he,
                     "HumanEval CI low (%)": he_lo, "HumanEval CI high (%)": he_hi, "JHumanEval (%)": jhe,
                     "JHumanEval CI low (%)": jhe_lo, "JHumanEval CI high (%)": jhe_hi,
                     "n_problems EN": N_PAPER_PROBLEMS, "n_problems JA": N_PAPER_PROBLEMS})
    k1 = code_eval[code_eval.k == 1]
    en = k1[k1.language == "en"]
    for _, ja in k1[k1.language == "ja"].iterrows():
        match = en[(en.model == ja.model) & (en.prompt_mode == ja.prompt_mode) & (en.n == ja.n)
                   & (en.temperature == ja.temperature)]
        e = match.iloc[0] if len(match) else None
        rows.append({"Model": ja.model, "Size": get_spec(ja.model).size, "source": "ours", "prompt_mode": ja.prompt_mode,
                     "n": ja.n, "temperature": ja.temperature, "JA data set": ja.dataset,
                     "HumanEval (%)": e["pass@k (%)"] if e is not None else np.nan,
                     "HumanEval CI low (%)": e["ci_low (%)"] if e is not None else np.nan,
                     "HumanEval CI high (%)": e["ci_high (%)"] if e is not None else np.nan,
                     "JHumanEval (%)": ja["pass@k (%)"], "JHumanEval CI low (%)": ja["ci_low (%)"],
                     "JHumanEval CI high (%)": ja["ci_high (%)"],
                     "n_problems EN": e["n_problems"] if e is not None else np.nan, "n_problems JA": ja.n_problems})
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


def paired_gap(en: pd.Series, ja: pd.Series, binary: bool, seed: int = 0) -> dict:
    """EN minus JA pass@1 on the problems both runs have (percent points), paired bootstrap CI; with one sample
    per problem (``binary``) also the discordant counts and the exact McNemar p-value."""
    common = en.index.intersection(ja.index)
    a, b = en.loc[common].to_numpy(), ja.loc[common].to_numpy()
    diff, lo, hi = bootstrap_diff_ci(a, b, seed=seed)
    row = {"n_problems": len(common), "EN pass@1 (%)": 100 * a.mean(), "JA pass@1 (%)": 100 * b.mean(),
           "EN-JA gap (pt)": 100 * diff, "gap CI low (pt)": 100 * lo, "gap CI high (pt)": 100 * hi,
           "only EN": np.nan, "only JA": np.nan, "McNemar p": np.nan}
    if binary:
        only_en, only_ja = discordant_counts(a > 0.5, b > 0.5)
        row.update({"only EN": only_en, "only JA": only_ja, "McNemar p": mcnemar_exact(only_en, only_ja)})
    row["CLTR bounded"] = not (lo <= 0 <= hi)
    return row


def language_gap_table(summaries: Sequence[dict], seed: int = 0) -> pd.DataFrame:
    """EN minus JA pass@1 (the CLTR denominator Hp - Lp) per (model, prompt mode, sampling, EN set, JA set).

    Paired over problems: bootstrap CI of the gap, discordant counts and exact McNemar p (n=1). ``CLTR bounded`` is
    False when the gap's CI includes 0: a CLTR with this model as the base would be unbounded."""
    rows = []
    for en, ja in en_ja_pairs(read_runs(summaries)):
        limits = {x for x in (en.limit, ja.limit) if x}
        rows.append({"model": en.model, "prompt_mode": en.prompt_mode, "n": en.n, "temperature": en.temperature,
                     "EN data set": en.dataset, "JA data set": ja.dataset, "first N": min(limits) if limits else None,
                     **paired_gap(en.pass1, ja.pass1, binary=en.min_n == 1 and ja.min_n == 1, seed=seed)})
    return pd.DataFrame(rows)


def cltr_table(summaries: Sequence[dict], pairs: Sequence[tuple[str, str]], prompt_mode: str | None = None,
               seed: int = 0) -> pd.DataFrame:
    """CLTR with paired bootstrap CIs for (base, after) model pairs evaluated here, one row per (pair, prompt mode,
    sampling, EN set, JA set) where all four runs exist. Both models in the same prompt mode where both have it;
    otherwise each in its own (``prompt_mode`` "completion->chat": a base model completes, its instruct successor
    chats, as each is meant to be prompted).

    Matched on the problems all four runs have; ``bootstrap_cltr_ci`` resamples those problems jointly (one index
    draw for Hp, Lp and L'p; H'p does not enter CLTR). ``note`` says when the denominator's CI includes 0."""
    runs = [r for r in read_runs(summaries) if prompt_mode is None or r.prompt_mode == prompt_mode]
    by_model: dict[str, list[tuple[Run, Run]]] = {}
    for en, ja in en_ja_pairs(runs):
        by_model.setdefault(en.model, []).append((en, ja))
    rows = []
    for base, after in pairs:
        same_data = [(b, a) for b in by_model.get(base, []) for a in by_model.get(after, [])
                     if (b[0].n, b[0].temperature, b[0].dataset, b[1].dataset)
                     == (a[0].n, a[0].temperature, a[0].dataset, a[1].dataset)]
        # The same prompt mode where both models have it; else each model in its own mode (a base model completes,
        # its instruct successor chats), named "base mode->after mode".
        same_mode = [(b, a) for b, a in same_data if b[0].prompt_mode == a[0].prompt_mode]
        found = bool(same_data)
        for (b_en, b_ja), (a_en, a_ja) in same_mode or same_data:
            mode = (b_en.prompt_mode if b_en.prompt_mode == a_en.prompt_mode
                    else f"{b_en.prompt_mode}->{a_en.prompt_mode}")
            four = [b_en.pass1, b_ja.pass1, a_en.pass1, a_ja.pass1]
            common = four[0].index
            for s in four[1:]:
                common = common.intersection(s.index)
            hp, lp, hp2, lp2 = (s.loc[common].to_numpy() for s in four)
            point, lo, hi, undef = bootstrap_cltr_ci(hp, lp, lp2, seed=seed)
            _, d_lo, d_hi = bootstrap_diff_ci(hp, lp, seed=seed)
            bounded = not (d_lo <= 0 <= d_hi)
            rows.append({"source": "ours", "base": base, "model": after, "prompt_mode": mode,
                         "n": b_en.n, "temperature": b_en.temperature, "EN data set": b_en.dataset,
                         "JA data set": b_ja.dataset, "n_problems": len(common), "Hp (%)": 100 * hp.mean(),
                         "Lp (%)": 100 * lp.mean(), "H'p (%)": 100 * hp2.mean(), "L'p (%)": 100 * lp2.mean(),
                         "gap CI low (pt)": 100 * d_lo, "gap CI high (pt)": 100 * d_hi, "CLTR": point,
                         "CLTR CI low": lo, "CLTR CI high": hi, "undefined_share": undef,
                         "CLTR bounded": bounded, "note": "" if bounded else UNBOUNDED_NOTE})
        if not found:
            raise ValueError(f"CLTR pair ({base}, {after}) lacks evaluation runs: each needs an English and a "
                             "Japanese run with the same sampling and data sets")
    return pd.DataFrame(rows)


def cltr_csv(paper_table2_df: pd.DataFrame, ours: pd.DataFrame | None, gap: pd.DataFrame) -> pd.DataFrame:
    """The ``cltr.csv`` table of notebook 03, all rates in percent: Paper A Table 2 rows (source "paper"), our CLTR
    pairs if any, then our EN-JA gaps (source "ours (EN-JA gap)")."""
    paper = paper_table2_df.rename(columns={"Model": "model", "HumanEval": "EN pass@1 (%)",
                                            "JHumanEval": "JA pass@1 (%)", "CLTR (recomputed)": "CLTR"})
    paper = paper.assign(source="paper", **{"EN-JA gap (pt)": paper["EN pass@1 (%)"] - paper["JA pass@1 (%)"]})
    paper = paper[["source", "model", "EN pass@1 (%)", "JA pass@1 (%)", "EN-JA gap (pt)", "CLTR", "CLTR (paper)"]]
    parts = [paper]
    if ours is not None and len(ours):
        parts.append(ours)
    parts.append(gap.assign(source="ours (EN-JA gap)"))
    return pd.concat(parts, ignore_index=True)


def with_soft_gap(gap: pd.DataFrame, models: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """``gap`` with the soft EN-JA gap beside each pass@1 gap (``cltrlib.codeeval.likelihood``): the mean per-token
    log-likelihood of the English canonical solution after the English minus after the Japanese prompt (nats/token;
    paired bootstrap CI over the same problems), the share of problems where the English prompt makes it likelier,
    and each gap's relative CI width (CI width / |gap|; above 2 the interval reaches across zero).

    ``CI width ratio`` = pass@1's relative CI width / the log-likelihood's: how many times narrower, against the
    effect it measures, the soft measure's interval is. Scores are stored runs (one forward pass per problem and
    language); rows of models not in ``models`` (None: all) are left empty."""
    from cltrlib.codeeval.likelihood import relative_ci_width, soft_gap

    extra = []
    for _, r in gap.iterrows():
        if models is not None and r["model"] not in models:
            extra.append({})
            continue
        limit = int(r["first N"]) if pd.notna(r.get("first N")) else None
        soft = soft_gap(r["model"], r["EN data set"], r["JA data set"], r["prompt_mode"], limit=limit, seed=seed)
        p_rel = relative_ci_width(r["EN-JA gap (pt)"], r["gap CI low (pt)"], r["gap CI high (pt)"])
        s_rel = relative_ci_width(soft["gap"], soft["ci_low"], soft["ci_high"])
        extra.append({"pass@1 gap rel. CI width": p_rel, "log-lik gap (nats/token)": soft["gap"],
                      "log-lik CI low": soft["ci_low"], "log-lik CI high": soft["ci_high"],
                      "log-lik n_problems": soft["n_problems"], "EN likelier (%)": 100 * soft["en_better_share"],
                      "log-lik rel. CI width": s_rel,
                      "CI width ratio": p_rel / s_rel if np.isfinite(p_rel) and s_rel > 0 else float("inf")})
    return pd.concat([gap.reset_index(drop=True), pd.DataFrame(extra, columns=SOFT_COLUMNS)], axis=1)


def unparsable_prompts(dataset: str) -> list[str]:
    """Task ids whose prompt is not valid Python: no sample can pass them (the program is prompt + code), e.g. the
    published JHumanEval's HumanEval/64."""
    import ast

    from cltrlib.data import load_problems

    bad = []
    for p in load_problems(dataset):
        try:
            ast.parse(p.prompt)
        except SyntaxError:
            bad.append(p.task_id)
    return bad
