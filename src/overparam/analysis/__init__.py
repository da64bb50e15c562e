"""Analyses run on every replica after training (the `analysis` config group): why width helps.

`run_analyses` is the job's one call. Each part of the `analysis` group names its class (`_target_`, an
`overparam.analysis.base.Analysis`); it is built with `hydra.utils.instantiate` and run on the trained replicas.
Generic analyses live here (`distance`, `hessian`); a task family keeps its own in its package (the Life package:
loss walks to the hand-built solution, the lottery).
"""

from __future__ import annotations

import copy

from overparam.analysis.base import Analysis, Trained

__all__ = ["Analysis", "Trained", "run_analyses"]


def run_analyses(config, task, net, seeds: list[int], per_replica: list[dict], job_dir) -> tuple[list[dict], dict]:
    """Per replica the analyses' numbers, and per job their numbers plus what the report needs to pool them
    (`pooling`: metrics by outcome, rates; `charts`)."""
    from hydra.utils import instantiate

    from overparam.core.build import build_net

    parts = dict(config.get("analysis") or {})
    rows = [{} for _ in per_replica]
    if not parts:
        return rows, {}
    trained = Trained(config, task, copy.deepcopy(net).cpu().eval(), build_net(config.model, task, seeds), list(seeds),
                      per_replica, job_dir)
    summary: dict = {}
    pooling: dict = {"by_outcome": [], "rates": []}
    charts: dict = {}
    for part in parts.values():
        analysis: Analysis = instantiate(part, _convert_="all")
        part_rows, part_summary = analysis.run(trained)
        for row, more in zip(rows, part_rows):
            row.update(more)
        summary.update(part_summary)
        pooling["by_outcome"] += list(analysis.BY_OUTCOME)
        pooling["rates"] += list(analysis.RATES)
        charts.update(analysis.CHARTS)
    return rows, {**summary, "pooling": pooling, "analysis_charts": charts}
