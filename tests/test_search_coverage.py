"""The adaptive critical-width search's final interval against the TRUE m50 of a known curve
(overparam.search.simulation on a logistic in log width), and what a fit that places nothing counts as.

The search spends few replicas (4 per job, at most 3 jobs per width, stopping once the target is pinned between
neighboring widths), so its final fit is made from data the search itself chose; its interval is not promised to
cover at 95%. These tests assert what it measurably achieves (docs/critical-width.md has the numbers) and that
fits claiming nothing (`not_monotone`, `one_width`) never count as covering or overlapping.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from overparam.search.planner import SearchSettings
from overparam.search.simulation import SearchOutcome, logistic_rates, main, rate_at, simulate_search

TRUE_M50, SLOPE = 6.0, 4.0  # the known-answer app's curve (tests/known_answer/app.py)
SETTINGS = SearchSettings(low=1, high=40)  # the sweeper's defaults: trials 4, max_seeds 3, precision 0.25


def test_logistic_rates_are_the_closed_form():
    rates = logistic_rates(TRUE_M50, SLOPE)
    assert rates(6) == pytest.approx(0.5)
    assert rates(12) == pytest.approx(1 / (1 + 2.0 ** -SLOPE))  # (m / m50)^slope = 16 at twice m50
    assert rate_at(rates, 3) == pytest.approx(1 / 17)
    assert rate_at({1: 0.1, 4: 0.7}, 3) == 0.1  # a table: the nearest listed width below


@pytest.mark.parametrize("status, low, high, covers, overlaps", [
    ("ok", 4.0, 7.0, True, True),
    ("separated", 5.0, 6.0, True, True),  # the bracketing widths
    ("not_reached_above", 8.0, math.inf, False, False),
    ("not_reached_below", 0.0, 3.0, False, False),
    ("not_monotone", 0.0, math.inf, False, False),  # open on both sides, but it places nothing
    ("one_width", 6.0, 6.0, False, False),  # mixed outcomes at one width: no fit
])
def test_only_a_fit_that_places_the_threshold_covers_or_overlaps(status, low, high, covers, overlaps):
    outcome = SearchOutcome(48, status, low, high, "")
    assert outcome.covers(TRUE_M50) is covers
    assert outcome.overlaps(5.5, 6.5) is overlaps


def _searches(runs: int, seed: int, settings=SETTINGS) -> list[SearchOutcome]:
    rng = np.random.default_rng(seed)
    rates = logistic_rates(TRUE_M50, SLOPE)
    return [simulate_search(rates, settings, rng) for _ in range(runs)]


def test_the_command_line_reports_truth_coverage_and_statuses_of_these_searches(capsys):
    """`--logistic 6:4` runs the searches above (same seed, same rng order) and prints their coverage of the true
    m50, their overlap with a grid interval and each status's share, recomputed here from the outcomes."""
    runs = 2
    main(["--logistic", f"{TRUE_M50:g}:{SLOPE:g}", "--high", "16", "--runs", str(runs), "--seed", "3",
          "--grid-interval", "5.5,6.5"])
    line = capsys.readouterr().out.strip()
    outcomes = _searches(runs, 3, SearchSettings(low=1, high=16))
    covered = np.mean([o.covers(TRUE_M50) for o in outcomes])
    overlap = np.mean([o.overlaps(5.5, 6.5) for o in outcomes])
    assert f"covers the true m50 {covered:.3f}" in line
    assert f"overlaps the grid's interval {overlap:.2f}" in line
    for status, count in Counter(o.status for o in outcomes).items():
        assert f"{status} {count / runs:.2f}" in line
    assert f"spent {np.mean([o.replicas for o in outcomes]):.2f} replicas" in line


def test_a_falling_curve_never_counts_as_covering():
    """Success that falls with width: whatever the search ends with, a not_monotone fit covers nothing, even though
    its (0, inf) would hold any m50."""
    rng = np.random.default_rng(0)
    outcomes = [simulate_search({1: 0.7, 2: 0.55, 3: 0.45, 4: 0.3, 6: 0.2}, SearchSettings(low=1, high=8), rng)
                for _ in range(4)]
    for outcome in outcomes:
        if outcome.status == "not_monotone":
            assert (outcome.ci_low, outcome.ci_high) == (0.0, math.inf) and not outcome.covers(3.0)
    assert any(o.status == "not_monotone" for o in outcomes)


# What the search achieves, measured (docs/critical-width.md): `python -m overparam.search.simulation --logistic 6:4
# --high 40 --runs 1000 --seed 1` covers the true m50 in 0.908 of the searches (binomial SE 0.009): below the
# nominal 95%, since the search stops on data it chose (a width counts as settled once its Wilson interval clears
# 0.5, and the fit then sees the few replicas that got it there). The bounds below sit about 3 standard errors
# (of the measurement and of the test's own sample combined) under 0.908; the status shares are those measured
# (ok 0.96, separated 0.04, nothing else above 0.005) with the same margin.
SLOW_RUNS = 600
FAST_RUNS = 10


def _summary(outcomes: list[SearchOutcome]) -> tuple[float, Counter, str]:
    coverage = float(np.mean([o.covers(TRUE_M50) for o in outcomes]))
    statuses = Counter(o.status for o in outcomes)
    by_status = {status: f"{np.mean([o.covers(TRUE_M50) for o in outcomes if o.status == status]):.3f}"
                 for status in statuses}
    text = (f"coverage {coverage:.3f} of {len(outcomes)}; statuses {dict(statuses)}; coverage by status {by_status}; "
            f"replicas {np.mean([o.replicas for o in outcomes]):.1f}")
    return coverage, statuses, text


@pytest.mark.slow
def test_search_coverage_of_the_true_m50_over_many_searches():
    outcomes = _searches(SLOW_RUNS, seed=20261202)
    coverage, statuses, text = _summary(outcomes)
    print(text)
    assert coverage >= 0.86, text
    assert statuses["ok"] >= 0.92 * SLOW_RUNS and statuses["ok"] + statuses["separated"] >= 0.99 * SLOW_RUNS, text


def test_search_coverage_of_the_true_m50_on_a_few_searches():
    """The default suite's version, a gross check only (the slow test above is the measurement): 10 searches (high
    = 16, which holds m50 = 6), at least 7 covering (at the measured 0.91, fewer happens 1% of the time; at 0.5, 83%
    of the time) and every one ending in a fit that places m50 (ok or separated)."""
    outcomes = _searches(FAST_RUNS, seed=5, settings=SearchSettings(low=1, high=16))
    coverage, statuses, text = _summary(outcomes)
    assert coverage * FAST_RUNS >= 7, text
    assert statuses["ok"] + statuses["separated"] == FAST_RUNS, text
