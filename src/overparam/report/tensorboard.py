"""The sweep's TensorBoard runs: one per curve (success rate at step = width, and at step = parameters per replica,
with every chart's columns), and a layout run holding the CUSTOM SCALARS charts and the figure."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from overparam.report.curves import chart_kind, curve_name, curves
from overparam.report.pool import GridPoint

# The custom-scalars charts every sweep has (TensorBoard's CUSTOM SCALARS tab); the Margin chart draws the Wilson
# band. Each task and analysis adds its own (stored in result.json as `charts`).
SUCCESS_CHARTS = {
    "success rate vs width (step = m_factor)": ["Margin", ["success_rate", "success_ci_low", "success_ci_high"]],
    "success rate vs parameters per replica (step = params)": ["Multiline", ["success_rate_vs_params"]],
}


def chart_layout(points: list[GridPoint]) -> dict:
    """Every chart of the sweep: the success charts, then each task's own, in the order first seen."""
    layout = dict(SUCCESS_CHARTS)
    for point in points:
        for title, columns in point.charts.items():
            layout.setdefault(title, [chart_kind(columns), list(columns)])
    return layout


def write_tensorboard(points: list[GridPoint], directory: Path, figure) -> None:
    """One TensorBoard run per curve plus a layout run; built in a fresh folder, then swapped in."""
    from torch.utils.tensorboard import SummaryWriter

    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    layout = chart_layout(points)
    tags = list(dict.fromkeys(tag for _, chart_tags in layout.values() for tag in chart_tags))
    written: set[str] = set()
    for curve, members in curves(points).items():
        with SummaryWriter(str(staging / curve_name(curve))) as writer:
            for point in members:
                summary = point.summary()
                if not isinstance(point.width, (int, float)):
                    continue
                step = int(point.width)
                for tag in tags:
                    value = summary.get(tag)
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
                        writer.add_scalar(tag, value, step)
                        written.add(tag)
                if point.params_per_replica:
                    writer.add_scalar("success_rate_vs_params", summary["success_rate"], int(point.params_per_replica))
                    written.add("success_rate_vs_params")
    # Only the charts this sweep has data for.
    charts = {title: chart for title, chart in layout.items() if chart[1][0] in written}
    with SummaryWriter(str(staging / "layout")) as writer:
        writer.add_custom_scalars({"overparam sweep": charts})
        writer.add_figure("success_vs_width", figure)
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
