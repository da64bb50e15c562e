"""The LightningModule: the only glue between a task, a replica-batched net and Lightning's loop.

The loss is the sum of the replicas' losses, so every replica gets exactly its own gradient. A replica whose
loss turns NaN or infinite is marked diverged, drops out of the loss and is frozen (zero gradient and
optimizer state), while the others train on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch

from .nets.replica import ReplicaNet
from .seeds import replica_generator
from .tasks.base import Task

# Optimizer state that carries a replica's past gradients; zeroed to freeze a diverged replica.
_MOMENTUM_STATE = ("exp_avg", "exp_avg_sq", "momentum_buffer", "max_exp_avg_sq")


class LeanStep(pl.LightningModule):
    """A LightningModule with less of Lightning's per-step work: the optimization step written out, and cheap
    attribute setting. Subclasses give `step_loss`."""

    def __init__(self):
        super().__init__()
        # The step is written out (zero_grad, loss, backward, step: the same operations in the same order as
        # Lightning's automatic closure, so the same numbers) because the closure machinery costs ~0.04 ms a step,
        # a tenth of a small K = 32 step.
        self.automatic_optimization = False

    def __setattr__(self, name, value) -> None:
        # Lightning sets bookkeeping attributes (the running hook's name, ...) about 30 times a step, and
        # nn.Module.__setattr__'s registration checks cost ~0.02 ms a step of that. An attribute already in
        # __dict__ is a plain one (parameters, buffers and submodules live elsewhere), so unless the new value is a
        # Parameter or Module to register, object.__setattr__ does exactly what nn.Module's would.
        if name in self.__dict__ and not isinstance(value, (torch.nn.Parameter, torch.nn.Module)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def training_step(self, batch, batch_index):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = self.step_loss()
        self.manual_backward(loss)
        optimizer.step()  # runs on_before_optimizer_step first, as in automatic mode
        return loss.detach()

    def step_loss(self) -> torch.Tensor:
        raise NotImplementedError


class ReplicaModule(LeanStep):
    def __init__(self, task: Task, net: ReplicaNet, replica_seeds: Sequence[int],
                 optimizer: Callable[..., torch.optim.Optimizer], log_every: int = 50):
        """`optimizer` builds the optimizer from the net's parameters (`overparam.build.build_optimizer`)."""
        super().__init__()
        self.task, self.net, self.make_optimizer = task, net, optimizer
        self.replica_seeds = list(replica_seeds)
        self.log_every = log_every
        self.register_buffer("alive", torch.ones(len(self.replica_seeds), dtype=torch.bool))
        self.register_buffer("last_losses", torch.zeros(len(self.replica_seeds)))
        self.data_generators: list[torch.Generator] = []
        self.dropout_generators: list[torch.Generator] = []
        self.host_check_every_step = True

    # ----- data streams live on the training device and travel in checkpoints ------------------------

    def setup(self, stage: str) -> None:
        # A host check (reading a device value in Python) is free on CPU; on a GPU it waits for the queued work.
        self.host_check_every_step = self.device.type == "cpu"
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

    def step_loss(self) -> torch.Tensor:
        """The summed loss of the live replicas on a fresh batch; logs every `log_every` steps."""
        losses = self.task.training_losses(self.net, self.data_generators, self.dropout_generators, self.device)
        total = self.live_loss_sum(losses)
        self.last_losses = losses.detach()
        if self.global_step % self.log_every == 0 and self.logger is not None:
            alive_losses = losses.detach()[self.alive]
            self.logger.log_metrics(
                {
                    "train/loss_mean": alive_losses.mean().item() if len(alive_losses) else float("nan"),
                    "train/loss_min": alive_losses.min().item() if len(alive_losses) else float("nan"),
                    "train/alive_replicas": int(self.alive.sum()),
                },
                step=self.global_step,
            )
        return total

    def live_loss_sum(self, losses: torch.Tensor) -> torch.Tensor:
        """The sum of the replicas' losses `[K]` over those still alive; a replica whose loss is not finite is
        marked diverged first, so it drops out of this step's gradient and every later one."""
        self.alive &= torch.isfinite(losses)
        return torch.where(self.alive, losses, torch.zeros_like(losses)).sum()

    def on_before_optimizer_step(self, optimizer) -> None:
        # On CPU this check is free; on a GPU it costs one sync per step, so it is only done every log_every steps
        # there (a diverged replica's weights are garbage anyway; it stays a failure either way).
        if not self.host_check_every_step and self.global_step % self.log_every != 0:
            return
        if bool(self.alive.all()):
            return
        with torch.no_grad():
            for parameter in self.net.parameters():
                keep = self.alive.view(-1, *([1] * (parameter.dim() - 1)))
                if parameter.grad is not None:
                    parameter.grad = torch.where(keep, parameter.grad, torch.zeros_like(parameter.grad))
                state = optimizer.state.get(parameter, {})
                for key in _MOMENTUM_STATE:
                    if key in state:
                        state[key].copy_(torch.where(keep, state[key], torch.zeros_like(state[key])))

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
            if diverged:
                row["success"] = False
        return per_replica
