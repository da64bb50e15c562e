"""Bad configs stop before any work; results are deterministic; a SIGKILLed sweep loses nothing."""

import os
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import TINY, popen_py, run_py
from overparam.config import compose
from overparam.config.preflight import check
from overparam.config.validate import ConfigError

BAD_INPUTS = [
    ("model.m_factor=0", "model.m_factor=0: must be an integer >= 1"),
    ("model.m_factor=2.5", "model.m_factor=2.5: must be an integer"),
    ("task.steps=0", "task.steps=0: must be an integer >= 1"),
    ("model.d_factor=0.3", "model.d_factor=0.3: gives floor(1 * d_factor) = 0 blocks"),
    ("model.activation=tanhh", "model.activation='tanhh': must be one of relu"),
    ("task.neighborhood=hex", "task.neighborhood='hex': must be one of moore, von_neumann"),
    ("task.boundary=open", "task.boundary='open': must be one of dead, wrap"),
    ("task.rule=B9/S23", "task.rule='B9/S23' counts [9] neighbors"),
    ("task.rule=X3/S23", "task.rule='X3/S23' is not of the form B<digits>/S<digits>"),
    ("task.train_size=2", "task.train_size=2: must be an integer >= 3"),
    ("task.test_size=1", "task.test_size=1: must be an integer >= 3"),
    ("task.density=1.5", "task.density=1.5: must be a probability"),
    ("task.density=[0.6,0.2]", "task.density=[0.6, 0.2]: must be a probability"),
    ("trials=0", "trials=0: must be an integer >= 1"),
    ("model.m_factr=3", "model.m_factr is not a config key (did you mean model.m_factor?)"),
    ("+trainer.max_step=3", "trainer.max_step is not a config key (did you mean trainer.max_steps?)"),
    ("hydra/launcher=nope", "hydra/launcher=nope: no such option; must be one of basic"),
    ("model.normalize=true", None),  # valid: the default head is a sigmoid
    (["model.normalize=true", "model.head=clamp"],
     "model.head='clamp': Firner's --normalize forces a sigmoid head: use sigmoid or sigmoid_bceloss"),
    ("task.train_examples=0", "task.train_examples=0: must be an integer >= 1"),
    ("task.train_examples=100", "task.train_examples=100: must be >= task.batch_size (128)"),
    ("model.presolve=true", None),  # valid: B3/S23 needs one unit per block
    ("task.rule=B36/S23", None),
]


@pytest.mark.parametrize("override, message", BAD_INPUTS)
def test_each_bad_input_gives_one_clear_line(override, message):
    overrides = override if isinstance(override, list) else [override]
    if message is None:
        check(overrides)
        return
    with pytest.raises(ConfigError) as error:
        check(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_job_of_a_multirun_is_checked_before_the_first_starts(tmp_path):
    started = time.perf_counter()
    completed = run_py("-m", "model.m_factor=1,2,0", "trainer.max_steps=40", *TINY, f"hydra.sweep.dir={tmp_path}",
                       check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip() == "config error: model.m_factor=0: must be an integer >= 1"
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the first two jobs
    assert time.perf_counter() - started < 60  # generous: the bound that matters is "before training"


def test_the_preset_grid_is_checked_too():
    with pytest.raises(ConfigError, match="model.activation='bogus'"):
        check(["-m", "experiment=firner_grid", "model.activation=bogus"])
    assert check(["-m", "experiment=firner_grid"]) == 18  # steps 1-3 x m 1, 5, 10, 20, 30, 40 (his posts' script)
    assert check(["-m", "experiment=firner_grid", "task.steps=1"]) == 6
    assert check(["-m", "experiment=firner_grid_nonorm"]) == 6  # steps 2, 3 x m 50, 75, 100, without --normalize


def test_same_config_and_seed_give_the_same_metrics(tmp_path):
    from overparam.jobs.job import run

    config = compose(["trials=3", "model.m_factor=2", "task.steps=2", "trainer.max_steps=40", *TINY])
    first = run(config, tmp_path / "a")
    second = run(config, tmp_path / "b")
    timings = ("wall_seconds", "threads", "started_at", "finished_at", "eval_seconds", "certify_seconds")
    strip = lambda r: {k: v for k, v in r.items() if k not in timings}  # noqa: E731
    assert strip(first) == strip(second)
    assert first["per_replica"] == second["per_replica"]


KILL_GRID = ["-m", "model.m_factor=1,2,3", "trials=2", "trainer.max_steps=120", "task.batch_size=16",
             "task.test_boards=50", "trainer.progress=none", "trainer.checkpoint_every_n_steps=15"]


def wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("whole")
    run_py(*KILL_GRID, f"hydra.sweep.dir={directory}")
    return (directory / "summary.csv").read_text()


@pytest.mark.parametrize(
    "kill_point",
    [
        # all three under -m slow (about a minute each on 2 cores); in the default suite a crash and resume are
        # tested in-process (test_time_to_solution.py, test_dropout.py)
        pytest.param("first checkpoint", marks=pytest.mark.slow),  # mid-job, after a checkpoint: the rerun resumes
        pytest.param("first result", marks=pytest.mark.slow),  # between jobs
        pytest.param("second job started", marks=pytest.mark.slow),  # early in the second job
    ],
)
def test_a_sweep_killed_with_sigkill_and_rerun_matches_an_uninterrupted_one(uninterrupted, tmp_path, kill_point):
    conditions = {
        "first checkpoint": lambda: any(tmp_path.glob("*/checkpoints/last.ckpt")),
        "first result": lambda: any(tmp_path.glob("*/result.json")),
        "second job started": lambda: len(list(tmp_path.glob("*/tensorboard"))) >= 2,
    }
    process = popen_py(*KILL_GRID, f"hydra.sweep.dir={tmp_path}")
    try:
        assert wait_for(conditions[kill_point]), f"never reached {kill_point}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "summary.csv").exists()
    completed = run_py(*KILL_GRID, f"hydra.sweep.dir={tmp_path}")
    assert (tmp_path / "summary.csv").read_text() == uninterrupted
    if kill_point == "first result":
        assert "skip " in completed.stdout


FUZZ_KEYS = {
    "model.m_factor": st.one_of(st.integers(-2, 4), st.floats(-1, 4, allow_nan=False), st.just("wide")),
    "task.steps": st.integers(-1, 3),
    "model.d_factor": st.sampled_from([0.0, 0.4, 0.5, 1.0, 1.5, -1.0]),
    "model.activation": st.sampled_from(["relu", "leaky_relu", "elu", "gelu", "prelu", "silu", "tanh", ""]),
    "task.neighborhood": st.sampled_from(["moore", "von_neumann", "hex"]),
    "task.boundary": st.sampled_from(["dead", "wrap", "open"]),
    "task.rule": st.sampled_from(["B3/S23", "B36/S23", "B9/S23", "X3/S23", "B3/S", "B5/S4"]),
    "task.train_size": st.integers(0, 6),
    "task.density": st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.just("[0.1,0.9]"), st.just("[0.9,0.1]")),
    "trials": st.integers(-1, 2),
    "model.presolve": st.booleans(),
    "model.layout": st.sampled_from(["firner", "springer_kenyon", "other"]),
    "model.head": st.sampled_from(["sigmoid", "clamp", "softmax"]),
}


@pytest.mark.slow  # 25 fuzzed jobs; the one-line errors of each bad key are tested above one by one
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional=FUZZ_KEYS))
def test_fuzzed_configs_either_run_cleanly_or_fail_with_the_clean_error(tmp_path, overrides):
    from overparam.jobs.job import run

    arguments = [f"{key}={value}" for key, value in overrides.items()]
    try:
        check(arguments)
    except ConfigError as error:
        assert "\n" not in str(error) and ("=" in str(error) or "not a config key" in str(error))
        return
    config = compose(arguments + ["trainer.max_steps=3", "task.batch_size=4", "task.test_boards=10",
                                  "trainer.progress=none", "task.test_size=4"])
    result = run(config, tmp_path / f"job{abs(hash(tuple(arguments)))}", multirun=True)
    assert result["status"] == "ok", result.get("traceback")


def test_a_job_lightning_stops_early_is_recorded_as_failed_not_done(tmp_path, monkeypatch):
    from overparam.jobs import job, progress
    from overparam.jobs import trainer as training
    from overparam.jobs.results import read_result

    class StopAtOnce(progress.ProgressLog):
        def on_train_batch_end(self, trainer, *args):
            trainer.should_stop = True

    monkeypatch.setattr(training, "ProgressLog", StopAtOnce)
    config = compose(["trials=2", "trainer.max_steps=40", *TINY])
    with pytest.raises(RuntimeError, match="training stopped at step 1 of 40"):
        job.run(config, tmp_path)
    assert read_result(tmp_path / "result.json")["status"] == "failed"
