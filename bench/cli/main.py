"""Command line: ``python -m bench <command>``. Bad input exits 2 before anything is written."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import re

import yaml

from bench import tasks
from bench.core import bounded_yaml, names
from bench.cli.args import ArgumentParser, integer, output_dir, report
from bench.cli.results_commands import add_commands as add_results_commands, checked_store, compile_and_report
from bench.cli.ui import add_command as add_ui_command
from bench.config.settings import COMMON_DEFAULTS, ConfigError, fields_for, resolve, run_name, setting_text, shown
from bench.config.suite import available_suites, load_suite, parse_overrides
from bench.running.executors.slots import parse_devices
from bench.running import memory_fit
from bench.running.interrupt import Interrupted, catch_signals
from bench.running.runner import run_suite
from bench.running.store import StoreError
from lightning_modules import cell_registry

MAX_THREADS = 1024
MAX_WORKERS = 1024
MAX_PER_DEVICE = 64


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, common ones first, then one group per built-in task; values stay strings so that
    :func:`resolve` reports every problem alike. Help shows the real default (per task where they differ)."""
    groups = {None: parser.add_argument_group("run settings (every task)")}
    owner = {}
    for name, task in tasks.BUILTIN.items():
        groups[name] = parser.add_argument_group(f"{task.title or name} settings (--task {name})")
        owner.update({f.name: name for f in task.fields if f.name not in owner})
    for f in fields_for().values():
        flag = "--" + f.name.replace("_", "-")
        if f.name == "task":
            default = tasks.DEFAULT
        elif f.name in COMMON_DEFAULTS:
            default = setting_text(COMMON_DEFAULTS[f.name])
        else:
            per_task = {n: t.defaults[f.name] for n, t in tasks.BUILTIN.items() if f.name in t.defaults}
            values = set(map(setting_text, per_task.values()))
            default = (values.pop() if len(values) == 1 else
                       ", ".join(f"{setting_text(v)} ({n})" for n, v in per_task.items())) if per_task else (
                f"= {f.follows}" if f.follows else "none")
        allowed = tasks.allowed() if f.name == "task" else f.allowed
        help_text = f"{f.help}; {allowed} (default: {default})".replace("%", "%%")
        group = groups[owner.get(f.name)]
        if f.kind is bool:
            group.add_argument(flag, nargs="?", const="true", default=None, metavar="BOOL", help=help_text)
        else:
            group.add_argument(flag, default=None, metavar=f.name.upper(), help=help_text)


def config_overrides(args: argparse.Namespace) -> dict:
    """The settings of a ``--config`` file (a run's ``config.yaml``), then every flag given on top of them. A file
    is data: a plug-in it names by dotted path, not installed, is code it would run, refused unless a flag names
    the same or ``--trust-config`` is given."""
    flags = {name: getattr(args, name) for name in fields_for() if getattr(args, name) is not None}
    found = load_config_file(args.config) if getattr(args, "config", None) else {}
    if not getattr(args, "trust_config", False):
        unlisted = {"task": tasks.is_unlisted_code, "cell": cell_registry.is_unlisted_code}
        problems = [f"--config: {name}: {shown(found[name])} in {args.config!r} is a dotted path to code that is not "
                    f"installed, which would run; allowed: a built-in or installed {name}, --{name} naming it "
                    "yourself, or --trust-config if you trust this file"
                    for name, check in unlisted.items() if name not in flags and check(found.get(name))]
        if problems:
            raise ConfigError(problems)
    return {**found, **flags}


def load_config_file(path: str) -> dict:
    """The ``config:`` mapping of a run's ``config.yaml`` (or a plain mapping of settings); one-line errors."""
    try:
        doc = bounded_yaml.safe_load(open(path, encoding="utf-8").read())
    except bounded_yaml.TooLarge as e:
        raise ConfigError([f"--config: {path!r}: {e}; allowed: a run's config.yaml"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise ConfigError([f"--config: {path!r} cannot be read ({type(e).__name__}); allowed: a run's config.yaml"]) \
            from None
    settings = doc.get("config", doc) if isinstance(doc, dict) else None
    if not isinstance(settings, dict):
        raise ConfigError([f"--config: {path!r}: not a mapping of settings; allowed: a run's config.yaml"])
    return settings


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite under results/)")
    parser.add_argument("--experiment", default="rnn-bench",
                        help="MLflow experiment name; letters, digits, '.', '_', '-' (default: rnn-bench)")


def add_system_metrics_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system-metrics", action="store_true",
                        help="log each run's CPU, memory, disk and network use (and GPUs') as MLflow system metrics, "
                             "sampled every 2 s (the same as MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true)")


def resolve_device(requested: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]{1,4})?", requested):
        raise ConfigError([f"device: {shown(requested)}; allowed: cpu, cuda, cuda:N, auto"])
    if requested == "cpu":
        return requested
    import torch  # only to look for GPUs: a CPU suite's runner never imports it

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError([f"device: {requested!r}: no CUDA device is visible; allowed: cpu, auto"])
        if int(requested.partition(":")[2] or 0) >= count:
            raise ConfigError([f"device: {requested!r}: {count} CUDA devices visible; allowed: cpu, auto, cuda, "
                               f"cuda:0 to cuda:{count - 1}"])
    return requested


def ray_address(text: str) -> str:
    """An argparse ``type``: an address ``ray.init`` can take, by its form (whether it answers, Ray says)."""
    if not re.fullmatch(r"auto|(ray://)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}", text):
        raise argparse.ArgumentTypeError(f"{shown(text)}; allowed: auto, host:port or ray://host:port")
    return text


def cmd_train(args: argparse.Namespace) -> int:
    cfg = resolve(config_overrides(args))
    device = resolve_device(args.device)
    if too_big := memory_fit.problem([cfg], device):
        raise ConfigError([too_big])
    uri = checked_store(args)
    import torch  # torch and Lightning only once the settings are checked

    torch.set_num_threads(args.threads)
    from bench.running.train import train_run  # torch and Lightning, as above

    from bench.cli.train_summary import summary
    from bench.config.settings import display_name
    from bench.running.store import Store

    outcome = train_run(cfg, uri, args.experiment, device=device, progress_bar=not args.no_progress)
    if outcome.store_error is not None:  # one line naming the store (main prints it)
        raise outcome.store_error.after_work() if outcome.run_id else outcome.store_error
    print("\n".join(summary(display_name(cfg), outcome.run_id, outcome.status, outcome.reason, cfg.task,
                            outcome.metrics, uri, args.experiment, Store(uri).find_experiment(args.experiment))))
    return 1 if outcome.status == "failed" else 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.address and args.executor != "ray":
        raise ConfigError([f"--address: {args.address!r} with --executor {args.executor}; allowed: --address only "
                           "with --executor ray"])
    suite = load_suite(args.suite, parse_overrides(args.axis, "--axis"), parse_overrides(args.set, "--set"))
    if args.device != "auto":
        resolve_device(args.device)
    devices = parse_devices(args.devices) if args.devices is not None else None
    if too_big := memory_fit.problem(suite.configs, args.device if args.device.startswith("cuda") else "cpu",
                                     suite.name_of):
        raise ConfigError([too_big])
    uri = checked_store(args)
    later = [f"{len(suite.tuning.shared)} reported runs at the tuned rates" if suite.tuning else "",
             f"seeds added up to {suite.seeds[1]} where the answer is open" if suite.seeds else ""]
    print(f"suite {suite.name}: {len(suite.configs)} runs" + "".join(f", then {t}" for t in later if t) + f" -> {uri}")
    try:
        result = run_suite(suite, uri, args.experiment, device=args.device, workers=args.workers,
                           per_device=args.per_device, force=args.force, progress=not args.no_progress,
                           executor=args.executor, address=args.address, devices=devices)
    except Interrupted as e:
        if e.result is None:
            raise
        done = len(e.result.outcomes) - e.result.count("killed")
        print(f"suite {suite.name} {e.reason} after {e.result.wall_time_s:.1f} s: {done} runs done, "
              f"{e.result.count('killed')} ended KILLED, {len(suite.configs) - done - len(e.result.skipped)} "
              "left; rerun the same command to resume", file=sys.stderr)
        return e.exit_code
    print_summary(suite, result)
    if not args.no_compile:
        compile_and_report(suite, uri, args.experiment, args.out, partial=True)
    return 1 if result.count("failed") else 0


def print_summary(suite, result) -> None:
    print(f"\nsuite {suite.name} in {result.wall_time_s:.1f} s: {result.count('finished')} finished, "
          f"{len(result.skipped)} skipped (already in the store), {result.count('elsewhere')} done by another runner, "
          f"{result.count('failed')} failed, {result.count('diverged')} diverged")
    for index, (status, reason, metrics) in sorted(result.outcomes.items()):
        if status != "finished":
            print(f"  {status:8s} {run_name(suite.configs[index])}: {reason}")


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    # Library loggers (MLflow's "Creating initial MLflow database tables...", Lightning's banners) would break
    # the progress bar's line; their warnings still show.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow sets its loggers' level on import
    for name in ("mlflow", "alembic", "pytorch_lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    parser = ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, test and track one configuration",
                                description="Train, test and track one configuration in MLflow.")
    train.add_argument("--config", default=None, metavar="FILE",
                       help="a run's config.yaml (MLflow artifact): rerun it as is; flags given as well override it")
    train.add_argument("--trust-config", action="store_true",
                       help="let --config's file name plug-in code by dotted path (package.module:name) that is not "
                            "installed: it is imported and run, so only for a file you trust")
    add_config_flags(train)
    add_tracking_flags(train)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    train.add_argument("--threads", type=integer(1, MAX_THREADS), default=1,
                       help=f"torch CPU threads, 1 to {MAX_THREADS} (default 1: fastest for these small models)")
    train.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    add_system_metrics_flag(train)
    train.set_defaults(handler=cmd_train)

    run = commands.add_parser("run", help="run a suite (a YAML matrix) on every device of this machine",
                              description="Run a suite: skips runs already FINISHED in the store, so rerunning "
                                          "after a crash does only what is missing.")
    run.add_argument("--suite", default="default",
                     help=f"a name in bench/suites/ ({', '.join(available_suites())}) or a path to a YAML file "
                          "(default: default)")
    run.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                     help="replace (or add) an axis of the matrix, e.g. --axis seed=0,1,2")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a fixed setting for every run, e.g. --set hidden=32")
    run.add_argument("--device", default="auto", help="auto (GPUs if visible), cpu or cuda (default: auto)")
    run.add_argument("--workers", type=integer(0, MAX_WORKERS, " (0: one per core)"), default=0,
                     help=f"CPU workers, 0 to {MAX_WORKERS} (default 0: one per core)")
    run.add_argument("--per-device", type=integer(1, MAX_PER_DEVICE), default=1,
                     help=f"workers per GPU, 1 to {MAX_PER_DEVICE} (default 1)")
    run.add_argument("--devices", default=None, metavar="0,2",
                     help="GPUs to use, as CUDA_VISIBLE_DEVICES names them (default: every visible one)")
    run.add_argument("--force", action="store_true", help="rerun configurations already in the store")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: worker processes here (default); ray: tasks on a Ray cluster (pip install .[ray])")
    run.add_argument("--address", default=None, type=ray_address,
                     help="with --executor ray: the cluster's address (host:port, ray://host:port) or auto; "
                          "default: start a local Ray")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--out", type=output_dir, default=None, metavar="DIR",
                     help="where the compiled results go (default: results/<suite>/ for the embedded store, "
                          "<store folder>/results/<suite>/ for another SQLite store, ./rnn-bench-results/<suite>/ "
                          "for a tracking server)")
    run.add_argument("--no-compile", action="store_true", help="skip compiling the results (bench compile) at the end")
    add_system_metrics_flag(run)
    add_tracking_flags(run)
    run.set_defaults(handler=cmd_run)
    add_results_commands(commands, add_tracking_flags)
    add_ui_command(commands)

    try:
        args = parser.parse_args(argv)
        if hasattr(args, "experiment"):
            names.check_name("experiment", args.experiment)  # it becomes a folder of the store's artifacts
        if getattr(args, "system_metrics", False):
            # MLflow's own switch (bench.running.store.Store.system_metrics reads it): worker processes, spawned or on a
            # local Ray, inherit it with the environment.
            os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] = "true"
        with catch_signals():
            return args.handler(args)
    except Interrupted as e:  # the runs it held are ended KILLED, with the signal as their reason
        print(f"{e.reason}" + (f": run {e.run_id} ended KILLED" if e.run_id else "")
              + ("; rerun the same command to resume" if args.command == "run" else ""), file=sys.stderr)
        return e.exit_code
    except ConfigError as e:
        return report(e)
    except StoreError as e:  # 1 once part of the work is done, 2 if nothing was
        print(f"error: {e}", file=sys.stderr)
        return 1 if e.partial else 2


class ClosedStdoutIgnored:
    """``sys.stdout`` for a command line whose reader may go away (``rnn-bench run … | head -1``): once the pipe
    is closed, what is printed goes to /dev/null, and the command goes on (the suite, its compile) and ends as it
    would have, instead of dying of a BrokenPipeError traceback at its next line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name):
        return getattr(self.stream, name)


def console_script(prog: str = "rnn-bench") -> None:
    """The ``rnn-bench`` command (pyproject's console script) and ``python -m bench``: :func:`main` with a stdout
    whose reader may go away."""
    sys.stdout = ClosedStdoutIgnored(sys.stdout)
    sys.exit(main(prog=prog))
