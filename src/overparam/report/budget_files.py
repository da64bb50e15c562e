"""The budget report written out (`report.budget` computes it).

Outputs (`write_budget_report`):
  budget.csv                          every grid point's success rate at each budget, with its 95% Wilson interval
  thresholds_by_budget.csv            m50 and m90 with 95% profile-likelihood intervals (`report.width`) per budget
  success_vs_width_by_budget.png      success vs width, a line per budget (a few, log-spaced), a panel per curve
  critical_width_vs_steps.png         m50 and m90 vs training steps, log axes
"""

from __future__ import annotations

import math
from pathlib import Path

from overparam.report.budget import BUDGET_FIELDS, budget_rows, budget_thresholds, curve_budgets, shown_budgets
from overparam.report.csv_files import write_csv
from overparam.report.curves import _format, curve_name, curves
from overparam.report.figures import save_figure
from overparam.report.width import describe
from overparam.stats import wilson_interval

BUDGET_FILE = "budget.csv"
BUDGET_THRESHOLDS_FILE = "thresholds_by_budget.csv"
BUDGET_FIGURE_FILE = "success_vs_width_by_budget.png"
CRITICAL_FIGURE_FILE = "critical_width_vs_steps.png"


def budget_figure(points):
    """Success rate vs width, one line per shown budget, one panel per curve (None without budgets)."""
    grouped = {curve: curve_budgets(members) for curve, members in curves(points).items()}
    grouped = {curve: budgets for curve, budgets in grouped.items() if budgets}
    if not grouped:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(len(grouped), 1, figsize=(7, 3.6 * len(grouped)), squeeze=False)
    colormap = plt.get_cmap("viridis")
    for axis, (curve, budgets) in zip(axes[:, 0], grouped.items()):
        shown = shown_budgets(list(budgets))
        for index, budget in enumerate(shown):
            entries = sorted(budgets[budget], key=lambda entry: entry[0].width)
            widths = [p.width for p, _ in entries]
            rates = [s / len(p.rows) for p, s in entries]
            bands = [wilson_interval(s, len(p.rows)) for p, s in entries]
            color = colormap(index / max(1, len(shown) - 1) * 0.9)
            axis.plot(widths, rates, marker="o", color=color, label=f"{budget:,} steps")
            axis.fill_between(widths, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.06)
        widths = sorted({p.width for entries in budgets.values() for p, _ in entries})
        axis.set_xscale("log")
        axis.set_xticks(widths, [_format(w) for w in widths])
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(f"{curve_name(curve)}: success vs width at several training budgets", fontsize=10)
        axis.set_ylabel("success rate (95% Wilson band)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, title="budget", title_fontsize=8)
    axes[-1, 0].set_xlabel("width factor m (log scale)")
    figure.tight_layout()
    return figure


def critical_width_figure(rows: list[dict]):
    """m50 and m90 (95% intervals) vs the training budget, log axes; a triangle marks a target not reached by the
    widest width (pointing up) or reached at the narrowest (pointing down), a dashed bar separated data."""
    rows = [row for row in rows if row["unit"] == "m_factor"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axis = plt.subplots(figsize=(7, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = list(dict.fromkeys((row["curve"], row["quantity"]) for row in rows))
    floor, ceiling = axis_floor(rows), axis_ceiling(rows)
    for index, (curve, quantity) in enumerate(keys):
        color = colors[index % len(colors)]
        style = "-" if quantity == "m50" else "--"
        shift = 1.025 ** (index - (len(keys) - 1) / 2)  # series side by side, so coinciding bars stay visible
        mine = sorted((row for row in rows if (row["curve"], row["quantity"]) == (curve, quantity)),
                      key=lambda row: row["budget"])
        budgets = [row["budget"] * shift for row in mine]
        # the line joins neighbouring budgets with an estimate only; a gap where the fit has none
        estimates = [row["estimate"] if row["status"] == "ok" else math.nan for row in mine]
        axis.plot(budgets, estimates, style, marker="o", color=color, label=f"{curve}: {quantity}")
        for budget, row in zip(budgets, mine):
            if row["status"] == "ok":
                low = row["ci_low"] if row["ci_low"] > 0 else floor
                high = row["ci_high"] if math.isfinite(row["ci_high"]) else ceiling
                axis.plot([budget] * 2, [low, high], color=color, alpha=0.5, linewidth=2)
            elif row["status"] == "not_reached_above":
                axis.plot(budget, row["ci_low"], marker="^", color=color, markerfacecolor="none")
            elif row["status"] == "not_reached_below":
                axis.plot(budget, row["ci_high"], marker="v", color=color, markerfacecolor="none")
            elif row["status"] == "separated":
                low = row["ci_low"] if math.isfinite(row["ci_low"]) else floor
                high = row["ci_high"] if math.isfinite(row["ci_high"]) else ceiling
                axis.plot([budget] * 2, [low, high], color=color, linestyle=":", linewidth=2)
    axis.set_xscale("log")
    axis.set_yscale("log")
    for side, (low, high) in ((axis.xaxis, axis.get_xlim()), (axis.yaxis, axis.get_ylim())):
        ticks = nice_ticks(low, high)
        side.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        side.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: _tick(value)))
        side.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("training steps (budget, log scale)")
    axis.set_ylabel("critical width m_factor (log scale)")
    axis.set_title("critical width vs training steps (95% profile-likelihood intervals)\n"
                   "^: not reached by the widest width, v: reached at the narrowest, dotted: separated data",
                   fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 and value == int(value) else f"{value:.3g}"


def nice_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 times powers of ten inside [low, high] (a log axis' labels that neither crowd nor go missing)."""
    low, high = max(low, 1e-9), max(high, 1e-9)
    ticks = [factor * 10.0**power for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for factor in (1, 2, 5)]
    return [tick for tick in ticks if low <= tick <= high]


def axis_floor(rows: list[dict]) -> float:
    values = [v for row in rows for v in (row["ci_low"], row["estimate"]) if isinstance(v, float) and v > 0
              and math.isfinite(v)]
    return min(values) / 1.5 if values else 0.5


def axis_ceiling(rows: list[dict]) -> float:
    values = [v for row in rows for v in (row["ci_high"], row["ci_low"], row["estimate"])
              if isinstance(v, float) and math.isfinite(v) and v > 0]
    return max(values) * 1.5 if values else 100.0


def write_budget_report(points, out_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """The four outputs (module docstring), when any grid point has budgets; returns budget.csv's and
    thresholds_by_budget.csv's rows."""
    out_dir = Path(out_dir)
    rows = budget_rows(points)
    if not rows:  # rebuilt from scratch: no budgets now, no files from an earlier report either
        for name in (BUDGET_FILE, BUDGET_THRESHOLDS_FILE, BUDGET_FIGURE_FILE, CRITICAL_FIGURE_FILE):
            (out_dir / name).unlink(missing_ok=True)
        return [], []
    write_csv(rows, out_dir / BUDGET_FILE)
    thresholds = budget_thresholds(points)
    write_csv(thresholds, out_dir / BUDGET_THRESHOLDS_FILE, BUDGET_FIELDS)
    for figure, name in ((budget_figure(points), BUDGET_FIGURE_FILE),
                         (critical_width_figure(thresholds), CRITICAL_FIGURE_FILE)):
        if figure is not None:
            save_figure(figure, out_dir / name)
    return rows, thresholds


def print_budget_thresholds(rows: list[dict], file=None) -> None:
    """m50 at a few budgets per curve (the full table: thresholds_by_budget.csv)."""
    wanted = [row for row in rows if row["unit"] == "m_factor" and row["quantity"] == "m50"]
    if not wanted:
        return
    print(f"critical width by training budget ({BUDGET_THRESHOLDS_FILE}, {CRITICAL_FIGURE_FILE}):", file=file)
    for curve in dict.fromkeys(row["curve"] for row in wanted):
        mine = {row["budget"]: row for row in wanted if row["curve"] == curve}
        shown = "; ".join(f"{budget:,} steps: {describe(mine[budget])}" for budget in shown_budgets(list(mine)))
        print(f"  {curve}: {shown}", file=file)


def print_certificates(points, file=None) -> None:
    """How often a replica exact on the held-out set fails its task's certificate (`Task.certify`)."""
    checked = [(point, row) for point in points for row in point.rows if "certified" in row]
    if not checked:
        return
    exact = [(point, row) for point, row in checked if row.get("exact_at_end", row.get("success"))]
    failed = [(point, row) for point, row in exact if not row["certified"]]
    where = sorted({f"{curve_name(point.curve)} m={_format(point.width)}" for point, _ in failed})
    print(f"certificate: {len(failed)} of {len(exact)} replicas exact on the held-out set fail it"
          + (f" ({', '.join(where)})" if where else ""), file=file)
