"""Where a job runs: its device and its thread count."""

from __future__ import annotations

import os
import socket

import torch

ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def choose_device(accelerator: str) -> torch.device:
    if accelerator not in ACCELERATORS:
        raise ValueError(f"trainer.accelerator={accelerator!r} is not one of {', '.join(ACCELERATORS)}")
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"trainer.accelerator={accelerator!r} but no CUDA device is visible")
    return torch.device("cuda", torch.cuda.current_device())


def threads_for(setting, parallel_jobs: int = 1) -> int:
    """`threads=auto` gives each of the jobs running side by side an equal share of the cores."""
    if setting == "auto":
        return max(1, available_cores() // max(1, parallel_jobs))
    return int(setting)


def setup_job(config) -> torch.device:
    torch.set_num_threads(threads_for(config.threads, int(os.environ.get("OVERPARAM_PARALLEL_JOBS", "1"))))
    return choose_device(config.trainer.accelerator)


def describe_job(config, device: torch.device | None = None) -> dict:
    return {
        "device": str(device) if device is not None else config.trainer.accelerator,
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
    }
