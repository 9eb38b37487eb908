"""What one run came to, as a worker hands it back to the runner.

Its own small module: the runner unpickles it from every worker, and a class defined in :mod:`bench.running.train` would
make the runner import torch and Lightning (seconds, during which no result is taken in) just to read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.running.store import StoreError


@dataclass
class RunOutcome:
    run_id: str | None
    status: str  # finished | diverged | failed, or claimed | elsewhere (another runner has the configuration)
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    store_error: StoreError | None = None  # the store failed: the runner stops handing out runs
