"""The why-width page's tables and figure (`python -m overparam.report.tables why-width|walk`): the loss walk, the
Hessian and the distance from initialisation over solved and failed replicas apart, and the lottery's paired arms."""

from __future__ import annotations

import statistics
from pathlib import Path

from overparam.report.figures import save_figure
from overparam.report.pool import GridPoint
from overparam.report.table_format import by_outcome, label, number, rate, span, successes, table, values
from overparam.stats import paired_difference, wilson_interval

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
    save_figure(figure, Path(path), dpi=100)


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
