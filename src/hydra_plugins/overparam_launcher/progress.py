"""A sweep's progress as its jobs finish: jobs done of the total, how many failed, time elapsed, and an estimated end
from the jobs' estimated costs (`overparam.search.schedule.estimated_cost`), logged by the launcher."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


class SweepProgress:
    def __init__(self, costs: list[float], label: str = "sweep"):
        self.costs, self.label = costs, label
        self.started = time.monotonic()
        self.done: set[int] = set()
        self.failed: set[int] = set()

    def finished(self, index: int, failed: bool) -> str:
        """Record job `index` (into `costs`) as finished; return the line the launcher logs."""
        self.done.add(index)
        if failed:
            self.failed.add(index)
        line = self.line()
        log.info(line)
        return line

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        total = len(self.costs)
        done_cost = sum(self.costs[i] for i in self.done)
        left_cost = sum(cost for i, cost in enumerate(self.costs) if i not in self.done)
        if len(self.done) == total:
            eta = "all done"
        elif done_cost > 0:
            eta = f"about {_duration(elapsed * left_cost / done_cost)} left (from the jobs' estimated costs)"
        else:
            eta = "no estimate yet"
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{self.label}: {len(self.done)}/{total} jobs done{failed}, {_duration(elapsed)} elapsed, {eta}"


def job_failed(output_dir: str | Path, status=None) -> bool:
    """Whether a finished job failed: Hydra says its task raised, or its result.json says failed (or is missing)."""
    if status is not None and getattr(status, "name", "") == "FAILED":
        return True
    try:
        return json.loads((Path(output_dir) / "result.json").read_text()).get("status") != "ok"
    except (OSError, ValueError):
        return True


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
