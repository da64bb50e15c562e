"""Process settings of a job on a shared host: how many cores it may use, how many jobs share them, its torch
threads, and glibc's malloc kept from trimming."""

from __future__ import annotations

import os

import torch

PARALLEL_JOBS_ENV = "OVERPARAM_PARALLEL_JOBS"  # jobs sharing this host's cores (default: the launcher's n_jobs)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_for(setting, parallel_jobs: int = 1) -> int:
    """`threads=auto` gives each of the jobs running side by side an equal share of the cores."""
    if setting == "auto":
        return max(1, available_cores() // max(1, parallel_jobs))
    return int(setting)


def default_parallel_jobs(accelerator: str = "auto", threads=1) -> int:
    """One job per visible GPU; without GPUs, as many jobs as the cores hold at `threads` threads each."""
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.device_count()
    per_job = 1 if threads == "auto" else max(1, int(threads))
    return max(1, available_cores() // per_job)


def parallel_jobs() -> int:
    """Jobs sharing this host's cores: OVERPARAM_PARALLEL_JOBS, else the joblib launcher's n_jobs, else 1."""
    if os.environ.get(PARALLEL_JOBS_ENV):
        return max(1, int(os.environ[PARALLEL_JOBS_ENV]))
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    n_jobs = HydraConfig.get().launcher.get("n_jobs")
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return available_cores() if n_jobs < 0 else max(1, n_jobs)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (no mmap per big block, no trimming), a process setting.

    A training step allocates and frees the same few-MB activation tensors every step; by default each is a
    fresh mmap whose pages fault in again (about 45% of a multi-block step was kernel time). A no-op returning
    False where libc is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
