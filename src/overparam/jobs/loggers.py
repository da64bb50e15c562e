"""The job's Lightning loggers, built from the `logger` config group (`hydra.utils.instantiate`): TensorBoard by
default, Lightning's CSVLogger built in, any Lightning logger by its `_target_`; each writes under the job folder.
What a job logs at its end (its identity's settings as hyperparameters, its final numbers, its config) goes to every
logger; TensorBoard gets its HPARAMS tab ordered (`hparams.log_hparams`) and the config as text."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from overparam.jobs.hparams import config_text, job_hparams, log_hparams


def build_loggers(logger_config, job_dir: str | Path) -> list:
    """One Lightning logger per part of the `logger` group, saving under `job_dir` (an absent group: none)."""
    from hydra.utils import instantiate

    loggers = []
    for node in (logger_config or {}).values():
        extra = {"save_dir": str(job_dir)} if "save_dir" not in node or node.get("save_dir") is None else {}
        loggers.append(instantiate(node, **extra))
    return loggers


def default_loggers(job_dir: str | Path) -> list:
    """The default group's logger (for code that builds a Trainer without a job config: the benchmark)."""
    return [pl.loggers.TensorBoardLogger(save_dir=str(job_dir), name="tensorboard", version="",
                                         default_hp_metric=False)]


def log_job_end(loggers: list, resolved: dict, summary: dict, swept_keys=()) -> None:
    """The job's settings and final numbers to every logger, then close them."""
    hparams = job_hparams(resolved, swept_keys)
    metrics = {f"final/{key}": float(value) for key, value in summary.items()
               if isinstance(value, (int, float)) and value is not None}
    for logger in loggers:
        if isinstance(logger, pl.loggers.TensorBoardLogger):
            log_hparams(logger, hparams, metrics, swept_keys)
            logger.experiment.add_text("config", config_text(resolved))
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(metrics, step=0)
        logger.finalize("success")
