"""The statistics behind every judgement: intervals over seeds, a noise scale for a configuration seen with few
seeds, and the regression tests. Plain functions (numpy and scipy), so tests can simulate them at scale.

Seeds are the unit of replication: a configuration run with n seeds gives n independent draws of its metric.
With n = 2 or 3 a configuration's own standard deviation is a poor estimate of its noise, so the regression
check moderates it toward the typical spread of the baseline's configurations of the same task — the
empirical-Bayes variance of Smyth (2004), "Linear models and empirical Bayes methods for assessing differential
expression in microarray experiments" — and reads its tests against Student's t with the added degrees of
freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95  # confidence of every interval shown


def t_interval(values: Sequence[float], log: bool = False, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t confidence interval of the mean over seeds; low = high = NaN below two.
    With ``log``, mean and interval are those of the logs, taken back (a geometric mean): the right scale for a
    metric such as RMSE whose seeds spread over a factor rather than a margin.

    >>> [round(v, 4) for v in t_interval([0.46, 0.47, 0.45])]
    [0.46, 0.4352, 0.4848]
    >>> [round(v, 5) for v in t_interval([0.001, 0.002, 0.004], log=True)]
    [0.002, 0.00036, 0.01119]
    >>> t_interval([0.5])[0], math.isnan(t_interval([0.5])[1])
    (0.5, True)
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0 or (log and (x <= 0).any()):
        return math.nan, math.nan, math.nan
    if log:
        x = np.log(x)
    mean = float(x.mean())
    if len(x) < 2:
        return (math.exp(mean) if log else mean), math.nan, math.nan
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    if log:
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
    return mean, mean - half, mean + half


def median_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float, float]:
    """(median, low, high, coverage): a distribution-free confidence interval of the median from order statistics
    (the k-th smallest and k-th largest value, with k the largest for which at least ``level`` of the binomial
    mass lies between them: the confidence interval for a quantile in Conover, "Practical Nonparametric
    Statistics"). Timings on a shared machine have heavy, lopsided tails, which a t interval of the mean would
    not respect. With fewer than six values even their range is less than 95 % sure: ``coverage`` says how
    sure the interval is.

    >>> median_interval([1.00, 1.02, 0.98, 1.30, 0.99, 1.01, 1.03, 0.97, 1.00])  # 9 pairs: 2nd to 8th value
    (1.0, 0.98, 1.03, 0.9609375)
    >>> median_interval([0.9, 1.1, 1.0])  # too few for 95 %: the range, sure at 75 %
    (1.0, 0.9, 1.1, 0.75)
    """
    x = sorted(float(v) for v in values)
    n = len(x)
    k, coverage = 1, 1 - 2 * 0.5**n  # the range: wrong only when every value lies on one side of the median
    for j in range(2, n // 2 + 1):
        covered = 1 - 2 * float(scipy_stats.binom.cdf(j - 1, n, 0.5))
        if covered < level:
            break
        k, coverage = j, covered
    return float(np.median(x)), x[k - 1], x[n - k], coverage


def prior_variance(variances: Sequence[float]) -> float:
    """The typical within-configuration variance of a task's configurations: their median (robust to the few
    configurations whose seeds disagree wildly, which are exactly the ones a mean would be dragged by)."""
    v = [x for x in variances if x is not None and not math.isnan(x)]
    return float(np.median(v)) if v else math.nan


def moderated_sd(sd: float, n: int, prior_var: float, prior_df: float) -> tuple[float, float]:
    """(standard deviation, degrees of freedom): ``sd`` over ``n`` seeds shrunk toward ``prior_var``.

    The posterior variance ((n−1)·sd² + d₀·s₀²) / (n−1+d₀) with d₀ = ``prior_df``; a configuration with one seed
    takes the prior alone. Never below the configuration's own sd: moderation may only widen what is seen.

    >>> [round(v, 4) for v in moderated_sd(0.001, 3, 0.0004 ** 2, 2.0)]
    [0.001, 4.0]
    >>> [round(v, 4) for v in moderated_sd(0.0001, 3, 0.0004 ** 2, 2.0)]
    [0.0003, 4.0]
    """
    own = (n - 1) * sd**2 if n > 1 and not math.isnan(sd) else 0.0
    df = max(0, n - 1) + prior_df
    if math.isnan(prior_var) or df == 0:
        return (sd if n > 1 else math.nan), float(max(0, n - 1))
    pooled = math.sqrt((own + prior_df * prior_var) / df)
    return (max(pooled, sd) if n > 1 and not math.isnan(sd) else pooled), float(df)


def worse_tests(base: Sequence[float], new: Sequence[float], sd: float, df: float, alpha: float,
                min_delta: float) -> dict[str, float]:
    """Two one-sided tests that ``new`` seeds are worse (higher) than ``base`` seeds, each at ``alpha / 2``:

    - ``seed``: the worst new seed against the baseline mean — a prediction interval for one new draw, with
      a Bonferroni correction over the new seeds — so one seed collapsing fails even when the others are fine;
    - ``mean``: the new mean against the baseline mean (a two-sample t test with the moderated sd).

    Each also needs the change to exceed ``min_delta``: a shift too small to matter never fails. Returns the
    margin by which each statistic exceeds its threshold (> 0: worse), and the thresholds.

    >>> r = worse_tests([0.460, 0.461, 0.459], [0.460, 0.461, 0.6616], sd=0.001, df=4.0, alpha=0.01, min_delta=0.005)
    >>> r["seed"] > 0, r["mean"] > 0
    (True, True)
    >>> r = worse_tests([0.460, 0.461, 0.459], [0.4605, 0.4595, 0.461], sd=0.001, df=4.0, alpha=0.01, min_delta=0.005)
    >>> r["seed"] > 0, r["mean"] > 0
    (False, False)
    """
    b = np.asarray(base, dtype=float)
    c = np.asarray(new, dtype=float)
    n, m, mean_b = len(b), len(c), float(b.mean())
    seed_q = float(scipy_stats.t.ppf(1 - alpha / 2 / m, df))
    mean_q = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    seed_threshold = max(seed_q * sd * math.sqrt(1 + 1 / n), min_delta)
    mean_threshold = max(mean_q * sd * math.sqrt(1 / n + 1 / m), min_delta)
    return {"seed": float(c.max() - mean_b - seed_threshold), "mean": float(c.mean() - mean_b - mean_threshold),
            "seed_threshold": seed_threshold, "mean_threshold": mean_threshold}


def shift_half_width(n: int, m: int, sd: float, df: float, level: float = LEVEL) -> float:
    """Half the ``level`` interval of a difference of two means over ``n`` and ``m`` seeds, with the moderated
    ``sd`` and ``df`` the mean test of :func:`worse_tests` reads: the interval that test's statistic implies.

    >>> round(shift_half_width(3, 3, 0.001, 4.0), 5)
    0.00227
    """
    return float(scipy_stats.t.ppf(0.5 + level / 2, df) * sd * math.sqrt(1 / n + 1 / m))
