"""Where a job runs: CPU, or one GPU it holds alone for the whole job (`gpu_locks`), with its threads set
(`process`). Whether a job draws its random streams on a GPU is known before any device is held
(`stream_device_type`): it is part of what the job computes."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from overparam.config.validate import ACCELERATORS
from overparam.jobs.gpu_locks import DeviceLocks, gpu_keys
from overparam.jobs.process import keep_freed_memory, parallel_jobs, threads_for


def wants_gpu(accelerator: str) -> bool:
    if accelerator not in ACCELERATORS:
        raise ValueError(f"trainer.accelerator={accelerator!r} is not one of {', '.join(ACCELERATORS)}")
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        return False
    if not torch.cuda.is_available():
        raise RuntimeError(f"trainer.accelerator={accelerator!r} but no CUDA device is visible")
    return True


def stream_device_type(accelerator: str) -> str:
    """The device type a job with this accelerator setting draws its random streams on ("cpu" or "cuda"), known
    before any device is held: CPU and CUDA generators draw different numbers from the same seed, so it is part
    of what a job computes (`results.is_done`). Never raises (a missing GPU is reported when the job starts)."""
    try:
        return "cuda" if wants_gpu(accelerator) else "cpu"  # the same decision as `job_device`
    except RuntimeError:  # trainer.accelerator=gpu without a GPU: the job itself will say so
        return "cuda"


def choose_device(accelerator: str, gpu_index: int | None = None) -> torch.device:
    """CPU, or GPU `gpu_index` (the current CUDA device when not given)."""
    if not wants_gpu(accelerator):
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device() if gpu_index is None else gpu_index)


@contextmanager
def job_device(config, lock_dir: str | Path | None = None) -> Iterator[torch.device]:
    """Set the job's threads and hold its device for the `with` block: CPU, or one GPU no other job holds."""
    keep_freed_memory()
    torch.set_num_threads(threads_for(config.threads, parallel_jobs()))
    if not wants_gpu(config.trainer.accelerator):
        yield torch.device("cpu")
        return
    with DeviceLocks(gpu_keys(), lock_dir).acquire() as lease:
        device = choose_device(config.trainer.accelerator, lease.index)
        torch.cuda.set_device(device)
        yield device


def describe_job(config, device: torch.device | None = None) -> dict:
    return {
        "device": str(device) if device is not None else config.trainer.accelerator,
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
