"""Tables and figures in Paper B's layout, with the paper's numbers beside ours.

CSV files are long format (model, dataset, condition, pattern, metric, mean, std,
n_seeds); the Markdown files follow Paper B's Tables 3/4 (rows: models, columns:
ja0 / ja16 / ja104, cells "mean (std)") and Table 5 (rows: rank, columns: patterns).
"""

from __future__ import annotations

import pandas as pd

from cltrlib.transfer.attribution import aggregate_attributions
from cltrlib.transfer.scores import summarize_over_seeds

PATTERN_ORDER = ["ja0", "ja16", "ja104"]
LEGEND_INSIDE_MAX = 6  # legend entries that fit in a corner of the AUROC panel

# Paper B, Tables 3 (F1) and 4 (AUROC); None = not reported ("-"). The multilingual models trained on English +
# Japanese rows (our cross-lingual condition); OpenCALM-7B and Japanese BERT are Japanese-only models, trained on the
# Japanese rows alone in the paper (``PAPER_B_JAPANESE_ONLY``): they sit beside our monolingual rows.
PAPER_B: dict[str, dict[str, list[float | None]]] = {
    "f1": {
        "ELYZA-japanese-Llama-2-7b-fast-instruct": [0.691, 0.777, 0.857],
        "Llama-2-7b": [0.631, 0.773, 0.839],
        "bert-base-multilingual-cased": [0.694, 0.675, 0.740],
        "OpenCALM-7B": [None, 0.674, 0.781],
        "bert-base-japanese-v2": [None, 0.595, 0.679],
    },
    "auroc": {
        "ELYZA-japanese-Llama-2-7b-fast-instruct": [0.915, 0.920, 0.929],
        "Llama-2-7b": [0.923, 0.911, 0.919],
        "bert-base-multilingual-cased": [0.836, 0.835, 0.814],
        "OpenCALM-7B": [None, 0.726, 0.861],
        "bert-base-japanese-v2": [None, 0.635, 0.726],
    },
}


# Run columns that tell runs of one (model, condition, pattern) apart: full-depth runs beside a probe grid may train
# fewer epochs and in bf16 (``TransferSettings.full_depth_*``), and the tables say so.
SETTING_KEYS = ("train_balance", "layers", "epochs", "bf16")


PAPER_B_JAPANESE_ONLY = frozenset({"OpenCALM-7B", "bert-base-japanese-v2"})


def paper_condition(model: str) -> str:
    """The condition of ours a Paper B reference row compares with."""
    return "monolingual" if model in PAPER_B_JAPANESE_ONLY else "crosslingual"


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (std) over seeds of every metric, long format, patterns in paper order; the training balance (and any
    other ``SETTING_KEYS`` column the runs carry) is a key, so the tables say which one each row used."""
    keys = ["model", "dataset", "condition", "pattern", *[k for k in SETTING_KEYS if k in runs]]
    out = summarize_over_seeds(runs, keys=keys)
    out = out.merge(item_intervals(runs, keys), on=[*keys, "metric"], how="left")
    order = {p: i for i, p in enumerate(PATTERN_ORDER)}
    out["_o"] = out["pattern"].map(lambda p: order.get(p, len(order)))
    return out.sort_values(["metric", "model", "condition", "_o"]).drop(columns="_o").reset_index(drop=True)


def item_intervals(runs: pd.DataFrame, keys: list[str], metrics=("f1", "auroc", "accuracy"), n_boot: int = 1000
                         ) -> pd.DataFrame:
    """Per group of runs (``keys``) and metric: n_test and the 95% bootstrap interval over test items of the seed
    mean (``scores.items_bootstrap_interval``; the seeds share one test set and are resampled jointly). Runs without
    stored predictions (no ``adapter_dir``) get no interval."""
    import numpy as np

    from cltrlib.transfer.scores import items_bootstrap_interval
    from cltrlib.transfer.train import load_run_probs

    rows = []
    has_dir = runs["adapter_dir"].notna() if "adapter_dir" in runs else pd.Series(False, index=runs.index)
    for key, g in runs[has_dir].groupby(keys, sort=False):
        frames = [load_run_probs(r).set_index("id") for r in g.to_dict("records")]
        ids = frames[0].index
        if any(not f.index.equals(ids) for f in frames):
            raise ValueError(f"runs of {key} were tested on different items; their intervals cannot be joined")
        probs = np.stack([np.array(f["probs"].tolist()) for f in frames], axis=1)
        labels = frames[0]["label"].to_numpy()
        for metric in metrics:
            low, high = items_bootstrap_interval(metric, labels, probs, n_boot=n_boot)
            rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, "n_test": len(ids),
                         "test_ci_low": low, "test_ci_high": high})
    return pd.DataFrame(rows, columns=[*keys, "metric", "n_test", "test_ci_low", "test_ci_high"])


def _cell(r) -> str:
    """``mean (std over seeds) [95% CI over test items]``; the bracket only where predictions were stored, the std
    ``(-)`` for a single seed (it has no spread to show; the bracket is then its only uncertainty)."""
    ci = getattr(r, "test_ci_low", float("nan"))
    bracket = "" if pd.isna(ci) else f" [{r.test_ci_low:.2f}, {r.test_ci_high:.2f}]"
    std = "-" if getattr(r, "n_seeds", 2) < 2 else f"{r.std:.3f}"
    return f"{r.mean:.3f} ({std}){bracket}"


def paper_layout(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Paper B Table 3/4 layout: one row per (source, model, condition), one column per pattern; cells
    ``mean (std over seeds) [95% CI over test items]``. Paper B's rows follow ours of the same condition (its
    Japanese-only models beside our monolingual rows)."""
    patterns = [p for p in PATTERN_ORDER if p in set(summary["pattern"])] + sorted(
        set(summary["pattern"]) - set(PATTERN_ORDER))
    rows = []
    sub = summary[summary["metric"] == metric]
    keys = ["model", "dataset", "condition", *[k for k in SETTING_KEYS if k in sub]]
    for key, g in sub.groupby(keys, sort=False):
        r0 = dict(zip(keys, key, strict=True))
        cells = {r.pattern: _cell(r) for r in g.itertuples()}
        balance = f", training {r0['train_balance']}" if "train_balance" in r0 else ""
        n_test = f", n_test={int(g['n_test'].max())}" if "n_test" in g and g["n_test"].notna().any() else ""
        epochs = f", {int(r0['epochs'])} epochs" if "epochs" in r0 else ""
        bf16 = ", bf16" if r0.get("bf16") in (True,) else ""  # numpy booleans too; NaN (not recorded) is not
        rows.append({"source": f"ours ({r0['dataset']}, n_seeds={int(g['n_seeds'].max())}{n_test}{balance}"
                               f"{epochs}{bf16})",
                     "model": r0["model"], "condition": r0["condition"], "layers": r0.get("layers", "-"),
                     **{p: cells.get(p, "-") for p in patterns}})
    for model, values in PAPER_B.get(metric, {}).items():
        cells = dict(zip(PATTERN_ORDER, values, strict=True))
        rows.append({"source": "Paper B (ESG headlines)", "model": model, "condition": paper_condition(model),
                     "layers": "LoRA all" if "bert" not in model else "full",
                     **{p: "-" if cells.get(p) is None else f"{cells[p]:.3f}" for p in patterns}})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {c: i for i, c in enumerate(("crosslingual", "monolingual"))}
    out["_c"] = out["condition"].map(lambda c: order.get(c, len(order)))
    out["_p"] = out["source"].str.startswith("Paper B")
    return out.sort_values(["_c", "_p"], kind="stable").drop(columns=["_c", "_p"]).reset_index(drop=True)


def write_transfer_tables(summary: pd.DataFrame, out_dir=None) -> dict[str, str]:
    """``transfer_f1`` and ``transfer_auroc`` CSV (long) + Markdown (paper layout); returns metric → CSV path."""
    from cltrlib.tables import write_table

    paths = {}
    for metric in ("f1", "auroc"):
        long = summary[summary["metric"] == metric].reset_index(drop=True)
        paths[metric] = str(write_table(long, f"transfer_{metric}", out_dir=out_dir,
                                        markdown=paper_layout(summary, metric)))
    return paths


def write_length_table(lengths: pd.DataFrame, out_dir=None) -> str:
    """``transfer_lengths``: per model and language, token lengths, the input length used and the share truncated
    (``experiment.length_table``), the table printed beside Tables 3 and 4."""
    from cltrlib.tables import write_table

    return str(write_table(lengths, "transfer_lengths", out_dir=out_dir, float_format="%.3g"))


def attribution_table(per_token: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Top tokens per (model, condition, pattern), long: model, condition, pattern, rank, token, mean_weight."""
    frames = []
    for (model, condition, pattern), g in per_token.groupby(["model", "condition", "pattern"], sort=False):
        agg = aggregate_attributions(g, n_texts=int(g["n_texts"].iloc[0]), top=top)
        frames.append(agg.assign(model=model, condition=condition, pattern=pattern))
    cols = ["model", "condition", "pattern", "rank", "token", "mean_weight", "n_texts_with"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def attribution_layout(table: pd.DataFrame) -> pd.DataFrame:
    """Paper B Table 5 layout: rank rows, one column per pattern, cells "token (weight)"."""
    wide = {}
    for (model, pattern), g in table.groupby(["model", "pattern"], sort=False):
        wide[f"{pattern} ({model})"] = [f"{t} ({w:+.2g})" for t, w in zip(g["token"], g["mean_weight"], strict=True)]
    n = max((len(v) for v in wide.values()), default=0)
    out = pd.DataFrame({"rank": range(1, n + 1)})
    for col, vals in wide.items():
        out[col] = vals + [""] * (n - len(vals))
    return out


def write_attribution_table(per_token: pd.DataFrame, top: int = 10, out_dir=None) -> pd.DataFrame:
    from cltrlib.tables import write_table

    table = attribution_table(per_token, top)
    # significant digits, not decimals: a saturated classifier (ja0) has weights of order 1e-5 that still rank
    write_table(table, "attribution_top_tokens", out_dir=out_dir, markdown=attribution_layout(table),
                float_format="%.4g")
    return table


def plot_transfer(summary: pd.DataFrame, patterns: dict[str, int]):
    """F1 and AUROC vs number of Japanese training examples: ours solid (±std over seeds), Japanese-only training
    dotted, full-depth LoRA beside a probe grid dash-dot; Paper B grey (dashed; its Japanese-only models dotted)."""
    import matplotlib.pyplot as plt

    from cltrlib.plots import legend_beside, setup_style

    setup_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, metric, title in zip(axes, ("f1", "auroc"), ("F1", "AUROC"), strict=True):
        sub = summary[summary["metric"] == metric]
        colors = {}
        keys = ["model", "condition", *(["layers"] if "layers" in sub else [])]
        full_depth = set(sub["layers"]) > {"LoRA all"} if "layers" in sub else False  # a probe grid + full depth
        for key, g in sub.groupby(keys, sort=False):
            model, condition = key[0], key[1]
            deep = full_depth and key[2] == "LoRA all"
            g = g.assign(n=g["pattern"].map(patterns)).sort_values("n")
            mono = condition == "monolingual"  # Japanese rows only: same colour, dotted, open markers
            ls, marker = (":" if mono else "-"), "o"
            if deep:  # LoRA on every layer beside the top-layer probe: same colour, dash-dot, squares
                ls, marker = "-.", "s"
            tag = ", 日本語のみ" if mono else (", LoRA all layers" if deep else "")
            if deep:  # what the full-depth runs cut to fit (TransferSettings.full_depth_*), in the legend itself
                n_seeds = int(g["n_seeds"].min()) if "n_seeds" in g else 0
                epochs = f", {int(g['epochs'].iloc[0])} epochs" if "epochs" in g else ""
                tag += f" ({n_seeds} seed{'s' if n_seeds != 1 else ''}{epochs})" if n_seeds else ""
            bars = ax.errorbar(g["n"], g["mean"], yerr=g["std"], marker=marker, capsize=3,
                               lw=1.2 if mono else 2, ls=ls, mfc="white" if mono or deep else None,
                               color=colors.get(model), label=f"{model} (ours{tag})")
            colors.setdefault(model, bars.lines[0].get_color())
        for model, values in PAPER_B[metric].items():
            xs = [patterns.get(p) for p in PATTERN_ORDER]
            pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None and x is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), ls=":" if model in PAPER_B_JAPANESE_ONLY else "--", lw=1,
                        alpha=0.55, color="grey")
        ax.plot([], [], ls="--", color="grey", label="Paper B models (ESG data)")
        ax.plot([], [], ls=":", color="grey", label="Paper B, Japanese-only models")
        ax.set_title(f"{title}（英語＋日本語 n 件で学習、日本語でテスト）")
        ax.set_xlabel("日本語の学習例の数 n")
        ax.set_xticks(sorted(set(patterns.values())))
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("score (mean ± std over seeds)")
    axes[1].axhline(0.5, color="black", lw=0.8, ls=":")
    if len(axes[1].get_legend_handles_labels()[0]) > LEGEND_INSIDE_MAX:  # e.g. the paper profile's five models
        legend_beside(fig, axes, title="model")
    else:
        axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_attributions(table: pd.DataFrame):
    """Top tokens per pattern as horizontal bars (Japanese tokens need the suite's Japanese font)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from cltrlib.plots import setup_style

    setup_style()
    groups = list(table.groupby(["model", "pattern"], sort=False))
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4.2 * max(1, len(groups)), 4.2), squeeze=False)
    for ax, ((model, pattern), g) in zip(axes[0], groups, strict=False):
        g = g.sort_values("rank", ascending=False)
        ax.barh(g["token"].astype(str), g["mean_weight"], color="#0173b2")
        ax.set_title(f"{pattern}  ({model})")
        ax.set_xlabel("mean LIME weight → positive class")
        # a saturated classifier (ja0) has weights ~1e-5: write the scale into each tick, no offset text
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.2g}"))
    fig.tight_layout()
    return fig


def _layer_keys(summary: pd.DataFrame) -> list[str]:
    return ["layers"] if "layers" in summary else []


def zero_shot_boundary(summary: pd.DataFrame) -> pd.DataFrame:
    """Paper B's finding in numbers: per model (and what it trained), ja0 (no Japanese training rows) F1, AUROC and
    AUROC − F1.

    A large positive gap means the classifier ranks Japanese texts well but puts its decision boundary in the wrong
    place; empty when the grid has no ja0 pattern.
    """
    index = ["model", *_layer_keys(summary)]
    cross = summary[(summary["condition"] == "crosslingual") & (summary["pattern"] == "ja0")]
    wide = cross.pivot_table(index=index, columns="metric", values="mean")
    if wide.empty:
        return pd.DataFrame(columns=[*index, "f1", "auroc", "auroc_minus_f1"])
    return wide.assign(auroc_minus_f1=wide["auroc"] - wide["f1"]).reset_index()[
        [*index, "f1", "auroc", "auroc_minus_f1"]]


def english_rows_added(summary: pd.DataFrame) -> pd.DataFrame:
    """What the English training rows add over Japanese-only training, per model and pattern: cross-lingual minus
    monolingual mean F1 and AUROC (rows only where both conditions ran with the same layers trained)."""
    index = ["model", *_layer_keys(summary), "pattern"]
    both = summary.pivot_table(index=index, columns=["condition", "metric"], values="mean")
    if ("monolingual", "auroc") not in both.columns:
        return pd.DataFrame(columns=[*index, "f1_added", "auroc_added"])
    both = both.dropna(subset=[("monolingual", "auroc")])
    return pd.DataFrame({
        "f1_added": both[("crosslingual", "f1")] - both[("monolingual", "f1")],
        "auroc_added": both[("crosslingual", "auroc")] - both[("monolingual", "auroc")],
    }).reset_index()


def probe_vs_full_depth(summary: pd.DataFrame) -> pd.DataFrame:
    """Does the top-layer probe tell the same story as LoRA on every layer? Per model, metric and pattern run both
    ways (cross-lingual): each one's mean, std over seeds (NaN for a single seed), seeds, epochs and 95% interval over
    the test items (``pattern_change`` gives each one's change from ja0 with a paired interval)."""
    if "layers" not in summary:
        return pd.DataFrame()
    cross = summary[(summary["condition"] == "crosslingual") & summary["metric"].isin(["f1", "auroc"])]
    deep_models = set(cross.loc[cross["layers"] == "LoRA all", "model"])
    probe = cross[(cross["layers"] != "LoRA all") & cross["model"].isin(deep_models)]
    deep = cross[(cross["layers"] == "LoRA all") & cross["model"].isin(deep_models)]
    if probe.empty or deep.empty:
        return pd.DataFrame()
    on = ["model", "metric", "pattern"]
    cols = [c for c in ("mean", "std", "n_seeds", "epochs", "test_ci_low", "test_ci_high") if c in cross]
    both = probe[[*on, "layers", *cols]].merge(deep[[*on, *cols]], on=on, suffixes=("_probe", "_all_layers"))
    for side in ("_probe", "_all_layers"):  # one seed has no spread: show none rather than 0
        both[f"std{side}"] = both[f"std{side}"].where(both[f"n_seeds{side}"] > 1)
    both = both.rename(columns={"layers": "probe"})
    both["_o"] = both["pattern"].map({p: i for i, p in enumerate(PATTERN_ORDER)})
    return both.sort_values(["model", "metric", "_o"]).drop(columns="_o").reset_index(drop=True)


def pattern_change(runs: pd.DataFrame, start: str = "ja0", end: str | None = None, metrics=("f1", "auroc"),
                   n_boot: int = 1000) -> pd.DataFrame:
    """What the Japanese training rows change, with its uncertainty: per group of runs (model, condition and what
    they trained: ``SETTING_KEYS``) and metric, the seed mean at ``end`` (default: the largest pattern the group ran)
    minus at ``start``, and a 95% bootstrap interval over the test items. Every pattern is tested on the same items,
    so both patterns' predictions (all seeds) are resampled jointly: a paired interval, narrower than the two
    patterns' own intervals would suggest. Groups without both patterns are left out."""
    import numpy as np

    from cltrlib.metrics import bootstrap_statistic
    from cltrlib.transfer.scores import seed_mean_metric
    from cltrlib.transfer.train import load_run_probs

    keys = ["model", "dataset", "condition", *[k for k in SETTING_KEYS if k in runs]]
    rows = []
    for key, g in runs[runs["adapter_dir"].notna()].groupby(keys, sort=False):
        last = end or g.loc[g["n_train"].idxmax(), "pattern"]  # the most Japanese rows (same English rows)
        a, b = g[g["pattern"] == start], g[g["pattern"] == last]
        if a.empty or b.empty or last == start:
            continue
        frames = [[load_run_probs(r).set_index("id") for r in part.to_dict("records")] for part in (a, b)]
        ids = frames[0][0].index
        if any(not f.index.equals(ids) for part in frames for f in part):
            raise ValueError(f"runs of {key} were tested on different items; their change cannot be paired")
        pa, pb = (np.stack([np.array(f["probs"].tolist()) for f in part], axis=1) for part in frames)
        labels = frames[0][0]["label"].to_numpy()
        for metric in metrics:
            def change(y, p0, p1, m=metric):
                return seed_mean_metric(m, y, p1) - seed_mean_metric(m, y, p0)

            point, low, high = bootstrap_statistic(change, labels, pa, pb, n_boot=n_boot)
            rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, "from": start, "to": last,
                         "n_seeds": min(len(a), len(b)), "n_test": len(ids), "start": seed_mean_metric(metric, labels, pa),
                         "end": seed_mean_metric(metric, labels, pb), "change": point, "change_ci_low": low,
                         "change_ci_high": high})
    return pd.DataFrame(rows, columns=[*keys, "metric", "from", "to", "n_seeds", "n_test", "start", "end", "change",
                                       "change_ci_low", "change_ci_high"])


def full_depth_layout(summary: pd.DataFrame, change: pd.DataFrame) -> pd.DataFrame:
    """Probe vs full depth on the contrast the full-depth runs cover (cross-lingual, e.g. ja0 -> ja104): one row per
    model and what it trained (only models run both ways), F1 and AUROC at both patterns (cells as in Tables 3/4:
    mean (std over seeds) [95% CI over test items]) and the change with its paired interval (``pattern_change``)."""
    cross = summary[summary["condition"] == "crosslingual"]
    deep_models = set(cross.loc[cross["layers"] == "LoRA all", "model"]) if "layers" in cross else set()
    change = change[(change["condition"] == "crosslingual") & change["model"].isin(deep_models)]
    if change.empty:
        return pd.DataFrame()
    keys = ["model", *[k for k in SETTING_KEYS if k in change]]
    rows = []
    for key, g in change.groupby(keys, sort=False):
        r0 = dict(zip(keys, key, strict=True))
        start, end = g["from"].iloc[0], g["to"].iloc[0]
        row = {"model": r0["model"], "layers": r0.get("layers", "-"), "epochs": r0.get("epochs", "-"),
               "precision": "bf16" if r0.get("bf16") in (True,) else "fp32", "n_seeds": int(g["n_seeds"].min()),
               "n_test": int(g["n_test"].max())}
        for c in g.itertuples():
            sel = cross
            for k, v in r0.items():
                sel = sel[sel[k] == v]
            cells = {r.pattern: _cell(r) for r in sel[sel["metric"] == c.metric].itertuples()}
            row[f"{c.metric} {start}"] = cells.get(start, "-")
            row[f"{c.metric} {end}"] = cells.get(end, "-")
            row[f"{c.metric} {end} - {start}"] = f"{c.change:+.3f} [{c.change_ci_low:+.2f}, {c.change_ci_high:+.2f}]"
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "layers"], kind="stable").reset_index(drop=True)


def write_full_depth_table(summary: pd.DataFrame, change: pd.DataFrame, out_dir=None) -> pd.DataFrame:
    """``transfer_probe_vs_full_depth``: the CSV has ``pattern_change``'s numbers for the models run both ways, the
    Markdown ``full_depth_layout``; nothing is written when no model ran both ways."""
    from cltrlib.tables import write_table

    layout = full_depth_layout(summary, change)
    if not layout.empty:
        long = change[change["model"].isin(set(layout["model"])) & (change["condition"] == "crosslingual")]
        write_table(long.reset_index(drop=True), "transfer_probe_vs_full_depth", out_dir=out_dir, markdown=layout)
    return layout
