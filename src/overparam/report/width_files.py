"""The report's answer to "where does each curve cross the target?", written out: thresholds.csv (m50 / m90 with
95% intervals, `width.fit_thresholds`), crossing.csv (the grid's bracket of one half, `width.grid_bracket`), their
marks on the figure, TensorBoard and the terminal. Reads only what the grid points hold (per-replica `success`,
width, params_per_replica), so `python -m overparam.report DIR` gives the same numbers as the end of the sweep.
"""

from __future__ import annotations

import math
import sys
from itertools import pairwise
from pathlib import Path

from overparam.report.csv_files import write_csv
from overparam.report.curves import curve_name, curves
from overparam.report.width import FIELDS, TARGETS, describe, grid_bracket, threshold_rows

THRESHOLDS_FILE = "thresholds.csv"
TEXT_TAG = "thresholds"


def curve_thresholds(named_curves: dict, targets=TARGETS) -> list[dict]:
    """Rows of thresholds.csv for every curve with numeric widths."""
    rows = []
    for name, members in named_curves.items():
        numeric = [p for p in members if isinstance(p.width, (int, float)) and not isinstance(p.width, bool)]
        if not numeric:
            continue
        widths = [p.width for p in numeric]
        successes = [sum(bool(row.get("success")) for row in p.rows) for p in numeric]
        trials = [len(p.rows) for p in numeric]
        grid = [(p.width, p.params_per_replica) for p in numeric if p.params_per_replica]
        rows.extend(threshold_rows(name, widths, successes, trials, grid, targets))
    return rows


def write_thresholds_csv(rows: list[dict], path: Path) -> None:
    write_csv(rows, path, FIELDS)


def draw_thresholds(rows: list[dict], figure) -> None:
    """A marker at (m_q, q) with its 95% interval as a horizontal bar, in the colour of the curve's line;
    separated data get the bracketing interval as a dashed bar without a marker."""
    axis = figure.axes[0]
    colours = {line.get_label(): line.get_color() for line in axis.get_lines()}
    low_limit, high_limit = axis.get_xlim()
    for row in rows:
        if row["unit"] != "m_factor" or row["curve"] not in colours:
            continue
        colour, target = colours[row["curve"]], row["target"]
        low = max(row["ci_low"], low_limit) if row["ci_low"] == row["ci_low"] else low_limit
        high = min(row["ci_high"], high_limit) if row["ci_high"] == row["ci_high"] else high_limit
        if row["status"] == "ok":
            axis.plot([low, high], [target, target], color=colour, linewidth=2.5, alpha=0.8)
            axis.plot([row["estimate"]], [target], marker="D", markersize=7, color=colour,
                      markeredgecolor="black")
        elif row["status"] == "separated":
            axis.plot([low, high], [target, target], color=colour, linewidth=2, linestyle="--")
    axis.set_xlim(low_limit, high_limit)
    if any(row["status"] in ("ok", "separated") for row in rows):
        axis.plot([], [], marker="D", color="grey", markeredgecolor="black", linewidth=2.5,
                  label="m50 / m90, 95% CI (dashed: separated data)")
        axis.legend(fontsize=8)


def write_tensorboard_thresholds(rows: list[dict], directory: Path) -> None:
    """threshold/m50 (and its interval) as scalars in each curve's run; every row as a text table."""
    from torch.utils.tensorboard import SummaryWriter

    for row in rows:
        if row["unit"] != "m_factor" or row["status"] != "ok":
            continue
        with SummaryWriter(str(directory / row["curve"])) as writer:
            for suffix, key in (("", "estimate"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
                if math.isfinite(row[key]):
                    writer.add_scalar(f"threshold/{row['quantity']}{suffix}", row[key], 0)
    table = ["| curve | threshold (m_factor) | threshold (params per replica) | status |", "|---|---|---|---|"]
    for in_m, in_params in zip(rows[::2], rows[1::2]):
        table.append(f"| {in_m['curve']} | {describe(in_m)} | {describe(in_params)} | {in_m['status']} |")
    with SummaryWriter(str(directory / "layout")) as writer:
        writer.add_text(TEXT_TAG, "\n".join(table), 0)


def print_thresholds(rows: list[dict], file=None) -> None:
    if not rows:
        return
    print("critical width (logistic fit in log m, 95% profile-likelihood CI):", file=file)
    for in_m, in_params in zip(rows[::2], rows[1::2]):
        print(f"  {in_m['curve']}: {describe(in_m)}; {describe(in_params)}", file=file)


def report_thresholds(named_curves: dict, out_dir: Path, figure) -> list[dict]:
    """thresholds.csv and the figure's markers; returns the rows (TensorBoard and terminal use them next)."""
    rows = curve_thresholds(named_curves)
    write_thresholds_csv(rows, Path(out_dir) / THRESHOLDS_FILE)
    draw_thresholds(rows, figure)
    return rows


# ----- crossing.csv: the grid's own bracket, no model -------------------------------------------------------


CROSSING_FILE = "crossing.csv"


def crossings(points) -> list[dict]:
    """One row per curve of the report's grid points (`overparam.report.GridPoint`), numeric widths only."""
    rows = []
    for curve, members in curves(points).items():
        grid = sorted(
            ((p.width, p.params_per_replica, p.summary()["success_rate"]) for p in members
             if isinstance(p.width, (int, float))),
            key=lambda item: item[0],
        )
        if not grid:
            continue
        by_width = {item[0]: item for item in grid}
        low, high = (by_width.get(width) for width in grid_bracket([(w, rate) for w, _, rate in grid], 0.5))
        everyone = [item for item in grid if item[2] == 1.0]
        rows.append({
            "curve": curve_name(curve),
            **dict(curve),
            "width_below": low[0] if low else None, "params_below": low[1] if low else None,
            "rate_below": low[2] if low else None,
            "width_above": high[0] if high else None, "params_above": high[1] if high else None,
            "rate_above": high[2] if high else None,
            # with non-monotone rates a narrower width may pass 0.5 and a wider one fall back: say so
            "monotone": all(a[2] <= b[2] for a, b in pairwise(grid)),
            "all_succeed_width": everyone[0][0] if everyone else None,
            "all_succeed_params": everyone[0][1] if everyone else None,
        })
    return rows


def write_crossings(points, out_dir: str | Path) -> list[dict]:
    rows = crossings(points)
    write_csv(rows, Path(out_dir) / CROSSING_FILE, cell=_crossing_cell)
    return rows


def _crossing_cell(value):
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
