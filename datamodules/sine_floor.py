"""The floor of the noisy sine task: the best one-step RMSE a linear predictor can reach from the window.

A sine obeys ``s[k+1] = 2·cos(θ)·s[k] − s[k-1]`` (θ = frequency · gap), so the state ``x[k] = (s[k], s[k-1])``
evolves as ``x[k+1] = F·x[k]`` with ``F = [[2cos θ, −1], [1, 0]]`` and no process noise; a sample is
``y[k] = s[k] + v[k]`` with white Gaussian noise ``v`` of variance σ². A Kalman filter on that state, run over
the window's T samples, predicts the next sample with error variance ``H·P·Hᵀ + σ²``.

The prior is the state's own distribution under a uniformly random phase: mean 0, covariance
``A²/2 · [[1, cos θ], [cos θ, 1]]`` (A the amplitude). With it the filter is the linear predictor of least mean
squared error over windows at every phase, and its variance is exactly the mean squared error it achieves
(it does not depend on the data, only on T, σ, θ and A), so that variance is the floor of any linear
predictor. A diffuse prior would instead ignore that a sine of amplitude A moves at most A·θ per sample: at
σ = 0.1, T = 10 it gives 0.121 against this prior's 0.110.

It is the floor of *linear* predictors (those the least-squares AR baseline and a linear head over a linear
recurrence can express). A non-linear model can use that the state lies on a known ellipse (fixed amplitude):
the Bayes predictor that averages over the phase's posterior scores, by simulation, about 12% below this
floor at σ = 0.01 and 1% below at σ = 0.1 (T = 10, θ = 0.01). A learned model slightly below the floor has
exploited the amplitude, not broken the floor.
"""

from __future__ import annotations

import numpy as np


def kalman_predictor(truncation: int, noise: float, theta: float, amplitude: float) -> tuple[np.ndarray, float]:
    """``(weights, variance)`` of the Kalman one-step predictor over a window of ``truncation`` samples.

    With a zero prior mean and gains that do not depend on the data, the filter's prediction is linear in
    the window: ``prediction = window @ weights``. ``variance`` is its expected squared error, observation noise
    included. At ``noise`` 0 two samples pin the state down, so the variance is 0 from ``truncation`` 2 on.

    >>> window = 0.7 * np.sin(0.1 * np.arange(4) + 0.3)
    >>> weights, variance = kalman_predictor(3, 0.0, 0.1, 0.7)
    >>> bool(abs(window[:3] @ weights - window[3]) < 1e-12), variance < 1e-20
    (True, True)
    """
    c = np.cos(theta)
    transition = np.array([[2 * c, -1.0], [1.0, 0.0]])
    covariance = amplitude**2 / 2 * np.array([[1.0, c], [c, 1.0]])
    tiny = 1e-15 * amplitude**2  # an innovation variance this small means the sample tells nothing new
    estimate = np.zeros((2, truncation))  # the state estimate as a linear map of the window
    for k in range(truncation):
        innovation_variance = covariance[0, 0] + noise**2
        if innovation_variance > tiny:
            gain = covariance[:, 0] / innovation_variance
            observed = np.zeros(truncation)
            observed[k] = 1.0
            estimate = estimate + np.outer(gain, observed - estimate[0])
            keep = np.eye(2) - np.outer(gain, [1.0, 0.0])
            # Joseph form: stays symmetric and positive semi-definite when the noise is 0.
            covariance = keep @ covariance @ keep.T + noise**2 * np.outer(gain, gain)
        estimate = transition @ estimate
        covariance = transition @ covariance @ transition.T
    return estimate[0], float(max(covariance[0, 0], 0.0) + noise**2)


def kalman_floor(truncation: int, noise: float, theta: float, amplitude: float) -> float:
    """The floor as an RMSE: the square root of :func:`kalman_predictor`'s variance.

    >>> round(kalman_floor(10, 0.1, 0.01, 1.0), 4), round(kalman_floor(10, 0.01, 0.01, 1.0), 5)
    (0.1098, 0.01207)
    """
    return float(np.sqrt(kalman_predictor(truncation, noise, theta, amplitude)[1]))
