"""K replicas of a fully connected net, `[K, B, inputs] -> [K, B, outputs]`, one batched matmul per layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .nets import PRELU_INIT, ReplicaActivation, ReplicaLinear
from .seeds import replica_generator


class ReplicaMLP(nn.Module):
    """inputs -> hidden[0] -> act -> ... -> hidden[-1] -> act -> outputs, no activation on the output.

    `hidden=[]` is the linear net (qubo-nn's 4096 -> 4096). A hidden width of 0 removes that layer, so
    `model.m_factor=0` in a width sweep is the linear net. Weights and biases start from PyTorch's default
    Linear init, U(+-1/sqrt(fan_in)), each replica from its own "init" stream.
    """

    output_kind = "values"

    def __init__(self, replicas: int, inputs: int, outputs: int, hidden: Sequence[int] = (), activation: str = "relu"):
        super().__init__()
        if any(width < 0 or int(width) != width for width in hidden):
            raise ValueError(f"model.hidden scaled by model.m_factor gives {list(hidden)}: widths must be integers >= 0")
        self.replicas = replicas
        self.hidden = [int(width) for width in hidden if width > 0]
        sizes = [inputs, *self.hidden, outputs]
        self.layers = nn.ModuleList(ReplicaLinear(replicas, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(ReplicaActivation(activation, replicas) for _ in self.hidden)

    def params_per_replica(self) -> int:
        """The sum over layers of (fan_in + 1) * fan_out, plus PReLU slopes: a sum, not a product."""
        return sum(p.numel() for p in self.parameters()) // self.replicas

    def reset_parameters(self, replica_seeds: Sequence[int]) -> None:
        generators = [replica_generator(seed, "init") for seed in replica_seeds]
        for layer in self.layers:
            layer.reset(generators, normalize=False)
        with torch.no_grad():
            for act in self.acts:
                if act.name == "prelu":
                    act.slope.fill_(PRELU_INIT)

    def forward(self, x: torch.Tensor, dropout_generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """`[K, B, inputs]` -> `[K, B, outputs]`; `dropout_generators` is accepted for the module's call and unused."""
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return self.layers[-1](x)
