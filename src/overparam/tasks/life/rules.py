"""Life-like rules: the B.../S... rule string, the two neighborhoods, and the 3x3 stencil they live on."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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
    """A Life-like rule: a dead cell is born with a neighbor count in `birth`, a live one survives with one in
    `survive`."""

    birth: frozenset[int]
    survive: frozenset[int]
    neighborhood: str

    @property
    def notation(self) -> str:
        """The rule as `B<digits>/S<digits>`, digits ascending."""
        return "B" + "".join(map(str, sorted(self.birth))) + "/S" + "".join(map(str, sorted(self.survive)))

    @property
    def neighbors(self) -> int:
        return len(NEIGHBOR_INDICES[self.neighborhood])

    def alive_next(self, alive: int, neighbors: int) -> bool:
        return neighbors in (self.survive if alive else self.birth)

    def alive_intervals(self) -> list[tuple[int, int]]:
        """Maximal runs [lo, hi] of the code s = 2 * neighbors + alive for which the cell is alive next.

        Every (alive, neighbors) pair has its own code, so the rule is exactly the union of these
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
    """Parse a `B.../S...` rule string such as `B3/S23`; counts above the neighborhood's size are rejected."""
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
            f"rule={rule!r} counts {too_many} neighbors, but the {neighborhood} neighborhood has only {maximum}"
        )
    return Rule(frozenset(birth), frozenset(survive), neighborhood)


def blocks_for(steps: int, d_factor: float) -> int:
    """Firner's depth: a net predicting `steps` generations has floor(steps * d_factor) blocks (the epsilon keeps
    3 * 0.7 from flooring to 2)."""
    return math.floor(steps * d_factor + 1e-9)
