"""What a job tells its user: the header line (test density when it differs), the HPARAMS tab opening on the
swept keys with the full config beside them, and a last line naming result.json and the tensorboard command."""

import contextlib
import logging
import shlex

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from helpers import TINY
from overparam.config import compose
from overparam.jobs.hparams import job_hparams, overridden_keys
from overparam.jobs.job import run
from overparam.jobs.results import read_result


def test_overridden_keys_are_config_keys_in_command_line_order():
    overrides = ["experiment=firner", "task.steps=2", "+trainer.x=1", "model.m_factor=5", "hydra.job.chdir=true"]
    assert overridden_keys(overrides) == ["task.steps", "trainer.x", "model.m_factor"]


def test_hparams_are_the_identity_swept_keys_first():
    resolved = {"seed": 0, "trials": 2, "threads": 1, "name": "life", "force": False,
                "task": {"steps": 2, "density": [0.2, 0.8]}, "model": {"m_factor": 3, "head": "sigmoid"},
                "trainer": {"max_steps": 10, "progress": "none"}}
    hparams = job_hparams(resolved, ["model.m_factor", "task.steps"])
    assert list(hparams)[:2] == ["model.m_factor", "task.steps"]
    assert hparams["task.density"] == "[0.2, 0.8]"
    assert not {"threads", "name", "force", "trainer.progress"} & set(hparams)  # run-only keys are no identity


def events(run_dir):
    for path in sorted(run_dir.glob("events.*")):
        yield from EventFileLoader(str(path)).Load()


@contextlib.contextmanager
def said():
    """The lines a job says through `logging` (its header, progress and table), collected in a list."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("overparam"), Collect()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    job_dir = tmp_path_factory.mktemp("job")
    config = compose(["trials=2", "task.density=0.3", "model.m_factor=3", "trainer.max_steps=40", *TINY])
    with said() as lines:
        result = run(config, job_dir, swept_keys=["task.density", "model.m_factor"])
    return job_dir, result, lines


def test_the_header_says_the_test_density_when_it_differs(job):
    _, _, lines = job
    assert lines[0].startswith("life: steps=1 rule=B3/S23 neighborhood=moore m_factor=3")
    assert "tests on density 0.5 (trains on 0.3)" in lines[0]


def test_the_header_and_table_of_another_task_show_its_own_keys_and_metrics(tmp_path):
    """No Life keys where they mean nothing: a jamming job states its points and dimension, and its per-replica
    table has the columns its evaluation gives."""
    from overparam.jobs.job import run

    config = compose(["task=jamming", "model=mlp", "model.hidden=[1,1]", "task.points=20", "task.dimension=3",
                      "trials=2", "trainer.max_steps=20", "trainer.progress=none"])
    with said() as lines:
        run(config, tmp_path / "job")
    assert lines[0].startswith("jamming: points=20 dimension=3 m_factor=")
    table_header = next(line for line in lines if line.startswith("  replica"))
    assert table_header.split() == ["replica", "success", "violated_fraction", "max_deficit", "hinge_loss",
                                    "final_loss", "diverged", "solved_at_step", "exact_at_end"]


def test_the_last_line_names_the_result_and_the_tensorboard_command(job):
    job_dir, result, lines = job
    assert lines[-1] == (f"result: {job_dir / 'result.json'}   curves: tensorboard --logdir "
                         f"{shlex.quote(str(job_dir / 'tensorboard'))}")
    assert read_result(job_dir / "result.json")["successes"] == result["successes"]


def test_hparams_open_on_the_swept_keys_and_the_config_is_in_the_run(job):
    job_dir, _, _ = job
    experiment, texts = None, []
    for event in events(job_dir / "tensorboard"):
        for value in event.summary.value:
            if value.tag == "_hparams_/experiment":
                experiment = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content).experiment
            if value.metadata.plugin_data.plugin_name == "text":
                texts.append(value.tensor.string_val[0].decode())
    # TensorBoard sorts by (not differs, name) and shows the first five
    shown = sorted(experiment.hparam_infos, key=lambda info: (not info.differs, info.name))
    assert [info.name for info in shown[:2]] == ["model.m_factor", "task.density"]
    assert {"task.steps", "model.activation", "seed", "trials"} <= {info.name for info in shown}
    assert any("m_factor: 3" in text for text in texts)
