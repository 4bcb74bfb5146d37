"""Notebook 01's tables, figure and summary sentence for validation reports (settings:
``cltrlib.study.JHumanEvalSettings``; no network backend is used from a notebook: DeepL / OpenAI / HF builds are
CLI commands)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cltrlib.jhumaneval.validate import CHECKS, ValidationReport


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


def plot_defect_counts(reports: Mapping[str, ValidationReport]):
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


def findings(published: ValidationReport, rebuilt: ValidationReport, canonical_pass_at_1: float) -> str:
    """The notebook's closing sentence (Markdown): defects of each set and the rebuilt set's canonical pass@1."""
    serious = [d for d in published.defects if d.severity != "minor"]
    return (f"**Result.** Published: {published.counts_by_severity().get('error', 0)} defects beyond whitespace in "
            f"{len({d.task_id for d in serious})} tasks; rebuilt: {len(rebuilt.defects)} defect(s) "
            f"({', '.join(sorted(rebuilt.counts())) or 'none'}), all 164 prompts parse, "
            f"canonical pass@1 = {canonical_pass_at_1:.3f}.")
