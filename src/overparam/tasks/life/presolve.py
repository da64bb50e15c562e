"""The hand-built exact solution of any Life-like rule, written into a LifeConvNet's replicas."""

from __future__ import annotations

import torch

from overparam.tasks.life.rules import CENTER, NEIGHBOR_INDICES, Rule


@torch.no_grad()
def write_solution(net, rule: Rule) -> None:
    """Overwrite every replica with an exact solution of `rule` (any Life-like rule, either neighborhood).

    With s = 2 * neighbors + alive, the next state is 1 exactly on a few runs [lo, hi] of s
    (`Rule.alive_intervals`). Per run the 3x3 conv has two units, a = act(4 (lo - 1/2 - s)) and
    b = act(4 (s - hi - 1/2)), whose sum is 0 on the run (with a margin of 1/2) and >= 2 off it;
    the next layer outputs on = act(1 - a - b), exactly 1 on the run and 0 off it, and the block
    returns the sum of the runs' `on`. It needs m_factor >= number of runs (1 for B3/S23).
    For leaky_relu, a + b still cancels exactly (their linear parts in s cancel), and for
    saturating activations (elu, gelu, silu) all pre-activations are scaled up by `scale` so that
    act(scale * z) / scale is relu(z) to ~1e-3. PReLU slopes are set to 0 (exact relu).
    """
    intervals = rule.alive_intervals()
    m = net.m_factor
    if len(intervals) > m:
        raise ValueError(
            f"model.presolve needs model.m_factor >= {len(intervals)} for rule {rule} "
            f"(one unit per run of alive codes), got m_factor={m}"
        )
    act = net.acts[0]
    if net.layout == "springer_kenyon" and act.name == "leaky_relu":
        raise ValueError(
            "model.presolve is not exact for activation=leaky_relu with layout=springer_kenyon "
            "(its negative outputs feed the next conv); use relu, prelu, elu, gelu or silu"
        )
    for a in net.acts:
        if a.name == "prelu":
            a.slope.zero_()
    alpha = act.negative_slope if act.name != "prelu" else 0.0
    scale = 1.0 if act.name in ("relu", "leaky_relu", "prelu") else 1000.0
    for layer in net.layers:
        layer.weight.zero_()
        layer.bias.zero_()

    stencil = torch.zeros(9)
    stencil[NEIGHBOR_INDICES[rule.neighborhood]] = 2.0
    stencil[CENTER] = 1.0
    for block in range(net.blocks):
        first = net.layers[block * net.layers_per_block]
        second = net.layers[block * net.layers_per_block + 1]
        channels = first.weight.shape[1] // 9
        # Input to block 0 is the 0/1 board; later blocks get `scale` times the state, summed over channels.
        input_scale = 1.0 if block == 0 else scale
        kernel = stencil.repeat_interleave(channels) / input_scale
        for i, (lo, hi) in enumerate(intervals):
            first.weight[:, :, 2 * i] = -4.0 * scale * kernel
            first.bias[:, 0, 2 * i] = 4.0 * scale * (lo - 0.5)
            first.weight[:, :, 2 * i + 1] = 4.0 * scale * kernel
            first.bias[:, 0, 2 * i + 1] = -4.0 * scale * (hi + 0.5)
            # on = 1 - (a + b - alpha * (sum of both pre-activations)) / (1 - alpha)
            second.weight[:, 2 * i, i] = -1.0 / (1.0 - alpha)
            second.weight[:, 2 * i + 1, i] = -1.0 / (1.0 - alpha)
            constant = 4.0 * (lo - hi - 1.0)
            second.bias[:, 0, i] = scale * (1.0 + alpha * constant / (1.0 - alpha))
        if net.layout == "firner":
            third = net.layers[block * 3 + 2]
            _write_output(net, third, block == net.blocks - 1, len(intervals), scale)
    if net.layout == "springer_kenyon":
        _write_output(net, net.layers[-1], True, len(intervals), scale)


def _write_output(net, layer, final: bool, runs: int, scale: float) -> None:
    """The layer that sums the runs' `on` units into the cell's next state."""
    if final and net.head in ("sigmoid", "sigmoid_bceloss"):
        # Firner's sigmoid head: logit = 20 * state - 10, so sigmoid is within 5e-5 of 0/1.
        layer.weight[:, :runs, 0] = 20.0 / scale
        layer.bias[:, 0, 0] = -10.0
    else:
        layer.weight[:, :runs, 0] = 1.0
        layer.bias[:, 0, 0] = 0.0
