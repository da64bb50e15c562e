"""The per-job result file: written atomically, read defensively, and matched to the config that made it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

RESULT_FILE = "result.json"
# The config key a sweep varies to answer "how wide": curves are drawn against it.
WIDTH_KEY = "model.m_factor"
# Jobs that differ only in these keys (and the width) sample one curve: a replica's outcome depends on its own
# seed (overparam.seeds), not on how many others trained beside it, so their replicas pool, each replica once.
POOLED_KEYS = ("seed", "trials")
SCHEMA_VERSION = 1
# Config keys that change how a job runs, not what it computes: they never make a finished job stale.
# `name` only picks the sweep folder, so sweeps merged from differently named folders still share curves.
NON_IDENTITY_KEYS = ("force", "threads", "name", "trainer.accelerator", "trainer.progress", "trainer.log_every_n_steps",
                     "trainer.checkpoint_every_n_steps", "trainer.keep_checkpoints")
# Keys added after results already existed, with the value that computes what those results computed: at that value
# they are left out of the identity, so earlier results and checkpoints stay valid.
NEUTRAL_DEFAULTS = {"trainer.precision": "32-true", "trainer.stop_when_loss_change_below": 0.0,
                    "trainer.stop_window_steps": 1000, "model.init": "uniform"}


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_result(job_dir: str | Path, result: dict) -> Path:
    path = Path(job_dir) / RESULT_FILE
    atomic_write_text(path, json.dumps(_finite({"schema": SCHEMA_VERSION, **result}), indent=2) + "\n")
    return path


def read_result(path: str | Path) -> dict | None:
    """The result in `path`, or None when it is missing, truncated, corrupt or not a result."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("schema") != SCHEMA_VERSION or "status" not in result:
        return None
    return result


def identity(config: dict) -> dict:
    """The part of a resolved config that decides what a job computes."""
    config = json.loads(json.dumps(config))
    for dotted in NON_IDENTITY_KEYS:
        _parent(config, dotted).pop(dotted.rsplit(".", 1)[-1], None)
    for dotted, neutral in NEUTRAL_DEFAULTS.items():
        parent, leaf = _parent(config, dotted), dotted.rsplit(".", 1)[-1]
        if leaf in parent and parent[leaf] == neutral:
            del parent[leaf]
    return config


def _parent(config: dict, dotted: str) -> dict:
    """The dict holding a dotted key's leaf (an empty one when a parent is missing)."""
    node = config
    for parent in dotted.split(".")[:-1]:
        node = node.get(parent, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def stream_device(result: dict) -> str:
    """The device type a result's training streams came from (results written before the field: their device's)."""
    return result.get("stream_device") or str(result.get("device", "cpu")).split(":")[0]


def result_identity(result: dict) -> dict:
    """What a result computed: its config's identity and the device type its training streams came from (the
    same seed draws different boards on CPU and CUDA, so the two are different experiments)."""
    return {**identity(result.get("config", {})), "stream_device": stream_device(result)}


def curve_identity(config: dict, width_key: str = WIDTH_KEY) -> dict:
    """What a job's config shares with every other job on its success-vs-width curve: its identity without the
    width and the pooled keys."""
    config = identity(config)
    for dotted in (width_key, *POOLED_KEYS):
        _parent(config, dotted).pop(dotted.rsplit(".", 1)[-1], None)
    return config


def replica_key(result: dict, row: dict, index: int, source: str = "") -> tuple:
    """One replica, whichever job trained it: the device type its streams came from and its seed (rows written
    without a seed count as their own, by `source` and index)."""
    return (stream_device(result), row["seed"]) if "seed" in row else (source, index)


def is_done(result: dict | None, config: dict, stream_device_type: str = "cpu") -> bool:
    """A job is done when its result finished cleanly from the same experiment, streams drawn on the same device
    type."""
    return (result is not None and result.get("status") == "ok"
            and result_identity(result) == {**identity(config), "stream_device": stream_device_type})
