"""numba kernels for the integer part of a Life training step: neighborhood codes, targets and pattern counts.

Importing this module needs numba; `overparam.tasks.life.kernels.codes` decides whether it is used. Every kernel
computes exactly what the torch code in `FlatBoards` / `LifeTask` computes (integers: the results are equal bit
for bit), replica by replica in the flat layout, in one pass per generation instead of a pass per torch op (pads,
adds, casts, lookups, masks, bincount), with the replica's row in cache.

Codes follow `FlatBoards.codes`: bit j is the cell at stencil offset j (`rules.STENCIL`, row-major (dy, dx)), so
code = r(row above) + 8 r(own row) + 64 r(row below) with r = left + 2 center + 4 right. Loops index slices from
0 so that LLVM can vectorize the code passes (the table lookups and the count are gathers and scatters).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _copy(source, target):
    """target[:] = source, as a loop: numba's slice assignment is a generic strided copy, several times slower."""
    for p in range(target.shape[0]):
        target[p] = source[p]


@njit(cache=True)
def _flat_codes(buffer, margin, row, length, rows, codes):
    """Codes of the flat row `buffer[margin : margin + length]` (zeros or padding values around it, margin >= row +
    1) into `codes[:length]`: every position, padding included, as `FlatBoards.codes` gives them. `rows` is
    scratch of length + 2 row."""
    span = length + 2 * row
    left = buffer[margin - row - 1 : margin - row - 1 + span]
    center = buffer[margin - row : margin - row + span]
    right = buffer[margin - row + 1 : margin - row + 1 + span]
    for q in range(span):
        rows[q] = left[q] + 2 * center[q] + 4 * right[q]  # < 8: uint8
    above, middle, below = rows[:length], rows[row : row + length], rows[2 * row : 2 * row + length]
    for p in range(length):
        codes[p] = np.int32(above[p]) + 8 * np.int32(middle[p]) + 64 * np.int32(below[p])


@njit(cache=True)
def _refresh(cells, interior, wrap, boards, height, width, row, board_length):
    """`FlatBoards.refresh` in place on the flat row `cells [L]`: zero padding (dead) or the wrapped ring."""
    if not wrap:
        for p in range(boards * board_length):
            cells[p] *= interior[p]
        return
    for b in range(boards):
        base = b * board_length
        for y in range(1, height + 1):
            line = base + y * row
            cells[line] = cells[line + width]
            cells[line + width + 1] = cells[line + 1]
        for x in range(row):
            cells[base + x] = cells[base + height * row + x]
            cells[base + (height + 1) * row + x] = cells[base + row + x]


@njit(cache=True)
def _embed(boards_k, cells, wrap, row, board_length):
    """`FlatBoards.embed` of one replica's boards `[B, H, W]` into the flat row `cells [L]`."""
    boards, height, width = boards_k.shape
    start = 1 if wrap else 0
    for p in range(cells.shape[0]):
        cells[p] = 0
    for b in range(boards):
        for y in range(height):
            at = b * board_length + (y + start) * row + start
            line, source = cells[at : at + width], boards_k[b, y]
            for x in range(width):
                line[x] = source[x]
    if wrap:
        _refresh(cells, cells, True, boards, height, width, row, board_length)


@njit(cache=True)
def _next_state(buffer, margin, row, length, birth, survive, moore, sums, out):
    """The next generation of the flat row `buffer[margin : margin + length]` into `out` (every position, padding
    included, as the rule's table looked up by `FlatBoards.codes` gives it): bit n of `survive` (alive cells) or
    `birth` (dead ones) for n live neighbors. Arithmetic instead of a table lookup, so that it vectorizes."""
    cells = buffer[margin : margin + length]
    up, down = buffer[margin - row : margin - row + length], buffer[margin + row : margin + row + length]
    left, right = buffer[margin - 1 : margin - 1 + length], buffer[margin + 1 : margin + 1 + length]
    if moore:  # row sums of left, center, right, for every position from one row above to one row below
        span = length + 2 * row
        before = buffer[margin - row - 1 : margin - row - 1 + span]
        at = buffer[margin - row : margin - row + span]
        after = buffer[margin - row + 1 : margin - row + 1 + span]
        for q in range(span):
            sums[q] = before[q] + at[q] + after[q]
        above, middle, below = sums[:length], sums[row : row + length], sums[2 * row : 2 * row + length]
        for p in range(length):
            alive = np.int32(cells[p])
            neighbors = np.int32(above[p]) + np.int32(middle[p]) + np.int32(below[p]) - alive
            out[p] = ((survive if alive else birth) >> neighbors) & 1
    else:
        for p in range(length):
            alive = np.int32(cells[p])
            neighbors = np.int32(up[p]) + np.int32(down[p]) + np.int32(left[p]) + np.int32(right[p])
            out[p] = ((survive if alive else birth) >> neighbors) & 1


@njit(cache=True)
def _generations(buffer, margin, length, birth, survive, moore, steps, interior, wrap, boards, height, width, row,
                 board_length, rows, first_codes, following):
    """From the flat state in `buffer[margin : margin + length]`: its codes into `first_codes`, and the state after
    `steps` generations left in the buffer (as `LifeTask._flat_targets`: no refresh after the last one)."""
    cells = buffer[margin : margin + length]
    _flat_codes(buffer, margin, row, length, rows, first_codes)
    for step in range(steps):
        if step:
            _refresh(cells, interior, wrap, boards, height, width, row, board_length)
        _next_state(buffer, margin, row, length, birth, survive, moore, rows, following)
        _copy(following, cells)


@njit(cache=True)
def flat_codes_and_targets(alive, birth, survive, moore, steps, interior, wrap, boards, height, width, row,
                           board_length, margin, codes, targets):
    """From flat 0/1 boards `alive [K, L]` (uint8, `FlatBoards.embed`): their codes `codes [K, L]` (int32) and
    the state after `steps` generations `targets [K, L]` (uint8), as `grid.codes(alive)` and
    `LifeTask._flat_targets` give them (padding positions included). `birth`, `survive`: the rule's counts as bits
    (`fast_codes.rule_bits`); `moore`: the neighborhood is Moore's (else von Neumann's)."""
    replicas, length = alive.shape
    buffer = np.zeros(length + 2 * margin, np.uint8)
    rows = np.empty(length + 2 * row, np.uint8)
    following = np.empty(length, np.uint8)
    for k in range(replicas):
        _copy(alive[k], buffer[margin : margin + length])
        _generations(buffer, margin, length, birth, survive, moore, steps, interior, wrap, boards, height, width, row,
                     board_length, rows, codes[k], following)
        _copy(buffer[margin : margin + length], targets[k])


@njit(cache=True)
def pattern_target_counts(cells, birth, survive, moore, steps, interior, wrap, row, board_length, margin, counts):
    """`counts [K, 1040]` (int64, zeros in) += how many cells of `cells [K, B, H, W]` (0/1 uint8) have 3x3 pattern c
    and, `steps` generations later, state t, at index 2c + t (`LifeTask.pattern_target_counts`); the last 16 bins
    collect the padding positions."""
    replicas, boards, height, width = cells.shape
    length = boards * board_length
    buffer = np.zeros(length + 2 * margin, np.uint8)
    rows = np.empty(length + 2 * row, np.uint8)
    first_codes = np.empty(length, np.int32)
    following = np.empty(length, np.uint8)
    bins = np.empty(length, np.int32)
    state = buffer[margin : margin + length]
    for k in range(replicas):
        _embed(cells[k], state, wrap, row, board_length)
        _generations(buffer, margin, length, birth, survive, moore, steps, interior, wrap, boards, height, width, row,
                     board_length, rows, first_codes, following)
        # Padding positions go to 16 spare bins, 1024 + p % 16: one spare bin would make the runs of padding
        # (a row of them after every board) a chain of increments of one counter (1.4x slower in all).
        for p in range(length):
            bins[p] = interior[p] * (2 * first_codes[p] + state[p]) + (1 - interior[p]) * (1024 + (p & 15))
        out = counts[k]
        for p in range(length):
            out[bins[p]] += 1
