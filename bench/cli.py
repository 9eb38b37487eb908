"""Command line: ``python -m bench <command>``. Bad input exits 2 before anything is written."""

from __future__ import annotations

import argparse
import sys

from bench.cli_results import add_commands as add_results_commands, compile_and_report
from bench.config import FIELDS, TASK_DEFAULTS, COMMON_DEFAULTS, ConfigError, resolve
from bench.executors.slots import parse_devices
from bench.store import StoreError


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; values stay strings so that :func:`resolve` reports every problem alike."""
    group = parser.add_argument_group("run configuration (defaults depend on --task)")
    for f in FIELDS:
        flag = "--" + f.name.replace("_", "-")
        defaults = {t: d[f.name] for t, d in TASK_DEFAULTS.items() if f.name in d}
        default = COMMON_DEFAULTS.get(f.name, defaults or None)
        help_text = f"{f.help}; {f.allowed} (default: {default})"
        if f.kind is bool:
            group.add_argument(flag, nargs="?", const="true", default=None, metavar="BOOL", help=help_text)
        else:
            group.add_argument(flag, default=None, metavar=f.name.upper(), help=help_text)


def config_overrides(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name) is not None}


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite under results/)")
    parser.add_argument("--experiment", default="rnn-bench", help="MLflow experiment name (default: rnn-bench)")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError([f"device: {requested!r}: no CUDA device is visible; allowed: cpu, auto"])
    if requested not in ("cpu", "cuda") and not requested.startswith("cuda:"):
        raise ConfigError([f"device: {requested!r}; allowed: cpu, cuda, cuda:N, auto"])
    return requested


def cmd_train(args: argparse.Namespace) -> int:
    from bench import tracking

    cfg = resolve(config_overrides(args))
    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    device = resolve_device(args.device)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.train import train_run

    outcome = train_run(cfg, uri, args.experiment, device=device, progress_bar=not args.no_progress)
    if outcome.store_error is not None:  # one line naming the store (main prints it)
        raise outcome.store_error.after_work() if outcome.run_id else outcome.store_error
    print(f"run {outcome.run_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
    for key in sorted(outcome.metrics):
        print(f"  {key:24s} {outcome.metrics[key]:.6g}")
    return 1 if outcome.status == "failed" else 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench import tracking
    from bench.suite import load_suite, parse_overrides

    if args.workers < 0 or args.per_device < 1:
        bad = ("workers", args.workers, "an integer >= 0 (0: one per core)") if args.workers < 0 else (
            "per-device", args.per_device, "an integer >= 1")
        raise ConfigError([f"{bad[0]}: {bad[1]}; allowed: {bad[2]}"])
    suite = load_suite(args.suite, parse_overrides(args.axis, "--axis"), parse_overrides(args.set, "--set"))
    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    if args.device != "auto":
        resolve_device(args.device)
    devices = parse_devices(args.devices) if args.devices is not None else None
    from bench.runner import run_suite

    print(f"suite {suite.name}: {len(suite.configs)} runs -> {uri}")
    result = run_suite(suite, uri, args.experiment, device=args.device, workers=args.workers,
                       per_device=args.per_device, force=args.force, progress=not args.no_progress,
                       executor=args.executor, address=args.address, devices=devices)
    print_summary(suite, result)
    if not args.no_compile:
        compile_and_report(suite, uri, args.experiment)
    return 1 if result.count("failed") else 0


def print_summary(suite, result) -> None:
    from bench.config import run_name

    print(f"\nsuite {suite.name} in {result.wall_time_s:.1f} s: {result.count('finished')} finished, "
          f"{len(result.skipped)} skipped (already in the store), {result.count('elsewhere')} done by another runner, "
          f"{result.count('failed')} failed, {result.count('diverged')} diverged")
    for index, (status, reason, metrics) in sorted(result.outcomes.items()):
        if status != "finished":
            print(f"  {status:8s} {run_name(suite.configs[index])}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, test and track one configuration",
                                description="Train, test and track one configuration in MLflow.")
    add_config_flags(train)
    add_tracking_flags(train)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default 1: fastest for these small models; 0: torch's choice)")
    train.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    train.set_defaults(handler=cmd_train)

    run = commands.add_parser("run", help="run a suite (a YAML matrix) on every device of this machine",
                              description="Run a suite: skips runs already FINISHED in the store, so rerunning "
                                          "after a crash does only what is missing.")
    run.add_argument("--suite", default="default",
                     help="a name in bench/suites/ (smoke, default, full) or a path to a YAML file")
    run.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                     help="replace (or add) an axis of the matrix, e.g. --axis seed=0,1,2")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a fixed setting for every run, e.g. --set hidden=32")
    run.add_argument("--device", default="auto", help="auto (GPUs if visible), cpu or cuda (default: auto)")
    run.add_argument("--workers", type=int, default=0, help="CPU workers (default 0: one per core)")
    run.add_argument("--per-device", type=int, default=1, help="workers per GPU (default 1)")
    run.add_argument("--devices", default=None, metavar="0,2",
                     help="GPUs to use, as CUDA_VISIBLE_DEVICES names them (default: every visible one)")
    run.add_argument("--force", action="store_true", help="rerun configurations already in the store")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: worker processes here (default); ray: tasks on a Ray cluster (pip install .[ray])")
    run.add_argument("--address", default=None,
                     help="with --executor ray: the cluster's address, or auto; default: start a local Ray")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--no-compile", action="store_true", help="skip compiling the results (bench compile) at the end")
    add_tracking_flags(run)
    run.set_defaults(handler=cmd_run)
    add_results_commands(commands, add_tracking_flags)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except StoreError as e:  # 1 once part of the work is done, 2 if nothing was
        print(f"error: {e}", file=sys.stderr)
        return 1 if e.partial else 2
