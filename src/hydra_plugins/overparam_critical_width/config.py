"""Settings of `hydra/sweeper=critical_width`, registered with Hydra's ConfigStore when Hydra scans its plugins."""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class CriticalWidthSweeperConf:
    _target_: str = "hydra_plugins.overparam_critical_width.critical_width_sweeper.CriticalWidthSweeper"
    key: str = "model.m_factor"  # the integer width searched
    low: int = 1  # narrowest width tried
    high: int = 64  # widest width tried
    targets: list[float] = field(default_factory=lambda: [0.5])  # success rates whose width is searched
    precision: float = 0.25  # stop when neighboring widths hi/lo - 1 <= precision bracket the target
    max_jobs: int = 60  # budget: jobs over all combinations (reused finished jobs count)
    max_seeds: int = 3  # at most this many jobs' worth (max_seeds x trials) of replicas at one width
    trials: Optional[int] = 4  # noqa: UP045 (OmegaConf reads Optional) replicas per search job (null: the job config's own trials)
    seed_key: str = "seed"  # extra trials at a width are jobs with seed+1, seed+2, ...
    trials_key: str = "trials"  # the config key holding a job's number of replicas
    params: dict[str, Any] | None = None  # other swept keys, as the basic sweeper's params (for presets)
    # true: every search job runs with trainer.stop_when_solved=true (success = exact at some evaluation; a job
    # ends once each replica was exact at an evaluation); a job's own trainer.stop_when_solved= overrides it
    stop_when_solved: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="critical_width", node=CriticalWidthSweeperConf,
                             provider="overparam")
