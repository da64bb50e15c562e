"""Boards laid out flat, so that every 3x3 neighborhood is 9 contiguous offset slices.

A strided im2col over 10 x 10 boards copies rows of 10 numbers at a time, and autograd's backward of
a stack of slices allocates a full-size zero tensor per slice: together they cost more than the convs
themselves. Here a batch of boards `[..., B, H, W]` becomes one flat row `[..., L]` per channel, with
padding cells laid between cells so that the neighbor at (dy, dx) is always at flat offset
`dy * row + dx`, for every cell at once:

- `dead` boundary: one zero column after each row and one zero row after each board. Neighboring
  boards share them (the column after row y is also the column before row y + 1), so only 21% of a
  10 x 10 board's positions are padding, against 44% for a full ring.
- `wrap` boundary: a full ring around each board holding the wrapped-around cells.

Convs then run on padding positions too (cheaper than skipping them); `refresh` restores the padding
before every 3x3 conv and `interior` drops it at the end.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F

from overparam.tasks.life.rules import BOUNDARIES, STENCIL


class FlatBoards:
    def __init__(self, boards: int, height: int, width: int, boundary: str = "dead"):
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARIES)}")
        self.boards, self.height, self.width, self.boundary = boards, height, width, boundary
        ring = 1 if boundary == "dead" else 2
        self.row = width + ring
        self.board_length = (height + ring) * self.row
        self.length = boards * self.board_length
        self.offsets = [dy * self.row + dx for dy, dx in STENCIL]
        # Zeros before the first and after the last board, so that every offset slice stays in range.
        self.margin = self.row + 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """`[..., B, H, W]` -> `[..., L]` with the padding filled in."""
        if self.boundary == "dead":
            padded = F.pad(x, (0, 1, 0, 1))
        else:
            padded = torch.cat([x[..., -1:, :], x, x[..., :1, :]], dim=-2)
            padded = torch.cat([padded[..., -1:], padded, padded[..., :1]], dim=-1)
        return padded.reshape(*x.shape[:-3], self.length)

    def interior(self, x: torch.Tensor) -> torch.Tensor:
        """`[..., L]` -> `[..., B, H, W]`, the real cells only."""
        grid = x.reshape(*x.shape[:-1], self.boards, self.length // self.boards // self.row, self.row)
        start = 0 if self.boundary == "dead" else 1
        return grid[..., start : start + self.height, start : start + self.width]

    def refresh(self, x: torch.Tensor) -> torch.Tensor:
        """Restore the padding of `[..., L]`: zeros (dead) or the wrapped-around cells (wrap)."""
        if self.boundary == "dead":
            return x * self.dead_mask(x)
        return self.embed(self.interior(x))

    def dead_mask(self, x: torch.Tensor) -> torch.Tensor:
        """`[L]` in x's dtype: 1 at real cells, 0 at padding (dead boundary). Shared: read it, never write into it."""
        return FlatBoards(self.boards, self.height, self.width, "dead").interior_mask(x.dtype, x.device)

    def interior_mask(self, dtype=torch.bool, device="cpu") -> torch.Tensor:
        """`[L]`: 1 (True) at the flat positions of real cells, 0 at padding and wrap's ring. A constant of the
        grid, made once per (grid, dtype, device) and shared, so no training step rebuilds it: read it, never
        write into it."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:  # one key per GPU
            device = torch.device("cuda", torch.cuda.current_device())
        return _interior_mask(self.boards, self.height, self.width, self.boundary, dtype, device)

    def neighborhoods(self, x: torch.Tensor) -> torch.Tensor:
        """`[K, C, L]` -> `[K, 9 * C, L]`: each position's 3x3 neighborhood, index `offset * C + channel`."""
        return _OffsetSlices.apply(x, self.offsets, self.margin)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The 9-bit neighborhood code (bit j = `STENCIL[j]` alive) of every position of 0/1 `[..., L]`, as int32.

        Separable, so 4 passes instead of 9: a row code r = left + 2 center + 4 right (uint8, < 8), then
        code = r(above) + 8 r + 64 r(below) in int16 (narrower than int64: less memory traffic), widened to int32
        for `index_select`. Padding positions get codes too; callers ignore or refresh them.
        """
        alive = x if x.dtype == torch.uint8 else (x != 0).to(torch.uint8)
        alive = F.pad(alive, (self.margin, self.margin))
        span = self.length + 2 * self.row
        start = self.margin - self.row
        rows = torch.add(alive[..., start - 1 : start - 1 + span], alive[..., start : start + span], alpha=2)
        rows = rows.add_(alive[..., start + 1 : start + 1 + span], alpha=4).to(torch.int16)
        length = self.length
        codes = torch.add(rows[..., :length], rows[..., self.row : self.row + length], alpha=8)
        return codes.add_(rows[..., 2 * self.row :], alpha=64).to(torch.int32)


@functools.lru_cache(maxsize=32)
@torch.inference_mode(False)  # a cached tensor made under inference_mode could not be saved for backward later
def _interior_mask(boards: int, height: int, width: int, boundary: str, dtype, device) -> torch.Tensor:
    grid = FlatBoards(boards, height, width, boundary)
    mask = torch.zeros(grid.length, dtype=torch.bool, device=device)
    grid.interior(mask)[...] = True
    return mask.to(dtype)


class _OffsetSlices(torch.autograd.Function):
    """Stack of 9 offset slices, with a backward that adds the 9 gradient slices into one buffer
    (autograd's own backward of slicing would allocate and sum 9 full-size zero tensors)."""

    @staticmethod
    def forward(ctx, x, offsets, margin):
        replicas, channels, length = x.shape
        padded = F.pad(x, (margin, margin))
        out = x.new_empty(replicas, len(offsets), channels, length)
        for j, offset in enumerate(offsets):
            out[:, j] = padded[..., margin + offset : margin + offset + length]
        ctx.offsets, ctx.margin, ctx.shape = offsets, margin, x.shape
        return out.reshape(replicas, len(offsets) * channels, length)

    @staticmethod
    def backward(ctx, grad):
        replicas, channels, length = ctx.shape
        margin = ctx.margin
        grad = grad.reshape(replicas, len(ctx.offsets), channels, length)
        padded = grad.new_zeros(replicas, channels, length + 2 * margin)
        for j, offset in enumerate(ctx.offsets):
            padded[..., margin + offset : margin + offset + length] += grad[:, j]
        return padded[..., margin : margin + length], None, None
