"""Classification metrics of one run and their mean (std) over seeds, as Paper B reports them.

Binary tasks: F1 of the positive class (label 1) and AUROC of its probability.
Multi-class: macro F1 and one-vs-rest macro AUROC. AUROC needs only the ranking, F1
the decision threshold (argmax) too — Paper B's point is that the two diverge at ja0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

METRICS = ("f1", "auroc", "accuracy")


def classification_scores(labels, probs) -> dict[str, float]:
    """F1 / AUROC / accuracy from true labels and class probabilities (n, num_labels).

    Example: ``classification_scores([0, 1, 1], [[.9, .1], [.4, .6], [.6, .4]])``
    gives f1 0.667, auroc 1.0, accuracy 0.667.
    """
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] != len(y):
        raise ValueError(f"probs must have shape (n={len(y)}, num_labels), got {p.shape}")
    pred = p.argmax(1)
    if p.shape[1] == 2:
        f1 = f1_score(y, pred, average="binary", zero_division=0)
        auroc = roc_auc_score(y, p[:, 1]) if len(set(y)) == 2 else float("nan")
    else:
        f1 = f1_score(y, pred, average="macro", labels=list(range(p.shape[1])), zero_division=0)
        present = sorted(set(y))
        if len(present) < 2:
            auroc = float("nan")
        else:
            pp = p[:, present] / p[:, present].sum(1, keepdims=True)
            auroc = roc_auc_score(y, pp, multi_class="ovr", average="macro", labels=present)
    return {"f1": float(f1), "auroc": float(auroc), "accuracy": float(accuracy_score(y, pred))}


def summarize_over_seeds(runs: pd.DataFrame, keys=("model", "dataset", "condition", "pattern")) -> pd.DataFrame:
    """Long table (keys..., metric, mean, std, n_seeds) from one row per run with metric columns.

    std is the sample standard deviation (ddof=1) over seeds, 0 with one seed.
    """
    keys = list(keys)
    long = runs.melt(id_vars=keys + ["seed"], value_vars=[m for m in METRICS if m in runs], var_name="metric")
    g = long.groupby(keys + ["metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, n_seeds="count")
    return out.reset_index()


def _binary_f1(y: np.ndarray, p: np.ndarray) -> float:
    """F1 of label 1 with the argmax decision (a tie goes to label 0), as ``classification_scores`` without sklearn's
    overhead (the bootstrap calls it thousands of times)."""
    pred = p[:, 1] > p[:, 0]
    tp = float(np.sum(pred & (y == 1)))
    denom = float(np.sum(pred) + np.sum(y == 1))
    return 2 * tp / denom if denom else 0.0


def _binary_auroc(y: np.ndarray, p1: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic (ties count one half), NaN with one class: ``roc_auc_score``'s value."""
    from scipy.stats import rankdata

    n_pos = int(np.sum(y == 1))
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p1)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def seed_mean_metric(metric: str, labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean over seeds of ``metric`` for probs (n_items, n_seeds, num_labels) on the same test items."""
    if metric == "accuracy":
        return float(np.mean(probs.argmax(2) == labels[:, None]))
    if probs.shape[2] == 2 and metric in ("f1", "auroc"):
        if metric == "f1":
            return float(np.mean([_binary_f1(labels, probs[:, k]) for k in range(probs.shape[1])]))
        return float(np.mean([_binary_auroc(labels, probs[:, k, 1]) for k in range(probs.shape[1])]))
    return float(np.mean([classification_scores(labels, probs[:, k])[metric] for k in range(probs.shape[1])]))


def items_bootstrap_interval(metric: str, labels, probs, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the seed-mean ``metric`` over resamples of the test items (all seeds resampled
    jointly, since they share the test set): the sampling error of a 100-item test set, which the std over seeds
    does not contain. ``probs``: (n_items, n_seeds, num_labels), rows aligned with ``labels``."""
    from cltrlib.metrics import bootstrap_statistic

    y, p = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    _, low, high = bootstrap_statistic(lambda yy, pp: seed_mean_metric(metric, yy, pp), y, p, n_boot=n_boot,
                                       seed=seed)
    return low, high
