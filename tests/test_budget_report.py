"""Success at every training budget, known answers: jobs whose replicas are exact at chosen steps
(`scheduled.ScheduledNet`), pooled by the report into budget.csv and the critical width at every budget."""

import csv

import pytest

from overparam.report.budget import shown_budgets
from overparam.report.budget_files import BUDGET_FIGURE_FILE, BUDGET_FILE, BUDGET_THRESHOLDS_FILE, CRITICAL_FIGURE_FILE
from overparam.report.width import threshold_rows
from overparam.stats import wilson_interval
from scheduled import scheduled_config

# Per width, per replica: runs [first, last] of the steps at which the replica is exact (jobs of 60 steps).
SCHEDULES = {
    "1": [[], [], [], [[50, 60]]],
    "2": [[[20, 60]], [[40, 60]], [], [[10, 20]]],  # replica 3 is exact at steps 10-20 only
    "4": [[[10, 60]], [[10, 60]], [[30, 60]], [[20, 60]]],
}
BUDGETS = [10, 20, 30, 40, 50, 60]
# successes per width at each budget: exact at that step ...
EXACT_AT = {1: [0, 0, 0, 0, 1, 1], 2: [1, 2, 1, 2, 2, 2], 4: [2, 3, 4, 4, 4, 4]}
# ... and with trainer.stop_when_solved: exact at some evaluation up to it (m = 4 stops at step 30, all solved)
SOLVED_BY = {1: [0, 0, 0, 0, 1, 1], 2: [1, 2, 2, 3, 3, 3], 4: [2, 3, 4, 4, 4, 4]}


def sweep(directory, extra=()):
    from overparam.jobs.job import run

    for width in (1, 2, 4):
        overrides = [f"model.m_factor={width}", "trainer.max_steps=60", "trainer.eval_every_n_steps=10", *extra]
        result = run(scheduled_config(SCHEDULES, overrides, trials=4), directory / f"m={width}", multirun=True)
        assert result["status"] == "ok", result.get("traceback")
    from overparam.report import write_report

    write_report(directory, quiet=True)
    if not (directory / BUDGET_FILE).exists():
        return []
    with open(directory / BUDGET_FILE) as handle:
        return list(csv.DictReader(handle))


def counts(rows) -> dict[int, list[int]]:
    table: dict[int, list[int]] = {}
    for row in rows:
        table.setdefault(int(row["m_factor"]), []).append(int(row["successes"]))
    return table


@pytest.mark.parametrize("extra, expected", [((), EXACT_AT), (("trainer.stop_when_solved=true",), SOLVED_BY)])
def test_budget_csv_counts_success_at_every_budget(tmp_path, extra, expected):
    rows = sweep(tmp_path, extra)
    assert [int(row["budget"]) for row in rows if row["m_factor"] == "1"] == BUDGETS
    assert counts(rows) == expected
    for row in rows:
        low, high = wilson_interval(int(row["successes"]), int(row["trials"]))
        assert int(row["trials"]) == 4
        assert float(row["success_ci_low"]) == pytest.approx(low)
        assert float(row["success_ci_high"]) == pytest.approx(high)


def test_the_critical_width_is_fitted_at_every_budget(tmp_path):
    sweep(tmp_path)
    with open(tmp_path / BUDGET_THRESHOLDS_FILE) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({int(row["budget"]) for row in rows}) == BUDGETS
    for index, budget in enumerate(BUDGETS):
        # the same fit as thresholds.csv's (report.width), on the counts at this budget
        expected = threshold_rows("all", [1, 2, 4], [EXACT_AT[m][index] for m in (1, 2, 4)], [4, 4, 4],
                                  [(1, 2), (2, 2), (4, 2)])
        got = [row for row in rows if int(row["budget"]) == budget and row["unit"] == "m_factor"]
        assert [(row["quantity"], row["status"]) for row in got] == [
            (row["quantity"], row["status"]) for row in expected if row["unit"] == "m_factor"]
        for mine, theirs in zip(got, [row for row in expected if row["unit"] == "m_factor"]):
            for key in ("estimate", "ci_low", "ci_high"):
                value = theirs[key]
                assert (mine[key] == "" if value != value else float(mine[key]) == pytest.approx(value))
    assert (tmp_path / BUDGET_FIGURE_FILE).stat().st_size > 10_000
    assert (tmp_path / CRITICAL_FIGURE_FILE).stat().st_size > 10_000


def test_results_without_an_evaluation_record_give_no_budget_files(tmp_path):
    assert sweep(tmp_path, ("trainer.eval_every_n_steps=0",)) == []
    assert not (tmp_path / BUDGET_THRESHOLDS_FILE).exists() and not (tmp_path / CRITICAL_FIGURE_FILE).exists()


def test_shown_budgets_spread_in_log_steps_and_keep_the_last():
    assert shown_budgets([10, 20, 30]) == [10, 20, 30]
    budgets = list(range(200, 20001, 200))
    shown = shown_budgets(budgets, 5)
    assert shown[0] == 200 and shown[-1] == 20000 and len(shown) == 5
    assert shown == [200, 600, 2000, 6400, 20000]
