"""Metric names: one per metric, the same in the code, the compiled pages, ``rnn-bench train`` and MLflow's search.

A split's measurement is ``split/metric`` (``train/loss``, ``val/ce``, ``test/ce``). A reference figure, constant
over a run (an analytic floor, a trivial predictor's test figure), is ``floor_<name>`` or ``baseline_<name>``,
without a ``/``. Why: MLflow's UI files a run's charts in sections named by the part of the key before the last
``/``, sorted alphabetically, and puts keys without one under "Model metrics", after them. With ``floor/all`` and
``baseline/…`` a run's page opened on a row of constants (``baseline`` and ``floor`` sort first); as written here it
opens on the test figures, then the learning curves (``train``, ``val``), and the constants sit with the timings.

>>> [is_reference(k) for k in ("floor_all", "baseline_last_value_rmse", "test/floor_gap", "train/loss")]
[True, True, False, False]
"""

FLOOR, BASELINE = "floor_", "baseline_"
REFERENCES = (FLOOR, BASELINE)


def is_reference(key: str) -> bool:
    return key.startswith(REFERENCES)

