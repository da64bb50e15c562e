"""Report features any task can opt into: intervals over replicas for a chart's metric, the task-charts figure, and
the success crossing (where the rate passes one half and where every replica first succeeds)."""

import csv
import math

import pytest
from scipy import stats

from overparam.jobs.results import write_result
from overparam.report import load_results, pool, write_report
from overparam.report.curves import chart_kind
from overparam.report.figures import CHART_FIGURE_FILE
from overparam.report.width_files import crossings
from overparam.stats import interval_columns, mean_interval

BAND = ["error_mean", "error_ci_low", "error_ci_high"]


def fake_job(directory, width, successes, errors, charts=None, params=None):
    """A finished job's result.json as a task with per-replica `error` values would write it."""
    rows = [{"success": k < successes, "error": e, "seed": k} for k, e in enumerate(errors)]
    write_result(directory / f"m={width}", {
        "status": "ok", "config": {"seed": 0, "model": {"m_factor": width}}, "params_per_replica": params or 10 * width,
        "per_replica": rows, "charts": charts if charts is not None else {"error vs width": BAND},
    })


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_mean_interval_is_students_t():
    values = [0.2, 0.5, 0.4, 0.7]
    mean = sum(values) / 4
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    half = stats.t.ppf(0.975, 3) * sd / 2
    low, high = mean_interval(values)
    assert math.isclose(low, mean - half) and math.isclose(high, mean + half)
    assert all(math.isnan(v) for v in mean_interval([0.3]))
    assert mean_interval([0.3, 0.3]) == (0.3, 0.3)


def test_intervals_are_added_only_for_the_metrics_a_chart_asks_for():
    rows = [{"error": 0.1, "loss": 1.0}, {"error": 0.3, "loss": 2.0}]
    assert set(interval_columns(rows, ["error_mean", "error_ci_low", "error_ci_high", "loss_mean"])) == {
        "error_ci_low", "error_ci_high"}
    assert interval_columns(rows, ["loss_mean", "success_ci_low"]) == {}


def test_summary_gets_the_band_and_tensorboard_draws_it_as_a_margin_chart(tmp_path):
    fake_job(tmp_path, 1, 0, [0.5, 0.6, 0.7])
    fake_job(tmp_path, 2, 3, [0.1, 0.2, 0.3])
    rows = write_report(tmp_path, quiet=True)
    low, high = mean_interval([0.1, 0.2, 0.3])
    assert math.isclose(rows[1]["error_ci_low"], low) and math.isclose(rows[1]["error_ci_high"], high)
    assert read_csv(tmp_path / "summary.csv")[1]["error_ci_high"] == repr(high)
    assert chart_kind(BAND) == "Margin"
    assert chart_kind(["test_r2_mean", "bayes_r2_ceiling"]) == "Multiline"
    assert (tmp_path / CHART_FIGURE_FILE).stat().st_size > 1000


def test_without_band_charts_the_summary_columns_are_the_plain_ones(tmp_path):
    fake_job(tmp_path, 1, 1, [0.5, 0.6], charts={"error vs width": ["error_mean"]})
    write_report(tmp_path, quiet=True)
    columns = list(read_csv(tmp_path / "summary.csv")[0])
    assert not any(column.endswith(("error_ci_low", "error_ci_high")) for column in columns)
    assert "error_mean" in columns


def test_no_task_charts_no_chart_figure(tmp_path):
    fake_job(tmp_path, 1, 1, [0.5], charts={})
    write_report(tmp_path, quiet=True)
    assert not (tmp_path / CHART_FIGURE_FILE).exists()


@pytest.mark.parametrize(
    "rates, expected",
    [
        # (width, successes of 4) -> (width_below, width_above, all_succeed_width, monotone)
        ({1: 0, 2: 1, 4: 3, 8: 4}, (2, 4, 8, True)),
        ({1: 0, 2: 2, 4: 4}, (2, 2, 4, True)),  # exactly one half: both ends at that width
        ({1: 4, 2: 4}, (None, 1, 1, True)),  # above one half from the narrowest width
        ({1: 0, 2: 0}, (2, None, None, True)),  # never reaches one half
        ({1: 0, 2: 3, 4: 1, 8: 4}, (4, 2, 8, False)),  # not monotone: the bracket is reported as read
    ],
)
def test_crossing_brackets_one_half_and_finds_the_first_width_where_all_succeed(tmp_path, rates, expected):
    for width, successes in rates.items():
        fake_job(tmp_path, width, successes, [0.0] * 4, params=100 * width)
    (row,) = crossings(pool(load_results([tmp_path])))
    assert (row["width_below"], row["width_above"], row["all_succeed_width"], row["monotone"]) == expected
    if expected[1] is not None:
        assert row["params_above"] == 100 * expected[1]
    write_report(tmp_path, quiet=True)
    assert read_csv(tmp_path / "crossing.csv")[0]["width_above"] == ("" if expected[1] is None else str(expected[1]))
