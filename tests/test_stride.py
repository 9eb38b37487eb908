"""Truncation styles BPTT(h; h′) (Williams & Peng 1990): windows of h = truncation steps every h′ = tbptt_stride
steps, loss on each window's last h′ outputs, state carried from h′ steps in, detached."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from bench.cli.main import main
from bench.config.settings import ConfigError, config_hash, resolve, run_name
from bench.running.train import build, fit_and_test, make_trainer
from datamodules.dependency import StreamSegments
from lightning_modules.dependency_module import DependencyModule
from lightning_modules.metrics import binary_cross_entropy_nats

H = 5  # truncation


def module(cell: str = "lstm", stride: int = 1, layers: int = 1, bidirectional: bool = False,
           truncation: int = H) -> DependencyModule:
    torch.manual_seed(0)
    return DependencyModule(cell=cell, hidden_size=8, num_layers=layers, bidirectional=bidirectional,
                            truncation=truncation, stride=stride)


def streams(batch: int = 3, steps: int = 23, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (batch, steps, 1), generator=g).float(),
            torch.randint(0, 2, (batch, steps), generator=g).float())


def training_windows(m: DependencyModule, x: torch.Tensor, y: torch.Tensor, per_segment: int):
    """The windows training sees: the streams cut into segments, each cut into windows, in order."""
    segments = StreamSegments(x, y, m.truncation, per_segment, m.stride)
    return [w for i in range(len(segments)) for w in m.windows(segments[i], m.stride)]


@pytest.mark.parametrize("truncation, stride, per_segment, steps", [
    (5, 5, 3, 23), (5, 1, 3, 23), (5, 2, 4, 23), (4, 2, 1, 20), (10, 3, 7, 101), (1, 1, 5, 12)])
def test_windows_across_segments_are_those_of_the_uncut_streams(truncation, stride, per_segment, steps):
    m = module(stride=stride, truncation=truncation)
    x, y = streams(steps=steps)
    got = training_windows(m, x, y, per_segment)
    count = (steps - truncation) // stride + 1
    assert len(got) == count
    for k, (wx, wy) in enumerate(got):
        assert torch.equal(wx, x[:, k * stride: k * stride + truncation])
        assert torch.equal(wy, y[:, k * stride: k * stride + truncation])
    segments = StreamSegments(x, y, truncation, per_segment, stride)
    assert [len(list(m.windows(segments[i], stride))) for i in range(len(segments) - 1)] == \
        [per_segment] * (len(segments) - 1)  # every batch but the last bundles steps_per_batch optimizer steps
    if stride == truncation:  # today's segments: the streams cut to whole windows, tiled without overlap
        usable = steps // truncation * truncation
        today = [x[:, i: min(i + truncation * per_segment, usable)] for i in range(0, usable, truncation * per_segment)]
        assert len(today) == len(segments) and all(torch.equal(a, segments[i][0]) for i, a in enumerate(today))


@pytest.mark.parametrize("cell, layers, bidirectional",
                         [("lstm", 1, False), ("gru", 2, False), ("rnn_tanh", 1, True), ("lstm", 2, True)])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_each_window_counts_its_last_stride_outputs_and_hands_on_the_state_stride_steps_in(cell, layers,
                                                                                           bidirectional, stride):
    """Against a naive rendering of BPTT(h; h′): run the window, score its last h′ outputs; the next window
    starts from a separate pass over the first h′ steps, forward rows only (RecurrentBackbone.carry)."""
    m = module(cell, stride, layers, bidirectional)
    x, y = streams(steps=22)
    state = expected_state = None
    for k, (wx, wy) in enumerate(training_windows(m, x, y, per_segment=3)):
        loss, carried = m.train_window(wx, wy, state)
        with torch.no_grad():
            output, _ = m.backbone(wx, expected_state)
            logits = m.head(output).squeeze(-1)
            expected_loss = binary_cross_entropy_nats(logits[:, -stride:], wy[:, -stride:])
            _, after = m.backbone(wx[:, :stride], expected_state)
            expected_state = m.backbone.carry(after)
        assert torch.isfinite(loss) and loss.requires_grad
        assert torch.allclose(loss, expected_loss, atol=1e-6), k
        for got, want in zip(carried, expected_state):
            assert got.shape == (layers * (2 if bidirectional else 1), 3, 8)
            assert not got.requires_grad
            assert torch.allclose(got, want, atol=1e-6), k
            if bidirectional:
                assert torch.count_nonzero(got[1::2]) == 0
        state = carried
    assert any(t.abs().sum() > 0 for t in state)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_true_truncation_error_reaches_exactly_h_minus_1_steps_back(cell, bidirectional):
    """Stride 1: each window counts one output, at its last step; its loss has a gradient with respect to
    the input h − 1 steps back (the window's first) and none further back, although the state it starts from
    was computed from those inputs (carried detached)."""
    m = module(cell, stride=1, layers=2, bidirectional=bidirectional)
    x, y = streams(steps=17)
    x = x.requires_grad_(True)
    state = None
    for k, (wx, wy) in enumerate(training_windows(m, x, y, per_segment=4)):
        x.grad = None
        loss, state = m.train_window(wx, wy, state)
        loss.backward()
        counted = k + H - 1  # the one output this window's loss counts
        reach = x.grad[..., 0].abs()
        assert bool((reach[:, counted - (H - 1)] > 0).all()), k  # h − 1 back: every stream
        assert torch.count_nonzero(reach[:, : counted - (H - 1)]) == 0, k  # beyond: nothing
        assert torch.count_nonzero(reach[:, counted + 1:]) == 0, k  # nor the future: the window ends there


def test_tf_style_gives_a_windows_first_output_no_reach():
    """The control: with stride = h the loss also counts the window's first output, which sees one input, and
    the outputs h − 1 back reach only the window's own start, so gradient reach varies with the position."""
    m = module("rnn_tanh", stride=H)
    x, y = streams(steps=2 * H)
    x = x.requires_grad_(True)
    (wx, wy), _ = training_windows(m, x, y, per_segment=2)
    output, _ = m.backbone(wx, None)
    logits = m.head(output).squeeze(-1)
    first = torch.autograd.grad(logits[:, 0].sum(), x, retain_graph=True)[0][..., 0]
    assert torch.count_nonzero(first[:, 1:]) == 0 and bool((first[:, 0] != 0).all())


def test_stride_equal_to_truncation_is_todays_tbptt_bit_for_bit(tiny_cfg):
    """Explicit stride = truncation is the same config and run as leaving it unset, and trains exactly as
    TF-style TBPTT did before strides existed: windows tiling each segment, one optimizer step each,
    state carried from each window's end (written out here as a plain loop)."""
    cfg = tiny_cfg("dependency", tbptt_stride=5, max_steps=73, epochs=-1, val_every=0)
    assert cfg == tiny_cfg("dependency", max_steps=73, epochs=-1, val_every=0)
    fitted, _, metrics = fit_and_test(cfg)

    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    data, model = build(cfg)
    data.setup("fit")
    optimizer = torch.optim.Adagrad(model.parameters(), lr=cfg["lr"])
    state, steps = None, 0
    for x, y in data.train_dataloader():
        for wx, wy in zip(x.split(cfg["truncation"], 1), y.split(cfg["truncation"], 1)):
            if steps == cfg["max_steps"]:
                break
            loss, _, final = model.model_step(wx, wy, state)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state, steps = model.backbone.carry(final), steps + 1
    assert metrics["train/steps"] == steps == 73
    for (name, got), want in zip(fitted.state_dict().items(), model.state_dict().values()):
        assert torch.equal(got, want), name
    assert all(torch.equal(a, b) for a, b in zip(fitted.train_state, state))


def test_identity_of_runs_without_a_stride_is_unchanged():
    cfg = resolve({"task": "dependency", "truncation": 8})
    assert cfg["tbptt_stride"] == 8
    before = {k: v for k, v in cfg.items() if k != "tbptt_stride"}  # as configs were before the field existed
    assert config_hash(cfg) == config_hash(before)
    assert run_name(cfg) == run_name(before) == "dependency/lstm-L1-uni-T8-s0"
    true = resolve({"task": "dependency", "truncation": 8, "tbptt_stride": 1})
    assert config_hash(true) != config_hash(cfg)
    assert run_name(true) == "dependency/lstm-L1-uni-T8-stride1-s0"
    assert "tbptt_stride" not in resolve({"task": "sine"})


@pytest.mark.parametrize("value, problem", [  # as the command line hands them over: strings
    ("0", "tbptt_stride: '0'; allowed: an integer in [1, truncation]"),
    ("6", "tbptt_stride: 6; allowed: an integer in [1, truncation (5)]"),
    ("2.5", "tbptt_stride: '2.5'; allowed: an integer in [1, truncation]"),
    ("T", "tbptt_stride: 'T'; allowed: an integer in [1, truncation]"),  # relative values are for suites
])
def test_invalid_strides_are_rejected_with_one_line(value, problem, tmp_path, capsys):
    with pytest.raises(ConfigError) as raised:
        resolve({"task": "dependency", "truncation": 5, "tbptt_stride": value})
    assert len(raised.value.problems) == 1 and raised.value.problems[0].startswith(problem)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["train", "--truncation", "5", "--tbptt-stride", value, "--tracking-uri", uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {problem}")
    assert not (tmp_path / "mlflow.db").exists()


def test_stride_for_the_sine_task_is_rejected():
    with pytest.raises(ConfigError, match=r"tbptt_stride: 1 does not apply to task 'sine'"):
        resolve({"task": "sine", "tbptt_stride": 1})


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: seconds on a loaded machine
def test_the_cli_exits_2_for_a_bad_stride_in_its_own_process(tmp_path):
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-m", "bench", "train", "--truncation", "4", "--tbptt-stride", "9",
                           "--tracking-uri", uri], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: tbptt_stride: 9; allowed: an integer in [1, truncation (4)]"
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("cell, layers, bidirectional", [("lstm", 2, True), ("gru", 1, False), ("rnn_tanh", 2, False)])
def test_training_with_a_stride_keeps_step_budgets_exact(tiny_cfg, cell, layers, bidirectional):
    # 20 streams of 1,000 steps, windows of 5 every 2 steps: 498 windows an epoch, 10 a Lightning batch.
    cfg = tiny_cfg("dependency", cell=cell, layers=layers, bidirectional=bidirectional, tbptt_stride=2,
                   max_steps=23, epochs=-1)
    model, _, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 23
    assert all(0 < metrics[k] < 1 for k in ("test/ce", "test/acc"))
    assert metrics["train/samples_per_s"] == pytest.approx(metrics["train/steps_per_s"] * 20 * 2)
    assert all(not t.requires_grad for t in model.train_state)

    cfg = tiny_cfg("dependency", cell=cell, layers=layers, bidirectional=bidirectional, tbptt_stride=2, epochs=1,
                   max_steps=-1, series_length=2_000, val_every=0)  # 100 steps a stream: 48 windows
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", progress_bar=False)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == (100 - 5) // 2 + 1 == 48


RELATIVE_SUITE = """
axes:
  task: [dependency, sine]
  truncation: [2, 3, 4]
  tbptt_stride: [T, T/2, 1]
  seed: [0]
fixed: {hidden: 4}
exclude:
  - {tbptt_stride: T/2, truncation: 3}
  - {task: sine, tbptt_stride: [T/2, 1]}
"""


def load(tmp_path, text: str):
    from bench.config.suite import load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(str(path))


def test_a_suite_writes_strides_relative_to_the_truncation(tmp_path):
    suite = load(tmp_path, RELATIVE_SUITE)
    dependency = [c for c in suite.configs if c["task"] == "dependency"]
    assert sorted((c["truncation"], c["tbptt_stride"]) for c in dependency) == [
        (2, 1), (2, 2), (3, 1), (3, 3), (4, 1), (4, 2), (4, 4)]  # T = 2: T/2 and 1 are one configuration
    sine = [c for c in suite.configs if c["task"] == "sine"]
    assert len(sine) == 3 and all("tbptt_stride" not in c for c in sine)  # T: the same as unset
    plain = load(tmp_path, RELATIVE_SUITE.replace("[T, T/2, 1]", "[T]"))
    assert set(plain.hashes()) <= set(suite.hashes())  # T-style runs are the runs of a suite without strides


def test_a_relative_stride_that_is_not_whole_is_an_error_naming_the_combination(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, RELATIVE_SUITE.replace("  - {tbptt_stride: T/2, truncation: 3}\n", ""))
    assert len(raised.value.problems) == 1
    problem = raised.value.problems[0]
    assert "combination task=dependency, truncation=3, tbptt_stride=T/2, seed=0" in problem
    assert problem.endswith("tbptt_stride: 'T/2' at truncation 3; allowed: T/k only where k divides truncation "
                            "(exclude the other combinations)")


@pytest.mark.parametrize("value", ["T/0", "2T", "T/1.5", "t"])
def test_a_malformed_relative_stride_is_rejected(tmp_path, value):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, RELATIVE_SUITE.replace("[T, T/2, 1]", f"[T, '{value}']"))
    assert raised.value.problems == [f"{tmp_path / 'suite.yaml'}: axes.tbptt_stride: tbptt_stride: {value!r}; "
                                     "allowed: an integer in [1, truncation]; unset: = truncation; in a suite also "
                                     "T or T/k"]


def test_the_styles_suite_trains_every_style_on_the_same_data():
    from bench.config.suite import load_suite

    suite = load_suite("styles")
    budget = {(c["series_length"], c["batch_size"], c["epochs"], c["max_steps"]) for c in suite.configs}
    assert budget == {(1_000_000, 200, 1, -1)}  # one epoch of one series: every style sees the same timesteps
    grid = {}
    for c in suite.configs:
        grid.setdefault((c["cell"], c["hidden"], c["truncation"], c["tbptt_stride"]), set()).add(c["seed"])
    assert {k[:2] for k in grid} == {(cell, h) for cell in ("rnn_tanh", "lstm") for h in (4, 16)}
    for cell, hidden, t in {k[:3] for k in grid}:
        strides = {k[3] for k in grid if k[:3] == (cell, hidden, t)}
        assert strides == {t, 1} | ({t // 2} if t % 2 == 0 else set())
    assert {k[2] for k in grid} == {2, 3, 4, 5, 6, 8, 10}
    assert all(len(seeds) >= 3 for seeds in grid.values())


def test_the_full_suite_has_both_styles_for_every_dependency_configuration():
    from bench.config.suite import load_suite

    configs = load_suite("full").configs
    styles: dict[tuple, set] = {}
    for c in configs:
        if c["task"] == "dependency":
            # max_steps and val_every follow from the equal sample budget: a stride of 1 takes T times the steps.
            key = tuple(v for k, v in c.items() if k not in ("tbptt_stride", "max_steps", "val_every"))
            styles.setdefault(key, set()).add("T" if c["tbptt_stride"] == c["truncation"] else c["tbptt_stride"])
    truncation = [k for k in configs[0] if k not in ("tbptt_stride", "max_steps", "val_every")].index("truncation")
    assert all(s == ({"T"} if key[truncation] == 1 else {"T", 1}) for key, s in styles.items())
