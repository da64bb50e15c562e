"""Sweeps end to end: aggregation, TensorBoard through its HTTP API, idempotent reruns, failure isolation."""

import csv
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from helpers import ROOT, TINY, run_py
from overparam.jobs.results import read_result, write_result
from overparam.report import write_report
from overparam.stats import wilson_interval

GRID = ["-m", "model.m_factor=1,2,4", "task.steps=1", "trials=4", "trainer.max_steps=40", *TINY]


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep")
    completed = run_py(*GRID, f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir, completed


def test_sweep_leaves_one_result_per_job_and_a_summary_row_per_width(sweep):
    sweep_dir, completed = sweep
    results = sorted(sweep_dir.glob("*/result.json"))
    assert len(results) == 3
    rows = read_csv(sweep_dir / "summary.csv")
    assert [int(row["model.m_factor"]) for row in rows] == [1, 2, 4]
    assert [int(row["params_per_replica"]) for row in rows] == [2 * m * m + 22 * m + 1 for m in (1, 2, 4)]
    for row in rows:
        assert int(row["trials"]) == 4
        low, high = wilson_interval(int(row["successes"]), 4)
        assert math.isclose(float(row["success_ci_low"]), low) and math.isclose(float(row["success_ci_high"]), high)
    assert (sweep_dir / "success_vs_width.png").stat().st_size > 1000
    assert "grid points" in completed.stdout


def test_result_json_has_the_documented_fields(sweep):
    sweep_dir, _ = sweep
    result = read_result(next(sweep_dir.glob("model.m_factor=2*/result.json")))
    for key in ("task", "steps", "m_factor", "d_factor", "activation", "params_per_replica", "trials", "successes",
                "success_rate", "success_ci_low", "success_ci_high", "board_accuracy_mean", "cell_accuracy_mean",
                "per_replica", "wall_seconds", "device", "status", "config"):
        assert key in result, key
    assert result["status"] == "ok" and result["m_factor"] == 2 and len(result["per_replica"]) == 4
    expected = {"seed", "success", "board_accuracy", "cell_accuracy", "final_loss", "collapsed"}
    assert set(result["per_replica"][0]) >= expected
    assert result["success_rate"] == result["successes"] / 4
    assert len({row["seed"] for row in result["per_replica"]}) == 4


def test_running_the_same_sweep_again_trains_nothing(sweep):
    sweep_dir, _ = sweep
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/result.json")}
    summary = (sweep_dir / "summary.csv").read_text()
    completed = run_py(*GRID, f"hydra.sweep.dir={sweep_dir}")
    assert completed.stdout.count("skip ") == 3
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/result.json")} == before
    assert (sweep_dir / "summary.csv").read_text() == summary


def test_report_command_rebuilds_everything_from_result_files_alone(sweep, tmp_path):
    sweep_dir, _ = sweep
    copy = tmp_path / "copy"
    ignored = shutil.ignore_patterns("summary.csv", "tensorboard", "*.png", "multirun.yaml")
    shutil.copytree(sweep_dir, copy, ignore=ignored)
    for job in copy.iterdir():
        shutil.rmtree(job / "tensorboard", ignore_errors=True)
    completed = subprocess.run([sys.executable, "-m", "overparam.report", str(copy)], capture_output=True, text=True,
                               cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert completed.returncode == 0, completed.stderr
    assert (copy / "summary.csv").read_text() == (sweep_dir / "summary.csv").read_text()
    assert (copy / "tensorboard" / "all").is_dir() and (copy / "success_vs_width.png").exists()
    # a second report rebuilds rather than appends: still one event file per curve
    write_report(copy, quiet=True)
    assert len(list((copy / "tensorboard" / "all").glob("events.*"))) == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_real_tensorboard_serves_the_success_rate_curve(sweep):
    sweep_dir, _ = sweep
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep_dir), "--host", "127.0.0.1",
         "--port", str(port), "--load_fast=false", "--reload_interval=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        query = urllib.parse.urlencode({"run": "tensorboard/all", "tag": "success_rate"})
        deadline = time.time() + 90
        points = None
        while time.time() < deadline:
            try:
                points = get_json(f"{base}/data/plugin/scalars/scalars?{query}")
                if len(points) == 3:
                    break
            except Exception:  # noqa: BLE001 - the server is still starting or loading
                pass
            time.sleep(1)
        assert points is not None and len(points) == 3, points
        runs = get_json(f"{base}/data/runs")
        assert "tensorboard/all" in runs and any(run.endswith("tensorboard") and "m_factor" in run for run in runs)
        layout = get_json(f"{base}/data/plugin/custom_scalars/layout")
        charts = [chart for category in layout["category"] for chart in category["chart"]]
        assert any(chart.get("margin", {}).get("series", [{}])[0].get("value") == "success_rate" for chart in charts)
        rows = read_csv(sweep_dir / "summary.csv")
        assert [step for _, step, _ in points] == [1, 2, 4]
        assert [value for _, _, value in points] == pytest.approx([float(r["success_rate"]) for r in rows])
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_failing_job_is_recorded_the_others_finish_and_the_command_fails(tmp_path):
    # A batch of 10^13 boards cannot be allocated: a real out-of-memory error inside one job.
    completed = run_py("-m", "task.batch_size=16,10000000000000", "trials=2", "trainer.max_steps=20",
                       "task.test_boards=50", "trainer.progress=none", f"hydra.sweep.dir={tmp_path}", check=False)
    assert completed.returncode != 0
    results = {p.parent.name: read_result(p) for p in tmp_path.glob("*/result.json")}
    statuses = sorted(r["status"] for r in results.values())
    assert statuses == ["failed", "ok"]
    failed = next(r for r in results.values() if r["status"] == "failed")
    assert "memory" in failed["error"].lower() or "alloc" in failed["error"].lower()
    rows = read_csv(tmp_path / "summary.csv")
    assert sorted(int(r["failed_jobs"]) for r in rows) == [0, 1]
    assert "FAILED" in completed.stdout


def fake_result(directory, seed, successes, trials=4, width=5, steps=2):
    config = {"seed": seed, "trials": trials, "task": {"name": "life", "steps": steps}, "model": {"m_factor": width}}
    rows = [{"seed": seed * 100 + i, "success": i < successes, "board_accuracy": 1.0 if i < successes else 0.5,
             "cell_accuracy": 1.0, "collapsed": False} for i in range(trials)]
    write_result(directory, {"status": "ok", "params_per_replica": 161, "per_replica": rows, "config": config})


def test_jobs_differing_only_in_seed_pool_their_replicas(tmp_path):
    fake_result(tmp_path / "a", seed=0, successes=3)
    fake_result(tmp_path / "b", seed=1, successes=1)
    fake_result(tmp_path / "c", seed=0, successes=4, steps=3)
    rows = write_report(tmp_path, quiet=True)
    by_steps = {row["task.steps"]: row for row in rows}
    assert by_steps[2]["trials"] == 8 and by_steps[2]["successes"] == 4 and by_steps[2]["success_rate"] == 0.5
    assert by_steps[2]["board_accuracy_mean"] == pytest.approx((4 * 1.0 + 4 * 0.5) / 8)
    assert by_steps[3]["trials"] == 4 and by_steps[3]["successes"] == 4
    assert (by_steps[2]["success_ci_low"], by_steps[2]["success_ci_high"]) == pytest.approx(wilson_interval(4, 8))


def test_jobs_differing_in_trials_pool_each_replica_once(tmp_path):
    """A search's 4-replica job (seed 0) holds the first four replicas of a grid's 8-replica job (seed 0): pooled,
    they count 8 replicas, not 12; a job with seed 1 adds its own."""
    fake_result(tmp_path / "grid", seed=0, successes=3, trials=8)
    fake_result(tmp_path / "search", seed=0, successes=3, trials=4)  # replicas 0-3 of the grid job again
    fake_result(tmp_path / "search_seed_1", seed=1, successes=4, trials=4)
    rows = write_report(tmp_path, quiet=True)
    assert len(rows) == 1 and "trials" not in rows[0].get("curve", "")
    assert rows[0]["trials"] == 12 and rows[0]["successes"] == 7 and rows[0]["jobs"] == 3


def test_merging_sweeps_counts_the_same_experiment_once(tmp_path):
    fake_result(tmp_path / "machine_a" / "job", seed=0, successes=3)
    fake_result(tmp_path / "machine_b" / "job", seed=0, successes=3)  # the same job copied
    fake_result(tmp_path / "machine_b" / "other", seed=1, successes=1)
    rows = write_report(tmp_path / "machine_a", tmp_path / "machine_b", out=tmp_path, quiet=True)
    assert len(rows) == 1 and rows[0]["trials"] == 8 and rows[0]["successes"] == 4


def test_a_corrupt_or_partial_result_never_counts_as_done(tmp_path):
    fake_result(tmp_path / "a", seed=0, successes=3)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "result.json").write_text('{"schema": 1, "status": "ok", "per_rep')
    assert read_result(tmp_path / "b" / "result.json") is None
    rows = write_report(tmp_path, quiet=True)
    assert len(rows) == 1 and rows[0]["trials"] == 4


def test_wilson_interval_closed_forms():
    z2 = 1.959963984540054**2
    assert wilson_interval(0, 20) == pytest.approx((0.0, z2 / (20 + z2)))
    assert wilson_interval(20, 20) == pytest.approx((20 / (20 + z2), 1.0))
    low, high = wilson_interval(10, 20)
    assert low == pytest.approx(1 - high) and 0.29 < low < 0.30


def test_curve_names_show_a_class_by_its_group_and_never_start_with_an_underscore():
    from overparam.report.curves import curve_name

    curve = (("task._target_", "overparam.tasks.life.task.LifeTask"), ("task.steps", 2), ("optim.lr", 0.01))
    assert curve_name(curve) == "task=LifeTask,steps=2,lr=0.01"
    assert curve_name(()) == "all"
