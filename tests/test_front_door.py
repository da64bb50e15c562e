"""What a new user meets first: a sweep typed without -m, the Python API for results, the loggers, and the
TensorBoard charts of rates (never smoothed)."""

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT, TINY, run_py
from overparam.jobs.results import write_result
from overparam.report.pool import load_results, pool
from overparam.report.tensorboard import band, chart_layout, margin_charts
from overparam.stats import mean_interval, wilson_interval


@pytest.mark.parametrize(("arguments", "said"), [
    (["model.m_factor=1,5"], "config error: model.m_factor=1,5 is a sweep: add -m to run it "
                             "(python run.py -m model.m_factor=1,5)"),
    (["experiment=firner_grid"], "config error: this config sweeps task.steps=1,2,3 "
                                 "model.m_factor=1,5,10,20,30,40 (hydra.sweeper.params): add -m to run "
                                 "the sweep (python run.py -m experiment=firner_grid)"),
])
def test_a_sweep_without_multirun_is_one_line_naming_m(arguments, said):
    completed = run_py(*arguments, check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip() == said and completed.stdout == ""


def _fake_job(directory, seed: int, replica_seeds: list[int], successes: list[bool], width: int = 3) -> None:
    config = json.loads((ROOT / "tests" / "data" / "result_8885d7f.json").read_text())["config"]
    config = {**config, "seed": seed, "trials": len(replica_seeds), "model": {**config["model"], "m_factor": width}}
    rows = [{"seed": s, "success": ok, "board_accuracy": 1.0 if ok else 0.5, "walk_profile": [1, 2]}
            for s, ok in zip(replica_seeds, successes)]
    write_result(directory, {"status": "ok", "per_replica": rows, "params_per_replica": 85, "stream_device": "cpu",
                             "charts": {"board accuracy vs width": ["board_accuracy_mean"]}, "config": config})


def test_load_sweep_has_one_row_per_replica_pooled_as_the_report_pools(tmp_path):
    import overparam

    _fake_job(tmp_path / "a", 0, [11, 12], [True, False])
    _fake_job(tmp_path / "b", 1, [12, 13], [False, True])  # replica 12 again: a search's job inside a grid's
    _fake_job(tmp_path / "c", 0, [11, 12], [True, True], width=5)
    replicas = overparam.load_sweep(tmp_path)
    assert sorted(zip(replicas["model.m_factor"], replicas["seed"])) == [(3, 11), (3, 12), (3, 13), (5, 11), (5, 12)]
    assert "walk_profile" not in replicas and set(replicas["status"]) == {"ok"}
    summary = overparam.load_summary(tmp_path).set_index("model.m_factor")
    assert summary.loc[3, "trials"] == 3 and summary.loc[3, "successes"] == 2
    assert replicas.groupby("model.m_factor")["success"].mean().tolist() == summary["success_rate"].tolist()


def test_the_example_script_runs_a_sweep_and_plots_it_from_a_dataframe(tmp_path):
    sweep = tmp_path / "sweep"
    subprocess.run([sys.executable, str(ROOT / "examples" / "plot_sweep.py"), str(sweep)], cwd=ROOT, check=True,
                   capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert (sweep / "my_plot.png").stat().st_size > 5000
    code = f"import overparam; print(overparam.load_sweep({str(sweep)!r}).shape)"
    shape = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")}).stdout
    assert shape.startswith("(8, ")  # a 2 x 2 sweep of 2 replicas


def test_every_custom_scalars_chart_is_an_unsmoothed_margin_chart_with_its_band(tmp_path):
    _fake_job(tmp_path / "a", 0, [11, 12, 14], [True, False, True])
    points = pool(load_results([tmp_path]))
    charts = margin_charts(chart_layout(points))
    assert set(charts) == {"success rate vs width (step = m_factor)",
                           "success rate vs parameters per replica (step = params)", "board accuracy vs width"}
    assert all(kind == "Margin" and low == f"{series}/ci_low" for kind, (series, low, _) in charts.values())
    (point,) = points
    summary = point.summary()
    assert band(point, summary, "success_rate") == wilson_interval(2, 3)
    assert band(point, summary, "board_accuracy_mean") == pytest.approx(mean_interval([1.0, 0.5, 1.0]))
    assert band(point, {**summary, "bayes_r2_ceiling": 0.42}, "bayes_r2_ceiling") == (0.42, 0.42)


def test_loggers_from_the_config_csv_beside_tensorboard(tmp_path):
    run_py("logger=[tensorboard,csv]", "trials=2", "trainer.max_steps=60", *TINY, f"hydra.run.dir={tmp_path}")
    metrics = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/loss_mean" in metrics.splitlines()[0] and "final/success_rate" in metrics.splitlines()[0]
    assert "model.m_factor: 2" in (tmp_path / "csv" / "hparams.yaml").read_text()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_logger_mlflow_records_a_job_in_a_local_file_store(tmp_path):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    run_py("logger=mlflow", f"logger.mlflow.tracking_uri=file:{store}", "trials=2", "trainer.max_steps=60", *TINY,
           f"hydra.run.dir={tmp_path / 'job'}", env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    (run,) = [path for path in store.glob("*/*") if (path / "params").is_dir()]
    assert (run / "params" / "model.m_factor").read_text() == "2"
    assert (run / "metrics" / "final" / "success_rate").exists() and (run / "metrics" / "train" / "loss_mean").exists()
    assert not (tmp_path / "job" / "tensorboard").exists()
