"""Facts with one home, and tests that their users agree: run-only keys, summaries, schemas."""

import csv
import inspect

import pytest

from helpers import ROOT, TINY, run_py
from overparam.config import compose, locate, parameters, schema
from overparam.jobs.results import read_result


@pytest.mark.slow  # identities of run-only keys: test_identity.py; a rerun sweep skipping: test_sweep.py
def test_changing_only_run_settings_skips_every_finished_job(tmp_path):
    grid = ["-m", "model.m_factor=1,2", "trials=2", "trainer.max_steps=30", *TINY, f"hydra.sweep.dir={tmp_path}"]
    run_py(*grid)
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    rerun = run_py(*grid, "trainer.keep_checkpoints=true", "trainer.log_every_n_steps=7",
                   "trainer.checkpoint_every_n_steps=9")
    assert rerun.stdout.count("skip ") == 2, rerun.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == folders


@pytest.mark.slow  # each file's own summary is tested in test_sweep.py and test_front_door.py
def test_summary_csv_and_result_json_summarise_a_point_the_same_way(tmp_path):
    run_py("-m", "model.m_factor=2", "trials=3", "trainer.max_steps=30", *TINY, f"hydra.sweep.dir={tmp_path}")
    (result_path,) = tmp_path.glob("*/result.json")
    result = read_result(result_path)
    with (tmp_path / "summary.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    summary_keys = [k for k in row if k in result and k not in ("params_per_replica",)]
    assert {"success_rate", "board_accuracy_mean", "collapsed_fraction", "final_loss_mean"} <= set(summary_keys)
    for key in summary_keys:
        assert float(row[key]) == result[key], key


def test_every_task_and_model_config_is_its_class_schema():
    """conf/<group>/<name>.yaml extends its class's schema: the composed keys are the constructor's keywords."""
    options = [(group, path.stem) for group in ("task", "model")
               for path in sorted((ROOT / "conf" / group).glob("*.yaml"))]
    assert {("task", "life"), ("task", "maxcut"), ("model", "life_conv"), ("model", "mlp")} <= set(options)
    for group, name in options:
        overrides = [f"{group}={name}"] + (["model=mlp"] if group == "task" and name != "life" else [])
        node = dict(compose(overrides)[group])
        target = locate(node["_target_"])
        assert set(node) == set(schema(target)), (group, name)
        for key, parameter in parameters(target).items():
            if parameter.default is not inspect.Parameter.empty and (group, key) != ("model", "m_factor"):
                assert node[key] == (list(parameter.default) if isinstance(parameter.default, tuple)
                                     else parameter.default), (group, name, key)
