"""Life-like cellular automata: rule strings, the exact simulator, and board sampling.

Plain torch, no Lightning or Hydra: usable from a notebook as `overparam.life_step(boards)`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

NEIGHBORHOODS = ("moore", "von_neumann")
BOUNDARIES = ("dead", "wrap")

# 3x3 stencil offsets (dy, dx) in row-major order; index 4 is the cell itself.
STENCIL = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
CENTER = 4
NEIGHBOR_INDICES = {
    "moore": [i for i in range(9) if i != CENTER],
    "von_neumann": [i for i, (dy, dx) in enumerate(STENCIL) if abs(dy) + abs(dx) == 1],
}

_RULE_PATTERN = re.compile(r"^B(\d*)/S(\d*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """A Life-like rule: a dead cell is born with a neighbour count in `birth`, a live one survives with one in `survive`."""

    birth: frozenset[int]
    survive: frozenset[int]
    neighborhood: str

    @property
    def neighbors(self) -> int:
        return len(NEIGHBOR_INDICES[self.neighborhood])

    def alive_next(self, alive: int, neighbors: int) -> bool:
        return neighbors in (self.survive if alive else self.birth)

    def alive_intervals(self) -> list[tuple[int, int]]:
        """Maximal runs [lo, hi] of the code s = 2 * neighbours + alive for which the cell is alive next.

        Every (alive, neighbours) pair has its own code, so the rule is exactly the union of these
        runs; the hand-built net spends one hidden unit per run.
        """
        codes = [s for s in range(2 * self.neighbors + 2) if self.alive_next(s % 2, s // 2)]
        intervals: list[tuple[int, int]] = []
        for s in codes:
            if intervals and intervals[-1][1] == s - 1:
                intervals[-1] = (intervals[-1][0], s)
            else:
                intervals.append((s, s))
        return intervals


def parse_rule(rule: str, neighborhood: str = "moore") -> Rule:
    """Parse a `B.../S...` rule string such as `B3/S23`; counts above the neighbourhood's size are rejected."""
    if neighborhood not in NEIGHBORHOODS:
        raise ValueError(f"neighborhood={neighborhood!r} is not one of {', '.join(NEIGHBORHOODS)}")
    match = _RULE_PATTERN.match(str(rule).strip())
    if match is None:
        raise ValueError(f"rule={rule!r} is not of the form B<digits>/S<digits>, e.g. B3/S23")
    maximum = len(NEIGHBOR_INDICES[neighborhood])
    birth, survive = ({int(c) for c in group} for group in match.groups())
    too_many = sorted(c for c in birth | survive if c > maximum)
    if too_many:
        raise ValueError(
            f"rule={rule!r} counts {too_many} neighbours, but the {neighborhood} neighbourhood has only {maximum}"
        )
    return Rule(frozenset(birth), frozenset(survive), neighborhood)


def neighbor_counts(boards: torch.Tensor, neighborhood: str = "moore", boundary: str = "dead") -> torch.Tensor:
    """Number of live neighbours of every cell of 0/1 boards `[..., H, W]`."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARIES)}")
    height, width = boards.shape[-2:]
    if boundary == "wrap":
        padded = torch.cat([boards[..., -1:, :], boards, boards[..., :1, :]], dim=-2)
        padded = torch.cat([padded[..., -1:], padded, padded[..., :1]], dim=-1)
    else:
        padded = torch.nn.functional.pad(boards, (1, 1, 1, 1))
    counts = torch.zeros_like(boards)
    for index in NEIGHBOR_INDICES[neighborhood]:
        dy, dx = STENCIL[index]
        counts = counts + padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
    return counts


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

    Each generation is one lookup of the rule's 512-entry table by every cell's 9-bit neighbourhood code,
    on uint8 boards kept in the flat layout between generations: a handful of passes over bytes instead
    of a count and a comparison per neighbour and per birth/survival count in the boards' dtype.
    """
    # Imported here because both modules build on this one's stencil and rule definitions.
    from .flatboards import FlatBoards
    from .patterns import rule_table

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
