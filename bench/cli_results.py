"""The results commands of the command line: ``compile``, ``baseline`` and ``regress``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.config import ConfigError


def add_commands(commands, add_tracking_flags) -> None:
    """Add the three subcommands to ``commands`` (the CLI's subparsers)."""
    from bench import regress

    compile_ = commands.add_parser(
        "compile", help="compile a suite's results into tables and plots (results/<suite>/)",
        description="Read a suite's runs from the store and write README.md, results.html, CSVs and PNGs to "
                    "results/<suite>/; log them on the suite's latest parent run.")
    baseline = commands.add_parser(
        "baseline", help="write a suite's results as the regression baseline (results/baseline/<suite>.json)",
        description="Write per configuration (seeds pooled) the metric's mean, std and n, whether it reaches its "
                    "target and its samples/s, with the commit, date and suite hash: a file to review in git.")
    baseline.add_argument("--out", default=None, help="where to write (default: results/baseline/<suite>.json)")
    check = commands.add_parser(
        "regress", help="compare a suite's results with its baseline; exit 1 on a regression",
        description=regress.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--baseline", default=None, help="baseline file (default: results/baseline/<suite>.json)")
    check.add_argument("--sigmas", type=float, default=regress.SIGMAS,
                       help=f"worse means worse by more than this many pooled seed std (default {regress.SIGMAS:g})")
    check.add_argument("--min-delta", action="append", default=[], metavar="TASK=VALUE",
                       help="...and by more than this absolute amount (default: "
                            + ", ".join(f"{t}={v:g}" for t, v in regress.MIN_DELTA.items()) + ")")
    check.add_argument("--slow-ratio", type=float, default=regress.SLOW_RATIO,
                       help=f"flag samples/s below this fraction of the baseline's (default {regress.SLOW_RATIO:g})")
    check.add_argument("--fail-on-slow", action="store_true", help="fail on slower configurations, not just warn")
    for parser, handler in ((compile_, cmd_compile), (baseline, cmd_baseline), (check, cmd_regress)):
        default = "default" if parser is compile_ else "smoke"
        parser.add_argument("--suite", default=default,
                            help=f"a name in bench/suites/ or a path to a YAML file (default: {default})")
        add_tracking_flags(parser)
        parser.set_defaults(handler=handler)


def suite_and_store(args: argparse.Namespace):
    from bench import tracking
    from bench.suite import load_suite

    suite = load_suite(args.suite)
    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    return suite, uri


def compile_and_report(suite, uri: str, experiment: str) -> None:
    """Compile ``suite`` and say where the results went (also called at the end of ``bench run``). Runs left
    RUNNING by processes that are gone are marked first (:func:`bench.leases.reap`)."""
    from bench.compile import compile_suite
    from bench.leases import reap
    from bench.store import Store

    store = Store(uri)
    experiment_id = store.find_experiment(experiment)
    if experiment_id is not None:
        for run_id, reason in reap(store, experiment_id):
            print(f"marked run {run_id} as ended: {reason}")
    compiled = compile_suite(suite, uri, experiment)
    logged = f"; logged on run {compiled.parent_run_id}" if compiled.parent_run_id else ""
    print(f"compiled {len(compiled.summary)} configurations -> {compiled.out_dir}/README.md, results.html, "
          f"{sum(p.suffix == '.csv' for p in compiled.files)} CSVs, {sum(p.suffix == '.png' for p in compiled.files)} "
          f"plots{logged}")


def cmd_compile(args: argparse.Namespace) -> int:
    suite, uri = suite_and_store(args)
    compile_and_report(suite, uri, args.experiment)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from bench import regress, results, tables

    suite, uri = suite_and_store(args)
    found = results.load(suite, uri, args.experiment)
    missing = int((found.runs["outcome"] == "missing").sum())
    if missing:
        raise ConfigError([f"baseline: {missing} of {len(found.runs)} runs of suite {suite.name!r} are not in "
                           f"{uri}; allowed: a store where the whole suite ran (bench run --suite {args.suite})"])
    failed = int((found.runs["outcome"] == "failed").sum())
    if failed:
        print(f"warning: {failed} runs failed; the baseline records them as failed")
    doc = regress.make_baseline(suite, tables.summarize(found.runs), list(found.runs["commit"].dropna()))
    path = Path(args.out) if args.out else regress.baseline_path(suite.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"baseline of {len(doc['configurations'])} configurations (commit {doc['commit']}) -> {path}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from bench import regress, results, tables, targets, tracking
    from bench.suite import parse_overrides

    suite, uri = suite_and_store(args)
    path = Path(args.baseline) if args.baseline else regress.baseline_path(suite.name)
    baseline = regress.load_baseline(path)
    min_delta = {}
    for task, value in parse_overrides(args.min_delta, "--min-delta").items():
        try:
            min_delta[task] = float(value)
        except ValueError:
            min_delta[task] = -1.0
        if task not in targets.METRIC or min_delta[task] < 0:
            raise ConfigError([f"--min-delta: {task}={value}; allowed: TASK=VALUE with TASK one of "
                               f"{', '.join(targets.METRIC)} and VALUE a number >= 0"])
    if args.sigmas < 0 or not 0 < args.slow_ratio <= 1:
        raise ConfigError([f"--sigmas {args.sigmas:g} / --slow-ratio {args.slow_ratio:g}; allowed: sigmas >= 0, "
                           "0 < slow-ratio <= 1"])
    summary = tables.summarize(results.load(suite, uri, args.experiment).runs)
    comparison = regress.compare(baseline, path, suite, summary, args.sigmas, min_delta, args.slow_ratio,
                                 args.fail_on_slow)
    report = regress.regress_markdown(comparison)
    out = tracking.results_dir() / suite.name / "regress.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    print(f"report -> {out}")
    return 1 if comparison.failed else 0
