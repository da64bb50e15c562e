"""The jamming transition of a fully connected net fitting random labels (Geiger, Spigler, d'Ascoli, Sagun,
Baity-Jesi, Biroli & Wyart, "Jamming transition as a paradigm to understand the loss landscape of deep neural
networks", Phys. Rev. E 100, 012115 (2019); their code: github.com/mariogeiger/nn_jamming).

P random points in d dimensions, each with a random label y = +-1; a net f must give every point the margin 1:
Delta_mu = 1 - y_mu f(x_mu) <= 0. The loss is the quadratic hinge, MEAN over the P points as in their code,

    L = (1/P) sum_mu max(0, Delta_mu)^2 / 2,

minimised full batch (every step sees all P points). Below a critical number of parameters N* the net jams: the
loss settles at a positive value with examples still violating the margin; above it the loss reaches exactly zero
(no violated example leaves no gradient). A replica *succeeds* when no example violates the margin by more than
`violation_tolerance` at the end of training. Run it in float64 (`trainer.precision=64-true`) with the convergence
stop (`trainer.stop_when_loss_change_below`), as the presets do.

Each replica draws its own dataset from its own data stream (as each of Geiger et al.'s runs drew a fresh data seed),
so the success rate averages over datasets and initialisations, the ensemble the transition is defined on. Inputs
follow their preprocessing: Gaussian points, centered over the dataset, each scaled to norm sqrt(d). The dataset is
drawn at the first step and travels in checkpoints (`state_dict`), so a resumed job fits the same points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from overparam.config import Check, choice, integer, number
from overparam.tasks.base import Task

LABELS = ("random", "alternating")


def random_points(points: int, dimension: int, generator: torch.Generator, device,
                  labels: str = "random") -> tuple[torch.Tensor, torch.Tensor]:
    """`[P, d]` Gaussian points, centered, each of norm sqrt(d), and `[P]` labels +-1: `random`, +1 or -1 with
    probability 1/2 each; `alternating`, -1, +1, -1, ... by index (Geiger et al.'s: exactly balanced, and as random as
    the points they label). Drawn in float64 whatever the training dtype, so a dataset does not depend on it; the
    points are the same under either labelling."""
    x = torch.randn(points, dimension, generator=generator, device=device, dtype=torch.float64)
    x = x - x.mean(0)
    x = math.sqrt(dimension) * x / x.norm(dim=1, keepdim=True)
    if labels == "alternating":
        return x, (torch.arange(points, device=device) % 2).to(torch.float64) * 2 - 1
    y = torch.randint(0, 2, (points,), generator=generator, device=device).to(torch.float64) * 2 - 1
    return x, y


def margin_deficits(outputs: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Delta = margin - y f(x), `[K, P]`: positive where an example violates the margin."""
    return margin - labels * outputs[..., 0]


def quadratic_hinge(outputs: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """`[K]`: (1/P) sum over examples of max(0, Delta)^2 / 2."""
    return 0.5 * torch.relu(margin_deficits(outputs, labels, margin)).pow(2).mean(-1)


@dataclass
class JammingTask(Task):
    """Fit P random points with random +-1 labels at margin 1 (quadratic hinge, full batch)."""

    NET_INPUTS: ClassVar[tuple[str, ...]] = ("inputs", "outputs")
    CHECKS: ClassVar[dict[str, Check]] = {
        "points": integer(1),
        "dimension": integer(1),
        "margin": number(0.0, exclusive_minimum=True),
        "violation_tolerance": number(0.0),
        "labels": choice(*LABELS),
    }
    CHARTS: ClassVar[dict[str, list[str]]] = {
        "fraction of examples violating the margin vs width (95% t-interval)": [
            "violated_fraction_mean", "violated_fraction_ci_low", "violated_fraction_ci_high"],
        "final hinge loss vs width": ["hinge_loss_mean"],
    }

    points: int = 600  # P
    dimension: int = 10  # d
    margin: float = 1.0
    violation_tolerance: float = 1e-4  # an example violates the margin when Delta > this (Geiger et al.: 0)
    labels: str = "random"  # random: +-1 with probability 1/2 each; alternating: -1, +1, ... by index (theirs)
    name: str = "jamming"

    def __post_init__(self):
        self.inputs: torch.Tensor | None = None  # [K, P, d], each replica's own points
        self.labels: torch.Tensor | None = None  # [K, P]

    def grid_point(self) -> dict:
        return {"points": self.points, "dimension": self.dimension}

    def net_inputs(self) -> dict:
        return {"inputs": self.dimension, "outputs": 1}

    def _dataset(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.inputs is None:
            drawn = [random_points(self.points, self.dimension, g, device, self.labels) for g in generators]
            self.inputs = torch.stack([x for x, _ in drawn])
            self.labels = torch.stack([y for _, y in drawn])
        dtype = torch.get_default_dtype()  # the net's: float64 under trainer.precision=64-true
        return self.inputs.to(device, dtype), self.labels.to(device, dtype)

    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole training set, every step: `[K, P, d]` points and `[K, P]` labels."""
        return self._dataset(generators, device)

    def fixed_batch(self, replica: int, seed: int, examples: int, net=None):
        """That replica's own training set (fitting it is the question; `seed` and `examples` are not needed)."""
        if self.inputs is None:
            raise RuntimeError("the jamming dataset is drawn at the first training step; analyse after training")
        dtype = torch.get_default_dtype()
        return self.inputs[replica : replica + 1].to(dtype), self.labels[replica : replica + 1].to(dtype), None

    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor, output_kind: str) -> torch.Tensor:
        return quadratic_hinge(outputs, targets, self.margin)

    def state_dict(self) -> dict:
        return {"inputs": self.inputs, "labels": self.labels}

    def load_state_dict(self, state: dict) -> None:
        self.inputs, self.labels = state.get("inputs"), state.get("labels")

    @torch.no_grad()
    def evaluate(self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device) -> list[dict]:
        """On the training set itself (fitting it is the question): violated_fraction (examples with
        Delta > violation_tolerance), max_deficit (the largest Delta), hinge_loss; success = nothing violated."""
        if self.inputs is None:
            raise RuntimeError("the jamming dataset is drawn at the first training step; evaluate after training")
        dtype = torch.get_default_dtype()
        inputs, labels = self.inputs.to(device, dtype), self.labels.to(device, dtype)
        outputs = predict(inputs)
        deficits = margin_deficits(outputs, labels, self.margin)
        violated = (deficits > self.violation_tolerance).sum(-1)
        losses = quadratic_hinge(outputs, labels, self.margin)
        return [
            {
                "success": int(violated[k]) == 0,
                "violated_fraction": int(violated[k]) / self.points,
                "max_deficit": deficits[k].max().item(),
                "hinge_loss": losses[k].item(),
            }
            for k in range(replicas)
        ]
