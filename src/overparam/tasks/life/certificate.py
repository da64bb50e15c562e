"""Certified exactness: a Life net checked on every neighborhood it can ever see, not on a sample of boards.

A net of `blocks` blocks predicting `steps` generations: its output at a cell is a function of the cell's
(2 blocks + 1)^2 neighborhood, the target of its (2 steps + 1)^2 one. So checking every window of radius
R = max(blocks, steps) around a cell proves the net exact on every board of every size; and a window that fails
occurs on some board, so a net that fails the check is wrong somewhere. What a window is depends on the boundary:

- R = 1 (one block, one step): the 512 3x3 patterns (`LifeConvNet.pattern_outputs`, the very table a one-block net
  looks its outputs up in). Both boundaries give all 512 and nothing else: on a board of size >= 3 every pattern
  occurs around an interior cell; on a torus (size >= 3) every cell sees 9 distinct cells; with dead edges an edge
  cell sees its off-board neighbors as dead cells, which is again one of the 512 patterns.
- R = 2: the 2^25 5x5 windows. On a torus that is all (a torus of size >= 5 shows every window, a smaller one a
  subset). With dead edges, a cell on the edge is not the center of any such window: the first block's outputs at
  off-board positions are zeroed before the second block's conv (`FlatBoards.refresh`), and the generation-1 state
  there is dead, while a window with dead cells in those places would feed the second block the first block's
  output on an all-dead pattern (its bias, not 0). So edge cells are checked as their own classes, with their
  off-board inputs dead and their off-board first-block outputs 0: a cell on one edge (15 free cells, 2^15 windows,
  4 edges) and in a corner (9 free cells, 4 corners). Cells one in from an edge are interior windows whose outer
  ring is partly dead: a subset of the 2^25.
- R > 2: 2^49 windows and more; not checked (`certify` returns None).

The held-out evaluation of a deeper net may run its later blocks through the fused numba kernel, which sums in
another order than the plain layers used here; the two can disagree only on a cell whose probability is within
float32 rounding of one half.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch

from overparam.tasks.life.patterns import PATTERN_COUNT, rule_table
from overparam.tasks.life.rules import CENTER, STENCIL

WINDOW = 5  # the 5x5 window of R = 2; cell (y, x), y and x in -2..2, is bit (y + 2) * 5 + (x + 2) of a window code
CHUNK = 1 << 15  # windows per pass: [K, 2m, CHUNK] float32 hidden units near 80 MB at m = 20, K = 16
MAX_RADIUS = 2


def radius(net, steps: int) -> int:
    return max(net.blocks, steps)


def certify(net, rule, steps: int, boundary: str, exact: Sequence[bool], chunk: int = CHUNK,
            limit: int | None = None) -> list[bool] | None:
    """Per replica: exact on every neighborhood (module docstring); replicas not `exact` on the held-out set are not
    checked (False). None when the net's receptive field or the target's is wider than 5x5. `limit` checks only the
    first `limit` windows of each class (for tests: then it is no certificate)."""
    if radius(net, steps) > MAX_RADIUS:
        return None
    candidates = [k for k, ok in enumerate(exact) if ok]
    certified = [False] * len(exact)
    if not candidates:
        return certified
    if radius(net, steps) == 1:
        outputs = net.pattern_outputs()  # [K, 512]
        right = _rounded(net, outputs[candidates]) == rule_table(rule, outputs.device).to(outputs.dtype)
        for k, ok in zip(candidates, right.all(-1).tolist()):
            certified[k] = ok
        return certified
    remaining = list(candidates)  # replicas not yet seen wrong; one that is leaves the check at once
    sub = subnet(net, remaining)
    for free, onboard in window_classes(boundary):
        count = 1 << len(free) if limit is None else min(limit, 1 << len(free))
        for start in range(0, count, chunk):
            if not remaining:
                break
            numbers = torch.arange(start, min(start + chunk, count))
            windows = numbers if len(free) == WINDOW * WINDOW else _deposit(numbers, free)
            wrong = _wrong(sub, rule, steps, windows, onboard).tolist()
            if any(wrong):
                remaining = [k for k, bad in zip(remaining, wrong) if not bad]
                sub = subnet(net, remaining) if remaining else None
    for k in remaining:
        certified[k] = True
    return certified


def subnet(net, replicas: Sequence[int]):
    """A copy of `net` holding only `replicas` (every parameter carries the replica dimension first)."""
    index = torch.tensor(list(replicas), dtype=torch.long)
    sub = copy.deepcopy(net)
    with torch.no_grad():
        for parameter in sub.parameters():
            parameter.data = parameter.data.index_select(0, index.to(parameter.device)).clone()
    sub.replicas = len(replicas)
    return sub


def window_classes(boundary: str) -> list[tuple[list[int], torch.Tensor]]:
    """`(free cells, on-board mask of the 3x3 generation-1 positions)` per class of cell: the interior class (every
    cell free), and with dead edges the 4 edges and 4 corners (off-board inputs dead, off-board positions zeroed)."""
    sides = ("low", "mid", "high") if boundary == "dead" else ("mid",)
    classes = []
    for rows in sides:
        for cols in sides:
            on_y, on_x = _on_board(rows), _on_board(cols)
            free = [(y + 2) * WINDOW + (x + 2) for y in range(-2, 3) for x in range(-2, 3)
                    if _inside(y, rows) and _inside(x, cols)]
            onboard = torch.tensor([on_y[dy + 1] and on_x[dx + 1] for dy, dx in STENCIL])
            classes.append((free, onboard))
    return classes


def _on_board(side: str) -> list[bool]:
    """Whether the generation-1 positions at offsets -1, 0, 1 along one axis are on the board."""
    return [side != "low", True, side != "high"]


def _inside(offset: int, side: str) -> bool:
    """Whether an input cell at `offset` (-2..2) along one axis is on the board for a cell on `side`."""
    return not (side == "low" and offset < 0) and not (side == "high" and offset > 0)


def _deposit(numbers: torch.Tensor, free: list[int]) -> torch.Tensor:
    """Window codes with bit i of each number placed at cell `free[i]` (every other cell dead)."""
    windows = torch.zeros_like(numbers)
    for bit, cell in enumerate(free):
        windows |= ((numbers >> bit) & 1) << cell
    return windows


def _codes(windows: torch.Tensor) -> torch.Tensor:
    """`[9, N]` int64: the 3x3 code (bit j = `STENCIL[j]` alive) around each generation-1 position (dy, dx) of each
    window, positions in `STENCIL` order. Three rows of a window (15 bits, row above lowest) give the codes of the 3
    positions of the middle one (`_row_codes`), so a window's 9 codes are 3 lookups."""
    columns = _row_code_columns()
    codes = torch.empty(9, len(windows), dtype=torch.int64)
    for r, triple in enumerate(_row_triples(windows)):
        for x, column in enumerate(columns):
            torch.index_select(column, 0, triple, out=codes[3 * r + x])
    return codes


@functools.cache
def _row_code_columns() -> tuple[torch.Tensor, ...]:
    """`_row_codes` as 3 contiguous columns (x = -1, 0, 1): a lookup along a contiguous table is the fast one."""
    return tuple(column.contiguous() for column in _row_codes().unbind(1))


def _row_triples(windows: torch.Tensor) -> list[torch.Tensor]:
    """The window's rows (-2, -1, 0), (-1, 0, 1), (0, 1, 2), each packed in 15 bits: the inputs of the generation-1
    positions dy = -1, 0, 1."""
    mask = (1 << 3 * WINDOW) - 1
    return [(windows >> (WINDOW * row)) & mask for row in range(3)]


@functools.cache
def _row_codes() -> torch.Tensor:
    """`[2^15, 3]` int64: for rows (above, middle, below) packed as above + 32 middle + 1024 below (cell x of a row
    at bit x + 2), the 3x3 codes around the middle row's cells x = -1, 0, 1."""
    packed = torch.arange(1 << 3 * WINDOW)
    rows = [(packed >> (WINDOW * r)) & (2**WINDOW - 1) for r in range(3)]
    # the 3 cells x - 1, x, x + 1 of a row start at bit x + 1; STENCIL is row-major, so a code is 3 such triples
    return torch.stack([sum(((row >> (x + 1)) & 7) << (3 * r) for r, row in enumerate(rows)) for x in (-1, 0, 1)],
                       dim=1)


@functools.lru_cache(maxsize=8)
def _row_states(rule) -> torch.Tensor:
    """`[2^15]` int64: the generation-1 states of the 3 cells x = -1, 0, 1 of a row triple's middle row, as 3 bits."""
    table = rule_table(rule, "cpu").long()
    states = table[_row_codes()]  # [2^15, 3]
    return states[:, 0] | states[:, 1] << 1 | states[:, 2] << 2


def _targets(rule, steps: int, windows: torch.Tensor, onboard: torch.Tensor) -> torch.Tensor:
    """`[N]` int64: the center cell after `steps` (1 or 2) generations; generation-1 cells off the board are dead."""
    table = rule_table(rule, "cpu").long()
    triples = _row_triples(windows)
    if steps == 1:
        return table.index_select(0, _row_code_columns()[1].index_select(0, triples[1]))
    row_masks = [int(sum(int(onboard[3 * r + x]) << x for x in range(3))) for r in range(3)]
    states = _row_states(rule)
    code = sum((states.index_select(0, triple) & mask) << (3 * r)
               for r, (triple, mask) in enumerate(zip(triples, row_masks)))
    return table.index_select(0, code)


def _wrong(net, rule, steps: int, windows: torch.Tensor, onboard: torch.Tensor) -> torch.Tensor:
    """`[K]` bool: whether each replica of `net` gets the center cell of any of `windows` wrong."""
    targets = _targets(rule, steps, windows, onboard)
    outputs = _outputs(net, _codes(windows), onboard)  # [K, N]
    return (_rounded(net, outputs) != targets.to(outputs.device, outputs.dtype)).any(-1).cpu()


def _outputs(net, codes: torch.Tensor, onboard: torch.Tensor) -> torch.Tensor:
    """`[K, N]` the net's output at the center cell of each window given by its 9 generation-1 codes `[9, N]`."""
    if net.blocks == 1:
        table = net.pattern_outputs()
        return table.index_select(1, codes[CENTER].to(table.device))
    weight = net.layers[0].weight
    patterns = torch.arange(PATTERN_COUNT)
    bits = ((patterns.unsqueeze(0) >> torch.arange(9).unsqueeze(1)) & 1).to(weight.device, weight.dtype)
    first = net._run_layers(bits.expand(net.replicas, -1, -1), 0, net.layers_per_block)  # [K, C, 512]
    replicas, channels, _ = first.shape
    x = first.index_select(2, codes.reshape(-1).to(weight.device))  # [K, C, 9 N]
    x = x.view(replicas, channels, 9, -1).transpose(1, 2).reshape(replicas, 9 * channels, -1)  # offset * C + channel
    if not bool(onboard.all()):  # the first block's outputs off the board are zeroed, as `FlatBoards.refresh` does
        keep = onboard.to(x.device, x.dtype).repeat_interleave(channels)
        x = x * keep.view(1, -1, 1)
    return net._run_layers(x, net.layers_per_block, len(net.layers))[:, 0]


def _rounded(net, outputs: torch.Tensor) -> torch.Tensor:
    """0/1 predictions as the held-out evaluation makes them: probabilities (a sigmoid for logits), rounded."""
    return (torch.sigmoid(outputs) if net.output_kind == "logits" else outputs).round()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m overparam.tasks.life.certificate [--m 1 5 20] [--steps 2] [--boundary dead wrap] [--replicas 1]`:
    the seconds the certificate takes on presolved nets (every replica exact, so every window is checked)."""
    import argparse
    import time

    from overparam.tasks.life.net import LifeConvNet
    from overparam.tasks.life.rules import parse_rule

    parser = argparse.ArgumentParser(prog="python -m overparam.tasks.life.certificate", description=main.__doc__)
    parser.add_argument("--m", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--boundary", nargs="+", default=["dead", "wrap"])
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--rule", default="B3/S23")
    parser.add_argument("--neighborhood", default="moore")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rule = parse_rule(args.rule, args.neighborhood)
    for boundary in args.boundary:
        for m in args.m:
            net = LifeConvNet(replicas=args.replicas, m_factor=m, steps=args.steps, boundary=boundary, rule=rule,
                              presolve=True)
            net.reset_parameters(list(range(args.replicas)))
            net.eval()
            started = time.perf_counter()
            with torch.no_grad():
                certified = certify(net, rule, args.steps, boundary, [True] * args.replicas)
            seconds = time.perf_counter() - started
            print(f"steps={args.steps} m={m} boundary={boundary} replicas={args.replicas}: {seconds:.1f} s "
                  f"({seconds / args.replicas:.1f} s per replica), certified {sum(certified)}/{args.replicas}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
