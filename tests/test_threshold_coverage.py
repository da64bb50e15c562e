"""Does the critical-width fit's 95% interval (overparam.report.width) mean 95%?

Two kinds of check:
- the interval's ends, recomputed independently: a binomial logistic likelihood maximised here by Newton's method
  (not statsmodels), profiled over the slope at the reported ends: twice the drop from the maximum must be
  chi2(1, 0.95) = 3.841 there (a 90% or 99% cut-off, 2.706 or 6.635, fails at once), the estimate must be the
  independent MLE's m_q, and an end reported open (0 or inf) must be one where the drop at the last tested width
  is still under the cut. Fast, deterministic, in the default suite.
- coverage by simulation: data sets drawn from a known logistic in log width on two designs (width grid, slope,
  trials), the share whose interval holds the true m50 / m90. The slow test (2000 data sets per design) uses a
  window that a 95% interval passes and a 90% or 99% one fails (see COVERAGE_WINDOW); the default suite runs a
  smaller sample with a binomial band (catches a grossly wrong interval) beside the exact cut-off check above.

How a row counts (`claimed`): an `ok` row claims [ci_low, ci_high] (0 / inf when open); `separated` claims its
bracket (an unknown side open); `not_reached_above` claims (widest width, inf), `not_reached_below` (0, narrowest
width); `not_monotone`, `one_width` and `no_data` claim nothing and count as NOT covering. Coverage is over every
data set, whatever its status (what a reader of thresholds.csv would conclude), and is reported beside the
coverage of the `ok` rows alone.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import binom

from overparam.report import width as thresholds
from overparam.report.width import fit_thresholds

CHI2_90, CHI2_99 = 2.705543454095404, 6.6348966010212145  # chi2(1) quantiles: the mis-scaled cut-offs


@dataclass(frozen=True)
class Design:
    """A known truth: P(success at width m) = 1 / (1 + exp(-slope (log m - log m50))), `trials` per width."""

    widths: tuple
    m50: float
    slope: float
    trials: int

    def rates(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.slope * (np.log(self.widths) - math.log(self.m50))))

    def truth(self, target: float) -> float:
        return self.m50 * math.exp(math.log(target / (1 - target)) / self.slope)


# Two designs that differ in grid (dense linear-ish vs doubling), slope (steep vs shallow) and trials. In both the
# true m50 and m90 lie inside the tested widths (m90 = 10.4 of 1..16; 36 of 2..64).
DESIGNS = {
    "dense_steep": Design((1, 2, 3, 4, 6, 8, 11, 16), m50=5.0, slope=3.0, trials=16),
    "doubling_shallow": Design((2, 4, 8, 16, 32, 64), m50=12.0, slope=2.0, trials=24),
}
TARGETS = (0.5, 0.9)


def claimed(result) -> tuple[float, float] | None:
    """The set of widths a row says the threshold lies in (see the module docstring), or None for no claim."""
    def low_or_open(value):
        return 0.0 if value is None or math.isnan(value) else value

    def high_or_open(value):
        return math.inf if value is None or math.isnan(value) else value

    if result.status in ("ok", "separated"):
        return low_or_open(result.ci_low), high_or_open(result.ci_high)
    if result.status == "not_reached_above":
        return result.ci_low, math.inf
    if result.status == "not_reached_below":
        return 0.0, result.ci_high
    return None


def simulate(design: Design, datasets: int, seed: int) -> dict:
    """Per target: status counts, how many rows cover the truth (all rows, and `ok` rows), and the m50 estimates."""
    rng = np.random.default_rng(seed)
    out = {t: {"statuses": Counter(), "covered": 0, "ok_covered": 0, "estimates": []} for t in TARGETS}
    for _ in range(datasets):
        successes = rng.binomial(design.trials, design.rates())
        for result in fit_thresholds(design.widths, successes, [design.trials] * len(design.widths), TARGETS):
            tally = out[result.target]
            tally["statuses"][result.status] += 1
            interval = claimed(result)
            covers = interval is not None and interval[0] <= design.truth(result.target) <= interval[1]
            tally["covered"] += covers
            if result.status == "ok":
                tally["ok_covered"] += covers
                tally["estimates"].append(result.estimate)
    return out


def describe_coverage(name: str, datasets: int, out: dict) -> str:
    lines = []
    for target, tally in out.items():
        ok = tally["statuses"]["ok"]
        lines.append(f"{name} m{100 * target:g}: coverage {tally['covered'] / datasets:.4f} of {datasets}; "
                     f"ok rows {tally['ok_covered'] / max(ok, 1):.4f} of {ok}; statuses {dict(tally['statuses'])}")
    return "\n".join(lines)


# ----- the interval's ends, recomputed independently -----------------------------------------------------------

def _max_loglik(x, s, n, offset, columns, start=None) -> tuple[float, np.ndarray]:
    """max over beta of sum s eta - n log(1 + e^eta), eta = offset + columns @ beta: Newton with step halving."""
    beta = np.zeros(columns.shape[1]) if start is None else np.array(start, dtype=float)

    def loglik(b):
        eta = offset + columns @ b
        return float(np.sum(s * eta - n * np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(200):
        p = 1.0 / (1.0 + np.exp(-(offset + columns @ beta)))
        gradient = columns.T @ (s - n * p)
        information = columns.T @ (columns * (n * p * (1 - p))[:, None])
        step = np.linalg.solve(information, gradient)
        scale = 1.0
        while loglik(beta + scale * step) < current - 1e-12 and scale > 1e-8:
            scale /= 2
        beta = beta + scale * step
        new = loglik(beta)
        if abs(new - current) < 1e-13 and np.max(np.abs(gradient)) < 1e-8:
            current = new
            break
        current = new
    return current, beta


def likelihood_drop(widths, successes, trials, target, width) -> float:
    """2 x (max log-likelihood - max log-likelihood with m_target fixed at `width`), from scratch."""
    x, s, n = np.log(np.asarray(widths, float)), np.asarray(successes, float), np.asarray(trials, float)
    full, _ = _max_loglik(x, s, n, np.zeros_like(x), np.column_stack([np.ones_like(x), x]))
    logit = math.log(target / (1 - target))
    profile, _ = _max_loglik(x, s, n, np.full_like(x, logit), (x - math.log(width))[:, None], start=[1.0])
    return 2.0 * (full - profile)


def independent_estimate(widths, successes, trials, target) -> float:
    x, s, n = np.log(np.asarray(widths, float)), np.asarray(successes, float), np.asarray(trials, float)
    _, (intercept, slope) = _max_loglik(x, s, n, np.zeros_like(x), np.column_stack([np.ones_like(x), x]))
    return math.exp((math.log(target / (1 - target)) - intercept) / slope)


def check_ends(design: Design, datasets: int, seed: int, cut: float = 3.841458820694124) -> tuple[list[str], int]:
    """What is wrong with the `ok` rows of `datasets` simulated data sets, judged against the cut-off `cut` (chi2(1)
    95% by default, written out rather than read from the module under test), and how many closed ends there were."""
    rng = np.random.default_rng(seed)
    problems, checked = [], 0
    for _ in range(datasets):
        successes = rng.binomial(design.trials, design.rates())
        trials = [design.trials] * len(design.widths)
        for result in fit_thresholds(design.widths, successes, trials, TARGETS):
            if result.status != "ok":
                continue
            where = f"target {result.target}, successes {successes.tolist()}"
            expected = independent_estimate(design.widths, successes, trials, result.target)
            if abs(result.estimate / expected - 1) > 1e-5:
                problems.append(f"{where}: estimate {result.estimate} != independent MLE {expected}")

            def drop_at(width, successes=successes, trials=trials, target=result.target):
                return likelihood_drop(design.widths, successes, trials, target, width)

            if abs(drop_at(result.estimate)) > 1e-6:
                problems.append(f"{where}: the likelihood drops {drop_at(result.estimate)} at the estimate")
            for end, edge in ((result.ci_low, design.widths[0]), (result.ci_high, design.widths[-1])):
                if 0 < end < math.inf:
                    checked += 1
                    if abs(drop_at(end) - cut) > 2e-3:
                        problems.append(f"{where}: drop {drop_at(end):.4f} at the end {end}, not the cut {cut:.4f}")
                elif not drop_at(edge) < cut:  # reported open: the tested widths must not reach the cut
                    problems.append(f"{where}: end reported open but the drop at width {edge} is {drop_at(edge)}")
    assert checked >= datasets, "too few closed ends to check"
    return problems, checked


@pytest.mark.parametrize("name", DESIGNS)
def test_interval_ends_sit_where_the_independent_likelihood_drops_by_chi2_95(name):
    problems, checked = check_ends(DESIGNS[name], datasets=12, seed=7)
    assert problems == [] and checked >= 24


@pytest.mark.parametrize("wrong", [CHI2_90, CHI2_99])
def test_a_90_or_99_percent_cut_off_fails_the_end_check(monkeypatch, wrong):
    """The check above has teeth: with the code's cut-off mis-scaled to a 90% or 99% interval, every closed end
    sits at the wrong drop."""
    monkeypatch.setattr(thresholds, "CHI2_95", wrong)
    problems, checked = check_ends(DESIGNS["dense_steep"], datasets=4, seed=7)
    assert sum("not the cut" in p for p in problems) == checked >= 4


def test_the_independent_likelihood_is_the_binomial_likelihood():
    """The checker's own anchor: with m50 fixed at the MLE the drop is 0; for two widths with 2/10 and 8/10 the
    saturated fit gives the closed form MLE m50 = sqrt(w1 w2) (logits -log 4 and +log 4 are symmetric)."""
    assert independent_estimate([2, 8], [2, 8], [10, 10], 0.5) == pytest.approx(4.0, rel=1e-9)
    assert likelihood_drop([2, 8], [2, 8], [10, 10], 0.5, 4.0) == pytest.approx(0.0, abs=1e-9)
    # m50 fixed at 2: the slope alone must fit both widths; the drop is twice the log-likelihood ratio against
    # the saturated fit, computed here with binomial log-pmfs at the optimal slope (found by a grid search).
    slopes = np.linspace(0.01, 5, 200_001)
    p8 = 1 / (1 + np.exp(-slopes * math.log(4)))
    profile = (binom.logpmf(2, 10, 0.5) + binom.logpmf(8, 10, p8)).max()
    saturated = binom.logpmf(2, 10, 0.2) + binom.logpmf(8, 10, 0.8)
    assert likelihood_drop([2, 8], [2, 8], [10, 10], 0.5, 2.0) == pytest.approx(2 * (saturated - profile), rel=1e-6)


# ----- coverage by simulation -----------------------------------------------------------------------------------

# With N = 2000 data sets the binomial standard error of a coverage estimate is 0.0049 at 0.95, 0.0067 at 0.90
# and 0.0022 at 0.99. The window [0.925, 0.975] sits 3.7 SE above 0.90 and 6.8 SE below 0.99 (each rejected with
# probability > 0.999) and 5.1 SE either side of 0.95, leaving room for the method's own finite-sample coverage
# (measured 0.935-0.950 on these designs, docs/critical-width.md): 0.935 is still 2.1 SE inside.
COVERAGE_WINDOW = (0.925, 0.975)
SLOW_DATASETS = 2000


def coverage_failures(design: Design, datasets: int, seed: int) -> tuple[list[str], str]:
    out = simulate(design, datasets, seed)
    failures = [f"m{100 * t:g} coverage {tally['covered'] / datasets:.4f} outside {COVERAGE_WINDOW}"
                for t, tally in out.items()
                if not COVERAGE_WINDOW[0] <= tally["covered"] / datasets <= COVERAGE_WINDOW[1]]
    return failures, describe_coverage("", datasets, out)


@pytest.mark.slow
@pytest.mark.parametrize("name", DESIGNS)
def test_interval_coverage_is_95_percent_not_90_or_99(name):
    failures, report = coverage_failures(DESIGNS[name], SLOW_DATASETS, seed=20261202)
    print(name, report)
    assert failures == [], report


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [CHI2_90, CHI2_99])
def test_the_coverage_window_rejects_a_90_or_99_percent_interval(monkeypatch, wrong):
    """The slow coverage test's teeth: the same window, on the same kind of data, fails both targets when the
    code's cut-off is that of a 90% or a 99% interval (1000 data sets: a 90% interval's coverage is then 3.5 SE
    under the window, a 99% one's 3.7 SE over)."""
    monkeypatch.setattr(thresholds, "CHI2_95", wrong)
    failures, report = coverage_failures(DESIGNS["dense_steep"], 1000, seed=20261203)
    print(wrong, report)
    assert len(failures) == 2, report


@pytest.mark.parametrize("name", DESIGNS)
def test_interval_coverage_on_a_small_sample_is_near_95_percent(name):
    """The default suite's simulation: 60 data sets per design, both targets pooled (120 rows), inside a 99.9%
    binomial band around 0.95 ([0.89, 0.99]): a 68% or 80% interval, or one on the wrong scale, falls out. The
    exact cut-off check above is what rejects 90% and 99% in the default suite. The fits are `ok` (the truth is
    mid-grid) and the median m50 estimate sits within 10% of the truth."""
    design = DESIGNS[name]
    datasets = 60
    out = simulate(design, datasets, seed=11)
    rows = datasets * len(TARGETS)
    covered = sum(tally["covered"] for tally in out.values())
    low, high = binom.ppf([0.0005, 0.9995], rows, 0.95) / rows
    assert low <= covered / rows <= high, describe_coverage(name, datasets, out)
    assert out[0.5]["statuses"]["ok"] == datasets and out[0.9]["statuses"]["ok"] >= 0.95 * datasets
    assert abs(np.median(out[0.5]["estimates"]) / design.m50 - 1) < 0.1


# ----- what each status claims, on hand-built data ----------------------------------------------------------------

def _fit(widths, successes, trials, target=0.5):
    return fit_thresholds(widths, successes, [trials] * len(widths), (target,))[0]


def test_separated_rows_claim_the_bracketing_widths_with_an_unknown_side_open():
    complete = _fit([1, 2, 3, 4], [0, 0, 16, 16], 16)
    assert claimed(complete) == (2.0, 3.0)
    # the one mixed width at the top end: nothing wider was run, so the bracket is open above
    top = _fit([1, 2, 3], [0, 0, 5], 16)
    assert (top.status, top.ci_low) == ("separated", 2.0) and math.isnan(top.ci_high)
    assert claimed(top) == (2.0, math.inf)
    # ... and at the bottom end: open below
    bottom = _fit([1, 2, 3], [8, 16, 16], 16)
    assert bottom.status == "separated" and math.isnan(bottom.ci_low) and claimed(bottom) == (0.0, 2.0)
    # a mixed width whose Wilson interval excludes the target closes the bracket there (3/16: 0.07-0.43 < 0.5)
    narrowed = _fit([1, 2, 3], [3, 16, 16], 16)
    assert (narrowed.status, narrowed.ci_low, narrowed.ci_high) == ("separated", 1.0, 2.0)


def test_not_reached_rows_claim_one_side_of_the_tested_widths():
    never = _fit([3, 5], [0, 0], 16)
    assert claimed(never) == (5.0, math.inf)
    always = _fit([3, 5], [16, 16], 16)
    assert claimed(always) == (0.0, 3.0)
    # m90 of data that only reach about 40%: the fit's m90 lies past the widest width
    beyond = _fit([1, 2, 4], [0, 2, 6], 16, target=0.9)
    assert (beyond.status, beyond.ci_low) == ("not_reached_above", 4.0) and claimed(beyond) == (4.0, math.inf)


def test_not_reached_is_decided_by_the_point_estimate_so_its_bound_is_not_a_95_percent_bound():
    """A limitation, pinned here so a change is deliberate (docs/critical-width.md): 0/16, 2/16, 6/16 at widths 1,
    2, 4 give an m50 estimate past 4, so the row says `m50 > 4: not reached`; yet the likelihood with m50 = 4 is
    within 0.79 of the maximum (< 3.84): a 95% profile interval would reach below 4. Likewise 9/16, 14/16, 16/16
    says `m50 < 1` while m50 = 1 is within 0.16. In simulation (design dense_steep) every not_reached m90 row
    missed the truth, which lay inside the tested widths."""
    above = _fit([1, 2, 4], [0, 2, 6], 16)
    assert (above.status, above.ci_low) == ("not_reached_above", 4.0)
    assert likelihood_drop([1, 2, 4], [0, 2, 6], [16] * 3, 0.5, 4.0) < 1.0
    below = _fit([1, 2, 4], [9, 14, 16], 16)
    assert (below.status, below.ci_high) == ("not_reached_below", 1.0)
    assert likelihood_drop([1, 2, 4], [9, 14, 16], [16] * 3, 0.5, 1.0) < 1.0


def test_rows_without_a_claim_never_count_as_covering():
    assert _fit([1, 2, 3, 4], [14, 9, 6, 2], 16).status == "not_monotone"
    assert claimed(_fit([1, 2, 3, 4], [14, 9, 6, 2], 16)) is None
    assert claimed(_fit([5, 5], [3, 4], 10)) is None  # one_width
    assert claimed(_fit([], [], 16)) is None  # no_data
