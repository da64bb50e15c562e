"""numba kernels of one later Life block (see `overparam.fused`); importing this module needs numba.

Shapes (replica k of K; cells t of a tile of TILE):
  x      [K, margin + Lt + margin]  the block's input, zero margins, Lt a multiple of TILE
  w1, b1 [K, 9, 2m], [K, 1, 2m]    3x3 conv, row j = neighbor at flat offset offsets[j]
  w2, b2 [K, 2m, m], [K, 1, m]
  w3, b3 [K, m, 1],  [K, 1, 1]
  out    [K, Lt]
Loops run with the tile's cells innermost, on 1D views indexed from 0 (no wraparound check), so that LLVM
vectorizes them; the widths 2m and m are compile-time constants (one compilation per m, a few seconds),
which lets LLVM unroll and keep rows in registers: 2-5x faster than the same code with runtime widths.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

TILE = 256  # cells per tile: 3m + 1 rows of TILE floats (about 60 kB at m = 20) stay in L2; 64 was 2x slower


@njit(fastmath=True, inline="always")
def _hidden(x, k, base, offsets, w1, b1, w2, b2, slope, h1, h2, wide, narrow):
    """The tile's post-activation hidden units h1 [2m, TILE] and h2 [m, TILE]. Inlined into the kernels,
    where `wide` and `narrow` are constants."""
    zero = np.float32(0.0)
    for c in range(wide):
        row = h1[c]
        for t in range(TILE):
            row[t] = b1[k, 0, c]
        for j in range(9):
            w = w1[k, j, c]
            start = base + offsets[j]
            source = x[k, start : start + TILE]
            for t in range(TILE):
                row[t] += w * source[t]
        for t in range(TILE):
            v = row[t]
            row[t] = v if v > zero else slope * v
    for d in range(narrow):
        row = h2[d]
        for t in range(TILE):
            row[t] = b2[k, 0, d]
        for c in range(wide):
            w = w2[k, c, d]
            source = h1[c]
            for t in range(TILE):
                row[t] += w * source[t]
        for t in range(TILE):
            v = row[t]
            row[t] = v if v > zero else slope * v


@njit(fastmath=True, inline="always")
def _output(k, w3, b3, h2, y, narrow):
    for t in range(TILE):
        y[t] = b3[k, 0, 0]
    for d in range(narrow):
        w = w3[k, d, 0]
        source = h2[d]
        for t in range(TILE):
            y[t] += w * source[t]


@functools.cache
def block_kernels(m: int):
    """(forward, backward) for width m, compiled on first call."""
    wide, narrow = 2 * m, m

    @njit(fastmath=True, cache=True)  # cached on disk per m (the widths are in the key)
    def forward(x, offsets, margin, w1, b1, w2, b2, w3, b3, slope, out_mode, out):
        replicas, length = out.shape
        zero, one, slope = np.float32(0.0), np.float32(1.0), np.float32(slope)  # float32 only: no conversions
        h1 = np.empty((wide, TILE), np.float32)
        h2 = np.empty((narrow, TILE), np.float32)
        y = np.empty(TILE, np.float32)
        for k in range(replicas):
            for start in range(0, length, TILE):
                _hidden(x, k, margin + start, offsets, w1, b1, w2, b2, slope, h1, h2, wide, narrow)
                _output(k, w3, b3, h2, y, narrow)
                target = out[k, start : start + TILE]
                for t in range(TILE):
                    v = y[t]
                    if out_mode != 0:
                        v = v if v > zero else slope * v
                    if out_mode == 2:
                        v = min(max(v, zero), one)
                    target[t] = v

    @njit(fastmath=True, cache=True)  # cached on disk per m (the widths are in the key)
    def backward(x, offsets, margin, w1, b1, w2, b2, w3, b3, slope, out_mode, grad, gx, gw1, gb1, gw2, gb2, gw3, gb3):
        replicas, length = grad.shape
        zero, one, slope = np.float32(0.0), np.float32(1.0), np.float32(slope)
        h1 = np.empty((wide, TILE), np.float32)
        h2 = np.empty((narrow, TILE), np.float32)
        g1 = np.empty((wide, TILE), np.float32)
        g2 = np.empty((narrow, TILE), np.float32)
        y = np.empty(TILE, np.float32)
        gy = np.empty(TILE, np.float32)
        for k in range(replicas):
            for start in range(0, length, TILE):
                base = margin + start
                # recomputed: cheaper than stored
                _hidden(x, k, base, offsets, w1, b1, w2, b2, slope, h1, h2, wide, narrow)
                _output(k, w3, b3, h2, y, narrow)
                # gy: d loss / d (output pre-activation), the activation's slope read off its output as torch's
                # in-place activations do; the clamp passes gradient only inside [0, 1]
                incoming = grad[k, start : start + TILE]
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
                    sink = gx[k, at : at + TILE]
                    for c in range(wide):
                        w = w1[k, j, c]
                        row = g1[c]
                        dot = zero
                        for t in range(TILE):
                            dot += source[t] * row[t]
                            sink[t] += w * row[t]
                        gw1[k, j, c] += dot

    return forward, backward
