"""Pool a sweep's result files into success-rate-vs-width curves: summary.csv, TensorBoard runs, figures, the
critical width (thresholds.csv), where each curve crosses one half (crossing.csv), and success and the critical width
at every training budget (budget.csv, thresholds_by_budget.csv and their figures, `report.budget`).

    python -m overparam.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR]

Reads only `result.json` files (any depth below each SWEEP_DIR), so it works the same after a local multirun, a
SLURM array, a crash, or sweeps merged by hand (`report.pool`). Re-running rebuilds every output from scratch.
"""

from __future__ import annotations

from pathlib import Path

from overparam.report.budget_files import print_budget_thresholds, print_certificates, write_budget_report
from overparam.report.curves import curve_name, curves
from overparam.report.figures import FIGURE_FILE, make_figure, save_figure, write_chart_figure
from overparam.report.pool import load_results, pool
from overparam.report.summary import SUMMARY_FILE, print_table, write_summary_csv
from overparam.report.tensorboard import write_tensorboard
from overparam.report.width_files import (
    print_crossings,
    print_thresholds,
    report_thresholds,
    write_crossings,
    write_tensorboard_thresholds,
)

__all__ = ["load_results", "pool", "report_exit_code", "write_report"]
TENSORBOARD_SUBDIR = "tensorboard"


def write_report(*sweep_dirs, out: str | Path | None = None, quiet: bool = False) -> list[dict]:
    """Rebuild summary.csv, the TensorBoard curves and the figure of the sweep(s); return the summary rows."""
    sweep_dirs = [Path(d) for d in sweep_dirs]
    out_dir = Path(out) if out is not None else sweep_dirs[0]
    results = load_results(sweep_dirs)
    points = pool(results)
    rows = write_summary_csv(points, out_dir / SUMMARY_FILE)
    figure = make_figure(points)
    thresholds = report_thresholds({curve_name(c): m for c, m in curves(points).items()}, out_dir, figure)
    save_figure(figure, out_dir / FIGURE_FILE, dpi=120, close=False)  # TensorBoard gets it next
    write_tensorboard(points, out_dir / TENSORBOARD_SUBDIR, figure)
    write_tensorboard_thresholds(thresholds, out_dir / TENSORBOARD_SUBDIR)
    write_chart_figure(points, out_dir)  # the tasks' own charts vs width, when they declare any
    crossings = write_crossings(points, out_dir)  # where the success rate passes 0.5 and reaches 1
    _, budget_thresholds = write_budget_report(points, out_dir)  # success and m50 / m90 at every training budget
    if not quiet:
        print(f"\nsweep {out_dir}: {len(results)} jobs, {len(rows)} grid points -> {out_dir / SUMMARY_FILE}")
        print_table(rows, points)
        print_thresholds(thresholds)
        print_crossings(crossings)
        print_budget_thresholds(budget_thresholds)
        print_certificates(points)
        for point in points:
            for failure in point.failures:
                print(f"FAILED {failure}")
    return rows


def report_exit_code(rows: list[dict]) -> int:
    """Non-zero when any job of the sweep failed, so a sweep with failures never looks clean."""
    return 1 if any(row.get("failed_jobs") for row in rows) else 0
