"""Layers of K independent models evaluated as one, and what every replica-batched net offers.

Every parameter has a leading replica dimension K and every activation is `[K, N, features]`, so a
layer of K models is one batched matmul (`torch.baddbmm`). Replicas never mix: replica k's output
depends only on replica k's parameters and inputs, and a sum of per-replica losses gives each
replica exactly its own gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from overparam.config import Check, choice, integer
from overparam.seeds import replica_generator

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "prelu", "silu")
LEAKY_SLOPE = 0.01
PRELU_INIT = 0.25


class ReplicaNet(nn.Module):
    """K replicas of one model. Subclasses build `layers` (ReplicaLinear) and `acts` (ReplicaActivation)."""

    #: Constructor arguments the job supplies (not config keys): the replica count and the task's `net_inputs()`.
    RUNTIME_ARGUMENTS: ClassVar[tuple[str, ...]] = ("replicas",)
    CHECKS: ClassVar[dict[str, Check]] = {"m_factor": integer(1), "activation": choice(*ACTIVATIONS)}
    #: What the net returns: "logits" (a sigmoid is folded into the loss), "probabilities" or "values".
    output_kind: str = "values"
    #: Firner's --normalize init (N(0, 0.02) weights, U(-1, 1) biases) instead of PyTorch's default.
    normalize: bool = False
    replicas: int
    m_factor: int

    @classmethod
    def check(cls, model: dict) -> None:
        """Raise ConfigError (one line) for a combination of model keys that cannot work."""

    def grid_point(self) -> dict:
        """The model's settings that place a job on a curve (beside the width `m_factor` and the activation)."""
        return {}

    def export_replica(self, replica: int) -> nn.Module:
        """Replica `replica` as a plain torch module (eval mode) mapping that replica's inputs `[B, ...]` (the task's
        per-replica layout) to its outputs; `overparam.nets.export` saves it."""
        raise NotImplementedError(f"{type(self).__name__} cannot export its replicas")

    def import_replica(self, module: nn.Module, replica: int) -> None:
        """Write an exported module's weights back into slot `replica` (same architecture)."""
        raise NotImplementedError(f"{type(self).__name__} cannot import replicas")

    def params_per_replica(self) -> int:
        return sum(p.numel() for p in self.parameters()) // self.replicas

    def reset_parameters(self, replica_seeds: Sequence[int]) -> None:
        """Each replica's initial weights from its own "init" stream; the same seed gives the same replica
        whatever the other replicas are."""
        generators = [replica_generator(seed, "init") for seed in replica_seeds]
        for layer in self.layers:
            layer.reset(generators, self.normalize)
        with torch.no_grad():
            for act in self.acts:
                if act.name == "prelu":
                    act.slope.fill_(PRELU_INIT)


class ReplicaLinear(nn.Module):
    """K independent affine maps `[K, N, fan_in] -> [K, N, fan_out]` in one batched matmul."""

    def __init__(self, replicas: int, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(replicas, fan_in, fan_out))
        self.bias = nn.Parameter(torch.empty(replicas, 1, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """`[K, fan_in, N] -> [K, fan_out, N]`: the same map with the long cell dimension last, which is the
        shape MKL's batched matmul handles well when fan_in and fan_out are tiny."""
        return torch.baddbmm(self.bias.transpose(1, 2), self.weight.transpose(1, 2), x)

    @torch.no_grad()
    def reset(self, generators: Sequence[torch.Generator], normalize: bool) -> None:
        """PyTorch's default layer init (U(+-1/sqrt(fan_in)) for weights and biases), or Firner's `--normalize`
        init (weights N(0, 0.02), biases U(-1, 1)), each replica from its own generator."""
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        for k, generator in enumerate(generators):
            if normalize:
                self.weight[k].normal_(0.0, 0.02, generator=generator)
                self.bias[k].uniform_(-1.0, 1.0, generator=generator)
            else:
                self.weight[k].uniform_(-bound, bound, generator=generator)
                self.bias[k].uniform_(-bound, bound, generator=generator)


class ReplicaActivation(nn.Module):
    """An elementwise activation; `prelu` has one learnable slope per replica."""

    def __init__(self, name: str, replicas: int):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(f"model.activation={name!r} is not one of {', '.join(ACTIVATIONS)}")
        self.name = name
        if name == "prelu":
            self.slope = nn.Parameter(torch.full((replicas, 1, 1), PRELU_INIT))

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """`inplace` overwrites x (meant for a fresh matmul output, which autograd does not keep) where the
        activation's backward needs only its output (relu, leaky_relu, elu): one buffer fewer per layer."""
        if self.name == "relu":
            return torch.relu_(x) if inplace else torch.relu(x)
        if self.name == "leaky_relu":
            return nn.functional.leaky_relu(x, LEAKY_SLOPE, inplace=inplace)
        if self.name == "elu":
            return nn.functional.elu(x, inplace=inplace)
        if self.name == "prelu":
            return torch.where(x >= 0, x, self.slope * x)
        return getattr(nn.functional, self.name)(x)

    @property
    def negative_slope(self) -> float:
        """Slope on negative inputs that the hand-built solution must cancel (0 for the saturating ones)."""
        return LEAKY_SLOPE if self.name == "leaky_relu" else 0.0
