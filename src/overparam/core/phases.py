"""Named phases of a training step, for the step breakdown (`python -m overparam.perf.breakdown`).

The code marks its own phases (`with phase("boards"): ...`); while nobody records them a mark costs one flag test,
and under `recording()` each becomes a `torch.profiler.record_function` range, so the breakdown times the real code
phase by phase, not a copy of it.
"""

from __future__ import annotations

import contextlib

import torch

PREFIX = "phase: "
_recording = False
_NOTHING = contextlib.nullcontext()


def phase(name: str):
    """A context that marks `name` while phases are recorded, and does nothing otherwise."""
    return torch.profiler.record_function(PREFIX + name) if _recording else _NOTHING


@contextlib.contextmanager
def recording():
    """Record phases (as profiler ranges) inside the `with` block."""
    global _recording
    before, _recording = _recording, True
    try:
        yield
    finally:
        _recording = before
