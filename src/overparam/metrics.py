"""Metrics that do not depend on a task: success-rate intervals and pooled R^2."""

from __future__ import annotations

import math

import torch


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default); (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, center - half_width), min(1.0, center + half_width)


def pooled_r2(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """R^2 pooled over outputs, variance-weighted (sklearn's `multioutput='variance_weighted'`).

    `[..., N, D]` in, `[...]` out: 1 - (total squared error) / (total squared deviation from each output's mean).
    """
    residual = ((predictions - targets) ** 2).sum(dim=(-2, -1))
    deviation = ((targets - targets.mean(dim=-2, keepdim=True)) ** 2).sum(dim=(-2, -1))
    return 1.0 - residual / deviation
