"""A sweep as pandas DataFrames, pooled exactly as the report pools it (`report.pool`).

    import overparam
    replicas = overparam.load_sweep("multirun/life")     # one row per replica
    points = overparam.load_summary("multirun/life")     # one row per grid point, as summary.csv

`load_sweep` has, per replica: the sweep's curve keys (every identity key that varies across its jobs, as
`task.steps`), the width (`model.m_factor`), `params_per_replica`, the replica's `seed`, `success` and every
per-replica number the job recorded (lists, such as a walk's profile, are left out), and its job's `status` and
folder (`job_dir`). A failed job has one row with its status and error and no replica numbers. A replica trained by
two jobs (a search's small job and a grid's large one) is one row.
"""

from __future__ import annotations

from pathlib import Path

from overparam.jobs.identity import WIDTH_KEY, replica_key
from overparam.report.pool import load_results, pool, swept_keys


def load_sweep(*sweep_dirs: str | Path):
    """One row per replica of the sweep(s); see the module docstring."""
    import pandas as pd

    results = load_results([Path(d) for d in sweep_dirs])
    points = pool(results)
    curve_of = {}
    for point in points:
        for row in point.rows:
            curve_of[id(row)] = point
    rows, seen = [], set()
    for path, result in results:
        if result.get("status") != "ok":
            rows.append({**_point_keys(points, result), "status": result.get("status"), "error": result.get("error"),
                         "job_dir": str(path.parent)})
            continue
        for index, replica in enumerate(result.get("per_replica", [])):
            point = curve_of.get(id(replica))
            key = (id(point), replica_key(result, replica, index, str(path)))
            if point is None or key in seen:
                continue
            seen.add(key)
            numbers = {k: v for k, v in replica.items() if not isinstance(v, (list, dict))}
            rows.append({**dict(point.curve), WIDTH_KEY: point.width, "params_per_replica": point.params_per_replica,
                         **numbers, "status": "ok", "job_dir": str(path.parent)})
    return pd.DataFrame(rows)


def load_summary(*sweep_dirs: str | Path):
    """One row per grid point, the columns of summary.csv (success rate and its Wilson interval, means, ...)."""
    import pandas as pd

    points = pool(load_results([Path(d) for d in sweep_dirs]))
    return pd.DataFrame([point.summary() for point in points])


def _point_keys(points, result: dict) -> dict:
    """The curve keys and width of a failed job, from its config (it has no grid point of its own rows)."""
    from overparam.jobs.identity import setting

    keys = list(dict.fromkeys(key for point in points for key, _ in point.curve))
    config = result.get("config", {})
    return {**{key: setting(config, key) for key in keys}, WIDTH_KEY: setting(config, WIDTH_KEY)}


__all__ = ["load_summary", "load_sweep", "swept_keys"]
