"""Training a replica net by hand, outside a Trainer, exactly as a job trains it: `replica_step` on fresh batches from
each replica's own data and dropout streams, with the job's optimizer. The lottery's retraining and the loss walk's
trained destination use it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from overparam.core.build import build_optimizer
from overparam.core.step import replica_step
from overparam.seeds import replica_generator


def train_replicas(net, task, seeds: Sequence[int], optim_config, steps: int,
                   after_step: Callable[[], None] | None = None) -> torch.Tensor:
    """`steps` optimizer steps of `net` (replica k's data from `seeds[k]`'s streams; a diverged replica is frozen for
    good); `after_step` runs after each step (e.g. to hold masked weights at zero). Returns which replicas are still
    alive."""
    data = [replica_generator(seed, "data") for seed in seeds]
    dropout = [replica_generator(seed, "dropout") for seed in seeds]
    optimizer = build_optimizer(optim_config)(net.parameters())
    alive = torch.ones(len(seeds), dtype=torch.bool)
    net.train()
    for _ in range(steps):
        replica_step(net, optimizer, alive, lambda: task.training_losses(net, data, dropout, "cpu"))
        if after_step is not None:
            after_step()
    return alive
