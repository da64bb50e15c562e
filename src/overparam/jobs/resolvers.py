"""OmegaConf resolvers the launcher configs use: `${overparam.n_jobs:ACCELERATOR,THREADS}` (local_gpus) and
`${overparam.ray_gpus_per_task:}` (ray). Registered by run.py before Hydra composes."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from overparam.jobs.process import default_parallel_jobs


def register_resolvers() -> None:
    """`${overparam.n_jobs:ACCELERATOR,THREADS}`, used by conf/hydra/launcher/local_gpus.yaml."""
    OmegaConf.register_new_resolver(
        "overparam.n_jobs", lambda accelerator="auto", threads=1: default_parallel_jobs(accelerator, threads),
        replace=True,
    )
    OmegaConf.register_new_resolver("overparam.ray_gpus_per_task", ray_gpus_per_task, replace=True)


def ray_gpus_per_task() -> int:
    """1 when the Ray cluster this process joined (or, before ray.init, this machine) has a GPU, else 0."""
    try:
        import ray

        if ray.is_initialized():
            return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    except ImportError:
        pass
    return 1 if torch.cuda.is_available() else 0
