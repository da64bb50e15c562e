"""Where a job runs: its device (a GPU it holds alone, through a lock) and its thread count.

Jobs running side by side on one host (joblib workers, submitit_local tasks, two sweeps at once) each take an
exclusive lock on one GPU for the whole job. The lock is an `flock` on a file per device, so it follows the job,
not the worker process that happens to run it (joblib reuses workers, and CUDA_VISIBLE_DEVICES set inside a job
only takes effect in a worker's first job), and the kernel drops it when a job's process dies.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from overparam.config.validate import ACCELERATORS

LOCK_DIR_ENV = "OVERPARAM_GPU_LOCK_DIR"    # where the per-GPU lock files live (default: a per-user temp folder)
PARALLEL_JOBS_ENV = "OVERPARAM_PARALLEL_JOBS"  # jobs sharing this host's cores (default: the launcher's n_jobs)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


def threads_for(setting, parallel_jobs: int = 1) -> int:
    """`threads=auto` gives each of the jobs running side by side an equal share of the cores."""
    if setting == "auto":
        return max(1, available_cores() // max(1, parallel_jobs))
    return int(setting)


# ----- how many jobs run side by side ----------------------------------------------------------------


def default_parallel_jobs(accelerator: str = "auto", threads=1) -> int:
    """One job per visible GPU; without GPUs, as many jobs as the cores hold at `threads` threads each."""
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.device_count()
    per_job = 1 if threads == "auto" else max(1, int(threads))
    return max(1, available_cores() // per_job)


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


# ----- exclusive device leases -----------------------------------------------------------------------


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"overparam-gpu-locks-{os.getuid()}")


@dataclass
class Lease:
    """An exclusive hold on device `index` of a `DeviceLocks`; released by `release()` or by the process dying."""

    index: int
    descriptor: int | None

    def release(self) -> None:
        if self.descriptor is not None:
            fcntl.flock(self.descriptor, fcntl.LOCK_UN)
            os.close(self.descriptor)
            self.descriptor = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class DeviceLocks:
    """At most one holder per device across all threads and processes of a host.

    `keys` name the devices (GPU UUIDs, or anything in tests); a lease on device i is an exclusive `flock` on
    `<lock_dir>/<host>-<key>.lock`. flock locks belong to an open file, so they exclude threads of one process
    as well as processes; lock files are never deleted (deleting them would let two holders lock two inodes).
    """

    def __init__(self, keys: Sequence[str], lock_dir: str | Path | None = None, poll_seconds: float = 0.05):
        if not keys:
            raise ValueError("DeviceLocks needs at least one device")
        self.keys = list(keys)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.poll_seconds = poll_seconds
        host = socket.gethostname()
        self.paths = [self.lock_dir / f"{_safe(host)}-{_safe(key)}.lock" for key in self.keys]

    def try_acquire(self) -> Lease | None:
        """A lease on the first free device, or None when every device is held."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for index, path in enumerate(self.paths):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"pid {os.getpid()} since {time.time():.3f}\n".encode())
            return Lease(index, descriptor)
        return None

    def acquire(self, timeout: float | None = None) -> Lease:
        """Wait for a free device (forever, or `timeout` seconds) and lease it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = False
        while True:
            lease = self.try_acquire()
            if lease is not None:
                return lease
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no free device among {len(self.keys)} in {self.lock_dir} after {timeout} s")
            if not announced:
                print(f"waiting for a free GPU: all {len(self.keys)} are held by other jobs (locks in {self.lock_dir})")
                announced = True
            time.sleep(self.poll_seconds)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def gpu_keys() -> list[str]:
    """Names of the visible GPUs that stay the same whatever CUDA_VISIBLE_DEVICES a process sees: their UUIDs."""
    keys = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        keys.append(f"gpu-{uuid}" if uuid is not None else f"gpu{index}")
    return keys


# ----- a job's device, from its config ---------------------------------------------------------------


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


def describe_job(config, device: torch.device | None = None) -> dict:
    return {
        "device": str(device) if device is not None else config.trainer.accelerator,
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


register_resolvers()
