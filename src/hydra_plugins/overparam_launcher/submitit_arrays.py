"""Hydra's submitit launchers (hydra-submitit-launcher 1.2.0) that say what they submitted and how the sweep goes:
the job array's id and where its logs are, then the sweep's progress as tasks finish (jobs done of total, failed,
elapsed, an estimated end). The jobs themselves are submitted exactly as the plugin submits them."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from omegaconf import OmegaConf

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from hydra_plugins.overparam_launcher.progress import SweepProgress, job_failed

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0


class ReportingLaunch:
    """`launch` of `BaseSubmititLauncher`, with the submission announced and the waiting reported."""

    _EXECUTOR: str

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and len(job_overrides) > 0
        executor = self._executor(submitit)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        job_params = []
        for index, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + index} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", initial_job_idx + index,
                               f"job_id_for_{initial_job_idx + index}", Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params))
        log.info(announcement(jobs, self._EXECUTOR))
        return wait_reporting(jobs, self._costs(job_overrides))

    def _executor(self, submitit):
        """The plugin's own executor: folder, max_num_timeout and the queue parameters, as it builds them."""
        params = dict(self.params)
        specific_init_keys = {"max_num_timeout"}
        init_params = {"folder": params["submitit_folder"],
                       **{f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x in specific_init_keys}}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{x if x in baseparams else f"{self._EXECUTOR}_{x}": y for x, y in params.items()
                                      if x not in specific_init_keys | {"submitit_folder"}})
        return executor

    def _costs(self, job_overrides) -> list[float]:
        from overparam.search.schedule import estimated_cost

        try:
            return [estimated_cost(self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))
                    for overrides in job_overrides]
        except Exception:  # noqa: BLE001 - only the progress estimate needs them
            return [1.0] * len(job_overrides)


def announcement(jobs, cluster: str) -> str:
    """`submitted job array 1234 (9 tasks) to slurm; logs: <folder>/1234_*_log.out`."""
    array_id = str(jobs[0].job_id).split("_")[0]
    stdout = Path(str(jobs[0].paths.stdout))
    return (f"submitted job array {array_id} ({len(jobs)} tasks) to {cluster}; logs: "
            f"{stdout.parent / stdout.name.replace(str(jobs[0].job_id), f'{array_id}_*')}")


def wait_reporting(jobs, costs: list[float], poll_seconds: float = POLL_SECONDS) -> list[JobReturn]:
    """Wait for every job, logging the sweep's progress each time some finish; the results in the jobs' order."""
    progress = SweepProgress(costs, label=f"job array {str(jobs[0].job_id).split('_')[0]}")
    pending = set(range(len(jobs)))
    while pending:
        finished = [index for index in sorted(pending) if jobs[index].done()]
        for index in finished:
            pending.discard(index)
            try:
                result = jobs[index].results()[0]
                failed = job_failed(result.hydra_cfg.hydra.runtime.output_dir, result.status)
            except Exception:  # noqa: BLE001 - a task that crashed outside the job still counts, as failed
                failed = True
            progress.finished(index, failed)
        if pending and not finished:
            time.sleep(poll_seconds)
    return [job.results()[0] for job in jobs]


class OverparamSlurmLauncher(ReportingLaunch, SlurmLauncher):
    pass


class OverparamLocalLauncher(ReportingLaunch, LocalLauncher):
    """The same on this machine (submitit's local executor): for trying a cluster sweep out, and for tests."""
