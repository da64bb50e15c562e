"""Critical-width fits (overparam.report.width) against a known logistic in log(width)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from overparam.report.width import describe, fit_thresholds, params_at, threshold_rows

WIDTHS = [1, 2, 3, 4, 6, 8, 11, 16]
TRUE_M50, SLOPE, TRIALS = 5.0, 3.0, 16


def true_rate(width, m50=TRUE_M50, slope=SLOPE):
    return 1.0 / (1.0 + np.exp(-slope * (np.log(width) - math.log(m50))))


def true_width(target, m50=TRUE_M50, slope=SLOPE):
    return m50 * math.exp(math.log(target / (1 - target)) / slope)


# The interval's coverage against a known logistic: tests/test_threshold_coverage.py.


def test_exact_counts_on_the_curve_recover_m50_and_m90():
    widths = np.geomspace(1, 40, 12)
    trials = 100_000
    successes = np.round(trials * true_rate(widths))
    results = fit_thresholds(widths, successes, [trials] * len(widths), (0.5, 0.9))
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].estimate == pytest.approx(TRUE_M50, rel=1e-3)
    assert results[1].estimate == pytest.approx(true_width(0.9), rel=1e-3)
    assert results[0].ci_low < TRUE_M50 < results[0].ci_high and results[0].ci_high / results[0].ci_low < 1.05


def test_data_that_do_not_bracket_the_threshold_are_not_extrapolated():
    above = fit_thresholds([1, 2, 4], [0, 1, 2], [16, 16, 16], (0.5,))[0]
    assert (above.status, above.ci_low) == ("not_reached_above", 4.0) and math.isnan(above.estimate)
    # 15/16 at the narrowest width, then all successes: quasi-complete separation (one mixed width, at the low
    # end), so a bracket open below (no width under 1); 15/16 (Wilson 0.72-0.99) lies clearly above 0.5, so it
    # closes at that width, not at the first all-success one.
    below = fit_thresholds([1, 2, 4], [15, 16, 16], [16, 16, 16], (0.5,))[0]
    assert below.status == "separated" and math.isnan(below.ci_low) and below.ci_high == 1.0
    unclear = fit_thresholds([1, 2, 4], [9, 16, 16], [16, 16, 16], (0.5,))[0]  # 9/16: 0.33-0.77, either side
    assert unclear.status == "separated" and math.isnan(unclear.ci_low) and unclear.ci_high == 2.0
    # A fit whose m50 lies under the narrowest width (9/16 at 1 rising to 16/16): reached at the narrowest width.
    fitted_below = fit_thresholds([1, 2, 4], [9, 14, 16], [16, 16, 16], (0.5,))[0]
    assert (fitted_below.status, fitted_below.ci_high) == ("not_reached_below", 1.0)
    assert math.isnan(fitted_below.estimate) and math.isnan(fitted_below.ci_low)
    everything = fit_thresholds([3, 5], [16, 16], [16, 16], (0.5,))[0]
    assert (everything.status, everything.ci_high) == ("not_reached_below", 3.0)
    nothing = fit_thresholds([3, 5], [0, 0], [16, 16], (0.5,))[0]
    assert (nothing.status, nothing.ci_low) == ("not_reached_above", 5.0)
    assert describe({"quantity": "m50", "unit": "m_factor", "status": "not_reached_above", "ci_low": 20.0,
                     "ci_high": math.nan, "estimate": math.nan}) == "m50 > 20 m_factor: not reached"


def test_separation_reports_the_bracketing_widths_not_an_estimate():
    complete = fit_thresholds([1, 2, 3, 4], [0, 0, 16, 16], [16] * 4, (0.5, 0.9))
    assert all((r.status, r.ci_low, r.ci_high) == ("separated", 2.0, 3.0) for r in complete)
    assert all(math.isnan(r.estimate) for r in complete)
    # One mixed width between all-0 and all-1 (quasi-complete separation): still no MLE; bracket by its neighbors.
    quasi = fit_thresholds([1, 2, 3, 4], [0, 0, 5, 16], [16] * 4, (0.5,))[0]
    assert (quasi.status, quasi.ci_low, quasi.ci_high) == ("separated", 2.0, 4.0)


def test_a_mixed_width_clearly_on_one_side_of_the_target_narrows_the_bracket():
    # the 4-layer jamming curve: 0/16, 12/16, 16/16. 12/16 (Wilson 0.505-0.898) is clearly above 0.5 and clearly
    # below 0.9, so m50 lies in (313, 451] and m90 in [451, 613), not both in (313, 613)
    m50, m90 = fit_thresholds([313, 451, 613], [0, 12, 16], [16] * 3)
    assert (m50.status, m50.ci_low, m50.ci_high) == ("separated", 313.0, 451.0)
    assert (m90.status, m90.ci_low, m90.ci_high) == ("separated", 451.0, 613.0)
    # 5/16 (0.14-0.56) is clearly below 0.9 only
    low, high = fit_thresholds([1, 2, 3, 4], [0, 0, 5, 16], [16] * 4)
    assert (low.ci_low, low.ci_high, high.ci_low, high.ci_high) == (2.0, 4.0, 3.0, 4.0)


def test_falling_success_is_not_monotone():
    result = fit_thresholds([1, 2, 3, 4], [14, 9, 6, 2], [16] * 4, (0.5,))[0]
    assert result.status == "not_monotone" and math.isnan(result.estimate)


def test_params_are_the_same_threshold_mapped_through_the_grid():
    grid = [(m, 3 * m * m + 2) for m in WIDTHS]
    assert params_at(4, grid) == pytest.approx(50)
    assert math.isnan(params_at(100, grid)) and math.isnan(params_at(0.5, grid))  # no extrapolation either side
    # between grid widths: linear in log-log, by hand between (4, 50) and (6, 110)
    fraction = (math.log(5) - math.log(4)) / (math.log(6) - math.log(4))
    assert params_at(5, grid) == pytest.approx(math.exp(math.log(50) + fraction * (math.log(110) - math.log(50))))
    rng = np.random.default_rng(3)
    successes = rng.binomial(TRIALS, true_rate(np.array(WIDTHS)))
    rows = threshold_rows("steps=1", WIDTHS, successes, [TRIALS] * len(WIDTHS), grid, (0.5,))
    in_m, in_params = rows
    assert (in_m["unit"], in_params["unit"]) == ("m_factor", "params")
    for key in ("estimate", "ci_low", "ci_high"):
        assert in_params[key] == pytest.approx(params_at(in_m[key], grid))
    assert in_m["ci_low"] < in_m["estimate"] < in_m["ci_high"]
    assert in_params["ci_low"] < in_params["estimate"] < in_params["ci_high"]


def test_mixed_outcomes_at_a_single_width_give_no_threshold_rather_than_a_bracket():
    from overparam.report.width import describe, fit_thresholds, threshold_rows

    assert {r.status for r in fit_thresholds([5, 5], [3, 4], [10, 10])} == {"one_width"}
    rows = threshold_rows("all", [5], [7], [20], [(5, 322)])
    assert describe(rows[0]) == "m50: one width tested (5 m_factor), mixed outcomes: no fit"
    assert describe(rows[1]) == "m50: one width tested (322 params), mixed outcomes: no fit"
