"""The Game of Life conv net, K replicas at once: one block of per-cell layers per simulated step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from overparam.config import Check, boolean, choice, fail, number
from overparam.nets.replica import ReplicaActivation, ReplicaLinear, ReplicaNet
from overparam.tasks.life.export import export_life_replica, import_life_replica
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import blocks as fused
from overparam.tasks.life.layers import LAYOUTS, layer_specs
from overparam.tasks.life.patterns import pattern_matrix
from overparam.tasks.life.presolve import write_solution
from overparam.tasks.life.rules import Rule, blocks_for

# sigmoid: the sigmoid is folded into the loss (BCE on logits: its gradient never vanishes);
# sigmoid_bceloss: Firner's nn.Sigmoid + nn.BCELoss in float32 (a wrongly alive cell whose logit passes about
#   16.6 gets a gradient of exactly 0; a wrongly dead one keeps -1 down to about -27.6, then fades, 0 below -88);
# clamp: the last activation's output clamped to [0, 1].
HEADS = ("sigmoid", "sigmoid_bceloss", "clamp")


def lookup(table: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """`table [K, C, 512]`, `codes [K, N]` -> `[K, C, N]`, entry (k, c, n) = table[k, c, codes[k, n]].

    One `index_select` into the flattened table (int32 indices; its backward is one `index_add_`), which
    here is about twice as fast as `gather`, whose int64 index alone is a pass over 8 bytes per cell.
    """
    replicas, channels, patterns = table.shape
    rows = torch.arange(replicas * channels, device=codes.device, dtype=codes.dtype).view(replicas, channels, 1)
    index = codes.unsqueeze(1) + rows * patterns
    return table.reshape(-1).index_select(0, index.reshape(-1)).view(replicas, channels, -1)


class LifeConvNet(ReplicaNet):
    """K replicas of the Game of Life conv net, one block per simulated step (blocks = floor(steps * d_factor)).

    `firner` layout, per block: Conv3x3(1 -> 2m) -> act -> Conv1x1(2m -> m) -> act -> Conv1x1(m -> 1) -> act,
    blocks chained through one channel (2m^2 + 22m + 1 parameters per block).
    `springer_kenyon` layout, per block: Conv3x3(c -> 2m) -> act -> Conv1x1(2m -> m) -> act, chained through
    m channels, then one final Conv1x1(m -> 1) (23n + 2 parameters at m = 1).
    With `head="sigmoid"` the last activation is replaced by a sigmoid folded into the loss (the net returns
    logits); `head="sigmoid_bceloss"` returns the sigmoid's probabilities, as Firner's net does, and trains with
    `nn.BCELoss`; with `head="clamp"` the last activation's output is clamped to [0, 1].
    Convolutions are matmuls over neighborhood patches (`FlatBoards`), so a 3x3 conv of K replicas is one
    `baddbmm`; the first block, which sees only 0/1 cells, is evaluated once per 3x3 pattern and looked up.
    """

    # The job passes the replica count and LifeTask's net_inputs(); `blocks` is for building a net by hand.
    RUNTIME_ARGUMENTS: ClassVar[tuple[str, ...]] = ("replicas", "blocks", "steps", "boundary", "rule")
    CHECKS: ClassVar[dict[str, Check]] = {
        **ReplicaNet.CHECKS,
        "d_factor": number(0.0, exclusive_minimum=True),
        "head": choice(*HEADS),
        "layout": choice(*LAYOUTS),
        "normalize": boolean,
        "dropout": number(0.0, below=1.0),
        "presolve": boolean,
    }

    def __init__(
        self,
        replicas: int,
        blocks: int | None = None,
        m_factor: int = 1,
        activation: str = "relu",
        head: str = "sigmoid",
        layout: str = "firner",
        boundary: str = "dead",
        normalize: bool = False,
        dropout: float = 0.4,
        *,
        steps: int = 1,
        d_factor: float = 1.0,
        rule: Rule | None = None,
        presolve: bool = False,
    ):
        """`blocks` defaults to floor(steps * d_factor); `presolve` starts every replica from the hand-built
        solution of `rule` (`reset_parameters` writes it)."""
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head={head!r} is not one of {', '.join(HEADS)}")
        if layout not in LAYOUTS:
            raise ValueError(f"model.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
        if presolve and rule is None:
            raise ValueError("model.presolve needs the task's rule")
        blocks = blocks_for(steps, d_factor) if blocks is None else blocks
        self.replicas, self.blocks, self.m_factor, self.d_factor = replicas, blocks, m_factor, d_factor
        self.activation = activation
        self.presolved_rule = rule if presolve else None
        self.head, self.layout, self.boundary, self.normalize = head, layout, boundary, normalize
        # Firner's --normalize puts Dropout2d after the 3x3 conv of every block but the last.
        self.dropout = dropout if normalize else 0.0
        self.specs = layer_specs(blocks, m_factor, layout, self.dropout > 0)
        self.layers = nn.ModuleList(ReplicaLinear(replicas, spec.fan_in, spec.out_channels) for spec in self.specs)
        self.acts = nn.ModuleList(ReplicaActivation(activation, replicas) for _ in self.specs)
        self.layers_per_block = 3 if layout == "firner" else 2

    @classmethod
    def check(cls, model: dict) -> None:
        if model["normalize"] and model["head"] == "clamp":
            fail("model.head", "clamp", "Firner's --normalize forces a sigmoid head: use sigmoid or sigmoid_bceloss")
        if model["presolve"] and model["layout"] == "springer_kenyon" and model["activation"] == "leaky_relu":
            fail("model.activation", "leaky_relu",
                 "model.presolve with layout=springer_kenyon needs relu, prelu, elu, gelu or silu")

    @staticmethod
    def relative_step_work(model: dict, task: dict) -> float:
        """Rough work of one replica-step, only to start a sweep's longest jobs first (`overparam.search.schedule`): the
        first block is a lookup into 512 precomputed patterns plus making the batch (about 6 units); each later
        block moves its 3m + 1 channels and 9 neighbor slices through memory and does its matmul flops."""
        m = int(model.get("m_factor", 1))
        blocks = blocks_for(int(task.get("steps", 1)), float(model.get("d_factor", 1.0)))
        cells = int(task.get("batch_size", 128)) * int(task.get("train_size", 10)) ** 2
        later_block = 10 + 3 * m + 0.04 * (2 * m * m + 19 * m)
        return cells / 12800 * (6 + max(0, blocks - 1) * later_block)

    @property
    def output_kind(self) -> str:
        return "logits" if self.head == "sigmoid" else "probabilities"

    def grid_point(self) -> dict:
        return {"d_factor": self.d_factor, "layout": self.layout}

    def reset_parameters(self, replica_seeds: Sequence[int]) -> None:
        super().reset_parameters(replica_seeds)
        if self.presolved_rule is not None:
            self.presolve(self.presolved_rule)

    def export_replica(self, replica: int) -> nn.Sequential:
        """`nn.Conv2d` layers mapping one replica's boards `[B, H, W]` to its outputs (`tasks.life.export`)."""
        return export_life_replica(self, replica)

    def import_replica(self, module: nn.Module, replica: int) -> None:
        import_life_replica(module, self, replica)

    def presolve(self, rule: Rule) -> None:
        """Overwrite every replica with an exact solution of `rule` (`overparam.tasks.life.presolve`)."""
        write_solution(self, rule)

    def forward(self, boards: torch.Tensor, dropout_generators: Sequence[torch.Generator] | None = None):
        """`[K, B, H, W]` 0/1 boards in, `[K, B, H, W]` logits (sigmoid head) or probabilities (clamp head) out.

        The layers up to the second 3x3 conv see each cell's 3x3 neighborhood and nothing else, so on 0/1
        boards they are evaluated on the 512 patterns and gathered by each cell's code: the same numbers,
        and gradients summed per pattern, instead of per cell. When Dropout2d acts inside that span (its mask
        differs per board) only the first 3x3 conv is: the fused path (`overparam.fused`) runs the rest of the
        block per cell with the board's mask; the plain path sends every cell through the convs.
        """
        _, batch, height, width = boards.shape
        grid = FlatBoards(batch, height, width, self.boundary)
        return grid.interior(self.flat_outputs(grid.embed(boards.to(torch.uint8)), grid, dropout_generators))

    def flat_outputs(self, alive, grid, dropout_generators=None, codes=None) -> torch.Tensor:
        """`forward` on boards already laid out flat: 0/1 uint8 `alive [K, L]` (`grid.embed`) in, `[K, L]` out
        (padding positions hold values to ignore). `codes` may pass in `grid.codes(alive)` if already made."""
        dtype = self.layers[0].weight.dtype
        masks = self.dropout_masks(grid.boards, dropout_generators, dtype, alive.device)
        patterns = pattern_matrix(dtype, alive.device).expand(alive.shape[0], -1, -1)
        fast = fused.fused_blocks_apply(self, patterns)  # the one hook (overparam.fused)
        if masks and not fast:  # Dropout2d in the first block, plain path: every cell through the convs
            x, start = alive.to(dtype).unsqueeze(1), 0
        else:
            start = self.layers_per_block if self.blocks > 1 else len(self.layers)
            # the first block per pattern; with Dropout2d only its 3x3 conv, which the mask follows
            table = self.layers[0].channels_first(patterns) if masks else self._run_layers(patterns, 0, start)
            codes = grid.codes(alive) if codes is None else codes
            if fast and masks:  # the rest of the first block per cell, with the masks
                return fused.dropped_blocks(self, table, codes, grid, masks)[:, 0]
            if fast and self.boundary == "dead":  # with the lookup and the refresh in one pass
                return fused.later_blocks_from_table(self, table, codes, grid)[:, 0]
            if fast:
                return fused.later_blocks(self, lookup(table, codes), grid)[:, 0]
            x = lookup(table, codes)
        return self._run_layers(x, start, len(self.layers), grid, masks)[:, 0]

    def pattern_outputs(self) -> torch.Tensor | None:
        """`[K, 512]` outputs for each 3x3 pattern when the whole net is a function of a cell's neighborhood
        (one block, so no Dropout2d either), else None: then a batch's loss needs only its pattern counts."""
        if self.blocks != 1:
            return None
        patterns = pattern_matrix(self.layers[0].weight.dtype, self.layers[0].weight.device)
        return self._run_layers(patterns.expand(self.replicas, -1, -1), 0, len(self.layers))[:, 0]

    def _run_layers(self, x, start, stop, grid=None, masks=()):
        """Layers `start:stop` on channels-first `[K, C, N]`: N flat board positions, or the 512 patterns;
        `masks[block]` (`dropout_masks`, boards only) is the Dropout2d mask after that block's 3x3 conv."""
        for spec, layer, act in zip(self.specs[start:stop], self.layers[start:stop], self.acts[start:stop]):
            if spec.kernel == 3 and grid is not None:  # (patterns come in as neighborhoods already)
                x = grid.neighborhoods(x if spec.index == 0 else grid.refresh(x))
            x = layer.channels_first(x)
            if spec.dropout and spec.block < len(masks):
                x = self._channel_dropout(x, masks[spec.block])
            if not spec.final or self.head == "clamp":
                x = act(x, inplace=True)  # x is a fresh matmul output here
            if spec.final and self.head == "clamp":
                x = x.clamp(0.0, 1.0)
            elif spec.final and self.head == "sigmoid_bceloss":
                x = torch.sigmoid(x)
        return x

    def dropout_masks(self, batch, generators=None, dtype=torch.float32, device="cpu") -> list[torch.Tensor]:
        """Dropout2d's masks of one forward pass on `batch` boards, `[K, 2m, B]` for each block but the last, in
        block order: 0 for a dropped channel of a board, 1 / (1 - p) for a kept one; replica k's drawn from its own
        generator as `torch.rand(B, 1, 2m)`, block after block (the global generator without `generators`). None
        (an empty list) outside training or without dropout. Every path applies these: `_channel_dropout` on the
        plain path, `overparam.fused` on the fast one."""
        if not (self.training and self.dropout > 0):
            return []
        keep, masks = 1.0 - self.dropout, []
        for spec in (spec for spec in self.specs if spec.dropout):  # one per block but the last, in block order
            channels = spec.out_channels
            if generators is None:
                noise = torch.rand(self.replicas, batch, 1, channels, device=device)
            else:
                noise = torch.stack([torch.rand(batch, 1, channels, generator=g, device=device) for g in generators])
            mask = (noise < keep).to(dtype) / keep
            masks.append(mask[:, :, 0].transpose(1, 2).contiguous())  # [K, C, B]: the same draws, channels first
        return masks

    def _channel_dropout(self, x, mask):
        """Dropout2d on `[K, C, B * cells]` with `mask [K, C, B]` (`dropout_masks`): whole channels of a board."""
        replicas, channels, length = x.shape
        batch = mask.shape[2]
        return (x.reshape(replicas, channels, batch, length // batch) * mask.unsqueeze(-1)).reshape(x.shape)
