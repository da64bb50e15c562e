"""K replicas of a fully connected net, `[K, B, inputs] -> [K, B, outputs]`, one batched matmul per layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from overparam.config import Check, choice, fail, is_int
from overparam.nets.replica import ReplicaActivation, ReplicaLinear, ReplicaNet
from overparam.seeds import replica_generator


def _hidden_widths(key, value) -> None:
    if not (isinstance(value, (list, tuple)) and all(is_int(v) and v >= 0 for v in value)):
        fail(key, value, "must be a list of integers >= 0 ([] for a linear model; a 0 removes that layer)")


_hidden_widths.allowed = "a list of integers >= 0"


INITS = ("uniform", "orthogonal", "orthogonal_units")


def orthogonal_units_(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fill a stored `[fan_in, fan_out]` weight as Geiger et al.'s `orthogonal_` fills the `[fan_out, fan_in]` weight
    of an `nn.Linear`: units in blocks of fan_in, each block's incoming weights orthonormal (Q of a Gaussian's QR,
    Q's columns times the signs of R's diagonal, as torch's orthogonal_ does), so each unit's weights have norm 1."""
    fan_in, fan_out = weight.shape
    gaussian = torch.randn(fan_out, fan_in, generator=generator, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for start in range(0, fan_out, fan_in):
            block = gaussian[start : start + fan_in]  # [b, fan_in], b <= fan_in
            q, r = torch.linalg.qr(block.T)  # q [fan_in, b]: orthonormal columns
            weight[:, start : start + fan_in] = q * torch.diagonal(r).sign()
    return weight


class ReplicaMLP(ReplicaNet):
    """inputs -> hidden[0] -> act -> ... -> hidden[-1] -> act -> outputs, no activation on the output.

    Hidden layer i has `m_factor * hidden[i]` units; `hidden=[]` is the linear net (qubo-nn's 4096 -> 4096) and a
    hidden width of 0 removes that layer. `init="uniform"`: weights and biases from PyTorch's default Linear init,
    U(+-1/sqrt(fan_in)); `init="orthogonal"`: `torch.nn.init.orthogonal_` (gain 1) applied to each layer's stored
    `[fan_in, fan_out]` weight, and zero biases. For a layer wider than its input (fan_out > fan_in) that matrix has
    orthonormal rows, so a unit's incoming weights have norm sqrt(fan_in / fan_out) on average, not 1.
    `init="orthogonal_units"`: Geiger et al.'s own `orthogonal_` (nn_jamming, functions.py) and zero biases: the
    units are filled in blocks of fan_in, each block's incoming weights a square orthogonal matrix (QR of a Gaussian,
    signs fixed by R's diagonal), so every unit's incoming weights have norm 1 at any width. The two agree when
    fan_out <= fan_in up to the random draw. Each replica draws from its own "init" stream.
    """

    RUNTIME_ARGUMENTS: ClassVar[tuple[str, ...]] = ("replicas", "inputs", "outputs")
    CHECKS: ClassVar[dict[str, Check]] = {**ReplicaNet.CHECKS, "hidden": _hidden_widths,
                                          "init": choice(*INITS)}
    output_kind = "values"

    def __init__(self, replicas: int, inputs: int, outputs: int, hidden: Sequence[int] = (), activation: str = "relu",
                 m_factor: int = 1, init: str = "uniform"):
        super().__init__()
        widths = [m_factor * width for width in hidden]
        if any(width < 0 or int(width) != width for width in widths):
            raise ValueError(f"model.hidden scaled by model.m_factor gives {widths}: widths must be integers >= 0")
        self.replicas, self.m_factor, self.activation, self.init = replicas, m_factor, activation, init
        self.hidden = [int(width) for width in widths if width > 0]
        sizes = [inputs, *self.hidden, outputs]
        self.layers = torch.nn.ModuleList(ReplicaLinear(replicas, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = torch.nn.ModuleList(ReplicaActivation(activation, replicas) for _ in self.hidden)

    def reset_parameters(self, replica_seeds: Sequence[int]) -> None:
        if self.init == "uniform":
            return super().reset_parameters(replica_seeds)
        generators = [replica_generator(seed, "init") for seed in replica_seeds]
        with torch.no_grad():
            for layer in self.layers:
                layer.bias.zero_()
                for k, generator in enumerate(generators):
                    if self.init == "orthogonal_units":
                        orthogonal_units_(layer.weight[k], generator)
                    else:
                        torch.nn.init.orthogonal_(layer.weight[k], generator=generator)

    @staticmethod
    def relative_step_work(model: dict, task: dict) -> float:
        """Rough work of one replica-step, only to order a sweep's jobs (`overparam.search.schedule`): the batch
        times the hidden layers' weights (the input and output sizes are the task's, the same across a width sweep)."""
        widths = [int(model.get("m_factor", 1)) * int(width) for width in model.get("hidden", [])]
        return int(task.get("batch_size", 1)) * (sum(a * b for a, b in zip(widths, widths[1:])) + sum(widths) + 1)

    def grid_point(self) -> dict:
        return {"hidden": self.hidden}

    def forward(self, x: torch.Tensor, dropout_generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """`[K, B, inputs]` -> `[K, B, outputs]`; `dropout_generators` is part of every net's call and unused here."""
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return self.layers[-1](x)

    @torch.no_grad()
    def export_replica(self, replica: int) -> torch.nn.Sequential:
        """`nn.Linear` layers and activations: `[B, inputs] -> [B, outputs]`."""
        from overparam.nets.export import activation_module

        modules: list[torch.nn.Module] = []
        for index, layer in enumerate(self.layers):
            fan_in, fan_out = layer.weight.shape[1:]
            linear = torch.nn.Linear(fan_in, fan_out, dtype=layer.weight.dtype)
            linear.weight.copy_(layer.weight[replica].T)
            linear.bias.copy_(layer.bias[replica, 0])
            modules.append(linear)
            if index < len(self.acts):
                modules.append(activation_module(self.acts[index], replica))
        return torch.nn.Sequential(*modules).eval()

    @torch.no_grad()
    def import_replica(self, module: torch.nn.Module, replica: int) -> None:
        linears = [m for m in module if isinstance(m, torch.nn.Linear)]
        if len(linears) != len(self.layers):
            raise ValueError(f"module has {len(linears)} linear layers, the net {len(self.layers)}")
        for layer, source in zip(self.layers, linears):
            layer.weight[replica].copy_(source.weight.T)
            layer.bias[replica, 0].copy_(source.bias)
        for act, source in zip([a for a in self.acts if a.name == "prelu"],
                               [m for m in module if isinstance(m, torch.nn.PReLU)]):
            act.slope[replica].fill_(float(source.weight))
