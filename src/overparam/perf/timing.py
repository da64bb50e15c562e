"""Timing tools for any training step, as a job runs it: the module's raw step, the same inside a `pl.Trainer` built
as a job builds it, the step replayed as a CUDA graph, a plain MLP step, the matmul peak that puts rates in scale,
and the thread policy on a busy machine. Medians of many steps, because the machine is shared; on CUDA timed
between synchronizations only. The Life benchmark (`python -m overparam.tasks.life.bench`) uses them.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from omegaconf import OmegaConf
from torch import nn


def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously); nothing to wait for on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(size: int = 2048, seconds: float = 0.5, device="cpu") -> float:
    """Best fp32 matmul rate over a few repetitions: the ceiling every other rate is compared to."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    best, spent = math.inf, 0.0
    while spent < seconds:
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * size**3 / best / 1e9


def timed(step, seconds: float, warmup: int = 2, min_steps: int = 5, device="cpu") -> float:
    """Median seconds per call of `step`, after `warmup` calls, over about `seconds` of calls.

    The median, because on a shared machine a few calls land in another process's time slice. On CUDA the
    steps are timed in groups between two synchronizations (a sync after every step would stop the CPU from
    queueing the next step while the GPU runs this one), and the median is over groups' means.
    """
    for _ in range(warmup):
        step()
    cuda = torch.device(device).type == "cuda"
    group = 5 if cuda else 1
    durations: list[float] = []
    synchronize(device)
    started = time.perf_counter()
    while len(durations) < max(1, min_steps // group) or time.perf_counter() - started < seconds:
        start = time.perf_counter()
        for _ in range(group):
            step()
        synchronize(device)
        durations.append((time.perf_counter() - start) / group)
    return statistics.median(durations)


def raw_loop_seconds_per_step(config, seconds: float, warmup: int = 2, min_steps: int = 5, device="cpu") -> float:
    """The module's own training step (`ReplicaModule.train_step`), with no Trainer around it."""
    from overparam.core.build import build_hand_driven

    module, optimizer = build_hand_driven(config, device)

    def step():
        module.train_step(optimizer)

    return timed(step, seconds, warmup, min_steps, device=device)


def trainer_seconds_per_step(config, warmup: int = 2, device="cpu") -> float:
    """Median time between the ends of consecutive training steps inside `trainer.fit`, after `warmup` steps.

    On CUDA, the mean over the steps after `warmup` instead: the clock synchronizes only at the first and the
    last of them, so that the measurement adds no host sync to the steps it measures.
    """
    import pytorch_lightning as pl

    from overparam.core.build import build_module
    from overparam.jobs.trainer import build_trainer

    cuda = torch.device(device).type == "cuda"
    max_steps = config.trainer.max_steps

    class StepClock(pl.Callback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            if cuda:
                if batch_index not in (warmup - 1, max_steps - 1):
                    return
                synchronize(device)
            self.ends.append(time.perf_counter())

    clock = StepClock()
    with tempfile.TemporaryDirectory() as log_dir:
        settings = OmegaConf.merge(config.trainer, {"progress": "none"})
        trainer = build_trainer(settings, torch.device(device), log_dir, callbacks=[clock])
        trainer.fit(build_module(config), train_dataloaders=range(max_steps))
    if cuda:
        first, last = clock.ends
        return (last - first) / (max_steps - warmup)
    ends = clock.ends[warmup - 1 :]
    return statistics.median(b - a for a, b in zip(ends[:-1], ends[1:]))


def graphed_seconds_per_step(config, seconds: float, device) -> tuple[float | None, str | None]:
    """The module's step replayed as a CUDA graph (`overparam.perf.cuda_graphs`), or why it cannot be."""
    from overparam.core.build import build_hand_driven
    from overparam.perf.cuda_graphs import GraphedStep, unavailable_reason

    module, optimizer = build_hand_driven(config, device)
    reason = unavailable_reason(module, optimizer, device)
    if reason:
        return None, reason
    graphed = GraphedStep(module, optimizer)
    return timed(graphed.step, seconds, device=device), None


def mlp_seconds_per_step(size: int, batch: int, seconds: float, device="cpu") -> tuple[float, str]:
    """One optimizer step of the adjacency-target MLP (K = 1, `overparam.nets.mlp.ReplicaMLP`)."""
    from overparam.core.step import replica_step
    from overparam.nets.mlp import ReplicaMLP

    net = ReplicaMLP(replicas=1, inputs=size, outputs=size, hidden=[], activation="relu")
    net.reset_parameters([0])
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    inputs, targets = torch.randn(1, batch, size, device=device), torch.randn(1, batch, size, device=device)

    alive = torch.ones(1, dtype=torch.bool, device=device)

    def step():
        replica_step(net, optimizer, alive, lambda: nn.functional.mse_loss(net(inputs), targets).reshape(1),
                     check_on_host=torch.device(device).type == "cpu")

    return timed(step, seconds, warmup=1, min_steps=2, device=device), "overparam.nets.mlp.ReplicaMLP"


def busy_core():
    """A process spinning on one core, standing in for another job on a shared machine."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def thread_policy(config, seconds: float) -> list[dict]:
    """The raw step of `config` at 1 and 2 torch threads, with the other core idle and busy."""
    rows = []
    before = torch.get_num_threads()
    try:
        for busy in (False, True):
            spinner = busy_core() if busy else None
            try:
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    ms = raw_loop_seconds_per_step(config, seconds) * 1e3
                    rows.append({"threads": threads, "other_core_busy": busy, "step_ms": ms,
                                 "per_replica_step_ms": ms / config.trials})
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
    finally:
        torch.set_num_threads(before)
    return rows
