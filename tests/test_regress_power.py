"""The regression check's statistics under simulated seed noise: how often it cries wolf, how often it catches a
real regression. The noise model follows what the suites show: every configuration has its own seed spread,
log-normally distributed across configurations over about a factor of 30 (dependency: sd 0.0005 to 0.02 nats;
sine: log-RMSE sd 0.1 to 0.6), baselines and candidates of 2 or 3 seeds, 48 configurations per task.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.reporting import regress
from bench.core import stats
from bench.tasks import dependency, sine

CONFIGS = 48


def simulate(rng, n, m, sd_median, sd_spread, change, min_delta, suites=150):
    """Fraction of configurations the check fails, over ``suites`` simulated suites; ``change(candidate, rng)``
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
    rate = simulate(rng, n, m, 0.003, 1.0, no_change, dependency.DependencyTask.min_delta, suites=80)
    assert rate <= regress.ALPHA, rate
    rate = simulate(rng, n, m, 0.25, 0.5, no_change, sine.SineTask.min_delta, suites=80)  # sine, log scale
    assert rate <= regress.ALPHA, rate


@pytest.mark.slow
def test_detection_power():
    """Printed for the record (pytest -s); asserted only where the check must not be blind."""
    rng = np.random.default_rng(1)
    power = {
        "one seed of three collapses to the no-lag floor": simulate(
            rng, 3, 3, 0.003, 1.0, one_seed_collapses, dependency.DependencyTask.min_delta, suites=40),
        "uniform +0.01 nats, 3 seeds": simulate(
            rng, 3, 3, 0.003, 1.0, shift(0.01), dependency.DependencyTask.min_delta, suites=40),
        "uniform +0.01 nats, 2 seeds": simulate(
            rng, 2, 2, 0.003, 1.0, shift(0.01), dependency.DependencyTask.min_delta, suites=40),
        "sine RMSE x1.5, 3 seeds": simulate(
            rng, 3, 3, 0.25, 0.5, shift(math.log(1.5)), sine.SineTask.min_delta, suites=40),
        "sine RMSE x1.5, 2 seeds": simulate(
            rng, 2, 2, 0.25, 0.5, shift(math.log(1.5)), sine.SineTask.min_delta, suites=40),
    }
    for what, rate in power.items():
        print(f"detection power, {what}: {rate:.0%}")
    assert power["one seed of three collapses to the no-lag floor"] >= 0.9
    assert power["uniform +0.01 nats, 3 seeds"] >= 0.3
