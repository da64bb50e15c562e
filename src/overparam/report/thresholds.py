"""The report's thresholds: m50 / m90 per curve to thresholds.csv, the figure, TensorBoard and the terminal.

Called from overparam.report with the curves it draws ({curve name: grid points}); it reads only what the
grid points hold (per-replica `success`, width, params_per_replica), so `python -m overparam.report DIR`
gives the same numbers as the end of the sweep.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from overparam.atomic import atomic_write_text
from overparam.report.width import FIELDS, TARGETS, describe, threshold_rows

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
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


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
