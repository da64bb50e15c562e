"""A test-only task and net whose replicas are exact at training steps the test chooses.

`ScheduledNet` counts its own training forward passes in a buffer (one per optimizer step, saved in checkpoints like
any weight); in eval mode it returns that count. `ScheduledTask.evaluate` reads it and calls replica k exact when the
count lies in one of its `schedule[k]` runs `[first, last]` of steps. So a job's record of when each replica was exact
is known in advance, whatever the trainer, the evaluation interval or a resume do.

    config = scheduled_config([[[20, 40]], [[10, 10], [30, 50]], []], ["trainer.max_steps=50"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from omegaconf import OmegaConf
from torch import nn

from overparam.nets.replica import ReplicaActivation, ReplicaLinear, ReplicaNet
from overparam.tasks.base import Task


@dataclass
class ScheduledTask(Task):
    NET_INPUTS: ClassVar[tuple[str, ...]] = ()

    schedule: list | None = None  # per replica: runs [first, last] of the steps at which it is exact
    name: str = "scheduled"

    def grid_point(self) -> dict:
        return {"steps": 1}

    def train_batch(self, generators: Sequence[torch.Generator], device):
        inputs = torch.stack([torch.rand(4, 1, generator=g, device=device) for g in generators])
        return inputs, torch.zeros_like(inputs)

    def replica_losses(self, outputs, targets, output_kind):
        return (outputs - targets).pow(2).flatten(1).mean(1)

    def exact(self, replica: int, step: int) -> bool:
        runs = (self.schedule or [])[replica] if replica < len(self.schedule or []) else []
        return any(first <= step <= last for first, last in runs)

    @torch.no_grad()
    def evaluate(self, predict, replicas: int, device) -> list[dict]:
        steps = predict(torch.zeros(replicas, 1, 1, device=device)).flatten(1)[:, 0].round().long().tolist()
        rows = []
        for k, step in enumerate(steps):
            exact = self.exact(k, step)
            rows.append({"success": exact, "board_accuracy": 1.0 if exact else 0.5})
        return rows


class ScheduledNet(ReplicaNet):
    """One affine unit per replica (so the optimizer has work), and a count of training forward passes."""

    output_kind = "values"

    def __init__(self, replicas: int, m_factor: int = 1, activation: str = "relu"):
        super().__init__()
        self.replicas, self.m_factor, self.activation = replicas, m_factor, activation
        self.layers = nn.ModuleList([ReplicaLinear(replicas, 1, 1)])
        self.acts = nn.ModuleList([ReplicaActivation(activation, replicas)])
        self.register_buffer("steps", torch.zeros(replicas))

    def forward(self, inputs, dropout_generators=None):
        if not self.training:
            return self.steps.view(-1, 1, 1).expand(-1, inputs.shape[1], 1).clone()
        self.steps += 1
        return self.layers[0](inputs)


def scheduled_config(schedule: list, overrides: Sequence[str] = ()):
    """A job config (composed from conf/, then task and model replaced) training the scheduled task."""
    from overparam.config import compose

    config = compose(["trainer.progress=none", *overrides])
    OmegaConf.set_struct(config, False)
    config.task = {"_target_": "scheduled.ScheduledTask", "schedule": schedule, "name": "scheduled"}
    config.model = {"_target_": "scheduled.ScheduledNet", "m_factor": 1}
    config.trials = len(schedule)
    return config
