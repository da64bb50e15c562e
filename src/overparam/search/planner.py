"""The critical-width search, without Hydra: which jobs to run next given the outcomes so far.

Used by the `hydra/sweeper=critical_width` plugin (src/hydra_plugins/overparam_critical_width). For one
combination of the other swept keys, the state is a tally per integer width: every replica already trained
there, whichever job trained it (a search job or an earlier grid job in the same folder; each replica, by its
seed, once), and which of the search's own jobs (seed index k: seed + k, `trials` replicas) those replicas
cover. `plan` turns it into the next jobs, (width, seed index) pairs, or a final status. It is a pure function
of the tally, so a search replayed from the result files continues from what they hold.

Search jobs are small (`trials`, default 4 replicas) because most of a grid's replicas land where the answer is
already clear (all fail or all succeed); replicas are added only at the widths that bracket the target.

Per target t (a width's rate r = successes / trials; "below" when its 95% Wilson interval lies under t,
"above" when over it, "straddles" otherwise):
  1. bracket: run `low`, then double the widest width run so far (capped at `high`) until some r >= t;
  2. bisect: lo = widest run width with r < t under hi = narrowest with r >= t; run round(sqrt(lo * hi));
  3. pin: once hi / lo - 1 <= precision (or hi = lo + 1), stop if lo is below and hi above; otherwise add a
     job at each straddling end, until a width holds `max_seeds` jobs' worth (max_seeds x trials) of replicas.
A target also stops when the logistic fit's 95% interval (overparam.report.width) is narrower than the
precision, or when it is not reached within [low, high], or reached at `low`: those two only once that width's
interval lies clear of the target (or holds max_seeds jobs' worth), as small jobs alone are weak evidence.
The caller stops everything at `max_jobs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from overparam.config import ConfigError
from overparam.jobs.identity import replica_key
from overparam.report.width import fit_thresholds
from overparam.stats import wilson_interval


@dataclass(frozen=True)
class SearchSettings:
    low: int = 1
    high: int = 64
    targets: tuple = (0.5,)
    precision: float = 0.25
    max_jobs: int = 60
    max_seeds: int = 3
    trials: int | None = 4  # replicas per search job; None: the job config's own `trials`

    @classmethod
    def checked(cls, low, high, targets, precision, max_jobs, max_seeds, trials=4,
                prefix="hydra.sweeper") -> SearchSettings:
        """Settings from config values; a ConfigError naming the key, value and what is allowed when one is bad."""
        targets = tuple(targets) if isinstance(targets, (list, tuple)) else (targets,)
        numbers = [("low", low), ("high", high), ("max_jobs", max_jobs), ("max_seeds", max_seeds)]
        for key, value in numbers + ([("trials", trials)] if trials is not None else []):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{prefix}.{key}={value!r}: must be an integer >= 1" +
                                  (" (or null: the job config's trials)" if key == "trials" else ""))
        if high < low:
            raise ConfigError(f"{prefix}.high={high!r}: must be >= {prefix}.low={low!r}")
        if not targets:
            raise ConfigError(f"{prefix}.targets=[]: must list at least one success rate in (0, 1)")
        for target in targets:
            if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
                raise ConfigError(f"{prefix}.targets={list(targets)!r}: every target must be a number in (0, 1)")
        if isinstance(precision, bool) or not isinstance(precision, (int, float)) or not precision > 0:
            raise ConfigError(f"{prefix}.precision={precision!r}: must be a relative width > 0 (e.g. 0.25)")
        return cls(low, high, tuple(float(t) for t in targets), float(precision), max_jobs, max_seeds, trials)


@dataclass
class WidthTally:
    outcomes: dict = field(default_factory=dict)  # identity.replica_key -> success, each replica once
    jobs: set = field(default_factory=set)  # seed indices k of the search's jobs whose replicas are all here
    params_per_replica: int | None = None

    @property
    def successes(self) -> int:
        return sum(self.outcomes.values())

    @property
    def trials(self) -> int:
        return len(self.outcomes)

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    def side(self, target: float) -> str:
        low, high = wilson_interval(self.successes, self.trials)
        return "below" if high < target else "above" if low > target else "straddles"

    def next_job(self) -> int:
        """The first seed index whose replicas are not all here yet."""
        return next(k for k in range(len(self.jobs) + 1) if k not in self.jobs)


@dataclass
class Plan:
    jobs: list = field(default_factory=list)  # (width, seed index), sorted
    status: dict = field(default_factory=dict)  # target -> why it stopped, for targets that did


def plan(tally: dict[int, WidthTally], settings: SearchSettings) -> Plan:
    """The next jobs for one combination, or (no jobs) why every target stopped."""
    wanted: set[tuple[int, int]] = set()
    out = Plan()
    run = sorted(w for w, t in tally.items() if t.trials)
    fits = {f.target: f for f in fit_thresholds(run, [tally[w].successes for w in run],
                                                 [tally[w].trials for w in run], settings.targets)} if run else {}
    for target in settings.targets:
        if settings.low not in tally:
            wanted.add((settings.low, 0))
            continue
        fit = fits.get(target)
        narrow = fit is not None and fit.status == "ok" and 0 < fit.ci_low
        if narrow and fit.ci_high <= fit.ci_low * (1 + settings.precision):
            out.status[target] = "fitted interval within precision"
            continue

        def confirm(sides: list[tuple[int, str]], done: str, unsure: str, target=target) -> None:
            clear, jobs, unbounded = _confirm(tally, run, target, sides, settings)
            wanted.update(jobs)
            if unbounded and not jobs:
                ends = " and ".join(f"down to low={settings.low} lies clearly below" if side == "below" else
                                    f"up to high={settings.high} lies clearly above" for side in unbounded)
                out.status[target] = (f"{unsure}; no width {ends} {target} with max_seeds={settings.max_seeds} "
                                      "jobs' replicas")
            elif not jobs:
                out.status[target] = done.format(*clear)

        hi = next((w for w in run if tally[w].rate >= target), None)
        if hi is None:
            top = run[-1] if run else settings.low
            if top >= settings.high:
                confirm([(top, "below")], *[f"not reached by high={settings.high}"] * 2)
            else:
                wanted.add((min(2 * top, settings.high), 0))
            continue
        below = [w for w in run if w < hi and tally[w].rate < target]  # bisect between hi and the widest width under it
        if not below:
            confirm([(hi, "above")], f"reached at the narrowest width {hi}" + ("" if tally[hi].side(target) == "above"
                    else " (clearly above the target at {})"), f"reached at the narrowest width {hi}")
            continue
        lo = below[-1]
        if hi / lo - 1 <= settings.precision or hi - lo <= 1:
            confirm([(lo, "below"), (hi, "above")], "pinned between {} and {}", f"between {lo} and {hi}")
            continue
        middle = round(math.exp((math.log(lo) + math.log(hi)) / 2))
        wanted.add((min(max(middle, lo + 1), hi - 1), 0))
    out.jobs = sorted(wanted)
    return out


def _confirm(tally: dict[int, WidthTally], run: list[int], target: float, sides: list[tuple[int, str]],
             settings: SearchSettings) -> tuple[list[int], list[tuple[int, int]], list[str]]:
    """Whether each (width, side) is settled: the width, or one beyond it, lies clearly on its side of the target.
    Returns the clear widths, the jobs still wanted, and the sides that ran out of widths. A width not yet clear
    gets one more job; one still unclear with max_seeds x trials replicas hands the question to the next width
    outward (the next one run, else one `precision` further), within [low, high]."""
    cap = settings.max_seeds * settings.trials
    clear, jobs, unbounded = [], [], []
    for width, side in sides:
        step = 1 if side == "above" else -1
        while True:
            entry = tally.get(width)
            if entry is not None and entry.side(target) == side:
                clear.append(width)
                break
            if entry is None or entry.trials < cap:
                jobs.append((width, entry.next_job() if entry else 0))
                break
            beyond = [w for w in run if (w - width) * step > 0]
            further = (min(beyond) if step > 0 else max(beyond)) if beyond else \
                width + step * max(1, round(width * settings.precision))
            if not settings.low <= further <= settings.high:
                unbounded.append(side)
                break
            width = further
    return clear, jobs, unbounded


def add_result(tally: dict[int, WidthTally], width: int, result: dict, source: str = "") -> None:
    """Pool a finished job's replicas into its width, each replica once."""
    entry = tally.setdefault(width, WidthTally())
    for index, row in enumerate(result.get("per_replica") or []):
        entry.outcomes[replica_key(result, row, index, source)] = bool(row.get("success"))
    entry.params_per_replica = result.get("params_per_replica", entry.params_per_replica)


def mark_jobs(entry: WidthTally, job_seeds: list[list[int]]) -> None:
    """Record which of the search's jobs at this width (their replica seeds, by seed index) are already covered."""
    have = {key[1] for key in entry.outcomes}
    entry.jobs = {k for k, seeds in enumerate(job_seeds) if set(seeds) <= have}
