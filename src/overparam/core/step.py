"""One optimizer step of K replicas: the one home of what a training step does.

1. zero the gradients;
2. each replica's loss `[K]` (the caller's `losses_of`: a fresh batch, or a static one under CUDA-graph capture);
3. a replica whose loss is not finite is marked diverged, for good (`alive` is sticky); with a `fitted` mask, a live
   replica whose loss is exactly 0 is marked fitted, for good (full-batch training: it has solved its training set);
4. back-propagate the sum of the live replicas' losses: each replica gets exactly its own gradient;
5. a diverged or fitted replica's gradient and optimizer momentum are zeroed, so it stays where it stopped;
6. optionally clip each replica's gradient on its own (by its norm, or by value);
7. the optimizer steps.

Everything that trains replicas calls `replica_step`: `ReplicaModule.training_step` under Lightning, the benchmark's
reference loop, the CUDA-graph body, the lottery's retraining and the step breakdown; so all train the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from overparam.core.phases import phase

# Optimizer state that carries a replica's past gradients; zeroed to freeze a diverged replica.
MOMENTUM_STATE = ("exp_avg", "exp_avg_sq", "momentum_buffer", "max_exp_avg_sq")
CLIP_ALGORITHMS = ("norm", "value")


def replica_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, alive: torch.Tensor,
                 losses_of: Callable[[], torch.Tensor], backward: Callable[[torch.Tensor], None] | None = None,
                 check_on_host: bool = True, clip_value: float | None = None,
                 clip_algorithm: str = "norm", fitted: torch.Tensor | None = None) -> torch.Tensor:
    """One step (the module docstring); returns the replicas' losses `[K]`, detached. `alive` (bool `[K]`) is
    updated in place, and so is `fitted` (bool `[K]`) when given: a replica whose loss is exactly 0 stops there
    (Geiger et al.'s jamming runs stop as soon as no margin is violated). `backward` replaces `Tensor.backward`
    (Lightning's `manual_backward`). `check_on_host`: read whether any replica must be frozen on the host and skip
    the freeze when none must (free on a CPU; on a GPU a sync, so there the freeze is applied as masked arithmetic
    every step instead)."""
    with phase("zero_grad"):
        optimizer.zero_grad()
    with phase("losses"):
        losses = losses_of()
        total = live_loss_sum(losses, alive)
        if fitted is not None:
            fitted |= alive & (losses.detach() == 0)
    with phase("backward"):
        (backward or torch.Tensor.backward)(total)
    with phase("freeze diverged, clip"):
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        freeze_diverged(parameters, optimizer, alive if fitted is None else alive & ~fitted, check_on_host)
        if clip_value is not None:
            clip_replica_gradients(parameters, clip_value, clip_algorithm)
    with phase("optimizer step"):
        optimizer.step()
    return losses.detach()


def live_loss_sum(losses: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """The sum of the replicas' losses `[K]` over those still alive; a replica whose loss is not finite is marked
    diverged first (in `alive`), so it drops out of this step's gradient and every later one."""
    alive &= torch.isfinite(losses)
    return torch.where(alive, losses, torch.zeros_like(losses)).sum()


@torch.no_grad()
def freeze_diverged(parameters: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer, alive: torch.Tensor,
                    check_on_host: bool = True) -> None:
    """Zero the gradient and the momentum of every replica not in `alive` (diverged, or fitted: `replica_step`), so
    the optimizer leaves it where it is (parameters carry the replica dimension first)."""
    if check_on_host and bool(alive.all()):
        return
    for parameter in parameters:
        keep = alive.view(-1, *([1] * (parameter.dim() - 1)))
        if parameter.grad is not None:
            parameter.grad = torch.where(keep, parameter.grad, torch.zeros_like(parameter.grad))
        state = optimizer.state.get(parameter, {})
        for key in MOMENTUM_STATE:
            if key in state:
                state[key].copy_(torch.where(keep, state[key], torch.zeros_like(state[key])))


@torch.no_grad()
def clip_replica_gradients(parameters: Iterable[torch.Tensor], clip_value: float, algorithm: str = "norm") -> None:
    """Clip each replica's gradient on its own: by the norm of its whole gradient (over every parameter), or each
    element by value. A norm over all replicas at once would let one replica's gradient shrink the others'."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    if algorithm == "value":
        for grad in grads:
            grad.clamp_(-clip_value, clip_value)
        return
    squares = torch.stack([grad.reshape(grad.shape[0], -1).pow(2).sum(1) for grad in grads]).sum(0)
    scale = (clip_value / (squares.sqrt() + 1e-6)).clamp(max=1.0)  # torch.nn.utils.clip_grad_norm_'s rule
    for grad in grads:
        grad.mul_(scale.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype))
