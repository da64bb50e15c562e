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
from overparam.report.width import fit_thresholds, grid_bracket, params_at
from overparam.stats import mean_interval, paired_difference, wilson_interval


def points_of(dirs: list[Path]) -> list[GridPoint]:
    return [point for point in pool(load_results(dirs)) if point.rows]


def number(value, digits: int = 3) -> str:
    """`value` to `digits` significant digits (plain notation between 1e-3 and 1e5), `-` when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        text = f"{value:.{digits}g}"
        return text if "e" not in text else f"{value:.0f}"
    return f"{value:.{max(digits - 1, 1)}e}".replace("e-0", "e-").replace("e+0", "e")


def rate(successes: int, trials: int) -> str:
    if not trials:
        return "-"
    low, high = wilson_interval(successes, trials)
    return f"{successes}/{trials} ({low:.2f}-{high:.2f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def values(rows: list[dict], key: str, outcome: bool | None = None) -> list[float]:
    """The finite numbers under `key`, over the replicas that succeeded (True), failed (False) or all (None)."""
    return [row[key] for row in rows if (outcome is None or bool(row.get("success")) == outcome)
            and isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            and math.isfinite(row[key])]


def median_n(rows: list[dict], key: str, outcome: bool | None = None) -> str:
    found = values(rows, key, outcome)
    return f"{number(statistics.median(found))} [{len(found)}]" if found else "-"


def by_outcome(rows: list[dict], key: str) -> str:
    """`median over solved [n] / median over failed [n]`."""
    return f"{median_n(rows, key, True)} / {median_n(rows, key, False)}"


def span(rows: list[dict], key: str) -> str:
    found = values(rows, key)
    if not found:
        return "-"
    if max(found) - min(found) <= 1e-6 * abs(max(found)):  # one value (e.g. a destination shared by every replica)
        return number(found[0])
    return f"{number(min(found))}-{number(max(found))} (median {number(statistics.median(found))})"


def successes(point: GridPoint) -> tuple[int, int]:
    return sum(bool(row.get("success")) for row in point.rows), len(point.rows)


def label(point: GridPoint) -> str:
    return curve_name(point.curve)


# ----- success ----------------------------------------------------------------------------------------------------


def success_table(points: list[GridPoint], columns: list[str] = ()) -> str:
    rows = []
    for point in points:
        summary = point.summary()
        rows.append([label(point), point.width, point.params_per_replica, rate(*successes(point)),
                     *(number(summary.get(column)) for column in columns)])
    return table(["curve", "m", "params", "success (95% CI)", *columns], rows)


# ----- why width helps --------------------------------------------------------------------------------------------

WALK_COLUMNS = [("barrier, aligned", "walk_barrier"), ("barrier, unaligned", "walk_trained_unaligned_barrier"),
                ("L1 to the solution, aligned", "walk_l1"), ("trained loss (walk set)", "walk_start_loss")]
HESSIAN_COLUMNS = [("lambda_max", "hessian_lambda_max"), ("loss at that point", "hessian_loss"),
                   ("gradient norm", "hessian_gradient_norm"), ("near-zero fraction", "hessian_near_zero_fraction"),
                   ("negative fraction", "hessian_negative_fraction"), ("lambda_min", "hessian_lambda_min"),
                   ("outliers (of the top 20)", "hessian_outliers")]
DISTANCE_COLUMNS = [("all parameters", "init_relative_distance"), ("weights only", "init_weight_relative_distance")]


def why_width_tables(points: list[GridPoint]) -> str:
    head = ["m", "params", "success (95% CI)"]
    parts = ["Success, and the loss walk to the hand-built solution (median over solved [n] / failed [n] replicas):",
             table(head + [name for name, _ in WALK_COLUMNS],
                   [[p.width, p.params_per_replica, rate(*successes(p)), *(by_outcome(p.rows, key)
                                                                           for _, key in WALK_COLUMNS)]
                    for p in points]),
             "", "The training-loss Hessian on its fixed batch (median over solved [n] / failed [n] replicas):",
             table(["m", *(name for name, _ in HESSIAN_COLUMNS)],
                   [[p.width, *(by_outcome(p.rows, key) for _, key in HESSIAN_COLUMNS)] for p in points])]
    layers = sorted({key for p in points for row in p.rows for key in row
                     if key.startswith("init_relative_distance_layer")}, key=lambda k: int(k.rsplit("layer", 1)[1]))
    distance = DISTANCE_COLUMNS + [(f"layer {key.rsplit('layer', 1)[1]} weights", key) for key in layers]
    parts += ["", "||w - w0|| / ||w0|| (median over solved [n] / failed [n] replicas):",
              table(["m", *(name for name, _ in distance)],
                    [[p.width, *(by_outcome(p.rows, key) for _, key in distance)] for p in points]),
              "", lottery_table(points)]
    return "\n".join(parts)


def lottery_pairs(rows: list[dict]) -> list[tuple[bool, bool]]:
    return [(bool(row["rewind_success"]), bool(row["reinit_success"])) for row in rows
            if row.get("rewind_success") is not None and row.get("reinit_success") is not None]


def lottery_table(points: list[GridPoint]) -> str:
    """Per width with tickets: pruned width, both arms' rates, the paired counts and the paired difference."""
    rows, pooled = [], []
    for point in points:
        pairs = lottery_pairs(point.rows)
        if not pairs:
            continue
        pooled += pairs
        widths = values(point.rows, "prune_width")
        rows.append(_lottery_row(str(point.width), number(statistics.mean(widths)) if widths else "-", pairs))
    if not rows:
        return "No lottery results (analysis=lottery or why)."
    rows.append(_lottery_row("pooled", "", pooled))
    narrowed, kept = [], []
    for point in points:
        for row in point.rows:
            pair = lottery_pairs([row])
            if pair:
                (narrowed if row.get("prune_width", point.width) < point.width else kept).extend(pair)
    rows.append(_lottery_row("pooled, pruned to a narrower width", "", narrowed))
    rows.append(_lottery_row("pooled, kept the full width", "", kept))
    header = ["m", "pruned width (mean)", "rewound survivors", "re-initialised survivors",
              "both / rewound only / re-init only / neither", "rewound - re-init (95% CI, Newcombe)",
              "McNemar exact p"]
    minimal = [p for p in points if not lottery_pairs(p.rows)]
    note = ""
    if minimal:
        smallest = min(minimal, key=lambda p: p.width)
        note = (f"\n\nFresh nets of width m = {smallest.width} (the sweep's own grid point, trained with the same "
                f"budget): {rate(*successes(smallest))}.")
    return "Lottery: each successful replica's survivors, rewound and re-initialised (paired per replica):\n" + \
        table(header, rows) + note


def _lottery_row(name: str, width: str, pairs: list[tuple[bool, bool]]) -> list[str]:
    if not pairs:
        return [name, width, "-", "-", "-", "-", "-"]
    paired = paired_difference(pairs)
    n = paired["pairs"]
    rewound = paired["both"] + paired["first_only"]
    reinit = paired["both"] + paired["second_only"]
    return [name, width, rate(rewound, n), rate(reinit, n),
            f"{paired['both']} / {paired['first_only']} / {paired['second_only']} / {paired['neither']}",
            f"{paired['difference']:+.2f} ({paired['ci_low']:+.2f} to {paired['ci_high']:+.2f})",
            f"{paired['mcnemar_p']:.2g}"]


def why_width_figure(points: list[GridPoint], path: Path) -> None:
    """The why-width numbers against width (log axes), medians over solved (solid) and failed (dashed) replicas:
    success, the Hessian's lambda_max beside the loss at that point, the aligned walk's barrier, the weights'
    relative distance from initialisation, and the lottery's two arms for tickets pruning narrowed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(points, key=lambda p: p.width)
    widths = [p.width for p in points]
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    axis = axes[0, 0]
    counts = [successes(p) for p in points]
    bands = [wilson_interval(k, n) for k, n in counts]
    axis.plot(widths, [k / n for k, n in counts], "o-", color="black")
    axis.fill_between(widths, [b[0] for b in bands], [b[1] for b in bands], color="grey", alpha=0.3)
    axis.set_title("replicas that solve the rule (95% Wilson band)", fontsize=9)

    def medians(axis, key, color, label, log=True):
        for outcome, style in ((True, "-"), (False, "--")):
            found = [(p.width, statistics.median(values(p.rows, key, outcome))) for p in points
                     if values(p.rows, key, outcome)]
            if found:
                axis.plot(*zip(*found), style, marker="o", color=color,
                          label=f"{label} ({'solved' if outcome else 'failed'})")
        if log:
            axis.set_yscale("log")

    medians(axes[0, 1], "hessian_lambda_max", "tab:blue", "lambda_max")
    medians(axes[0, 1], "hessian_loss", "tab:orange", "loss")
    medians(axes[0, 1], "hessian_gradient_norm", "tab:green", "gradient norm")
    axes[0, 1].set_title("Hessian lambda_max, loss and gradient norm on the fixed batch", fontsize=9)
    medians(axes[0, 2], "walk_barrier", "tab:red", "aligned barrier")
    medians(axes[0, 2], "walk_trained_unaligned_barrier", "tab:purple", "unaligned barrier")
    axes[0, 2].set_title("loss-walk barrier to the hand-built solution", fontsize=9)
    medians(axes[1, 0], "init_weight_relative_distance", "tab:brown", "weights only")
    medians(axes[1, 0], "init_relative_distance", "tab:grey", "all parameters")
    axes[1, 0].set_title("||w - w0|| / ||w0||", fontsize=9)
    medians(axes[1, 1], "hessian_near_zero_fraction", "tab:cyan", "near-zero fraction", log=False)
    medians(axes[1, 1], "hessian_negative_fraction", "tab:pink", "negative fraction", log=False)
    axes[1, 1].set_title("Hessian eigenvalue mass near zero / below zero", fontsize=9)
    axis = axes[1, 2]
    for narrowed, style in ((True, "-"), (False, "--")):
        for index, color, name in ((0, "tab:olive", "rewound"), (1, "tab:blue", "re-initialised")):
            found = []
            for point in points:
                pairs = [pair for row in point.rows for pair in lottery_pairs([row])
                         if (row.get("prune_width", point.width) < point.width) == narrowed]
                if pairs:
                    found.append((point.width, sum(pair[index] for pair in pairs) / len(pairs)))
            if found:
                axis.plot(*zip(*found), style, marker="o", color=color,
                          label=f"{name}, {'narrowed' if narrowed else 'full width'}")
    axis.set_title("lottery: survivors that solve the rule again", fontsize=9)
    for axis in axes.flat:
        axis.set_xscale("log")
        axis.set_xticks(widths, [str(w) for w in widths])
        axis.minorticks_off()
        axis.grid(True, alpha=0.3)
        axis.set_xlabel("width factor m", fontsize=8)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6)
    figure.suptitle("Why width helps: medians over solved (solid) and failed (dashed) replicas", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# ----- loss walks -------------------------------------------------------------------------------------------------


def walk_table(points: list[GridPoint]) -> str:
    rows = []
    for point in points:
        k, n = successes(point)
        name = f"{label(point)}, m = {point.width}"
        rows.append([name, "unaligned", f"{k}/{n}", span(point.rows, "walk_trained_unaligned_l1"),
                     span(point.rows, "walk_trained_unaligned_barrier"), span(point.rows, "walk_start_loss"),
                     span(point.rows, "walk_end_loss")])
        rows.append([name, "aligned", "", span(point.rows, "walk_l1"), span(point.rows, "walk_barrier"), "", ""])
    return table(["run", "walk", "solved", "L1 distance", "barrier", "trained loss", "loss at the destination"], rows)


# ----- jamming ----------------------------------------------------------------------------------------------------


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
