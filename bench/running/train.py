"""Train, test and track one resolved configuration: the unit of work of every suite."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import math
import shlex
import os
import resource
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

# cuBLAS needs this before CUDA starts for deterministic algorithms (PyTorch, "Reproducibility"; docs/references.md).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from pytorch_lightning.loggers import Logger  # noqa: E402

from bench.running import locations, provenance
from bench.core.metric_names import is_reference  # noqa: E402
from bench.running.claims import Claim, Lost, open_run  # noqa: E402
from bench.config.settings import RunConfig, config_hash, display_name, setting_text  # noqa: E402
from bench.running.interrupt import Interrupted, shielded  # noqa: E402
from bench.running.leases import Watchdog, results_experiment  # noqa: E402
from bench.running.outcome import RunOutcome  # noqa: E402
from bench.tasks.run_plots import learning_curve  # noqa: E402
from bench.running.step_bar import StepBar  # noqa: E402
from bench.running.store import FAILED, FINISHED, KILLED, Store, StoreError  # noqa: E402
from lightning_modules.recurrent_task import DivergedError  # noqa: E402

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available but not used.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")  # pytorch-lightning 2.6 on torch 2.13, harmless


def build(cfg: RunConfig) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """The data module and the LightningModule for a resolved config, as its task builds them."""
    return cfg.task.build(cfg)


class RunLogger(Logger):
    """Lightning's logger for a run that :func:`train_run` owns, writing through the run's :class:`Store` (the one
    module that talks to MLflow), built so that logging never dominates training.

    - Metrics are kept in memory and the new ones written in one batch every ``flush_every_s`` seconds and at
      the end: one synchronous SQLite write costs ~3.7 ms, more than a small RNN's training step, and MLflow's
      own asynchronous queue takes about a second to drain at the end of every run.
    - Finishing the fit does not mark the run FINISHED (nor flush): ``train_run`` writes the rows not yet written
      in one batch with the run's ending, after test metrics and artifacts are in, so a crash in between never
      leaves a run that resume logic would take for complete.
    - Every row logged stays in :attr:`rows`, so the run's plot needs no read from the store (:meth:`series`).
    - Hyperparameters are not logged here: ``train_run`` logs the whole resolved config itself.
    """

    def __init__(self, store: Store, run_id: str, flush_every_s: float = 10.0):
        super().__init__()
        self.store, self.run_id = store, run_id
        self.flush_every_s = flush_every_s
        self.rows: list[tuple[str, float, int, int]] = []  # (key, value, timestamp ms, step), all logged so far
        self.latest: dict[str, float] = {}  # each key's newest value, for the progress bar
        self.written = 0  # how many of them are in the store
        self.last_flush = time.monotonic()

    @property
    def name(self) -> str:
        return "rnn-bench"

    @property
    def version(self) -> str:
        return self.run_id

    def log_hyperparams(self, params) -> None:
        pass

    def log_metrics(self, metrics, step: int | None = None) -> None:
        now = int(time.time() * 1000)
        self.rows.extend((k, float(v), now, step or 0) for k, v in metrics.items())
        self.latest.update((k, float(v)) for k, v in metrics.items())
        if time.monotonic() - self.last_flush > self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        """Write the rows not yet written in as few batches as MLflow allows."""
        if self.written == len(self.rows):
            return
        self.store.log(self.run_id, self.rows[self.written:])
        self.written = len(self.rows)
        self.last_flush = time.monotonic()

    def finalize(self, status: str = "success") -> None:
        pass  # train_run writes the rest with the run's ending, after fit and test (each calls finalize)

    def unwritten(self) -> list:
        """The rows not yet written, handed over to be written with the run's ending (counted as written)."""
        rows, self.written = self.rows[self.written:], len(self.rows)
        return rows

    def series(self, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
        """The logged (step, value) points of ``keys`` (empty for a key never logged)."""
        return {key: [(step, value) for k, value, _, step in self.rows if k == key] for key in keys}


@functools.cache
def c_library_malloc_trim():
    """glibc's ``malloc_trim``, found once per process (finding the C library runs ldconfig: ~2 ms); None where
    the C library has none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class PeakMemory:
    """The run's own peak memory: how far memory rose above where it stood when the run started, in MB.

    The absolute peak of a worker is mostly the libraries it imported (torch, Lightning, MLflow: ~600 MB on a
    CPU), the same for every run, so it says nothing about the model. Hence the increase over the worker's idle
    baseline, taken when this object is made (before the run builds its data and model):

    - on a GPU, the CUDA allocator's peak minus what was allocated at the start;
    - on the CPU, the resident-set peak (VmHWM) minus the resident set at the start. On Linux the peak is reset
      at the start through /proc/self/clear_refs, so a long-lived worker reports each run's own peak, not the
      largest of all it ran, and memory earlier runs freed is first handed back (malloc_trim), so a run reusing
      it still counts it. Where the reset is not possible, the increase of the process's lifetime peak is
      reported: a lower bound (0 when an earlier run peaked higher).

    The first run of a process also counts the code pages and caches it touches for the first time.
    """

    def __init__(self, device: str):
        self.device = device
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated() / 2**20
            return
        self._release_freed_memory()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.baseline = self._resident("VmRSS:")
        except OSError:
            self.baseline = None
        if self.baseline is None:
            self.baseline = self._lifetime_peak()

    def megabytes(self) -> float:
        """The increase over the baseline so far (never negative)."""
        if self.device.startswith("cuda"):
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak = self._resident("VmHWM:")
            if peak is None:
                peak = self._lifetime_peak()
        return max(0.0, peak - self.baseline)

    @staticmethod
    def _release_freed_memory() -> None:
        """Hand memory that earlier runs freed back to the system (glibc's malloc_trim), so that a run reusing it
        is counted in its increase rather than hidden in the baseline; a no-op where the C library has none."""
        trim = c_library_malloc_trim()
        if trim is not None:
            trim(0)

    @staticmethod
    def _resident(field: str) -> float | None:
        """A resident-set figure of this process from /proc/self/status, in MB; None where there is none."""
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    @staticmethod
    def _lifetime_peak() -> float:
        """The process's resident-set peak since it started, in MB (ru_maxrss: kB on Linux, bytes on macOS)."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def make_trainer(cfg: RunConfig, logger, device: str, progress_bar: bool) -> pl.Trainer:
    per_batch = cfg["steps_per_batch"]
    val_every = {"check_val_every_n_epoch": 1}
    if cfg["val_every"]:
        # Counted in Lightning batches across epoch boundaries.
        val_every = {"val_check_interval": max(1, cfg["val_every"] // per_batch), "check_val_every_n_epoch": None}
    return pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=[int(device.split(":")[1])] if device.startswith("cuda:") else 1,
        max_epochs=cfg["epochs"],
        max_steps=cfg["max_steps"],
        logger=logger if logger is not None else False,
        log_every_n_steps=1,  # the module decides when to log: every log_every optimizer steps
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,  # StepBar counts optimizer steps, where Lightning's bar counts batches
        callbacks=[StepBar(per_batch, ("train/loss", cfg.task.val_metric))] if progress_bar else [],
        num_sanity_val_steps=0,
        deterministic=True,
        reload_dataloaders_every_n_epochs=1 if cfg.get("fresh_series") else 0,  # a new training series per epoch
        **val_every,
    )


def fit_and_test(cfg: RunConfig, logger=None, device: str = "cpu", progress_bar: bool = False):
    """Seed, build, fit and test; return (module, data, run metrics). Raises :class:`DivergedError`."""
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    task = cfg.task
    memory = PeakMemory(device)  # before the data and model exist: they are the run's own memory
    data, model = build(cfg)
    trainer = make_trainer(cfg, logger, device, progress_bar)
    validations = ValidationHistory(task.val_metric)
    trainer.callbacks.append(validations)
    plateau = Plateau(task, cfg["patience"], cfg["plateau_tolerance"]) if cfg["stop"] == "plateau" else None
    if plateau is not None:
        trainer.callbacks.append(plateau)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_time = time.perf_counter() - start
    steps = trainer.global_step
    if plateau is not None:
        plateau.restore(model)
    start = time.perf_counter()
    test = trainer.test(model, datamodule=data, verbose=False)[0]
    test_time = time.perf_counter() - start
    per_step = task.samples_per_step(cfg)
    samples = steps * per_step
    metrics = {
        **{k: float(v) for k, v in test.items() if k.startswith("test/")},
        **references(task, cfg, data),
        "fit_time_s": fit_time,
        "train_loop_s": model.train_loop_s,
        "eval_time_s": validations.seconds + test_time,
        "test_time_s": test_time,  # outside the training loop: the rest of a run beside both is its fixed cost
        "train/steps": steps,
        "train/samples": samples,
        "train/steps_per_s": steps / fit_time,
        "train/samples_per_s": samples / fit_time,
        "peak_memory_mb": memory.megabytes(),
        "num_params": model.num_parameters(),
    }
    if plateau is not None:  # the cap bound only where training ended without a plateau: at_cap is its convergence
        metrics["at_cap"] = float(not plateau.reached)
        if plateau.reached:
            metrics["samples_to_plateau"] = float(plateau.best_step * per_step)
        return model, data, metrics
    converged = task.converged(validations.points)  # the whole budget trained: still improving at the end?
    if converged is not None:  # a run validated too rarely to tell records nothing
        metrics["converged"] = float(converged)
    return model, data, metrics


def restore(cfg: RunConfig, weights: Path | None = None) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """The trained (data, model) of the run ``cfg`` describes, in eval mode with its test split set up: its saved
    weights (``model.pt``) loaded when given, else trained again from ``cfg`` on this CPU, which gives the recorded
    run's model too (every random source is seeded from the config; on the CPU exactly, a GPU run may differ)."""
    if weights is None:
        model, data, _ = fit_and_test(cfg)
    else:
        data, model = build(cfg)
        data.setup("test")
        model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    return data, model


REFERENCES: dict[tuple, dict[str, float]] = {}  # (task, its dataset spec) -> its references, in this process


def references(task, cfg: dict, data) -> dict[str, float]:
    """The task's floors and baselines for this run's data, computed once per dataset in a process: they depend
    on the data alone (:meth:`Task.dataset_spec`), which a suite's cells, depths and directions share, and the
    sine task's nearest-neighbour baseline costs ~0.08 s, more than some runs' evaluation."""
    key = (task.name, repr(sorted(task.dataset_spec(cfg).items())))
    if key not in REFERENCES:
        found = task.references(cfg, data)
        misnamed = sorted(k for k in found if not is_reference(k) or "/" in k)
        if misnamed:  # read back under another name, the pages would miss them: a plug-in's mistake, said at once
            raise ValueError(f"task {task.name}: references {misnamed}; allowed: names floor_<name> or "
                             "baseline_<name>, without '/' (bench.core.metric_names)")
        REFERENCES[key] = found
    return dict(REFERENCES[key])


class ValidationHistory(pl.Callback):
    """(optimizer step, value) of ``key`` at every validation during fit: tells whether a run converged. Also
    the seconds spent validating, which ``make perf`` holds against the training loop's."""

    def __init__(self, key: str):
        self.key, self.points, self.seconds = key, [], 0.0

    def on_validation_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds += time.perf_counter() - self.started
        value = trainer.callback_metrics.get(self.key)
        if value is not None and not trainer.sanity_checking:
            self.points.append((trainer.global_step, float(value)))


class Plateau(pl.Callback):
    """Plateau stopping: ends training once ``patience`` validations in a row have not improved on the best one so
    far by more than ``tolerance`` on the log of the metric, for every task: a relative change (0.002: 0.2 %;
    0.1: 10.5 %), in the task's direction, as Lightning's ``EarlyStopping`` does on its own scale: the rule the
    suites were tuned, run and judged with. (Never name a callback attribute ``log``: Lightning sets it to the
    module's ``log`` method, which is how an earlier version got this rule by accident.) Deterministic: it reads
    only validation values. ``reached``:
    whether it stopped training (else the step budget, the cap, did); ``best_step``: the optimizer step of the
    best validation, where the metric stopped improving (the samples it took are the run's "how fast").

    The weights of the best validation so far are kept (in memory: these models are small) and :meth:`restore`
    puts them back before the test, as early stopping with a best checkpoint does: a run stopped on a plateau
    before its learning rate decayed is tested where it validated best, not wherever the last steps left it."""

    def __init__(self, task, patience: int, tolerance: float):
        self.key, self.patience, self.tolerance = task.val_metric, patience, tolerance
        self.sign = 1.0 if task.lower_is_better else -1.0
        self.best, self.best_step, self.waited, self.reached = math.inf, 0, 0, False
        self.best_seen, self.best_weights = math.inf, None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is None or trainer.sanity_checking or not math.isfinite(float(value)):
            return
        score = self.sign * math.log(max(float(value), 1e-300))
        if score < self.best_seen:
            self.best_seen = score
            self.best_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if score < self.best - self.tolerance:
            self.best, self.best_step, self.waited = score, trainer.global_step, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.reached = trainer.should_stop = True

    def restore(self, module: pl.LightningModule) -> None:
        """Load the best validation's weights into ``module`` (nothing when no validation ran)."""
        if self.best_weights is not None:
            module.load_state_dict(self.best_weights)


def collect_garbage() -> None:
    """Between runs of a long-lived worker: Lightning and torch leave reference cycles behind, and without a
    collection the resident set creeps up (~3 MB a run) and inflates every later run's peak memory. Freezing
    what survives keeps the next collection short (only objects made since are scanned)."""
    gc.collect()
    gc.freeze()


def train_run(cfg: RunConfig, tracking_uri: str, experiment: str = locations.EXPERIMENT, parent_run_id: str | None = None,
              device: str = "cpu", progress_bar: bool = False, on_start=None,
              extra_tags: dict[str, str] | None = None, claim: Claim | None = None,
              watchdog: Watchdog | None = None, name: str | None = None) -> RunOutcome:
    """Train one resolved config and record it in MLflow as one run, FINISHED only when complete.

    Divergence (NaN/inf loss) is a result: the run ends FAILED (red in the UI) with tag ``bench.outcome=diverged``
    (:func:`bench.running.store.has_result`) and the
    step. Any other exception marks it FAILED with the reason; neither propagates, and neither does a store that
    fails (the outcome says so in ``store_error``). ``on_start(run_id)`` is called once the run exists, so a
    supervisor can mark it FAILED should this process die. With ``claim`` the configuration is claimed in the
    store first (:mod:`bench.running.claims`); a claim lost gives status ``claimed`` or ``elsewhere``. ``watchdog``: the
    runner this process works for; the run is never marked FINISHED once it is gone. ``name``: the run's name in
    the UI (a suite gives each run a name unique within it; default :func:`bench.config.settings.display_name`).
    """
    start = time.perf_counter()
    tags = {**provenance.environment_tags(device), **provenance.run_description_tags(cfg),
            "bench.config_hash": config_hash(cfg), **(extra_tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    store = Store(tracking_uri)
    name = name or display_name(cfg)
    run = logger = None
    try:
        with shielded():  # a signal now is taken once the run exists, so that it ends the run KILLED
            try:
                run = open_run(store, results_experiment(store, experiment), name, tags, cfg, claim, watchdog)
            except StoreError as e:
                return RunOutcome(None, "failed", {}, str(e), e)
        if isinstance(run, Lost):
            return RunOutcome(None, run.status, {}, run.reason)
        if on_start is not None:
            on_start(run.run_id)
        logger = RunLogger(store, run.run_id)
        outcome, ending = _train(cfg, store, run.run_id, tags, name, logger, device, progress_bar, start)
        # The metrics not yet written go in one batch with the ending (never raises; on a store that fails they
        # are lost with the ending, and the outcome says why).
        with shielded():
            problem = run.end(*ending, logger.unwritten())
    except Interrupted as e:  # SIGINT or SIGTERM (bench.running.interrupt): the run ends KILLED, saying which
        if run is not None and not isinstance(run, Lost):
            e.run_id = run.run_id
            run.end(KILLED, {"bench.outcome": "killed", "bench.reason": e.reason},
                    logger.unwritten() if logger is not None else ())
        raise
    if problem is not None and outcome.status != "failed":
        outcome = RunOutcome(run.run_id, "failed", {}, problem)
    outcome.store_error = outcome.store_error or run.store_error
    return outcome


def _train(cfg: RunConfig, store: Store, run_id: str, tags: dict, name: str, logger: RunLogger, device: str,
           progress_bar: bool, start: float) -> tuple[RunOutcome, tuple]:
    """Train, test and log the run; (its outcome, how to end it: status and tags). Never raises but
    :class:`Interrupted` (or ``KeyboardInterrupt``, where no signal handler of :mod:`bench.running.interrupt`
    is installed): any other exception, ``SystemExit`` too, is the run failing."""
    outcome = RunOutcome(run_id, "finished")
    try:
        try:
            store.log_input(run_id, **provenance.dataset_input(cfg))
            with store.system_metrics(run_id):  # when switched on (--system-metrics)
                model, data, metrics = fit_and_test(cfg, logger, device, progress_bar)
            metrics["wall_time_s"] = time.perf_counter() - start
            outcome.metrics = metrics
            # Test metrics are in the buffer already (Lightning logged them); add the run's summary figures.
            logger.log_metrics({k: v for k, v in metrics.items() if not k.startswith("test/")},
                               step=metrics["train/steps"])
            log_artifacts(store, run_id, cfg, tags, logger.series, model, data)
            ending = (FINISHED, {"bench.outcome": "finished"})
        except DivergedError as e:
            outcome = RunOutcome(run_id, "diverged", {"diverged_step": e.step}, str(e))
            logger.log_metrics(outcome.metrics, step=e.step)
            # The config that reruns it, and its curve up to the NaN.
            log_artifacts(store, run_id, cfg, tags, logger.series, title=f"{name}: diverged",
                          note=f"diverged: {e}")
            ending = (FAILED, {"bench.outcome": "diverged", "bench.reason": str(e),
                                 "mlflow.runName": f"diverged·{name}"})  # first: seen in the runs table
    except (KeyboardInterrupt, Interrupted):
        raise
    except BaseException as e:  # one bad run must never take the others down, nor a plug-in's sys.exit() pass
        reason = f"{type(e).__name__}: {e}"
        outcome = RunOutcome(run_id, "failed", {}, reason, e if isinstance(e, StoreError) else None)
        ending = (FAILED, {"bench.outcome": "failed", "bench.reason": reason[:4000],
                           "bench.traceback": traceback.format_exc()[-4000:]})
    return outcome, ending


def log_artifacts(store: Store, run_id: str, cfg: RunConfig, tags: dict, history, model=None, data=None,
                  title: str = "", note: str = "") -> None:
    """The resolved config, a file ``rnn-bench train --config config.yaml`` reruns as is (its ``rerun`` line the
    same as flags, never wrapped), and the run's plot, ``plot.svg``; a diverged run (no model) gets its learning
    curve, titled ``title``, with ``note`` (why it stopped) written across it. ``history(keys)`` gives the run's
    logged series (:meth:`RunLogger.series`)."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.yaml"
        record = {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                  "rerun": rerun_command(cfg), "rerun_from_this_file": "rnn-bench train --config config.yaml",
                  "tags": tags}
        # libyaml's emitter where PyYAML has it (2 ms a run less than the pure-Python one); never wrapped
        config_path.write_text(yaml.dump(record, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                                         sort_keys=False, width=2**31 - 1))
        plot_path = Path(tmp) / "plot.svg"
        paths = [config_path, plot_path]
        task = cfg.task
        if model is None:
            learning_curve(history(["train/loss", task.val_metric]), plot_path, ylabel=task.metric_label,
                           title=title, note=note)
        else:
            task.run_plot(cfg, data, model, history, plot_path, title=display_name(cfg))
            # The trained weights: plots show a run's predictions without training it again.
            torch.save(model.state_dict(), Path(tmp) / "model.pt")
            paths.append(Path(tmp) / "model.pt")
        store.log_artifacts(run_id, paths)


def rerun_command(cfg: dict) -> str:
    """The command line that reproduces this run, in a form the shell and the parser take as is (``--key=value``,
    so a negative list such as ``--weights=-0.5,0.4`` stays a value; quoted where the shell would split).

    >>> rerun_command({"task": "dependency", "weights": (-0.5, 0.4), "bidirectional": False})
    'rnn-bench train --task=dependency --weights=-0.5,0.4 --bidirectional=false'
    """
    return " ".join(["rnn-bench train", *(shlex.quote(f"--{k.replace('_', '-')}={setting_text(v)}")
                                          for k, v in cfg.items())])
