"""What run.py does inside Hydra: find the job's folder and mode, then run the job."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from overparam.jobs.hparams import overridden_keys
from overparam.jobs.job import run


def run_from_hydra(config: DictConfig) -> float | None:
    hydra_config = HydraConfig.get()
    result = run(config, hydra_config.runtime.output_dir, multirun=hydra_config.mode == RunMode.MULTIRUN,
                 swept_keys=overridden_keys(hydra_config.overrides.task))
    return result.get("success_rate")
