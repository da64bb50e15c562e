"""A sweep's result files pooled into grid points: one per (curve, width), each replica counted once.

Jobs are grouped by every identity key that varies across them (`overparam.jobs.identity`) except the width
(`model.m_factor`), `seed` and `trials`; jobs that differ only there pool their replicas, each replica (by its
stream device and seed) once, so a search's small jobs and a grid's large one add up. Reads result.json files only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from overparam.config import flatten as flatten_config
from overparam.jobs.identity import POOLED_KEYS, WIDTH_KEY, replica_key, result_identity, setting, stream_device
from overparam.jobs.results import RESULT_FILE, read_result
from overparam.report.budget import replica_budgets
from overparam.report.pooling import pooled_columns
from overparam.stats import interval_columns, summarize

TENSORBOARD_DIR = "tensorboard"  # the report's own output folder inside a sweep: never read as results


def flatten(config: dict) -> dict:
    """Dotted keys with hashable values (lists become tuples), so configs can be compared and grouped."""
    return {key: _hashable(value) for key, value in flatten_config(config).items()}


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


@dataclass
class GridPoint:
    curve: tuple  # ((key, value), ...) for the swept keys other than width and seed
    width: object
    params_per_replica: int | None = None
    rows: list = field(default_factory=list)  # per-replica rows, pooled across seeds, each replica once
    budget_outcomes: list = field(default_factory=list)  # per row: {budget: success} (`report.budget`)
    replicas: set = field(default_factory=set)  # results.replica_key of every row
    extras: dict = field(default_factory=dict)  # task-level numbers (e.g. the Bayes ceiling)
    charts: dict = field(default_factory=dict)  # the task's and analyses' charts: title -> summary columns
    pooling: dict = field(default_factory=dict)  # what the analyses declared: metrics by outcome, rates
    jobs: int = 0
    failed_jobs: int = 0
    failures: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            **dict(self.curve),
            WIDTH_KEY: self.width,
            "params_per_replica": self.params_per_replica,
            **summarize(self.rows),
            **interval_columns(self.rows, [column for columns in self.charts.values() for column in columns]),
            **self.extras,
            **pooled_columns(self.rows, self.pooling),
            **certificate_columns(self.rows),
            "jobs": self.jobs,
            "failed_jobs": self.failed_jobs,
        }


def certificate_columns(rows: list[dict]) -> dict:
    """`uncertified_exact`: replicas exact on the held-out set at the end that fail the task's certificate
    (`Task.certify`); only for points whose replicas were checked (`certified_fraction` comes from `summarize`)."""
    checked = [row for row in rows if "certified" in row]
    if not checked:
        return {}
    return {"uncertified_exact": sum(bool(row.get("exact_at_end", row.get("success"))) and not row["certified"]
                                     for row in checked)}


def load_results(sweep_dirs: list[Path]) -> list[tuple[Path, dict]]:
    """Every readable result below the sweep folders, one per experiment: the same config and seed found twice
    (a sweep copied, or merged from two machines) counts once, preferring a finished copy over a failed one."""
    by_experiment: dict[str, tuple[Path, dict]] = {}
    for sweep_dir in sweep_dirs:
        for path in sorted(Path(sweep_dir).rglob(RESULT_FILE)):
            if TENSORBOARD_DIR in path.relative_to(sweep_dir).parts:
                continue
            result = read_result(path)
            if result is None or not isinstance(result.get("config"), dict):
                continue
            key = json.dumps(result_identity(result), sort_keys=True)
            kept = by_experiment.get(key)
            if kept is None or (kept[1].get("status") != "ok" and result.get("status") == "ok"):
                by_experiment[key] = (path, result)
    return sorted(by_experiment.values(), key=lambda item: str(item[0]))


def swept_keys(results: list[tuple[Path, dict]]) -> list[str]:
    """Identity keys whose value differs between jobs (a key left at its default counts with that value), in
    config order."""
    flats = [flatten(result_identity(result)) for _, result in results]
    keys: list[str] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    return [k for k in keys if len({repr(_value(result, k)) for _, result in results}) > 1]


def _value(result: dict, key: str):
    """What a result's job had for an identity key (its default when the config leaves it out)."""
    if key == "stream_device":
        return stream_device(result)
    return _hashable(setting(result.get("config", {}), key))


def pool(results: list[tuple[Path, dict]]) -> list[GridPoint]:
    keys = swept_keys(results)
    curve_keys = [k for k in keys if k != WIDTH_KEY and k not in POOLED_KEYS]
    points: dict[tuple, GridPoint] = {}
    for path, result in results:
        curve = tuple((k, _value(result, k)) for k in curve_keys)
        width = _value(result, WIDTH_KEY)
        point = points.setdefault((curve, width), GridPoint(curve, width))
        point.jobs += 1
        if result.get("status") != "ok":
            point.failed_jobs += 1
            point.failures.append(f"{path.parent}: {result.get('error', result.get('status'))}")
            continue
        point.params_per_replica = result.get("params_per_replica")
        for index, row in enumerate(result.get("per_replica", [])):
            key = replica_key(result, row, index, str(path))
            if key not in point.replicas:
                point.replicas.add(key)
                point.rows.append(row)
                point.budget_outcomes.append(replica_budgets(result, row))
        point.charts.update(result.get("charts", {}))
        point.extras.update({key: result[key] for key in result.get("extra_keys", ()) if key in result})
        for kind, names in result.get("pooling", {}).items():
            point.pooling.setdefault(kind, [])
            point.pooling[kind] += [name for name in names if name not in point.pooling[kind]]
    return sorted(points.values(), key=lambda p: (repr(p.curve), _sortable(p.width)))


def _sortable(value):
    return (0, value) if isinstance(value, (int, float)) else (1, repr(value))
