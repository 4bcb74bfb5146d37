"""The experiment Paper A could not run: how much does the Japanese set's translation quality move Lp?

The same models, the same English canonical solutions and the same scoring on several Japanese builds (published,
raw machine translation, machine translation + repair). Two measures:

- the soft measure (``cltrlib.codeeval.likelihood``): mean per-token log-likelihood of the English canonical
  solution after each build's prompt, per problem; the EN - JA gap and each build's shift against the published set,
  both with paired bootstrap CIs over problems;
- pass@1 (greedy, one sample) with exact Clopper-Pearson intervals, and the paired comparison with the published set
  (discordant problems, exact McNemar) and with English (the EN - JA gap, CLTR's denominator).

Every run goes through the stores of notebooks 02/03 (generation, evaluation, likelihood), so the published and
English runs are read back, not recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cltrlib.metrics import bootstrap_diff_ci, clopper_pearson, discordant_counts, mcnemar_exact


def soft_table(models: Sequence[str], builds: Mapping[str, str], limit: int | None = None,
               reference: str = "published", progress: bool = True,
               limits: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One row per (model, build): the build's mean log-likelihood, the EN - JA gap with its paired CI, and the
    build minus ``reference`` (the published set) with its paired CI, over the problems every run scored.

    ``limits`` caps a model's problems below ``limit`` (the first N), so a CPU profile can give a model whose English
    and published runs no other notebook scores fewer problems; each row's ``n_problems`` says how many it used."""
    from cltrlib.codeeval.likelihood import score_canonical

    rows = []
    for model in models:
        cap = (limits or {}).get(model)
        n = cap if limit is None else (limit if cap is None else min(limit, cap))
        en = score_canonical(model, "humaneval", limit=n, progress=progress).set_index("task_id")
        ja = {name: score_canonical(model, ds, limit=n, progress=progress).set_index("task_id")
              for name, ds in builds.items()}
        common = en.index
        for frame in ja.values():
            common = common.intersection(frame.index)
        e = en.loc[common, "mean_logprob"].to_numpy()
        ref = ja[reference].loc[common, "mean_logprob"].to_numpy() if reference in ja else None
        for name, frame in ja.items():
            j = frame.loc[common, "mean_logprob"].to_numpy()
            gap, lo, hi = bootstrap_diff_ci(e, j)
            row = {"model": model, "build": name, "prompt_mode": str(en["prompt_mode"].iloc[0]), "n_problems":
                   len(common), "EN mean logp": float(e.mean()), "JA mean logp": float(j.mean()),
                   "EN-JA gap": gap, "gap CI low": lo, "gap CI high": hi}
            if ref is not None and name != reference:
                d, dlo, dhi = bootstrap_diff_ci(j, ref)
                row.update({f"minus {reference}": d, "CI low": dlo, "CI high": dhi,
                            f"share of {reference} gap": d / -float((e - ref).mean()) if (e - ref).mean() else
                            np.nan})
            rows.append(row)
    return pd.DataFrame(rows)


def pass1_runs(model: str, prompt_mode: str, datasets: Mapping[str, str], max_new_tokens: int, batch_size: int,
               limit: int | None = None, timeout: float = 10.0, progress: bool = True) -> dict[str, pd.Series]:
    """Per-problem pass@1 (index task_id) of ``model`` on each data set (generated and evaluated, or read back)."""
    from cltrlib.codeeval.runs import run_evaluation
    from cltrlib.codegen.report import load_results, per_problem
    from cltrlib.codegen.run import GenerationConfig, run_generation

    out = {}
    for name, ds in datasets.items():
        cfg = GenerationConfig(model=model, dataset=ds, prompt_mode=prompt_mode, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, limit=limit)
        if progress:
            print(f"[translation] pass@1 {model} / {name} / {prompt_mode}", flush=True)
        summary = run_evaluation(run_generation(cfg, progress=progress), timeout=timeout, progress=progress)
        out[name] = per_problem(load_results(summary))
    return out


def pass1_table(model: str, prompt_mode: str, per_problem: Mapping[str, pd.Series], english: str = "english",
                reference: str = "published") -> pd.DataFrame:
    """pass@1 per build with Clopper-Pearson intervals; paired against the published set and against English."""
    common = None
    for s in per_problem.values():
        common = s.index if common is None else common.intersection(s.index)
    solved = {k: s.loc[common].to_numpy() > 0.5 for k, s in per_problem.items()}
    rows = []
    for name, ok in solved.items():
        lo, hi = clopper_pearson(int(ok.sum()), len(ok))
        row = {"model": model, "prompt_mode": prompt_mode, "data set": name, "n": len(ok), "solved": int(ok.sum()),
               "pass@1 (%)": 100 * ok.mean(), "CP low (%)": 100 * lo, "CP high (%)": 100 * hi}
        if name != english and english in solved:
            a, b = discordant_counts(solved[english], ok)
            row.update({"only EN": a, "only this": b, "McNemar p vs EN": mcnemar_exact(a, b)})
        if name not in (english, reference) and reference in solved:
            a, b = discordant_counts(solved[reference], ok)
            row.update({f"only {reference}": a, "only this ": b, f"McNemar p vs {reference}": mcnemar_exact(a, b)})
        rows.append(row)
    return pd.DataFrame(rows)


def findings(chrf: pd.DataFrame, soft: pd.DataFrame, pass1: pd.DataFrame, rounds: pd.DataFrame | None,
             roundtrip: pd.DataFrame | None = None) -> str:
    """The notebook's closing paragraph, written from the tables themselves (so it never goes stale)."""
    if chrf is None or len(chrf) <= 1:
        return ("No machine-translated build in this profile: only the published set is measured. The `local` "
                "profile translates with Gemma-3-270M through llama.cpp's server (committed builds).")
    out = []
    c = ", ".join(f"{r['build']} {r['chrF']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]" for _, r in chrf.iterrows())
    out.append(f"**chrF against the published JHumanEval** (corpus, 95% bootstrap CI over {int(chrf['n_tasks'].iloc[0])} "
               f"tasks): {c}.")
    if roundtrip is not None and not roundtrip.empty:
        out.append(roundtrip_sentence(roundtrip))
    if rounds is not None and not rounds.empty:
        first, last = rounds.iloc[0], rounds.iloc[-1]
        out.append(f"**Repair**: flagged segments {int(first['segments'])} (in {int(first['tasks'])} tasks) after "
                   f"the raw translation → {int(last['segments'])} (in {int(last['tasks'])} tasks) after "
                   f"{len(rounds) - 2} repair round(s) and the post-edits.")
        if "copied_demonstration" in rounds:
            copied = [int(x) for x in rounds["copied_demonstration"]]
            out.append(f"**Copied demonstrations**: {copied[0]} raw segments answer with a demonstration's Japanese "
                       f"(another task's published prose from the few-shot prompt) instead of a translation; "
                       + (f"{' → '.join(map(str, copied[1:-1]))} after the repair round(s), " if len(copied) > 2
                          else "") + f"{copied[-1]} after the post-edit that cuts them. chrF and the round trip "
                       "score such a segment as a poor translation; this check names it.")
    for model, grp in (soft.groupby("model", sort=False) if soft is not None and not soft.empty else []):
        parts = []
        for _, r in grp.iterrows():
            s = f"{r['build']}: EN−JA gap {r['EN-JA gap']:.3f} [{r['gap CI low']:.3f}, {r['gap CI high']:.3f}]"
            if "minus published" in r and pd.notna(r.get("minus published")):
                s += (f", JA minus published {r['minus published']:+.3f} [{r['CI low']:+.3f}, {r['CI high']:+.3f}]"
                      f" (the gap {'widens' if r['minus published'] < 0 else 'narrows'} by "
                      f"{abs(r['share of published gap']):.0%} of the published set's gap)")
            parts.append(s)
        out.append(f"**Soft measure, {model}** ({int(grp['n_problems'].iloc[0])} problems, nats/token): "
                   + "; ".join(parts) + ".")
        moved = grp.dropna(subset=["CI low"]) if "CI low" in grp else grp.iloc[0:0]
        sig = moved[(moved["CI high"] < 0) | (moved["CI low"] > 0)]
        if len(moved):
            out.append(f"For {model}, {len(sig)} of {len(moved)} machine-translated builds move the Japanese "
                       "log-likelihood away from the published set's by more than its 95% CI: "
                       + ("the translation, not only the model, is part of the EN-JA gap this measure sees."
                          if len(sig) else "at this n the translation's effect is not distinguishable from zero."))
    if pass1 is not None and not pass1.empty:
        for (model, mode), grp in pass1.groupby(["model", "prompt_mode"], sort=False):
            parts = []
            for _, r in grp.iterrows():
                s = (f"{r['data set']} {int(r['solved'])}/{int(r['n'])} = {r['pass@1 (%)']:.2f}% "
                     f"[{r['CP low (%)']:.2f}, {r['CP high (%)']:.2f}]")
                if pd.notna(r.get("McNemar p vs published", np.nan)):
                    s += (f" (vs published: {int(r['only published'])} only there, {int(r['only this '])} only here, "
                          f"McNemar p = {r['McNemar p vs published']:.2f})")
                parts.append(s)
            out.append(f"**pass@1, {model} ({mode})**: " + "; ".join(parts) + ".")
    return "\n\n".join(out)


def roundtrip_sentence(roundtrip: pd.DataFrame, reference: str = "published") -> str:
    """The round-trip check in words: each set's back-translation chrF against HumanEval's English, and whether an
    MT build's interval lies below, above or across the published set's (the reference point)."""
    r = roundtrip.set_index("build")
    parts = [f"{b} {x['chrF']:.1f} [{x['ci_low']:.1f}, {x['ci_high']:.1f}]"
             + (f" ({int(x['passed through (no Japanese)'])} of {int(x['paragraphs'])} paragraphs left in English, "
                "passed through)" if x.get("passed through (no Japanese)", 0) else "")
             for b, x in r.iterrows()]
    s = (f"**Round trip** (reference-free: back-translated to English by {r['back-translator'].iloc[0]}, chrF against "
         f"HumanEval's English prose, 95% bootstrap CI over {int(r['n_tasks'].iloc[0])} tasks): " + "; ".join(parts)
         + ".")
    if reference in r.index:
        verdicts = []
        for b, x in r.drop(index=reference).iterrows():
            if pd.isna(x.get(f"minus {reference}", np.nan)):
                continue
            how = ("worse than" if x["diff CI high"] < 0 else "better than" if x["diff CI low"] > 0
                   else "not distinguishable from")
            verdicts.append(f"{b} minus published {x[f'minus {reference}']:+.1f} [{x['diff CI low']:+.1f}, "
                            f"{x['diff CI high']:+.1f}] (paired over tasks: {how} the published set), "
                            f"{x['chrF, passed-through as empty']:.1f} with its English-left-in paragraphs scored as "
                            "empty")
        if verdicts:
            s += (" " + "; ".join(verdicts) + ". A round trip through the same small model also rewards a translation "
                  "it can invert and any English left in, so it ranks builds; it does not replace a reference.")
    return s
