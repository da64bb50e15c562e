"""Running run.py the way a user does, in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The one small budget of boards for tests that run jobs; each test states its own steps and trials.
TINY = ["task.batch_size=16", "task.test_boards=50", "trainer.progress=none"]


def run_py(*overrides, check=True, timeout=300, env=None):
    """`python run.py overrides...` from the repo root; returns the CompletedProcess."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *overrides], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"run.py failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return completed


def popen_py(*overrides):
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *overrides], cwd=ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
