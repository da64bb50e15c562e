"""Composing a config imports only the classes it names; numba is imported only when a fast Life path runs."""

import subprocess
import sys

from helpers import ROOT, TINY, run_py

COMPOSE = """
import sys
from overparam.config import compose
compose([])
compose(["task=jamming", "model=mlp"])
print(sorted(m for m in sys.modules if m == "numba" or m.startswith("overparam.tasks.")))
"""


def test_composing_configs_imports_neither_numba_nor_unnamed_task_families():
    shown = subprocess.run([sys.executable, "-c", COMPOSE], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""}).stdout
    modules = eval(shown)  # noqa: S307 - our own printout of a list of names
    assert "numba" not in modules
    assert "overparam.tasks.maxcut.task" not in modules and "overparam.tasks.mnist1d" not in modules


def test_a_two_step_job_runs_without_numba_on_the_plain_path_with_one_warning(tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "numba").mkdir(parents=True)
    (blocked / "numba" / "__init__.py").write_text("raise ImportError('numba is blocked for this test')\n")
    completed = run_py("task.steps=2", "trials=2", "trainer.max_steps=5", *TINY, f"hydra.run.dir={tmp_path / 'job'}",
                       env={"PYTHONPATH": f"{blocked}:{ROOT / 'src'}"})
    output = completed.stdout + completed.stderr
    assert (tmp_path / "job" / "result.json").exists()
    assert output.count("Life kernels off") == 1, output
