"""One replica of a replica-batched net as a plain torch module, saved as a file that loads without overparam.

Each net exports itself (`ReplicaNet.export_replica(k)`: an `nn.Sequential` in eval mode giving replica k's
outputs for replica k's inputs, in the task's own per-replica layout) and takes an exported module back
(`import_replica`). This module holds what every net shares: the activations as torch modules, saving and loading.

    module = net.export_replica(3); save_replica(module, "replica3.pt")
    torch.load("replica3.pt", weights_only=False)   # plain torch; overparam need not be installed
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from overparam.nets.replica import LEAKY_SLOPE


def activation_module(act, replica: int) -> nn.Module:
    """A `ReplicaActivation` of one replica as a torch module (PReLU with that replica's slope)."""
    simple = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}
    if act.name in simple:
        return simple[act.name]()
    if act.name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    prelu = nn.PReLU(num_parameters=1)
    with torch.no_grad():
        prelu.weight.copy_(act.slope[replica].reshape(1))
    return prelu


def save_replica(module: nn.Module, path: str | Path) -> Path:
    """`torch.save` of the whole module: `torch.load(path, weights_only=False)` gives it back, torch only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module, path)
    return path


def load_replica(path: str | Path) -> nn.Module:
    return torch.load(path, map_location="cpu", weights_only=False)
