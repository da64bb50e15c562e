"""The LightningModule: the only glue between a task, a replica-batched net and Lightning's loop.

Its training step is `overparam.core.step.replica_step` (the one home of a step's semantics: the loss is the sum of
the live replicas' losses, so every replica gets exactly its own gradient; a replica whose loss turns NaN or
infinite is marked diverged, drops out of the loss and is frozen while the others train on). With `stop_when_fitted`
a replica whose training loss is exactly 0 is frozen where it is, and `fitted_step` records the step it got there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch

from overparam.core.step import replica_step
from overparam.nets.replica import ReplicaNet
from overparam.seeds import replica_generator
from overparam.tasks.base import Task


class ReplicaModule(pl.LightningModule):
    def __init__(self, task: Task, net: ReplicaNet, replica_seeds: Sequence[int],
                 optimizer: Callable[..., torch.optim.Optimizer], log_every: int = 50,
                 clip_value: float | None = None, clip_algorithm: str = "norm", stop_when_fitted: bool = False):
        """`optimizer` builds the optimizer from the net's parameters (`overparam.core.build.build_optimizer`);
        `clip_value` clips each replica's gradient on its own (`step.clip_replica_gradients`); `stop_when_fitted`
        freezes each replica at the first step its training loss is exactly 0 (`step.replica_step`)."""
        super().__init__()
        # The step is written out (`replica_step`: the same operations in the same order as Lightning's automatic
        # closure, so the same numbers), with the freeze of diverged replicas and per-replica clipping inside it.
        self.automatic_optimization = False
        self.task, self.net, self.make_optimizer = task, net, optimizer
        self.replica_seeds = list(replica_seeds)
        self.log_every = log_every
        self.clip_value, self.clip_algorithm = clip_value, clip_algorithm
        self.register_buffer("alive", torch.ones(len(self.replica_seeds), dtype=torch.bool))
        self.register_buffer("last_losses", torch.zeros(len(self.replica_seeds)))
        self.stop_when_fitted = stop_when_fitted
        if stop_when_fitted:  # only then, so checkpoints of jobs without the setting keep their keys
            self.register_buffer("fitted", torch.zeros(len(self.replica_seeds), dtype=torch.bool))
            self.register_buffer("fitted_step", torch.full((len(self.replica_seeds),), -1, dtype=torch.long))
        self.data_generators: list[torch.Generator] = []
        self.dropout_generators: list[torch.Generator] = []
        self.check_on_host = True  # read divergence on the host each step: free on a CPU, a sync on a GPU

    # ----- data streams live on the training device and travel in checkpoints ------------------------

    def setup(self, stage: str) -> None:
        self.check_on_host = self.device.type == "cpu"
        if not self.data_generators:
            self.data_generators = [replica_generator(s, "data", self.device) for s in self.replica_seeds]
            self.dropout_generators = [replica_generator(s, "dropout", self.device) for s in self.replica_seeds]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["generator_states"] = {
            "data": [g.get_state() for g in self.data_generators],
            "dropout": [g.get_state() for g in self.dropout_generators],
        }
        checkpoint["task_state"] = self.task.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.setup("fit")
        states = checkpoint["generator_states"]
        for generator, state in zip(self.data_generators, states["data"]):
            generator.set_state(state)
        for generator, state in zip(self.dropout_generators, states["dropout"]):
            generator.set_state(state)
        self.task.load_state_dict(checkpoint.get("task_state", {}))

    # ----- training -------------------------------------------------------------------------------

    def configure_optimizers(self):
        return self.make_optimizer(self.net.parameters())

    def fresh_losses(self) -> torch.Tensor:
        """Each replica's loss `[K]` on its next batch, from its own data and dropout streams."""
        return self.task.training_losses(self.net, self.data_generators, self.dropout_generators, self.device)

    def train_step(self, optimizer: torch.optim.Optimizer, backward=None) -> torch.Tensor:
        """One `replica_step` on fresh batches; returns (and keeps in `last_losses`) the replicas' losses."""
        fitted = self.fitted if self.stop_when_fitted else None
        steps_taken = self.global_step if fitted is not None else 0  # before this step's optimizer.step()
        losses = replica_step(self.net, optimizer, self.alive, self.fresh_losses, backward,
                              check_on_host=self.check_on_host, clip_value=self.clip_value,
                              clip_algorithm=self.clip_algorithm, fitted=fitted)
        if fitted is not None:  # the number of optimizer steps taken when the loss first read exactly 0
            self.fitted_step.copy_(torch.where(fitted & (self.fitted_step < 0), steps_taken, self.fitted_step))
        self.last_losses = losses
        return losses

    def training_step(self, batch, batch_index):
        # global_step counts optimizer steps, so it is read before this step's optimizer.step() as Lightning's own
        # logging in automatic mode does.
        step = self.global_step
        losses = self.train_step(self.optimizers(), self.manual_backward)
        if step % self.log_every == 0 and self.loggers:
            self._log_losses(losses, step)
        return None

    def _log_losses(self, losses: torch.Tensor, step: int) -> None:
        alive_losses = losses[self.alive]
        metrics = {
            "train/loss_mean": alive_losses.mean().item() if len(alive_losses) else float("nan"),
            "train/loss_min": alive_losses.min().item() if len(alive_losses) else float("nan"),
            "train/alive_replicas": int(self.alive.sum()),
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)

    # ----- evaluation -----------------------------------------------------------------------------

    def predict_probabilities(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.net(inputs)
        return torch.sigmoid(outputs) if self.net.output_kind == "logits" else outputs

    @torch.no_grad()
    def evaluate(self) -> list[dict]:
        """Held-out metrics per replica, in eval mode; diverged replicas count as failures."""
        was_training = self.net.training
        self.net.eval()
        try:
            per_replica = self.task.evaluate(self.predict_probabilities, len(self.replica_seeds), self.device)
        finally:
            self.net.train(was_training)
        final_losses = self.last_losses.tolist()
        for k, row in enumerate(per_replica):
            diverged = not bool(self.alive[k])
            row.update(seed=self.replica_seeds[k], final_loss=final_losses[k], diverged=diverged)
            if self.stop_when_fitted:
                row["fitted_at_step"] = int(self.fitted_step[k]) if bool(self.fitted[k]) else None
            if diverged:
                row["success"] = False
        return per_replica
