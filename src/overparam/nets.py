"""Replica-batched networks: K independent models evaluated as one.

Every parameter has a leading replica dimension K and every activation is `[K, N, features]`, so a
layer of K models is one batched matmul (`torch.baddbmm`). Replicas never mix: replica k's output
depends only on replica k's parameters and inputs, and a sum of per-replica losses gives each
replica exactly its own gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from . import fused
from .flatboards import FlatBoards
from .life import CENTER, NEIGHBOR_INDICES, Rule
from .patterns import pattern_matrix
from .seeds import replica_generator

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "prelu", "silu")
HEADS = ("sigmoid", "clamp")
LAYOUTS = ("firner", "springer_kenyon")
LEAKY_SLOPE = 0.01
PRELU_INIT = 0.25


class ReplicaLinear(nn.Module):
    """K independent affine maps `[K, N, fan_in] -> [K, N, fan_out]` in one batched matmul."""

    def __init__(self, replicas: int, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(replicas, fan_in, fan_out))
        self.bias = nn.Parameter(torch.empty(replicas, 1, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """`[K, fan_in, N] -> [K, fan_out, N]`: the same map with the long cell dimension last, which is the
        shape MKL's batched matmul handles fast when fan_in and fan_out are tiny (about 20x faster at 2 -> 1)."""
        return torch.baddbmm(self.bias.transpose(1, 2), self.weight.transpose(1, 2), x)

    @torch.no_grad()
    def reset(self, generators: Sequence[torch.Generator], normalize: bool) -> None:
        """PyTorch's default layer init (U(+-1/sqrt(fan_in)) for weights and biases), or Firner's `--normalize`
        init (weights N(0, 0.02), biases U(-1, 1)), each replica from its own generator."""
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        for k, generator in enumerate(generators):
            if normalize:
                self.weight[k].normal_(0.0, 0.02, generator=generator)
                self.bias[k].uniform_(-1.0, 1.0, generator=generator)
            else:
                self.weight[k].uniform_(-bound, bound, generator=generator)
                self.bias[k].uniform_(-bound, bound, generator=generator)


class ReplicaActivation(nn.Module):
    """An elementwise activation; `prelu` has one learnable slope per replica."""

    def __init__(self, name: str, replicas: int):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(f"model.activation={name!r} is not one of {', '.join(ACTIVATIONS)}")
        self.name = name
        if name == "prelu":
            self.slope = nn.Parameter(torch.full((replicas, 1, 1), PRELU_INIT))

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """`inplace` overwrites x (meant for a fresh matmul output, which autograd does not keep) where the
        activation's backward needs only its output (relu, leaky_relu, elu): one buffer fewer per layer."""
        if self.name == "relu":
            return torch.relu_(x) if inplace else torch.relu(x)
        if self.name == "leaky_relu":
            return nn.functional.leaky_relu(x, LEAKY_SLOPE, inplace=inplace)
        if self.name == "elu":
            return nn.functional.elu(x, inplace=inplace)
        if self.name == "prelu":
            return torch.where(x >= 0, x, self.slope * x)
        return getattr(nn.functional, self.name)(x)

    @property
    def negative_slope(self) -> float:
        """Slope on negative inputs that the hand-built solution must cancel (0 for the saturating ones)."""
        return LEAKY_SLOPE if self.name == "leaky_relu" else 0.0


def lookup(table: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """`table [K, C, 512]`, `codes [K, N]` -> `[K, C, N]`, entry (k, c, n) = table[k, c, codes[k, n]].

    One `index_select` into the flattened table (int32 indices; its backward is one `index_add_`), which
    here is about twice as fast as `gather`, whose int64 index alone is a pass over 8 bytes per cell.
    """
    replicas, channels, patterns = table.shape
    rows = torch.arange(replicas * channels, device=codes.device, dtype=codes.dtype).view(replicas, channels, 1)
    index = codes.unsqueeze(1) + rows * patterns
    return table.reshape(-1).index_select(0, index.reshape(-1)).view(replicas, channels, -1)


class LifeConvNet(nn.Module):
    """K replicas of the Game of Life conv net, one block per simulated step (blocks = floor(steps * d_factor)).

    `firner` layout, per block: Conv3x3(1 -> 2m) -> act -> Conv1x1(2m -> m) -> act -> Conv1x1(m -> 1) -> act,
    blocks chained through one channel (2m^2 + 22m + 1 parameters per block).
    `springer_kenyon` layout, per block: Conv3x3(c -> 2m) -> act -> Conv1x1(2m -> m) -> act, chained through
    m channels, then one final Conv1x1(m -> 1) (23n + 2 parameters at m = 1).
    With `head="sigmoid"` the last activation is replaced by a sigmoid folded into the loss (the net returns
    logits); with `head="clamp"` the last activation's output is clamped to [0, 1].
    Convolutions are matmuls over neighbourhood patches (`FlatBoards`), so a 3x3 conv of K replicas is one
    `baddbmm`; the first block, which sees only 0/1 cells, is evaluated once per 3x3 pattern and looked up.
    """

    def __init__(
        self,
        replicas: int,
        blocks: int,
        m_factor: int,
        activation: str = "relu",
        head: str = "sigmoid",
        layout: str = "firner",
        boundary: str = "dead",
        normalize: bool = False,
        dropout: float = 0.4,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head={head!r} is not one of {', '.join(HEADS)}")
        if layout not in LAYOUTS:
            raise ValueError(f"model.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
        self.replicas, self.blocks, self.m_factor = replicas, blocks, m_factor
        self.head, self.layout, self.boundary, self.normalize = head, layout, boundary, normalize
        # Firner's --normalize puts Dropout2d after the 3x3 conv of every block but the last.
        self.dropout = dropout if normalize else 0.0
        m = m_factor
        self.layers = nn.ModuleList()
        self.acts = nn.ModuleList()
        channels = 1
        for block in range(blocks):
            widths = [(9 * channels, 2 * m), (2 * m, m)] + ([(m, 1)] if layout == "firner" else [])
            for fan_in, fan_out in widths:
                self.layers.append(ReplicaLinear(replicas, fan_in, fan_out))
                self.acts.append(ReplicaActivation(activation, replicas))
            channels = 1 if layout == "firner" else m
        if layout == "springer_kenyon":
            self.layers.append(ReplicaLinear(replicas, m, 1))
            self.acts.append(ReplicaActivation(activation, replicas))
        self.layers_per_block = 3 if layout == "firner" else 2

    @property
    def output_kind(self) -> str:
        return "logits" if self.head == "sigmoid" else "probabilities"

    def params_per_replica(self) -> int:
        return sum(p.numel() for p in self.parameters()) // self.replicas

    def reset_parameters(self, replica_seeds: Sequence[int]) -> None:
        generators = [replica_generator(seed, "init") for seed in replica_seeds]
        for layer in self.layers:
            layer.reset(generators, self.normalize)
        with torch.no_grad():
            for act in self.acts:
                if act.name == "prelu":
                    act.slope.fill_(PRELU_INIT)

    def forward(self, boards: torch.Tensor, dropout_generators: Sequence[torch.Generator] | None = None):
        """`[K, B, H, W]` 0/1 boards in, `[K, B, H, W]` logits (sigmoid head) or probabilities (clamp head) out.

        The layers up to the second 3x3 conv see each cell's 3x3 neighbourhood and nothing else, so on 0/1
        boards they are evaluated on the 512 patterns and gathered by each cell's code: the same numbers,
        and gradients summed per pattern, instead of per cell. Not when Dropout2d acts inside that span
        (its mask differs per board), where every cell goes through the convs.
        """
        _, batch, height, width = boards.shape
        grid = FlatBoards(batch, height, width, self.boundary)
        return grid.interior(self.flat_outputs(grid.embed(boards.to(torch.uint8)), grid, dropout_generators))

    def flat_outputs(self, alive, grid, dropout_generators=None, codes=None) -> torch.Tensor:
        """`forward` on boards already laid out flat: 0/1 uint8 `alive [K, L]` (`grid.embed`) in, `[K, L]` out
        (padding positions hold values to ignore). `codes` may pass in `grid.codes(alive)` if already made."""
        dtype = self.layers[0].weight.dtype
        if self.training and self.dropout > 0 and self.blocks > 1:  # Dropout2d in the first block
            x, start = alive.to(dtype).unsqueeze(1), 0
        else:
            start = self.layers_per_block if self.blocks > 1 else len(self.layers)
            table = self._run_layers(pattern_matrix(dtype, alive.device).expand(alive.shape[0], -1, -1), 0, start)
            x = lookup(table, grid.codes(alive) if codes is None else codes)
            if start < len(self.layers) and fused.fused_blocks_apply(self, x):  # the one hook (overparam.fused)
                return fused.later_blocks(self, x, grid)[:, 0]
        return self._run_layers(x, start, len(self.layers), grid, dropout_generators)[:, 0]

    def pattern_outputs(self) -> torch.Tensor | None:
        """`[K, 512]` outputs for each 3x3 pattern when the whole net is a function of a cell's neighbourhood
        (one block, so no Dropout2d either), else None: then a batch's loss needs only its pattern counts."""
        if self.blocks != 1:
            return None
        patterns = pattern_matrix(self.layers[0].weight.dtype, self.layers[0].weight.device)
        return self._run_layers(patterns.expand(self.replicas, -1, -1), 0, len(self.layers))[:, 0]

    def _run_layers(self, x, start, stop, grid=None, dropout_generators=None):
        """Layers `start:stop` on channels-first `[K, C, N]`: N flat board positions, or the 512 patterns."""
        last = len(self.layers) - 1
        for index in range(start, stop):
            layer, act = self.layers[index], self.acts[index]
            block, position = divmod(index, self.layers_per_block)
            is_conv3x3 = position == 0 and block < self.blocks
            if is_conv3x3 and grid is not None:  # (patterns come in as neighbourhoods already)
                x = grid.neighbourhoods(x if index == 0 else grid.refresh(x))
            x = layer.channels_first(x)
            if is_conv3x3 and self.training and self.dropout > 0 and block < self.blocks - 1:
                x = self._channel_dropout(x, grid.boards, dropout_generators)
            if index < last or self.head == "clamp":
                x = act(x, inplace=True)  # x is a fresh matmul output here
            if index == last and self.head == "clamp":
                x = x.clamp(0.0, 1.0)
        return x

    def _channel_dropout(self, x, batch, generators):
        """Dropout2d on `[K, C, B * cells]`: drop whole channels of a board, each replica's mask from its own generator."""
        replicas, channels, length = x.shape
        keep = 1.0 - self.dropout
        if generators is None:
            noise = torch.rand(replicas, batch, 1, channels, device=x.device)
        else:
            noise = torch.stack(
                [torch.rand(batch, 1, channels, generator=g, device=x.device) for g in generators]
            )
        mask = (noise < keep).to(x.dtype) / keep
        mask = mask.permute(0, 3, 1, 2)  # [K, C, B, 1]: the same draws, in the channels-first layout
        return (x.reshape(replicas, channels, batch, length // batch) * mask).reshape(replicas, channels, length)

    # ----- the hand-built exact solution ------------------------------------------------------------

    @torch.no_grad()
    def presolve(self, rule: Rule) -> None:
        """Overwrite every replica with an exact solution of `rule` (any Life-like rule, either neighbourhood).

        With s = 2 * neighbours + alive, the next state is 1 exactly on a few runs [lo, hi] of s
        (`Rule.alive_intervals`). Per run the 3x3 conv has two units, a = act(4 (lo - 1/2 - s)) and
        b = act(4 (s - hi - 1/2)), whose sum is 0 on the run (with a margin of 1/2) and >= 2 off it;
        the next layer outputs on = act(1 - a - b), exactly 1 on the run and 0 off it, and the block
        returns the sum of the runs' `on`. It needs m_factor >= number of runs (1 for B3/S23).
        For leaky_relu, a + b still cancels exactly (their linear parts in s cancel), and for
        saturating activations (elu, gelu, silu) all pre-activations are scaled up by `scale` so that
        act(scale * z) / scale is relu(z) to ~1e-3. PReLU slopes are set to 0 (exact relu).
        """
        intervals = rule.alive_intervals()
        m = self.m_factor
        if len(intervals) > m:
            raise ValueError(
                f"model.presolve needs model.m_factor >= {len(intervals)} for rule {rule} "
                f"(one unit per run of alive codes), got m_factor={m}"
            )
        act = self.acts[0]
        if self.layout == "springer_kenyon" and act.name == "leaky_relu":
            raise ValueError(
                "model.presolve is not exact for activation=leaky_relu with layout=springer_kenyon "
                "(its negative outputs feed the next conv); use relu, prelu, elu, gelu or silu"
            )
        for a in self.acts:
            if a.name == "prelu":
                a.slope.zero_()
        alpha = act.negative_slope if act.name != "prelu" else 0.0
        scale = 1.0 if act.name in ("relu", "leaky_relu", "prelu") else 1000.0
        for layer in self.layers:
            layer.weight.zero_()
            layer.bias.zero_()

        stencil = torch.zeros(9)
        stencil[NEIGHBOR_INDICES[rule.neighborhood]] = 2.0
        stencil[CENTER] = 1.0
        for block in range(self.blocks):
            first = self.layers[block * self.layers_per_block]
            second = self.layers[block * self.layers_per_block + 1]
            channels = first.weight.shape[1] // 9
            # Input to block 0 is the 0/1 board; later blocks get `scale` times the state, summed over channels.
            input_scale = 1.0 if block == 0 else scale
            kernel = stencil.repeat_interleave(channels) / input_scale
            for i, (lo, hi) in enumerate(intervals):
                first.weight[:, :, 2 * i] = -4.0 * scale * kernel
                first.bias[:, 0, 2 * i] = 4.0 * scale * (lo - 0.5)
                first.weight[:, :, 2 * i + 1] = 4.0 * scale * kernel
                first.bias[:, 0, 2 * i + 1] = -4.0 * scale * (hi + 0.5)
                # on = 1 - (a + b - alpha * (sum of both pre-activations)) / (1 - alpha)
                second.weight[:, 2 * i, i] = -1.0 / (1.0 - alpha)
                second.weight[:, 2 * i + 1, i] = -1.0 / (1.0 - alpha)
                constant = 4.0 * (lo - hi - 1.0)
                second.bias[:, 0, i] = scale * (1.0 + alpha * constant / (1.0 - alpha))
            if self.layout == "firner":
                third = self.layers[block * 3 + 2]
                self._write_output(third, block == self.blocks - 1, len(intervals), scale)
        if self.layout == "springer_kenyon":
            self._write_output(self.layers[-1], True, len(intervals), scale)

    def _write_output(self, layer: ReplicaLinear, final: bool, runs: int, scale: float) -> None:
        """The layer that sums the runs' `on` units into the cell's next state."""
        if final and self.head == "sigmoid":
            # Firner's sigmoid head: logit = 20 * state - 10, so sigmoid is within 5e-5 of 0/1.
            layer.weight[:, :runs, 0] = 20.0 / scale
            layer.bias[:, 0, 0] = -10.0
        else:
            layer.weight[:, :runs, 0] = 1.0
            layer.bias[:, 0, 0] = 0.0
