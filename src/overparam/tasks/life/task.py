"""The Game of Life task: fresh training boards per replica per step (or each replica's own fixed training set),
a fixed held-out set, loss and success.

Plain torch: a net is anything mapping `[K, B, H, W]` boards to `[K, B, H, W]` logits or probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from overparam.config import Check, ConfigError, choice, fail, integer, is_number, number, optional
from overparam.core.phases import phase
from overparam.tasks.base import Task
from overparam.tasks.life.paths import (
    PatternNet,
    binary_cross_entropy,
    flat_losses,
    pattern_losses,
    pattern_target_counts,
)
from overparam.tasks.life.rules import BOUNDARIES, NEIGHBORHOODS, Rule, blocks_for, parse_rule
from overparam.tasks.life.simulate import fair_coin_boards, life_run, sample_boards
from overparam.tasks.sampling import EpochSampler


def _density(key, value) -> None:
    if is_number(value) and 0.0 <= value <= 1.0:
        return
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
            and 0.0 <= value[0] <= value[1] <= 1.0):
        return
    if is_number(value):
        fail(key, value, "must be a probability in [0, 1] or a range [low, high] inside [0, 1]")
    fail(key, value, "must be a probability in [0, 1] or a range [low, high] with 0 <= low <= high <= 1")


_density.allowed = "a probability in [0, 1], or a range [low, high] in it"


@dataclass
class LifeTask(Task):
    """Predict a Life-like rule `steps` generations ahead on random boards; succeed on every held-out board."""

    NET_INPUTS: ClassVar[tuple[str, ...]] = ("steps", "boundary", "rule")
    CHECKS: ClassVar[dict[str, Check]] = {
        "neighborhood": choice(*NEIGHBORHOODS),
        "boundary": choice(*BOUNDARIES),
        "steps": integer(1),
        "density": _density,
        "test_density": number(0.0, 1.0),
        "train_size": integer(3),
        "test_size": integer(3),
        "batch_size": integer(1),
        "train_examples": optional(integer(1)),
        "test_boards": integer(1),
        "test_seed": integer(0),
    }
    CHARTS: ClassVar[dict[str, list[str]]] = {"board accuracy vs width": ["board_accuracy_mean"]}

    rule: str | Rule = "B3/S23"  # any Life-like B<digits>/S<digits> rule (a parsed Rule brings its neighborhood)
    neighborhood: str = "moore"  # moore (standard Life, Springer & Kenyon) or von_neumann (Firner)
    boundary: str = "dead"  # dead: cells off the board are dead; wrap: a torus
    steps: int = 1  # generations the net must predict at once
    density: float | tuple[float, float] = 0.5  # alive probability per cell, or [low, high] drawn per board
    train_size: int = 10  # training boards are train_size x train_size, drawn fresh ...
    batch_size: int = 128  # ... batch_size per replica per step
    # null: fresh boards every step; N: each replica's own N boards, drawn once from its data stream and walked
    # in a fresh order every epoch (N // batch_size steps; Springer & Kenyon trained on 10,000 fixed examples)
    train_examples: int | None = None
    test_size: int = 5  # held-out boards are test_size x test_size ...
    test_boards: int = 1000  # ... this many, the same for every replica ...
    test_seed: int = 1234  # ... drawn from this seed ...
    test_density: float = 0.5  # ... with this alive probability (not task.density: say so when they differ)
    name: str = "life"

    def __post_init__(self):
        if isinstance(self.rule, Rule):
            self.neighborhood = self.rule.neighborhood
        else:
            self.rule = parse_rule(self.rule, self.neighborhood)
        if not isinstance(self.density, (int, float)):
            self.density = tuple(self.density)
        self._sampler = EpochSampler(self.train_examples, self.batch_size) if self.train_examples else None
        self._train_set: torch.Tensor | None = None  # [K, N, H, W] uint8, drawn at the first step
        self._train_set_states: list[torch.Tensor] | None = None  # the data streams' states it was drawn from

    @classmethod
    def check(cls, task: dict, model: dict) -> None:
        try:
            rule = parse_rule(task["rule"], task["neighborhood"])
        except ValueError as error:
            raise ConfigError(f"task.{error}") from None
        if "d_factor" in model and blocks_for(task["steps"], model["d_factor"]) < 1:
            fail("model.d_factor", model["d_factor"], f"gives floor({task['steps']} * d_factor) = 0 blocks; needs >= 1")
        if task.get("train_examples") is not None and task["train_examples"] < task["batch_size"]:
            fail("task.train_examples", task["train_examples"], f"must be >= task.batch_size ({task['batch_size']})")
        runs = len(rule.alive_intervals())
        if model.get("presolve") and model["m_factor"] < runs:
            fail("model.m_factor", model["m_factor"], f"model.presolve of rule {task['rule']} needs m_factor >= {runs}")

    def grid_point(self) -> dict:
        return {"steps": self.steps, "rule": self.rule.notation, "neighborhood": self.neighborhood}

    def notes(self) -> list[str]:
        notes = []
        if self.test_density != self.density:
            density = list(self.density) if isinstance(self.density, tuple) else self.density
            notes.append(f"tests on density {self.test_density} (trains on {density})")
        if self.train_examples:
            notes.append(f"trains on {self.train_examples} fixed boards per replica, reshuffled every epoch")
        return notes

    def net_inputs(self) -> dict:
        return {"steps": self.steps, "boundary": self.boundary, "rule": self.rule}

    def targets(self, boards: torch.Tensor) -> torch.Tensor:
        return life_run(boards, self.steps, self.rule, self.boundary)

    def train_cells(self, generators: Sequence[torch.Generator], device) -> torch.Tensor:
        """`[K, B, H, W]` 0/1 boards (uint8 or float), replica k's from its own generator, made on `device`:
        fresh ones, or the next batch of each replica's own training set (`train_examples`)."""
        if self._sampler is None:
            if self.density == 0.5:
                return fair_coin_boards(generators, self.batch_size, self.train_size, device)
            return torch.stack([sample_boards(g, self.batch_size, self.train_size, self.density, device)
                                for g in generators])
        if self._train_set is None:
            self._train_set = self._draw_train_set(generators, device)
        indices = self._sampler.next_indices(generators, device)
        return torch.stack([boards.index_select(0, index) for boards, index in zip(self._train_set, indices)])

    def _draw_train_set(self, generators: Sequence[torch.Generator], device) -> torch.Tensor:
        """Each replica's `train_examples` boards, drawn from its data stream (as the first step would draw them).
        A resumed job redraws them from the stream states they were first drawn from (`load_state_dict`)."""
        if self._train_set_states is None:
            self._train_set_states = [g.get_state() for g in generators]
        else:  # resumed: draw from copies of the original states, leaving the restored streams where they are
            copies = [torch.Generator(device=g.device) for g in generators]
            for copy, state in zip(copies, self._train_set_states):
                copy.set_state(state)
            generators = copies
        if self.density == 0.5:
            return fair_coin_boards(generators, self.train_examples, self.train_size, device)
        # one replica at a time, so the float boards of only one replica exist at once
        return torch.stack([sample_boards(g, self.train_examples, self.train_size, self.density, device)
                            .to(torch.uint8) for g in generators])

    def state_dict(self) -> dict:
        if self._sampler is None:
            return {}
        return {"train_set_states": self._train_set_states, "sampler": self._sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self._sampler is not None and state:
            self._train_set, self._train_set_states = None, state["train_set_states"]
            self._sampler.load_state_dict(state["sampler"])

    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K, B, H, W]` float boards (`train_cells`), replica k's from its own generator, made on `device`, and
        their targets."""
        boards = self.train_cells(generators, device).float()
        return boards, self.targets(boards)

    def training_losses(self, net, generators, dropout_generators, device) -> torch.Tensor:
        """Mean loss per replica `[K]` on a fresh batch: what the plain path `Task.training_losses` gives, by the
        fastest path the net allows (`tasks.life.paths`); the one place where the path is chosen: the pattern path
        for a net that is a function of each cell's 3x3 pattern, the flat path for deeper Life nets, the plain path
        for any other net."""
        with phase("boards"):
            cells = self.train_cells(generators, device)
        if not isinstance(net, PatternNet):
            boards = cells.float()
            return self.replica_losses(net(boards, dropout_generators), self.targets(boards), net.output_kind)
        with phase("net on the 512 patterns"):
            per_pattern = net.pattern_outputs()
        if per_pattern is None:
            return flat_losses(self, net, cells, dropout_generators)
        return pattern_losses(self, per_pattern, cells, net.output_kind)

    def pattern_target_counts(self, boards: torch.Tensor) -> torch.Tensor:
        """`[K, 512, 2]` float: how many cells of replica k's 0/1 boards have 3x3 pattern p and target t."""
        return pattern_target_counts(self, boards)

    def test_set(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out boards `[T, H, W]` on `device`, the same for every replica and every job with this test_seed,
        on any device: drawn on the CPU (a CUDA generator would draw other boards from the same seed)."""
        generator = torch.Generator(device="cpu").manual_seed(self.test_seed)
        boards = sample_boards(generator, self.test_boards, self.test_size, self.test_density, "cpu").to(device)
        return boards, self.targets(boards)

    @staticmethod
    def replica_losses(outputs: torch.Tensor, targets: torch.Tensor, output_kind: str, weight=None) -> torch.Tensor:
        """Mean binary cross-entropy per replica, `[K]` (weighted mean with `weight`, as `fixed_batch` gives)."""
        losses = binary_cross_entropy(outputs, targets, output_kind)
        if weight is None:
            return losses.flatten(1).mean(1)
        return (losses * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)

    def fixed_batch(self, replica: int, seed: int, examples: int, net=None):
        """`examples` boards drawn from `seed` like training boards, or their 512-pattern form for a one-block net
        (`tasks.life.batches`)."""
        from overparam.tasks.life.batches import fixed_batch

        return fixed_batch(self, seed, examples, net)

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
