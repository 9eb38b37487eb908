"""Whether a model can train in the memory there is: refused before training, in one line, rather than killed by
the out-of-memory killer (or CUDA's allocator) in the middle of a run.

The estimate is a floor from the settings alone, float32 throughout: the recurrent weights (``gates`` blocks of
input and recurrent matrices and two biases per layer and direction, as torch's cells hold them) four times over
(the weights, their gradients and an optimizer's two moments), plus the activations backpropagation keeps for one
window: per time step, layer and direction, the gates and the state, over ``batch_size`` streams. A plug-in cell
is counted as an LSTM. What there is: ``MemAvailable`` of ``/proc/meminfo`` (and the cgroup's limit, where one is
set) on the CPU; the free memory CUDA reports on a GPU.
"""

from __future__ import annotations

from pathlib import Path

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
PLUGIN_GATES = 4
BYTES = 4  # float32
COPIES = 4  # weights, gradients, two optimizer moments (Adam's; SGD and Adagrad keep fewer)


def need_bytes(cfg: dict) -> int:
    """The estimate of the module docstring, in bytes.

    >>> round(need_bytes({"cell": "lstm", "hidden": 4096, "layers": 64, "bidirectional": True, "batch_size": 20,
    ...                   "truncation": 10}) / 2**30)
    382
    """
    gates = GATES.get(cfg["cell"], PLUGIN_GATES)
    directions = 2 if cfg["bidirectional"] else 1
    hidden, layers = cfg["hidden"], cfg["layers"]
    params = sum(directions * gates * ((1 if layer == 0 else hidden * directions) * hidden + hidden * hidden
                                       + 2 * hidden) for layer in range(layers))
    activations = cfg["batch_size"] * cfg["truncation"] * layers * directions * hidden * (gates + 2)
    return BYTES * (COPIES * params + activations)


def available_bytes(device: str) -> int | None:
    """Memory free for a run on ``device`` now, or None where it cannot be told."""
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        return torch.cuda.mem_get_info(index)[0]
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        free = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:  # a container's limit, cgroup v2
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def problem(configs: list[dict], device: str, name_of=lambda index: "") -> str | None:
    """One line when the largest of ``configs`` would not fit ``device``'s free memory, naming it (``name_of(its
    index)``, else its size settings), what it needs,
    what there is and how many more would not fit either; None when all fit or the memory cannot be told."""
    have = available_bytes(device)
    if have is None or not configs:
        return None
    needs = sorted(((need_bytes(cfg), n) for n, cfg in enumerate(configs)), reverse=True)
    too_big = [need for need, _ in needs if need > have]
    if not too_big:
        return None
    need, index = needs[0]
    cfg = configs[index]
    what = name_of(index) or (f"{cfg['cell']} hidden {cfg['hidden']} × layers {cfg['layers']}"
                            + (" × bidirectional" if cfg["bidirectional"] else "")
                            + f", batch {cfg['batch_size']} × truncation {cfg['truncation']}")
    more = f" ({len(too_big) - 1} more configurations would not fit either)" if len(too_big) > 1 else ""
    return (f"hidden/layers/batch_size: {what} needs about {gib(need)} to train (weights, gradients, optimizer "
            f"state, activations; estimated) and {device} has {gib(have)} free{more}; allowed: a model that fits, "
            "with fewer hidden units, layers or streams")
