"""Glue for notebook 01: profiles, the validation tables, and the canonical-solution check.

Every profile runs the same full pipeline (the memory backend builds all 164 tasks in
seconds and validation runs 164 programs in the sandbox); ``smoke`` differs only in
using fewer workers so it shares the CI machine politely. No network backend is used
from a notebook: DeepL / OpenAI / HF builds are CLI commands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cltrlib import config
from cltrlib.jhumaneval.validate import CHECKS, ValidationReport

PROFILES: dict[str, dict] = {
    "smoke": {"backend": "memory", "run_solutions": True, "workers": 2, "timeout": 10.0},
    "local": {"backend": "memory", "run_solutions": True, "workers": None, "timeout": 10.0},
    "paper": {"backend": "memory", "run_solutions": True, "workers": None, "timeout": 10.0},
}


def settings(profile: str, **overrides) -> dict:
    """The profile's settings with every non-None override applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    cfg = dict(PROFILES[profile])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def defects_table(reports: Mapping[str, ValidationReport]) -> pd.DataFrame:
    """Long format, one row per defect: dataset, task_id, check, severity, detail."""
    frames = [r.to_frame().assign(dataset=name) for name, r in reports.items()]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df[["dataset", "task_id", "check", "severity", "detail"]]


def summary_table(reports: Mapping[str, ValidationReport]) -> pd.DataFrame:
    """Checks × data sets: defects and tasks affected, plus the canonical pass count."""
    rows = []
    for check, meaning in CHECKS.items():
        row: dict = {"check": check, "meaning": meaning}
        for name, r in reports.items():
            ds = [d for d in r.defects if d.check == check]
            row[f"{name}: defects"] = len(ds)
            row[f"{name}: tasks"] = len({d.task_id for d in ds})
            row[f"{name}: minor"] = sum(d.severity == "minor" for d in ds)
        rows.append(row)
    total: dict = {"check": "canonical solutions passing", "meaning": "prompt + canonical_solution + tests, sandbox"}
    for name, r in reports.items():
        n_pass = sum(t.canonical == "passed" for t in r.tasks)
        total[f"{name}: defects"] = f"{n_pass}/{len(r.tasks)}"
        total[f"{name}: tasks"] = ""
        total[f"{name}: minor"] = ""
    rows.append(total)
    return pd.DataFrame(rows)


def defect_counts_figure(reports: Mapping[str, ValidationReport]):
    """Horizontal bars: defects per check for each data set, minor (whitespace-only) apart."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    recs = [{"dataset": name, "check": d.check, "severity": d.severity}
            for name, r in reports.items() for d in r.defects]
    df = pd.DataFrame(recs, columns=["dataset", "check", "severity"])
    counts = (df.groupby(["dataset", "check", "severity"]).size().rename("n").reset_index()
              if len(df) else pd.DataFrame(columns=["dataset", "check", "severity", "n"]))
    counts["label"] = counts["check"] + counts["severity"].map({"minor": " (空白のみ)", "error": ""})
    labels = [c + (" (空白のみ)" if s == "minor" else "") for c in CHECKS for s in ("error", "minor")
              if ((counts["check"] == c) & (counts["severity"] == s)).any()]
    # every data set gets a bar (0 included) for every label, so a clean set is visible as zeros
    full = pd.MultiIndex.from_product([list(reports), labels], names=["dataset", "label"])
    counts = counts.groupby(["dataset", "label"])["n"].sum().reindex(full, fill_value=0).reset_index()
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(4, len(labels)) + 1.2))
    sns.barplot(data=counts, y="label", x="n", hue="dataset", hue_order=list(reports), order=labels, ax=ax,
                orient="h")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("件数 (defects; symlog scale)")
    ax.set_ylabel("検査 (check)")
    ax.set_title("JHumanEval 検証: 公開版 vs 再構築版")
    for cont in ax.containers:
        ax.bar_label(cont, fmt="%d", padding=2, fontsize=9)
    ax.legend(title="data set", loc="lower right")
    fig.tight_layout()
    return fig


def canonical_pass(path: str | Path, workers: int | None = None, timeout: float = 10.0) -> dict:
    """Run every canonical solution against ``path`` through ``evaluate_samples`` (as `python -m cltrlib
    evaluate` does) and return its summary; samples and results go to the results folder."""
    from cltrlib.data import load_problems
    from cltrlib.evaluate import evaluate_samples

    out_dir = config.results_dir() / "jhumaneval"
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = out_dir / "canonical_samples.jsonl"
    with open(samples, "w", encoding="utf-8") as fh:
        for p in load_problems(str(path)):
            fh.write(json.dumps({"task_id": p.source_task_id, "completion": p.canonical_solution}) + "\n")
    return evaluate_samples(samples, str(path), out_dir / "canonical_results.jsonl", ks=(1,), timeout=timeout,
                            workers=workers, progress=False)
