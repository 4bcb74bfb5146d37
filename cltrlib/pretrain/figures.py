"""Notebook 07's figures: training curves, and L'p, H'p and perplexity against training tokens."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cltrlib.plots import LANG_COLORS, legend_beside

_MARKERS = {"ja": "o", "en": "s", "ja+en": "^", "ja+parallel": "D", "ja+vocab": "v"}


def plot_training_curves(runs) -> plt.Figure:
    """Training loss per step for every (base, condition) run, against tokens seen."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for cr in runs:
        log = pd.DataFrame(cr.run.log())
        if log.empty:
            continue
        ax.plot(log.tokens, log.loss, marker=_MARKERS.get(cr.condition, "."), markersize=3,
                label=f"{cr.model} / {cr.condition}")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title("Continual pre-training loss")
    ax.legend(fontsize=8)
    return fig


def plot_transfer_curves(checkpoints: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """Three panels per base model against training tokens, one line per condition (the base at 0 tokens):

    1. the soft measure after the Japanese (L') and English (H') prompts at every checkpoint, with the base's
       values as dotted lines: does L' move, and does it move more than under the English control?
    2. pass@1 L'p and H'p of each final model (Wilson intervals) beside the base's Lp and Hp;
    3. held-out Japanese and English bits per character (bootstrap CI over blocks): unlike perplexity (per token
       of each model's own tokenizer) comparable across tokenizers, so the ``ja+vocab`` condition fits on it.
    """
    bases = list(dict.fromkeys(checkpoints.base))
    fig, axes = plt.subplots(len(bases), 3, figsize=(15, 4.2 * len(bases)), squeeze=False)
    for i, base in enumerate(bases):
        ck = checkpoints[checkpoints.base == base]
        base_row = ck[ck.condition == "base"].iloc[0]
        conds = [c for c in dict.fromkeys(ck.condition) if c != "base"]
        ax_soft, ax_p1, ax_ppl = axes[i]
        for cond in conds:
            rows = pd.concat([base_row.to_frame().T, ck[ck.condition == cond]]).sort_values("tokens")
            m = _MARKERS.get(cond, ".")
            for lang, ls in (("ja", "-"), ("en", "--")):
                scored = rows.dropna(subset=[f"soft_{lang}"])  # checkpoints without the soft measure are skipped
                ax_soft.plot(scored.tokens.astype(float), scored[f"soft_{lang}"].astype(float), ls, marker=m,
                             color=LANG_COLORS[lang], label=f"{cond}: {'L′' if lang == 'ja' else 'H′'}",
                             alpha=0.9)
                y = rows[f"bpc_{lang}"].astype(float)
                err = np.clip(np.vstack([y - rows[f"bpc_{lang}_low"].astype(float),
                                         rows[f"bpc_{lang}_high"].astype(float) - y]), 0, None)
                ax_ppl.errorbar(rows.tokens.astype(float), y, yerr=err, fmt=ls, marker=m, color=LANG_COLORS[lang],
                                capsize=2, label=f"{cond}: {lang}")
        ax_soft.set_title(f"{base}: soft measure (JA solid, EN dashed)")
        ax_soft.set_xlabel("training tokens")
        ax_soft.set_ylabel("mean log p(canonical solution) per token")
        ax_ppl.set_title("held-out bits per character (JA solid, EN dashed)")
        ax_ppl.set_xlabel("training tokens")
        ax_ppl.set_ylabel("bits per character")
        tb = table[table.base == base]
        has_p1 = "L'p" in tb and tb["n_problems"].fillna(0).gt(0).any()
        if has_p1:
            b = tb[tb.condition == "base"].iloc[0]
            for lang, key, ls in (("ja", "Lp", ":"), ("en", "Hp", "-.")):
                ax_p1.axhline(100 * b[key], color=LANG_COLORS[lang], ls=ls, lw=1,
                              label=f"base {'Lp' if lang == 'ja' else 'Hp'}")
            labels = [c for c in conds if float(tb[tb.condition == c]["n_problems"].fillna(0).iloc[0]) > 0]
            for j, cond in enumerate(labels):
                r = tb[tb.condition == cond].iloc[0]
                for lang, key, dx in (("ja", "L'p", -0.12), ("en", "H'p", 0.12)):
                    y = 100 * r[key]
                    # clipped at 0: Wilson's bound at 0 solved is 0 up to rounding (matplotlib refuses -1e-15)
                    yerr = [[max(0.0, y - 100 * r[f"{key}_low"])], [max(0.0, 100 * r[f"{key}_high"] - y)]]
                    ax_p1.errorbar(j + dx, y, yerr=yerr,
                                   fmt=_MARKERS.get(cond, "o"), color=LANG_COLORS[lang], capsize=3,
                                   label=key if j == 0 else None)
            ax_p1.set_xticks(range(len(labels)), labels)
            ax_p1.set_title(f"pass@1 of the final models ({int(b['n_problems'])} problems)")
            ax_p1.set_ylabel("pass@1 (%)")
            ax_p1.legend(fontsize=8)
        else:
            ax_p1.text(0.5, 0.5, "no pass@1 runs in this profile", ha="center", va="center",
                       transform=ax_p1.transAxes)
            ax_p1.set_axis_off()
    legend_beside(fig, axes[:, [0]], "condition: measure")
    fig.tight_layout()
    return fig
