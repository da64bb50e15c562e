"""The Lightning Trainer that trains a job's module: one builder for the job and the benchmark, so the benchmark
times exactly what a job runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from overparam.core.convergence import stop_callbacks
from overparam.jobs.checkpoints import AtomicCheckpointIO
from overparam.jobs.loggers import default_loggers
from overparam.jobs.progress import ProgressLog

# ReplicaModule writes its optimization step out (core.step.replica_step); Lightning then warns that a checkpoint holds
# the state after the step. So it does in automatic mode too: checkpoints are taken at the end of a batch, and a
# resumed job ends where an uninterrupted one ends (tests/test_reliability.py, test_trainer_options.py).
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")

DEFAULT_PRECISION = "32-true"


def build_trainer(trainer_config, device: torch.device, log_dir: str | Path,
                  checkpoint_dir: str | Path | None = None, callbacks: list[pl.Callback] = (),
                  loggers: list | None = None) -> pl.Trainer:
    """The Trainer for `trainer_config` on `device`: the job's loggers (`jobs.loggers`; by default TensorBoard in
    `log_dir/tensorboard`), the periodic progress lines, and (with `checkpoint_dir` and `checkpoint_every_n_steps` >
    0) atomic checkpoints."""
    loggers = default_loggers(log_dir) if loggers is None else loggers
    every = trainer_config.checkpoint_every_n_steps if checkpoint_dir is not None else 0
    all_callbacks: list[pl.Callback] = [ProgressLog(trainer_config.max_steps, trainer_config.progress),
                                        *stop_callbacks(trainer_config), *callbacks]
    if every:
        all_callbacks.append(
            pl.callbacks.ModelCheckpoint(dirpath=checkpoint_dir, every_n_train_steps=every, save_last=True,
                                         save_top_k=0)
        )
    return pl.Trainer(
        max_steps=trainer_config.max_steps,
        precision=trainer_config.get("precision", DEFAULT_PRECISION),  # 64-true: float64 parameters and step data
        accelerator=device.type,
        devices=[device.index or 0] if device.type == "cuda" else 1,
        logger=loggers or False,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=bool(every),
        enable_progress_bar=trainer_config.progress == "bar",
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=trainer_config.log_every_n_steps,
        deterministic=False,
    )
