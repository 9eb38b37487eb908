"""Run a suite: resumable, parallel, and a failed run never costs the others.

:func:`run_suite` opens the suite's book (:mod:`bench.running.executors.book`: what is left to do, the parent run, progress)
and hands it to an executor: worker processes on this machine (:mod:`bench.running.executors.local`; ``per_device`` per
GPU, pinned with ``CUDA_VISIBLE_DEVICES``, or CPU workers sharing the cores) or tasks on a Ray cluster
(:mod:`bench.running.executors.ray_cluster`). The runner process owns the bookkeeping that must not race: the store's
tables, the experiment and the suite's parent run are made before any worker starts.
"""

from __future__ import annotations

from bench.running import locations
from bench.running.executors import local
from bench.running.executors.book import SuiteBook, SuiteResult
from bench.running.executors.slots import machine_slots
from bench.running.interrupt import Interrupted
from bench.running.store import StoreError
from bench.config.suite import Suite


def run_suite(suite: Suite, tracking_uri: str, experiment: str = locations.EXPERIMENT, device: str = "auto",
              workers: int = 0, per_device: int = 1, force: bool = False, progress: bool = True,
              executor: str = "local", address: str | None = None, devices: list[str] | None = None) -> SuiteResult:
    """Run every configuration of ``suite`` not already FINISHED in the store (all of them with ``force``).

    ``executor``: ``local`` (worker processes on this machine, on the GPUs ``devices`` or all visible ones) or
    ``ray`` (tasks on a Ray cluster at ``address``). Bad settings raise :class:`bench.config.settings.ConfigError` before the
    store is touched; a store that fails raises :class:`bench.running.store.StoreError`; SIGINT or SIGTERM (under
    :func:`bench.running.interrupt.catch_signals`) raises :class:`bench.running.interrupt.Interrupted`, its
    ``result`` the suite so far, once the runs under way and the parent are ended KILLED.
    """
    cluster = slots = None
    if executor == "ray":  # connect first: a refused cluster must leave the store untouched
        try:
            from bench.running.executors import ray_cluster  # ray, an optional extra: only when asked for
        except ImportError:
            raise ConfigError(["executor: 'ray' but Ray is not installed; allowed: --executor local, or the optional "
                               "extra (pip install -e '.[ray]', or make setup-ray)"]) from None

        cluster = ray_cluster.connect(address, tracking_uri, workers)
    else:
        local.prepare(device)  # first: the fork server imports torch while this process prepares the rest
        slots = machine_slots(device, workers, per_device, devices)
    book = SuiteBook(suite, tracking_uri, experiment, force, progress,
                     workers=cluster.slots if cluster is not None else len(slots))
    if not book.todo:  # adaptive seeds: a resumed suite may have none of its first seeds left, but more to add
        book.todo = book.more()
    try:
        if cluster is not None:
            book.open_parent(cluster.device, cluster.slots, "ray")
            if book.todo:
                ray_cluster.execute(book, cluster, per_device)
        else:
            slots = slots[: max(1, len(book.todo))]
            book.open_parent(slots[0].device, len(slots), "local")
            if book.todo:
                local.execute(book, slots)
    except StoreError as e:  # the store failed (writing the parent's matrix, say): the parent ends FAILED with it
        book.store_error = book.store_error or e
    except Interrupted as e:  # SIGINT or SIGTERM: the executor ended the runs under way KILLED
        e.result = book.close(e.reason)
        raise
    except KeyboardInterrupt:  # as a library, without bench.running.interrupt's handlers
        book.close("interrupted by SIGINT")
        raise
    return book.close()
