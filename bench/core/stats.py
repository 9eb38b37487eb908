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


def prediction_interval(values: Sequence[float], log: bool = False, level: float = LEVEL) -> tuple[float, float]:
    """(low, high): where one more run's value is expected to fall, at ``level``, from ``values`` over seeds:
    mean ± t(n−1) · sd · √(1 + 1/n) (on the logs with ``log``, taken back). Unlike the interval of the mean it does
    not shrink to a point as seeds are added, so a single published run is judged fairly, and a model whose runs
    all lie far from it fails. NaNs below two values.

    >>> [round(v, 4) for v in prediction_interval([0.46, 0.47, 0.45])]
    [0.4103, 0.5097]
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) < 2 or (log and (x <= 0).any()):
        return math.nan, math.nan
    if log:
        x = np.log(x)
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) * math.sqrt(1 + 1 / len(x)))
    low, high = float(x.mean()) - half, float(x.mean()) + half
    return (math.exp(low), math.exp(high)) if log else (low, high)


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
    """(standard deviation, degrees of freedom): ``sd`` over ``n`` seeds moderated toward ``prior_var``.

    The posterior variance ((n−1)·sd² + d₀·s₀²) / (n−1+d₀) with d₀ = ``prior_df``; a configuration with one seed
    takes the prior alone. It moves both ways: a configuration whose few seeds happen to spread wide is pulled
    toward its task's typical spread too, or a baseline whose seeds split (some learned a lag, some not) would
    widen its own thresholds until nothing could fail.

    >>> [round(v, 4) for v in moderated_sd(0.001, 3, 0.0004 ** 2, 2.0)]
    [0.0008, 4.0]
    >>> [round(v, 4) for v in moderated_sd(0.0001, 3, 0.0004 ** 2, 2.0)]
    [0.0003, 4.0]
    """
    own = (n - 1) * sd**2 if n > 1 and not math.isnan(sd) else 0.0
    df = max(0, n - 1) + prior_df
    if math.isnan(prior_var) or df == 0:
        return (sd if n > 1 else math.nan), float(max(0, n - 1))
    return math.sqrt((own + prior_df * prior_var) / df), float(df)


def proportion_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k`` of ``n`` (scipy's ``binomtest``): how many seeds out of
    all a configuration could have learned a lag, given that ``k`` of ``n`` did. (NaN, NaN) for n = 0.

    >>> [round(v, 2) for v in proportion_interval(2, 5)], [round(v, 2) for v in proportion_interval(3, 3)]
    ([0.12, 0.77], [0.44, 1.0])
    """
    if n == 0:
        return math.nan, math.nan
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def more_often(k_base: int, n: int, k_new: int, m: int) -> float:
    """One-sided p-value of Fisher's exact test that an outcome (a seed that learned nothing) is more frequent
    among ``m`` new seeds (``k_new`` of them) than among ``n`` baseline seeds (``k_base``).

    >>> round(more_often(1, 3, 3, 3), 3), round(more_often(1, 6, 6, 6), 4)
    (0.2, 0.0076)
    """
    return float(scipy_stats.fisher_exact([[k_new, m - k_new], [k_base, n - k_base]], alternative="greater").pvalue)


def seeds_to_decide(k_base: int, n: int, k_new: int, m: int, alpha: float, most: int = 100) -> int | None:
    """The fewest seeds per side at which the same proportions (``k_base``/``n`` against ``k_new``/``m``) would
    pass Fisher's test at ``alpha`` (:func:`more_often`); None when no number up to ``most`` would (the same or a
    lower proportion).

    >>> seeds_to_decide(1, 3, 3, 3, 0.01), seeds_to_decide(1, 3, 2, 3, 0.01), seeds_to_decide(1, 3, 1, 3, 0.01)
    (9, 28, None)
    """
    if k_new / m <= k_base / n:
        return None
    for size in range(max(n, m), most + 1):
        if more_often(round(k_base / n * size), size, round(k_new / m * size), size) < alpha:
            return size
    return None


def lost_seeds(base_ranks: Sequence[int], base: Sequence[float], new_ranks: Sequence[int], new: Sequence[float],
               margin: float, drop: int = 1) -> int:
    """How many new seeds lost what every baseline seed had: an outcome class (ranked, higher is better: e.g.
    which lags a run learned) at least ``drop`` ranks below every baseline seed's, and a value (worse is higher)
    beyond the worst baseline seed by more than ``margin``, so a seed that crosses a class boundary by its
    scatter does not count. Needs no estimate of the baseline's spread, so a spread baseline cannot blind it.

    >>> lost_seeds([1, 2, 3], [0.539, 0.499, 0.469], [0, 0, 0], [0.6616] * 3, 0.03)
    3
    >>> lost_seeds([0, 2, 2], [0.653, 0.484, 0.485], [0, 0, 0], [0.6616] * 3, 0.03)  # it held a collapse
    0
    """
    if not base_ranks:
        return 0
    floor_rank, worst = min(base_ranks), max(base)
    return sum(1 for r, v in zip(new_ranks, new) if r <= floor_rank - drop and v > worst + margin)


def weighted_iqm(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The interquartile mean of ``values`` (along the last axis) where each value counts with its weight: the
    weighted mean of the middle half of the weight, a value straddling a quartile counting with the part of its
    weight inside: robust to a few configurations that failed or excelled, yet using more of the data than a
    median (Agarwal et al. 2021). With equal weights and a multiple of 4 values it is scipy's ``trim_mean(values,
    0.25)``.

    >>> float(weighted_iqm(np.array([0.0, 1.0, 2.0, 3.0]), np.ones(4)))
    1.5
    >>> float(weighted_iqm(np.array([0.0, 0.0, 0.0, 1.0]), np.array([1, 1, 1, 3])))  # the 1 holds half the weight
    0.5
    """
    order = np.argsort(values, axis=-1)
    ranked = np.take_along_axis(values, order, axis=-1)
    w = np.broadcast_to(np.asarray(weights, dtype=float) / np.sum(weights), values.shape)
    w = np.take_along_axis(w, order, axis=-1)
    upper = np.cumsum(w, axis=-1)
    kept = np.clip(np.minimum(upper, 0.75) - np.maximum(upper - w, 0.25), 0.0, None)
    return np.sum(kept * ranked, axis=-1) / 0.5


def iqm_interval(groups: Sequence[Sequence[float]], level: float = LEVEL, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(IQM, low, high): the interquartile mean of every value of ``groups`` (one group per configuration, its
    seeds' scores), each configuration weighing the same whatever its number of seeds (a suite that adds seeds
    where an answer is open must not let those configurations count more), with a stratified bootstrap
    percentile interval: seeds are resampled within each configuration, as Agarwal et al. (2021), "Deep
    Reinforcement Learning at the Edge of the Statistical Precipice", recommend for few runs per task. Built on
    ``scipy.stats.bootstrap``, seeded.

    >>> [round(v, 3) for v in iqm_interval([[0.9, 0.8, 0.85], [0.1, 0.2, 0.15], [0.5, 0.55, 0.6]])]
    [0.533, 0.5, 0.567]
    >>> round(iqm_interval([[0.0, 0.0, 0.0], [1.0] * 9])[0], 3)  # two configurations: the middle half is 0.5
    0.5
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return math.nan, math.nan, math.nan
    weights = np.concatenate([np.full(len(g), 1.0 / len(g)) for g in groups])
    point = float(weighted_iqm(np.concatenate(groups), weights))
    if all(len(g) < 2 for g in groups):
        return point, math.nan, math.nan
    result = scipy_stats.bootstrap(groups, lambda *gs, axis=-1: weighted_iqm(np.concatenate(gs, axis=axis), weights),
                                   n_resamples=resamples, confidence_level=level, method="percentile", paired=False,
                                   vectorized=True, random_state=np.random.default_rng(seed))
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def seed_quantile(alpha: float, m: int, df: float) -> float:
    """Student's t quantile a worst-of-``m`` new seed is read against: one-sided at ``alpha / 2``, Bonferroni over
    the ``m`` seeds."""
    return float(scipy_stats.t.ppf(1 - alpha / 2 / m, df))


def worse_tests(base: Sequence[float], new: Sequence[float], sd: float, df: float, alpha: float,
                min_delta: float, most: float = math.inf, at_least: tuple[float, float] = (0.0, 0.0)) -> dict[str, float]:
    """Two one-sided tests that ``new`` seeds are worse (higher) than ``base`` seeds, each at ``alpha / 2``:

    - ``seed``: the worst new seed against the baseline mean — a prediction interval for one new draw, with
      a Bonferroni correction over the new seeds — so one seed collapsing fails even when the others are fine;
    - ``mean``: the new mean against the baseline mean (a two-sample t test with the moderated sd).

    Each also needs the change to exceed ``min_delta``: a shift too small to matter never fails; and no threshold
    exceeds ``most`` (a bound from the task's known answers: a drop that large is a regression whatever the
    seeds' spread). Each threshold is at least its part of ``at_least`` (:func:`own_thresholds`, the same tests on
    ``base``'s own sd and its own n − 1 degrees of freedom): moderation toward the task's typical spread may lift a
    threshold, never lower it below what the configuration's own seeds support, so a configuration whose seeds
    truly spread wider than its task's typical one keeps its false-alarm rate (affordable where ``most`` bounds
    the thresholds). Returns the margin by which each statistic exceeds its threshold (> 0: worse), and the thresholds.

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
    seed_threshold, mean_threshold = thresholds(n, m, sd, df, alpha)
    seed_threshold = max(min(max(seed_threshold, at_least[0]), most), min_delta)
    mean_threshold = max(min(max(mean_threshold, at_least[1]), most), min_delta)
    return {"seed": float(c.max() - mean_b - seed_threshold), "mean": float(c.mean() - mean_b - mean_threshold),
            "seed_threshold": seed_threshold, "mean_threshold": mean_threshold}


def thresholds(n: int, m: int, sd: float, df: float, alpha: float) -> tuple[float, float]:
    """(seed, mean): how far above the mean of ``n`` baseline seeds the worst of ``m`` new seeds (a prediction
    interval, Bonferroni over the new seeds: :func:`seed_quantile`) and the mean of the new ones (a two-sample t
    test) may lie at ``alpha``, with seed sd ``sd`` on ``df`` degrees of freedom.

    >>> [round(t, 5) for t in thresholds(3, 3, 0.001, 4.0, 0.01)]
    [0.00722, 0.00376]
    """
    return (seed_quantile(alpha, m, df) * sd * math.sqrt(1 + 1 / n),
            float(scipy_stats.t.ppf(1 - alpha / 2, df)) * sd * math.sqrt(1 / n + 1 / m))


def own_thresholds(base: Sequence[float], m: int, alpha: float) -> tuple[float, float]:
    """:func:`thresholds` from ``base``'s own sd alone, on its n − 1 degrees of freedom (exact for normal seeds,
    whatever their spread); (0, 0) below three seeds: two seeds' one degree of freedom puts the seed threshold near
    200 sd, which would leave only the bound to judge.

    >>> [round(t, 3) for t in own_thresholds([0.50, 0.53, 0.56], 3, 0.01)]
    [0.598, 0.243]
    """
    b = np.asarray(base, dtype=float)
    return thresholds(len(b), m, float(b.std(ddof=1)), len(b) - 1, alpha) if len(b) >= 3 else (0.0, 0.0)


def shift_half_width(n: int, m: int, sd: float, df: float, level: float = LEVEL) -> float:
    """Half the ``level`` interval of a difference of two means over ``n`` and ``m`` seeds, with the moderated
    ``sd`` and ``df`` the mean test of :func:`worse_tests` reads: the interval that test's statistic implies.

    >>> round(shift_half_width(3, 3, 0.001, 4.0), 5)
    0.00227
    """
    return float(scipy_stats.t.ppf(0.5 + level / 2, df) * sd * math.sqrt(1 / n + 1 / m))
