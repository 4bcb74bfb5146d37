"""Our own Paper A Table 2 from controlled continual pre-training, keyed (base, condition).

Paper A's Table 2 compares a base model with Japanese-continued models trained by others on unknown data; ours
compares a base with models we trained ourselves, on known data, under conditions that include the English control.
Per (base, condition):

- Hp, Lp: the base's pass@1 on HumanEval (English prompts) and JHumanEval (Japanese prompts); H'p, L'p: the same for
  the condition's final model. Each with a Wilson 95% interval (counts out of the problems evaluated: greedy, n = 1).
- CLTR = (L'p - Lp) / (Hp - Lp) with a paired bootstrap CI over problems (``metrics.bootstrap_cltr_ci``; replicates
  where Hp == Lp are undefined and their share is reported).
- soft CLTR: the same formula on the per-problem mean log-likelihood of the canonical solution after the English
  (H) and the Japanese (L) prompt (``cltrlib.codeeval.likelihood``), continuous and defined for every problem, with
  its paired bootstrap CI.
- held-out Japanese and English perplexity of the final model (bootstrap CI over blocks), and bits per character:
  perplexity is per token of the evaluated model's own tokenizer, so only bits per character compare a model with
  an expanded vocabulary (``ja+vocab``) with the others.

``contrast_table`` answers the question Paper A could not: is a condition's effect on L'p different from the English
control's? Both start from the same base, so the difference of effects is L'p(condition) - L'p(en), paired over
problems (discordant counts and an exact McNemar test for pass@1; a paired bootstrap for the soft measure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cltrlib.metrics import (
    bootstrap_cltr_ci,
    bootstrap_diff_ci,
    discordant_counts,
    mcnemar_exact,
    wilson,
)

CONTROL = "en"


def _per_problem(summary: dict) -> pd.Series:
    from cltrlib.codegen.report import load_results, per_problem

    return per_problem(load_results(summary), 1)


def _soft_series(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index("task_id")["mean_logprob"]


def _rate(values: np.ndarray) -> tuple[float, float, float]:
    solved, n = int(round(values.sum())), len(values)
    low, high = wilson(solved, n) if n else (float("nan"), float("nan"))
    return float(values.mean()) if n else float("nan"), low, high


def final_tokens(result, base: str, condition: str) -> int:
    rows = result.checkpoints[(result.checkpoints.base == base) & (result.checkpoints.condition == condition)]
    return int(rows.tokens.max())


def cltr_table(result, seed: int = 0) -> pd.DataFrame:
    """One row per (base, condition), the base's own row first (condition ``base``); rates as fractions."""
    ck = result.checkpoints
    rows = []
    for base in dict.fromkeys(ck.base):
        conds = [c for c in dict.fromkeys(ck[ck.base == base].condition) if c != "base"]
        soft_base = result.soft[(base, "base", 0)]
        h_soft, l_soft = _soft_series(soft_base["en"]), _soft_series(soft_base["ja"])
        base_p1 = result.pass1.get((base, "base"))
        hp = lp = None
        if base_p1:
            hp, lp = _per_problem(base_p1["en"]), _per_problem(base_p1["ja"])
        base_ck = ck[(ck.base == base) & (ck.condition == "base")].iloc[0]
        for cond in ["base", *conds]:
            tokens = 0 if cond == "base" else final_tokens(result, base, cond)
            ckrow = base_ck if cond == "base" else ck[(ck.base == base) & (ck.condition == cond)
                                                       & (ck.tokens == tokens)].iloc[0]
            row = {"base": base, "condition": cond, "tokens": tokens}
            if hp is not None:
                after = result.pass1.get((base, cond))
                if after is not None:
                    h2, l2 = _per_problem(after["en"]), _per_problem(after["ja"])
                    common = hp.index.intersection(lp.index).intersection(h2.index).intersection(l2.index)
                    vals = {k: v.loc[common].to_numpy() for k, v in
                            (("Hp", hp), ("Lp", lp), ("H'p", h2), ("L'p", l2))}
                    for k, v in vals.items():
                        row[k], row[f"{k}_low"], row[f"{k}_high"] = _rate(v)
                    row["n_problems"] = len(common)
                    if cond != "base":
                        point, lo, hi, undef = bootstrap_cltr_ci(vals["Hp"], vals["Lp"], vals["L'p"], seed=seed)
                        row.update({"cltr": point, "cltr_low": lo, "cltr_high": hi, "cltr_undefined_share": undef})
                else:
                    row["n_problems"] = 0  # no pass@1 run for this condition (``pass1_conditions``)
            soft_after = result.soft[(base, cond, tokens)]
            h2s, l2s = _soft_series(soft_after["en"]), _soft_series(soft_after["ja"])
            common = h_soft.index.intersection(l_soft.index).intersection(h2s.index).intersection(l2s.index)
            row.update({"soft_H": float(h_soft.loc[common].mean()), "soft_L": float(l_soft.loc[common].mean()),
                        "soft_H'": float(h2s.loc[common].mean()), "soft_L'": float(l2s.loc[common].mean()),
                        "soft_problems": len(common)})
            if cond != "base":
                point, lo, hi, _ = bootstrap_cltr_ci(h_soft.loc[common].to_numpy(), l_soft.loc[common].to_numpy(),
                                                     l2s.loc[common].to_numpy(), seed=seed)
                row.update({"soft_cltr": point, "soft_cltr_low": lo, "soft_cltr_high": hi})
            for lang in ("ja", "en"):
                for suffix in ("", "_low", "_high"):
                    row[f"ppl_{lang}{suffix}"] = float(ckrow[f"ppl_{lang}{suffix}"])
                    row[f"bpc_{lang}{suffix}"] = float(ckrow.get(f"bpc_{lang}{suffix}", np.nan))
            rows.append(row)
    return pd.DataFrame(rows)


def contrast_table(result, control: str = CONTROL, seed: int = 0) -> pd.DataFrame:
    """Each condition's final L'p minus the English control's, paired over problems (same base, same problems)."""
    rows = []
    ck = result.checkpoints
    for base in dict.fromkeys(ck.base):
        conds = [c for c in dict.fromkeys(ck[ck.base == base].condition) if c not in ("base", control)]
        if control not in set(ck[ck.base == base].condition):
            continue
        ctrl_soft = _soft_series(result.soft[(base, control, final_tokens(result, base, control))]["ja"])
        ctrl_p1 = result.pass1.get((base, control))
        for cond in conds:
            row = {"base": base, "condition": cond, "control": control}
            soft = _soft_series(result.soft[(base, cond, final_tokens(result, base, cond))]["ja"])
            common = soft.index.intersection(ctrl_soft.index)
            d, lo, hi = bootstrap_diff_ci(soft.loc[common].to_numpy(), ctrl_soft.loc[common].to_numpy(), seed=seed)
            row.update({"soft_L'_diff": d, "soft_L'_diff_low": lo, "soft_L'_diff_high": hi,
                        "soft_problems": len(common)})
            after = result.pass1.get((base, cond))
            if after is not None and ctrl_p1 is not None:
                a, b = _per_problem(after["ja"]), _per_problem(ctrl_p1["ja"])
                common = a.index.intersection(b.index)
                a, b = a.loc[common].to_numpy(), b.loc[common].to_numpy()
                d, lo, hi = bootstrap_diff_ci(a, b, seed=seed)
                only_cond, only_ctrl = discordant_counts(a > 0.5, b > 0.5)
                row.update({"L'p_diff": d, "L'p_diff_low": lo, "L'p_diff_high": hi, "only_condition": only_cond,
                            "only_control": only_ctrl, "mcnemar_p": mcnemar_exact(only_cond, only_ctrl),
                            "n_problems": len(common)})
            rows.append(row)
    return pd.DataFrame(rows)


def _ci(point: float, low: float, high: float, scale: float = 1.0, digits: int = 1) -> str:
    if point is None or not np.isfinite(point):
        return "—"
    lo = f"{low * scale:.{digits}f}" if np.isfinite(low) else "?"
    hi = f"{high * scale:.{digits}f}" if np.isfinite(high) else "?"
    return f"{point * scale:.{digits}f} [{lo}, {hi}]"


def markdown_table(table: pd.DataFrame) -> pd.DataFrame:
    """Paper A Table 2's layout with every number's interval: pass@1 in %, CLTR, soft CLTR, perplexities."""
    out = []
    for r in table.to_dict("records"):
        base = r["condition"] == "base"
        get = r.get
        out.append({
            "base": r["base"], "condition": r["condition"], "tokens": r["tokens"],
            "HumanEval % (Hp / H'p)": _ci(get("Hp" if base else "H'p", np.nan), get("Hp_low" if base else "H'p_low",
                                          np.nan), get("Hp_high" if base else "H'p_high", np.nan), 100),
            "JHumanEval % (Lp / L'p)": _ci(get("Lp" if base else "L'p", np.nan), get("Lp_low" if base else "L'p_low",
                                           np.nan), get("Lp_high" if base else "L'p_high", np.nan), 100),
            "CLTR": _ci(get("cltr", np.nan), get("cltr_low", np.nan), get("cltr_high", np.nan), digits=2),
            "pass@1 problems": get("n_problems", 0),
            "soft CLTR": _ci(get("soft_cltr", np.nan), get("soft_cltr_low", np.nan), get("soft_cltr_high", np.nan),
                             digits=2),
            "soft L (nats/token)": round(float(r["soft_L"] if base else r["soft_L'"]), 3),
            "soft problems": r["soft_problems"],
            "ppl ja": _ci(r["ppl_ja"], r["ppl_ja_low"], r["ppl_ja_high"]),
            "ppl en": _ci(r["ppl_en"], r["ppl_en_low"], r["ppl_en_high"]),
            "bits/char ja": _ci(get("bpc_ja", np.nan), get("bpc_ja_low", np.nan), get("bpc_ja_high", np.nan),
                                digits=3),
            "bits/char en": _ci(get("bpc_en", np.nan), get("bpc_en_low", np.nan), get("bpc_en_high", np.nan),
                                digits=3),
        })
    return pd.DataFrame(out)


def contrast_sentences(contrast: pd.DataFrame) -> str:
    """One sentence per (base, condition) of ``contrast_table``: is the difference from the English control's L'p
    beyond its 95% CI (pass@1 and soft measure separately)? Generated from the numbers, so it is never stale."""
    if contrast.empty:
        return "No English control in these settings: nothing to contrast."
    out = []
    for r in contrast.to_dict("records"):
        d, lo, hi = r["soft_L'_diff"], r["soft_L'_diff_low"], r["soft_L'_diff_high"]
        verdict = "zero is within the CI" if lo <= 0 <= hi else "the difference is beyond the CI"
        parts = [f"soft L′ {d:+.3f} nats/token [{lo:+.3f}, {hi:+.3f}] over {r['soft_problems']} problems: {verdict}"]
        if np.isfinite(r.get("L'p_diff", np.nan)):
            d, lo, hi = (100 * r[k] for k in ("L'p_diff", "L'p_diff_low", "L'p_diff_high"))
            verdict = "zero is within the CI" if lo <= 0 <= hi else "the difference is beyond the CI"
            parts.append(f"pass@1 L′p {d:+.1f} points [{lo:+.1f}, {hi:+.1f}] over {r['n_problems']} problems "
                         f"(solved only after {r['condition']}: {r['only_condition']}, only after the control: "
                         f"{r['only_control']}; exact McNemar p = {r['mcnemar_p']:.2f}): {verdict}")
        out.append(f"- **{r['base']}, {r['condition']} vs {r['control']}**: " + "; ".join(parts) + ".")
    return "\n".join(out)


def table2_rows(path=None) -> pd.DataFrame:
    """Notebook 07's Table 2 rows in notebook 03's CLTR layout (``cltrlib.codegen.report.cltr_table``'s columns, rates
    in percent, plus the soft CLTR), read from the current profile's ``tables/pretrain_cltr.csv`` (empty when 07 has
    not run).

    For notebook 03 (which runs after 07: metadata ``cltr.run_after: ["07"]``) to show our controlled rows beside
    the paper's: source ``ours (continual pre-training)``, base = the base model, model ``<base> + <condition>``."""
    from pathlib import Path

    from cltrlib import config

    path = Path(path) if path is not None else config.figures_dir() / "tables" / "pretrain_cltr.csv"
    if not path.exists():
        return pd.DataFrame()
    t = pd.read_csv(path)
    t = t[t.condition != "base"]
    out = pd.DataFrame({"source": "ours (continual pre-training)", "base": t.base,
                        "model": t.base + " + " + t.condition, "condition": t.condition, "tokens": t.tokens})
    for ours, theirs, scale in (("Hp", "Hp (%)", 100), ("Lp", "Lp (%)", 100), ("H'p", "H'p (%)", 100),
                                ("L'p", "L'p (%)", 100), ("cltr", "CLTR", 1), ("cltr_low", "CLTR CI low", 1),
                                ("cltr_high", "CLTR CI high", 1), ("cltr_undefined_share", "undefined_share", 1),
                                ("n_problems", "n_problems", 1), ("soft_cltr", "soft CLTR", 1),
                                ("soft_cltr_low", "soft CLTR CI low", 1), ("soft_cltr_high", "soft CLTR CI high", 1),
                                ("soft_problems", "soft n_problems", 1)):
        out[theirs] = scale * t[ours] if ours in t else np.nan
    return out.reset_index(drop=True)
