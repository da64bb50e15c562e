"""Trainer options any task can use: float64 training and the convergence stop (a finish, resumed exactly)."""

import pytest
import torch

from helpers import TINY
from overparam.config import compose
from overparam.core.convergence import settled
from overparam.jobs.identity import identity
from overparam.jobs.results import read_result


def test_settled_compares_each_live_replica_with_its_own_past_loss():
    alive = torch.tensor([True, True, False])
    before = torch.tensor([1.0, 0.0, 5.0])
    assert settled(before, torch.tensor([0.9995, 0.0, 1.0]), alive, 1e-3)  # the dead replica does not count
    assert not settled(before, torch.tensor([0.998, 0.0, 5.0]), alive, 1e-3)  # 2e-3 relative change
    assert not settled(before, torch.tensor([1.0, 1e-12, 5.0]), alive, 1e-3)  # a zero loss that rose again
    assert settled(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([True]), 1.0)  # fell by exactly 100%


def test_new_trainer_keys_at_their_neutral_values_keep_earlier_results_valid():
    config = {"seed": 0, "trainer": {"max_steps": 5, "precision": "32-true", "stop_when_loss_change_below": 0.0,
                                     "stop_window_steps": 1000}}
    earlier = {"seed": 0, "trainer": {"max_steps": 5}}
    assert identity(config) == identity(earlier)
    assert identity({**config, "trainer": {**config["trainer"], "precision": "64-true"}}) != identity(earlier)
    assert identity({**config, "trainer": {**config["trainer"], "stop_when_loss_change_below": 1e-3}}) != identity(
        earlier)


def test_64_true_trains_in_float64(tmp_path):
    from overparam.core.build import build_module
    from overparam.jobs.trainer import build_trainer

    config = compose(["trials=2", "trainer.precision=64-true", "trainer.max_steps=40", *TINY])
    module = build_module(config)
    trainer = build_trainer(config.trainer, torch.device("cpu"), tmp_path)
    trainer.fit(module, train_dataloaders=range(3))
    assert all(p.dtype == torch.float64 for p in module.net.parameters())
    assert module.last_losses.dtype == torch.float64
    assert torch.get_default_dtype() == torch.float32  # the step's dtype does not leak out


def test_64_true_job_writes_a_result(tmp_path):
    from overparam.jobs.job import run

    result = run(compose(["trials=2", "trainer.precision=64-true", "trainer.max_steps=40", *TINY]), tmp_path)
    assert result["status"] == "ok" and result["config"]["trainer"]["precision"] == "64-true"


# A loss never moves by more than 10x its value in 5 steps here, so the stop fires at the second check (step 10).
SETTLE = ["trials=2", "trainer.stop_when_loss_change_below=10.0", "trainer.stop_window_steps=5",
          "trainer.max_steps=40", *TINY]


def test_a_settled_job_is_a_finished_result_with_its_stopping_step(tmp_path):
    from overparam.jobs.job import run

    result = run(compose(SETTLE), tmp_path)
    assert result["status"] == "ok"
    assert result["stopped_at_step"] == 10 and result["trained_steps"] == 10  # of trainer.max_steps=40


def test_a_job_without_the_stop_runs_to_max_steps_and_records_no_stop(tmp_path):
    from overparam.jobs.job import run

    result = run(compose(["trials=2", "trainer.max_steps=40", *TINY]), tmp_path)
    assert result["trained_steps"] == 40 and "stopped_at_step" not in result


def test_a_settling_job_killed_after_a_checkpoint_resumes_to_the_same_step_and_result(tmp_path, monkeypatch):
    from overparam.jobs import job, progress
    from overparam.jobs import trainer as training

    overrides = [*SETTLE, "trainer.stop_when_loss_change_below=0.5", "trainer.checkpoint_every_n_steps=5",
                 "task.batch_size=64"]
    whole = job.run(compose(overrides), tmp_path / "whole")
    assert whole["status"] == "ok" and whole["stopped_at_step"] is not None and whole["stopped_at_step"] > 5

    crash_at = whole["stopped_at_step"] - 2  # after the last checkpoint before the stop

    class CrashLater(progress.ProgressLog):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == crash_at:
                raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "ProgressLog", CrashLater)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job.run(compose(overrides), tmp_path / "resumed")
    monkeypatch.undo()
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    checkpoint_step = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    assert checkpoint_step < crash_at
    resumed = job.run(compose(overrides), tmp_path / "resumed")
    assert resumed["resumed_from_step"] == checkpoint_step  # where it resumed, not its last checkpoint of this run
    assert resumed["stopped_at_step"] == whole["stopped_at_step"]
    assert resumed["per_replica"] == whole["per_replica"]
    assert read_result(tmp_path / "resumed" / "result.json")["status"] == "ok"
