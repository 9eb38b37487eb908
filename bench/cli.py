"""Command line: ``python -m bench <command>``. Bad input exits 2 before anything is written."""

from __future__ import annotations

import argparse
import sys

from bench.config import FIELDS, TASK_DEFAULTS, COMMON_DEFAULTS, ConfigError, resolve


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
    print(f"run {outcome.run_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
    for key in sorted(outcome.metrics):
        print(f"  {key:24s} {outcome.metrics[key]:.6g}")
    return 1 if outcome.status == "failed" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, test and track one configuration",
                                description="Train, test and track one configuration in MLflow.")
    add_config_flags(train)
    add_tracking_flags(train)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    train.set_defaults(handler=cmd_train)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
