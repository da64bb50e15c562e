"""The sweep's figures: success rate vs width with Wilson bands (success_vs_width.png), and the tasks' and analyses'
own charts vs width (charts.png), a panel per chart (`Task.CHARTS`, `Analysis.CHARTS`), log width axis.

A chart of `[m_mean, m_ci_low, m_ci_high]` is drawn as its mean with the interval as a band; any other chart draws
each of its columns as a line. On every panel a dotted vertical line marks, per curve, the smallest width at which
every replica succeeds (for a task whose success is "fits its training set", the interpolation threshold).

    SWEEP_DIR/charts.png (the report writes it when the sweep's tasks or analyses declare charts)
"""

from __future__ import annotations

from pathlib import Path

from overparam.report.curves import _format, chart_kind, curve_name, curves

CHART_FIGURE_FILE = "charts.png"
FIGURE_FILE = "success_vs_width.png"


def chart_titles(points) -> list[str]:
    return list(dict.fromkeys(title for point in points if point.rows for title in point.charts))


def make_chart_figure(points):
    """The figure, or None when no point carries a chart."""
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


def save_figure(figure, path: Path, dpi: int = 110, close: bool = True) -> None:
    """Write a PNG through a staging file, so a reader never sees half a figure; close it unless still needed."""
    staging = path.with_name(f".{path.name}.tmp")
    figure.savefig(staging, dpi=dpi, format="png")
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    staging.replace(path)


def write_chart_figure(points, out_dir: str | Path) -> Path | None:
    figure = make_chart_figure(points)
    if figure is None:
        return None
    path = Path(out_dir) / CHART_FIGURE_FILE
    save_figure(figure, path)
    return path


def _curve_style(index: int) -> dict:
    """Curves that coincide (two rows of zeros) must all stay visible: each later curve is drawn thinner, dashed
    differently, with a smaller hollow marker of another shape, so the ones beneath show around it."""
    return {
        "marker": "osD^vPX"[index % 7],
        "markersize": max(3.0, 10.0 - 1.5 * index),
        "markerfacecolor": "none",
        "markeredgewidth": 1.5,
        "linestyle": ["-", "--", "-.", ":"][index % 4],
        "linewidth": max(1.0, 3.0 - 0.5 * index),
    }


def make_figure(points):
    """Success rate vs width, one line per curve, log x, Wilson 95% bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (curve, members) in enumerate(curves(points).items()):
        numeric = [p for p in members if isinstance(p.width, (int, float))]
        if not numeric:
            continue
        summaries = [p.summary() for p in numeric]
        widths = [p.width for p in numeric]
        rates = [s["success_rate"] for s in summaries]
        line = axis.plot(widths, rates, label=curve_name(curve), **_curve_style(index))[0]
        axis.fill_between(
            widths, [s["success_ci_low"] for s in summaries], [s["success_ci_high"] for s in summaries],
            color=line.get_color(), alpha=0.15,
        )
    axis.set_xscale("log")
    widths = sorted({p.width for p in points if isinstance(p.width, (int, float)) and p.rows})
    if widths:
        axis.set_xticks(widths, [_format(w) for w in widths])
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("width factor m")
    axis.set_ylabel("success rate (95% Wilson band)")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
