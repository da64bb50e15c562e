"""The per-job result file, written atomically and read defensively (which experiment it holds: `identity`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from overparam.atomic import atomic_write_text

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1


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
