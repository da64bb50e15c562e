"""The tasks' own charts vs width as one figure: a panel per chart (`Task.CHARTS`), log width axis.

A chart of `[m_mean, m_ci_low, m_ci_high]` is drawn as its mean with the interval as a band; any other chart draws
each of its columns as a line. On every panel a dotted vertical line marks, per curve, the smallest width at which
every replica succeeds (for a task whose success is "fits its training set", the interpolation threshold).

    SWEEP_DIR/task_charts.png (the report writes it when the sweep's tasks declare charts)
"""

from __future__ import annotations

from pathlib import Path

CHART_FIGURE_FILE = "task_charts.png"


def chart_titles(points) -> list[str]:
    return list(dict.fromkeys(title for point in points if point.rows for title in point.charts))


def make_chart_figure(points):
    """The figure, or None when no point carries a chart."""
    from overparam.report.curves import _format, chart_kind, curve_name, curves

    titles = chart_titles(points)
    if not titles:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(len(titles), 1, figsize=(7, 3.2 * len(titles)), sharex=True, squeeze=False)
    grouped = curves(points)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, title in zip(axes[:, 0], titles):
        for index, (curve, members) in enumerate(grouped.items()):
            numeric = sorted((p for p in members if isinstance(p.width, (int, float)) and title in p.charts),
                             key=lambda p: p.width)
            if not numeric:
                continue
            color = colors[index % len(colors)]
            widths = [p.width for p in numeric]
            summaries = [p.summary() for p in numeric]
            columns = numeric[0].charts[title]
            label = curve_name(curve)
            if chart_kind(columns) == "Margin":
                axis.plot(widths, [s.get(columns[0]) for s in summaries], marker="o", color=color, label=label)
                axis.fill_between(widths, [_number(s.get(columns[1])) for s in summaries],
                                  [_number(s.get(columns[2])) for s in summaries], color=color, alpha=0.2)
            else:
                for style, column in zip(("-", "--", ":", "-."), columns):
                    axis.plot(widths, [_number(s.get(column)) for s in summaries], style, marker="o", color=color,
                              label=f"{label}: {column}" if len(columns) > 1 else label)
            everyone = [p.width for p, s in zip(numeric, summaries) if s["success_rate"] == 1.0]
            if everyone:
                axis.axvline(everyone[0], color=color, linestyle=":", linewidth=1.5,
                             label=f"{label}: every replica succeeds from m = {_format(everyone[0])}")
        axis.set_title(title, fontsize=10)
        axis.set_xscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    widths = sorted({p.width for p in points if isinstance(p.width, (int, float)) and p.rows})
    bottom = axes[-1, 0]
    if widths:
        bottom.set_xticks(widths, [_format(w) for w in widths])
        bottom.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    bottom.set_xlabel("width factor m (log scale)")
    figure.tight_layout()
    return figure


def _number(value) -> float:
    return float("nan") if value is None else value


def write_chart_figure(points, out_dir: str | Path) -> Path | None:
    figure = make_chart_figure(points)
    if figure is None:
        return None
    import matplotlib.pyplot as plt

    path = Path(out_dir) / CHART_FIGURE_FILE
    staging = path.with_name(f".{path.name}.tmp")
    figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)
    staging.replace(path)
    return path
