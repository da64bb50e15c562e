"""The integer part of a Life training step (codes, targets, pattern counts) in one numba pass, where it applies.

`LifeTask` makes each step's neighborhood codes, targets and (one-block nets) pattern counts with a dozen torch
ops, each a pass over `[K, L]` bytes or ints: at K = 32 they cost more than the one-block net itself. The kernels
in `codes_kernels` compute the same integers in one pass per generation. The torch code stays the reference and
the fallback: these functions return None, and the caller runs the torch code, when the tensors are not on the CPU,
numba is not importable, or `OVERPARAM_FUSED` is 0 (`overparam.tasks.life.kernels.KERNELS`).
Results are integers, equal bit for bit either way (tests/test_fast_codes.py).
"""

from __future__ import annotations

import torch

from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import KERNELS
from overparam.tasks.life.rules import Rule


def _load(device):
    return KERNELS.load("codes_kernels", device)


def rule_bits(rule: Rule) -> tuple[int, int, bool]:
    """(birth, survive, moore): bit n of birth / survive set when n live neighbors make a dead cell born / a live
    one survive; whether the neighborhood is Moore's (8 neighbors) or von Neumann's (4)."""
    return sum(1 << n for n in rule.birth), sum(1 << n for n in rule.survive), rule.neighborhood == "moore"


def pattern_target_counts(cells: torch.Tensor, rule: Rule, steps: int, boundary: str):
    """`[K, 512, 2]` float counts of (3x3 pattern, state `steps` generations later) over 0/1 uint8 `cells
    [K, B, H, W]`, or None when the kernel does not apply."""
    kernels = _load(cells.device)
    if kernels is None or cells.dtype != torch.uint8 or steps < 1:
        return None
    replicas, boards, height, width = cells.shape
    grid = FlatBoards(boards, height, width, boundary)
    counts = torch.zeros(replicas, 1040, dtype=torch.int64)  # 16 spare bins for padding positions
    kernels.pattern_target_counts(cells.contiguous().numpy(), *rule_bits(rule), steps,
                                  grid.interior_mask(torch.uint8).numpy(), boundary == "wrap", grid.row,
                                  grid.board_length, grid.margin, counts.numpy())
    return counts[:, :1024].reshape(replicas, 512, 2).float()


def flat_codes_and_targets(alive: torch.Tensor, grid: FlatBoards, rule: Rule, steps: int):
    """(`grid.codes(alive)` int32, the flat state after `steps` generations uint8), both `[K, L]`, from flat 0/1
    uint8 boards `alive [K, L]`; or None when the kernel does not apply."""
    kernels = _load(alive.device)
    if kernels is None or alive.dtype != torch.uint8 or alive.dim() != 2 or steps < 1:
        return None
    codes = torch.empty(alive.shape, dtype=torch.int32)
    targets = torch.empty(alive.shape, dtype=torch.uint8)
    interior = grid.interior_mask(torch.uint8)
    kernels.flat_codes_and_targets(alive.contiguous().numpy(), *rule_bits(rule), steps, interior.numpy(),
                                   grid.boundary == "wrap", grid.boards, grid.height, grid.width, grid.row,
                                   grid.board_length, grid.margin, codes.numpy(), targets.numpy())
    return codes, targets
