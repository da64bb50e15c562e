"""Markdown tables from pooled grid points: the formatting the docs' tables share (`report.tables`)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from overparam.report.curves import curve_name
from overparam.report.pool import GridPoint, load_results, pool
from overparam.stats import wilson_interval


def points_of(dirs: list[Path]) -> list[GridPoint]:
    return [point for point in pool(load_results(dirs)) if point.rows]


def number(value, digits: int = 3) -> str:
    """`value` to `digits` significant digits (plain notation between 1e-3 and 1e5), `-` when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        text = f"{value:.{digits}g}"
        return text if "e" not in text else f"{value:.0f}"
    return f"{value:.{max(digits - 1, 1)}e}".replace("e-0", "e-").replace("e+0", "e")


def rate(successes: int, trials: int) -> str:
    if not trials:
        return "-"
    low, high = wilson_interval(successes, trials)
    return f"{successes}/{trials} ({low:.2f}-{high:.2f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def values(rows: list[dict], key: str, outcome: bool | None = None) -> list[float]:
    """The finite numbers under `key`, over the replicas that succeeded (True), failed (False) or all (None)."""
    return [row[key] for row in rows if (outcome is None or bool(row.get("success")) == outcome)
            and isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            and math.isfinite(row[key])]


def median_n(rows: list[dict], key: str, outcome: bool | None = None) -> str:
    found = values(rows, key, outcome)
    return f"{number(statistics.median(found))} [{len(found)}]" if found else "-"


def by_outcome(rows: list[dict], key: str) -> str:
    """`median over solved [n] / median over failed [n]`."""
    return f"{median_n(rows, key, True)} / {median_n(rows, key, False)}"


def span(rows: list[dict], key: str) -> str:
    found = values(rows, key)
    if not found:
        return "-"
    if max(found) - min(found) <= 1e-6 * abs(max(found)):  # one value (e.g. a destination shared by every replica)
        return number(found[0])
    return f"{number(min(found))}-{number(max(found))} (median {number(statistics.median(found))})"


def successes(point: GridPoint) -> tuple[int, int]:
    return sum(bool(row.get("success")) for row in point.rows), len(point.rows)


def label(point: GridPoint) -> str:
    return curve_name(point.curve)


# ----- success ----------------------------------------------------------------------------------------------------


def success_table(points: list[GridPoint], columns: list[str] = ()) -> str:
    rows = []
    for point in points:
        summary = point.summary()
        rows.append([label(point), point.width, point.params_per_replica, rate(*successes(point)),
                     *(number(summary.get(column)) for column in columns)])
    return table(["curve", "m", "params", "success (95% CI)", *columns], rows)


# ----- why width helps --------------------------------------------------------------------------------------------
