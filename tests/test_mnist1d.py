"""The MNIST-1D double-descent task: mnist1d's own generator (no download), the cache, label noise, the metrics."""

import random

import numpy as np
import pytest
import torch

from overparam.config import compose
from overparam.config.validate import ConfigError, validate
from overparam.seeds import replica_generator, replica_seeds
from overparam.tasks import mnist1d as task_module
from overparam.tasks.mnist1d import MNIST1DTask, mnist1d_dataset, noisy_labels

SMALL = {"samples": 500, "train_split": 0.8}  # 400 train + 100 test: quick to generate


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mnist1d-cache"))


def test_the_data_is_mnist1ds_own_generation_and_leaves_global_random_state_alone(cache):
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(7)
    random.seed(7)
    data = mnist1d_dataset(seed=3, cache_dir=cache, **SMALL)
    assert np.random.randint(10**9) == np.random.RandomState(7).randint(10**9)  # numpy's global stream untouched
    assert random.random() == random.Random(7).random()
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 500, 0.8, 3
    reference = make_dataset(args)
    np.testing.assert_allclose(data["x"], reference["x"].astype(np.float32))
    np.testing.assert_array_equal(data["y_test"], reference["y_test"])
    assert data["x"].shape == (400, 40) and data["x_test"].shape == (100, 40)


def test_the_cache_is_read_back_without_generating_again(cache, monkeypatch):
    first = mnist1d_dataset(seed=3, cache_dir=cache, **SMALL)
    monkeypatch.setattr(task_module, "generate", lambda *args: pytest.fail("regenerated a cached dataset"))
    second = mnist1d_dataset(seed=3, cache_dir=cache, **SMALL)
    np.testing.assert_array_equal(first["x"], second["x"])


def test_the_default_split_is_4000_train_and_1000_test(cache):
    task = MNIST1DTask(cache_dir=cache)
    assert task.result_extras()["train_size"] == 4000 and task.result_extras()["test_size"] == 1000
    assert task_module.train_size(5000, 0.8) == 4000 and task_module.train_size(505, 0.8) == 400


def test_label_noise_redraws_the_given_fraction_uniformly():
    labels = np.arange(100_000) % 10
    noisy = noisy_labels(labels, 0.15, seed=0)
    # A redraw lands on the true class one time in ten: 15% * 9/10 = 13.5% of the labels end up wrong.
    assert abs((noisy != labels).mean() - 0.135) < 0.005
    counts = np.bincount(noisy[noisy != labels], minlength=10)
    assert counts.min() > 0.9 * counts.mean()
    np.testing.assert_array_equal(noisy, noisy_labels(labels, 0.15, seed=0))
    np.testing.assert_array_equal(noisy_labels(labels, 0.0, seed=0), labels)


def test_errors_of_known_predictors(cache):
    task = MNIST1DTask(cache_dir=cache, **SMALL)
    data = task.arrays

    def oracle(inputs):  # the true class of every signal (the train set has 400, the test set 100)
        labels = data["y_clean"] if inputs.shape[1] == len(data["y_clean"]) else data["y_test"]
        return torch.nn.functional.one_hot(labels, 10).float().expand(inputs.shape[0], -1, -1)

    rows = task.evaluate(oracle, 2, "cpu")
    wrong = task.result_extras()["wrong_label_fraction"]
    assert wrong > 0.05
    assert rows[0]["test_error"] == 0.0 and rows[0]["train_clean_error"] == 0.0
    assert rows[0]["train_error"] == pytest.approx(wrong)  # it disagrees exactly with the noisy labels
    assert rows[0]["success"] is False


def test_batches_walk_each_replicas_own_epoch_and_the_loss_is_cross_entropy(cache):
    task = MNIST1DTask(cache_dir=cache, batch_size=100, **SMALL)
    generators = [replica_generator(s, "data") for s in replica_seeds(0, 2)]
    seen = [task.train_batch(generators, "cpu") for _ in range(4)]  # one epoch: 400 // 100 batches
    inputs = torch.cat([x for x, _ in seen], dim=1)
    assert inputs.shape == (2, 400, 40)
    for k in range(2):  # every training signal exactly once per replica per epoch
        assert torch.equal(inputs[k].sort(0).values, task.arrays["x"].sort(0).values)
    logits = torch.randn(2, 100, 10)
    targets = seen[0][1]
    expected = torch.stack([torch.nn.functional.cross_entropy(logits[k], targets[k]) for k in range(2)])
    torch.testing.assert_close(task.replica_losses(logits, targets, "values"), expected)


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.label_noise=1.5", "task.label_noise=1.5: must be a number >= 0.0 and <= 1.0"),
        ("task.train_split=1", "task.train_split=1: must be a number > 0.0 and < 1.0"),
        ("task.batch_size=4001", "task.batch_size=4001: must be at most the 4000 training examples"),
    ],
)
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate(compose(["task=mnist1d", "model=mlp", override]))


def test_the_presets_validate():
    for preset in ("double_descent", "double_descent_full"):
        validate(compose([f"experiment={preset}"]))


def test_a_small_job_runs_and_a_wide_net_fits_the_noisy_labels(cache, tmp_path):
    from overparam.jobs.job import run

    result = run(compose(["task=mnist1d", "model=mlp", "model.hidden=[1,1]", "model.m_factor=64", "optim=sgd",
                          "trials=2", f"task.cache_dir={cache}", "task.samples=300", "task.batch_size=30",
                          "trainer.max_steps=1500", "optim.lr=0.05", "trainer.progress=none"]), tmp_path)
    assert result["status"] == "ok" and result["train_size"] == 240
    assert result["train_error_mean"] == 0.0 and result["success_rate"] == 1.0  # 240 noisy labels memorised
    assert result["test_error_mean"] > 0.1
