"""The Life training step's fast paths, which give the numbers of the plain path (boards -> net -> per-cell loss) for
less work; `LifeTask.training_losses` chooses among them, the one place where the path is chosen.

- the pattern path: a one-block net's output at a cell is a function of its 3x3 pattern, so a batch enters only
  through how often each (pattern, target) pair occurs (`pattern_target_counts`): a 1024-term weighted sum per
  replica instead of a loss per cell, and gradients through 512 outputs instead of 12,800;
- the flat path: deeper nets run on boards laid out flat (`FlatBoards`), the boards' neighborhood codes serving both
  the targets and the net's first block, padding positions weighted 0. The integer parts (codes, targets, counts)
  run in one numba pass where the Life kernels apply (`kernels.codes`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch.nn import functional as F

from overparam.core.phases import phase
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import codes as fast_codes
from overparam.tasks.life.patterns import PATTERN_COUNT, rule_table


@runtime_checkable
class PatternNet(Protocol):
    """A net whose first block sees each cell's 3x3 pattern only (LifeConvNet): it can be run on the 512
    patterns (`pattern_outputs`, None when the whole net is not a function of them) or on flat boards."""

    def pattern_outputs(self) -> torch.Tensor | None: ...

    def flat_outputs(self, alive, grid, dropout_generators=None, codes=None) -> torch.Tensor: ...


def interior_mask(grid: FlatBoards, device, dtype=torch.bool) -> torch.Tensor:
    """`[L]`: 1 (True) at the flat positions of real cells (not padding, nor wrap's ring); shared, read only."""
    return grid.interior_mask(dtype, device)


def binary_cross_entropy(outputs, targets, output_kind: str, weight=None) -> torch.Tensor:
    """Elementwise BCE on logits (sigmoid head) or probabilities (clamp head), optionally weighted."""
    if output_kind == "logits":
        return F.binary_cross_entropy_with_logits(outputs, targets, weight=weight, reduction="none")
    weight = None if weight is None else weight.expand_as(outputs)
    return F.binary_cross_entropy(outputs, targets, weight=weight, reduction="none")


def _count(values: torch.Tensor, size: int) -> torch.Tensor:
    """How often each of 0..size-1 occurs in `values`. `bincount` reads the largest value on the host to size its
    output (a sync on a GPU); adding ones into `size` bins does not, and on CPU `bincount` is as fast."""
    if values.device.type == "cpu":
        return torch.bincount(values, minlength=size)
    return torch.zeros(size, device=values.device).index_add_(0, values, torch.ones_like(values, dtype=torch.float))


def embed_cells(grid: FlatBoards, boards: torch.Tensor) -> torch.Tensor:
    """0/1 boards (uint8 as `train_cells` makes them, or any other dtype) in the flat layout, as uint8."""
    return grid.embed(boards if boards.dtype == torch.uint8 else (boards != 0).to(torch.uint8))


def pattern_losses(task, per_pattern: torch.Tensor, cells: torch.Tensor, output_kind: str) -> torch.Tensor:
    """The mean loss per replica from the net's output per pattern `[K, 512]` and the batch's pattern counts."""
    with phase("codes, targets, pattern counts"):
        counts = task.pattern_target_counts(cells)
    with phase("loss"):
        outputs = per_pattern.unsqueeze(-1).expand(-1, -1, 2)
        # made on the device, so no host-to-device copy per step
        targets = torch.arange(2, device=outputs.device, dtype=outputs.dtype).expand_as(outputs)
        losses = binary_cross_entropy(outputs, targets, output_kind, weight=counts)
        return losses.sum((1, 2)) / (task.batch_size * task.train_size**2)


def flat_losses(task, net, boards: torch.Tensor, dropout_generators) -> torch.Tensor:
    """The mean loss per replica computed in the flat layout (`FlatBoards`): boards, targets, the net's
    outputs and the loss stay contiguous, the boards' neighborhood codes serve both the targets and the
    net's first block, and padding positions get weight 0."""
    replicas, batch, height, width = boards.shape
    grid = FlatBoards(batch, height, width, task.boundary)
    with phase("codes, targets"):
        alive = embed_cells(grid, boards)
        fast = fast_codes.flat_codes_and_targets(alive, grid, task.rule, task.steps)
        codes = grid.codes(alive) if fast is None else fast[0]
        targets = flat_targets(task, alive, codes, grid) if fast is None else fast[1]
    with phase("net"):
        outputs = net.flat_outputs(alive, grid, dropout_generators, codes)
    with phase("loss"):
        weight = interior_mask(grid, outputs.device, outputs.dtype)
        losses = binary_cross_entropy(outputs, targets.to(outputs.dtype), net.output_kind, weight=weight)
        return losses.sum(-1) / (batch * height * width)


def flat_targets(task, alive: torch.Tensor, codes: torch.Tensor, grid: FlatBoards) -> torch.Tensor:
    """uint8 `[K, L]`: the flat boards `alive` (whose codes are `codes`) after `steps` generations."""
    state, table = alive, rule_table(task.rule, alive.device)
    for step in range(task.steps):
        if step:
            codes = grid.codes(grid.refresh(state))
        state = table.index_select(0, codes.reshape(-1)).view(codes.shape)
    return state


def pattern_target_counts(task, boards: torch.Tensor) -> torch.Tensor:
    """`[K, 512, 2]` float: how many cells of replica k's boards have 3x3 pattern p and target t.

    uint8 boards are taken to be 0/1 (as `train_cells` makes them). Counted in the flat layout, where codes
    and states are contiguous: padding positions go to a spare bin per replica instead of being cut out.
    """
    cells = boards if boards.dtype == torch.uint8 else (boards != 0).to(torch.uint8)
    fast = fast_codes.pattern_target_counts(cells, task.rule, task.steps, task.boundary)
    if fast is not None:  # the same counts in one numba pass (overparam.tasks.life.kernels.codes)
        return fast
    replicas, batch, height, width = boards.shape
    grid = FlatBoards(batch, height, width, task.boundary)
    state = embed_cells(grid, boards)
    first_codes = grid.codes(state)
    state = flat_targets(task, state, first_codes, grid)
    bins_per_replica = 2 * PATTERN_COUNT + 1  # the last one collects the padding
    bins = torch.add(state, first_codes, alpha=2)
    interior = interior_mask(grid, boards.device, bins.dtype)
    bins.mul_(interior).add_((1 - interior) * (2 * PATTERN_COUNT))  # (arithmetic: cheaper than masked_fill_)
    bins += torch.arange(0, replicas * bins_per_replica, bins_per_replica, device=bins.device,
                         dtype=bins.dtype).unsqueeze(1)
    counts = _count(bins.reshape(-1), replicas * bins_per_replica)
    counts = counts.view(replicas, bins_per_replica)[:, : 2 * PATTERN_COUNT]
    return counts.reshape(replicas, PATTERN_COUNT, 2).float()
