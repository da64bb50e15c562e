"""MNIST-1D with noisy training labels: the double-descent task (Greydanus & Kobak, "Scaling down deep learning
with MNIST-1D", ICML 2024; Kobak's double-descent notebook in github.com/greydanus/mnist1d).

The data is generated here with the `mnist1d` package's own generator (`mnist1d.data.make_dataset`, never its
downloader), 40-sample signals of 10 classes, split 4,000 train / 1,000 test by default, cached on disk keyed by
its parameters. Then, as in Kobak's notebook, each training label is replaced with probability `label_noise` by a
label drawn uniformly from the 10 classes (it may land on the true one); the test labels stay clean. Every replica
trains on the same noisy set, each walking its own shuffle of it epoch after epoch (`EpochSampler`), with
cross-entropy; a net is anything mapping `[K, B, 40]` signals to `[K, B, 10]` logits (`model=mlp`).

A replica *succeeds* when it fits its noisy training set: every training example, noisy label included, is
classified as labelled (train error 0). The success curve is then the interpolation curve, and the report's mark at
the first width where every replica succeeds is the interpolation threshold, where the test error peaks.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from overparam.atomic import atomic_write_bytes
from overparam.config import Check, fail, integer, is_int, number, optional, text
from overparam.tasks.base import Task
from overparam.tasks.sampling import EpochSampler

CLASSES = 10
SIGNAL_LENGTH = 40  # mnist1d's final_seq_length
DATASET_VERSION = 1  # bump when the cached arrays' meaning changes


def dataset_path(samples: int, train_split: float, seed: int, cache_dir: str | Path | None = None) -> Path:
    import mnist1d

    directory = Path(cache_dir or os.environ.get("OVERPARAM_CACHE", "~/.cache/overparam")).expanduser()
    version = getattr(mnist1d, "__version__", "") or _installed_version()
    key = f"v{DATASET_VERSION}-s{samples}-split{train_split!r}-seed{seed}-mnist1d{version}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return directory / "mnist1d" / f"mnist1d_s{samples}_seed{seed}_{digest}.npz"


def _installed_version() -> str:
    from importlib.metadata import version

    return version("mnist1d")


def generate(samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    """mnist1d's own generator with its default transforms; only the sample count, split and seed are ours.
    It seeds numpy's and Python's global generators, so their states are put back afterwards."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = samples, train_split, seed
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {
        "x": data["x"].astype(np.float32), "y": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int64),
    }


def mnist1d_dataset(samples: int, train_split: float, seed: int, cache_dir: str | Path | None = None) -> dict:
    """`{"x", "y", "x_test", "y_test"}` arrays, generated once and cached (atomic write, like the QUBO graphs)."""
    path = dataset_path(samples, train_split, seed, cache_dir)
    try:
        with np.load(path, allow_pickle=False) as stored:
            data = {key: stored[key] for key in ("x", "y", "x_test", "y_test")}
        if len(data["x"]) + len(data["x_test"]) == samples - samples % CLASSES:
            return data
    except (OSError, ValueError, KeyError):
        pass
    data = generate(samples, train_split, seed)
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    atomic_write_bytes(path, buffer.getvalue())
    return data


def train_size(samples: int, train_split: float) -> int:
    """mnist1d makes samples // 10 signals per class and trains on the first int(n * train_split)."""
    return int((samples // CLASSES) * CLASSES * train_split)


def noisy_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Each label replaced with probability `fraction` by a uniform draw from the 10 classes (Kobak's notebook)."""
    rng = np.random.default_rng(seed)
    replaced = rng.random(len(labels)) < fraction
    noisy = labels.copy()
    noisy[replaced] = rng.integers(0, CLASSES, int(replaced.sum()))
    return noisy


@dataclass
class MNIST1DTask(Task):
    """Classify MNIST-1D signals with a fraction of the training labels replaced at random."""

    NET_INPUTS: ClassVar[tuple[str, ...]] = ("inputs", "outputs")
    CHECKS: ClassVar[dict[str, Check]] = {
        "samples": integer(2 * CLASSES),
        "train_split": number(0.0, exclusive_minimum=True, below=1.0),
        "data_seed": integer(0),
        "label_noise": number(0.0, 1.0),
        "noise_seed": integer(0),
        "batch_size": integer(1),
        "cache_dir": optional(text),
    }
    CHARTS: ClassVar[dict[str, list[str]]] = {
        "test error vs width (95% t-interval over replicas)": ["test_error_mean", "test_error_ci_low",
                                                               "test_error_ci_high"],
        "train error on the noisy labels vs width (95% t-interval)": ["train_error_mean", "train_error_ci_low",
                                                                      "train_error_ci_high"],
    }

    samples: int = 5000  # mnist1d's num_samples: 4,000 train + 1,000 test at train_split 0.8
    train_split: float = 0.8
    data_seed: int = 42  # mnist1d's default seed (its frozen dataset's)
    label_noise: float = 0.15  # probability that a training label is redrawn uniformly from the 10 classes
    noise_seed: int = 0
    batch_size: int = 100  # per replica per step; an epoch is train_size // batch_size steps
    cache_dir: str | None = None  # dataset cache; null: $OVERPARAM_CACHE or ~/.cache/overparam
    name: str = "mnist1d"
    _on_device: dict = field(default_factory=dict, repr=False, init=False)

    @classmethod
    def check(cls, task: dict, model: dict) -> None:
        train = train_size(task["samples"], task["train_split"])
        if is_int(task["batch_size"]) and not 1 <= task["batch_size"] <= train:
            fail("task.batch_size", task["batch_size"], f"must be at most the {train} training examples "
                 f"(task.samples={task['samples']}, task.train_split={task['train_split']})")

    def __post_init__(self):
        data = mnist1d_dataset(self.samples, self.train_split, self.data_seed, self.cache_dir)
        if not 1 <= self.batch_size <= len(data["y"]):
            raise ValueError(f"task.batch_size={self.batch_size} must be at most the {len(data['y'])} training "
                             "examples")
        self.arrays = {
            "x": torch.from_numpy(data["x"]), "y": torch.from_numpy(noisy_labels(data["y"], self.label_noise,
                                                                                   self.noise_seed)),
            "y_clean": torch.from_numpy(data["y"]),
            "x_test": torch.from_numpy(data["x_test"]), "y_test": torch.from_numpy(data["y_test"]),
        }
        self.sampler = EpochSampler(len(data["y"]), self.batch_size)

    def grid_point(self) -> dict:
        return {"label_noise": self.label_noise, "train_size": len(self.arrays["y"])}

    def net_inputs(self) -> dict:
        return {"inputs": SIGNAL_LENGTH, "outputs": CLASSES}

    def result_extras(self) -> dict:
        """How many training labels the noise actually changed (a redraw can land on the true class)."""
        wrong = (self.arrays["y"] != self.arrays["y_clean"]).float().mean().item()
        return {"train_size": len(self.arrays["y"]), "test_size": len(self.arrays["y_test"]),
                "wrong_label_fraction": wrong}

    def _on(self, device) -> dict[str, torch.Tensor]:
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = {name: array.to(device) for name, array in self.arrays.items()}
        return self._on_device[key]

    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K, B, 40]` signals and `[K, B]` noisy labels, replica k's from its own shuffle of the training set."""
        data = self._on(device)
        indices = self.sampler.next_indices(generators, device)
        # Stored as float32; the step's default dtype is the net's (float64 under trainer.precision=64-true).
        return data["x"][indices].to(torch.get_default_dtype()), data["y"][indices]

    def fixed_batch(self, replica: int, seed: int, examples: int, net=None):
        """`examples` training signals with their noisy labels (as trained on), drawn without replacement from
        `seed`; every replica trains on the same set."""
        order = torch.randperm(len(self.arrays["y"]), generator=torch.Generator().manual_seed(seed))
        chosen = order[: min(examples, len(order))]
        return self.arrays["x"][chosen].unsqueeze(0), self.arrays["y"][chosen].unsqueeze(0), None

    @staticmethod
    def replica_losses(outputs: torch.Tensor, targets: torch.Tensor, output_kind: str) -> torch.Tensor:
        """Mean cross-entropy of each replica's batch (torch's CrossEntropyLoss), `[K]`."""
        losses = torch.nn.functional.cross_entropy(outputs.flatten(0, 1), targets.flatten(), reduction="none")
        return losses.view(targets.shape).mean(1)

    def state_dict(self) -> dict:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])

    @torch.no_grad()
    def evaluate(self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device) -> list[dict]:
        """Per replica: train_error (against the noisy labels it trained on), train_clean_error (against the true
        ones), test_error, test_loss (cross-entropy); success = train_error == 0."""
        data = self._on(device)

        def logits(inputs):
            return predict(inputs.expand(replicas, -1, -1).to(torch.get_default_dtype()))

        train, test = logits(data["x"]), logits(data["x_test"])
        train_predicted, test_predicted = train.argmax(-1), test.argmax(-1)
        train_error = (train_predicted != data["y"]).double().mean(1)
        train_clean_error = (train_predicted != data["y_clean"]).double().mean(1)
        test_error = (test_predicted != data["y_test"]).double().mean(1)
        test_loss = self.replica_losses(test, data["y_test"].expand(replicas, -1), "logits")
        return [
            {
                "success": bool(train_error[k] == 0),
                "train_error": train_error[k].item(),
                "train_clean_error": train_clean_error[k].item(),
                "test_error": test_error[k].item(),
                "test_loss": test_loss[k].item(),
            }
            for k in range(replicas)
        ]

