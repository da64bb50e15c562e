"""numba kernels of one later Life block (see `overparam.tasks.life.kernels.blocks`); importing this module needs numba.

Shapes (replica k of K; cells t of a tile of TILE):
  x      [K, margin + Lt + margin]  the block's input, zero margins, Lt a multiple of TILE
  w1, b1 [K, 9, 2m], [K, 1, 2m]    3x3 conv, row j = neighbor at flat offset offsets[j]
  w2, b2 [K, 2m, m], [K, 1, m]
  w3, b3 [K, m, 1],  [K, 1, 1]
  out    [K, Lt]
Loops run with the tile's cells innermost, on 1D views indexed from 0 (no wraparound check), so that LLVM
vectorizes them; the widths 2m and m are compile-time constants (one compilation per m, a few seconds),
which lets LLVM unroll and keep rows in registers: 2-5x faster than the same code with runtime widths.
Every unit (hidden, output, and each neighbor slice's input gradient) is made in one pass over the tile, its
terms summed in registers and stored once: a pass per term (load, FMA, store) was 1.4-2x slower, bound by the
stores. The results are the same bits either way (same terms, same order); the weight gradients stay dot products
over the tile's cells in the loops they had (splitting them off changed LLVM's order of their partial sums).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

# The first block's kernel keeps h2 from its forward for its backward from this width on, and recomputes it below:
# measured at K = 20 (CPU ms, forward + backward), m = 20: 90 recomputed, 66 kept; m = 5: 12.6 and 15.0.
KEEP_UNITS_FROM_M = 10
TILE = 256  # cells per tile: 3m + 1 rows of TILE floats (about 60 kB at m = 20) stay in L2; 64 was 2x slower
# fastmath without `reassoc` for the units: a unit's sum over its inputs keeps its order, b + w0 x0 + w1 x1 + ...
# (each term an FMA), the order the earlier one-pass-per-term loops had; the gradient loops keep full fastmath,
# whose reassociation lets the dot products over a tile's cells vectorize.
IN_ORDER = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}


@functools.cache
def block_kernels(m: int, dropout: bool = False):
    """(forward, backward) for width m, compiled on first call. With `dropout` (a compile-time constant: the kernels
    without it are the same code as before it existed), the 3x3 conv's output of unit c at flat position p is
    multiplied by drop[k, c, p // board_length] before its activation (Dropout2d: one mask per board and channel),
    forward and backward; `drop` and `board_length` are then the kernels' last two arguments."""
    wide, narrow = 2 * m, m
    second_layer, output, backprop_1x1 = _one_by_one_layers(m)

    @njit(fastmath=IN_ORDER, cache=True)
    def hidden(x, k, base, offsets, w1, b1, w2, b2, slope, h1, h2, keeps):
        """The tile's post-activation hidden units h1 [2m, TILE] and h2 [m, TILE]: one pass over the tile per
        unit, its inputs' terms summed in their order (each an FMA) in registers, stored once. (`keeps` is
        `hidden_dropped`'s.)"""
        zero = np.float32(0.0)
        row = x[k]
        s0 = row[base + offsets[0] : base + offsets[0] + TILE]  # the 9 neighbor slices, named: a loop over
        s1 = row[base + offsets[1] : base + offsets[1] + TILE]  # offsets[j] inside the cell loop does not
        s2 = row[base + offsets[2] : base + offsets[2] + TILE]  # vectorize (20x slower)
        s3 = row[base + offsets[3] : base + offsets[3] + TILE]
        s4 = row[base + offsets[4] : base + offsets[4] + TILE]
        s5 = row[base + offsets[5] : base + offsets[5] + TILE]
        s6 = row[base + offsets[6] : base + offsets[6] + TILE]
        s7 = row[base + offsets[7] : base + offsets[7] + TILE]
        s8 = row[base + offsets[8] : base + offsets[8] + TILE]
        for c in range(wide):
            a0, a1, a2 = w1[k, 0, c], w1[k, 1, c], w1[k, 2, c]
            a3, a4, a5 = w1[k, 3, c], w1[k, 4, c], w1[k, 5, c]
            a6, a7, a8 = w1[k, 6, c], w1[k, 7, c], w1[k, 8, c]
            bias, unit = b1[k, 0, c], h1[c]
            for t in range(TILE):
                v = bias + a0 * s0[t]
                v = v + a1 * s1[t]
                v = v + a2 * s2[t]
                v = v + a3 * s3[t]
                v = v + a4 * s4[t]
                v = v + a5 * s5[t]
                v = v + a6 * s6[t]
                v = v + a7 * s7[t]
                v = v + a8 * s8[t]
                unit[t] = v if v > zero else slope * v
        for d in range(narrow):  # `second_layer`, written out: a closure that calls another compiled function
            bias, unit = b2[k, 0, d], h2[d]  # misses numba's disk cache in every new process (its key pickles it)
            for t in range(TILE):
                v = bias
                for c in range(wide):  # a compile-time count: unrolled, the weights held in registers
                    v = v + w2[k, c, d] * h1[c, t]
                unit[t] = v if v > zero else slope * v

    @njit(fastmath=IN_ORDER, cache=True)
    def hidden_dropped(x, k, base, offsets, w1, b1, w2, b2, slope, h1, h2, keeps):
        """`hidden` with each unit's conv output multiplied by its mask keeps [2m, TILE] (`_tile_masks`) before
        the activation."""
        zero = np.float32(0.0)
        row = x[k]
        s0 = row[base + offsets[0] : base + offsets[0] + TILE]
        s1 = row[base + offsets[1] : base + offsets[1] + TILE]
        s2 = row[base + offsets[2] : base + offsets[2] + TILE]
        s3 = row[base + offsets[3] : base + offsets[3] + TILE]
        s4 = row[base + offsets[4] : base + offsets[4] + TILE]
        s5 = row[base + offsets[5] : base + offsets[5] + TILE]
        s6 = row[base + offsets[6] : base + offsets[6] + TILE]
        s7 = row[base + offsets[7] : base + offsets[7] + TILE]
        s8 = row[base + offsets[8] : base + offsets[8] + TILE]
        for c in range(wide):
            a0, a1, a2 = w1[k, 0, c], w1[k, 1, c], w1[k, 2, c]
            a3, a4, a5 = w1[k, 3, c], w1[k, 4, c], w1[k, 5, c]
            a6, a7, a8 = w1[k, 6, c], w1[k, 7, c], w1[k, 8, c]
            bias, unit, keep = b1[k, 0, c], h1[c], keeps[c]
            for t in range(TILE):
                v = bias + a0 * s0[t]
                v = v + a1 * s1[t]
                v = v + a2 * s2[t]
                v = v + a3 * s3[t]
                v = v + a4 * s4[t]
                v = v + a5 * s5[t]
                v = v + a6 * s6[t]
                v = v + a7 * s7[t]
                v = v + a8 * s8[t]
                v = v * keep[t]
                unit[t] = v if v > zero else slope * v
        second_layer(k, w2, b2, slope, h1, h2)

    units = hidden_dropped if dropout else hidden

    @njit(fastmath=IN_ORDER, cache=True)
    def unit_gradients(k, w2, g2, h1, slope, g1):
        """g1 [2m, TILE], d loss / d (pre-activation of h1), from g2: one pass per unit, summed in order."""
        zero, one = np.float32(0.0), np.float32(1.0)
        for c in range(wide):
            unit, hid = g1[c], h1[c]
            for t in range(TILE):
                v = zero
                for d in range(narrow):
                    v = v + w2[k, c, d] * g2[d, t]
                unit[t] = v * (one if hid[t] > zero else slope)

    @njit(fastmath=IN_ORDER, cache=True)
    def input_gradients(k, base, offsets, w1, g1, gx):
        """gx += the tile's gradient for each of its 9 neighbor slices, offset by offset, unit by unit in order."""
        for j in range(9):
            at = base + offsets[j]
            sink = gx[k, at : at + TILE]
            for t in range(TILE):
                v = sink[t]
                for c in range(wide):
                    v = v + w1[k, j, c] * g1[c, t]
                sink[t] = v

    @njit(fastmath=True, cache=True)  # cached on disk per m (the widths are in the key)
    def forward(x, offsets, margin, w1, b1, w2, b2, w3, b3, slope, out_mode, out, drop=None, board_length=0):
        replicas, length = out.shape
        zero, one, slope = np.float32(0.0), np.float32(1.0), np.float32(slope)  # float32 only: no conversions
        h1 = np.empty((wide, TILE), np.float32)
        h2 = np.empty((narrow, TILE), np.float32)
        y = np.empty(TILE, np.float32)
        keeps = np.empty((wide if dropout else 1, TILE), np.float32)
        for k in range(replicas):
            for start in range(0, length, TILE):
                if dropout:
                    _tile_masks(drop, k, start, board_length, keeps)
                units(x, k, margin + start, offsets, w1, b1, w2, b2, slope, h1, h2, keeps)
                output(k, w3, b3, h2, y)
                target = out[k, start : start + TILE]
                for t in range(TILE):
                    v = y[t]
                    if out_mode != 0:
                        v = v if v > zero else slope * v
                    if out_mode == 2:
                        v = min(max(v, zero), one)
                    target[t] = v

    @njit(fastmath=True, cache=True)  # cached on disk per m (the widths are in the key)
    def backward(x, offsets, margin, w1, b1, w2, b2, w3, b3, slope, out_mode, grad, gx, gw1, gb1, gw2, gb2, gw3, gb3,
                 drop=None, board_length=0):
        replicas, length = grad.shape
        zero, slope = np.float32(0.0), np.float32(slope)
        h1 = np.empty((wide, TILE), np.float32)
        h2 = np.empty((narrow, TILE), np.float32)
        g1 = np.empty((wide, TILE), np.float32)
        g2 = np.empty((narrow, TILE), np.float32)
        y = np.empty(TILE, np.float32)
        gy = np.empty(TILE, np.float32)
        keeps = np.empty((wide if dropout else 1, TILE), np.float32)
        for k in range(replicas):
            for start in range(0, length, TILE):
                base = margin + start
                if dropout:
                    _tile_masks(drop, k, start, board_length, keeps)
                # recomputed: cheaper than stored. Keeping every tile's h1, h2, y from the forward (same bits)
                # was tried 2026-11-29: at m = 5, K = 32 they take 30 MB per block (L3 here: 32 MB), and their
                # write and reread cost more than the recompute: bench steps=3 m=5 went from 6.8x to 5.6x
                units(x, k, base, offsets, w1, b1, w2, b2, slope, h1, h2, keeps)
                output(k, w3, b3, h2, y)
                backprop_1x1(k, w2, w3, slope, out_mode, grad[k, start : start + TILE], y, h1, h2, gy, g1, g2, gw2, gb2,
                             gw3, gb3)
                if dropout:  # through the mask: d loss / d (the 3x3 conv's output)
                    _times(g1, keeps)
                # g1: d loss / d (pre-activation of h1)
                for c in range(wide):
                    total = zero
                    row = g1[c]
                    for t in range(TILE):
                        total += row[t]
                    gb1[k, 0, c] += total
                for j in range(9):
                    at = base + offsets[j]
                    source = x[k, at : at + TILE]
                    for c in range(wide):
                        row = g1[c]
                        dot = zero
                        for t in range(TILE):
                            dot += source[t] * row[t]
                        gw1[k, j, c] += dot
                input_gradients(k, base, offsets, w1, g1, gx)

    return forward, backward


@functools.cache
def _one_by_one_layers(m: int):
    """The kernels' per-tile pieces after the 3x3 conv, for width m (shared by `block_kernels` and
    `first_block_kernels`): the second layer, the output's pre-activation, and the gradients through both."""
    wide, narrow = 2 * m, m

    @njit(fastmath=IN_ORDER, cache=True)
    def second_layer(k, w2, b2, slope, h1, h2):
        """h2 [m, TILE] = act(b2 + w2 . h1): per unit one pass over the tile, its 2m terms summed in order."""
        zero = np.float32(0.0)
        for d in range(narrow):
            bias, unit = b2[k, 0, d], h2[d]
            for t in range(TILE):
                v = bias
                for c in range(wide):  # a compile-time count: unrolled, the weights held in registers
                    v = v + w2[k, c, d] * h1[c, t]
                unit[t] = v if v > zero else slope * v

    @njit(fastmath=IN_ORDER, cache=True)
    def output(k, w3, b3, h2, y):
        """The tile's output pre-activation y [TILE], in one pass."""
        bias = b3[k, 0, 0]
        for t in range(TILE):
            v = bias
            for d in range(narrow):
                v = v + w3[k, d, 0] * h2[d, t]
            y[t] = v

    @njit(fastmath=True, cache=True, inline="always")
    def backprop_1x1(k, w2, w3, slope, out_mode, incoming, y, h1, h2, gy, g1, g2, gw2, gb2, gw3, gb3):
        """From the tile's output gradient `incoming` [TILE]: g1 [2m, TILE] = d loss / d (pre-activation of h1),
        gw2, gb2, gw3, gb3 accumulated."""
        zero, one = np.float32(0.0), np.float32(1.0)
        # gy: d loss / d (output pre-activation), the activation's slope read off its output as torch's
        # in-place activations do; the clamp passes gradient only inside [0, 1]
        for t in range(TILE):
            g = incoming[t]
            if out_mode != 0:
                a = y[t] if y[t] > zero else slope * y[t]
                g = g if a > zero else slope * g
                if out_mode == 2 and (a < zero or a > one):
                    g = zero
            gy[t] = g
        total = zero
        for t in range(TILE):
            total += gy[t]
        gb3[k, 0, 0] += total
        for d in range(narrow):
            w = w3[k, d, 0]
            hid, row = h2[d], g2[d]
            dot = zero
            for t in range(TILE):
                dot += hid[t] * gy[t]
                row[t] = w * gy[t] * (one if hid[t] > zero else slope)
            gw3[k, d, 0] += dot
        # g2: d loss / d (pre-activation of h2)
        for d in range(narrow):
            total = zero
            row = g2[d]
            for t in range(TILE):
                total += row[t]
            gb2[k, 0, d] += total
        for c in range(wide):
            row, hid = g1[c], h1[c]
            for t in range(TILE):
                row[t] = zero
            for d in range(narrow):
                w = w2[k, c, d]
                source = g2[d]
                dot = zero
                for t in range(TILE):
                    row[t] += w * source[t]
                    dot += hid[t] * source[t]
                gw2[k, c, d] += dot
            for t in range(TILE):
                row[t] *= one if hid[t] > zero else slope

    return second_layer, output, backprop_1x1


@njit(fastmath=IN_ORDER, cache=True)
def _tile_masks(drop, k, start, board_length, keeps):
    """keeps[c, t] = drop[k, c, (start + t) // board_length]: a tile's Dropout2d mask per unit and position (past
    the last board, its mask: those positions are thrown away). Filled piece by piece, one piece per board."""
    boards = drop.shape[2]
    for c in range(keeps.shape[0]):
        row = keeps[c]
        board, first = start // board_length, 0
        while first < TILE:
            stop = min(TILE, (board + 1) * board_length - start)
            row[first:stop] = drop[k, c, min(board, boards - 1)]  # a slice: 7x faster than a loop from `first`
            board, first = board + 1, stop


@njit(fastmath=IN_ORDER, cache=True)
def _times(g, keeps):
    """g *= keeps, both [C, TILE]."""
    for c in range(g.shape[0]):
        row, keep = g[c], keeps[c]
        for t in range(TILE):
            row[t] *= keep[t]


@functools.cache
def first_block_kernels(m: int):
    """(forward, backward) of the first block with Dropout2d after its 3x3 conv, for width m, compiled on first call.

    The 3x3 conv of a 0/1 board is a lookup of its output per pattern, table [K, 2m, 512], by the cell's code;
    then per cell: times its board's channel mask drop [K, 2m, B], act, 1x1 to m, act, 1x1 to 1, act. Only the
    board cells are computed (`cells` [H * W]: their flat positions in a board, `board_length` apart), in tiles
    of TILE cells taken in board order, so a tile's pieces of one board share their masks; out [K, L] holds 0 at
    the padding positions, which is the refresh before block 2 on the dead boundary. backward: the same tile
    pass, recomputing the units, with the table's gradient added code by code.
    """
    wide, keep_units = 2 * m, m >= KEEP_UNITS_FROM_M
    second_layer, output, backprop_1x1 = _one_by_one_layers(m)

    @njit(fastmath=IN_ORDER, cache=True)
    def tile_cells(codes, k, cells, board_length, start, total, at, code):
        """The flat positions `at` and codes of cells start .. start + TILE - 1; past the last: at -1, code 0."""
        per_board = cells.shape[0]
        board, index = start // per_board, start % per_board
        for t in range(TILE):
            if start + t < total:
                at[t] = board * board_length + cells[index]
                code[t] = codes[k, at[t]]
            else:
                at[t], code[t] = -1, 0
            index += 1
            if index == per_board:
                board, index = board + 1, 0

    @njit(fastmath=IN_ORDER, cache=True)
    def first_layer(table, k, code, drop, start, per_board, slope, h1):
        """h1 = act(table[code] * the board's mask), piece by piece of one board. The lookup is scalar (LLVM does
        not gather on this CPU), so a dropped channel's piece skips it: act(0) = 0."""
        zero = np.float32(0.0)
        boards = drop.shape[2]
        for c in range(wide):
            row, unit = table[k, c], h1[c]
            board, first = start // per_board, 0
            while first < TILE:
                stop = min(TILE, (board + 1) * per_board - start)
                keep = drop[k, c, min(board, boards - 1)]
                if keep == zero:
                    unit[first:stop] = zero
                else:
                    for t in range(first, stop):
                        v = row[code[t]] * keep
                        unit[t] = v if v > zero else slope * v
                board, first = board + 1, stop

    @njit(fastmath=True, cache=True)
    def forward(table, codes, drop, cells, board_length, w2, b2, w3, b3, slope, out, kept):
        """out (zeros in) at the cells' positions; kept [K, tiles, m, TILE]: h2 for backward, from
        KEEP_UNITS_FROM_M on (below, unused)."""
        replicas, per_board = codes.shape[0], cells.shape[0]
        total = drop.shape[2] * per_board
        zero, slope = np.float32(0.0), np.float32(slope)
        h1, h2 = np.empty((wide, TILE), np.float32), np.empty((m, TILE), np.float32)
        y, at, code = np.empty(TILE, np.float32), np.empty(TILE, np.int64), np.empty(TILE, np.int32)
        for k in range(replicas):
            for start in range(0, total, TILE):
                tile_cells(codes, k, cells, board_length, start, total, at, code)
                first_layer(table, k, code, drop, start, per_board, slope, h1)
                if keep_units:
                    h2 = kept[k, start // TILE]  # C-contiguous: a strided view would not vectorize
                second_layer(k, w2, b2, slope, h1, h2)
                output(k, w3, b3, h2, y)
                for t in range(TILE):
                    if at[t] >= 0:
                        out[k, at[t]] = y[t] if y[t] > zero else slope * y[t]

    @njit(fastmath=True, cache=True)
    def backward(table, codes, drop, cells, board_length, w2, b2, w3, b3, slope, kept, grad, gtable, gw2, gb2, gw3,
                 gb3):
        """gtable, gw2, gb2, gw3, gb3 (zeros in) += the gradients from grad [K, L] (read at the cells only). h1 is
        looked up again, h2 read from `kept` or recomputed (KEEP_UNITS_FROM_M)."""
        replicas, per_board = codes.shape[0], cells.shape[0]
        total = drop.shape[2] * per_board
        zero, slope = np.float32(0.0), np.float32(slope)
        h1, g1 = np.empty((wide, TILE), np.float32), np.empty((wide, TILE), np.float32)
        h2, g2 = np.empty((m, TILE), np.float32), np.empty((m, TILE), np.float32)
        y, gy, incoming = np.empty(TILE, np.float32), np.empty(TILE, np.float32), np.empty(TILE, np.float32)
        at, code = np.empty(TILE, np.int64), np.empty(TILE, np.int32)
        boards = drop.shape[2]
        for k in range(replicas):
            for start in range(0, total, TILE):
                tile_cells(codes, k, cells, board_length, start, total, at, code)
                first_layer(table, k, code, drop, start, per_board, slope, h1)
                if keep_units:
                    h2 = kept[k, start // TILE]
                else:
                    second_layer(k, w2, b2, slope, h1, h2)
                output(k, w3, b3, h2, y)
                for t in range(TILE):
                    incoming[t] = grad[k, at[t]] if at[t] >= 0 else zero
                backprop_1x1(k, w2, w3, slope, 1, incoming, y, h1, h2, gy, g1, g2, gw2, gb2, gw3, gb3)
                for c in range(wide):  # through the mask and the lookup, cell by cell in order (none if dropped)
                    row, sink = g1[c], gtable[k, c]
                    board, first = start // per_board, 0
                    while first < TILE:
                        stop = min(TILE, (board + 1) * per_board - start)
                        keep = drop[k, c, min(board, boards - 1)]
                        if keep != zero:
                            for t in range(first, stop):
                                sink[code[t]] += row[t] * keep
                        board, first = board + 1, stop

    return forward, backward


@njit(cache=True)
def lookup_refreshed(table, codes, mask, out):
    """out[k, p] = table[k, codes[k, p]] * mask[p]: the first block's output looked up by code and its padding
    zeroed (`LifeConvNet`'s lookup, then `FlatBoards.refresh` on the dead boundary), in one pass."""
    replicas, length = codes.shape
    for k in range(replicas):
        for p in range(length):
            out[k, p] = table[k, codes[k, p]] * mask[p]


@njit(cache=True)
def lookup_refreshed_backward(grad, codes, mask, table_grad):
    """table_grad [K, 512] (zeros in) += the gradient of `lookup_refreshed`, position by position in order: the
    order of torch's `index_add_`, which the plain lookup's backward is."""
    replicas, length = codes.shape
    for k in range(replicas):
        for p in range(length):
            table_grad[k, codes[k, p]] += grad[k, p] * mask[p]
