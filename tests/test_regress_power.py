"""The regression check's statistics under simulated seed noise: how often it cries wolf, how often it catches a
real regression. Every simulated configuration goes through :func:`bench.reporting.regress.seed_change`, the check
`bench regress` runs, against the dependency task's default floors and the smoke suite's test noise.

Baselines of three kinds, as the smoke baseline shows them (results/baseline/smoke.json):

- *tight*: every seed learned about as much (mean 0.46-0.52 nats, seed sd log-normal around 0.003 over a
  factor of about 30);
- *spread*: every seed learned the first lag but by different amounts (mean 0.50-0.56, sd 0.03: lstm-L1-uni-T5);
- *split*: a configuration whose seeds learn nothing one time in three (rnn_relu-L1-uni-T5); its baseline holds
  exactly one collapsed seed.

A suite holds 36 tight, 6 spread and 6 split configurations (the task's typical spread is their median).
Candidates are drawn from the same process (false alarms) or with 1, 2 or 3 seeds set to the no-lag floor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.core import stats
from bench.reporting import regress
from bench.tasks import dependency, sine
from bench.tasks import dependency_floors as targets

FLOORS = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
NOISE = targets.run_noise((0.5, -0.25), 0.5, (3, 8), 20_000 - 50 * 8)  # the smoke suite's test length
ROW = {**FLOORS, "noise": NOISE}
KINDS = {"tight": 36, "spread": 6, "split": 6}
COLLAPSE = 1 / 3  # how often a split configuration's seed learns nothing


def configuration(kind: str, rng) -> tuple[float, float]:
    """(mean, sd) of one configuration of ``kind``: its seeds' distribution."""
    if kind == "tight":
        return rng.uniform(0.46, 0.52), 0.003 * math.exp(rng.standard_normal())
    if kind == "spread":
        return rng.uniform(0.50, 0.56), 0.03
    return rng.uniform(0.47, 0.50), 0.005


def draw(kind: str, mean: float, sd: float, rng, n: int, split_base: bool = False) -> np.ndarray:
    """``n`` seeds of a configuration; a split baseline holds exactly one collapsed seed, a split candidate
    collapses each seed with probability :data:`COLLAPSE`."""
    values = mean + sd * rng.standard_normal(n)
    if kind == "split":
        collapsed = np.zeros(n, bool)
        if split_base:
            collapsed[rng.integers(n)] = True
        else:
            collapsed = rng.random(n) < COLLAPSE
        values[collapsed] = FLOORS["floor_none"] + NOISE * rng.standard_normal(collapsed.sum())
    return np.maximum(values, FLOORS["floor_all"] - NOISE * abs(rng.standard_normal(n)))


def simulate(rng, collapsed: int, suites: int = 40, n: int = 3) -> dict[str, tuple[float, float]]:
    """Per kind: (share of configurations failing, share warned undecided) when ``collapsed`` of the candidate's
    ``n`` seeds are set to the no-lag floor (0: the same process as the baseline)."""
    failed = {kind: 0 for kind in KINDS}
    warned = {kind: 0 for kind in KINDS}
    total = {kind: 0 for kind in KINDS}
    for _ in range(suites):
        configurations = []
        for kind, count in KINDS.items():
            for _ in range(count):
                mean, sd = configuration(kind, rng)
                base, new = draw(kind, mean, sd, rng, n, split_base=True), draw(kind, mean, sd, rng, n)
                new[:collapsed] = FLOORS["floor_none"] + NOISE * rng.standard_normal(collapsed)
                configurations.append((kind, base, new))
        prior = stats.prior_variance([b.var(ddof=1) for _, b, _ in configurations])
        for kind, base, new in configurations:
            found = regress.seed_change(dependency.DependencyTask(), list(base), list(new), prior, regress.ALPHA,
                                        dependency.DependencyTask.min_delta, row=ROW)
            failed[kind] += found.change == "worse"
            warned[kind] += found.change == "undecided"
            total[kind] += 1
    return {kind: (failed[kind] / total[kind], warned[kind] / total[kind]) for kind in KINDS}


def test_false_alarms_where_seeds_do_not_collapse():
    """At most the stated rate (1 %) per configuration of every kind: a spread one's tests on its own seeds (exact
    whatever its spread) keep it there although its three seeds cannot estimate that spread and the task's typical
    one is ten times smaller (moderation alone gave 2.7 %). A warning that more seeds learned nothing than in the
    baseline comes only where every new seed did or Fisher's p <= 0.25 (it came for 29 % of split ones, which
    lose a seed in three by chance)."""
    rates = simulate(np.random.default_rng(0), 0, suites=30)
    assert all(failed <= regress.ALPHA for failed, _ in rates.values()), rates
    assert all(warned <= 0.06 for _, warned in rates.values()), rates


def test_a_spread_baseline_is_judged_by_what_its_own_seeds_support():
    """Three baseline seeds that happen to lie close (sd 0.005) cannot show that a configuration's seeds spread
    0.03: a new seed 0.065 above their mean, within that spread, passes (moderation toward the task's typical sd
    0.003 alone failed it), while a collapse to the no-lag floor, beyond half the known answers' span, fails."""
    base, prior = [0.530, 0.535, 0.540], 0.003**2
    within = regress.seed_change(dependency.DependencyTask(), base, [0.50, 0.53, 0.60], prior, min_delta=0.005, row=ROW)
    collapsed = regress.seed_change(dependency.DependencyTask(), base, [0.50, 0.53, 0.6616], prior, min_delta=0.005, row=ROW)
    assert (within.change, collapsed.change) == ("", "worse"), (within, collapsed)


def test_a_split_baseline_warns_only_of_what_chance_rarely_gives():
    """A baseline with one collapsed seed of three: two new collapsed seeds of three are what such a configuration
    shows one time in four (Fisher p = 0.5): no warning (there was one); all three warn, naming the seeds that
    would decide."""
    base, prior = [0.48, 0.49, 0.6616], 0.003**2
    two = regress.seed_change(dependency.DependencyTask(), base, [0.48, 0.6616, 0.6616], prior, min_delta=0.005, row=ROW)
    three = regress.seed_change(dependency.DependencyTask(), base, [0.6616] * 3, prior, min_delta=0.005, row=ROW)
    assert two.change == "" and three.change == "undecided" and "9 seeds on each side would decide" in three.reason


def test_sine_false_alarms_stay_below_one_percent():
    rng = np.random.default_rng(2)
    failed = total = 0
    for _ in range(40):
        sds = 0.25 * np.exp(0.5 * rng.standard_normal(48))
        base = np.log(rng.uniform(0.005, 0.02, 48))[:, None] + sds[:, None] * rng.standard_normal((48, 3))
        new = base.mean(axis=1, keepdims=True) + sds[:, None] * rng.standard_normal((48, 3))
        prior = stats.prior_variance(base.var(axis=1, ddof=1))
        row = {"baseline_last_value_rmse": 0.03}
        for b, c in zip(np.exp(base), np.exp(new)):
            found = regress.seed_change(sine.SineTask(), list(b), list(c), prior, regress.ALPHA, sine.SineTask.min_delta, row=row)
            failed += found.change == "worse"
            total += 1
    assert failed / total <= regress.ALPHA, failed / total


@pytest.mark.slow
def test_detection_of_collapsed_seeds_whatever_the_baseline():
    """Printed for the record (pytest -s): fail and undecided rates for 0-3 collapsed seeds of three, per kind of
    baseline. No kind fails more than the stated rate by chance; a tight baseline catches every collapse (fails,
    or warns where the baseline holds a nearly collapsed seed); a spread one catches most (its seeds' spread
    reaches the bound of half the known answers' span); a split one cannot decide at n=3 and says so when all
    three collapse."""
    rng = np.random.default_rng(1)
    table = {k: simulate(rng, k, suites=25) for k in range(4)}
    for k, rates in table.items():
        print(f"{k} collapsed: " + "; ".join(f"{kind} fail {f:.1%} undecided {w:.1%}" for kind, (f, w) in rates.items()))
    assert all(failed <= regress.ALPHA for failed, _ in table[0].values()), table[0]
    for k in (1, 2, 3):
        tight, spread, split = table[k]["tight"], table[k]["spread"], table[k]["split"]
        assert tight[0] >= 0.99 and sum(tight) == 1.0 and spread[0] >= 0.8 and split[0] == 0.0, table[k]
    assert table[3]["spread"][0] >= 0.95 and table[3]["split"][1] == 1.0, table[3]


# The seed tests alone, as before the outcome classes: 48 configurations per task whose seed spread is log-normal
# across them over about a factor of 30 (dependency: sd 0.0005 to 0.02 nats; sine: log-RMSE sd 0.1 to 0.6).
CONFIGS = 48


def simulate_noise(rng, n, m, sd_median, sd_spread, change, min_delta, suites=150):
    """The seed tests alone (:func:`bench.core.stats.worse_tests`, no outcome classes), under log-normal seed noise
    with 2 or 3 seeds: fraction of configurations the check fails, over ``suites`` simulated suites; ``change(candidate, rng)``
    alters each configuration's candidate seeds (values on the check's scale: worse is higher)."""
    failed = total = 0
    for _ in range(suites):
        sds = sd_median * np.exp(sd_spread * rng.standard_normal(CONFIGS))
        means = rng.uniform(0.45, 0.52, CONFIGS)
        base = means[:, None] + sds[:, None] * rng.standard_normal((CONFIGS, n))
        new = change(means[:, None] + sds[:, None] * rng.standard_normal((CONFIGS, m)), rng)
        prior = stats.prior_variance(base.var(axis=1, ddof=1))
        for b, c in zip(base, new):
            sd, df = stats.moderated_sd(float(b.std(ddof=1)), n, prior, regress.PRIOR_DF)
            result = stats.worse_tests(b, c, sd, df, regress.ALPHA, min_delta)
            failed += result["seed"] > 0 or result["mean"] > 0
            total += 1
    return failed / total


def no_change(candidate, rng):
    return candidate


def one_seed_collapses(candidate, rng):
    candidate = candidate.copy()
    candidate[:, 0] = 0.6616  # the no-lag floor; configurations' means lie in 0.45-0.52: they learned a lag
    return candidate


def shift(delta):
    return lambda candidate, rng: candidate + delta


@pytest.mark.parametrize("n, m", [(2, 2), (3, 3)])
def test_false_alarms_under_pure_seed_noise_stay_below_one_percent(n, m):
    rng = np.random.default_rng(0)
    rate = simulate_noise(rng, n, m, 0.003, 1.0, no_change, dependency.DependencyTask.min_delta, suites=80)
    assert rate <= regress.ALPHA, rate
    rate = simulate_noise(rng, n, m, 0.25, 0.5, no_change, sine.SineTask.min_delta, suites=80)  # sine, log scale
    assert rate <= regress.ALPHA, rate


# What the check catches, as a share of configurations over the simulated suites (seeded: the same figures on every
# run, 98 %, 44 %, 9 %, 4 % and 1 % at the last change), each with the bounds it must stay within. A collapsed seed
# must be caught; a uniform shift of twice the smallest change that counts is caught more often than not only with
# more seeds; a 1.5x change of the sine RMSE hides in its seeds' spread (log sd 0.1 to 0.6): the check is nearly
# blind to it with 2 or 3 seeds, and a figure above these bounds would mean it started firing on noise.
POWER_BOUNDS = {
    "one seed of three collapses to the no-lag floor": (0.9, 1.0),
    "uniform +0.01 nats, 3 seeds": (0.3, 0.6),
    "uniform +0.01 nats, 2 seeds": (0.03, 0.2),
    "sine RMSE x1.5, 3 seeds": (0.02, 0.1),
    "sine RMSE x1.5, 2 seeds": (0.0, 0.05),
}


@pytest.mark.slow
def test_detection_power():
    """Every power figure within its stated bounds, and more seeds never see less (pytest -s prints them)."""
    rng = np.random.default_rng(1)
    power = {
        "one seed of three collapses to the no-lag floor": simulate_noise(
            rng, 3, 3, 0.003, 1.0, one_seed_collapses, dependency.DependencyTask.min_delta, suites=40),
        "uniform +0.01 nats, 3 seeds": simulate_noise(
            rng, 3, 3, 0.003, 1.0, shift(0.01), dependency.DependencyTask.min_delta, suites=40),
        "uniform +0.01 nats, 2 seeds": simulate_noise(
            rng, 2, 2, 0.003, 1.0, shift(0.01), dependency.DependencyTask.min_delta, suites=40),
        "sine RMSE x1.5, 3 seeds": simulate_noise(
            rng, 3, 3, 0.25, 0.5, shift(math.log(1.5)), sine.SineTask.min_delta, suites=40),
        "sine RMSE x1.5, 2 seeds": simulate_noise(
            rng, 2, 2, 0.25, 0.5, shift(math.log(1.5)), sine.SineTask.min_delta, suites=40),
    }
    for what, rate in power.items():
        print(f"detection power, {what}: {rate:.0%}")
    assert {what: low <= power[what] <= high for what, (low, high) in POWER_BOUNDS.items()} == \
        dict.fromkeys(POWER_BOUNDS, True), power
    assert power["uniform +0.01 nats, 3 seeds"] >= power["uniform +0.01 nats, 2 seeds"]
    assert power["sine RMSE x1.5, 3 seeds"] >= power["sine RMSE x1.5, 2 seeds"]
