"""Hidden units of a replica-batched LifeConvNet: which layers have them, and moving or removing one in place.

A hidden unit is an output channel of a layer whose output feeds another layer of the same net (which layers have
them: the net's layer description, `tasks.life.layers`).
A unit's weights are its column (and bias) in its own layer and the rows that read it in the next one:
one row for a 1x1 conv, nine (`offset * channels + unit`) when the next layer is a 3x3 conv.
"""

from __future__ import annotations

import torch

from overparam.tasks.life.net import LifeConvNet


def hidden_layers(net: LifeConvNet) -> list[int]:
    """Indices of the layers whose output channels are hidden units (`layers.LayerSpec.hidden`)."""
    return [spec.index for spec in net.specs if spec.hidden]


def _is_conv3x3(net: LifeConvNet, index: int) -> bool:
    return index < len(net.specs) and net.specs[index].kernel == 3


def reading_rows(net: LifeConvNet, index: int, unit: int) -> list[int]:
    """Rows of layer `index + 1`'s weight that read unit `unit` of layer `index`."""
    channels = net.layers[index].weight.shape[2]
    if _is_conv3x3(net, index + 1):
        return [offset * channels + unit for offset in range(9)]
    return [unit]


@torch.no_grad()
def permute_units(net: LifeConvNet, replica: int, index: int, order) -> None:
    """Reorder the units of layer `index` in replica `replica`: new unit a is old unit order[a]. The function the
    replica computes does not change."""
    order = torch.as_tensor(order, dtype=torch.long)
    layer, following = net.layers[index], net.layers[index + 1]
    layer.weight[replica] = layer.weight[replica][:, order]
    layer.bias[replica] = layer.bias[replica][:, order]
    channels = layer.weight.shape[2]
    if _is_conv3x3(net, index + 1):
        rows = (torch.arange(9).unsqueeze(1) * channels + order.unsqueeze(0)).reshape(-1)
        following.weight[replica] = following.weight[replica][rows]
    else:
        following.weight[replica] = following.weight[replica][order]


def unit_mask(net: LifeConvNet, removed: dict[int, set[int]], replica: int, masks: list[torch.Tensor]) -> None:
    """Zero in `masks` (one per layer weight and bias, shaped like the parameters) every weight of the removed
    units `{layer index: {unit, ...}}` of replica `replica`."""
    for index, units in removed.items():
        for unit in units:
            masks[2 * index][replica, :, unit] = 0
            masks[2 * index + 1][replica, :, unit] = 0
            masks[2 * index + 2][replica, reading_rows(net, index, unit), :] = 0


def full_masks(net: LifeConvNet) -> list[torch.Tensor]:
    """All-ones masks, one per weight and bias of `net.layers` in order (weight, bias, weight, bias, ...)."""
    return [torch.ones_like(p) for layer in net.layers for p in (layer.weight, layer.bias)]


@torch.no_grad()
def apply_masks(net: LifeConvNet, masks: list[torch.Tensor]) -> None:
    for parameter, mask in zip([p for layer in net.layers for p in (layer.weight, layer.bias)], masks):
        parameter.mul_(mask)
