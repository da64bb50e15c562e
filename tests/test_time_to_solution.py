"""Time to solution: the held-out evaluation during training, success at every budget, stop when solved."""

import pytest
import torch

from helpers import TINY
from overparam.config import compose
from overparam.config.preflight import check
from overparam.config.validate import ConfigError
from overparam.core.evaluation import exact_at, replica_record
from scheduled import scheduled_config

# Replica 0 is exact from step 20 on; replica 1 at step 10 only, then again from 40; replica 2 never.
SCHEDULE = [[[20, 1000]], [[10, 10], [40, 1000]], []]


def run_job(config, directory):
    from overparam.jobs.job import run

    return run(config, directory)


def test_replica_record_compresses_exactness_into_runs():
    record = replica_record([10, 20, 30, 40, 45], [False, True, True, False, True])
    assert record == {"solved_at_step": 20, "exact_at_end": True, "exact_at_steps": [[20, 30], [45, 45]]}
    assert [exact_at(record, [10, 20, 30, 40, 45], s) for s in (10, 20, 30, 40, 45, 50)] == [
        False, True, True, False, True, None]
    assert replica_record([10, 20], [False, False]) == {"solved_at_step": None, "exact_at_end": False,
                                                        "exact_at_steps": []}


def test_a_job_records_when_each_replica_was_exact(tmp_path):
    result = run_job(scheduled_config(SCHEDULE, ["trainer.max_steps=55", "trainer.eval_every_n_steps=10"]), tmp_path)
    assert result["evaluated_steps"] == [10, 20, 30, 40, 50, 55]  # every 10 steps and the last
    rows = result["per_replica"]
    assert [row["solved_at_step"] for row in rows] == [20, 10, None]
    assert [row["exact_at_steps"] for row in rows] == [[[20, 55]], [[10, 10], [40, 55]], []]
    assert [row["exact_at_end"] for row in rows] == [row["success"] for row in rows] == [True, True, False]
    assert "stopped_at_step" not in result and result["trained_steps"] == 55


def test_stop_when_solved_ends_the_job_once_every_replica_was_exact_at_an_evaluation(tmp_path):
    # replica 1 is exact at step 10, replica 0 from step 20: the job ends at 20, both count as successes
    schedule = [[[20, 1000]], [[10, 10]]]
    overrides = ["trainer.max_steps=100", "trainer.eval_every_n_steps=10", "trainer.stop_when_solved=true"]
    result = run_job(scheduled_config(schedule, overrides), tmp_path)
    assert result["status"] == "ok"
    assert result["stopped_at_step"] == result["trained_steps"] == 20
    rows = result["per_replica"]
    assert [row["success"] for row in rows] == [True, True]  # success: exact at some evaluation
    assert [row["exact_at_end"] for row in rows] == [True, False]  # replica 1 lost it again by step 20
    assert result["successes"] == 2


def test_stop_when_solved_runs_to_the_end_while_a_replica_never_solves(tmp_path):
    overrides = ["trainer.max_steps=60", "trainer.eval_every_n_steps=10", "trainer.stop_when_solved=true"]
    result = run_job(scheduled_config(SCHEDULE, overrides), tmp_path)
    assert result["trained_steps"] == 60 and result["stopped_at_step"] is None
    assert [row["success"] for row in result["per_replica"]] == [True, True, False]


def test_stop_when_solved_needs_the_evaluation():
    with pytest.raises(ConfigError) as error:
        check(["trainer.stop_when_solved=true", "trainer.eval_every_n_steps=0"])
    assert str(error.value) == ("trainer.stop_when_solved=true: needs the held-out evaluation during training; "
                                "trainer.eval_every_n_steps=0 must be >= 1")
    with pytest.raises(ConfigError, match="trainer.eval_every_n_steps=-1: must be an integer >= 0"):
        check(["trainer.eval_every_n_steps=-1"])
    with pytest.raises(ConfigError, match="trainer.stop_when_solved='yes': must be"):
        check(["trainer.stop_when_solved=yes"])


def test_a_job_killed_after_a_checkpoint_resumes_to_the_same_record(tmp_path, monkeypatch):
    from overparam.jobs import job, progress
    from overparam.jobs import trainer as training

    overrides = ["trainer.max_steps=60", "trainer.eval_every_n_steps=10", "trainer.checkpoint_every_n_steps=20"]
    whole = run_job(scheduled_config(SCHEDULE, overrides), tmp_path / "whole")

    class CrashLater(progress.ProgressLog):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 45:
                raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "ProgressLog", CrashLater)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job.run(scheduled_config(SCHEDULE, overrides), tmp_path / "resumed")
    monkeypatch.undo()
    resumed = job.run(scheduled_config(SCHEDULE, overrides), tmp_path / "resumed")
    assert resumed["resumed_from_step"] == 40
    assert resumed["evaluated_steps"] == whole["evaluated_steps"]
    assert resumed["per_replica"] == whole["per_replica"]
    assert [row["solved_at_step"] for row in resumed["per_replica"]] == [20, 10, None]  # from before the crash


def test_a_stopped_job_killed_after_a_checkpoint_stops_at_the_same_step(tmp_path, monkeypatch):
    from overparam.jobs import job, progress
    from overparam.jobs import trainer as training

    schedule = [[[50, 1000]], [[10, 10]]]  # replica 1 solved before the checkpoint at 20, replica 0 after it
    overrides = ["trainer.max_steps=100", "trainer.eval_every_n_steps=10", "trainer.checkpoint_every_n_steps=20",
                 "trainer.stop_when_solved=true"]

    class CrashLater(progress.ProgressLog):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 35:
                raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "ProgressLog", CrashLater)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job.run(scheduled_config(schedule, overrides), tmp_path)
    monkeypatch.undo()
    resumed = job.run(scheduled_config(schedule, overrides), tmp_path)
    assert resumed["resumed_from_step"] == 20 and resumed["stopped_at_step"] == 50
    assert [row["success"] for row in resumed["per_replica"]] == [True, True]  # replica 1's step 10 survived


# A real Life job whose replicas become exact at different steps (seeded: replicas 0-3 exact from steps 60, 40, 70, 50).
LIFE = ["trials=4", "model.m_factor=8", "optim.lr=0.1", "trainer.eval_every_n_steps=10", *TINY]


def test_exact_at_step_b_is_what_the_job_with_max_steps_b_reports(tmp_path):
    long = run_job(compose([*LIFE, "trainer.max_steps=70"]), tmp_path / "long")
    solved = [row["solved_at_step"] for row in long["per_replica"]]
    assert len(set(solved)) > 2  # the replicas solve at different steps: the budgets below tell them apart
    for budget in (40, 60):
        short = run_job(compose([*LIFE, f"trainer.max_steps={budget}"]), tmp_path / f"b{budget}")
        assert [row["success"] for row in short["per_replica"]] == [
            exact_at(row, long["evaluated_steps"], budget) for row in long["per_replica"]]


def test_the_evaluation_changes_no_replica_s_training(tmp_path):
    evaluated = run_job(compose([*LIFE, "trainer.max_steps=50"]), tmp_path / "on")
    plain = run_job(compose([*LIFE, "trainer.max_steps=50", "trainer.eval_every_n_steps=0"]), tmp_path / "off")
    assert "evaluated_steps" not in plain and "solved_at_step" not in plain["per_replica"][0]
    old_keys = list(plain["per_replica"][0])
    assert [{k: row[k] for k in old_keys} for row in evaluated["per_replica"]] == plain["per_replica"]


def test_stop_when_solved_gives_each_replica_the_outcome_of_its_uninterrupted_run(tmp_path):
    whole = run_job(compose([*LIFE, "trainer.max_steps=120"]), tmp_path / "whole")
    stopped = run_job(compose([*LIFE, "trainer.max_steps=120", "trainer.stop_when_solved=true"]), tmp_path / "stop")
    last_solve = max(row["solved_at_step"] for row in whole["per_replica"])
    assert stopped["stopped_at_step"] == stopped["trained_steps"] == last_solve < 120
    assert [row["solved_at_step"] for row in stopped["per_replica"]] == [
        row["solved_at_step"] for row in whole["per_replica"]]
    assert [row["success"] for row in stopped["per_replica"]] == [
        row["solved_at_step"] is not None for row in whole["per_replica"]]


def test_a_presolved_job_stops_at_its_first_evaluation_every_replica_certified(tmp_path):
    result = run_job(compose(["trials=2", "model.presolve=true", "trainer.stop_when_solved=true",
                              "trainer.eval_every_n_steps=10", "trainer.max_steps=100", *TINY]), tmp_path)
    assert result["stopped_at_step"] == 10 and result["successes"] == 2
    assert [row["solved_at_step"] for row in result["per_replica"]] == [10, 10]
    assert [row["certified"] for row in result["per_replica"]] == [True, True]
    assert result["certified_fraction"] == 1.0


def test_the_evaluation_is_logged_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_job(scheduled_config(SCHEDULE, ["trainer.max_steps=30", "trainer.eval_every_n_steps=10"]), tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    solved = [(e.step, e.value) for e in events.Scalars("eval/solved_fraction")]
    exact = [(e.step, e.value) for e in events.Scalars("eval/exact_fraction")]
    assert solved == [(10, pytest.approx(1 / 3)), (20, pytest.approx(2 / 3)), (30, pytest.approx(2 / 3))]
    assert exact == [(10, pytest.approx(1 / 3)), (20, pytest.approx(1 / 3)), (30, pytest.approx(1 / 3))]
    assert [e.value for e in events.Scalars("eval/board_accuracy_mean")] == pytest.approx([2 / 3, 2 / 3, 2 / 3])


def test_older_configs_without_the_new_trainer_keys_keep_their_identity():
    from overparam.jobs.identity import identity

    earlier = {"seed": 0, "trainer": {"max_steps": 5}}
    now = {"seed": 0, "trainer": {"max_steps": 5, "eval_every_n_steps": 200, "stop_when_solved": False,
                                  "certify": True}}
    assert identity(now) == identity(earlier)
    assert identity({**now, "trainer": {**now["trainer"], "stop_when_solved": True}}) != identity(earlier)
    assert identity({**now, "trainer": {**now["trainer"], "certify": False}}) == identity(earlier)  # run-only


def test_the_module_is_untouched_by_the_evaluation():
    # the callback evaluates through ReplicaModule.evaluate: eval mode inside, training mode restored after
    from overparam.core.build import build_module

    module = build_module(compose(["trials=2", "model.normalize=true", "task.steps=2", *TINY]))
    module.net.train()
    module.setup("fit")
    streams = module.data_generators + module.dropout_generators
    before = [g.get_state() for g in streams]
    module.evaluate()
    assert module.net.training
    assert all(torch.equal(a, g.get_state()) for a, g in zip(before, streams))


def test_the_search_can_run_every_job_with_stop_when_solved():
    from hydra_plugins.overparam_critical_width.critical_width_sweeper import with_stop
    from overparam.config.preflight import jobs_of

    search = ["-m", "hydra/sweeper=critical_width", "hydra.sweeper.high=9", "hydra.sweeper.stop_when_solved=true"]
    jobs = jobs_of(search)
    assert len(jobs) == 2 and all("trainer.stop_when_solved=true" in job for job in jobs)
    assert all("trainer.stop_when_solved=true" not in job for job in jobs_of(search[:-1]))
    assert with_stop(["trainer.stop_when_solved=false"], True) == ["trainer.stop_when_solved=false"]  # the job's own


def test_a_stopped_job_costs_the_steps_it_trained(tmp_path):
    from overparam.search.cost import sweep_cost

    overrides = ["trainer.max_steps=100", "trainer.eval_every_n_steps=10", "trainer.stop_when_solved=true"]
    run_job(scheduled_config([[[20, 1000]], [[10, 10]]], overrides), tmp_path / "job")
    assert sweep_cost(tmp_path)["replica_steps"] == 2 * 20


def test_a_job_the_convergence_stop_ends_is_evaluated_at_its_last_step_and_answers_later_budgets(tmp_path):
    from overparam.report.budget import replica_budgets

    overrides = ["trainer.max_steps=40", "trainer.eval_every_n_steps=4", "trainer.stop_when_loss_change_below=10.0",
                 "trainer.stop_window_steps=5"]
    result = run_job(scheduled_config([[[8, 8]], [[10, 40]]], overrides), tmp_path)
    assert result["stopped_at_step"] == 10 and result["evaluated_steps"] == [4, 8, 10]
    # a job with budget >= 10 would have stopped at step 10 too: it reports what this one reports
    assert [replica_budgets(result, row) for row in result["per_replica"]] == [
        {4: False, 8: True, **{b: False for b in range(12, 41, 4)}},
        {4: False, 8: False, **{b: True for b in range(12, 41, 4)}},
    ]
