"""What a sweep cost: jobs, replica-steps (sum over jobs of trials x the steps each trained: `trained_steps`, which is
less than max_steps for a job that stopped early, e.g. with `trainer.stop_when_solved`) and the jobs' summed wall time.

    python -m overparam.search.cost SWEEP_DIR [SWEEP_DIR ...]

Reads the same result files as the report; used to compare a grid with a critical_width search.
"""

from __future__ import annotations

import sys
from pathlib import Path

from overparam.report import load_results


def sweep_cost(sweep_dir: str | Path) -> dict:
    results = [result for _, result in load_results([Path(sweep_dir)]) if result.get("status") == "ok"]
    return {
        "jobs": len(results),
        "replica_steps": sum(r["trials"] * r.get("trained_steps", r["config"]["trainer"]["max_steps"])
                             for r in results),
        "job_wall_seconds": sum(r.get("wall_seconds") or 0.0 for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    for sweep_dir in argv if argv is not None else sys.argv[1:]:
        cost = sweep_cost(sweep_dir)
        print(f"{sweep_dir}: {cost['jobs']} jobs, {cost['replica_steps']:,} replica-steps, "
              f"{cost['job_wall_seconds']:.0f} s of job wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
