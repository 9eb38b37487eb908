"""The results commands of the command line: ``compile``, ``baseline``, ``regress``, ``compare`` and ``history``."""

from __future__ import annotations

import argparse
import errno
import json
import math
from pathlib import Path

from bench import tasks
from bench.cli.args import module_text, number, output_dir, output_file
from bench.config.settings import ConfigError, RunConfig, shown
from bench.config.suite import available_suites, load_suite
from bench.running import locations
from bench.running.leases import reap
from bench.running.store import Store, StoreError, sqlite_path


def add_commands(commands, add_tracking_flags) -> None:
    """Add the results subcommands to ``commands`` (the CLI's subparsers)."""
    # Read from the modules' source: importing bench.reporting.regress would bring pandas and scipy to every command.
    alpha, slow_ratio = module_text("bench.reporting.regress", "ALPHA"), module_text("bench.reporting.regress",
                                                                                      "SLOW_RATIO")

    compile_ = commands.add_parser(
        "compile", help="compile a suite's results into tables and plots (results/<suite>/)",
        description="Read a suite's runs from the store and write README.md, results.html, CSVs and PNGs to "
                    "results/<suite>/; log them on the suite's latest parent run. Refuses, writing nothing, when "
                    "the store holds none of the suite's runs, or (without --partial) only some of them.")
    compile_.add_argument("--partial", action="store_true",
                          help="compile a suite with runs missing or still running; the page says how many")
    baseline = commands.add_parser(
        "baseline", help="write a suite's results as the regression baseline (results/baseline/<suite>.json)",
        description="Write per configuration (seeds pooled) the metric's mean, std and n, whether it reaches its "
                    "target and its samples/s, with the commit, date and suite hash: a file to review in git.")
    baseline.add_argument("--out", type=output_file, default=None,
                          help="where to write (default: results/baseline/<suite>.json)")
    check = commands.add_parser(
        "regress", help="compare a suite's results with its baseline; exit 1 on a regression",
        description=module_text("bench.reporting.regress"), formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--baseline", default=None, help="baseline file (default: results/baseline/<suite>.json)")
    check.add_argument("--alpha", type=number(lambda v: 0 < v < 1, "a number in (0, 1)"), default=alpha,
                       help=f"false-alarm rate per configuration under pure seed noise (default {alpha:g})")
    check.add_argument("--min-delta", action="append", default=[], type=_min_delta, metavar="TASK=VALUE",
                       help="the smallest change that counts as worse (default: the task's own, "
                            + ", ".join(f"{n}={t.min_delta:g}" for n, t in tasks.BUILTIN.items())
                            + "; RMSE on the log scale)")
    check.add_argument("--slow-ratio", type=number(lambda v: 0 < v <= 1, "a number in (0, 1]"),
                       default=slow_ratio,
                       help=f"flag samples/s below this fraction of the baseline's (default {slow_ratio:g})")
    check.add_argument("--fail-on-slow", action="store_true", help="fail on slower configurations, not just warn")
    versus = commands.add_parser(
        "compare", help="compare two commits, suite runs or stores configuration by configuration; exit 1 if worse",
        description=module_text("bench.reporting.compare"), formatter_class=argparse.RawDescriptionHelpFormatter)
    versus.add_argument("a", metavar="A", help="the reference: a commit, a suite parent run (id or name) or a store")
    versus.add_argument("b", metavar="B", help="what is judged against A: the same kinds as A")
    versus.add_argument("--alpha", type=number(lambda v: 0 < v < 1, "a number in (0, 1)"), default=alpha,
                        help=f"false-alarm rate per configuration under pure seed noise (default {alpha:g})")
    versus.add_argument("--out", type=output_dir, default=None, metavar="DIR",
                        help="where compare.md and compare.html go (default: the results folder's compare/, as "
                             "for a suite named compare)")
    add_tracking_flags(versus)
    versus.set_defaults(handler=cmd_compare)
    past = commands.add_parser(
        "history", help="a suite's metric by commit across the store, and where it stepped",
        description=module_text("bench.reporting.history", "METHOD"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    past.add_argument("--alpha", type=number(lambda v: 0 < v < 1, "a number in (0, 1)"), default=alpha,
                      help=f"false-alarm rate per series, shared by its splits (default {alpha:g})")
    for parser, handler in ((compile_, cmd_compile), (baseline, cmd_baseline), (check, cmd_regress),
                            (past, cmd_history)):
        default = "default" if parser is compile_ else "smoke"
        parser.add_argument("--suite", default=default,
                            help=f"a name in bench/suites/ ({', '.join(available_suites())}) or a path to a YAML "
                                 f"file (default: {default})")
        add_tracking_flags(parser)
        if parser is not baseline:
            parser.add_argument("--out", type=output_dir, default=None, metavar="DIR",
                                help="where the compiled results go (default: results/<suite>/ for the embedded "
                                     "store, <store folder>/results/<suite>/ for another SQLite store, "
                                     "./rnn-bench-results/<suite>/ for a tracking server)")
        parser.set_defaults(handler=handler)


def _min_delta(text: str) -> tuple[str, float]:
    """An argparse ``type``: ``TASK=VALUE`` with a task's name and a finite number >= 0."""
    task, _, value = text.partition("=")
    try:
        delta = float(value)
    except ValueError:
        delta = math.nan
    if tasks.problem(task) or not 0 <= delta < math.inf:
        raise argparse.ArgumentTypeError(f"{shown(text)}; allowed: TASK=VALUE with TASK a registered task "
                                         f"({', '.join(tasks.BUILTIN)}, …) and VALUE a finite number >= 0")
    return task, delta


def checked_store(args: argparse.Namespace, write: bool = True) -> str:
    """The tracking URI of the command, checked (``write``: for writing too; compiling only reads the database).
    Call it after every other check: for the default store it creates results/."""
    uri = args.tracking_uri or locations.default_tracking_uri()
    locations.check_tracking_uri(uri, write)
    return uri


def restore_run(cfg: RunConfig, weights):
    """A run's trained (data, model) for the figures that show its predictions: :func:`bench.running.train.restore`,
    imported only when one is drawn (it brings torch and Lightning)."""
    from bench.running.train import restore  # torch and Lightning: only for a figure that needs a model

    return restore(cfg, weights)


def compile_and_report(suite, uri: str, experiment: str, out: str | None = None, partial: bool = False) -> None:
    """Compile ``suite`` and say where the results went (also called at the end of ``bench run``, with
    ``partial``: runs another runner still trains are then said on the page). Runs left RUNNING by processes
    that are gone are marked first (:func:`bench.running.leases.reap`)."""
    from bench.reporting.compile import compile_suite, nothing_to_compile  # matplotlib: only once compiled

    if sqlite_path(uri) is not None and not sqlite_path(uri).exists():  # MLflow would create it to find nothing
        raise nothing_to_compile(suite, uri, experiment)
    store = Store(uri)
    experiment_id = store.find_experiment(experiment)
    if experiment_id is not None:
        for run_id, reason in reap(store, experiment_id):
            print(f"marked run {run_id} as ended: {reason}")
    try:
        compiled = compile_suite(suite, uri, restore_run, experiment, out, partial)
    except OSError as e:  # the compiled files sit beside a SQLite store: a full disk there is the store's
        what = "disk full" if e.errno == errno.ENOSPC else "cannot write"
        raise StoreError(uri, f"{what} ({e.strerror}) while writing the compiled results "
                              f"to {locations.output_dir(uri, suite.name, out)}", partial=True) from None
    logged = f"; logged on run {compiled.parent_run_id}" if compiled.parent_run_id else ""
    print(f"compiled {len(compiled.summary)} configurations -> {compiled.out_dir}/README.md, results.html, "
          f"{sum(p.suffix == '.csv' for p in compiled.files)} CSVs, {sum(p.suffix == '.png' for p in compiled.files)} "
          f"plots{logged}")


def cmd_compile(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    uri = checked_store(args, write=False)
    compile_and_report(suite, uri, args.experiment, args.out, args.partial)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    # pandas and scipy: only for the command that uses them (bad input and --help answer without them)
    from bench.reporting import regress, results, tables

    suite = load_suite(args.suite)
    uri = checked_store(args)
    found = results.load(suite, uri, args.experiment)
    missing = int((found.runs["outcome"] == "missing").sum())
    if missing:
        raise ConfigError([f"baseline: {missing} of {len(found.runs)} runs of suite {suite.name!r} are not in "
                           f"{uri}; allowed: a store where the whole suite ran (bench run --suite {args.suite})"])
    failed = int((found.runs["outcome"] == "failed").sum())
    if failed:
        print(f"warning: {failed} runs failed; the baseline records them as failed")
    doc = regress.make_baseline(suite, tables.summarize(found.runs, suite.tasks), list(found.runs["commit"].dropna()))
    path = args.out or regress.baseline_path(suite.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"baseline of {len(doc['configurations'])} configurations (commit {doc['commit']}) -> {path}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    # pandas and scipy: only for the command that uses them (bad input and --help answer without them)
    from bench.reporting import regress, results, tables

    suite = load_suite(args.suite)
    path = Path(args.baseline) if args.baseline else regress.baseline_path(suite.name)
    baseline = regress.load_baseline(path)
    min_delta = dict(args.min_delta)
    uri = checked_store(args)
    summary = tables.summarize(results.load(suite, uri, args.experiment).runs, suite.tasks)
    comparison = regress.compare(baseline, path, suite, summary, args.alpha, min_delta, args.slow_ratio,
                                 args.fail_on_slow)
    report = regress.regress_markdown(comparison)
    out = locations.output_dir(uri, suite.name, args.out) / "regress.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    print(f"report -> {out}")
    return 1 if comparison.failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    # pandas and scipy: only for the command that uses them (bad input and --help answer without them)
    from bench.reporting import compare
    from bench.reporting.pages import to_html, to_markdown

    uri = checked_store(args, write=False)
    sides, problems = [], []
    for spec in (args.a, args.b):  # report both sides' problems at once
        try:
            sides.append(compare.resolve_side(spec, uri, args.experiment))
        except ConfigError as e:
            problems += e.problems
    if problems:
        raise ConfigError(problems)
    a, b = sides
    named = {compare.named_task(record) for side in sides for record in side.runs.to_dict("records")}
    specs = {name: tasks.get(name) for name in named if not tasks.problem(name)}  # the tasks this installation knows
    comparison = compare.compare(a, b, specs, args.alpha)
    blocks = compare.blocks(comparison)
    out = locations.output_dir(uri, "compare", args.out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(blocks)
    (out / "compare.md").write_text(markdown)
    (out / "compare.html").write_text(to_html(blocks, f"rnn-bench compare {args.a} {args.b}", out))
    print(markdown)
    print(f"report -> {out}/compare.md, compare.html")
    return 1 if comparison.worse else 0


def cmd_history(args: argparse.Namespace) -> int:
    # pandas and scipy: only for the command that uses them (bad input and --help answer without them)
    from bench.reporting import history

    suite = load_suite(args.suite)
    uri = checked_store(args, write=False)
    found = history.history(suite, Store(uri).runs_frame(args.experiment), args.alpha)
    out = locations.output_dir(uri, suite.name, args.out)
    out.mkdir(parents=True, exist_ok=True)
    history.plot(found, out / "history.png")
    report = history.markdown(found, "history.png")
    (out / "history.md").write_text(report)
    print(report)
    print(f"history of {len(found.commits)} commits -> {out}/history.md, history.png")
    return 0
