"""The sweep's TensorBoard runs: one per curve (every chart's series at step = width, and the success rate at step =
parameters per replica), and a layout run holding the CUSTOM SCALARS charts and the figure.

TensorBoard smooths line charts by default (Smoothing 0.6), and a smoothed success rate is not a success rate. So
every CUSTOM SCALARS chart here is a Margin chart of one series with its 95% band, which TensorBoard draws as
measured: a rate gets its Wilson interval, a mean over replicas its t-interval, any other number (a ceiling, a
mean over solved replicas) a band of zero width. A chart a task or an analysis declares with several series becomes
one chart per series (the figure charts.png keeps them together).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from overparam.report.curves import curve_name, curves
from overparam.report.pool import GridPoint
from overparam.stats import mean_interval, wilson_interval

SUCCESS_CHARTS = {
    "success rate vs width (step = m_factor)": ["success_rate"],
    "success rate vs parameters per replica (step = params)": ["success_rate_vs_params"],
}
LOW, HIGH = "/ci_low", "/ci_high"  # a series' band: `<series>/ci_low`, `<series>/ci_high`


def chart_layout(points: list[GridPoint]) -> dict:
    """Every chart of the sweep as {title: [series, ...]}: the success charts, then each task's and analysis's own,
    in the order first seen."""
    layout = {title: list(series) for title, series in SUCCESS_CHARTS.items()}
    for point in points:
        for title, columns in point.charts.items():
            layout.setdefault(title, [column for column in columns if not column.endswith(("_ci_low", "_ci_high"))])
    return layout


def margin_charts(layout: dict) -> dict:
    """{title: ["Margin", [series, low, high]]}, one chart per series (the title names the series when the chart
    had several)."""
    charts = {}
    for title, series in layout.items():
        for column in series:
            name = title if len(series) == 1 else f"{title}: {column}"
            charts[name] = ["Margin", [column, column + LOW, column + HIGH]]
    return charts


def band(point: GridPoint, summary: dict, column: str) -> tuple[float, float]:
    """The 95% band of one series at one grid point (see the module docstring)."""
    value = summary.get(column)
    if column in ("success_rate", "success_rate_vs_params"):
        return summary["success_ci_low"], summary["success_ci_high"]
    for suffix in ("_rate", "_mean", "_fraction"):
        stem = column[: -len(suffix)] if column.endswith(suffix) else None
        if stem is None:
            continue
        if f"{stem}_ci_low" in summary:
            return summary[f"{stem}_ci_low"], summary[f"{stem}_ci_high"]
        if suffix == "_fraction":
            flags = [bool(row.get(stem)) for row in point.rows if stem in row]
            return wilson_interval(sum(flags), len(flags))
        if suffix == "_mean":
            low, high = mean_interval([row.get(stem) for row in point.rows])
            return (value, value) if math.isnan(low) else (low, high)
    return value, value


def write_tensorboard(points: list[GridPoint], directory: Path, figure) -> None:
    """One TensorBoard run per curve plus a layout run; built in a fresh folder, then swapped in."""
    from torch.utils.tensorboard import SummaryWriter

    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    layout = chart_layout(points)
    series = list(dict.fromkeys(column for columns in layout.values() for column in columns))
    written: set[str] = set()
    for curve, members in curves(points).items():
        with SummaryWriter(str(staging / curve_name(curve))) as writer:
            for point in members:
                if isinstance(point.width, (int, float)):
                    written |= _write_point(writer, point, series)
    charts = {title: chart for title, chart in margin_charts(layout).items() if chart[1][0] in written}
    with SummaryWriter(str(staging / "layout")) as writer:
        writer.add_custom_scalars({"overparam sweep": charts})
        writer.add_figure("success_vs_width", figure)
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def _write_point(writer, point: GridPoint, series: list[str]) -> set[str]:
    """Each series' value and band at step = width (the success rate also at step = parameters per replica)."""
    summary = point.summary()
    summary["success_rate_vs_params"] = summary["success_rate"]
    written = set()
    for column in series:
        value = summary.get(column)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            continue
        step = int(point.params_per_replica or 0) if column == "success_rate_vs_params" else int(point.width)
        if column == "success_rate_vs_params" and not point.params_per_replica:
            continue
        low, high = band(point, summary, column)
        for tag, number in ((column, value), (column + LOW, low), (column + HIGH, high)):
            writer.add_scalar(tag, number, step)
        written.add(column)
    return written
