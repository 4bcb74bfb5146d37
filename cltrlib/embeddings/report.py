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


def table1(acc: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """Rows model / task / condition, columns en fr de es zh ja (accuracy)."""
    wide = acc.pivot_table(index=["model", "task", "condition"], columns="lang", values="accuracy", sort=False)
    wide = wide.reindex(columns=list(EVAL_LANGS)).reset_index()
    n = acc.groupby(["model", "task", "condition"], sort=False)["n"].first().reset_index()
    wide = wide.merge(n, on=["model", "task", "condition"])
    if with_paper:
        ref = pd.DataFrame([{"model": m, "task": t, "condition": c, **dict(zip(EVAL_LANGS, v, strict=True)),
                             "n": None} for (m, t, c), v in PAPER_TABLE1.items()])
        wide = pd.concat([wide, ref], ignore_index=True)
    return wide.rename(columns={"n": "n per lang"})


def table2(sim: pd.DataFrame, layer_of: dict[str, int] | None = None, with_paper: bool = True) -> pd.DataFrame:
    """Rows model / corpus / lang pair; per pooling Before-P, Before-R, After-P, After-R and the P-R gaps."""
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


def table3(spear: pd.DataFrame, layer_of: dict[str, int], with_paper: bool = True) -> pd.DataFrame:
    """Rows model / corpus / task; per pooling Spearman rho and exact p at the table layer."""
    sel = spear[spear.apply(lambda r: r.layer == layer_of[r.model], axis=1)]
    rows = []
    for (model, corpus, task), g in sel.groupby(["model", "corpus", "task"], sort=False):
        row = {"model": model, "layer": layer_of[model], "corpus": corpus, "task": task}
        for pooling in ("mean", "last"):
            gp = g[g.pooling == pooling]
            if len(gp):
                row[f"{pooling} rho"] = float(gp.spearman_rho.iloc[0])
                row[f"{pooling} p"] = float(gp.p_value.iloc[0])
        if "note" in g and g.note.iloc[0]:
            row["note"] = g.note.iloc[0]
        rows.append(row)
    out = pd.DataFrame(rows)
    if with_paper:
        ref = [{"model": "paper: LLaMA-7B", "layer": None, "corpus": c, "task": "pawsx",
                "mean rho": PAPER_TABLE3[(c, "mean")][0], "mean p": PAPER_TABLE3[(c, "mean")][1],
                "last rho": PAPER_TABLE3[(c, "last")][0], "last p": PAPER_TABLE3[(c, "last")][1]}
               for c in ("pawsx", "pud")]
        out = pd.concat([out, pd.DataFrame(ref)], ignore_index=True)
    if "note" in out:
        out["note"] = out["note"].fillna("")
    return out


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


def plot_generalization(acc: pd.DataFrame):
    """Accuracy per language, base vs fine-tuned: rows = models, columns = tasks."""
    import seaborn as sns

    models, tasks = list(dict.fromkeys(acc.model)), list(dict.fromkeys(acc.task))
    fig, axes = _grid(models, tasks)
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            g = acc[(acc.model == model) & (acc.task == task)]
            sns.barplot(data=g, x="lang", y="accuracy", hue="condition", order=list(EVAL_LANGS),
                        hue_order=["base", "fine-tuned"], ax=ax)
            ax.axhline(0.5 if task == "pawsx" else 1 / 7, color="gray", ls=":", lw=1.2)
            ax.set_title(f"{model} — {task} (n={int(g.n.iloc[0])}/言語)", fontsize=11)
            ax.set_ylim(0, 1)
            ax.set_xlabel("言語 (language)")
            if (i, j) != (0, 0):
                ax.get_legend().remove()
    fig.suptitle("英語のみで微調整したモデルのゼロショット正解率 (点線 = チャンスレベル)")
    fig.tight_layout()
    return fig


def plot_spearman_layers(spear: pd.DataFrame):
    """Spearman rho by layer: rows = models, columns = tuning task; colour = corpus, dashes = last-token."""
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
    fig.suptitle("微調整後の正解率と微調整前の en-X 類似度 (対訳ペア) の Spearman 相関 (5言語)")
    fig.tight_layout()
    return fig


def findings(sim: pd.DataFrame, spear: pd.DataFrame | None = None, layer_of: dict[str, int] | None = None) -> dict:
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
        out["mean rho per pooling at table layer"] = sp.groupby("pooling").spearman_rho.mean().round(3).to_dict()
        out["mean rho per pooling over all layers"] = spear.groupby("pooling").spearman_rho.mean().round(3).to_dict()
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
        f"label-word argmax instead of greedy 1-token decoding; prompts left-truncated to {p.prompt_max_length} "
        "tokens",
        f"embeddings: {pairs} pairs per language pair (paper: 2000 PAWS-X pairs); sentences truncated to "
        f"{p.embed_max_length} tokens; 'after' = the {p.after_task} adapter, embedded on "
        f"{', '.join(p.after_corpora)}",
        "Spearman over 5 languages: exact permutation p-values are multiples of 1/60 (minimum 0.017)",
    ]
    return lines


def print_deviations(p: EmbeddingSettings, profile: str) -> None:
    """The deviations block at the top of notebooks 05 and 06."""
    print(f"profile={profile!r}; deviations from Paper C:")
    for line in deviations(p, profile):
        print(" -", line)
