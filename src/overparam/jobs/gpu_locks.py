"""Exclusive leases on a host's GPUs: at most one job per GPU, whichever worker process runs it.

A lease is an `flock` on a file per device, so it follows the job, not the worker process that happens to run it
(joblib reuses workers, and CUDA_VISIBLE_DEVICES set inside a job only takes effect in a worker's first job), and
the kernel drops it when a job's process dies.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from overparam.jobs.logs import log

LOCK_DIR_ENV = "OVERPARAM_GPU_LOCK_DIR"    # where the per-GPU lock files live (default: a per-user temp folder)


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
                log.info(f"waiting for a free GPU: all {len(self.keys)} are held by other jobs "
                         f"(locks in {self.lock_dir})")
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
