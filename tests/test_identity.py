"""A job's identity (overparam.jobs.identity): its config's difference from the defaults, run-only keys left out,
classes by name; results written before a key existed, or by 8885d7f's module layout, still count as done."""

import copy
import json

from omegaconf import OmegaConf

from helpers import ROOT
from overparam.config import compose
from overparam.jobs.identity import curve_identity, identity, is_done, result_identity, run_only_keys, settings

OLD_RESULT = ROOT / "tests" / "data" / "result_8885d7f.json"  # written by main at 8885d7f (classes since moved)
OLD_OVERRIDES = ["model.m_factor=1", "task.steps=2", "trainer.max_steps=300", "trials=4", "trainer.progress=none"]


def resolved(overrides) -> dict:
    return OmegaConf.to_container(compose(overrides), resolve=True)


def test_a_result_written_by_8885d7f_counts_as_done_for_the_same_command():
    result = json.loads(OLD_RESULT.read_text())
    assert result["config"]["model"]["_target_"] == "overparam.nets.life_conv.LifeConvNet"  # a module now gone
    assert is_done(result, resolved(OLD_OVERRIDES), "cpu")
    assert not is_done(result, resolved(OLD_OVERRIDES), "cuda")
    assert not is_done(result, resolved([*OLD_OVERRIDES, "task.density=0.4"]), "cpu")
    assert not is_done(result, resolved([*OLD_OVERRIDES[1:], "model.m_factor=2"]), "cpu")


def test_a_key_added_with_a_default_leaves_earlier_results_done():
    """A result whose config predates a key (here: `task.test_density` and `trainer.stop_window_steps` removed, as
    if written before they existed) is the experiment the current config describes at their defaults."""
    config = resolved(OLD_OVERRIDES)
    earlier = copy.deepcopy(config)
    del earlier["task"]["test_density"], earlier["trainer"]["stop_window_steps"]
    result = {"status": "ok", "stream_device": "cpu", "config": earlier}
    assert is_done(result, config, "cpu")
    assert not is_done(result, {**config, "task": {**config["task"], "test_density": 0.3}}, "cpu")


def test_run_only_keys_are_hydras_folder_exclusions_and_change_no_identity():
    config = resolved(OLD_OVERRIDES)
    assert {"threads", "force", "trainer.progress", "trainer.checkpoint_every_n_steps"} <= set(run_only_keys())
    run_differently = resolved([*OLD_OVERRIDES, "threads=2", "trainer.progress=bar", "trainer.keep_checkpoints=true"])
    assert identity(run_differently) == identity(config)
    assert "threads" not in settings(config) and settings(config)["model.m_factor"] == 1


def test_cpu_and_cuda_replicas_of_one_seed_are_two_curves_for_the_report_and_the_search():
    config = resolved(OLD_OVERRIDES)
    on_cpu = {"status": "ok", "stream_device": "cpu", "config": config}
    on_gpu = {**on_cpu, "stream_device": "cuda"}
    assert result_identity(on_cpu) != result_identity(on_gpu)
    assert curve_identity(config, "cpu") != curve_identity(config, "cuda")
    other_width = resolved([*OLD_OVERRIDES[1:], "model.m_factor=3", "seed=4", "trials=2"])
    assert curve_identity(config, "cpu") == curve_identity(other_width, "cpu")  # width, seed, trials pool
