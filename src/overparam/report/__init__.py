"""Pool a sweep's result files into success-rate-vs-width curves: summary.csv, TensorBoard runs, a figure.

    python -m overparam.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR]

Reads only `result.json` files (any depth below each SWEEP_DIR), so it works the same after a local
multirun, a SLURM array, a crash, or sweeps merged by hand. Jobs are grouped by every config key that
varies across the jobs except the width (`model.m_factor`), `seed` and `trials`; jobs that differ only there
pool their replicas, each replica (by its seed) once, so a search's small jobs and a grid's large one add up.
Re-running rebuilds every output from scratch.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from overparam.atomic import atomic_write_text
from overparam.config import flatten as flatten_config
from overparam.jobs.identity import POOLED_KEYS, WIDTH_KEY, replica_key, result_identity, setting, stream_device
from overparam.jobs.results import RESULT_FILE, read_result
from overparam.report.crossing import print_crossings, write_crossings
from overparam.report.curves import _format, chart_kind, curve_name, curves
from overparam.report.figures import write_chart_figure
from overparam.report.pooling import pooled_columns
from overparam.report.thresholds import print_thresholds, report_thresholds, write_tensorboard_thresholds
from overparam.stats import interval_columns, summarize

SUMMARY_FILE = "summary.csv"
# The custom-scalars charts every sweep has (TensorBoard's CUSTOM SCALARS tab); the Margin chart draws the Wilson
# band. Each task adds its own (`Task.CHARTS`, stored in result.json as `charts`).
SUCCESS_CHARTS = {
    "success rate vs width (step = m_factor)": ["Margin", ["success_rate", "success_ci_low", "success_ci_high"]],
    "success rate vs parameters per replica (step = params)": ["Multiline", ["success_rate_vs_params"]],
}
FIGURE_FILE = "success_vs_width.png"
TENSORBOARD_DIR = "tensorboard"


def flatten(config: dict) -> dict:
    """Dotted keys with hashable values (lists become tuples), so configs can be compared and grouped."""
    return {key: _hashable(value) for key, value in flatten_config(config).items()}


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


@dataclass
class GridPoint:
    curve: tuple  # ((key, value), ...) for the swept keys other than width and seed
    width: object
    params_per_replica: int | None = None
    rows: list = field(default_factory=list)  # per-replica rows, pooled across seeds, each replica once
    replicas: set = field(default_factory=set)  # results.replica_key of every row
    extras: dict = field(default_factory=dict)  # task-level numbers (e.g. the Bayes ceiling)
    charts: dict = field(default_factory=dict)  # the task's and analyses' charts: title -> summary columns
    pooling: dict = field(default_factory=dict)  # what the analyses declared: metrics by outcome, rates
    jobs: int = 0
    failed_jobs: int = 0
    failures: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            **dict(self.curve),
            WIDTH_KEY: self.width,
            "params_per_replica": self.params_per_replica,
            **summarize(self.rows),
            **interval_columns(self.rows, [column for columns in self.charts.values() for column in columns]),
            **self.extras,
            **pooled_columns(self.rows, self.pooling),
            "jobs": self.jobs,
            "failed_jobs": self.failed_jobs,
        }


def load_results(sweep_dirs: list[Path]) -> list[tuple[Path, dict]]:
    """Every readable result below the sweep folders, one per experiment: the same config and seed found twice
    (a sweep copied, or merged from two machines) counts once, preferring a finished copy over a failed one."""
    by_experiment: dict[str, tuple[Path, dict]] = {}
    for sweep_dir in sweep_dirs:
        for path in sorted(Path(sweep_dir).rglob(RESULT_FILE)):
            if TENSORBOARD_DIR in path.relative_to(sweep_dir).parts:
                continue
            result = read_result(path)
            if result is None or not isinstance(result.get("config"), dict):
                continue
            key = json.dumps(result_identity(result), sort_keys=True)
            kept = by_experiment.get(key)
            if kept is None or (kept[1].get("status") != "ok" and result.get("status") == "ok"):
                by_experiment[key] = (path, result)
    return sorted(by_experiment.values(), key=lambda item: str(item[0]))


def swept_keys(results: list[tuple[Path, dict]]) -> list[str]:
    """Identity keys whose value differs between jobs (a key left at its default counts with that value), in
    config order."""
    flats = [flatten(result_identity(result)) for _, result in results]
    keys: list[str] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    return [k for k in keys if len({repr(_value(result, k)) for _, result in results}) > 1]


def _value(result: dict, key: str):
    """What a result's job had for an identity key (its default when the config leaves it out)."""
    if key == "stream_device":
        return stream_device(result)
    return _hashable(setting(result.get("config", {}), key))


def pool(results: list[tuple[Path, dict]]) -> list[GridPoint]:
    keys = swept_keys(results)
    curve_keys = [k for k in keys if k != WIDTH_KEY and k not in POOLED_KEYS]
    points: dict[tuple, GridPoint] = {}
    for path, result in results:
        curve = tuple((k, _value(result, k)) for k in curve_keys)
        width = _value(result, WIDTH_KEY)
        point = points.setdefault((curve, width), GridPoint(curve, width))
        point.jobs += 1
        if result.get("status") != "ok":
            point.failed_jobs += 1
            point.failures.append(f"{path.parent}: {result.get('error', result.get('status'))}")
            continue
        point.params_per_replica = result.get("params_per_replica")
        for index, row in enumerate(result.get("per_replica", [])):
            key = replica_key(result, row, index, str(path))
            if key not in point.replicas:
                point.replicas.add(key)
                point.rows.append(row)
        point.charts.update(result.get("charts", {}))
        point.extras.update({key: result[key] for key in result.get("extra_keys", ()) if key in result})
        for kind, names in result.get("pooling", {}).items():
            point.pooling.setdefault(kind, [])
            point.pooling[kind] += [name for name in names if name not in point.pooling[kind]]
    return sorted(points.values(), key=lambda p: (repr(p.curve), _sortable(p.width)))


def _sortable(value):
    return (0, value) if isinstance(value, (int, float)) else (1, repr(value))


def write_summary_csv(points: list[GridPoint], path: Path) -> list[dict]:
    rows = [point.summary() for point in points]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())
    return rows


def _csv_value(value):
    if isinstance(value, tuple):
        return _format(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


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


def make_figure(points: list[GridPoint]):
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


def _chart_layout(points: list[GridPoint]) -> dict:
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
    layout = _chart_layout(points)
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


def print_table(rows: list[dict], points: list[GridPoint], file=None) -> None:
    if not rows:
        print("no results found", file=file)
        return
    keys = list(dict.fromkeys(k for row in rows for k in row if k not in ("success_ci_low", "success_ci_high")))
    charted = [tag for title, (_, tags) in _chart_layout(points).items() if title not in SUCCESS_CHARTS for tag in tags]
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


def write_report(*sweep_dirs, out: str | Path | None = None, quiet: bool = False) -> list[dict]:
    """Rebuild summary.csv, the TensorBoard curves and the figure of the sweep(s); return the summary rows."""
    sweep_dirs = [Path(d) for d in sweep_dirs]
    out_dir = Path(out) if out is not None else sweep_dirs[0]
    results = load_results(sweep_dirs)
    points = pool(results)
    rows = write_summary_csv(points, out_dir / SUMMARY_FILE)
    figure = make_figure(points)
    thresholds = report_thresholds({curve_name(c): m for c, m in curves(points).items()}, out_dir, figure)
    staging_png = out_dir / f".{FIGURE_FILE}.tmp"
    figure.savefig(staging_png, dpi=120, format="png")
    staging_png.replace(out_dir / FIGURE_FILE)
    write_tensorboard(points, out_dir / TENSORBOARD_DIR, figure)
    write_tensorboard_thresholds(thresholds, out_dir / TENSORBOARD_DIR)
    write_chart_figure(points, out_dir)  # the tasks' own charts vs width, when they declare any
    crossings = write_crossings(points, out_dir)  # where the success rate passes 0.5 and reaches 1
    if not quiet:
        print(f"\nsweep {out_dir}: {len(results)} jobs, {len(rows)} grid points -> {out_dir / SUMMARY_FILE}")
        print_table(rows, points)
        print_thresholds(thresholds)
        print_crossings(crossings)
        for point in points:
            for failure in point.failures:
                print(f"FAILED {failure}")
    return rows


def report_exit_code(rows: list[dict]) -> int:
    """Non-zero when any job of the sweep failed, so a sweep with failures never looks clean."""
    return 1 if any(row.get("failed_jobs") for row in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overparam.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep folder(s) holding result.json files")
    parser.add_argument("--out", type=Path, help="where to write the report (default: the first sweep folder)")
    args = parser.parse_args(argv)
    for sweep_dir in args.sweep_dirs:
        if not sweep_dir.is_dir():
            parser.error(f"SWEEP_DIR {sweep_dir} is not a directory")
    rows = write_report(*args.sweep_dirs, out=args.out)
    return report_exit_code(rows)


if __name__ == "__main__":
    sys.exit(main())
