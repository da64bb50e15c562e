"""Where one training step's time goes, phase by phase, and what Lightning adds around it.

    python -m overparam.perf.breakdown [--steps 1 3] [--ms 1 5] [--replicas 32] [--seconds 3] [--out breakdown.json]
    python -m overparam.perf.breakdown --overrides experiment=jamming model.m_factor=8   # any config

The step timed is the real one, `ReplicaModule.train_step` (`overparam.core.step.replica_step` on fresh batches),
run under `torch.profiler` with the code's own phase marks recorded (`overparam.core.phases`: the step's zero_grad,
losses, backward, freeze and optimizer step; inside the losses, the task's own phases, e.g. Life's boards, codes and
targets, net, loss), plus every autograd node of the backward (a fused kernel's backward is one node). Times are
CPU ms per step, inclusive; the profiler adds a little to every op, so read the shares first. Then, without the
profiler, the same module's step in a raw loop and in a `pl.Trainer` built as a job builds it (both on the thread's
CPU clock, smallest of `--rounds` alternations): the difference is Lightning's own per-step work; and the same on a
trivial module, the part of a step no faster training step removes.
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

from overparam.config import compose
from overparam.core.phases import PREFIX, recording

BACKWARD_MARK = "autograd::engine::evaluate_function: "
# replica_step's own phases: together the whole step
STEP_PHASES = ("zero_grad", "losses", "backward", "freeze diverged, clip", "optimizer step")


def _now() -> float:
    return time.thread_time()


def profile_step(config, steps: int = 10, warmup: int = 3) -> list[dict]:
    """CPU ms per step of every marked phase, backward node and optimizer call of the real step, largest first."""
    from overparam.core.build import build_hand_driven

    module, optimizer = build_hand_driven(config)
    for _ in range(warmup):
        module.train_step(optimizer)
    with recording(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            module.train_step(optimizer)
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.events():
        name = _phase_name(event.name)
        if name is not None:
            totals[name] += event.cpu_time_total / 1e3 / steps
    return [{"phase": name, "ms": ms} for name, ms in sorted(totals.items(), key=lambda item: -item[1])]


def _phase_name(event: str) -> str | None:
    if event.startswith(PREFIX):
        return event[len(PREFIX):]
    if event.startswith(BACKWARD_MARK):
        return "backward node: " + event[len(BACKWARD_MARK):]
    return None


def raw_loop_cpu_seconds(config, steps: int, warmup: int = 3) -> float:
    """Median CPU seconds per `train_step`, no Trainer around it."""
    from overparam.core.build import build_hand_driven

    module, optimizer = build_hand_driven(config)
    durations = []
    for step in range(warmup + steps):
        start = _now()
        module.train_step(optimizer)
        if step >= warmup:
            durations.append(_now() - start)
    return statistics.median(durations)


def trainer_cpu_seconds(config, module, steps: int, warmup: int = 3) -> float:
    """Median CPU seconds between the ends of consecutive steps inside `trainer.fit` (built as a job builds it:
    TensorBoard logger, progress callback in `none` mode, no checkpoints)."""
    import pytorch_lightning as pl

    from overparam.jobs.trainer import build_trainer

    class StepClock(pl.Callback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            self.ends.append(_now())

    clock = StepClock()
    settings = OmegaConf.merge(config.trainer, {"progress": "none", "max_steps": warmup + steps + 1})
    with tempfile.TemporaryDirectory() as log_dir:
        trainer = build_trainer(settings, torch.device("cpu"), log_dir, callbacks=[clock])
        trainer.fit(module, train_dataloaders=range(settings.max_steps))
    ends = clock.ends[warmup:]
    return statistics.median(b - a for a, b in zip(ends[:-1], ends[1:]))


def lightning_floor(steps: int = 500, warmup: int = 10) -> dict:
    """Lightning's per-step cost on a trivial module (one 3-element parameter, Adam, `replica_step` as a job's
    module steps), in a Trainer built as for a job, against the same step in a plain loop."""
    import pytorch_lightning as pl

    from overparam.core.step import replica_step

    class Trivial(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.weight = torch.nn.Parameter(torch.zeros(1, 3))
            self.register_buffer("alive", torch.ones(1, dtype=torch.bool))

        def train_step(self, optimizer, backward=None):
            return replica_step(self, optimizer, self.alive, lambda: (self.weight**2).sum(1), backward)

        def training_step(self, batch, batch_index):
            self.train_step(self.optimizers(), self.manual_backward)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters())

    module = Trivial()
    optimizer, raw = module.configure_optimizers(), []
    for step in range(warmup + steps):
        start = _now()
        module.train_step(optimizer)
        if step >= warmup:
            raw.append(_now() - start)
    settings = OmegaConf.create({"max_steps": warmup + steps, "progress": "none", "log_every_n_steps": 50,
                                 "checkpoint_every_n_steps": 0})
    trainer = trainer_cpu_seconds(OmegaConf.create({"trainer": settings}), Trivial(), steps, warmup)
    return {"raw_loop_ms": statistics.median(raw) * 1e3, "trainer_ms": trainer * 1e3,
            "lightning_ms": (trainer - statistics.median(raw)) * 1e3}


def point(overrides: list[str], seconds: float, rounds: int = 3) -> dict:
    """The profile, then `rounds` alternations of raw loop and Trainer; the least disturbed (smallest) median of each
    is kept, since another process slows even this thread's CPU clock (shared caches)."""
    from overparam.core.build import build_module

    config = compose([*overrides, "trainer.max_steps=1"])
    first = raw_loop_cpu_seconds(config, 3, warmup=1)
    measured = max(20, min(400, round(seconds / rounds / max(first, 1e-4))))
    phases = profile_step(config, steps=max(3, min(30, measured // 4)))
    raw_runs, trainer_runs = [], []
    for _ in range(rounds):
        raw_runs.append(raw_loop_cpu_seconds(config, measured) * 1e3)
        trainer_runs.append(trainer_cpu_seconds(config, build_module(config), measured) * 1e3)
    raw, trainer = min(raw_runs), min(trainer_runs)
    return {"overrides": overrides, "phases": phases, "raw_loop_ms": raw, "trainer_ms": trainer,
            "lightning_ms": trainer - raw, "raw_loop_runs_ms": raw_runs, "trainer_runs_ms": trainer_runs,
            "measured_steps": measured}


def print_point(result: dict, top: int = 25) -> None:
    step = sum(p["ms"] for p in result["phases"] if p["phase"] in STEP_PHASES)
    print(f"\n{' '.join(result['overrides']) or '(defaults)'}: CPU ms per step under the profiler "
          f"(inclusive; share of the whole step)")
    for row in result["phases"][:top]:
        share = f"{row['ms'] / step:6.1%}" if step else ""  # of the step's own phases
        print(f"  {row['ms']:9.3f}  {share}  {row['phase']}")
    print(f"  without the profiler: raw loop {result['raw_loop_ms']:.3f} ms, pl.Trainer {result['trainer_ms']:.3f} ms,"
          f" Lightning {result['lightning_ms']:.3f} ms ({result['lightning_ms'] / result['trainer_ms']:.1%})")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3], help="task.steps values (Life)")
    parser.add_argument("--ms", type=int, nargs="+", default=[1, 5], help="model.m_factor values")
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--overrides", nargs="*", default=None,
                        help="one config instead of the steps x ms grid (any task), e.g. experiment=firner")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time per measurement (roughly)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of raw loop and Trainer (smallest kept)")
    parser.add_argument("--out", default="breakdown.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from overparam.jobs.process import keep_freed_memory

    keep_freed_memory()
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    grid = [args.overrides] if args.overrides is not None else [
        [f"task.steps={steps}", f"model.m_factor={m}", f"trials={args.replicas}"]
        for steps in args.steps for m in args.ms]
    points = []
    for overrides in grid:
        points.append(point(overrides, args.seconds, args.rounds))
        print_point(points[-1])
    floor = lightning_floor()
    print(f"\nLightning on a trivial module (one Adam step of 3 numbers): Trainer {floor['trainer_ms']:.3f} ms, "
          f"raw loop {floor['raw_loop_ms']:.3f} ms per step: {floor['lightning_ms']:.3f} ms is Lightning's own")
    result = {"command": "python -m overparam.perf.breakdown " + " ".join(argv if argv is not None else sys.argv[1:]),
              "torch": torch.__version__, "points": points, "lightning_floor": floor}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return points


if __name__ == "__main__":
    main()
