"""The core issue's promises, end to end through the real configs."""

import re

import pytest

from helpers import run_py
from overparam.config import compose
from overparam.jobs.job import run
from overparam.jobs.results import read_result


@pytest.mark.parametrize("neighborhood", ["moore", "von_neumann"])
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_presolved_models_succeed_every_time(tmp_path, neighborhood, steps):
    # certify=false: a presolved two-step net passes the held-out boards, and checking its 2^25 windows costs
    # seconds per replica; the certificate has its own tests (test_certificate.py)
    config = compose([f"task.neighborhood={neighborhood}", f"task.steps={steps}", "model.presolve=true",
                      "trials=2", "trainer.max_steps=20", "task.batch_size=16", "trainer.progress=none",
                      "trainer.certify=false"])
    result = run(config, tmp_path)
    assert result["success_rate"] == 1.0 and result["board_accuracy_mean"] == 1.0
    assert read_result(tmp_path / "result.json")["success_rate"] == 1.0


def test_presets_compose_to_the_published_settings():
    firner = compose(["experiment=firner"])
    assert (firner.task.neighborhood, firner.model.activation, firner.model.head, firner.model.normalize) == (
        "von_neumann", "leaky_relu", "sigmoid_bceloss", True)
    assert (firner.trainer.max_steps, firner.task.batch_size, firner.task.train_size, firner.task.test_size,
            firner.task.test_boards, firner.trials) == (10000, 128, 10, 5, 1000, 20)
    springer = compose(["experiment=springer_kenyon", "task.steps=2"])
    from overparam.core.build import build_net, build_task

    net = build_net(springer.model, build_task(springer.task), [0])
    assert net.params_per_replica() == 23 * 2 + 2 and springer.task.neighborhood == "moore"
    assert springer.task.train_examples == 10000 and springer.trainer.max_steps * 8 == 100 * 10000  # 100 epochs


@pytest.mark.slow  # the default suite runs the same grid tiny through the README's quick start (test_docs.py)
def test_the_issue_grid_runs_nine_jobs(tmp_path):
    run_py("-m", "model.m_factor=1,5,20", "task.steps=1,2,3", "trainer.max_steps=50", "trials=2",
           "task.test_boards=100", "trainer.progress=none", f"hydra.sweep.dir={tmp_path}")
    results = [read_result(p) for p in tmp_path.glob("*/result.json")]
    assert len(results) == 9 and all(r["status"] == "ok" for r in results)
    assert {(r["m_factor"], r["steps"]) for r in results} == {(m, s) for m in (1, 5, 20) for s in (1, 2, 3)}
    assert all(r["params_per_replica"] == r["steps"] * (2 * r["m_factor"] ** 2 + 22 * r["m_factor"] + 1)
               for r in results)


@pytest.mark.slow
def test_the_default_job_runs_and_prints_a_success_rate():
    completed = run_py("force=true", timeout=900)
    printed = re.search(r"success (\d+)/(\d+) = ", completed.stdout)
    last = completed.stdout.strip().splitlines()[-1]
    assert last.startswith("result: ") and "tensorboard --logdir" in last
    result = read_result(last.split()[1])
    assert (int(printed[1]), int(printed[2])) == (result["successes"], result["trials"]) == (result["successes"], 16)
