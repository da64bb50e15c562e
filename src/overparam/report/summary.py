"""summary.csv (one row per grid point) and the table printed at the end of a sweep."""

from __future__ import annotations

from pathlib import Path

from overparam.jobs.identity import WIDTH_KEY
from overparam.report.csv_files import write_csv
from overparam.report.curves import _format
from overparam.report.pool import GridPoint
from overparam.report.tensorboard import SUCCESS_CHARTS, chart_layout

SUMMARY_FILE = "summary.csv"


def write_summary_csv(points: list[GridPoint], path: Path) -> list[dict]:
    rows = [point.summary() for point in points]
    write_csv(rows, path)
    return rows


def print_table(rows: list[dict], points: list[GridPoint], file=None) -> None:
    if not rows:
        print("no results found", file=file)
        return
    keys = list(dict.fromkeys(k for row in rows for k in row if k not in ("success_ci_low", "success_ci_high")))
    charted = [tag for title, tags in chart_layout(points).items() if title not in SUCCESS_CHARTS for tag in tags]
    shown = [k for k in keys if k in (WIDTH_KEY,) or "." in k] + [
        k for k in ("params_per_replica", "trials", "success_rate", *charted) if k in keys
    ] + [k for k in keys if k.endswith("_fraction")] + ["failed_jobs"]
    header = [k.split(".")[-1] for k in shown] + ["95% CI"]
    table = [header]
    for row in rows:
        cells = [_cell(row.get(k, "")) for k in shown]
        table.append(cells + [f"{row['success_ci_low']:.2f}-{row['success_ci_high']:.2f}"])
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for line in table:
        print("  ".join(str(c).rjust(w) for c, w in zip(line, widths)), file=file)


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else _format(value)
