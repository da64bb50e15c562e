"""A job's identity holds across devices: the same held-out set everywhere, the training streams' device type in
the identity, and a checkpoint that only another device type can resume stops with one line. CPU-only: the other
device is faked where a GPU would be needed."""

import json

import pytest
import torch

from helpers import TINY
from overparam.config import compose
from overparam.jobs import devices
from overparam.jobs.checkpoints import STAMP, CheckpointDeviceMismatch
from overparam.jobs.identity import is_done
from overparam.jobs.job import run
from overparam.jobs.results import RESULT_FILE, read_result, write_result
from overparam.report.pool import load_results, swept_keys
from overparam.tasks.life import LifeTask, parse_rule


def test_the_held_out_set_is_drawn_on_the_cpu_whatever_the_device():
    """A meta tensor has no values: the old `torch.Generator(device=device)` could not even be made there."""
    task = LifeTask(parse_rule("B3/S23", "moore"), test_boards=20, test_size=5)
    boards, _ = task.test_set(torch.device("meta"))
    assert boards.device.type == "meta" and boards.shape == (20, 5, 5)
    cpu_boards, _ = task.test_set("cpu")
    expected = (torch.rand(20, 5, 5, generator=torch.Generator().manual_seed(task.test_seed)) < 0.5).float()
    assert torch.equal(cpu_boards, expected)


def test_the_stream_device_type_follows_the_accelerator(monkeypatch):
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    assert [devices.stream_device_type(a) for a in ("auto", "cpu", "gpu")] == ["cpu", "cpu", "cuda"]
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    assert [devices.stream_device_type(a) for a in ("auto", "cpu", "gpu")] == ["cuda", "cpu", "cuda"]


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    job_dir = tmp_path_factory.mktemp("job")
    config = compose(["trials=2", "trainer.keep_checkpoints=true", "trainer.checkpoint_every_n_steps=20",
                      "trainer.max_steps=40", *TINY])
    result = run(config, job_dir)
    return config, job_dir, result


def test_a_cuda_result_is_neither_skipped_for_nor_merged_with_a_cpu_one(finished_job, tmp_path, monkeypatch):
    config, job_dir, result = finished_job
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(config, resolve=True)
    assert result["stream_device"] == "cpu"
    assert is_done(result, resolved, "cpu") and not is_done(result, resolved, "cuda")
    # the same job as a GPU machine would have written it, copied next to the CPU one
    write_result(tmp_path / "gpu", {**{k: v for k, v in result.items() if k != "schema"}, "stream_device": "cuda",
                                    "device": "cuda:0"})
    write_result(tmp_path / "cpu", {k: v for k, v in result.items() if k != "schema"})
    loaded = load_results([tmp_path])
    assert len(loaded) == 2 and "stream_device" in swept_keys(loaded)  # two curves, not one point counted once
    # a job that would draw its streams on CUDA does not take the CPU result as its own
    monkeypatch.setattr(devices, "stream_device_type", lambda accelerator: "cuda")
    assert not is_done(read_result(job_dir / RESULT_FILE), resolved, devices.stream_device_type("auto"))


def test_a_checkpoint_from_another_device_type_stops_with_one_line(finished_job):
    config, job_dir, _ = finished_job
    (job_dir / RESULT_FILE).unlink()  # killed after its checkpoint, as far as the next launch can tell
    stamp_path = job_dir / "checkpoints" / STAMP
    stamp = json.loads(stamp_path.read_text())
    assert stamp["stream_device"] == "cpu"
    stamp_path.write_text(json.dumps({**stamp, "stream_device": "cuda"}))  # written by a job on a GPU
    with pytest.raises(CheckpointDeviceMismatch) as error:
        run(config, job_dir)
    message = str(error.value)
    assert "\n" not in message and "drawn on cuda" in message and "on cpu" in message and "force=true" in message
    assert read_result(job_dir / RESULT_FILE)["status"] == "failed"
    config.force = True  # starts over on the CPU
    assert run(config, job_dir)["status"] == "ok"
