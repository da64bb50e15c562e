"""Where each curve's success rate crosses one half and where it first reaches one, read off the grid.

A plain threshold with no model: the crossing lies between the largest width whose success rate is <= 0.5 and the
smallest whose rate is >= 0.5 (both in width and in parameters per replica, so a task can quote N* directly).
`all_succeed_width` is the smallest width at which every replica succeeds: for a task whose success is "fits its
training set" it is the interpolation threshold. A fitted threshold with its interval (a logistic fit of success vs
log width) can replace the half crossing; this is what the grid alone says.

    SWEEP_DIR/crossing.csv, one row per curve (the report writes it beside summary.csv)
"""

from __future__ import annotations

import csv
import io
import sys
from itertools import pairwise
from pathlib import Path

from overparam.atomic import atomic_write_text

CROSSING_FILE = "crossing.csv"


def crossings(points) -> list[dict]:
    """One row per curve of the report's grid points (`overparam.report.GridPoint`), numeric widths only."""
    from overparam.report.curves import curve_name, curves

    rows = []
    for curve, members in curves(points).items():
        grid = sorted(
            ((p.width, p.params_per_replica, p.summary()["success_rate"]) for p in members
             if isinstance(p.width, (int, float))),
            key=lambda item: item[0],
        )
        if not grid:
            continue
        below = [item for item in grid if item[2] <= 0.5]
        above = [item for item in grid if item[2] >= 0.5]
        everyone = [item for item in grid if item[2] == 1.0]
        low, high = (below[-1] if below else None), (above[0] if above else None)
        rows.append({
            "curve": curve_name(curve),
            **dict(curve),
            "width_below": low[0] if low else None, "params_below": low[1] if low else None,
            "rate_below": low[2] if low else None,
            "width_above": high[0] if high else None, "params_above": high[1] if high else None,
            "rate_above": high[2] if high else None,
            # Non-monotone rates can put the last rate <= 0.5 above the first >= 0.5: then the bracket is not one.
            "monotone": all(a[2] <= b[2] for a, b in pairwise(grid)),
            "all_succeed_width": everyone[0][0] if everyone else None,
            "all_succeed_params": everyone[0][1] if everyone else None,
        })
    return rows


def write_crossings(points, out_dir: str | Path) -> list[dict]:
    rows = crossings(points)
    columns = list(dict.fromkeys(column for row in rows for column in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    atomic_write_text(Path(out_dir) / CROSSING_FILE, buffer.getvalue())
    return rows


def _cell(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def print_crossings(rows: list[dict], file=sys.stdout) -> None:
    for row in rows:
        low = f"width {row['width_below']} ({row['params_below']} params, rate {_rate(row['rate_below'])})"
        high = f"width {row['width_above']} ({row['params_above']} params, rate {_rate(row['rate_above'])})"
        if row["width_below"] is not None and row["width_above"] is not None:
            half = f"success rate crosses 0.5 between {low} and {high}"
        elif row["width_below"] is not None:
            half = f"success rate <= 0.5 up to the widest point, {low}"
        else:
            half = f"success rate >= 0.5 from the narrowest point, {high}"
        everyone = (f"; every replica succeeds from width {row['all_succeed_width']} "
                    f"({row['all_succeed_params']} params)" if row["all_succeed_width"] is not None else "")
        note = "" if row["monotone"] else " [rates not monotone in width]"
        print(f"{row['curve']}: {half}{everyone}{note}", file=file)


def _rate(value) -> str:
    return "-" if value is None else f"{value:.2f}"
