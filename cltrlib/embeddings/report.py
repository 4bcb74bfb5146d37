"""Paper C's table layouts (Tables 1-3) and the figures, as pure functions of stored results.

The paper's own numbers (LLaMA-7B; PAWS-X, Table 1 and Table 2 "PAWS-X Sentence 1";
Table 3 PAWS-X rows) are printed beside ours for reference.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from cltrlib.embeddings.pairs import PAIR_LANGS
from cltrlib.embeddings.tasks import EVAL_LANGS
from cltrlib.models import GEMMA3
from cltrlib.plots import LANG_COLORS, legend_beside
from cltrlib.study import EmbeddingSettings

# Paper C Table 1 (PAWS-X accuracy, LLaMA-7B before / after English-only tuning).
PAPER_TABLE1 = {
    ("paper: LLaMA-7B", "pawsx", "base"): [0.54, 0.54, 0.51, 0.54, 0.55, 0.56],
    ("paper: LLaMA-7B", "pawsx", "fine-tuned"): [0.95, 0.87, 0.87, 0.86, 0.75, 0.71],
}
# Paper C Table 2, PAWS-X sentence 1: (Before-P, Before-R, Pawsx-P, Pawsx-R) per pooling.
PAPER_TABLE2 = {
    "mean": {"en-fr": (0.54, 0.34, 0.55, 0.36), "en-de": (0.50, 0.32, 0.51, 0.34), "en-es": (0.49, 0.29, 0.51, 0.32),
             "en-zh": (0.26, 0.17, 0.26, 0.18), "en-ja": (0.22, 0.15, 0.23, 0.16)},
    "last": {"en-fr": (0.50, 0.39, 0.48, 0.36), "en-de": (0.37, 0.28, 0.34, 0.25), "en-es": (0.38, 0.28, 0.36, 0.25),
             "en-zh": (0.31, 0.25, 0.32, 0.25), "en-ja": (0.31, 0.27, 0.33, 0.27)},
}
# Paper C Table 3, PAWS-X task: (rho, p) per corpus and pooling.
PAPER_TABLE3 = {("pawsx", "mean"): (0.99, 0.01), ("pawsx", "last"): (0.70, 0.19),
                ("pud", "mean"): (0.97, 0.01), ("pud", "last"): (0.88, 0.05)}
POOLING_NAMES = {"mean": "Mean-pooling", "last": "Last-token"}


def last_layer(sim: pd.DataFrame) -> dict[str, int]:
    """The final layer index of each model (hidden_states[-1])."""
    return sim.groupby("model")["layer"].max().to_dict()


def _with_ci(point: float, low: float, high: float) -> str:
    return f"{point:.2f} [{low:.2f}, {high:.2f}]"


def baseline_rows(baseline: pd.DataFrame, langs: tuple[str, ...] = EVAL_LANGS) -> pd.DataFrame:
    """The majority-class baseline as accuracy rows (one per task and language: the same items everywhere)."""
    rows = [{"model": f"constant: majority class ({b.label})", "adapter": "-", "condition": "majority baseline",
             "task": b.task, "lang": lang, "accuracy": b.accuracy, "correct": b.correct, "n": b.n,
             "ci_low": b.ci_low, "ci_high": b.ci_high} for b in baseline.itertuples() for lang in langs]
    return pd.DataFrame(rows)


def table1(acc: pd.DataFrame, with_paper: bool = True, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows model / task / condition, columns en fr de es zh ja: "accuracy [95% Clopper-Pearson interval]".

    ``baseline`` (``pipeline.majority_baselines``) adds the constant predictor's row per task; the paper's rows
    (LLaMA-7B, no interval published) come last."""
    if baseline is not None and len(baseline):
        acc = pd.concat([acc, baseline_rows(baseline)], ignore_index=True)
    cell = acc.assign(cell=[_with_ci(a, lo, hi) if pd.notna(lo) else f"{a:.2f}"
                            for a, lo, hi in zip(acc.accuracy, acc.get("ci_low", acc.accuracy * float("nan")),
                                                 acc.get("ci_high", acc.accuracy), strict=True)])
    wide = cell.pivot_table(index=["model", "task", "condition"], columns="lang", values="cell", aggfunc="first",
                            sort=False)
    wide = wide.reindex(columns=list(EVAL_LANGS)).reset_index()
    n = acc.groupby(["model", "task", "condition"], sort=False)["n"].first().reset_index()
    wide = wide.merge(n, on=["model", "task", "condition"])
    if with_paper:
        ref = pd.DataFrame([{"model": m, "task": t, "condition": c,
                             **{lang: f"{x:.2f}" for lang, x in zip(EVAL_LANGS, v, strict=True)}, "n": None}
                            for (m, t, c), v in PAPER_TABLE1.items()])
        wide = pd.concat([wide, ref], ignore_index=True)
    return wide.rename(columns={"n": "n per lang"})


def table2(sim: pd.DataFrame, layer_of: dict[str, int] | None = None, with_paper: bool = True,
           align: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows model / corpus / lang pair; per pooling Before-P, Before-R, After-P, After-R and the P-R gaps.

    With ``align`` (``alignment.alignment_table``) each gap gets its 95% paired-bootstrap interval beside it."""
    layer_of = layer_of or last_layer(sim)
    sel = sim[sim.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
    sel = sel.assign(state=sel.adapter.where(sel.adapter == "base", "after").map({"base": "Before", "after": "After"}),
                     kind=sel.pair_type.map({"parallel": "P", "random": "R"}))
    rows = []
    for (model, corpus, pair), g in sel.groupby(["model", "corpus", "lang_pair"], sort=False):
        row = {"model": model, "layer": layer_of[model], "corpus": corpus, "lang_pair": pair}
        for pooling in ("mean", "last"):
            gp = g[g.pooling == pooling].set_index(["state", "kind"])["mean_cosine"]
            for state in ("Before", "After"):
                for kind in ("P", "R"):
                    row[f"{pooling} {state}-{kind}"] = gp.get((state, kind))
                if (state, "P") in gp.index:
                    row[f"{pooling} {state} P-R"] = gp[(state, "P")] - gp[(state, "R")]
                    if align is not None:
                        a = align[(align.model == model) & (align.corpus == corpus) & (align.lang_pair == pair)
                                  & (align.pooling == pooling) & (align.layer == layer_of[model])
                                  & (align.measure == "raw_cosine")
                                  & ((align.adapter == "base") == (state == "Before"))]
                        if len(a):
                            row[f"{pooling} {state} P-R CI"] = f"[{a.gap_low.iloc[0]:.2f}, {a.gap_high.iloc[0]:.2f}]"
        rows.append(row)
    out = pd.DataFrame(rows)
    if with_paper:
        ref = []
        for pair in PAPER_TABLE2["mean"]:
            row = {"model": "paper: LLaMA-7B", "layer": None, "corpus": "pawsx", "lang_pair": pair}
            for pooling in ("mean", "last"):
                bp, br, ap, ar = PAPER_TABLE2[pooling][pair]
                row.update({f"{pooling} Before-P": bp, f"{pooling} Before-R": br, f"{pooling} After-P": ap,
                            f"{pooling} After-R": ar, f"{pooling} Before P-R": bp - br,
                            f"{pooling} After P-R": ap - ar})
            ref.append(row)
        out = pd.concat([out, pd.DataFrame(ref)], ignore_index=True)
    return out


MEASURE_NAMES = {"raw_cosine": "raw cosine (Paper C)", "centred_cosine": "centred cosine",
                 "retrieval_p1": "retrieval P@1"}


def table3(spear: pd.DataFrame, layer_of: dict[str, int], with_paper: bool = True) -> pd.DataFrame:
    """Rows model / corpus / task / measure; per pooling Spearman rho and exact p at the table layer."""
    sel = spear[spear.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
    if "measure" not in sel:
        sel = sel.assign(measure="raw_cosine")
    rows = []
    for (model, corpus, task, measure), g in sel.groupby(["model", "corpus", "task", "measure"], sort=False):
        row = {"model": model, "layer": layer_of[model], "corpus": corpus, "task": task,
               "measure": MEASURE_NAMES.get(measure, measure)}
        for pooling in ("mean", "last"):
            gp = g[g.pooling == pooling]
            if len(gp):
                row[f"{pooling} rho"] = float(gp.spearman_rho.iloc[0])
                row[f"{pooling} p"] = float(gp.p_value.iloc[0])
        notes = [x for x in dict.fromkeys(g.note) if x] if "note" in g else []
        if notes:
            row["note"] = "; ".join(notes)
        rows.append(row)
    out = pd.DataFrame(rows)
    if with_paper:
        ref = [{"model": "paper: LLaMA-7B", "layer": None, "corpus": c, "task": "pawsx",
                "measure": MEASURE_NAMES["raw_cosine"],
                "mean rho": PAPER_TABLE3[(c, "mean")][0], "mean p": PAPER_TABLE3[(c, "mean")][1],
                "last rho": PAPER_TABLE3[(c, "last")][0], "last p": PAPER_TABLE3[(c, "last")][1]}
               for c in ("pawsx", "pud")]
        out = pd.concat([out, pd.DataFrame(ref)], ignore_index=True)
    if "note" in out:
        out["note"] = out["note"].fillna("")
    return out


def alignment_summary(align: pd.DataFrame, layer_of: dict[str, int] | None = None,
                      pooling: str = "mean") -> pd.DataFrame:
    """Rows model / adapter / corpus / lang pair at the table layer and at the layer where the raw P-R gap is
    smallest relative to its interval; per measure "P-R gap [95% CI]" (P@1 for retrieval, chance 1/n)."""
    layer_of = layer_of or align.groupby("model")["layer"].max().to_dict()
    d = align[align.pooling == pooling]
    rows = []
    for (model, adapter, corpus, pair), g in d.groupby(["model", "adapter", "corpus", "lang_pair"], sort=False):
        raw = g[g.measure == "raw_cosine"].set_index("layer")
        mid = int(raw.parallel.idxmax())  # the most anisotropic layer: highest raw cosine of parallel pairs
        for where, layer in (("last", layer_of[model]), ("max raw P", mid)):
            row = {"model": model, "adapter": adapter, "corpus": corpus, "lang_pair": pair, "pooling": pooling,
                   "at": where, "layer": layer}
            gl = g[g.layer == layer].set_index("measure")
            for m in ("raw_cosine", "centred_cosine"):
                r = gl.loc[m]
                row[f"{m} P"] = round(float(r.parallel), 3)
                row[f"{m} P-R"] = _with_ci(r.gap, r.gap_low, r.gap_high)
            r = gl.loc["retrieval_p1"]
            row["retrieval P@1 (both dirs)"] = _with_ci(r.parallel, r.parallel_low, r.parallel_high)
            row["chance"] = round(float(r.random), 3)
            rows.append(row)
    return pd.DataFrame(rows)


def plot_alignment_layers(align: pd.DataFrame, model: str, pooling: str = "mean", adapter: str = "base"):
    """Per layer, for one model: rows = raw P-R gap, centred P-R gap, retrieval P@1; columns = corpora; one colour
    per language pair, shaded 95% intervals (paired bootstrap over pairs)."""
    d = align[(align.model == model) & (align.pooling == pooling) & (align.adapter == adapter)]
    corpora = list(dict.fromkeys(d.corpus))
    panels = (("raw_cosine", "gap", "raw cosine P−R"), ("centred_cosine", "gap", "centred cosine P−R"),
              ("retrieval_p1", "parallel", "retrieval P@1 (両方向平均)"))
    fig, axes = plt.subplots(len(panels), len(corpora), figsize=(4.8 * len(corpora), 3.3 * len(panels)),
                             sharex=True, sharey="row", squeeze=False)
    for i, (measure, col, label) in enumerate(panels):
        for j, corpus in enumerate(corpora):
            ax = axes[i][j]
            for lang in PAIR_LANGS:
                g = d[(d.corpus == corpus) & (d.measure == measure) & (d.lang_pair == f"en-{lang}")]
                g = g.sort_values("layer")
                ax.plot(g.layer, g[col], color=LANG_COLORS[lang], lw=1.5, label=f"en-{lang}")
                ax.fill_between(g.layer, g[f"{col}_low"], g[f"{col}_high"], color=LANG_COLORS[lang], alpha=0.12)
            if measure == "retrieval_p1" and len(g):
                ax.axhline(float(g.random.iloc[0]), color="gray", ls=":", lw=1.1, label="chance 1/n")
                ax.set_ylim(-0.02, 1.02)
            else:
                ax.axhline(0, color="gray", lw=0.8)
            n = int(d[d.corpus == corpus].n.iloc[0]) if len(d[d.corpus == corpus]) else 0
            ax.set_title(f"{corpus} — {label}", fontsize=10.5)
            ax.set_xlabel("layer")
            ax.set_ylabel(label if j == 0 else "")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.text(0.99, 0.02, f"n={n}", transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                    color="#57606a")
    legend_beside(fig, axes, "言語ペア")
    fig.suptitle(f"{model} ({POOLING_NAMES[pooling]}, 微調整前): 異方性を除いた整列の指標 "
                 "(中心化コサイン, 対訳検索 P@1; 95% 区間)")
    fig.tight_layout()
    return fig


def plot_layer_curves(sim: pd.DataFrame, model: str, corpus: str):
    """Cosine by layer: rows = pooling, columns = before / after; one colour per pair, P solid, R dashed."""
    d = sim[(sim.model == model) & (sim.corpus == corpus)]
    states = list(dict.fromkeys(d.adapter))
    fig, axes = plt.subplots(2, len(states), figsize=(5.2 * len(states), 7.5), sharex=True, sharey="row",
                             squeeze=False)
    for i, pooling in enumerate(("mean", "last")):
        for j, state in enumerate(states):
            ax = axes[i][j]
            for lang in PAIR_LANGS:
                for kind, style in (("parallel", "-"), ("random", "--")):
                    g = d[(d.pooling == pooling) & (d.adapter == state) & (d.lang_pair == f"en-{lang}")
                          & (d.pair_type == kind)].sort_values("layer")
                    ax.plot(g.layer, g.mean_cosine, style, color=LANG_COLORS[lang], lw=1.6,
                            label=f"en-{lang} {'P' if kind == 'parallel' else 'R'}")
            title_state = "微調整前 (before)" if state == "base" else f"微調整後 (after, {state})"
            ax.set_title(f"{POOLING_NAMES[pooling]} — {title_state}", fontsize=11)
            ax.set_xlabel("layer")
            ax.set_ylabel("mean cosine")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_beside(fig, axes, "対訳 P / ランダム R")
    n = int(d.n.iloc[0]) if len(d) else 0
    fig.suptitle(f"{model}: {corpus} 文ペアの層別コサイン類似度 (n={n} pairs per language pair)")
    fig.tight_layout()
    return fig


def _grid(models: list[str], tasks: list[str], width: float = 5.2, height: float = 3.9):
    fig, axes = plt.subplots(len(models), len(tasks), figsize=(width * len(tasks), height * len(models)),
                             sharey=True, squeeze=False)
    return fig, axes


def plot_generalization(acc: pd.DataFrame, baseline: pd.DataFrame | None = None):
    """Accuracy per language, base vs fine-tuned, with 95% Clopper-Pearson intervals; rows = models, columns = tasks.

    Two reference lines: the majority-class baseline on the evaluated items (dashed, what a constant answer scores)
    and uniform chance (dotted, 1 / number of labels), which sits below it when the classes are unbalanced."""
    import numpy as np

    from cltrlib.embeddings.tasks import label_words

    models, tasks = list(dict.fromkeys(acc.model)), list(dict.fromkeys(acc.task))
    fig, axes = _grid(models, tasks)
    colors = {"base": "#0173b2", "fine-tuned": "#de8f05"}
    x = np.arange(len(EVAL_LANGS))
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            g = acc[(acc.model == model) & (acc.task == task)]
            for k, cond in enumerate(("base", "fine-tuned")):
                gc = g[g.condition == cond].set_index("lang").reindex(list(EVAL_LANGS))
                err = np.vstack([gc.accuracy - gc.ci_low, gc.ci_high - gc.accuracy]) if "ci_low" in gc else None
                ax.bar(x + (k - 0.5) * 0.38, gc.accuracy, width=0.38, color=colors[cond], label=cond, yerr=err,
                       capsize=2.5, error_kw={"lw": 0.9, "ecolor": "#333333"})
            if baseline is not None and task in set(baseline.task):
                b = baseline.set_index("task").loc[task]
                ax.axhline(b.accuracy, color="#cc3311", ls="--", lw=1.3,
                           label="majority baseline (constant answer)")
            ax.axhline(1 / len(label_words(task)), color="gray", ls=":", lw=1.2, label="uniform chance")
            ax.set_xticks(x, list(EVAL_LANGS))
            ax.set_title(f"{model} — {task} (n={int(g.n.iloc[0])}/言語)", fontsize=11)
            ax.set_ylim(0, 1)
            ax.set_xlabel("言語 (language)")
            ax.set_ylabel("accuracy")
    legend_beside(fig, axes, "条件 / 基準線")
    fig.suptitle("英語のみで微調整したモデルのゼロショット正解率 (95% Clopper-Pearson 区間; "
                 "破線 = 多数クラス基準, 点線 = 一様チャンス)")
    fig.tight_layout()
    return fig


def plot_spearman_layers(spear: pd.DataFrame, measure: str = "raw_cosine"):
    """Spearman rho by layer for one similarity measure: rows = models, columns = tuning task; colour = corpus,
    dashes = last-token."""
    if "measure" in spear:
        spear = spear[spear.measure == measure]
    models, tasks = list(dict.fromkeys(spear.model)), list(dict.fromkeys(spear.task))
    colors = {"pawsx": "#0173b2", "pud": "#de8f05", "sib200": "#029e73"}
    fig, axes = _grid(models, tasks)
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            g = spear[(spear.model == model) & (spear.task == task)]
            for (corpus, pooling), gg in g.groupby(["corpus", "pooling"]):
                gg = gg.sort_values("layer")
                ax.plot(gg.layer, gg.spearman_rho, "-" if pooling == "mean" else "--", marker=".",
                        color=colors.get(corpus), label=f"{corpus} {POOLING_NAMES[pooling]}")
            ax.axhline(0, color="gray", lw=0.8)
            ax.set_ylim(-1.05, 1.05)
            if len(g) and g.spearman_rho.isna().all():  # say why the panel is empty instead of leaving it blank
                ax.set_xlim(g.layer.min() - 0.5, g.layer.max() + 0.5)
                ax.text(0.5, 0.75, "ρ は定義されない: 微調整後の正解率が全言語で同じ\n(undefined: flat accuracy)",
                        transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#57606a")
            ax.set_title(f"{model} — 微調整タスク {task}", fontsize=11)
            ax.set_xlabel("layer")
            ax.set_ylabel("Spearman ρ")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_beside(fig, axes, "コーパス / プーリング")
    fig.suptitle(f"微調整後の正解率と微調整前の en-X 類似度 ({MEASURE_NAMES.get(measure, measure)}) の "
                 "Spearman 相関 (5言語)")
    fig.tight_layout()
    return fig


def findings(sim: pd.DataFrame, spear: pd.DataFrame | None = None, layer_of: dict[str, int] | None = None,
             align: pd.DataFrame | None = None) -> dict:
    """The three questions Paper C answers, computed from our tables (no hard-coded claims).

    - is P > R for every language pair (at the table layer, and at every layer)?
    - how far does fine-tuning move the mean cosine (max |after - before|, in points)?
    - which pooling correlates better with transfer (mean rho at the table layer)?
    """
    layer_of = layer_of or last_layer(sim)
    out: dict = {}
    key = ["model", "adapter", "corpus", "lang_pair", "pooling", "layer"]
    wide = sim.pivot_table(index=key, columns="pair_type", values="mean_cosine").reset_index()
    wide["gap"] = wide["parallel"] - wide["random"]
    at = wide[wide.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
    out["P>R at table layer (share of rows)"] = float((at.gap > 0).mean())
    out["P>R at every layer (share of rows)"] = float((wide.gap > 0).mean())
    out["rows with P<=R at table layer"] = at[at.gap <= 0][key].to_dict("records")
    base = sim[sim.adapter == "base"].set_index(["model", "corpus", "lang_pair", "pooling", "layer", "pair_type"])
    aft = sim[sim.adapter != "base"].set_index(["model", "corpus", "lang_pair", "pooling", "layer", "pair_type"])
    if len(aft):
        diff = (aft["mean_cosine"] - base["mean_cosine"].reindex(aft.index)).dropna().reset_index()
        diff_at = diff[diff.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
        out["max |after-before| at table layer (points)"] = round(100 * float(diff_at.mean_cosine.abs().max()), 2)
        out["max |after-before| any layer (points)"] = round(100 * float(diff.mean_cosine.abs().max()), 2)
        out["mean |after-before| per pooling at table layer (points)"] = (
            diff_at.groupby("pooling").mean_cosine.apply(lambda s: round(100 * float(s.abs().mean()), 2)).to_dict())
    if spear is not None and len(spear):
        sp = spear[spear.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
        by = ["measure", "pooling"] if "measure" in spear else ["pooling"]
        out["mean rho per measure/pooling at table layer"] = {
            " / ".join(map(str, k)) if isinstance(k, tuple) else k: v
            for k, v in sp.groupby(by).spearman_rho.mean().round(3).items()}
        out["mean rho per measure/pooling over all layers"] = {
            " / ".join(map(str, k)) if isinstance(k, tuple) else k: v
            for k, v in spear.groupby(by).spearman_rho.mean().round(3).items()}
    if align is not None and len(align):
        base = align[align.adapter == "base"]
        for measure in ("raw_cosine", "centred_cosine", "retrieval_p1"):
            m = base[base.measure == measure]
            at = m[m.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
            out[f"{measure}: share of rows whose P-R interval is above 0 (table layer, every layer)"] = (
                round(float((at.gap_low > 0).mean()), 3), round(float((m.gap_low > 0).mean()), 3))
        raw = base[(base.measure == "raw_cosine") & (base.pooling == "mean")]
        hot = raw[raw.parallel > 0.95]  # anisotropic cells: parallel pairs' raw cosine above 0.95
        if len(hot):
            keys = ["model", "corpus", "lang_pair", "pooling", "layer"]
            cen = base[base.measure == "centred_cosine"].set_index(keys)
            ret = base[base.measure == "retrieval_p1"].set_index(keys)
            idx = hot.set_index(keys).index
            out["mean pooling, layers with raw P > 0.95: n cells, mean raw P-R, mean centred P-R, mean P@1"] = (
                len(hot), round(float(hot.gap.mean()), 3), round(float(cen.loc[idx].gap.mean()), 3),
                round(float(ret.loc[idx].parallel.mean()), 3))
    return out


def deviations(p: EmbeddingSettings, profile: str) -> list[str]:
    """How these settings depart from Paper C, written from their own values (notebooks 05 and 06 print them)."""
    steps = -(-(p.n_train or 0) // p.batch_size) if p.n_train else None
    pairs = ", ".join(f"{p.n_pairs.get(c) or 'all'} {c}" for c in p.similarity_corpora)
    lines = [
        *(["SMOKE: a handful of items, checks that the notebook runs; numbers are meaningless"]
          if profile == "smoke" else []),
        *(["LLaMA-7B is not in the registry; llama-2-7b-hf is its closest open stand-in"]
          if "llama-2-7b-hf" in p.models else []),
        f"models: {', '.join(p.models)} instead of LLaMA-7B"
        + (" (SmolLM2-135M-Instruct is English-centric like LLaMA; Gemma-3-270M is multilingual)"
           if GEMMA3 in p.models else ""),
        f"tasks: {', '.join(p.tasks)} (SIB-200 prompt is ours, shaped like Paper C's; XNLI and XL-Sum are not in "
        "the data mirror)",
        *(["PAWS-X tuning/evaluation not run in this profile (CPU time); pass tasks=('sib200', 'pawsx')"]
          if "pawsx" not in p.tasks else []),
        "PAWS-X: only dev is labelled here, so its 2000 rows are split once (seeded) into disjoint English "
        "training rows and test rows",
        f"tuning: {p.n_train or 'all'} English examples, {p.epochs:g} epoch(s)"
        + (f" ({steps} steps of {p.batch_size})" if steps else "")
        + f", lr {p.lr:g} (paper: full training set, 6 epochs, lr 2e-5); LoRA r8/a32 on all linear projections; "
        "loss on the label word's first token only",
        f"evaluation: {p.n_test or 'all'} test items per language per task (the same items in all six languages); "
        "label-word argmax instead of greedy 1-token decoding (it cannot produce the off-label answers Paper C "
        "counted wrong); prompts " + _length_words(p.prompt_max_length, p.prompt_length_cap, "model and task"),
        f"embeddings: {pairs} pairs per language pair (paper: 2000 PAWS-X pairs); sentences "
        + _length_words(p.embed_max_length, p.embed_length_cap, "model and corpus")
        + f"; 'after' = the {p.after_task} adapter, embedded on {', '.join(p.after_corpora)}",
        "Spearman over 5 languages: exact permutation p-values are multiples of 1/60 (minimum 0.017)",
    ]
    return lines


def _length_words(forced: int | None, cap: int | None, per: str) -> str:
    if forced is not None:
        return f"truncated to {forced} tokens (forced; see the truncation table for the share cut per language)"
    return (f"at full length: the longest of any language, fitted per {per}"
            + (f", capped at {cap} tokens" if cap else "") + " (truncation table beside the results)")


def print_deviations(p: EmbeddingSettings, profile: str) -> None:
    """The deviations block at the top of notebooks 05 and 06."""
    print(f"profile={profile!r}; deviations from Paper C:")
    for line in deviations(p, profile):
        print(" -", line)
