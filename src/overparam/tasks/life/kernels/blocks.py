"""A fused kernel for the Life conv net's later blocks (firner layout), forward and backward, compiled by numba.

Blocks 2+ map one real-valued channel to one: per cell, a 3x3 conv to 2m units, act, 1x1 to m, act, 1x1 to 1,
act (or the head). As separate batched matmuls and elementwise passes every layer's `[K, 2m, cells]` output
goes through memory several times, and the matmuls' tiny inner dimensions (9, 2m, m) keep MKL far from its
peak. Here each replica's cells are processed in tiles of `fused_kernels.TILE` cells whose hidden units stay in
cache: the 9 neighbor slices, both hidden layers and the output are made in one pass; backward recomputes the
tile's hidden units from the input (cheaper than storing and reloading them) and accumulates every gradient in
the same pass.
The arithmetic is the plain path's, in float32, summed in a different order.

Dropout2d (Firner's --normalize: after the 3x3 conv of every block but the last) multiplies a unit's conv output
by one mask value per (replica, board, channel): inside the later blocks' tile pass (`block_kernels(m, dropout=
True)`), and in the first block, whose 3x3 conv is still a lookup of its output per pattern but whose rest then
runs per cell (`_FirstBlock`, `first_block_kernels`). The masks are `LifeConvNet.dropout_masks`, the plain path's.

`fused_blocks_apply` says when the kernels apply: float32, the firner layout, relu or leaky_relu, and the package's
kernels on (`overparam.tasks.life.kernels.KERNELS`: CPU, numba importable, `OVERPARAM_FUSED` not 0). They work on
numpy views of the tensors; a GPU runs the plain path.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from overparam.tasks.life.kernels import KERNELS

ACTIVATION_SLOPES = {"relu": 0.0, "leaky_relu": 0.01}  # act(v) = v if v > 0 else slope * v; others fall back
_OUT_IDENTITY, _OUT_ACT, _OUT_ACT_CLAMP = 0, 1, 2



def fused_blocks_apply(net, x: torch.Tensor) -> bool:
    """True when `net`'s later blocks can run fused on `x [K, 1, L]`."""
    if net.layout != "firner" or net.blocks < 2 or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if net.acts[0].name not in ACTIVATION_SLOPES:
        return False
    return KERNELS.load("block_kernels", x.device) is not None


def later_blocks_from_table(net, table: torch.Tensor, codes: torch.Tensor, grid) -> torch.Tensor:
    """`later_blocks(net, lookup(table, codes), grid)` on the dead boundary, with the lookup and the refresh
    before block 1 made in one pass (`_LookupRefreshed`): the same numbers, two passes over `[K, L]` fewer each
    way. `table [K, 1, 512]` is the first block's output per pattern, `codes [K, L]` the cells' codes."""
    y = _LookupRefreshed.apply(table[:, 0], codes, grid.dead_mask(table))
    return _blocks(net, y, grid, refreshed=True)


def later_blocks(net, x: torch.Tensor, grid) -> torch.Tensor:
    """Blocks 1.. of `net` on the first block's output `x [K, 1, L]` (flat layout): `[K, 1, L]` out, as
    `net._run_layers(x, net.layers_per_block, len(net.layers), grid)` returns it."""
    return _blocks(net, x[:, 0], grid, refreshed=False)


def dropped_blocks(net, table: torch.Tensor, codes: torch.Tensor, grid, masks) -> torch.Tensor:
    """Every block of `net` with Dropout2d, `[K, 1, L]` out, as `net._run_layers` runs them from the boards with the
    same `masks` (`LifeConvNet.dropout_masks`, `[K, 2m, B]` per block but the last): `table [K, 2m, 512]` is the
    first block's 3x3 conv per pattern, `codes [K, L]` the cells' codes."""
    _, second, third = net.layers[0:3]
    cells = grid.interior_mask(torch.bool, codes.device)[: grid.board_length].nonzero()[:, 0]
    y = _FirstBlock.apply(table, second.weight, second.bias, third.weight, third.bias, codes, masks[0], cells,
                          grid.board_length, ACTIVATION_SLOPES[net.acts[0].name])
    return _blocks(net, y, grid, refreshed=net.boundary == "dead", masks=masks)  # padding 0: the dead refresh


def _blocks(net, y: torch.Tensor, grid, refreshed: bool, masks=()) -> torch.Tensor:
    """Blocks 1.. on `y [K, L]`; `masks[block]`, where there is one, is that block's Dropout2d mask."""
    slope = ACTIVATION_SLOPES[net.acts[0].name]
    for block in range(1, net.blocks):
        first, second, third = net.layers[3 * block : 3 * block + 3]
        last = block == net.blocks - 1
        out_mode = _OUT_ACT if not last else (_OUT_ACT_CLAMP if net.head == "clamp" else _OUT_IDENTITY)
        if block > 1 or not refreshed:
            y = grid.refresh(y)
        mask = masks[block] if block < len(masks) else None
        y = _FusedBlock.apply(y, first.weight, first.bias, second.weight, second.bias, third.weight, third.bias,
                              grid.offsets, grid.margin, slope, out_mode, mask, grid.board_length)
    if net.head == "sigmoid_bceloss":  # Firner's net ends in nn.Sigmoid: the kernel returns its input, the logits
        y = torch.sigmoid(y)
    return y.unsqueeze(1)


class _LookupRefreshed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table, codes, mask):
        kernels = _load_kernels()
        out = table.new_empty(codes.shape)
        kernels.lookup_refreshed(table.detach().contiguous().numpy(), codes.contiguous().numpy(), mask.numpy(),
                                 out.numpy())
        ctx.save_for_backward(codes, mask)
        ctx.patterns = table.shape[1]
        return out

    @staticmethod
    def backward(ctx, grad):
        codes, mask = ctx.saved_tensors
        table_grad = grad.new_zeros(codes.shape[0], ctx.patterns)
        _load_kernels().lookup_refreshed_backward(grad.numpy(), codes.contiguous().numpy(), mask.numpy(),
                                                  table_grad.numpy())
        return table_grad, None, None


class _FusedBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, w3, b3, offsets, margin, slope, out_mode, mask=None, board_length=0):
        """`mask [K, 2m, B]` (or None): the block's Dropout2d mask per board of `board_length` flat positions."""
        kernels = _load_kernels()
        forward_kernel, _ = kernels.block_kernels(w2.shape[2], mask is not None)
        replicas, length = x.shape
        tiled = -(-length // kernels.TILE) * kernels.TILE
        padded = F.pad(x, (margin, margin + tiled - length)).contiguous()
        weights = [t.detach().contiguous() for t in (w1, b1, w2, b2, w3, b3)]
        offsets_array = torch.tensor(offsets, dtype=torch.int64)
        out = x.new_empty(replicas, tiled)
        dropout = () if mask is None else (mask.contiguous().numpy(), board_length)
        forward_kernel(padded.numpy(), offsets_array.numpy(), margin, *[w.numpy() for w in weights], slope,
                       out_mode, out.numpy(), *dropout)
        ctx.save_for_backward(padded, *weights)
        ctx.offsets, ctx.margin, ctx.slope, ctx.out_mode, ctx.length = offsets_array, margin, slope, out_mode, length
        ctx.dropout = dropout
        return out[:, :length]

    @staticmethod
    def backward(ctx, grad):
        _, backward_kernel = _load_kernels().block_kernels(ctx.saved_tensors[3].shape[2], bool(ctx.dropout))
        padded, w1, b1, w2, b2, w3, b3 = ctx.saved_tensors
        length = ctx.length
        tiled = padded.shape[1] - 2 * ctx.margin
        grad = F.pad(grad, (0, tiled - length)).contiguous()
        grads = [torch.zeros_like(t) for t in (padded, w1, b1, w2, b2, w3, b3)]
        backward_kernel(padded.numpy(), ctx.offsets.numpy(), ctx.margin, w1.numpy(), b1.numpy(), w2.numpy(),
                        b2.numpy(), w3.numpy(), b3.numpy(), ctx.slope, ctx.out_mode, grad.numpy(),
                        *[g.numpy() for g in grads], *ctx.dropout)
        grad_x = grads[0][:, ctx.margin : ctx.margin + length]
        return (grad_x, *grads[1:], None, None, None, None, None, None)


class _FirstBlock(torch.autograd.Function):
    """The first block with Dropout2d (`fused_kernels.first_block_kernels`): `[K, L]` out, 0 at padding."""

    @staticmethod
    def forward(ctx, table, w2, b2, w3, b3, codes, mask, cells, board_length, slope):
        kernels, m = _load_kernels(), w2.shape[2]
        forward_kernel, _ = kernels.first_block_kernels(m)
        weights = [t.detach().contiguous() for t in (table, w2, b2, w3, b3)]
        codes, mask, cells = codes.contiguous(), mask.contiguous(), cells.contiguous()
        out = table.new_zeros(codes.shape)
        tiles = -(-mask.shape[2] * len(cells) // kernels.TILE) if m >= kernels.KEEP_UNITS_FROM_M else 1
        kept = table.new_empty(codes.shape[0], tiles, m, kernels.TILE)  # h2 for backward, or unused
        forward_kernel(weights[0].numpy(), codes.numpy(), mask.numpy(), cells.numpy(), board_length,
                       *[w.numpy() for w in weights[1:]], slope, out.numpy(), kept.numpy())
        ctx.save_for_backward(*weights, codes, mask, cells, kept)
        ctx.board_length, ctx.slope = board_length, slope
        return out

    @staticmethod
    def backward(ctx, grad):
        table, w2, b2, w3, b3, codes, mask, cells, kept = ctx.saved_tensors
        _, backward_kernel = _load_kernels().first_block_kernels(w2.shape[2])
        grads = [torch.zeros_like(t) for t in (table, w2, b2, w3, b3)]
        backward_kernel(table.numpy(), codes.numpy(), mask.numpy(), cells.numpy(), ctx.board_length, w2.numpy(),
                        b2.numpy(), w3.numpy(), b3.numpy(), ctx.slope, kept.numpy(), grad.contiguous().numpy(),
                        *[g.numpy() for g in grads])
        return (*grads, None, None, None, None, None)


def _load_kernels():
    """`block_kernels` (callers have checked `fused_blocks_apply`)."""
    return KERNELS.load("block_kernels", "cpu")
