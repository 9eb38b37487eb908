"""Suite files are validated whole before anything runs: every problem at once, each naming the file, the
key, the value and what is allowed; the command line then exits 2 and writes nothing.

Mostly in-process through :func:`bench.config.suite.load_suite` (fast); one real ``python -m bench run`` subprocess
checks the exit code and that no store appears.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main as cli
from bench.config.settings import ConfigError, config_hash, resolve, run_name
from bench.config.suite import available_suites, load_suite, parse_overrides
from lightning_modules import cell_registry

REPO = Path(__file__).resolve().parents[1]

FIXED = "fixed: {task: dependency, hidden: 4, series_length: 20000, eval_length: 4000, batch_size: 20}\n"
VALID = "axes:\n  cell: [lstm, gru]\n  truncation: [5, 10]\n  seed: [0, 1]\n" + FIXED


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, axis: dict | None = None, fixed: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_suite(str(path), axis, fixed)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(path: Path, **kw) -> str:
    problems = problems_of(path, **kw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: "), problems[0]  # every problem names the file first
    return problems[0]


# ------------------------------------------------------------------------------------------- valid suites

def test_valid_suite_expands_every_combination_in_matrix_order(tmp_path):
    suite = load_suite(str(write(tmp_path, VALID, "tiny.yaml")))
    assert suite.name == "tiny" and suite.path == tmp_path / "tiny.yaml"
    assert [(c["cell"], c["truncation"], c["seed"]) for c in suite.configs] == [
        (cell, t, s) for cell in ("lstm", "gru") for t in (5, 10) for s in (0, 1)]
    assert all(c == resolve(c) for c in suite.configs)  # fully resolved configs
    assert all(c["hidden"] == 4 and c["batch_size"] == 20 for c in suite.configs)
    assert len(set(suite.hashes())) == 8
    assert run_name(suite.configs[2]) == "dependency/lstm-L1-uni-T10-s0"


def test_duplicate_combinations_collapse_to_one_run(tmp_path):
    suite = load_suite(str(write(tmp_path, "axes: {seed: [0, 0, '0'], hidden: [4, 4.0]}\n" + FIXED)))
    assert len(suite.configs) == 1


def test_tasks_section_applies_per_task(tmp_path):
    text = ("axes: {task: [dependency, sine]}\nfixed: {hidden: 5}\n"
            "tasks:\n  dependency: {series_length: 20000, batch_size: 20}\n  sine: {max_steps: 30, hidden: 6}\n")
    dep, sine = load_suite(str(write(tmp_path, text))).configs
    assert (dep["task"], dep["hidden"], dep["series_length"]) == ("dependency", 5, 20000)
    assert (sine["task"], sine["hidden"], sine["max_steps"]) == ("sine", 6, 30)


@pytest.mark.parametrize("name", available_suites())
def test_bundled_suites_are_valid(name):
    suite = load_suite(name)
    assert suite.configs and len(set(suite.hashes())) == len(suite.configs)
    if name == "default":  # its exclude rule: the sine never gets truncations 3 and 8
        assert not [c for c in suite.matrix() if c["task"] == "sine" and c["truncation"] in (3, 8)]
        assert [c for c in suite.matrix() if c["task"] == "dependency" and c["truncation"] in (3, 8)]


# ------------------------------------------------------------------------------------------- exclude

def test_exclude_removes_matching_combinations(tmp_path):
    text = VALID + "exclude:\n  - {cell: gru, truncation: 10}\n  - {cell: lstm, seed: [0, 1], truncation: 5}\n"
    suite = load_suite(str(write(tmp_path, text)))
    assert sorted((c["cell"], c["truncation"], c["seed"]) for c in suite.configs) == [
        ("gru", 5, 0), ("gru", 5, 1), ("lstm", 10, 0), ("lstm", 10, 1)]


def test_excluded_combinations_are_not_validated(tmp_path):
    """A combination that would be invalid jointly is fine once an exclude rule drops it."""
    text = "axes: {truncation: [5, 2000]}\n" + FIXED + "exclude: [{truncation: 2000}]\n"
    assert [c["truncation"] for c in load_suite(str(write(tmp_path, text))).configs] == [5]


def test_exclude_matches_values_given_on_the_command_line(tmp_path):
    """``--axis truncation=5,10`` gives strings; a rule written ``truncation: 10`` must still match them."""
    path = write(tmp_path, VALID + "exclude: [{truncation: 10, cell: gru}, {bidirectional: true}]\n")
    suite = load_suite(str(path), parse_overrides(["truncation=5,10", "bidirectional=false,true"], "--axis"))
    assert sorted((c["cell"], c["truncation"]) for c in suite.configs if c["seed"] == 0) == [
        ("gru", 5), ("lstm", 5), ("lstm", 10)]
    assert not any(c["bidirectional"] for c in suite.configs)


def test_exclude_removing_everything_is_an_error(tmp_path):
    path = write(tmp_path, VALID + "exclude: [{cell: [lstm, gru]}]\n")
    problem = only_problem(path)
    assert "exclude" in problem and "every combination" in problem and "allowed:" in problem


def test_misspelt_exclude_rules_are_errors_not_silent_no_ops(tmp_path):
    path = write(tmp_path, VALID + "exclude: [{cel: lstm}, {cell: lstn}]\n")
    problems = problems_of(path)
    assert len(problems) == 2, problems
    assert "exclude[0].cel: cel: unknown setting; allowed: " in problems[0] and "cell" in problems[0]
    assert "exclude[1].cell: cell: 'lstn' (did you mean 'lstm'?); allowed: a built-in cell (" in problems[1]


def test_exclude_must_be_a_list_of_mappings(tmp_path):
    problem = only_problem(write(tmp_path, VALID + "exclude: {cell: lstm}\n"))
    assert "exclude: " in problem and "allowed: a list of mappings" in problem


# ------------------------------------------------------------------------------------------- overrides

def test_axis_override_replaces_or_adds_an_axis(tmp_path):
    path = write(tmp_path, VALID)
    suite = load_suite(str(path), parse_overrides(["seed=2,3,4"], "--axis"))
    assert sorted({c["seed"] for c in suite.configs}) == [2, 3, 4] and len(suite.configs) == 12
    suite = load_suite(str(path), parse_overrides(["hidden=4,8", "layers=2"], "--axis"))
    assert len(suite.configs) == 16
    assert {(c["hidden"], c["layers"]) for c in suite.configs} == {(4, 2), (8, 2)}


def test_set_override_fixes_a_setting_for_every_run(tmp_path):
    path = write(tmp_path, VALID)
    suite = load_suite(str(path), None, parse_overrides(["hidden=6", "lr=0.5"], "--set"))
    assert len(suite.configs) == 8 and all(c["hidden"] == 6 and c["lr"] == 0.5 for c in suite.configs)
    # A setting the file varies: --set pins it, the axis goes.
    suite = load_suite(str(path), None, parse_overrides(["cell=gru"], "--set"))
    assert len(suite.configs) == 4 and {c["cell"] for c in suite.configs} == {"gru"}


def test_set_override_beats_the_files_per_task_settings(tmp_path):
    text = "axes: {seed: [0]}\ntasks:\n  dependency: {series_length: 30000, batch_size: 20, eval_length: 4000}\n"
    path = write(tmp_path, text)
    assert load_suite(str(path)).configs[0]["series_length"] == 30000
    (cfg,) = load_suite(str(path), None, parse_overrides(["series-length=40000"], "--set")).configs
    assert cfg["series_length"] == 40000


def test_command_line_strings_give_the_same_config_hash_as_file_values(tmp_path):
    path = write(tmp_path, VALID)
    from_file = load_suite(str(path)).hashes()
    from_cli = load_suite(str(path), parse_overrides(["seed=0,1", "truncation=5,10"], "--axis"),
                          parse_overrides(["hidden=4"], "--set")).hashes()
    assert from_cli == from_file


@pytest.mark.parametrize("item, flag", [("seed", "--axis"), ("=3", "--set"), ("hidden", "--set")])
def test_override_without_key_and_value_is_an_error(item, flag):
    with pytest.raises(ConfigError) as info:
        parse_overrides([item], flag)
    assert info.value.problems == [f"{flag}: {item!r}; allowed: key=value"]


def test_invalid_override_values_name_the_flag_not_the_suite_file(tmp_path):
    path = write(tmp_path, VALID)
    problems = problems_of(path, parse_overrides(["layers=one,2", "colour=red"], "--axis"),
                           parse_overrides(["dropout=2"], "--set"))
    assert any(p.startswith("--axis layers=one,2: layers: 'one'; allowed: an integer >= 1") for p in problems), problems
    assert any(p.startswith("--axis colour=red: colour: unknown setting") for p in problems), problems
    assert any(p.startswith("--set dropout=2: dropout: '2'; allowed: a number in [0, 1)") for p in problems), problems
    assert not any(str(path) in p for p in problems), problems


# ------------------------------------------------------------------------------------------- malformed suites

def test_unknown_axis_names_the_key_and_the_settings_allowed(tmp_path):
    path = write(tmp_path, "axes: {colour: [red, blue], seed: [0]}\n" + FIXED)
    problem = only_problem(path)  # once, not once per value
    assert "axes.colour: colour: unknown setting; allowed: " in problem
    assert all(name in problem for name in ("cell", "truncation", "seed", "series_length"))


@pytest.mark.parametrize("values", ["[]", "3", "lstm", "{a: 1}"])
def test_axis_values_must_be_a_non_empty_list(tmp_path, values):
    problem = only_problem(write(tmp_path, f"axes: {{seed: [0], cell: {values}}}\n" + FIXED))
    assert "axes.cell: " in problem and "allowed: a non-empty list of values" in problem


def test_empty_axes_is_an_error(tmp_path):
    problem = only_problem(write(tmp_path, "axes: {}\n" + FIXED))
    assert "axes: empty; allowed: a mapping" in problem
    # ... but not when the command line supplies the axes, nor when --set pins the file's only axis.
    assert len(load_suite(str(write(tmp_path, "axes: {}\n" + FIXED)), {"seed": ["0", "1"]}).configs) == 2
    suite = load_suite(str(write(tmp_path, "axes: {cell: [lstm, gru]}\n" + FIXED)), None, {"cell": "gru"})
    assert [c["cell"] for c in suite.configs] == ["gru"]


@pytest.mark.parametrize("key, value, allowed", [
    ("layers", "one", "an integer >= 1, at most 64"),
    ("layers", 1.5, "an integer >= 1, at most 64"),
    ("layers", 0, "an integer >= 1, at most 64"),
    ("bidirectional", "maybe", "true or false"),
    ("seed", -1, "an integer >= 0, at most 4294967295"),
    ("dropout", 1.0, "a number in [0, 1)"),
    ("cell", "transformer", cell_registry.ALLOWED),
    ("task", "speech", "one of dependency, sine, sine_extrapolation, or a dotted path package.module:TaskClass"),
])
def test_wrong_value_names_file_key_value_and_what_is_allowed(tmp_path, key, value, allowed):
    path = write(tmp_path, f"axes: {{seed: [0], {key}: [{value}]}}\n" + FIXED.replace("task: dependency, ", ""))
    problem = only_problem(path)
    assert problem == f"{path}: axes.{key}: {key}: {value!r}; allowed: {allowed}"


def test_wrong_values_in_fixed_and_tasks(tmp_path):
    text = "axes: {seed: [0]}\nfixed: {hidden: 2.5}\ntasks: {dependency: {batch_size: many}, sine: [1]}\n"
    problems = problems_of(write(tmp_path, text))
    assert any(p.endswith("fixed.hidden: hidden: 2.5; allowed: an integer >= 1, at most 4096")
               for p in problems), problems
    assert any(p.endswith("tasks.dependency.batch_size: batch_size: 'many'; allowed: an integer >= 1, at most 65536")
               for p in problems), problems
    assert any("tasks.sine: [1]; allowed: a mapping" in p for p in problems), problems


@pytest.mark.parametrize("section", ["fixed", "tasks", "axes"])
def test_sections_must_be_mappings(tmp_path, section):
    problem = only_problem(write(tmp_path, f"{section}: [1, 2]\n"))
    assert f"{section}: [1, 2]; allowed: a mapping" in problem


def test_unknown_top_level_key(tmp_path):
    problem = only_problem(write(tmp_path, "axis: {seed: [0]}\n" + FIXED))
    assert problem.endswith("axis: unknown key; allowed: description, axes, fixed, tasks, points, exclude, published, seeds, tune")


def test_unknown_task_in_tasks(tmp_path):
    problem = only_problem(write(tmp_path, "axes: {seed: [0]}\ntasks: {speech: {hidden: 3}}\n" + FIXED))
    assert problem.endswith("tasks.speech: task: 'speech'; allowed: one of dependency, sine, sine_extrapolation, or a dotted path "
                            "package.module:TaskClass")


@pytest.mark.parametrize("text, where", [
    ("axes: {seed: [0, 1]\nfixed: [\n", "line 2, column 1"),
    ("axes:\n  seed: [0]\n   cell: lstm\n", "line 3"),
    ("axes: {seed: [0]}\nfixed: {hidden: \"4}\n", "line 3"),  # the string runs to the end
])
def test_bad_yaml_syntax_says_where(tmp_path, text, where):
    problem = only_problem(write(tmp_path, text))
    assert "not valid YAML at " + where in problem


@pytest.mark.parametrize("text, what", [("- a\n- b\n", "list"), ("", "NoneType"), ("just text\n", "str")])
def test_a_suite_must_be_a_mapping(tmp_path, text, what):
    problem = only_problem(write(tmp_path, text))
    assert f": {what}; allowed: a mapping with keys description, axes, fixed, tasks, points, exclude, published, seeds, tune" in problem


def test_missing_suite_lists_the_bundled_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_suite("no-such-suite")
    (problem,) = info.value.problems
    assert "'no-such-suite' not found" in problem and all(n in problem for n in ("smoke", "default", "full"))
    with pytest.raises(ConfigError):
        load_suite(str(tmp_path / "missing.yaml"))


def test_combination_invalid_only_jointly(tmp_path):
    """Each value is fine on its own; truncation 2000 with 20 streams needs a series of at least 40,000."""
    path = write(tmp_path, "axes: {truncation: [5, 2000], seed: [0, 1]}\n" + FIXED)
    problems = problems_of(path)
    assert problems == [
        f"{path}: combination truncation=2000, seed=0: series_length: 20000; allowed: at least batch_size x "
        "truncation (40000) so every stream holds one window",
        f"{path}: combination truncation=2000, seed=0: eval_length: 4000; allowed: at least batch_size x "
        "truncation (40000) so every stream holds one window",
    ]  # reported for the first combination that shows it, not again for every seed


def test_a_setting_of_the_other_task_is_named(tmp_path):
    problem = only_problem(write(tmp_path, "axes: {seed: [0]}\nfixed: {task: dependency, frequency: 2.0}\n"))
    assert "frequency: 2.0 does not apply to task 'dependency'" in problem


def test_every_problem_of_a_file_is_listed_at_once(tmp_path):
    text = ("axes: {layers: [one], colour: [red], seed: []}\nextra: 1\ntasks: {speech: {}}\n"
            "fixed: {dropout: 1.5}\nexclude: [{cel: lstm}]\n")
    path = write(tmp_path, text)
    problems = problems_of(path)
    expected = ["extra: unknown key", "axes.layers: layers: 'one'", "axes.colour: colour: unknown setting",
                "axes.seed: []", "fixed.dropout: dropout: 1.5", "tasks.speech: task: 'speech'",
                "exclude[0].cel: cel: unknown setting"]
    for fragment in expected:
        assert sum(fragment in p for p in problems) == 1, (fragment, problems)
    assert len(problems) == len(expected)
    assert all(p.startswith(f"{path}: ") and "allowed: " in p for p in problems)


# ------------------------------------------------------------------------------------------- command line

BAD_SUITE = "axes: {layers: [one], seed: [0]}\nextra: 1\ntasks: {speech: {}}\n" + FIXED


def test_cli_exits_2_listing_every_problem_and_writes_nothing(tmp_path):
    suite = write(tmp_path, BAD_SUITE, "bad.yaml")
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--tracking-uri",
                           f"sqlite:///{db}", "--workers", "1", "--no-progress"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, proc.stderr
    assert any(f"{suite}: axes.layers: layers: 'one'; allowed: an integer >= 1" in e for e in errors)
    assert any("extra: unknown key" in e for e in errors) and any("tasks.speech" in e for e in errors)
    assert "Traceback" not in proc.stderr
    assert list(db.parent.iterdir()) == []  # no store, no artifacts folder


@pytest.mark.parametrize("argv, fragment", [
    (["--suite", "{bad}"], "axes.layers: layers: 'one'"),
    (["--suite", "{good}", "--axis", "layers=one"], "--axis layers=one: layers: 'one'"),
    (["--suite", "{good}", "--axis", "seed"], "--axis: 'seed'; allowed: key=value"),
    (["--suite", "{good}", "--set", "dropout=7"], "--set dropout=7: dropout: '7'"),
    (["--suite", "{good}", "--axis", "truncation=5000"], "truncation=5000, seed=0: series_length: 20000"),
    (["--suite", "{good}", "--workers", "-1"], "--workers: '-1'; allowed:"),
    (["--suite", "no-such-suite"], "'no-such-suite' not found"),
])
def test_cli_invalid_input_exits_2_before_touching_the_store(tmp_path, capsys, argv, fragment):
    paths = {"bad": write(tmp_path, BAD_SUITE, "bad.yaml"), "good": write(tmp_path, VALID, "good.yaml")}
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    argv = [a.format(**paths) for a in argv]
    assert cli.main(["run", *argv, "--tracking-uri", f"sqlite:///{db}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.startswith("error: "), err
    assert list(db.parent.iterdir()) == []


def test_config_hash_ignores_how_a_value_was_spelt():
    assert config_hash(resolve({"truncation": "5", "hidden": 4.0})) == config_hash(resolve({"truncation": 5,
                                                                                           "hidden": "4"}))
