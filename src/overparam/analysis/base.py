"""What an analysis offers: numbers computed on every trained replica after training, declared like a task.

An analysis is a class named by `_target_` in conf/analysis/ (its settings are its constructor's keyword parameters,
their defaults its defaults), run by the job once training is done (`run_analyses`). It declares what the report
needs to pool its numbers without knowing it: per-replica metrics averaged over solved and failed replicas apart
(`BY_OUTCOME`), per-replica flags turned into success rates (`RATES`), and charts against width (`CHARTS`). It says
before any job starts whether it can apply to the configured task and model (`unsuitable`). Plain torch and scipy:
no Lightning, no Hydra.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from overparam.config.checks import Check


@dataclass
class Trained:
    """What an analysis works on: the job's config, its task, its trained replicas (a CPU copy in eval mode), the
    same replicas as they started (rebuilt from the seeds), the replicas' seeds and their held-out rows."""

    config: Any
    task: Any
    net: Any
    initial: Any
    seeds: list[int]
    per_replica: list[dict]
    job_dir: Path
    successes: list[bool] = field(init=False)

    def __post_init__(self):
        self.successes = [bool(row.get("success")) for row in self.per_replica]


class Analysis(ABC):
    #: Ranges and choices of the settings, checked before any job starts.
    CHECKS: ClassVar[dict[str, Check]] = {}
    #: Per-replica metrics the report averages over solved and failed replicas apart: `<m>_mean_success`, `_failed`.
    BY_OUTCOME: ClassVar[tuple[str, ...]] = ()
    #: Per-replica flags (True / False / absent) the report turns into `<flag>_rate` with a Wilson interval.
    RATES: ClassVar[tuple[str, ...]] = ()
    #: Charts against width: title -> summary columns (as `Task.CHARTS`).
    CHARTS: ClassVar[dict[str, list[str]]] = {}

    @classmethod
    def unsuitable(cls, task_class: type, model_class: type) -> str | None:
        """Why this analysis cannot apply to jobs of this task and model class, or None when it can."""
        return None

    @classmethod
    def check(cls, settings: dict, task: dict, model: dict) -> None:
        """Raise ConfigError (one line) for settings that cannot work with this task and model config."""

    @abstractmethod
    def run(self, trained: Trained) -> tuple[list[dict], dict]:
        """Per replica a dict of numbers (merged into result.json's `per_replica` rows) and per job a dict (merged
        into result.json); figures, if any, go to `trained.job_dir`."""
