"""Success at every training budget, and the critical width as a function of the budget.

With no learning-rate schedule a job stopped at step b is the job run with `trainer.max_steps=b`, so one run answers
"would this replica have succeeded with a budget of b steps?" for every step b its held-out evaluation ran at
(`overparam.core.evaluation`):

- without `trainer.stop_when_solved`: success at b = exact at the evaluation at step b (not "solved at some step
  <= b": a replica can lose exactness again);
- with it: success at b = exact at some evaluation <= b (what that job would report);
- at or after the step where a job ended early (the convergence stop, `stop_when_solved`) the b-step job would have
  ended at that same step: its outcome is the job's own.

The budgets of a job are the multiples of `trainer.eval_every_n_steps` up to `trainer.max_steps`, and `max_steps`.

What is written from it (the CSVs, figures and terminal lines): `report.budget_files`.
A grid point enters a budget only when every one of its replicas has an outcome there (results written before the
evaluation existed have none), so its trials at every budget are its trials in summary.csv.
"""

from __future__ import annotations

import math

from overparam.core.evaluation import exact_at
from overparam.report.curves import curve_name, curves
from overparam.report.width import FIELDS, TARGETS, threshold_rows
from overparam.stats import wilson_interval

BUDGET_FIELDS = ("curve", "budget", *FIELDS[1:])  # thresholds_by_budget.csv
SHOWN_BUDGETS = 6  # lines per panel of the success-vs-width figure


def job_budgets(result: dict) -> list[int]:
    """The budgets a job answers: multiples of its evaluation interval up to max_steps, and max_steps."""
    trainer = (result.get("config") or {}).get("trainer") or {}
    every, max_steps = trainer.get("eval_every_n_steps"), trainer.get("max_steps")
    if not every or not max_steps or "evaluated_steps" not in result:
        return []
    return sorted({*range(every, max_steps + 1, every), max_steps})


def replica_budgets(result: dict, row: dict) -> dict[int, bool]:
    """`{budget: success}` for one replica of a finished job (empty when the job has no evaluation record)."""
    budgets = job_budgets(result)
    if not budgets or "exact_at_steps" not in row:
        return {}
    evaluated = result["evaluated_steps"]
    trained = result.get("trained_steps", budgets[-1])
    solved_by_solve = bool(((result.get("config") or {}).get("trainer") or {}).get("stop_when_solved"))
    solved_at = row.get("solved_at_step")
    outcomes: dict[int, bool] = {}
    for budget in budgets:
        if budget >= trained:  # the job with this budget ends where this one ended
            outcomes[budget] = bool(row["success"])
        elif solved_by_solve:
            outcomes[budget] = solved_at is not None and solved_at <= budget
        else:
            exact = exact_at(row, evaluated, budget)
            if exact is not None:
                outcomes[budget] = exact
    return outcomes


def point_budgets(point) -> dict[int, int]:
    """`{budget: successes}` over a grid point's replicas, for the budgets every replica has."""
    outcomes = point.budget_outcomes
    if not outcomes or len(outcomes) != len(point.rows) or not all(outcomes):
        return {}
    common = set(outcomes[0]).intersection(*outcomes[1:])
    return {budget: sum(o[budget] for o in outcomes) for budget in sorted(common)}


def budget_rows(points) -> list[dict]:
    rows = []
    for curve, members in curves(points).items():
        for point in members:
            for budget, successes in point_budgets(point).items():
                trials = len(point.rows)
                low, high = wilson_interval(successes, trials)
                rows.append({"curve": curve_name(curve), **dict(curve), "m_factor": point.width,
                             "params_per_replica": point.params_per_replica, "budget": budget, "trials": trials,
                             "successes": successes, "success_rate": successes / trials,
                             "success_ci_low": low, "success_ci_high": high})
    return rows


def curve_budgets(members) -> dict[int, list]:
    """`{budget: [(point, successes), ...]}` for the budgets every numeric-width point of a curve has."""
    numeric = [p for p in members if isinstance(p.width, (int, float)) and not isinstance(p.width, bool)]
    per_point = [(p, point_budgets(p)) for p in numeric]
    if not per_point or not all(budgets for _, budgets in per_point):
        return {}
    common = set(per_point[0][1]).intersection(*(set(b) for _, b in per_point[1:]))
    return {budget: [(p, b[budget]) for p, b in per_point] for budget in sorted(common)}


def budget_thresholds(points, targets=TARGETS) -> list[dict]:
    """thresholds_by_budget.csv's rows: `report.width`'s fit at every budget of every curve."""
    rows = []
    for curve, members in curves(points).items():
        for budget, entries in curve_budgets(members).items():
            widths = [p.width for p, _ in entries]
            grid = [(p.width, p.params_per_replica) for p, _ in entries if p.params_per_replica]
            for row in threshold_rows(curve_name(curve), widths, [s for _, s in entries],
                                      [len(p.rows) for p, _ in entries], grid, targets):
                rows.append({"budget": budget, **row})
    return [{key: row[key] for key in BUDGET_FIELDS} for row in rows]


def shown_budgets(budgets: list[int], count: int = SHOWN_BUDGETS) -> list[int]:
    """About `count` budgets spread evenly in log steps, always with the last."""
    budgets = sorted(budgets)
    if len(budgets) <= count:
        return budgets
    low, high = math.log(budgets[0]), math.log(budgets[-1])
    picked = {budgets[-1]}
    for i in range(count - 1):
        aim = low + (high - low) * i / (count - 1)
        picked.add(min(budgets, key=lambda b: abs(math.log(b) - aim)))
    return sorted(picked)
