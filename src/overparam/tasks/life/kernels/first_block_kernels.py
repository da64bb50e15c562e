"""numba kernels of the first Life block (see `overparam.tasks.life.kernels.blocks`): with Dropout2d, the block per
cell after its 3x3 conv's lookup, with each board's channel mask (`first_block_kernels`); without, the lookup and the
refresh before block 1 in one pass (`lookup_refreshed`). Importing this module needs numba.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from overparam.tasks.life.kernels.block_kernels import IN_ORDER, KEEP_UNITS_FROM_M, TILE, _one_by_one_layers


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
