"""Code-eval figures (one style: ``cltrlib.plots``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cltrlib.models import EMBEDDED
from cltrlib.plots import LANG_COLORS

N_PROBLEMS = 164  # HumanEval's size: a run on fewer problems says so in its label
LANG_LABELS = {"en": "English prompts (HumanEval) / 英語", "ja": "Japanese prompts (JHumanEval) / 日本語"}


def _bars(ax, labels, en, ja, en_err=None, ja_err=None, title=""):
    x = np.arange(len(labels))
    w = 0.38
    ax.bar(x - w / 2, en, w, yerr=en_err, capsize=3, color=LANG_COLORS["en"], label=LANG_LABELS["en"])
    ax.bar(x + w / 2, ja, w, yerr=ja_err, capsize=3, color=LANG_COLORS["ja"], label=LANG_LABELS["ja"])
    ax.set_xticks(x, labels, rotation=25, ha="right")
    ax.set_ylabel("pass@1 (%)")
    ax.set_title(title)


def plot_pass_at_1(code_eval: pd.DataFrame, table1: pd.DataFrame):
    """Left: our models, EN vs JA pass@1 with their 95% CIs (exact for n=1). Right: Paper A Table 1 for reference,
    with the exact intervals of its counts out of 164."""
    # One category per Table 1 row of ours: a (model, prompt mode, Japanese data set) with its English run beside.
    ours = table1[table1.source == "ours"]
    labels = [f"{r['Model']}\n({r['prompt_mode']})"
              + ("" if r["JA data set"] == "jhumaneval" else f"\nJA: {Path(str(r['JA data set'])).name}")
              + ("" if r["n_problems JA"] == N_PROBLEMS else f"\nn={r['n_problems JA']}") for _, r in ours.iterrows()]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [max(len(labels), 2), 6]})

    def err(rows: pd.DataFrame, col: str) -> np.ndarray:
        return np.vstack([rows[f"{col} (%)"] - rows[f"{col} CI low (%)"], rows[f"{col} CI high (%)"]
                          - rows[f"{col} (%)"]])

    _bars(axes[0], labels, ours["HumanEval (%)"], ours["JHumanEval (%)"], err(ours, "HumanEval"),
          err(ours, "JHumanEval"),
          title=f"This suite ({'embedded models, ' if set(code_eval['model']) <= set(EMBEDDED) else ''}greedy, 95% CI)")
    axes[0].set_xticks(np.arange(len(labels)), labels, rotation=0, ha="center", fontsize=8)  # multi-line labels
    paper = table1[table1.source == "paper"]
    _bars(axes[1], list(paper["Model"]), paper["HumanEval (%)"], paper["JHumanEval (%)"], err(paper, "HumanEval"),
          err(paper, "JHumanEval"), title="Paper A, Table 1 (reported; exact 95% CI of n/164)")
    axes[1].legend(loc="upper right", fontsize=9)
    top = np.nanmax([axes[0].get_ylim()[1], 5])
    axes[0].set_ylim(0, top)
    fig.suptitle("HumanEval vs JHumanEval: pass@1 by prompt language (英語 vs 日本語)")
    fig.tight_layout()
    return fig


def plot_language_gap(gap: pd.DataFrame, paper_table2: pd.DataFrame):
    """Hp − Lp (EN − JA pass@1, points) per model with paired 95% CIs: ours (one row per prompt mode and Japanese
    data set), and the paper's Table 2 models."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    rows = []
    for _, r in gap.iterrows():
        g = r["EN-JA gap (pt)"]
        rows.append((f"{r['model']} ({r['prompt_mode']}, {Path(str(r['JA data set'])).name}, n={r['n_problems']})",
                     g, g - r["gap CI low (pt)"], r["gap CI high (pt)"] - g, "ours"))
    for _, r in paper_table2.iterrows():
        rows.append((r["Model"], r["HumanEval"] - r["JHumanEval"], 0.0, 0.0, "paper"))
    y = np.arange(len(rows))
    for i, (_label, val, lo, hi, src) in enumerate(rows):
        color = LANG_COLORS["en"] if src == "ours" else "#999999"
        ax.errorbar(val, i, xerr=[[lo], [hi]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("Hp − Lp: pass@1 English minus Japanese (points)")
    ax.set_title("英語と日本語の差 (CLTR の分母): ours (blue, 95% CI) vs Paper A Table 2 (grey)")
    fig.tight_layout()
    return fig
