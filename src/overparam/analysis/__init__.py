"""Why width helps: analyses run on every replica after training (the `analysis` config group).

`run_analyses` is the job's one call: per replica a dict of numbers (merged into result.json's `per_replica`
rows), per job a dict (merged into result.json), and figures in the job folder. Every part is plain torch/scipy
and reads only the config's `analysis.<part>` settings; with no `analysis` key in the config it does nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .config import PARTS, check_analysis, enabled_parts

__all__ = ["run_analyses", "check_analysis", "PARTS"]


def run_analyses(config, task, net, seeds: list[int], per_replica: list[dict], job_dir) -> tuple[list[dict], dict]:
    parts = enabled_parts(config)
    rows = [{} for _ in per_replica]
    summary: dict = {}
    if not parts:
        return rows, summary
    from ..build import build_net

    net = copy.deepcopy(net).cpu().eval()
    initial = build_net(config.model, task, seeds)  # deterministic from the seeds: see distance.py
    successes = [bool(row.get("success")) for row in per_replica]
    job_dir = Path(job_dir)
    if "distance" in parts:
        _merge(rows, _distance(net, initial))
    if "walk" in parts:
        from .walk import loss_walks, plot_walks

        settings = config.analysis.walk
        walk_rows, profiles = loss_walks(net, initial, task, settings)
        _merge(rows, walk_rows)
        if profiles and settings.images:
            plot_walks(profiles, successes, job_dir / "walks.png")
    if "hessian" in parts:
        from .hessian import hessian_spectra, plot_densities

        settings = config.analysis.hessian
        hessian_rows, densities = hessian_spectra(net, task, settings)
        _merge(rows, hessian_rows)
        if densities and settings.images:
            plot_densities(densities, successes, job_dir / "hessian.png")
    if "lottery" in parts:
        from .lottery import lottery

        lottery_rows, lottery_summary = lottery(net, initial, task, per_replica, seeds, config,
                                                config.analysis.lottery)
        _merge(rows, lottery_rows)
        summary.update(lottery_summary)
    return rows, summary


def _distance(net, initial):
    from .distance import distance_from_init

    return distance_from_init(net, initial)


def _merge(rows: list[dict], extra: list[dict]) -> None:
    for row, more in zip(rows, extra):
        row.update(more)
