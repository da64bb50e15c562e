"""A test-only task and net whose replicas are exact at training steps the test chooses.

`ScheduledNet` counts its own training forward passes in a buffer (one per optimizer step, saved in checkpoints like
any weight). In eval mode it returns 1 for a replica whose count lies in one of its runs `[first, last]` of its
`schedule` (per replica; or per width, `{"<m_factor>": [...]}`, so that jobs at several widths share one config but
the width) and 0 otherwise; `ScheduledTask.evaluate` calls a replica exact when it returns 1. So a job's record of
when each replica was exact is known in advance, whatever the trainer, the evaluation interval or a resume do.

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

    name: str = "scheduled"

    def grid_point(self) -> dict:
        return {"steps": 1}

    def train_batch(self, generators: Sequence[torch.Generator], device):
        inputs = torch.stack([torch.rand(4, 1, generator=g, device=device) for g in generators])
        return inputs, torch.zeros_like(inputs)

    def replica_losses(self, outputs, targets, output_kind):
        return (outputs - targets).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def evaluate(self, predict, replicas: int, device) -> list[dict]:
        exact = predict(torch.zeros(replicas, 1, 1, device=device)).flatten(1)[:, 0].tolist()
        return [{"success": e == 1.0, "board_accuracy": 1.0 if e == 1.0 else 0.5} for e in exact]


class ScheduledNet(ReplicaNet):
    """One affine unit per replica (so the optimizer has work), and a count of training forward passes."""

    output_kind = "values"

    def __init__(self, replicas: int, m_factor: int = 1, activation: str = "relu", schedule=None):
        super().__init__()
        self.replicas, self.m_factor, self.activation = replicas, m_factor, activation
        if isinstance(schedule, dict):
            schedule = schedule.get(str(m_factor), [])
        self.schedule = list(schedule or [])
        self.layers = nn.ModuleList([ReplicaLinear(replicas, 1, 1)])
        self.acts = nn.ModuleList([ReplicaActivation(activation, replicas)])
        self.register_buffer("steps", torch.zeros(replicas))

    def exact(self, replica: int, step: int) -> bool:
        runs = self.schedule[replica] if replica < len(self.schedule) else []
        return any(first <= step <= last for first, last in runs)

    def forward(self, inputs, dropout_generators=None):
        if not self.training:
            exact = [float(self.exact(k, int(step))) for k, step in enumerate(self.steps.tolist())]
            return torch.tensor(exact).view(-1, 1, 1).expand(-1, inputs.shape[1], 1).clone()
        self.steps += 1
        return self.layers[0](inputs)


def scheduled_config(schedule, overrides: Sequence[str] = (), trials: int | None = None):
    """A job config (composed from conf/, then task and model replaced) training the scheduled task."""
    from overparam.config import compose

    config = compose(["trainer.progress=none", *overrides])
    OmegaConf.set_struct(config, False)
    width = int(next((o.split("=")[1] for o in overrides if o.startswith("model.m_factor=")), 1))
    config.task = {"_target_": "scheduled.ScheduledTask", "name": "scheduled"}
    config.model = {"_target_": "scheduled.ScheduledNet", "m_factor": width, "schedule": schedule}
    config.trials = trials or len(schedule)
    return config
