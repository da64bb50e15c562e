"""The exact Life-like simulator and random boards: plain torch, usable from a notebook as `overparam.life_step`."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.patterns import _device_key, rule_table
from overparam.tasks.life.rules import BOUNDARIES, Rule, parse_rule


def life_step(
    boards: torch.Tensor, rule: str | Rule = "B3/S23", neighborhood: str = "moore", boundary: str = "dead"
) -> torch.Tensor:
    """The next generation of 0/1 boards `[..., H, W]`, in the boards' dtype and device.

    `boundary="dead"` treats cells off the board as dead; `"wrap"` makes the board a torus.
    """
    if not isinstance(rule, Rule):
        rule = parse_rule(rule, neighborhood)
    elif rule.neighborhood != neighborhood:
        raise ValueError(f"rule was parsed for {rule.neighborhood!r}, not neighborhood={neighborhood!r}")
    return life_run(boards, 1, rule, boundary)


def life_run(boards: torch.Tensor, steps: int, rule: Rule, boundary: str = "dead") -> torch.Tensor:
    """The boards after `steps` generations, in the boards' dtype and device.

    Each generation is one lookup of the rule's 512-entry table by every cell's 9-bit neighborhood code,
    on uint8 boards kept in the flat layout between generations: a handful of passes over bytes instead
    of a count and a comparison per neighbor and per birth/survival count in the boards' dtype.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARIES)}")
    if steps == 0 or boards.numel() == 0:
        return boards.clone()
    *leading, height, width = boards.shape
    grid = FlatBoards(max(1, math.prod(leading)), height, width, boundary)
    table = rule_table(rule, boards.device)
    state = grid.embed((boards != 0).to(torch.uint8).reshape(-1, height, width))
    for step in range(steps):
        state = table.index_select(0, grid.codes(state).reshape(-1)).reshape(state.shape)
        if step < steps - 1:
            state = grid.refresh(state)
    return grid.interior(state).reshape(boards.shape).to(boards.dtype)


def sample_boards(
    generator: torch.Generator,
    count: int,
    size: int,
    density: float | tuple[float, float],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """`count` random 0/1 float boards of `size` x `size` drawn from `generator`.

    `density` is each cell's probability of being alive, or a `(low, high)` range from which
    every board draws its own density (Springer & Kenyon's random-density training data).
    """
    uniform = torch.rand(count, size, size, generator=generator, device=device)
    if isinstance(density, (int, float)):
        threshold = float(density)  # a Python scalar: no host-to-device copy per batch
    else:
        low, high = density
        per_board = torch.rand(count, 1, 1, generator=generator, device=device)
        threshold = low + (high - low) * per_board
    return (uniform < threshold).float()


def fair_coin_boards(generators: Sequence[torch.Generator], count: int, size: int, device) -> torch.Tensor:
    """`[K, count, size, size]` 0/1 uint8 boards with every cell alive with p = 1/2, replica k's from `generators[k]`.

    At p = 1/2 a cell is one random bit, so each replica draws 64 cells per 64-bit word (one small call per
    replica) and all replicas' bits are unpacked together: about 60x fewer random numbers and K times fewer
    unpacking calls than a uniform float per cell compared with 0.5.
    """
    cells = count * size * size
    words = -(-cells // 64)
    drawn = torch.stack(
        [torch.randint(-(2**63), 2**63 - 1, (words,), dtype=torch.int64, generator=g, device=device)
         for g in generators]
    )
    # Unpacked by one lookup per byte in a table of its 8 bits, as one int64: fewer passes than shift-and-mask.
    byte_bits = _byte_bits(_device_key(device))
    bits = byte_bits.index_select(0, drawn.view(torch.uint8).reshape(-1).to(torch.int32)).view(torch.uint8)
    return bits.reshape(len(generators), -1)[:, :cells].reshape(len(generators), count, size, size)


@functools.lru_cache(maxsize=8)
@torch.inference_mode(False)
def _byte_bits(device) -> torch.Tensor:
    """`[256]` int64 whose 8 bytes are the 8 bits of its index (lowest first). Made once per device and shared."""
    byte_bits = (torch.arange(256, device=device).unsqueeze(-1) >> torch.arange(8, device=device)) & 1
    return byte_bits.to(torch.uint8).view(torch.int64).reshape(256)
