"""A Hydra sweeper that searches the width where success crosses a target, instead of running a grid.

    python run.py -m hydra/sweeper=critical_width task.steps=1,2 hydra.sweeper.high=32

Every combination of the other swept keys (expanded as the basic sweeper does) gets its own search
(overparam.search.planner.plan); each round's jobs, over all combinations, go to the configured launcher as
one batch, so basic, joblib (local_gpus), submitit (slurm) and ray run a round in parallel. Jobs are ordinary
jobs (`trials=` the search's job size, `seed=` seed + k for its k-th job at a width): their folder is the one
Hydra gives them (hydra.sweep.dir / hydra.sweep.subdir), their outcome is read from their result.json. Before
every round the search reads every result in the sweep folder that lies on a combination's curve (the same
config but for width, seed and trials, as the report pools them), so earlier grid jobs count and a killed
search resumes where it stood: finished jobs are not launched again, the killed one resumes from its checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class CriticalWidthSweeper(Sweeper):
    def __init__(self, key: str, low: int, high: int, targets: list[float], precision: float, max_jobs: int,
                 max_seeds: int, seed_key: str, trials: int | None = 4, trials_key: str = "trials",
                 params: dict[str, Any] | None = None, stop_when_solved: bool = False) -> None:
        super().__init__()
        self.key, self.seed_key, self.trials_key = key, seed_key, trials_key
        self.raw_settings = dict(low=low, high=high, targets=list(targets) if not isinstance(targets, (int, float))
                                 else targets, precision=precision, max_jobs=max_jobs, max_seeds=max_seeds,
                                 trials=trials)
        self.params = dict(params or {})
        self.stop_when_solved = stop_when_solved
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        import dataclasses

        from overparam.search.planner import SearchSettings, plan

        settings = SearchSettings.checked(**self.raw_settings)  # before any job; ConfigError is one line
        combinations = [with_stop(c, self.stop_when_solved) for c in
                        combinations_of(self.params, arguments, self.key, self.hydra_context.config_loader)]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if settings.trials is None:  # jobs as large as the config's own: a grid's jobs, reused as they are
            settings = dataclasses.replace(settings, trials=int(OmegaConf.select(self.config, self.trials_key)))
        self.settings = settings
        curves = [self._curve(combination) for combination in combinations]

        stopped: dict[int, dict] = {}
        used = job_index = rounds = 0
        while True:
            tallies = self._tallies(sweep_dir, combinations, curves)
            requests = []
            for index, _combination in enumerate(combinations):
                if index in stopped:
                    continue
                step = plan(tallies[index], settings)
                if not step.jobs:
                    stopped[index] = step.status
                requests.extend((index, width, seed) for width, seed in step.jobs)
            if not requests:
                break
            if used >= settings.max_jobs:
                log.warning(f"critical_width: max_jobs={settings.max_jobs} spent; stopping with {len(requests)} "
                            "jobs still wanted")
                break
            requests = requests[: settings.max_jobs - used]
            used += len(requests)
            rounds += 1
            batch = [self._job(combinations[i], width, seed) for i, width, seed in requests]
            folders = [self._job_folder(overrides) for overrides in batch]
            pending = [overrides for overrides, (folder, config) in zip(batch, folders)
                       if not _complete(folder, config)]
            log.info(f"critical_width round {rounds}: {len(batch)} jobs, {len(pending)} to run")
            if pending:
                self.validate_batch_is_legal(pending)
                self.launcher.launch(pending, initial_job_idx=job_index)
                job_index += len(pending)
            for (index, _, _), (folder, _config) in zip(requests, folders):
                result = _read(folder)
                if result is None or result.get("status") != "ok":
                    why = (result or {}).get("error", "no result.json")
                    stopped[index] = {"all targets": f"job {folder} did not finish ({why})"}
        # Every exit from the loop comes before that round's launch, so its tallies are the final ones.
        self._print_summary(combinations, tallies, stopped, settings, used, rounds)
        return None

    @staticmethod
    def preflight_jobs(sweeper: DictConfig, arguments: list[str]) -> list[list[str]]:
        """For `overparam.config.preflight`: the jobs to validate before the search starts (`preflight_jobs`)."""
        return preflight_jobs(sweeper, arguments)

    def _given(self, combination: list[str], key: str):
        """`key`'s value in the combination's last `key=` override, else in the config."""
        given = [o.split("=", 1)[1] for o in combination if o.split("=", 1)[0] == key]
        return int(given[-1]) if given else OmegaConf.select(self.config, key, default=None)

    def _start_seed(self, combination: list[str]) -> int:
        """The seed of the combination's first job."""
        return int(self._given(combination, self.seed_key) or 0)

    def _job(self, combination: list[str], width: int, seed: int) -> list[str]:
        """The job's overrides: the combination, the width, the search's job size (left out when it is the config's
        own, so a grid's folders are the search's) and, from the second job at a width on, seed + k."""
        others = [o for o in combination if o.split("=", 1)[0] not in (self.seed_key, self.trials_key)]
        configured = self._given(combination, self.trials_key)
        trials = [] if self.settings.trials == configured else [f"{self.trials_key}={self.settings.trials}"]
        seed_override = [f"{self.seed_key}={self._start_seed(combination) + seed}"] if seed else []
        return others + [f"{self.key}={width}"] + trials + seed_override

    def _curve(self, combination: list[str]) -> str:
        """The combination's curve identity (`identity.curve_identity` of its job at `low`, streams drawn where
        its jobs will draw them)."""
        from overparam.jobs.identity import curve_identity

        _, config = self._job_folder(self._job(combination, self.settings.low, 0))
        return curve_identity(config, _stream_device_type(config), self.key)

    def _tallies(self, sweep_dir: Path, combinations: list[list[str]], curves: list[str]) -> list[dict]:
        """Per combination, every replica the sweep folder already holds on its curve, by width, and which of the
        search's own jobs those replicas cover."""
        from overparam.jobs.identity import curve_identity, stream_device
        from overparam.report import load_results
        from overparam.search.planner import add_result, mark_jobs
        from overparam.seeds import replica_seeds

        tallies: list[dict] = [{} for _ in combinations]
        index_of = {curve: index for index, curve in enumerate(curves)}
        for path, result in load_results([sweep_dir]):
            config = result.get("config") or {}
            index = index_of.get(curve_identity(config, stream_device(result), self.key))
            width = OmegaConf.select(OmegaConf.create(config), self.key)
            if index is None or result.get("status") != "ok" or not isinstance(width, int):
                continue
            add_result(tallies[index], width, result, str(path))
        for combination, tally in zip(combinations, tallies):
            start = self._start_seed(combination)
            for entry in tally.values():
                mark_jobs(entry, [replica_seeds(start + k, self.settings.trials)
                                  for k in range(self.settings.max_seeds + 1)])
        return tallies

    def _job_folder(self, overrides: list[str]):
        """The folder Hydra will give this job and its resolved task config (what the job records in result.json)."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        folder = Path(config.hydra.sweep.dir) / str(config.hydra.sweep.subdir)
        container = OmegaConf.to_container(config, resolve=False)
        container.pop("hydra", None)
        return folder, OmegaConf.to_container(OmegaConf.create(container), resolve=True)

    def _print_summary(self, combinations, tallies, stopped, settings, used, rounds) -> None:
        from overparam.report.width import describe, threshold_rows

        print(f"\ncritical_width: {used} jobs in {rounds} rounds (max_jobs={settings.max_jobs})")
        varying = [{o for o in c if sum(o in other for other in combinations) < len(combinations)}
                   for c in combinations]  # name a combination by the overrides that tell it from the others
        for combination, tally, index in zip(varying, tallies, range(len(combinations))):
            combination = sorted(combination)
            widths = sorted(w for w, t in tally.items() if t.trials)
            grid = [(w, tally[w].params_per_replica) for w in widths if tally[w].params_per_replica]
            rows = threshold_rows(",".join(combination) or "all", widths, [tally[w].successes for w in widths],
                                  [tally[w].trials for w in widths], grid, settings.targets)
            runs = "  ".join(f"m={w}:{tally[w].successes}/{tally[w].trials}" for w in widths)
            print(f"  {','.join(combination) or 'all'}: {runs}")
            for in_m, in_params in zip(rows[::2], rows[1::2]):
                print(f"    {describe(in_m)}; {describe(in_params)}")
            for target, why in (stopped.get(index) or {}).items():
                print(f"    search for {target}: {why}")


def combinations_of(params: dict[str, Any], arguments: list[str], key: str, config_loader=None) -> list[list[str]]:
    """Every combination of the other swept keys, as the basic sweeper expands `key=a,b` and `params`."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from overparam.config.validate import ConfigError

    lines = [f"{k}={v}" for k, v in params.items()] + list(arguments)
    overrides = OverridesParser.create(config_loader=config_loader).parse_overrides(lines)
    if any(o.get_key_element() == key for o in overrides):
        raise ConfigError(f"{key} is searched by hydra/sweeper=critical_width; set hydra.sweeper.low and "
                          "hydra.sweeper.high instead of giving it on the command line")
    return BasicSweeper.split_arguments(overrides, None)[0] if overrides else [[]]


STOP_KEY = "trainer.stop_when_solved"


def with_stop(combination: list[str], stop_when_solved: bool) -> list[str]:
    """The combination's overrides with `trainer.stop_when_solved=true` added when the search asks for it and the
    combination does not set the key itself."""
    if not stop_when_solved or any(o.split("=", 1)[0].lstrip("+") == STOP_KEY for o in combination):
        return list(combination)
    return [*combination, f"{STOP_KEY}=true"]


def preflight_jobs(sweeper: DictConfig, arguments: list[str]) -> list[list[str]]:
    """For overparam.config.preflight: the settings checked, then each combination at the `low` and `high` widths,
    the narrowest and widest jobs the search may launch."""
    from overparam.search.planner import SearchSettings

    settings = SearchSettings.checked(**{k: OmegaConf.to_object(sweeper[k]) if OmegaConf.is_config(sweeper[k])
                                         else sweeper[k] for k in ("low", "high", "targets", "precision",
                                                                    "max_jobs", "max_seeds", "trials")})
    params = OmegaConf.to_container(sweeper.params) if sweeper.get("params") else {}
    combinations = [with_stop(c, bool(sweeper.get("stop_when_solved", False)))
                    for c in combinations_of(params, arguments, sweeper.key)]
    size = [] if settings.trials is None else [f"{sweeper.trials_key}={settings.trials}"]
    return [[o for o in combination if not size or o.split("=", 1)[0] != sweeper.trials_key]
            + [f"{sweeper.key}={width}"] + size
            for combination in combinations for width in sorted({settings.low, settings.high})]


def _read(folder: Path) -> dict | None:
    from overparam.jobs.results import RESULT_FILE, read_result

    return read_result(folder / RESULT_FILE)


def _complete(folder: Path, config: dict) -> bool:
    from overparam.jobs.identity import is_done

    return bool(config.get("force") is not True and is_done(_read(folder), config, _stream_device_type(config)))


def _stream_device_type(config: dict) -> str:
    """Where a job of this config will draw its random streams (`devices.stream_device_type`)."""
    from overparam.jobs.devices import stream_device_type

    return stream_device_type(config.get("trainer", {}).get("accelerator", "auto"))
