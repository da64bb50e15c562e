"""The critical-width search, without Hydra: which jobs to run next given the outcomes so far.

Used by the `hydra/sweeper=critical_width` plugin (src/hydra_plugins/overparam_critical_width). For one
combination of the other swept keys, the state is a tally per integer width (successes, trials, finished
seeds); `plan` turns it into the next jobs, (width, seed index) pairs, or a final status. It is a pure function
of the tally, so a search replayed from the result files makes the same decisions as the one that wrote them.

Per target t (a width's rate r = successes / trials; "below" when its 95% Wilson interval lies under t,
"above" when over it, "straddles" otherwise):
  1. bracket: run `low`, then double the widest width run so far (capped at `high`) until some r >= t;
  2. bisect: lo = widest run width with r < t under hi = narrowest with r >= t; run round(sqrt(lo * hi));
  3. pin: once hi / lo - 1 <= precision (or hi = lo + 1), stop if lo is below and hi above; otherwise add a
     seed (one more job of `trials` replicas) at each straddling end, up to `max_seeds` jobs per width.
A target also stops when the logistic fit's 95% interval (overparam.thresholds) is narrower than the
precision, or when it is not reached within [low, high]. The caller stops everything at `max_jobs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import ConfigError
from .metrics import wilson_interval
from .thresholds import fit_thresholds


@dataclass(frozen=True)
class SearchSettings:
    low: int = 1
    high: int = 64
    targets: tuple = (0.5,)
    precision: float = 0.25
    max_jobs: int = 60
    max_seeds: int = 4

    @classmethod
    def checked(cls, low, high, targets, precision, max_jobs, max_seeds, prefix="hydra.sweeper") -> SearchSettings:
        """Settings from config values; a ConfigError naming the key, value and what is allowed when one is bad."""
        targets = tuple(targets) if isinstance(targets, (list, tuple)) else (targets,)
        for key, value in (("low", low), ("high", high), ("max_jobs", max_jobs), ("max_seeds", max_seeds)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{prefix}.{key}={value!r}: must be an integer >= 1")
        if high < low:
            raise ConfigError(f"{prefix}.high={high!r}: must be >= {prefix}.low={low!r}")
        if not targets:
            raise ConfigError(f"{prefix}.targets=[]: must list at least one success rate in (0, 1)")
        for target in targets:
            if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
                raise ConfigError(f"{prefix}.targets={list(targets)!r}: every target must be a number in (0, 1)")
        if isinstance(precision, bool) or not isinstance(precision, (int, float)) or not precision > 0:
            raise ConfigError(f"{prefix}.precision={precision!r}: must be a relative width > 0 (e.g. 0.25)")
        return cls(low, high, tuple(float(t) for t in targets), float(precision), max_jobs, max_seeds)


@dataclass
class WidthTally:
    successes: int = 0
    trials: int = 0
    seeds: int = 0  # finished jobs (seed indices 0 .. seeds-1)
    params_per_replica: int | None = None

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    def side(self, target: float) -> str:
        low, high = wilson_interval(self.successes, self.trials)
        return "below" if high < target else "above" if low > target else "straddles"


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
        hi = next((w for w in run if tally[w].rate >= target), None)
        if hi is None:
            top = run[-1] if run else settings.low
            if top >= settings.high:
                out.status[target] = f"not reached by high={settings.high}"
            else:
                wanted.add((min(2 * top, settings.high), 0))
            continue
        below = [w for w in run if w < hi and tally[w].rate < target]
        if not below:
            out.status[target] = f"reached at the narrowest width {hi}"
            continue
        lo = below[-1]
        if hi / lo - 1 <= settings.precision or hi - lo <= 1:
            straddling = [w for w, side in ((lo, "below"), (hi, "above")) if tally[w].side(target) != side]
            if not straddling:
                out.status[target] = f"pinned between {lo} and {hi}"
                continue
            more = [(w, tally[w].seeds) for w in straddling if tally[w].seeds < settings.max_seeds]
            if not more:
                out.status[target] = f"between {lo} and {hi}; intervals overlap after max_seeds={settings.max_seeds}"
            wanted.update(more)
            continue
        middle = round(math.exp((math.log(lo) + math.log(hi)) / 2))
        wanted.add((min(max(middle, lo + 1), hi - 1), 0))
    out.jobs = sorted(wanted)
    return out


def add_result(tally: dict[int, WidthTally], width: int, result: dict) -> None:
    """Pool a finished job's replicas into its width."""
    entry = tally.setdefault(width, WidthTally())
    rows = result.get("per_replica") or []
    entry.successes += sum(bool(row.get("success")) for row in rows)
    entry.trials += len(rows)
    entry.seeds += 1
    entry.params_per_replica = result.get("params_per_replica", entry.params_per_replica)
