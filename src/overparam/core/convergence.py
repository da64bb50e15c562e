"""Stop training when the loss has stopped moving, and say so: a settled job is finished, not cut short.

`trainer.stop_when_loss_change_below` (relative tolerance; 0 turns the stop off) and `trainer.stop_window_steps`:
every `stop_window_steps` steps each live replica's training loss is compared with its value one window earlier;
when, for every live replica, |L(t - window) - L(t)| <= tolerance * L(t - window), training stops. A loss that is
exactly 0 has settled (a hinge loss with every margin met has no gradient left), and a diverged replica is ignored.
Meant for full-batch training, where the loss of a step is the loss of the whole training set; with minibatches the
batch-to-batch noise decides instead.

The comparison point travels in checkpoints (`state_dict`), so a resumed job stops at the very step an
uninterrupted one stops.

`trainer.stop_when_fitted`: each replica stops at the first step its training loss is exactly 0 (the module freezes
it there: `core.step.replica_step`), and the job stops once every live replica has (`StopWhenFitted`). For a hinge
loss a loss of exactly 0 means no example violates the margin: Geiger et al.'s jamming runs stop there. Also meant
for full-batch training. The check reads the replicas' flags every step (a host read, so a sync on a GPU).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch


class StopWhenLossSettles(pl.Callback):
    def __init__(self, tolerance: float, window: int):
        if tolerance <= 0 or window < 1:
            raise ValueError(f"tolerance={tolerance} must be > 0 and window={window} >= 1")
        self.tolerance, self.window = tolerance, window
        self.reference: torch.Tensor | None = None  # [K] losses one window ago
        self.stopped_at_step: int | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        step = trainer.global_step
        if step % self.window:
            return
        losses = module.last_losses.detach().double().cpu()
        if self.reference is not None and settled(self.reference, losses, module.alive.cpu(), self.tolerance):
            trainer.should_stop = True
            self.stopped_at_step = step
        self.reference = losses

    def state_dict(self) -> dict:
        return {"reference": self.reference}

    def load_state_dict(self, state_dict: dict) -> None:
        self.reference = state_dict.get("reference")


def settled(before: torch.Tensor, after: torch.Tensor, alive: torch.Tensor, tolerance: float) -> bool:
    """Whether every live replica's loss moved by at most `tolerance` relative to where it was."""
    still = (before - after).abs() <= tolerance * before.abs()
    return bool((still | ~alive).all())


class StopWhenFitted(pl.Callback):
    """Stop the job once every live replica is fitted (`ReplicaModule.fitted`: its loss read exactly 0)."""

    def __init__(self):
        self.stopped_at_step: int | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        if bool((module.fitted | ~module.alive).all()):
            trainer.should_stop = True
            self.stopped_at_step = trainer.global_step


def stop_callbacks(trainer_config) -> list[pl.Callback]:
    """The convergence stops the config asks for (keys absent from an older config mean: off)."""
    tolerance = trainer_config.get("stop_when_loss_change_below", 0.0)
    stops: list[pl.Callback] = [StopWhenLossSettles(tolerance, trainer_config.get("stop_window_steps", 1000))] \
        if tolerance else []
    if trainer_config.get("stop_when_fitted", False):
        stops.append(StopWhenFitted())
    return stops


def finished_early_at(trainer: pl.Trainer) -> int | None:
    """The step at which a callback that finishes a job (one with a `stopped_at_step`: the convergence stop,
    `trainer.stop_when_solved`) ended training, or None when none did."""
    for callback in trainer.callbacks:
        step = getattr(callback, "stopped_at_step", None)
        if step is not None and step == trainer.global_step:
            return step
    return None
