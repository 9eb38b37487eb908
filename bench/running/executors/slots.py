"""Where workers run: one slot per worker, pinned to one GPU or sharing the CPU cores.

Planning is a pure function of the GPU ids to use (:func:`plan_slots`); which ids those are comes from the
``CUDA_VISIBLE_DEVICES`` this process inherited and ``--devices`` (:func:`gpu_ids`), so both are tested without a GPU.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from bench.config.settings import ConfigError


@dataclass
class Slot:
    """Where one worker runs: its device string, its torch threads and the environment it starts with."""

    device: str
    threads: int
    env: dict[str, str] = field(default_factory=dict)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_devices(text: str) -> list[str]:
    """``--devices 0,2`` -> ["0", "2"]; anything but distinct GPU indices is a :class:`ConfigError`.

    >>> parse_devices("0, 2")
    ['0', '2']
    """
    items = [item.strip() for item in text.split(",")]
    if not all(re.fullmatch(r"\d+", item) for item in items) or len(set(items)) != len(items):
        raise ConfigError([f"devices: {text!r}; allowed: distinct GPU indices separated by commas, e.g. 0,2"])
    return [str(int(item)) for item in items]


def gpu_ids(inherited: str | None, count: int, requested: list[str] | None = None) -> list[str]:
    """The GPUs to pin workers to, named as ``CUDA_VISIBLE_DEVICES`` names them.

    ``inherited``: this process's ``CUDA_VISIBLE_DEVICES`` (None when unset); ``count``: the GPUs CUDA sees
    through it; ``requested``: ``--devices``, which must be among them.

    >>> gpu_ids(None, 4), gpu_ids("2,3", 2), gpu_ids(None, 4, ["0", "2"]), gpu_ids("", 0)
    (['0', '1', '2', '3'], ['2', '3'], ['0', '2'], [])
    """
    visible = [str(i) for i in range(count)] if inherited is None else \
        [item.strip() for item in inherited.split(",")][:count]
    if requested is None:
        return visible
    outside = [d for d in requested if d not in visible]
    if outside:
        where = f"CUDA_VISIBLE_DEVICES={inherited}" if inherited is not None else "CUDA"
        raise ConfigError([f"devices: {','.join(requested)!r}: {', '.join(outside)} not visible; allowed: GPUs that "
                           f"{where} shows: {', '.join(visible) or 'none'}"])
    return list(requested)


def plan_slots(gpus: list[str], workers: int = 0, per_device: int = 1, cores: int = 1) -> list[Slot]:
    """One slot per worker: ``per_device`` per GPU in ``gpus`` (each pinned to its GPU), or without GPUs
    ``workers`` CPU slots (0: one per core). GPU workers' torch threads divide ``cores``; a CPU worker gets one
    thread: the suite's models are small, and a second intra-op thread spins more than it computes (a lone
    worker's T=1 LSTM run took ~1.3× as long with two threads on 2 cores as with one), so runs, not threads,
    are what spreads over the cores.

    >>> [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(["2", "3"], per_device=2, cores=8)]
    ['2', '2', '3', '3']
    """
    if gpus:
        slots = [Slot("cuda", 1, {"CUDA_VISIBLE_DEVICES": gpu}) for gpu in gpus for _ in range(per_device)]
        for slot in slots:
            slot.threads = max(1, cores // len(slots))
        return slots
    return [Slot("cpu", 1, {"CUDA_VISIBLE_DEVICES": ""}) for _ in range(workers or cores)]


def machine_slots(device: str = "auto", workers: int = 0, per_device: int = 1,
                  devices: list[str] | None = None) -> list[Slot]:
    """:func:`plan_slots` for this machine: its visible GPUs (unless ``device`` is cpu) and its cores."""
    if device == "cpu":
        if devices:
            raise ConfigError([f"devices: {','.join(devices)!r} with --device cpu; allowed: --devices only with "
                               "GPUs (--device auto or cuda)"])
        gpus = []
    else:
        import torch  # only to count GPUs: a CPU suite's runner never imports it

        count = torch.cuda.device_count()
        gpus = gpu_ids(os.environ.get("CUDA_VISIBLE_DEVICES"), count, devices)
    return plan_slots(gpus, workers, per_device, usable_cores())
