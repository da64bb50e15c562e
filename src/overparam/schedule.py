"""How long a job will take, roughly: enough to start a sweep's longest jobs first.

A launcher that runs n jobs at a time in the order given can leave one core running the sweep's longest job
alone at the end (the card's sweep: the steps=3, m_factor=20 job is half of the whole sweep's work). Starting
jobs longest first (LPT) keeps every worker busy until near the end. Only the order matters, so the model
is coarse: it is calibrated on this repo's Life bench (README "Speed"), not a prediction in seconds.
"""

from __future__ import annotations

import math


def estimated_cost(config) -> float:
    """Relative work of one job from its resolved config: replica-steps times the work of one replica-step."""
    trials = int(_get(config, "trials", 1))
    steps = int(_get(config, "trainer.max_steps", 1))
    return trials * steps * _step_work(config)


def longest_first(costs: list[float]) -> list[int]:
    """Job indices by decreasing cost; ties keep the sweep's order (a stable sort)."""
    return sorted(range(len(costs)), key=lambda index: -costs[index])


def _step_work(config) -> float:
    model = _get(config, "model.name", None)
    if model == "life_conv":
        m = int(_get(config, "model.m_factor", 1))
        blocks = math.floor(int(_get(config, "task.steps", 1)) * float(_get(config, "model.d_factor", 1.0)) + 1e-9)
        cells = int(_get(config, "task.batch_size", 128)) * int(_get(config, "task.train_size", 10)) ** 2
        # First block: a lookup into 512 precomputed patterns plus making the batch (about 6 units); each later
        # block: memory traffic of its 3m + 1 channels and 9 neighbour slices, plus its matmul flops.
        later_block = 10 + 3 * m + 0.04 * (2 * m * m + 19 * m)
        return cells / 12800 * (6 + max(0, blocks - 1) * later_block)
    if model == "mlp":
        widths = [int(_get(config, "model.m_factor", 1)) * int(w) for w in (_get(config, "model.hidden", []) or [])]
        nodes = int(_get(config, "task.nodes", 64))
        sizes = [nodes * nodes, *widths, nodes * nodes]
        return int(_get(config, "task.batch_size", 500)) * sum(a * b for a, b in zip(sizes, sizes[1:]))
    return 1.0


def _get(config, dotted: str, default):
    node = config
    for key in dotted.split("."):
        try:
            node = node[key]
        except (KeyError, TypeError, AttributeError):
            return default
        if node is None:
            return default
    return node
