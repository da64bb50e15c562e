"""The critical_width sweeper against a known answer: tests/known_answer/app.py, whose replicas succeed with a
known logistic probability in log m (no training), run through Hydra as a user would."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT
from overparam.config.validate import ConfigError
from overparam.search.planner import SearchSettings, WidthTally, plan

APP = ROOT / "tests" / "known_answer" / "app.py"
TRUE_M50 = 6.0  # the app's default truth.m50 (slope 4 in log m)
PRECISION = 0.25


def run_app(sweep_dir: Path, *overrides, wait=True, report=True, job_seconds=0.0):
    args = [sys.executable, str(APP), "-m", "hydra/sweeper=critical_width", f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.high=40", *overrides]
    if report:
        args.append("+hydra.callbacks.report._target_=overparam.report.hydra_callback.SweepReport")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0",
           "KNOWN_ANSWER_JOB_SECONDS": str(job_seconds)}
    if not wait:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def m50_row(sweep_dir: Path) -> dict:
    with (sweep_dir / "thresholds.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["quantity"] == "m50" and row["unit"] == "m_factor"]
    assert len(rows) == 1, rows
    return rows[0]


def jobs_run(sweep_dir: Path) -> list[str]:
    return (sweep_dir / "writes.log").read_text().split()


def tally(rates: dict[int, tuple[int, int]], jobs=1) -> dict[int, WidthTally]:
    """Widths with (successes, replicas); the search's first `jobs` jobs at each count as run."""
    return {w: WidthTally({(w, i): i < s for i in range(n)}, set(range(jobs))) for w, (s, n) in rates.items()}


# ----- the planner, as a pure function ------------------------------------------------------------------

def test_plan_brackets_by_doubling_then_bisects_in_log_width():
    settings = SearchSettings(low=1, high=64)
    assert plan({}, settings).jobs == [(1, 0)]
    assert plan(tally({1: (0, 16), 2: (0, 16)}), settings).jobs == [(4, 0)]
    assert plan(tally({1: (0, 16), 2: (0, 16), 4: (0, 16), 8: (0, 16), 16: (0, 16), 32: (0, 16)}),
                settings).jobs == [(64, 0)]
    # lo = 4 (rate 0), hi = 16 (rate 1): the geometric middle is 8.
    assert plan(tally({1: (0, 16), 2: (0, 16), 4: (0, 16), 16: (16, 16)}), settings).jobs == [(8, 0)]


def test_plan_stops_when_pinned_adds_jobs_where_an_interval_straddles_and_says_why():
    settings = SearchSettings(low=4, high=64, max_seeds=2, trials=16)  # at most 32 replicas per width
    pinned = plan(tally({4: (0, 16), 8: (0, 16), 9: (16, 16)}), settings)
    assert pinned.jobs == [] and pinned.status[0.5] == "pinned between 8 and 9"
    # 8 at 6/16 straddles 0.5 (Wilson 0.18-0.61); 9 at 16/16 does not: the second job at 8 only.
    assert plan(tally({4: (0, 16), 8: (6, 16), 9: (16, 16)}), settings).jobs == [(8, 1)]
    # 8 still straddles with 32 replicas: the next width below (4, clearly below) bounds m50 instead.
    moved = plan(tally({4: (0, 16), 8: (12, 32), 9: (16, 16)}, jobs=2), settings)
    assert moved.jobs == [] and moved.status[0.5] == "pinned between 4 and 9"
    # 9 straddles at its cap and nothing wider has run: a width one precision further (9 + 2) is tried.
    assert plan(tally({4: (0, 16), 8: (0, 16), 9: (18, 32)}, jobs=2), settings).jobs == [(11, 0)]
    # ... unless that is past `high`.
    capped = plan(tally({4: (0, 16), 8: (0, 16), 9: (18, 32)}, jobs=2), SearchSettings(4, 9, max_seeds=2, trials=16))
    assert capped.jobs == [] and capped.status[0.5] == ("between 8 and 9; no width up to high=9 lies clearly "
                                               "above 0.5 with max_seeds=2 jobs' replicas")
    never = plan(tally({4: (0, 16), 8: (0, 16), 16: (0, 16), 32: (1, 16), 64: (2, 16)}), settings)
    assert never.jobs == [] and never.status[0.5] == "not reached by high=64"
    at_once = plan(tally({4: (16, 16)}), settings)
    assert at_once.jobs == [] and at_once.status[0.5] == "reached at the narrowest width 4"
    # Two of four is no evidence that `low` already reaches the target: a second small job there first.
    assert plan(tally({4: (2, 4)}), SearchSettings(low=4, high=64)).jobs == [(4, 1)]


def test_reused_replicas_cover_the_search_jobs_they_contain():
    """A grid job's 16 replicas (seed 0) contain the search's first 4-replica job at that width (seed 0, replicas
    0-3), so the search's next job there is its second (seed 1), and no replica counts twice."""
    from overparam.search.planner import add_result, mark_jobs
    from overparam.seeds import replica_seeds

    grid = {"per_replica": [{"seed": s, "success": i % 2 == 0} for i, s in enumerate(replica_seeds(0, 16))]}
    search = {"per_replica": grid["per_replica"][:4]}  # the same replicas, trained again, the same outcomes
    widths: dict[int, WidthTally] = {}
    add_result(widths, 5, grid)
    add_result(widths, 5, search)  # the same four replicas again
    mark_jobs(widths[5], [replica_seeds(k, 4) for k in range(3)])
    assert (widths[5].trials, widths[5].successes) == (16, 8)
    assert widths[5].jobs == {0} and widths[5].next_job() == 1


def test_simulated_search_on_a_step_in_success_spends_exactly_the_bracketing_jobs():
    """Every replica fails below m = 5 and succeeds from 5 on: low 1, doubling 2, 4, 8, bisecting 6 then 5, each one
    4-replica job whose interval is clear of 0.5 at once, so the search stops pinned between 4 and 5 after 24."""
    import numpy as np

    from overparam.search.simulation import simulate_search

    rates = {1: 0.0, 5: 1.0}
    outcome = simulate_search(rates, SearchSettings(low=1, high=8, trials=4), np.random.default_rng(0))
    assert (outcome.replicas, outcome.stopped, outcome.status) == (24, "pinned between 4 and 5", "separated")
    assert (outcome.ci_low, outcome.ci_high) == (4, 5)


@pytest.mark.parametrize("settings, message", [
    (dict(low=10, high=2), "hydra.sweeper.high=2: must be >= hydra.sweeper.low=10"),
    (dict(targets=[0.5, 1.0]), "hydra.sweeper.targets=[0.5, 1.0]: every target must be a number in (0, 1)"),
    (dict(precision=0.0), "hydra.sweeper.precision=0.0: must be a relative width > 0"),
    (dict(low=0), "hydra.sweeper.low=0: must be an integer >= 1"),
    (dict(trials=0), "hydra.sweeper.trials=0: must be an integer >= 1 (or null: the job config's trials)"),
])
def test_bad_settings_name_the_key_and_what_is_allowed(settings, message):
    values = dict(low=1, high=64, targets=[0.5], precision=0.25, max_jobs=60, max_seeds=3, trials=4) | settings
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        SearchSettings.checked(**values)


# ----- through Hydra -------------------------------------------------------------------------------------

def _assert_found(sweep_dir: Path, completed):
    assert completed.returncode == 0, completed.stderr[-2000:]
    row = m50_row(sweep_dir)
    estimate, low, high = float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"])
    assert row["status"] == "ok"
    assert abs(math.log(estimate / TRUE_M50)) <= math.log(1 + PRECISION)
    assert low <= TRUE_M50 <= high
    assert "m50 = " in completed.stdout and "critical_width:" in completed.stdout
    # No job twice, and a fifth of the replicas of the dense grid 1..40 at the app's 16 trials per width.
    assert len(jobs_run(sweep_dir)) == len(set(jobs_run(sweep_dir)))
    replicas = sum(int(row["trials"]) for row in csv.DictReader((sweep_dir / "summary.csv").open()))
    assert replicas <= 0.2 * 40 * 16


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory):
    """One uninterrupted search through the basic launcher, shared by the tests that compare against it."""
    sweep_dir = tmp_path_factory.mktemp("basic")
    return sweep_dir, run_app(sweep_dir)


def test_sweeper_finds_m50_through_the_basic_launcher(basic_sweep):
    _assert_found(*basic_sweep)


@pytest.mark.slow  # the same search as the basic launcher's test, through the parallel launcher
def test_sweeper_finds_m50_through_the_joblib_launcher_with_the_same_jobs(tmp_path, basic_sweep):
    completed = run_app(tmp_path / "joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    _assert_found(tmp_path / "joblib", completed)
    # The decisions depend only on results, so either launcher runs the same jobs.
    assert sorted(jobs_run(tmp_path / "joblib")) == sorted(jobs_run(basic_sweep[0]))


@pytest.mark.slow  # a search job's skipping is a sweep job's (test_sweep.py, test_reliability.py)
def test_a_killed_search_resumes_without_redoing_finished_jobs(tmp_path, basic_sweep):
    clean_dir = basic_sweep[0]
    killed_dir = tmp_path / "killed"
    process = run_app(killed_dir, wait=False, report=False, job_seconds=0.4)
    deadline = time.time() + 120
    while time.time() < deadline and (not (killed_dir / "writes.log").exists() or len(jobs_run(killed_dir)) < 4):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = jobs_run(killed_dir)
    assert 4 <= len(before) < len(jobs_run(clean_dir))
    mtimes = {name: (killed_dir / name / "result.json").stat().st_mtime_ns for name in before}
    resumed = run_app(killed_dir, report=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = jobs_run(killed_dir)
    assert after[: len(before)] == before and len(after) == len(set(after))  # nothing written twice
    assert {name: (killed_dir / name / "result.json").stat().st_mtime_ns for name in before} == mtimes
    # Replayed from the files, the search made the same decisions as the uninterrupted one.
    assert sorted(after) == sorted(jobs_run(clean_dir))


def test_a_search_reuses_a_grid_already_in_its_folder(tmp_path, basic_sweep):
    """A grid at the app's own 16 trials, then the search in the same folder: the grid's replicas count, so the
    search never runs its 4-replica job where a grid job already holds those replicas, and rewrites nothing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0"}
    grid = subprocess.run([sys.executable, str(APP), "-m", "model.m_factor=4,6,8", f"hydra.sweep.dir={tmp_path}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert grid.returncode == 0, grid.stderr[-2000:]
    grid_jobs = jobs_run(tmp_path)
    mtimes = {name: (tmp_path / name / "result.json").stat().st_mtime_ns for name in grid_jobs}
    completed = run_app(tmp_path)
    _assert_found(tmp_path, completed)
    searched = jobs_run(tmp_path)[len(grid_jobs):]
    assert not {"model.m_factor=4,trials=4", "model.m_factor=6,trials=4", "model.m_factor=8,trials=4"} & set(searched)
    assert len(searched) < len(jobs_run(basic_sweep[0]))  # fewer jobs than the same search in an empty folder
    assert {name: (tmp_path / name / "result.json").stat().st_mtime_ns for name in grid_jobs} == mtimes
    summary = csv.DictReader((tmp_path / "summary.csv").open())
    widths = {int(row["model.m_factor"]): int(row["trials"]) for row in summary}
    assert widths[4] >= 16 and widths[6] >= 16 and widths[8] >= 16


@pytest.mark.parametrize("override, key", [("hydra.sweeper.low=10", "hydra.sweeper.high"),
                                           ("hydra.sweeper.targets=[0,0.5]", "hydra.sweeper.targets"),
                                           ("hydra.sweeper.precision=-1", "hydra.sweeper.precision")])
def test_bad_settings_stop_the_sweep_before_any_job(tmp_path, override, key):
    completed = run_app(tmp_path, override, "hydra.sweeper.high=5", report=False)
    assert completed.returncode != 0
    assert key in completed.stderr and not (tmp_path / "writes.log").exists()


def test_report_command_rebuilds_the_same_thresholds_from_the_files_alone(basic_sweep, capsys):
    from tbparse import SummaryReader

    from overparam.report.__main__ import main

    sweep_dir, _ = basic_sweep
    written_by_the_sweep = (sweep_dir / "thresholds.csv").read_text()
    (sweep_dir / "thresholds.csv").unlink()
    assert main([str(sweep_dir)]) == 0
    assert (sweep_dir / "thresholds.csv").read_text() == written_by_the_sweep
    assert "m50 = " in capsys.readouterr().out
    scalars = SummaryReader(str(sweep_dir / "tensorboard"), extra_columns={"dir_name"}).scalars
    m50 = scalars[scalars.tag == "threshold/m50"].value.tolist()
    assert m50 == pytest.approx([float(m50_row(sweep_dir)["estimate"])])


# ----- run.py's preflight knows the search --------------------------------------------------------------

def test_preflight_checks_the_bounds_of_every_combination_not_a_misread_grid():
    from overparam.config.preflight import jobs_of

    jobs = jobs_of(["-m", "hydra/sweeper=critical_width", "task.steps=1,2", "hydra.sweeper.high=9"])
    widths = sorted((next(o for o in job if o.startswith("task.steps=")), next(o for o in job if "m_factor" in o))
                    for job in jobs)
    assert widths == [("task.steps=1", "model.m_factor=1"), ("task.steps=1", "model.m_factor=9"),
                      ("task.steps=2", "model.m_factor=1"), ("task.steps=2", "model.m_factor=9")]


@pytest.mark.parametrize("override, message", [
    ("hydra.sweeper.precision=0", "config error: hydra.sweeper.precision=0.0: must be a relative width > 0"),
    ("model.m_factor=2,3", "config error: model.m_factor is searched by hydra/sweeper=critical_width"),
])
def test_run_py_stops_bad_search_settings_with_one_line_before_any_job(tmp_path, override, message):
    from helpers import run_py

    completed = run_py("-m", "hydra/sweeper=critical_width", override, f"hydra.sweep.dir={tmp_path / 's'}",
                       check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith(message) and len(completed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
