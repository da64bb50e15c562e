"""What a job says on its console and in its log file: the header before training, the result table after."""

from __future__ import annotations

import shlex
from pathlib import Path


def where(grid_point: dict) -> str:
    """The task's place on its curve, as the task states it (`steps=1 rule=B3/S23 neighborhood=moore`)."""
    return " ".join(f"{key}={value}" for key, value in grid_point.items())


def header(task, net, trials: int, max_steps: int, device, notes=()) -> str:
    return (f"{task.name}: {where(task.grid_point())} m_factor={net.m_factor} params/replica="
            f"{net.params_per_replica()}  {trials} replicas x {max_steps} steps on {device}"
            + "".join(f"; {note}" for note in [*task.notes(), *notes]))


def result_table(result: dict, grid_point: dict, columns: list[str]) -> list[str]:
    """The job's line and one row per replica, with the columns the task's evaluation gave."""
    low, high = result["success_ci_low"], result["success_ci_high"]
    lines = [f"{result['task']}: {where(grid_point)} m_factor={result['m_factor']} "
             f"params/replica={result['params_per_replica']}  "
             f"success {result['successes']}/{result['trials']} = {result['success_rate']:.2f} "
             f"(95% CI {low:.2f}-{high:.2f})  {result['wall_seconds']:.1f}s on {result['device']}"]
    keys = [k for k in columns if k in result["per_replica"][0]]
    width = max([14, *(len(k) for k in keys)])
    lines.append("  replica  " + "  ".join(f"{k:>{width}}" for k in keys))
    for index, row in enumerate(result["per_replica"]):
        cells = [f"{row[k]:>{width}.4f}" if isinstance(row[k], float) else f"{str(row[k]):>{width}}" for k in keys]
        lines.append(f"  {index:>7}  " + "  ".join(cells))
    return lines


def closing_line(result_path: Path, job_dir: Path, loggers: list) -> str:
    tensorboard = job_dir / "tensorboard"
    curves = (f"   curves: tensorboard --logdir {shlex.quote(str(tensorboard))}"
              if any(type(logger).__name__ == "TensorBoardLogger" for logger in loggers) else "")
    return f"result: {result_path}{curves}"
