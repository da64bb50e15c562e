"""A test-only Hydra app whose "training" is a coin with a known success probability.

Replica i of the job at width m succeeds with probability 1 / (1 + (m50 / m) ** slope), a logistic in log m,
drawn from a generator seeded by (seed, m), so every job is deterministic, and replica i's outcome does not
depend on how many replicas the job has (as in a real job, where it depends only on the replica's own seed).
The job writes result.json with the fields the critical_width sweeper and the report read, skips itself when
that file is complete (as a real job does), and appends its folder to writes.log in the sweep folder, so tests
can count result.json writes.

    python tests/known_answer/app.py -m hydra/sweeper=critical_width hydra.sweep.dir=/tmp/x
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from overparam.jobs.identity import is_done
from overparam.jobs.results import RESULT_FILE, read_result, write_result
from overparam.seeds import replica_seeds

WRITES_LOG = "writes.log"


def success_probability(width: float, m50: float, slope: float) -> float:
    return 1.0 / (1.0 + (m50 / width) ** slope)


def outcomes(seed: int, width: int, trials: int, m50: float, slope: float) -> list[bool]:
    rng = np.random.default_rng([seed, width])
    return [bool(u) for u in rng.random(trials) < success_probability(width, m50, slope)]


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(config: DictConfig) -> float:
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(config, resolve=True)
    previous = read_result(job_dir / RESULT_FILE)
    if is_done(previous, resolved):
        return previous["success_rate"]
    # Room for a test to kill the sweep mid-job; an environment variable, so it is no part of the job's identity.
    time.sleep(float(os.environ.get("KNOWN_ANSWER_JOB_SECONDS", "0")))
    width = config.model.m_factor
    wins = outcomes(config.seed, width, config.trials, config.truth.m50, config.truth.slope)
    result = {
        "status": "ok", "m_factor": width, "params_per_replica": 10 * width * width, "trials": config.trials,
        "successes": sum(wins), "success_rate": sum(wins) / config.trials,
        "per_replica": [{"success": win, "seed": seed}
                        for win, seed in zip(wins, replica_seeds(config.seed, config.trials))],
        "config": resolved,
    }
    write_result(job_dir, result)
    with open(Path(HydraConfig.get().sweep.dir) / WRITES_LOG, "a") as log:
        log.write(f"{job_dir.name}\n")
    return result["success_rate"]


if __name__ == "__main__":
    main()
