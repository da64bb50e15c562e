"""The 512 3x3 neighborhoods of a 0/1 board, and a Life-like rule as a 512-entry table over them.

On 0/1 boards anything computed from one cell's 3x3 neighborhood alone (the next state, or a net's first
block, which is a 3x3 conv followed by per-cell layers) takes at most 512 values. Evaluating it once per
pattern and looking the result up by each cell's 9-bit code (`FlatBoards.codes`) gives exactly the same
numbers for a fraction of the work: a batch of 128 10x10 boards has 12,800 cells but only 512 patterns.
"""

from __future__ import annotations

import functools

import torch

from overparam.tasks.life.rules import CENTER, NEIGHBOR_INDICES, Rule

PATTERN_COUNT = 512


def _device_key(device) -> torch.device:
    """A cache key naming one device: "cuda" means the current GPU, so it gets its index."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def pattern_matrix(dtype=torch.float32, device=None) -> torch.Tensor:
    """`[9, 512]`: column c is the neighborhood with code c (row j = stencil offset j, `STENCIL` order).
    Made once per (dtype, device) and shared: read it, never write into it."""
    return _pattern_matrix(dtype, _device_key(device))


@functools.lru_cache(maxsize=16)
@torch.inference_mode(False)  # a cached tensor made under inference_mode could not be saved for backward later
def _pattern_matrix(dtype, device) -> torch.Tensor:
    codes = torch.arange(PATTERN_COUNT, device=device)
    return ((codes[None, :] >> torch.arange(9, device=device)[:, None]) & 1).to(dtype)


def rule_table(rule: Rule, device=None) -> torch.Tensor:
    """`[512]` uint8: the next state of the center cell of every neighborhood pattern.
    Made once per (rule, device) and shared, so no training step rebuilds it."""
    return _rule_table(rule, _device_key(device))


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)
def _rule_table(rule: Rule, device) -> torch.Tensor:
    bits = pattern_matrix(torch.int64, device)
    neighbors = bits[NEIGHBOR_INDICES[rule.neighborhood]].sum(0)
    alive = bits[CENTER]
    born = torch.zeros(PATTERN_COUNT, dtype=torch.bool, device=device)
    stays = torch.zeros_like(born)
    for count in rule.birth:
        born |= neighbors == count
    for count in rule.survive:
        stays |= neighbors == count
    return torch.where(alive == 1, stays, born).to(torch.uint8)
