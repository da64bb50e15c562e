"""The default launcher runs a sweep's jobs side by side, longest first, with the sequential run's results."""

from __future__ import annotations

from omegaconf import OmegaConf

from helpers import TINY, run_py
from overparam.config import compose
from overparam.jobs import process, resolvers
from overparam.jobs.results import read_result
from overparam.search.schedule import estimated_cost, longest_first


def _cost(*overrides) -> float:
    return estimated_cost(OmegaConf.to_container(compose(list(overrides)), resolve=True))


def test_cost_grows_with_depth_width_trials_and_steps():
    base = _cost("task.steps=2", "model.m_factor=5")
    assert _cost("task.steps=3", "model.m_factor=5") > base > _cost("task.steps=1", "model.m_factor=5")
    assert _cost("task.steps=2", "model.m_factor=20") > base > _cost("task.steps=2", "model.m_factor=1")
    assert _cost("task.steps=2", "model.m_factor=5", "trials=32") == 2 * _cost("task.steps=2", "model.m_factor=5",
                                                                               "trials=16")
    assert _cost("task.steps=2", "model.m_factor=5", "trainer.max_steps=6000") == 2 * base


def test_longest_first_is_a_stable_sort_by_decreasing_cost():
    assert longest_first([1.0, 5.0, 3.0, 5.0]) == [1, 3, 2, 0]


def test_a_sweep_defaults_to_the_whole_machine():
    resolvers.register_resolvers()
    config = compose([], return_hydra_config=True)
    assert config.hydra.launcher._target_.endswith("LongestFirstJoblibLauncher")
    assert OmegaConf.select(config, "hydra.launcher.n_jobs") == process.default_parallel_jobs("auto", 1)


def _summary_table(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("sweep "))
    return lines[start + 1 :]


def test_a_two_job_sweep_through_the_default_launcher_reports_what_the_basic_one_does(tmp_path):
    # (m = 3: test_fused's kernel)
    grid = ["-m", "seed=0,1", "model.m_factor=3", "task.steps=2", "trials=2", "trainer.max_steps=40", *TINY]
    parallel = run_py(*grid, f"hydra.sweep.dir={tmp_path / 'parallel'}")
    sequential = run_py(*grid, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'sequential'}")
    assert "longest first" in parallel.stderr + parallel.stdout
    assert (tmp_path / "parallel/summary.csv").read_text() == (tmp_path / "sequential/summary.csv").read_text()
    assert _summary_table(parallel.stdout) == _summary_table(sequential.stdout)
    launcher_lines = [line for line in (parallel.stdout + parallel.stderr).splitlines() if "jobs done" in line]
    assert [line.split("sweep: ")[1].split(",")[0] for line in launcher_lines] == ["1/2 jobs done", "2/2 jobs done"]
    assert launcher_lines[-1].endswith("all done")
    for job_dir in (tmp_path / "parallel").glob("seed=*"):
        log = (job_dir / "run.log").read_text()  # Hydra's per-job log file holds what the job said
        assert "2 replicas x 40 steps" in log and "step     40/40" in log and "replica         success" in log
        tag = f"{job_dir.name}] "  # on the console, side-by-side jobs' lines carry their job's tag
        assert any(line.endswith("40 steps on cpu") and tag in line for line in parallel.stdout.splitlines())


def test_one_worker_starts_the_costliest_job_first(tmp_path):
    run_py("-m", *TINY, "trials=1,3", "trainer.max_steps=4,8", "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={tmp_path}")
    results = [read_result(p) for p in tmp_path.glob("*/result.json")]
    started = [(r["trials"], r["trained_steps"]) for r in sorted(results, key=lambda r: r["started_at"])]
    assert started == [(3, 8), (3, 4), (1, 8), (1, 4)]  # the sweep's order would be (1, 4), (1, 8), (3, 4), (3, 8)
