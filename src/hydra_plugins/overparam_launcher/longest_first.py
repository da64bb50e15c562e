"""Hydra's joblib launcher, with a sweep's jobs dispatched longest first (`overparam.search.schedule`).

joblib hands jobs to its workers in the order given; this launcher gives them in order of estimated cost and
returns the results in the sweep's order. Each job keeps its own index (hydra.job.num) and config, so a job
computes exactly what it computes under the basic launcher. As jobs finish it logs the sweep's progress (jobs done
of total, failed, elapsed, an estimated end from the jobs' estimated costs). Written against hydra-joblib-launcher 1.2.0
(its `_core.execute_job` runs one job in a worker).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from joblib import Parallel, delayed

from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from hydra_plugins.overparam_launcher.progress import SweepProgress, job_failed
from overparam.search.schedule import longest_first

log = logging.getLogger(__name__)


class LongestFirstJoblibLauncher(JoblibLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        joblib_config = self.joblib
        joblib_config["backend"] = "loky"  # as the joblib plugin does: threads do not mix with Hydra's globals
        _core.process_joblib_cfg(joblib_config)
        costs = self._costs(job_overrides)
        order = longest_first(costs)
        log.info(f"Joblib.Parallel({joblib_config}) is launching {len(job_overrides)} jobs, longest first:")
        for index in order:
            log.info(f"\t#{initial_job_idx + index} : {' '.join(filter_overrides(job_overrides[index]))}")

        singleton_state = Singleton.get_state()
        progress = SweepProgress(costs)
        by_index = {}
        # results as each job finishes (any order), so the sweep's progress is logged as it goes
        for index, run in Parallel(**joblib_config, return_as="generator_unordered")(
            delayed(_indexed_job)(
                index, initial_job_idx + index, job_overrides[index], self.hydra_context, self.config,
                self.task_function, singleton_state,
            )
            for index in order
        ):
            by_index[index] = run
            progress.finished(index, job_failed(run.hydra_cfg.hydra.runtime.output_dir, run.status))
        return [by_index[index] for index in range(len(job_overrides))]

    def _costs(self, job_overrides: Sequence[Sequence[str]]) -> list[float]:
        """Each job's `overparam.search.schedule.estimated_cost` (all equal if a config fails to load)."""
        from overparam.search.schedule import estimated_cost

        try:
            return [estimated_cost(self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))
                    for overrides in job_overrides]
        except Exception as error:  # noqa: BLE001 - the order is an optimisation; the jobs report their own errors
            log.warning(f"jobs launched in the sweep's order (no cost estimate: {type(error).__name__}: {error})")
            return [1.0] * len(job_overrides)


def _indexed_job(index: int, *args) -> tuple[int, JobReturn]:
    """Run one job in a worker (hydra-joblib-launcher's own `execute_job`) and say which one it was."""
    return index, _core.execute_job(*args)
