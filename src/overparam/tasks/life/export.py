"""One replica of a `LifeConvNet` as a plain torch module, and back (`LifeConvNet.export_replica` /
`import_replica` call these).

The module maps one replica's boards `[B, H, W]` (0/1) to its outputs `[B, H, W]`: `nn.Unflatten` to one channel,
the `nn.Conv2d` layers and activations the layer description gives (`layers.layer_specs`), Dropout2d where the net
has it (off in eval mode), the head, `nn.Flatten` back. Outputs are logits for the sigmoid head (apply
`torch.sigmoid` for probabilities, as the net's own evaluation does), probabilities for the clamp head (the last
activation, then `nn.Hardtanh(0, 1)`) and for the sigmoid_bceloss head (ending in `nn.Sigmoid`, as Firner's net).
Padding follows the boundary: `dead` is zero padding, `wrap` circular.

The replica net stores a 3x3 conv as a matmul over neighborhoods: weight `[K, 9 * C, out]`, row
`offset * C + channel`, offsets in `rules.STENCIL` order (row-major (dy, dx)); `nn.Conv2d` cross-correlates, so
kernel[out, channel, dy + 1, dx + 1] is that row: no flip.
"""

from __future__ import annotations

import torch
from torch import nn

from overparam.nets.export import activation_module


@torch.no_grad()
def export_life_replica(net, replica: int) -> nn.Sequential:
    padding_mode = "circular" if net.boundary == "wrap" else "zeros"
    modules: list[nn.Module] = [nn.Unflatten(1, (1, -1))]  # [B, H, W] -> [B, 1, H, W]
    for spec, layer, act in zip(net.specs, net.layers, net.acts):
        conv = nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, padding=spec.kernel // 2,
                         padding_mode=padding_mode, dtype=layer.weight.dtype)
        weight = layer.weight[replica]  # [kernel * kernel * channels, out], row = offset * channels + channel
        conv.weight.copy_(weight.reshape(spec.kernel, spec.kernel, spec.in_channels, spec.out_channels)
                          .permute(3, 2, 0, 1))
        conv.bias.copy_(layer.bias[replica, 0])
        modules.append(conv)
        if spec.dropout:
            modules.append(nn.Dropout2d(net.dropout))
        if not spec.final or net.head == "clamp":
            modules.append(activation_module(act, replica))
        if spec.final and net.head == "clamp":
            modules.append(nn.Hardtanh(0.0, 1.0))
        if spec.final and net.head == "sigmoid_bceloss":  # Firner's net ends in nn.Sigmoid
            modules.append(nn.Sigmoid())
    modules.append(nn.Flatten(1, 2))  # [B, 1, H, W] -> [B, H, W]
    return nn.Sequential(*modules).eval()


@torch.no_grad()
def import_life_replica(module: nn.Sequential, net, replica: int) -> None:
    convs = [m for m in module if isinstance(m, nn.Conv2d)]
    if len(convs) != len(net.layers):
        raise ValueError(f"module has {len(convs)} conv layers, the net {len(net.layers)}")
    for layer, source in zip(net.layers, convs):
        out_channels, channels, size, _ = source.weight.shape
        layer.weight[replica].copy_(source.weight.permute(2, 3, 1, 0).reshape(size * size * channels, out_channels))
        layer.bias[replica, 0].copy_(source.bias)
    _import_slopes(module, net, replica)


def _import_slopes(module: nn.Sequential, net, replica: int) -> None:
    slopes = [m for m in module if isinstance(m, nn.PReLU)]
    for act, source in zip([a for a in net.acts if a.name == "prelu"], slopes):
        act.slope[replica].fill_(float(source.weight))
