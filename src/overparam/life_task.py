"""The Game of Life task: fresh training boards per replica per step, a fixed held-out set, loss and success.

Plain torch: a net is anything mapping `[K, B, H, W]` boards to `[K, B, H, W]` logits or probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .flatboards import FlatBoards
from .life import Rule, life_run, parse_rule, sample_boards
from .patterns import PATTERN_COUNT, rule_table


def fair_coin_boards(generators: Sequence[torch.Generator], count: int, size: int, device) -> torch.Tensor:
    """`[K, count, size, size]` 0/1 uint8 boards with every cell alive with p = 1/2, replica k's from `generators[k]`.

    At p = 1/2 a cell is one random bit, so each replica draws 64 cells per 64-bit word (one small call per
    replica) and all replicas' bits are unpacked together: about 60x fewer random numbers and K times fewer
    unpacking calls than a uniform float per cell compared with 0.5.
    """
    cells = count * size * size
    words = -(-cells // 64)
    drawn = torch.stack(
        [torch.randint(-(2**63), 2**63 - 1, (words,), dtype=torch.int64, generator=g, device=device) for g in generators]
    )
    # Unpacked by one lookup per byte in a table of its 8 bits, as one int64 (8x faster than shift-and-mask).
    byte_bits = ((torch.arange(256, device=device).unsqueeze(-1) >> torch.arange(8, device=device)) & 1)
    byte_bits = byte_bits.to(torch.uint8).view(torch.int64).reshape(256)
    bits = byte_bits.index_select(0, drawn.view(torch.uint8).reshape(-1).to(torch.int32)).view(torch.uint8)
    return bits.reshape(len(generators), -1)[:, :cells].reshape(len(generators), count, size, size)


def _interior_mask(grid: FlatBoards, device) -> torch.Tensor:
    """`[L]` bool: True at the flat positions of real cells (not padding, nor wrap's ring)."""
    mask = torch.zeros(grid.length, dtype=torch.bool, device=device)
    grid.interior(mask)[...] = True
    return mask


def _binary_cross_entropy(outputs, targets, output_kind: str, weight=None) -> torch.Tensor:
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


def _embed_cells(grid: FlatBoards, boards: torch.Tensor) -> torch.Tensor:
    """0/1 boards (uint8 as `train_cells` makes them, or any other dtype) in the flat layout, as uint8."""
    return grid.embed(boards if boards.dtype == torch.uint8 else (boards != 0).to(torch.uint8))


@dataclass
class LifeTask:
    rule: Rule
    steps: int = 1
    boundary: str = "dead"
    density: float | tuple[float, float] = 0.5
    train_size: int = 10
    batch_size: int = 128
    test_size: int = 5
    test_boards: int = 1000
    test_seed: int = 1234
    test_density: float = 0.5

    @classmethod
    def from_config(cls, task) -> "LifeTask":
        density = task.density if isinstance(task.density, (int, float)) else tuple(task.density)
        return cls(
            rule=parse_rule(task.rule, task.neighborhood),
            steps=task.steps,
            boundary=task.boundary,
            density=density,
            train_size=task.train_size,
            batch_size=task.batch_size,
            test_size=task.test_size,
            test_boards=task.test_boards,
            test_seed=task.test_seed,
            test_density=task.get("test_density", 0.5),
        )

    def result_extras(self) -> dict:
        """Task-level numbers for result.json beyond the per-replica metrics."""
        return {}

    def targets(self, boards: torch.Tensor) -> torch.Tensor:
        return life_run(boards, self.steps, self.rule, self.boundary)

    def train_cells(self, generators: Sequence[torch.Generator], device) -> torch.Tensor:
        """`[K, B, H, W]` fresh 0/1 boards (uint8 or float), replica k's from its own generator, made on `device`."""
        if self.density == 0.5:
            return fair_coin_boards(generators, self.batch_size, self.train_size, device)
        return torch.stack([sample_boards(g, self.batch_size, self.train_size, self.density, device) for g in generators])

    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K, B, H, W]` fresh float boards, replica k's from its own generator, made on `device`, and their targets."""
        boards = self.train_cells(generators, device).float()
        return boards, self.targets(boards)

    def training_losses(self, net, generators, dropout_generators, device) -> torch.Tensor:
        """Mean loss per replica `[K]` on a fresh batch: what `replica_losses(net(boards), targets)` gives.

        When the net's output is a function of each cell's 3x3 pattern (`net.pattern_outputs()`), the batch
        enters only through how often each (pattern, target) pair occurs, so the loss is a 1024-term weighted
        sum per replica instead of a loss per cell, and its gradient flows to 512 outputs instead of 12,800.
        """
        per_pattern = net.pattern_outputs() if hasattr(net, "pattern_outputs") else None
        if per_pattern is None and hasattr(net, "flat_outputs"):
            return self._flat_losses(net, self.train_cells(generators, device), dropout_generators)
        if per_pattern is None:
            boards, targets = self.train_batch(generators, device)
            return self.replica_losses(net(boards, dropout_generators), targets, net.output_kind)
        counts = self.pattern_target_counts(self.train_cells(generators, device))
        outputs = per_pattern.unsqueeze(-1).expand(-1, -1, 2)
        # made on the device, so no host-to-device copy per step
        targets = torch.arange(2, device=outputs.device, dtype=outputs.dtype).expand_as(outputs)
        losses = _binary_cross_entropy(outputs, targets, net.output_kind, weight=counts)
        return losses.sum((1, 2)) / (self.batch_size * self.train_size**2)

    def _flat_losses(self, net, boards: torch.Tensor, dropout_generators) -> torch.Tensor:
        """The mean loss per replica computed in the flat layout (`FlatBoards`): boards, targets, the net's
        outputs and the loss stay contiguous, the boards' neighbourhood codes serve both the targets and the
        net's first block, and padding positions get weight 0."""
        replicas, batch, height, width = boards.shape
        grid = FlatBoards(batch, height, width, self.boundary)
        alive = _embed_cells(grid, boards)
        codes = grid.codes(alive)
        outputs = net.flat_outputs(alive, grid, dropout_generators, codes)
        targets = self._flat_targets(alive, codes, grid).to(outputs.dtype)
        weight = _interior_mask(grid, outputs.device).to(outputs.dtype)
        losses = _binary_cross_entropy(outputs, targets, net.output_kind, weight=weight)
        return losses.sum(-1) / (batch * height * width)

    def _flat_targets(self, alive: torch.Tensor, codes: torch.Tensor, grid: FlatBoards) -> torch.Tensor:
        """uint8 `[K, L]`: the flat boards `alive` (whose codes are `codes`) after `steps` generations."""
        state, table = alive, rule_table(self.rule, alive.device)
        for step in range(self.steps):
            if step:
                codes = grid.codes(grid.refresh(state))
            state = table.index_select(0, codes.reshape(-1)).view(codes.shape)
        return state

    def pattern_target_counts(self, boards: torch.Tensor) -> torch.Tensor:
        """`[K, 512, 2]` float: how many cells of replica k's boards have 3x3 pattern p and target t.

        uint8 boards are taken to be 0/1 (as `train_cells` makes them). Counted in the flat layout, where codes
        and states are contiguous: padding positions go to a spare bin per replica instead of being cut out.
        """
        replicas, batch, height, width = boards.shape
        grid = FlatBoards(batch, height, width, self.boundary)
        state = _embed_cells(grid, boards)
        first_codes = grid.codes(state)
        state = self._flat_targets(state, first_codes, grid)
        bins_per_replica = 2 * PATTERN_COUNT + 1  # the last one collects the padding
        bins = torch.add(state, first_codes, alpha=2)
        interior = _interior_mask(grid, boards.device).to(bins.dtype)
        bins.mul_(interior).add_((1 - interior) * (2 * PATTERN_COUNT))  # (5x faster than a broadcast masked_fill_)
        bins += torch.arange(0, replicas * bins_per_replica, bins_per_replica, device=bins.device,
                             dtype=bins.dtype).unsqueeze(1)
        counts = _count(bins.reshape(-1), replicas * bins_per_replica)
        return counts.view(replicas, bins_per_replica)[:, : 2 * PATTERN_COUNT].reshape(replicas, PATTERN_COUNT, 2).float()

    def test_set(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out boards `[T, H, W]`, the same for every replica and every job with this test_seed."""
        generator = torch.Generator(device=device).manual_seed(self.test_seed)
        boards = sample_boards(generator, self.test_boards, self.test_size, self.test_density, device)
        return boards, self.targets(boards)

    @staticmethod
    def replica_losses(outputs: torch.Tensor, targets: torch.Tensor, output_kind: str) -> torch.Tensor:
        """Mean binary cross-entropy per replica, `[K]`."""
        return _binary_cross_entropy(outputs, targets, output_kind).flatten(1).mean(1)

    @torch.no_grad()
    def evaluate(
        self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device, chunk: int = 100
    ) -> list[dict]:
        """Per-replica held-out metrics. `predict` maps `[K, T, H, W]` boards to probabilities.

        A board is right when every cell, rounded, is right; a replica succeeds when every board is right;
        it has `collapsed` when it predicts an all-dead board for every test board.
        """
        boards, targets = self.test_set(device)
        boards_right = torch.zeros(replicas, device=device)
        cells_right = torch.zeros(replicas, device=device)
        any_alive = torch.zeros(replicas, dtype=torch.bool, device=device)
        for start in range(0, len(boards), chunk):
            batch = boards[start : start + chunk].expand(replicas, -1, -1, -1)
            predicted = predict(batch).round()
            correct = predicted == targets[start : start + chunk]
            boards_right += correct.flatten(2).all(-1).sum(-1)
            cells_right += correct.flatten(1).sum(-1)
            any_alive |= predicted.flatten(1).any(-1)
        board_accuracy = (boards_right / len(boards)).tolist()
        cell_accuracy = (cells_right / targets.numel()).tolist()
        return [
            {
                "success": bool(boards_right[k].item() == len(boards)),
                "board_accuracy": board_accuracy[k],
                "cell_accuracy": cell_accuracy[k],
                "collapsed": not bool(any_alive[k].item()),
            }
            for k in range(replicas)
        ]
