"""The critical width of one curve: m50 and m90 with 95% intervals from every replica's 0/1 outcome.

Model: a binomial logistic regression of success on x = log(m_factor), logit P(success) = a + b x, fitted by
maximum likelihood with statsmodels' GLM. The width where P = q is m_q = exp((logit q - a) / b).

Interval: profile likelihood, not a bootstrap. Reparametrised as logit P = logit q + b (x - log m_q), the model
for a fixed m_q is a one-parameter GLM (regressor x - log m_q, offset logit q), so the profile is exact and
cheap; the 95% interval is where twice the log-likelihood drop stays under chi2(1, 0.95) = 3.84. It is
deterministic (no resampling noise in a file that is rebuilt on every report), follows the skew of a ratio
estimate (a Wald interval on -a/b is symmetric and poor when b is small), and its ends and coverage are checked in
tests/test_threshold_coverage.py against an independent likelihood and a known logistic.

Parameters per replica: the same m_q mapped through the grid's (m_factor, params_per_replica) pairs,
piecewise linear in log-log (params grow monotonically with m). At grid widths the mapping is exact;
between them it interpolates. One model, one set of numbers in both units.

Where the data cannot give a finite estimate the row says why instead of extrapolating:
  not_reached_above  the target is not reached by the widest width (m_q > max width; ci_low = max width)
  not_reached_below  already reached at the narrowest width (m_q < min width; ci_high = min width)
  separated          every failure sits below every success, with at most one mixed width between them (the MLE
                     does not exist): ci_low / ci_high bracket the threshold, estimate is empty. The bracket is the
                     last all-failure and first all-success widths, narrowed to the mixed width when its success
                     rate lies clearly on one side of the target (its 95% Wilson interval excludes the target):
                     0/16, 12/16, 16/16 at 313, 451, 613 puts m50 in (313, 451] and m90 in [451, 613)
                     (12/16: 0.505-0.898)
  not_monotone       fitted slope <= 0: success does not rise with width
  one_width          mixed outcomes at a single width: no slope, no threshold (ci_low = ci_high = that width)
An `ok` row whose interval runs past the tested widths is unbounded on that side: ci_low 0 or ci_high inf.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from overparam.stats import Z, wilson_interval

TARGETS = (0.5, 0.9)
CHI2_95 = Z**2  # chi2(1) 95% quantile (3.8415): the profile-likelihood cut-off, at the project's one confidence
FIELDS = ("curve", "target", "quantity", "unit", "estimate", "ci_low", "ci_high", "status", "widths", "trials",
          "successes")


@dataclass
class Threshold:
    """One target of one curve, in m_factor units (log-space fit already mapped back)."""

    target: float
    status: str
    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan


def quantity_name(target: float) -> str:
    return f"m{100 * target:g}"


def _counts(widths, successes, trials):
    """Per distinct width: (width, successes, trials), sorted by width, widths with no trials dropped."""
    pooled: dict[float, list[int]] = {}
    for width, succ, n in zip(widths, successes, trials):
        if n:
            entry = pooled.setdefault(float(width), [0, 0])
            entry[0] += int(succ)
            entry[1] += int(n)
    return [(w, s, n) for w, (s, n) in sorted(pooled.items())]


def _glm(successes, failures, exog, offset=None):
    import statsmodels.api as sm

    endog = np.column_stack([successes, failures])
    with warnings.catch_warnings():
        # Far out on the profile a fixed m_q makes the data look separated; statsmodels warns, the fit is right.
        warnings.simplefilter("ignore")
        return sm.GLM(endog, exog, family=sm.families.Binomial(), offset=offset).fit()


def fit_thresholds(widths, successes, trials, targets=TARGETS) -> list[Threshold]:
    """m_q for each target q from binomial counts per width (one entry per job or per replica, pooled here)."""
    data = _counts(widths, successes, trials)
    if not data:
        return [Threshold(t, "no_data") for t in targets]
    w = [d[0] for d in data]  # python floats, so rows hold plain numbers
    widths_list = w
    w = np.array(w)
    s = np.array([d[1] for d in data], dtype=float)
    n = np.array([d[2] for d in data], dtype=float)
    x = np.log(w)
    if s.sum() == 0:
        return [Threshold(t, "not_reached_above", ci_low=widths_list[-1]) for t in targets]
    if s.sum() == n.sum():
        return [Threshold(t, "not_reached_below", ci_high=widths_list[0]) for t in targets]
    if len(w) == 1:  # mixed outcomes at a single width: no slope, so no threshold to place
        return [Threshold(t, "one_width", ci_low=widths_list[0], ci_high=widths_list[0]) for t in targets]
    mixed = (s > 0) & (s < n)
    lowest_success = w[np.argmax(s > 0)]
    highest_failure = w[np.nonzero(s < n)[0][-1]]
    if highest_failure <= lowest_success and _separated(s, n):
        # Complete or quasi-complete separation: the likelihood keeps growing as the slope grows, so there is no
        # MLE. All we know is that the threshold lies between the last all-failure and first all-success widths.
        below = w[w < lowest_success]
        above = w[w > highest_failure]
        low = float(below[-1]) if below.size else math.nan
        high = float(above[0]) if above.size else math.nan
        return [Threshold(t, "separated", ci_low=low, ci_high=high) if not mixed.any()
                else _narrowed(t, low, high, float(w[mixed][0]), *wilson_interval(int(s[mixed][0]), int(n[mixed][0])))
                for t in targets]
    exog = np.column_stack([np.ones_like(x), x])
    full = _glm(s, n - s, exog)
    intercept, slope = (float(v) for v in full.params)
    if not slope > 0:
        return [Threshold(t, "not_monotone") for t in targets]
    out = []
    for target in targets:
        logit = math.log(target / (1 - target))
        theta = (logit - intercept) / slope  # log m_q
        edge = 1e-9  # a fit through a point at exactly q puts m_q on that width, up to rounding
        if theta > x[-1] + edge:
            out.append(Threshold(target, "not_reached_above", ci_low=widths_list[-1]))
            continue
        if theta < x[0] - edge:
            out.append(Threshold(target, "not_reached_below", ci_high=widths_list[0]))
            continue
        low, high = _profile_interval(s, n, x, logit, theta, full.llf)
        out.append(Threshold(target, "ok", math.exp(theta), math.exp(low), math.exp(high)))
    return out


def _narrowed(target: float, low: float, high: float, width: float, rate_low: float, rate_high: float) -> Threshold:
    """A separated row's bracket (low, high) around one mixed `width`, narrowed to that width on the side where its
    success rate's 95% Wilson interval (rate_low, rate_high) lies clear of the target."""
    if rate_low > target:  # clearly above: the target is reached at or below this width
        return Threshold(target, "separated", ci_low=low, ci_high=width)
    if rate_high < target:  # clearly below: the target is reached above it
        return Threshold(target, "separated", ci_low=width, ci_high=high)
    return Threshold(target, "separated", ci_low=low, ci_high=high)


def _separated(s, n) -> bool:
    """True when, in width order, the outcomes are all failures, then at most one mixed width, then all successes."""
    mixed = (s > 0) & (s < n)
    if mixed.sum() > 1:
        return False
    first_success = np.argmax(s > 0)
    last_failure = np.nonzero(s < n)[0][-1]
    return last_failure <= first_success


def _profile_interval(s, n, x, logit, theta_hat, llf_max):
    """Where 2 * (llf_max - profile(theta)) = chi2 cut, searched out to one data span beyond the tested widths."""
    from scipy.optimize import brentq

    def excess(theta):
        profile = _glm(s, n - s, (x - theta)[:, None], offset=np.full_like(x, logit)).llf
        return 2.0 * (llf_max - profile) - CHI2_95

    span = max(x[-1] - x[0], math.log(2.0))
    bounds = []
    for edge in (x[0] - span, x[-1] + span):
        try:
            bounds.append(brentq(excess, theta_hat, edge, xtol=1e-6) if excess(edge) > 0 else math.nan)
        except ValueError:
            bounds.append(math.nan)
    low, high = bounds
    # Beyond the tested widths the data say nothing: an interval past them is reported as unbounded on that side.
    low = low if low >= x[0] else -math.inf
    high = high if high <= x[-1] else math.inf
    return low, high


def grid_bracket(rates: list[tuple[float, float]], target: float) -> tuple[float | None, float | None]:
    """Where a curve read off its grid (`(width, success rate)` pairs) crosses `target`, with no model: the widest
    width whose rate is at most the target and the narrowest whose rate is at least it (None when missing). A rate
    exactly at the target is both ends; with rates that are not monotone the two are reported as read."""
    ordered = sorted(rates)
    below = [width for width, rate in ordered if rate <= target]
    above = [width for width, rate in ordered if rate >= target]
    return (below[-1] if below else None), (above[0] if above else None)


def params_at(width: float, grid: list[tuple[float, float]]) -> float:
    """params_per_replica at a (possibly fractional) width: piecewise linear in log-log through the grid."""
    grid = sorted((float(m), float(p)) for m, p in grid if m and p)
    if not grid or not math.isfinite(width) or width <= 0:
        return math.nan
    if len(grid) == 1:
        return grid[0][1] if width == grid[0][0] else math.nan
    logs_m = np.log([m for m, _ in grid])
    logs_p = np.log([p for _, p in grid])
    if not grid[0][0] <= width <= grid[-1][0]:
        return math.nan  # no extrapolation outside the tested widths
    exact = dict(grid)
    if width in exact:
        return exact[width]
    return float(np.exp(np.interp(math.log(width), logs_m, logs_p)))


def threshold_rows(curve: str, widths, successes, trials, params_grid, targets=TARGETS) -> list[dict]:
    """The csv rows of one curve: each target in m_factor and in parameters per replica."""
    data = _counts(widths, successes, trials)
    totals = {"widths": len(data), "trials": sum(d[2] for d in data), "successes": sum(d[1] for d in data)}
    rows = []
    for result in fit_thresholds(widths, successes, trials, targets):
        base = {"curve": curve, "target": result.target, "quantity": quantity_name(result.target),
                "status": result.status, **totals}
        values = (result.estimate, result.ci_low, result.ci_high)
        rows.append({**base, "unit": "m_factor", **dict(zip(("estimate", "ci_low", "ci_high"), values))})
        mapped = [_map_bound(v, params_grid) for v in values]
        rows.append({**base, "unit": "params", **dict(zip(("estimate", "ci_low", "ci_high"), mapped))})
    return [{key: row[key] for key in FIELDS} for row in rows]


def _map_bound(value: float, grid) -> float:
    if value == 0 or (isinstance(value, float) and math.isinf(value)):
        return value  # unbounded sides stay unbounded
    return params_at(value, grid)


def describe(row: dict) -> str:
    """One line for terminals and TensorBoard, e.g. `m50 = 4.2 (95% CI 3.6-5.0) m_factor`."""
    name, unit, status = row["quantity"], row["unit"], row["status"]
    fmt = _number if unit == "m_factor" else _count
    low, high = row["ci_low"], row["ci_high"]
    if status == "ok":
        return f"{name} = {fmt(row['estimate'])} (95% CI {fmt(low)}-{fmt(high)}) {unit}"
    if status == "not_reached_above":
        return f"{name} > {fmt(low)} {unit}: not reached"
    if status == "not_reached_below":
        return f"{name} < {fmt(high)} {unit}: reached at the narrowest width"
    if status == "separated":
        return f"{name} between {fmt(low)} and {fmt(high)} {unit}: separated data (no MLE), bracketing widths"
    if status == "one_width":
        return f"{name}: one width tested ({fmt(low)} {unit}), mixed outcomes: no fit"
    if status == "not_monotone":
        return f"{name}: success does not rise with width (fitted slope <= 0)"
    return f"{name}: {status}"


def _number(value: float) -> str:
    return _shown(value, "{:.3g}")


def _count(value: float) -> str:
    return _shown(value, "{:,.0f}")


def _shown(value: float, pattern: str) -> str:
    """`value` in `pattern`, with `?` for a missing or NaN value and `inf` / `-inf` for open ends."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return pattern.format(value)
