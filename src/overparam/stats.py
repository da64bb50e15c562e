"""Metrics that do not depend on a task: success-rate intervals and pooled R^2."""

from __future__ import annotations

import math

import torch

# Every interval of the project is a 95% one: Wilson bands, t intervals, the critical width's profile likelihood
# (its cut-off is Z ** 2, the chi2(1) quantile) and the search's "clearly above / below" decisions.
CONFIDENCE = 0.95
Z = 1.959963984540054  # the standard normal's (1 + CONFIDENCE) / 2 quantile


def wilson_interval(successes: int, trials: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default); (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, center - half_width), min(1.0, center + half_width)


def pooled_r2(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """R^2 pooled over outputs, variance-weighted (sklearn's `multioutput='variance_weighted'`).

    `[..., N, D]` in, `[...]` out: 1 - (total squared error) / (total squared deviation from each output's mean).
    """
    residual = ((predictions - targets) ** 2).sum(dim=(-2, -1))
    deviation = ((targets - targets.mean(dim=-2, keepdim=True)) ** 2).sum(dim=(-2, -1))
    return 1.0 - residual / deviation


# Per-replica keys that are not metrics to average: the outcome itself, training's own flag, and the seed.
_NOT_AVERAGED = ("success", "diverged", "seed")


def summarize(per_replica: list[dict]) -> dict:
    """A grid point's (or a job's) numbers from its replicas' rows: the success rate with its Wilson interval,
    the mean of every numeric metric (`<metric>_mean`, finite values only), the fraction of every flag
    (`<flag>_fraction`, e.g. collapsed_fraction), and the count of diverged replicas. The job and the report
    both summarise with this, so result.json and summary.csv always agree."""
    trials = len(per_replica)
    successes = sum(bool(row.get("success")) for row in per_replica)
    low, high = wilson_interval(successes, trials)
    summary = {
        "trials": trials,
        "successes": successes,
        "success_rate": successes / trials if trials else math.nan,
        "success_ci_low": low,
        "success_ci_high": high,
    }
    keys: list[str] = []
    for row in per_replica:
        keys.extend(key for key in row if key not in keys and key not in _NOT_AVERAGED)
    flags = [key for key in keys if any(isinstance(row.get(key), bool) for row in per_replica)]
    for key in keys:
        if key in flags:
            continue
        values = [row[key] for row in per_replica if _is_finite_number(row.get(key))]
        if values:
            summary[f"{key}_mean"] = sum(values) / len(values)
    for key in flags:
        summary[f"{key}_fraction"] = sum(bool(row.get(key)) for row in per_replica) / trials
    summary["diverged"] = sum(bool(row.get("diverged")) for row in per_replica)
    return summary


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval for the mean of `values` (replicas as independent draws); NaNs with fewer than two."""
    from scipy import stats

    values = [v for v in values if _is_finite_number(v)]
    if len(values) < 2:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if all(v == values[0] for v in values):
        return mean, mean
    return tuple(float(bound) for bound in stats.t.interval(confidence, len(values) - 1, loc=mean,
                                                           scale=stats.sem(values)))


def interval_columns(per_replica: list[dict], columns) -> dict:
    """`<m>_ci_low` and `<m>_ci_high` (95% t interval of metric m's mean over replicas) for each such name among
    `columns`: the report adds them only where a task's chart asks for them."""
    summary = {}
    for column in columns:
        for suffix in ("_ci_low", "_ci_high"):
            if column.endswith(suffix) and column != f"success{suffix}":
                metric = column[: -len(suffix)]
                low, high = mean_interval([row.get(metric) for row in per_replica])
                summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"] = low, high
    return summary


def paired_difference(pairs: list[tuple[bool, bool]], z: float = Z) -> dict:
    """The difference p1 - p2 of two success rates measured on the same units (each unit gives a pair of 0/1
    outcomes), with a 95% interval by Newcombe's method 10 (R. G. Newcombe, "Improved confidence intervals for the
    difference between binomial proportions based on paired data", Statistics in Medicine 17, 2635-2650, 1998:
    the Wilson intervals of the two rates combined with the correlation phi of the pairs), and the exact McNemar
    test's two-sided p-value (a binomial test of the discordant pairs against 1/2).

    Counts: `both` (a), `first_only` (b), `second_only` (c), `neither` (d); the difference is (b - c) / n."""
    from scipy.stats import binomtest

    a = sum(1 for x, y in pairs if x and y)
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if y and not x)
    d = sum(1 for x, y in pairs if not x and not y)
    n = a + b + c + d
    out = {"pairs": n, "both": a, "first_only": b, "second_only": c, "neither": d}
    if n == 0:
        return {**out, "difference": math.nan, "ci_low": math.nan, "ci_high": math.nan, "mcnemar_p": math.nan}
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    difference = p1 - p2
    mcnemar = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return {**out, "difference": difference, "ci_low": max(-1.0, difference - below),
            "ci_high": min(1.0, difference + above), "mcnemar_p": float(mcnemar)}
