"""A Life replica's fixed batch for analyses of its loss (`LifeTask.fixed_batch`, e.g. for its Hessian).

Boards are drawn from a seed like training boards (the task's board size and density). For a one-block net the
output at a cell is a function of its 3x3 pattern, so the loss on those boards is a sum over the 512 patterns x 2
targets weighted by how often each occurs: the batch becomes the 512 patterns as 3x3 boards (each twice, target 0
then 1), weighted at their center cell by those counts (0 elsewhere): the same loss, 1,024 cells instead of B x H x
W. (The center of a 3x3 board reads only its own 3x3 neighborhood, whatever the padding.)
"""

from __future__ import annotations

import torch

from overparam.tasks.life.patterns import PATTERN_COUNT, pattern_matrix
from overparam.tasks.life.simulate import sample_boards


def fixed_boards(task, seed: int, boards: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`[1, B, H, W]` boards drawn from `seed` as training boards are, and their targets."""
    generator = torch.Generator().manual_seed(seed)
    density = task.density if isinstance(task.density, (int, float)) else tuple(task.density)
    cells = sample_boards(generator, boards, task.train_size, density)
    return cells.unsqueeze(0), task.targets(cells).unsqueeze(0)


def pattern_batch(task, boards: torch.Tensor):
    """The 512 patterns twice as `[1, 1024, 3, 3]` boards, their targets and their center weights (the counts of
    each (pattern, target) pair on `boards [1, B, H, W]`)."""
    counts = task.pattern_target_counts(boards.to(torch.uint8))[0]  # [512, 2]
    patterns = pattern_matrix(torch.float32).T.reshape(PATTERN_COUNT, 3, 3)
    inputs = torch.cat([patterns, patterns]).unsqueeze(0)
    targets, weights = torch.zeros_like(inputs), torch.zeros_like(inputs)
    targets[0, PATTERN_COUNT:, 1, 1] = 1.0
    weights[0, :, 1, 1] = torch.cat([counts[:, 0], counts[:, 1]])
    return inputs, targets, weights


def fixed_batch(task, seed: int, boards: int, net=None):
    inputs, targets = fixed_boards(task, seed, boards)
    if net is not None and getattr(net, "blocks", None) == 1:
        return pattern_batch(task, inputs)
    return inputs, targets, None
