"""How long a job will take, roughly: enough to start a sweep's longest jobs first.

A launcher that runs n jobs at a time in the order given can leave one core running the sweep's longest job
alone at the end (the card's sweep: the steps=3, m_factor=20 job is half of the whole sweep's work). Starting
jobs longest first (LPT) keeps every worker busy until near the end. Only the order matters, so the model
is coarse: it is calibrated on this repo's Life bench (README "Speed"), not a prediction in seconds.
"""

from __future__ import annotations


def estimated_cost(config) -> float:
    """Relative work of one job from its resolved config: replica-steps times the work of one replica-step."""
    trials = int(_get(config, "trials", 1))
    steps = int(_get(config, "trainer.max_steps", 1))
    return trials * steps * _step_work(config)


def longest_first(costs: list[float]) -> list[int]:
    """Job indices by decreasing cost; ties keep the sweep's order (a stable sort)."""
    return sorted(range(len(costs)), key=lambda index: -costs[index])


def _step_work(config) -> float:
    """The model class's own estimate (`relative_step_work(model, task)`), or 1 for a class without one."""
    target = _get(config, "model._target_", None)
    if target is None:
        return 1.0
    from overparam.config import locate

    work = getattr(locate(target), "relative_step_work", None)
    return float(work(config["model"], config["task"])) if work is not None else 1.0


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
