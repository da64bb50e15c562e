"""The tables the docs show, printed as Markdown from result files, so a reader can regenerate every number:

    python -m overparam.report.tables success DIR [DIR ...] [--columns board_accuracy_mean ...]
    python -m overparam.report.tables why-width DIR [DIR ...] [--figure PNG]
    python -m overparam.report.tables walk DIR [DIR ...]
    python -m overparam.report.tables jamming DIR [DIR ...]
    python -m overparam.report.tables double-descent DIR [DIR ...]

Each DIR is a sweep or job folder (every result.json below it is read, as `python -m overparam.report` reads them;
jobs that differ only in seed pool their replicas). Reads result files only: no task or analysis code.

- `success`: per grid point the replicas that succeed with a 95% Wilson interval, and any per-point columns asked.
- `why-width`: success and, over solved and failed replicas apart, the medians (with the replica count behind each)
  of the loss walk, the Hessian (with the loss and gradient norm beside lambda_max) and the distance from
  initialisation (all parameters, weights only, per layer); the lottery's rewound and re-initialised survivors as
  paired outcomes with the paired difference (Newcombe's interval, exact McNemar test), per width and pooled.
- `walk`: the trained replicas' loss walks (unaligned and aligned): ranges and medians, as Firner reports them.
- `jamming`: success, violated examples and steps per width, with N (all parameters) and N_w (weights only), and
  the critical N* read off the grid and fitted (`report.width`).
- `double-descent`: test and train error per width with 95% t-intervals and the replicas that fit.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from overparam.report.curves import curve_name
from overparam.report.pool import GridPoint, load_results, pool
from overparam.report.table_format import label, number, rate, success_table, successes, table, values
from overparam.report.why_width_tables import walk_table, why_width_figure, why_width_tables
from overparam.report.width import fit_thresholds, grid_bracket, params_at
from overparam.stats import mean_interval


def weights_only(result: dict) -> int | None:
    """N_w: the weights of the d -> h ... h -> 1 net (no biases), from a result's hidden widths and dimension."""
    if not result.get("hidden") or not result.get("dimension"):
        return None
    sizes = [int(result["dimension"]), *(int(h) for h in result["hidden"]), 1]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def jamming_tables(points: list[GridPoint], results: list[tuple[Path, dict]]) -> str:
    points_per_task = {r.get("points") for _, r in results if r.get("points")}
    dimensions = {r.get("dimension") for _, r in results if r.get("dimension")}
    if len(points_per_task) != 1 or len(dimensions) != 1:
        return "jamming tables need one P and one d per table (pass one sweep at a time)"
    p_count = points_per_task.pop()
    # per architecture (N identifies it within one P and d): N_w and the steps its jobs trained
    weights = {r.get("params_per_replica"): weights_only(r) for _, r in results}
    trained: dict = {}
    for _, r in results:
        trained.setdefault(r.get("params_per_replica"), []).append(r.get("trained_steps"))
    rows = []
    for point in points:
        k, n = successes(point)
        fitted = values(point.rows, "fitted_at_step")
        violated = values(point.rows, "violated_fraction")
        steps = [s for s in trained.get(point.params_per_replica, []) if s is not None]
        rows.append([label(point), point.width, point.params_per_replica, weights.get(point.params_per_replica),
                     rate(k, n), f"{100 * statistics.mean(violated):.2g}%" if violated else "-",
                     f"{int(min(fitted)):,}-{int(max(fitted)):,}" if fitted else "-",
                     ", ".join(sorted({f"{s:,}" for s in steps}))])
    out = [table(["curve", "h", "N", "N_w", "success (95% CI)", "violated examples (mean)",
                  "steps to fit (fitted replicas)", "steps trained (job)"], rows), "",
           f"Critical N* (P = {p_count}): read off the grid, and the logistic fit's m50 (95% CI; report.width):"]
    crit = []
    for curve in dict.fromkeys(p.curve for p in points):
        members = sorted((p for p in points if p.curve == curve), key=lambda p: p.width)
        counts = [successes(p) for p in members]
        fit = fit_thresholds([p.width for p in members], [k for k, _ in counts], [n for _, n in counts], (0.5,))[0]
        row = [curve_name(curve)]
        for unit in ("N", "N_w"):
            size = {p.width: (p.params_per_replica if unit == "N" else weights.get(p.params_per_replica))
                    for p in members}
            low, high = grid_bracket([(size[p.width], k / n) for p, (k, n) in zip(members, counts)], 0.5)
            row.append(f"{number(low)}-{number(high)} (P/{unit}* {_ratio(p_count, high)}-{_ratio(p_count, low)})"
                       if low is not None and high is not None else "-")
            grid = sorted(size.items())
            if fit.status == "ok":
                estimate = params_at(fit.estimate, grid)
                ci = [params_at(v, grid) if 0 < v < math.inf else math.nan for v in (fit.ci_low, fit.ci_high)]
                row.append(f"{unit}* = {number(estimate)} ({number(ci[0])}-{number(ci[1])}), P/{unit}* = "
                           f"{_ratio(p_count, estimate)} ({_ratio(p_count, ci[1])}-{_ratio(p_count, ci[0])})")
            elif fit.status == "separated":
                bounds = [params_at(v, grid) if math.isfinite(v) else math.nan for v in (fit.ci_low, fit.ci_high)]
                row.append(f"separated: {unit}* in ({number(bounds[0])}, {number(bounds[1])}], P/{unit}* "
                           f"{_ratio(p_count, bounds[1])}-{_ratio(p_count, bounds[0])}")
            else:
                row.append(fit.status)
        crit.append([row[0], row[1], row[3], row[2], row[4]])
    out.append(table(["curve", "N* bracket, all parameters (grid: rate < 0.5 to >= 0.5)",
                      "N_w* bracket, weights only", "logistic fit (report.width), all parameters",
                      "logistic fit, weights only"], crit))
    return "\n".join(out)


def _ratio(points: int, parameters) -> str:
    return f"{points / parameters:.2f}" if parameters and math.isfinite(parameters) else "-"


# ----- double descent ---------------------------------------------------------------------------------------------


def double_descent_table(points: list[GridPoint]) -> str:
    rows = []
    for point in points:
        k, n = successes(point)
        test, train, clean = (values(point.rows, key) for key in ("test_error", "train_error", "train_clean_error"))
        low, high = mean_interval(test)
        rows.append([point.width, f"{point.params_per_replica:,}", f"{100 * statistics.mean(test):.1f}% "
                     f"({100 * low:.1f}-{100 * high:.1f})" if n > 1 else f"{100 * test[0]:.1f}%",
                     f"{100 * statistics.mean(train):.1f}%", f"{100 * statistics.mean(clean):.1f}%", f"{k}/{n}"])
    return table(["h", "parameters", "test error (95% t-interval)", "train error (noisy labels)",
                  "train error (true labels)", "replicas fitting"], rows)


# ----- command line -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overparam.report.tables", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["success", "why-width", "walk", "jamming", "double-descent"])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or job folder(s) holding result.json files")
    parser.add_argument("--columns", nargs="*", default=[], help="success: summary columns to add")
    parser.add_argument("--figure", type=Path, help="why-width: also draw its figure to this PNG")
    args = parser.parse_args(argv)
    for folder in args.dirs:
        if not folder.is_dir():
            parser.error(f"{folder} is not a directory")
    results = load_results(args.dirs)
    points = [point for point in pool(results) if point.rows]
    if not points:
        parser.error("no finished results found")
    if args.kind == "success":
        print(success_table(points, args.columns))
    elif args.kind == "why-width":
        print(why_width_tables(points))
        if args.figure:
            why_width_figure(points, args.figure)
    elif args.kind == "walk":
        print(walk_table(points))
    elif args.kind == "jamming":
        print(jamming_tables(points, results))
    else:
        print(double_descent_table(points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
