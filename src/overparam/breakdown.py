"""Where one Life training step's time goes, phase by phase, and what Lightning adds around it.

    python -m overparam.breakdown [--steps 1 3] [--ms 1 5] [--replicas 32] [--seconds 3] [--out breakdown.json]

The step is the one `LifeTask.training_losses` runs (the same calls, in the same order, on the path it picks),
cut into phases timed with the calling thread's CPU clock (`time.thread_time`: with one torch thread every op,
autograd's CPU backward and the numba kernel run on that thread, so another process's load hardly moves it):

- boards: `train_cells` (each replica's random bits, unpacked)
- codes / counts: embedding the boards in the flat layout and their 9-bit neighborhood codes; for one-step nets
  the whole `pattern_target_counts` (codes, targets, bincount)
- first block: the net on the 512 patterns (and, for deeper nets, the lookup by code)
- later blocks: blocks 2+ (the fused kernel when `overparam.fused` picks it)
- targets: the rule applied `steps` times (deeper nets; one-step nets count them under counts; with the numba
  codes kernel, `overparam.tasks.life.fast_codes`, they are made with the codes and counted there)
- loss: BCE and its per-replica sum
- module: the rest of `ReplicaModule.step_loss` (alive mask, logging check, masked sum)
- backward, split by gradient hooks into: loss, later blocks, first-block lookup, first block (pattern net and
  the gradient accumulation into the parameters)
- zero_grad, divergence check (`on_before_optimizer_step`), optimizer step

Medians over the measured steps. Then the same module in a raw loop (`bench.raw_loop_seconds_per_step`'s calls)
and in a `pl.Trainer` built as `job.py` builds it, both timed on the thread's CPU clock: the difference is
Lightning's own per-step work (smallest of `--rounds` alternations each); and the same on a trivial module, the
part of a step that no faster training step removes. The phase split checks itself: its loss
equals `step_loss`'s on the same seeds (`split loss error`, 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import torch
from omegaconf import OmegaConf

from . import fused
from .bench import compose_config
from .nets.life_conv import lookup
from .tasks.life import fast_codes
from .tasks.life.flatboards import FlatBoards
from .tasks.life.patterns import pattern_matrix
from .tasks.life.task import _binary_cross_entropy, _embed_cells, _interior_mask

FORWARD = ("boards", "codes / counts", "first block", "later blocks", "targets", "loss", "module")
BACKWARD = ("backward: loss", "backward: later blocks", "backward: lookup", "backward: first block")
PHASES = ("zero_grad", *FORWARD, *BACKWARD, "divergence check", "optimizer step")


def _now() -> float:
    return time.thread_time()


class _Clock:
    """Marks phase boundaries on the thread's CPU clock; `marks` ends as {phase: seconds} for one step."""

    def __init__(self):
        self.marks: dict[str, float] = {}
        self.last = _now()

    def lap(self, phase: str) -> None:
        now = _now()
        self.marks[phase] = self.marks.get(phase, 0.0) + now - self.last
        self.last = now

    def hook(self, phase: str):
        """A gradient hook that closes `phase` when the gradient reaches its tensor."""

        def record(grad):
            self.lap(phase)
            return grad

        return record


def split_losses(module, clock: _Clock) -> torch.Tensor:
    """`module.task.training_losses(...)` for a LifeConvNet, phase by phase: the same calls as the task's."""
    task, net, device = module.task, module.net, module.device
    cells = task.train_cells(module.data_generators, device)
    clock.lap("boards")
    per_pattern = net.pattern_outputs()
    if per_pattern is not None:  # one block: the pattern path (`LifeTask._pattern_losses`)
        clock.lap("first block")
        per_pattern.register_hook(clock.hook("backward: loss"))
        counts = task.pattern_target_counts(cells)
        clock.lap("codes / counts")
        outputs = per_pattern.unsqueeze(-1).expand(-1, -1, 2)
        targets = torch.arange(2, device=outputs.device, dtype=outputs.dtype).expand_as(outputs)
        losses = _binary_cross_entropy(outputs, targets, net.output_kind, weight=counts)
        losses = losses.sum((1, 2)) / (task.batch_size * task.train_size**2)
        clock.lap("loss")
        return losses
    # deeper nets: the flat path (`LifeTask._flat_losses` and `LifeConvNet.flat_outputs`)
    replicas, batch, height, width = cells.shape
    grid = FlatBoards(batch, height, width, task.boundary)
    alive = _embed_cells(grid, cells)
    fast = fast_codes.flat_codes_and_targets(alive, grid, task.rule, task.steps)  # codes and targets at once
    codes = grid.codes(alive) if fast is None else fast[0]
    clock.lap("codes / counts")
    dtype = net.layers[0].weight.dtype
    start = net.layers_per_block
    table = net._run_layers(pattern_matrix(dtype, alive.device).expand(alive.shape[0], -1, -1), 0, start)
    table.register_hook(clock.hook("backward: lookup"))
    fused_path = fused.fused_blocks_apply(net, table)
    if fused_path and net.boundary == "dead":  # `fused.later_blocks_from_table`, with its lookup timed apart
        x = fused._LookupRefreshed.apply(table[:, 0], codes, grid.dead_mask(table))
    else:
        x = lookup(table, codes)
    clock.lap("first block")
    x.register_hook(clock.hook("backward: later blocks"))
    if fused_path and net.boundary == "dead":
        outputs = fused._blocks(net, x, grid, refreshed=True)[:, 0]
    elif fused_path:
        outputs = fused.later_blocks(net, x, grid)[:, 0]
    else:
        outputs = net._run_layers(x, start, len(net.layers), grid)[:, 0]
    clock.lap("later blocks")
    outputs.register_hook(clock.hook("backward: loss"))
    targets = (task._flat_targets(alive, codes, grid) if fast is None else fast[1]).to(outputs.dtype)
    clock.lap("targets")
    weight = _interior_mask(grid, outputs.device, outputs.dtype)
    losses = _binary_cross_entropy(outputs, targets, net.output_kind, weight=weight)
    losses = losses.sum(-1) / (batch * height * width)
    clock.lap("loss")
    return losses


def phase_seconds(config, seconds: float, warmup: int = 3) -> dict:
    """Median CPU seconds per phase of a training step, over about `seconds` of steps."""
    from .training import build_hand_driven

    module, optimizer = build_hand_driven(config)
    task = module.task

    def losses_of(clock):  # `step_loss` with the task's call replaced by the split one
        original = task.training_losses
        task.training_losses = lambda *args: split_losses(module, clock)
        try:
            return module.step_loss()
        finally:
            task.training_losses = original

    samples: dict[str, list[float]] = defaultdict(list)
    started, step = time.perf_counter(), 0
    while step < warmup + 5 or time.perf_counter() - started < seconds:
        clock = _Clock()  # the raw loop's calls in its order, each closing its phase
        optimizer.zero_grad(set_to_none=True)
        clock.lap("zero_grad")
        loss = losses_of(clock)
        clock.lap("module")
        loss.backward()
        clock.lap("backward: first block")
        module.on_before_optimizer_step(optimizer)
        clock.lap("divergence check")
        optimizer.step()
        clock.lap("optimizer step")
        step += 1
        if step > warmup:
            for phase in PHASES:
                samples[phase].append(clock.marks.get(phase, 0.0))
    result = {phase: statistics.median(samples[phase]) for phase in PHASES}
    result["total"] = sum(result.values())
    return result


def check_split(config) -> float:
    """|split loss - step_loss| on the same seeds: 0 when the split runs the task's own computation."""
    from .training import build_module

    losses = []
    for split in (False, True):
        module = build_module(config)
        module.setup("fit")
        if split:
            losses.append(split_losses(module, _Clock()).detach())
        else:
            losses.append(module.task.training_losses(module.net, module.data_generators, module.dropout_generators,
                                                      module.device).detach())
    return float((losses[0] - losses[1]).abs().max())


def raw_loop_cpu_seconds(config, steps: int, warmup: int = 3) -> float:
    """Median CPU seconds per step of `step_loss`, backward, divergence check, optimizer step: no Trainer."""
    from .training import build_hand_driven

    module, optimizer = build_hand_driven(config)
    durations = []
    for step in range(warmup + steps):
        start = _now()
        optimizer.zero_grad(set_to_none=True)
        module.step_loss().backward()
        module.on_before_optimizer_step(optimizer)
        optimizer.step()
        if step >= warmup:
            durations.append(_now() - start)
    return statistics.median(durations)


def trainer_cpu_seconds(config, steps: int, warmup: int = 3, profile: str | None = None) -> float:
    """Median CPU seconds between the ends of consecutive steps inside `trainer.fit` (built as `job.py` builds
    it: TensorBoard logger, progress callback in `none` mode, no checkpoints). With `profile`, a cProfile of the
    whole fit is written there (for `python -m pstats`)."""
    import pytorch_lightning as pl

    from .training import build_module, build_trainer

    class StepClock(pl.Callback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            self.ends.append(_now())

    config = OmegaConf.merge(config, {"trainer": {"max_steps": warmup + steps + 1}})
    clock = StepClock()
    with tempfile.TemporaryDirectory() as log_dir:
        settings = OmegaConf.merge(config.trainer, {"progress": "none"})
        trainer = build_trainer(settings, torch.device("cpu"), log_dir, callbacks=[clock])
        module = build_module(config)
        if profile:
            import cProfile

            with cProfile.Profile() as profiler:
                trainer.fit(module, train_dataloaders=range(config.trainer.max_steps))
            profiler.dump_stats(profile)
        else:
            trainer.fit(module, train_dataloaders=range(config.trainer.max_steps))
    ends = clock.ends[warmup:]
    return statistics.median(b - a for a, b in zip(ends[:-1], ends[1:]))


def lightning_floor(steps: int = 500, warmup: int = 10) -> dict:
    """Lightning's per-step cost on a trivial module (one 3-element parameter, Adam), in a Trainer built as for a
    job, against the same calls in a plain loop: the part of a step no faster training step can remove."""
    import pytorch_lightning as pl

    from .module import LeanStep
    from .training import build_trainer

    class Trivial(LeanStep):  # the same step machinery as ReplicaModule
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(3))

        def step_loss(self):
            return (self.weight**2).sum()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters())

    class StepClock(pl.Callback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            self.ends.append(_now())

    module = Trivial()
    optimizer, raw = module.configure_optimizers(), []
    for step in range(warmup + steps):
        start = _now()
        optimizer.zero_grad(set_to_none=True)
        module.step_loss().backward()
        optimizer.step()
        if step >= warmup:
            raw.append(_now() - start)
    clock = StepClock()
    settings = OmegaConf.create({"max_steps": warmup + steps, "progress": "none", "log_every_n_steps": 50,
                                 "checkpoint_every_n_steps": 0})
    with tempfile.TemporaryDirectory() as log_dir:
        build_trainer(settings, torch.device("cpu"), log_dir, callbacks=[clock]).fit(
            Trivial(), train_dataloaders=range(warmup + steps))
    ends = clock.ends[warmup:]
    trainer = statistics.median(b - a for a, b in zip(ends[:-1], ends[1:]))
    return {"raw_loop_ms": statistics.median(raw) * 1e3, "trainer_ms": trainer * 1e3,
            "lightning_ms": (trainer - statistics.median(raw)) * 1e3}


def kernel_seconds(m: int, replicas: int, repeats: int = 15) -> dict:
    """CPU seconds of one later block's fused kernel (`overparam.fused_kernels`), forward and backward, on random
    inputs shaped like the benchmark's batch (128 10 x 10 boards per replica, flat layout): median of `repeats`."""
    import numpy as np

    from . import fused_kernels

    grid = FlatBoards(128, 10, 10, "dead")
    length = -(-grid.length // fused_kernels.TILE) * fused_kernels.TILE
    generator = np.random.default_rng(0)
    shapes = [(replicas, 9, 2 * m), (replicas, 1, 2 * m), (replicas, 2 * m, m), (replicas, 1, m), (replicas, m, 1),
              (replicas, 1, 1)]
    weights = [generator.standard_normal(shape).astype(np.float32) for shape in shapes]
    x = generator.standard_normal((replicas, length + 2 * grid.margin)).astype(np.float32)
    grad = generator.standard_normal((replicas, length)).astype(np.float32)
    offsets = np.array(grid.offsets, dtype=np.int64)
    forward, backward = fused_kernels.block_kernels(m)
    out = np.empty((replicas, length), np.float32)
    forward_times, backward_times = [], []
    for repeat in range(repeats + 1):
        start = _now()
        forward(x, offsets, grid.margin, *weights, 0.0, 1, out)
        middle = _now()
        backward(x, offsets, grid.margin, *weights, 0.0, 1, grad, *[np.zeros_like(a) for a in (x, *weights)])
        if repeat:  # the first call compiles (or loads the compiled kernel)
            forward_times.append(middle - start)
            backward_times.append(_now() - middle)
    return {"m": m, "forward_ms": statistics.median(forward_times) * 1e3,
            "backward_ms": statistics.median(backward_times) * 1e3}


def point(m: int, steps: int, replicas: int, seconds: float, rounds: int = 3) -> dict:
    """The phases, then `rounds` alternations of raw loop and Trainer: the least disturbed (smallest) median of
    each is kept, since on a shared machine another process slows even this thread's CPU clock (shared caches,
    a sibling hyperthread)."""
    config = compose_config(m, steps, replicas, 1)
    phases = phase_seconds(config, seconds)
    measured = max(20, min(400, round(seconds / rounds / max(phases["total"], 1e-4))))
    raw_runs, trainer_runs = [], []
    for _ in range(rounds):
        raw_runs.append(raw_loop_cpu_seconds(config, measured) * 1e3)
        trainer_runs.append(trainer_cpu_seconds(config, measured) * 1e3)
    raw, trainer = min(raw_runs), min(trainer_runs)
    return {"m": m, "steps": steps, "replicas": replicas, "split_loss_error": check_split(config),
            "phases_ms": {k: v * 1e3 for k, v in phases.items()},
            "raw_loop_ms": raw, "trainer_ms": trainer, "lightning_ms": trainer - raw,
            "raw_loop_runs_ms": raw_runs, "trainer_runs_ms": trainer_runs, "measured_steps": measured}


def print_table(points: list[dict]) -> None:
    heads = [f"s={p['steps']} m={p['m']}" for p in points]
    print(f"\nCPU ms per K={points[0]['replicas']} step (median, thread CPU clock)")
    print(f"{'phase':<26}" + "".join(f"{h:>12}" for h in heads))
    for phase in (*PHASES, "total"):
        print(f"{phase:<26}" + "".join(f"{p['phases_ms'][phase]:12.3f}" for p in points))
    for key, label in (("raw_loop_ms", "raw loop"), ("trainer_ms", "pl.Trainer"), ("lightning_ms", "Lightning")):
        print(f"{label:<26}" + "".join(f"{p[key]:12.3f}" for p in points))
    print(f"{'Lightning share':<26}" + "".join(f"{p['lightning_ms'] / p['trainer_ms']:12.1%}" for p in points))
    print(f"{'split loss error':<26}" + "".join(f"{p['split_loss_error']:12.1e}" for p in points))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--ms", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time per measurement (roughly)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of raw loop and Trainer (smallest kept)")
    parser.add_argument("--kernel-ms", type=int, nargs="*", default=[],
                        help="also time the fused later-block kernel alone at these widths m (forward, backward)")
    parser.add_argument("--out", default="breakdown.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from .devices import keep_freed_memory

    keep_freed_memory()
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    points = []
    for steps in args.steps:
        for m in args.ms:
            points.append(point(m, steps, args.replicas, args.seconds, args.rounds))
            print(f"steps={steps} m={m}: {points[-1]['phases_ms']['total']:.2f} ms phases, "
                  f"raw {points[-1]['raw_loop_ms']:.2f}, Trainer {points[-1]['trainer_ms']:.2f}", flush=True)
    print_table(points)
    floor = lightning_floor()
    print(f"Lightning on a trivial module (one Adam step of 3 numbers): Trainer {floor['trainer_ms']:.3f} ms, "
          f"raw loop {floor['raw_loop_ms']:.3f} ms per step: {floor['lightning_ms']:.3f} ms is Lightning's own")
    kernels = [kernel_seconds(m, args.replicas) for m in args.kernel_ms]
    for row in kernels:
        print(f"fused kernel, one later block, K={args.replicas}, m={row['m']}: forward {row['forward_ms']:.2f} ms, "
              f"backward {row['backward_ms']:.2f} ms (CPU)")
    result = {"command": "python -m overparam.breakdown " + " ".join(argv if argv is not None else sys.argv[1:]),
              "torch": torch.__version__, "points": points, "lightning_floor": floor, "kernel": kernels}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return points


if __name__ == "__main__":
    main()
