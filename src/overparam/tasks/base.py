"""What a task offers the rest of overparam. A task is one module here and one yaml in conf/task/.

A task makes each replica's training data from that replica's own generator, scores K replicas' predictions on
held-out data, and declares what the job, the validator and the report need to know about it: the keys that
place a job on a curve, what its per-replica metrics are and which of them the report draws, and the checks a
type cannot express. Plain torch: no Lightning, no Hydra.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch

from overparam.config import Check


class Task(ABC):
    #: Ranges and choices of the config keys, checked before any job starts.
    CHECKS: ClassVar[dict[str, Check]] = {}
    #: Charts the report draws against width besides the success rate: title -> summary columns.
    #: A summary column is `<metric>_mean` or `<flag>_fraction` of a per-replica row, or a `result_extras` key.
    CHARTS: ClassVar[dict[str, list[str]]] = {}
    #: What `net_inputs()` passes to the model's constructor: a model fits a task when it takes all of these.
    NET_INPUTS: ClassVar[tuple[str, ...]] = ()
    #: A short label for tables and folder names; each task's own default.
    name: str

    @classmethod
    def check(cls, task: dict, model: dict) -> None:
        """Raise ConfigError (one line) for a combination of task and model keys that cannot work."""

    @abstractmethod
    def grid_point(self) -> dict:
        """The task's settings that place a job on a curve (stored at the top of result.json)."""

    def net_inputs(self) -> dict:
        """What a net must know about the data, passed to the model's constructor (e.g. input and output sizes)."""
        return {}

    def notes(self) -> list[str]:
        """Short remarks for the job's header line about settings easy to overlook (e.g. a test distribution
        that differs from the training one)."""
        return []

    def result_extras(self) -> dict:
        """Task-level numbers for result.json beyond the per-replica metrics (e.g. a Bayes ceiling)."""
        return {}

    # ----- training --------------------------------------------------------------------------------------

    @abstractmethod
    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K, B, ...]` inputs and targets, replica k's drawn from `generators[k]`, made on `device`."""

    @abstractmethod
    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor, output_kind: str) -> torch.Tensor:
        """The mean training loss of each replica, `[K]`."""

    def training_losses(self, net, data_generators, dropout_generators, device) -> torch.Tensor:
        """`[K]` losses on a fresh batch: the plain path, batch -> net -> loss. A task may override it with
        faster paths that give the same numbers (LifeTask does), choosing among them in one place."""
        inputs, targets = self.train_batch(data_generators, device)
        return self.replica_losses(net(inputs, dropout_generators), targets, net.output_kind)

    def fixed_batch(self, replica: int, seed: int, examples: int, net=None):
        """One replica's fixed batch for an analysis of its loss (e.g. its Hessian): `(inputs [1, B, ...],
        targets [1, B, ...], weights or None)`, such that `replica_losses(outputs, targets, kind[, weight=weights])`
        is that replica's training loss there. By default a training batch drawn from a generator seeded `seed`
        (the task's own batch size; `examples` is for tasks that can draw any number); a task with a fixed
        training set returns that replica's own set."""
        generator = torch.Generator().manual_seed(seed)
        inputs, targets = self.train_batch([generator], "cpu")
        return inputs, targets, None

    def state_dict(self) -> dict:
        """What the task must carry across a checkpoint to resume its data stream exactly (e.g. an epoch's
        shuffle); the replicas' generators travel anyway."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`."""

    # ----- evaluation ------------------------------------------------------------------------------------

    @abstractmethod
    def evaluate(self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device) -> list[dict]:
        """One row per replica: `success` (bool) and the task's metrics (numbers, or flags such as `collapsed`).
        `predict` maps held-out inputs `[K, N, ...]` to predictions (probabilities for a logits net)."""

    def certify(self, net, exact: Sequence[bool]) -> list[bool] | None:
        """Whether each replica is exact on every input the task can ever present, not only on the held-out set:
        a proof by enumeration where the task has one (for a one-step Life net, its output on all 512 3x3
        patterns). `exact` says which replicas passed the held-out set; a replica that did not is not certified and
        need not be checked. Called after training, on the trained net (eval mode, no gradient). None: the task
        cannot certify this net, and the result has no `certified`."""
        return None
