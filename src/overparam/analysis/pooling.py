"""The sweep report's view of the analyses: per grid point, means over successful and failed replicas apart,
pooled rewind and baseline success rates with Wilson intervals, and the why_width.png figure."""

from __future__ import annotations

import math

from ..metrics import wilson_interval

# Per-replica numbers averaged per grid point, successful and failed replicas apart.
POOLED_METRICS = ("walk_barrier", "walk_l1", "walk_l2", "walk_start_loss", "walk_trained_unaligned_barrier",
                  "walk_init_barrier", "hessian_lambda_max", "hessian_lambda_min", "hessian_outliers",
                  "hessian_near_zero_fraction", "hessian_negative_fraction", "init_relative_distance", "prune_width",
                  "prune_width_finetuned")
# Job-level counts summed over a grid point's jobs.
JOB_COUNTS = ("baseline_successes", "baseline_trials")
# The report's TensorBoard charts against width (drawn only when a sweep ran the analysis).
CHARTS = {
    **{f"{title} vs width (solved / failed replicas)": [f"{metric}_mean_success", f"{metric}_mean_failed"]
       for metric, title in (("walk_barrier", "loss-walk barrier"), ("hessian_lambda_max", "Hessian lambda_max"),
                             ("init_relative_distance", "distance from init"))},
    "lottery: rewound vs re-initialised survivors vs fresh minimal nets": [
        "rewind_success_rate", "reinit_success_rate", "baseline_success_rate"],
}
FIGURE_FILE = "why_width.png"


def pool_job_counts(extras: dict, result: dict) -> None:
    for key in JOB_COUNTS:
        if key in result:
            extras[key] = extras.get(key, 0) + result[key]


def pooled_columns(rows: list[dict], extras: dict) -> dict:
    """`{metric}_mean_success`, `{metric}_mean_failed`, and rewind/baseline success rates with Wilson bounds."""
    out: dict = {}
    for metric in POOLED_METRICS:
        for group, wanted in (("success", True), ("failed", False)):
            values = [row[metric] for row in rows if bool(row.get("success")) == wanted
                      and isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])]
            if any(metric in row for row in rows):
                out[f"{metric}_mean_{group}"] = sum(values) / len(values) if values else math.nan
    for name in ("rewind", "reinit"):
        outcomes = [bool(row[f"{name}_success"]) for row in rows if row.get(f"{name}_success") is not None]
        if outcomes:
            out.update(_rate(name, sum(outcomes), len(outcomes)))
    if extras.get("baseline_trials"):
        out.update(_rate("baseline", extras["baseline_successes"], extras["baseline_trials"]))
    return out


def _rate(name: str, successes: int, trials: int) -> dict:
    low, high = wilson_interval(successes, trials)
    return {f"{name}_trials": trials, f"{name}_success_rate": successes / trials,
            f"{name}_ci_low": low, f"{name}_ci_high": high}


def write_why_figure(rows: list[dict], out_dir, curve_of=None) -> None:
    """why_width.png: walk barrier, lambda_max, relative distance from init (solved vs failed replicas) and the
    rewind vs baseline success rates, against width. Nothing when the sweep ran no analysis."""
    if not any(key.endswith("_mean_success") or key == "rewind_success_rate" for row in rows for key in row):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..results import WIDTH_KEY

    points = sorted((r for r in rows if isinstance(r.get(WIDTH_KEY), (int, float))), key=lambda r: r[WIDTH_KEY])
    widths = [r[WIDTH_KEY] for r in points]
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [("walk_barrier", "loss-walk barrier (aligned, from trained)", True),
              ("hessian_lambda_max", "Hessian lambda_max", True),
              ("init_relative_distance", "||w - w0|| / ||w0||", True)]
    for axis, (metric, title, log) in zip(axes.flat, panels):
        for group, color in (("success", "tab:green"), ("failed", "tab:red")):
            values = [r.get(f"{metric}_mean_{group}", math.nan) for r in points]
            axis.plot(widths, values, marker="o", color=color, label=f"{group} replicas (mean)")
        axis.set_title(title)
        axis.set_yscale("log" if log else "linear")
    axis = axes.flat[3]
    labels = {"rewind": "survivors rewound to init", "reinit": "survivors re-initialised",
              "baseline": "fresh minimal nets"}
    for name, color in (("rewind", "tab:blue"), ("reinit", "tab:orange"), ("baseline", "tab:grey")):
        shown = [r for r in points if f"{name}_success_rate" in r]
        if shown:
            axis.plot([r[WIDTH_KEY] for r in shown], [r[f"{name}_success_rate"] for r in shown], marker="o",
                      color=color, label=f"{name}: {labels[name]}")
            axis.fill_between([r[WIDTH_KEY] for r in shown], [r[f"{name}_ci_low"] for r in shown],
                              [r[f"{name}_ci_high"] for r in shown], color=color, alpha=0.15)
    axis.set_title("lottery: success after retraining (Wilson 95%)")
    axis.set_ylim(-0.02, 1.02)
    for axis in axes.flat:
        axis.set_xscale("log")
        if widths:
            axis.set_xticks(widths, [f"{w:g}" for w in widths])
            axis.minorticks_off()
        axis.set_xlabel("width factor m")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(f"{out_dir}/{FIGURE_FILE}", dpi=90)
    plt.close(figure)
