"""What a critical-width search would cost, and how often it would agree with a grid, on success rates you give.

    python -m overparam.search.simulation --rates 1:0.19,2:0.62,3:0.56,4:0.69,5:0.88,6:0.94,8:0.94 \\
        --grid-replicas 112 --grid-interval 1.41,2.62 --settings 4:3 4:4 8:2 16:4
    python -m overparam.search.simulation --logistic 6:4 --low 1 --high 40 --runs 1000

No training: each simulated job draws its replicas' outcomes from the given rate at its width (binomial), and the
search is `overparam.search.planner.plan`, the planner the `hydra/sweeper=critical_width` plugin runs. For each
setting (`trials:max_seeds`) it prints the mean and 90th percentile of the replicas spent (as a share of the
grid's, when `--grid-replicas` is given), how often the fit came out `ok`, the median ratio of its 95% interval's
ends, how often the final fit ended in each status, and, with `--grid-interval`, how often the search's interval
overlapped the grid's (an open end counts as open). With a known truth (`--logistic M50:SLOPE`, success rate
1 / (1 + (m / M50)^-SLOPE) at width m, or `--true-m50` beside `--rates`) it prints how often the search's final
interval holds the true m50. What a fit claims (`SearchOutcome.claims`): an `ok` interval, a `separated` bracket,
`not_reached_above` (widest width, inf), `not_reached_below` (0, narrowest width); a `not_monotone` or
`one_width` fit claims nothing, so it neither covers the truth nor overlaps the grid's interval.
Widths the rates do not list take the rate of the nearest listed width below (or above).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from overparam.report.width import fit_thresholds
from overparam.search.planner import SearchSettings, WidthTally, plan

CLAIMING = ("ok", "separated", "not_reached_above", "not_reached_below")  # the fit says where m_q lies


@dataclass
class SearchOutcome:
    replicas: int
    status: str  # the fit's status for the first target
    ci_low: float  # 0 when open
    ci_high: float  # inf when open
    stopped: str  # the planner's reason

    @property
    def claims(self) -> bool:
        """Whether the fit places the threshold at all (not `not_monotone`, `one_width` or `no_data`)."""
        return self.status in CLAIMING

    def covers(self, value: float) -> bool:
        return self.claims and self.ci_low <= value <= self.ci_high

    def overlaps(self, low: float, high: float) -> bool:
        return self.claims and self.ci_low <= high and self.ci_high >= low


Rates = dict[int, float] | Callable[[int], float]


def logistic_rates(m50: float, slope: float) -> Callable[[int], float]:
    """Success rate 1 / (1 + exp(-slope (log m - log m50))) at width m: a curve whose m50 is known."""
    return lambda width: 1.0 / (1.0 + math.exp(-slope * (math.log(width) - math.log(m50))))


def simulate_search(rates: Rates, settings: SearchSettings, rng: np.random.Generator) -> SearchOutcome:
    """One search against the given per-width success rates (a table, or a function of the width)."""
    tally: dict[int, WidthTally] = {}
    jobs = 0
    while True:
        step = plan(tally, settings)
        if not step.jobs or jobs >= settings.max_jobs:
            break
        for width, seed_index in step.jobs[: settings.max_jobs - jobs]:
            entry = tally.setdefault(width, WidthTally())
            rate = rate_at(rates, width)
            for replica in range(settings.trials):
                entry.outcomes[(width, seed_index, replica)] = bool(rng.random() < rate)
            entry.jobs.add(seed_index)
            jobs += 1
    widths = sorted(tally)
    fit = fit_thresholds(widths, [tally[w].successes for w in widths], [tally[w].trials for w in widths],
                         settings.targets[:1])[0]
    low = fit.ci_low if _finite(fit.ci_low) else 0.0
    high = fit.ci_high if _finite(fit.ci_high) else math.inf
    return SearchOutcome(sum(t.trials for t in tally.values()), fit.status, low, high,
                         next(iter(step.status.values()), "max_jobs spent"))


def rate_at(rates: Rates, width: int) -> float:
    if callable(rates):
        return rates(width)
    below = [w for w in rates if w <= width]
    return rates[max(below)] if below else rates[min(rates)]


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rates", help="width:rate pairs, e.g. 1:0.1,2:0.6,4:0.9")
    source.add_argument("--logistic", help="M50:SLOPE, a known logistic in log width, e.g. 6:4 (needs --high)")
    parser.add_argument("--true-m50", type=float, default=None, help="the true m50, for the coverage of --rates")
    parser.add_argument("--low", type=int, default=None, help="default: the narrowest width given (1 with --logistic)")
    parser.add_argument("--high", type=int, default=None, help="default: the widest width given")
    parser.add_argument("--settings", nargs="+", default=["4:3"], help="trials:max_seeds pairs to compare")
    parser.add_argument("--precision", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid-replicas", type=int, default=None, help="the grid's replicas, for the cost share")
    parser.add_argument("--grid-interval", default=None, help="the grid's 95%% interval of m50, e.g. 1.41,2.62")
    args = parser.parse_args(argv)
    try:
        if args.logistic:
            m50, slope = (float(x) for x in args.logistic.split(":"))
            rates, truth = logistic_rates(m50, slope), m50
        else:
            rates = {int(w): float(r) for w, r in (pair.split(":") for pair in args.rates.split(","))}
            truth = args.true_m50
        grid = tuple(float(x) for x in args.grid_interval.split(",")) if args.grid_interval else None
        pairs = [tuple(int(x) for x in setting.split(":")) for setting in args.settings]
    except ValueError as error:
        parser.error(f"--rates, --logistic, --grid-interval and --settings take numbers as shown in --help ({error})")
    if args.logistic and args.high is None:
        parser.error("--logistic needs --high (the widest width the search may run)")
    low = args.low or (1 if args.logistic else min(rates))
    high = args.high or max(rates)
    for trials, max_seeds in pairs:
        settings = SearchSettings.checked(low, high, [0.5], args.precision, 10_000, max_seeds, trials)
        rng = np.random.default_rng(args.seed)
        outcomes = [simulate_search(rates, settings, rng) for _ in range(args.runs)]
        spent = np.array([o.replicas for o in outcomes], dtype=float)
        share = spent / args.grid_replicas if args.grid_replicas else spent
        unit = "of the grid's replicas" if args.grid_replicas else "replicas"
        closed = [o.ci_high / o.ci_low for o in outcomes if o.status == "ok" and 0 < o.ci_low and o.ci_high < math.inf]
        fitted = np.mean([o.status == "ok" for o in outcomes])
        line = (f"trials={trials} max_seeds={max_seeds}: spent {np.mean(share):.2f} {unit} on average "
                f"(90th percentile {np.quantile(share, 0.9):.2f}); fit ok {fitted:.2f}"
                f"; median interval ratio {np.median(closed) if closed else math.nan:.2f}")
        if grid:
            agree = np.mean([o.overlaps(*grid) for o in outcomes])
            line += f"; overlaps the grid's interval {agree:.2f}"
        if truth is not None:
            line += f"; covers the true m50 {np.mean([o.covers(truth) for o in outcomes]):.3f}"
        statuses = Counter(o.status for o in outcomes)
        line += "; statuses " + ", ".join(f"{status} {count / len(outcomes):.2f}"
                                          for status, count in statuses.most_common())
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
