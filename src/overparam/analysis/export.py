"""One replica of a replica-batched net as a plain torch module, saved as a file that loads without overparam.

A `LifeConvNet` replica becomes an `nn.Sequential` of `nn.Conv2d` and activations taking `[B, 1, H, W]` boards
to `[B, 1, H, W]` outputs: logits for the sigmoid head (apply `torch.sigmoid` for probabilities, as the net's
own `forward` does), probabilities for the clamp head (the last activation followed by `nn.Hardtanh(0, 1)`) and for
the sigmoid_bceloss head (ending in `nn.Sigmoid`, as Firner's net does).
Padding follows the net's boundary: `dead` is zero padding, `wrap` circular. Firner's Dropout2d sits where the net
has it and is off in eval mode. A `ReplicaMLP` replica becomes `nn.Linear` layers and activations.

    module = export_replica(net, 3); save_replica(module, "replica3.pt")
    torch.load("replica3.pt", weights_only=False)   # plain torch; overparam need not be installed

The replica net stores a 3x3 conv as a matmul over neighborhoods: weight `[K, 9 * C, out]`, row
`offset * C + channel` with offsets in `overparam.life.STENCIL` order (row-major (dy, dx)); `nn.Conv2d`
cross-correlates, so kernel[out, channel, dy + 1, dx + 1] is that row: no flip.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..nets.life_conv import LifeConvNet
from ..nets.mlp import ReplicaMLP
from ..nets.replica import LEAKY_SLOPE


def _activation(act, replica: int) -> nn.Module:
    if act.name == "relu":
        return nn.ReLU()
    if act.name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    if act.name == "elu":
        return nn.ELU()
    if act.name == "gelu":
        return nn.GELU()
    if act.name == "silu":
        return nn.SiLU()
    prelu = nn.PReLU(num_parameters=1)
    with torch.no_grad():
        prelu.weight.copy_(act.slope[replica].reshape(1))
    return prelu


def _conv_weight(net: LifeConvNet, index: int) -> tuple[int, int]:
    """(kernel size, input channels) of layer `index` of a LifeConvNet."""
    block, position = divmod(index, net.layers_per_block)
    fan_in = net.layers[index].weight.shape[1]
    return (3, fan_in // 9) if position == 0 and block < net.blocks else (1, fan_in)


@torch.no_grad()
def export_replica(net: nn.Module, replica: int) -> nn.Sequential:
    """Replica `replica` of `net` as a plain `nn.Sequential` (in eval mode) giving the same outputs."""
    if isinstance(net, ReplicaMLP):
        return _export_mlp(net, replica)
    if not isinstance(net, LifeConvNet):
        raise TypeError(f"cannot export a {type(net).__name__}")
    padding_mode = "circular" if net.boundary == "wrap" else "zeros"
    modules: list[nn.Module] = []
    last = len(net.layers) - 1
    for index, (layer, act) in enumerate(zip(net.layers, net.acts)):
        size, channels = _conv_weight(net, index)
        fan_out = layer.weight.shape[2]
        conv = nn.Conv2d(channels, fan_out, size, padding=size // 2, padding_mode=padding_mode,
                         dtype=layer.weight.dtype)
        weight = layer.weight[replica]  # [size * size * channels, out], row = offset * channels + channel
        conv.weight.copy_(weight.reshape(size, size, channels, fan_out).permute(3, 2, 0, 1))
        conv.bias.copy_(layer.bias[replica, 0])
        modules.append(conv)
        block, position = divmod(index, net.layers_per_block)
        if size == 3 and net.dropout > 0 and block < net.blocks - 1:
            modules.append(nn.Dropout2d(net.dropout))
        if index < last or net.head == "clamp":
            modules.append(_activation(act, replica))
        if index == last and net.head == "clamp":
            modules.append(nn.Hardtanh(0.0, 1.0))
        if index == last and net.head == "sigmoid_bceloss":  # Firner's net ends in nn.Sigmoid
            modules.append(nn.Sigmoid())
    return nn.Sequential(*modules).eval()


def _export_mlp(net: ReplicaMLP, replica: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    for index, layer in enumerate(net.layers):
        fan_in, fan_out = layer.weight.shape[1:]
        linear = nn.Linear(fan_in, fan_out, dtype=layer.weight.dtype)
        linear.weight.copy_(layer.weight[replica].T)
        linear.bias.copy_(layer.bias[replica, 0])
        modules.append(linear)
        if index < len(net.acts):
            modules.append(_activation(net.acts[index], replica))
    return nn.Sequential(*modules).eval()


@torch.no_grad()
def import_replica(module: nn.Sequential, net: nn.Module, replica: int) -> None:
    """Write an exported module's weights back into slot `replica` of `net` (same architecture)."""
    layers = [m for m in module if isinstance(m, (nn.Conv2d, nn.Linear))]
    slopes = [m for m in module if isinstance(m, nn.PReLU)]
    if len(layers) != len(net.layers):
        raise ValueError(f"module has {len(layers)} weight layers, the net {len(net.layers)}")
    for layer, source in zip(net.layers, layers):
        if isinstance(source, nn.Conv2d):
            out_channels, channels, size, _ = source.weight.shape
            layer.weight[replica].copy_(source.weight.permute(2, 3, 1, 0).reshape(size * size * channels, out_channels))
        else:
            layer.weight[replica].copy_(source.weight.T)
        layer.bias[replica, 0].copy_(source.bias)
    for act, source in zip([a for a in net.acts if a.name == "prelu"], slopes):
        act.slope[replica].fill_(float(source.weight))


def save_replica(module: nn.Module, path: str | Path) -> Path:
    """`torch.save` of the whole module: `torch.load(path, weights_only=False)` gives it back, torch only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module, path)
    return path


def load_replica(path: str | Path) -> nn.Module:
    return torch.load(path, map_location="cpu", weights_only=False)


def net_from_checkpoint(checkpoint: str | Path, config) -> nn.Module:
    """The replica-batched net of a job checkpoint (`checkpoints/last.ckpt`), built from the job's config
    (the resolved dict in result.json or `.hydra/config.yaml`, or a DictConfig)."""
    from omegaconf import OmegaConf

    from ..build import build_net, build_task
    from ..seeds import replica_seeds

    config = OmegaConf.create(config) if isinstance(config, dict) else config
    task = build_task(config.task)
    net = build_net(config.model, task, replica_seeds(config.seed, config.trials))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict({key[len("net."):]: value for key, value in state.items() if key.startswith("net.")})
    return net


def export_checkpoint(checkpoint: str | Path, config, replica: int, path: str | Path) -> Path:
    """Replica `replica` of a job checkpoint, saved as a plain torch module at `path`."""
    return save_replica(export_replica(net_from_checkpoint(checkpoint, config), replica), path)
