"""Build a job's parts from its config and the Lightning Trainer that trains them: one builder for the job and
the benchmark, so the benchmark times exactly what a job runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from .build import build_net, build_optimizer, build_task
from .checkpoints import AtomicCheckpointIO
from .convergence import stop_callbacks
from .module import ReplicaModule
from .progress import ProgressLog
from .seeds import replica_seeds

# ReplicaModule writes its optimization step out (module.LeanStep); Lightning then warns that a checkpoint holds
# the state after the step. So it does in automatic mode too: checkpoints are taken at the end of a batch, and a
# resumed job ends where an uninterrupted one ends (tests/test_reliability.py, test_trainer_options.py).
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")

DEFAULT_PRECISION = "32-true"


def build_module(config) -> ReplicaModule:
    """The task, its K replicas (seeded from `seed` and `trials`) and their optimizer, in the LightningModule."""
    task = build_task(config.task)
    seeds = replica_seeds(config.seed, config.trials)
    net = build_net(config.model, task, seeds)
    return ReplicaModule(task, net, seeds, build_optimizer(config.optim), log_every=config.trainer.log_every_n_steps)


def build_hand_driven(config, device="cpu") -> tuple[ReplicaModule, torch.optim.Optimizer]:
    """The module and its optimizer for a loop driven by hand, outside a Trainer (benchmarks, the step breakdown,
    the CUDA-graph step): on `device`, its data and dropout generators made as `fit` would make them."""
    module = build_module(config).to(device)
    module.setup("fit")
    return module, module.configure_optimizers()


def build_trainer(trainer_config, device: torch.device, log_dir: str | Path,
                  checkpoint_dir: str | Path | None = None, callbacks: list[pl.Callback] = ()) -> pl.Trainer:
    """The Trainer for `trainer_config` on `device`: TensorBoard logs in `log_dir/tensorboard`, the periodic
    progress lines, and (with `checkpoint_dir` and `checkpoint_every_n_steps` > 0) atomic checkpoints."""
    logger = pl.loggers.TensorBoardLogger(save_dir=str(log_dir), name="tensorboard", version="",
                                          default_hp_metric=False)
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
        logger=logger,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=bool(every),
        enable_progress_bar=trainer_config.progress == "bar",
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=trainer_config.log_every_n_steps,
        deterministic=False,
    )
