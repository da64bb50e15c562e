"""One job: build the task and K replicas from a resolved config, train them with Lightning, write result.json.

A job is idempotent: when its folder already holds a complete result of the same config it returns that
result without training; when it holds a checkpoint of the same config it resumes from it.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import time
import traceback
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from overparam.analysis import run_analyses
from overparam.config.validate import validate
from overparam.core.build import build_module
from overparam.core.convergence import settled_at_step
from overparam.jobs import devices
from overparam.jobs.checkpoints import checkpoint_to_resume, forget_checkpoints
from overparam.jobs.hparams import config_text, job_hparams, log_hparams
from overparam.jobs.identity import identity, is_done
from overparam.jobs.results import RESULT_FILE, read_result, write_result
from overparam.jobs.trainer import build_trainer
from overparam.stats import summarize

# Lightning's start-up banner (GPU available..., tips) says nothing a result file does not.
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def run(config: DictConfig, job_dir: str | Path, multirun: bool = False, swept_keys=()) -> dict:
    """Run (or skip, or resume) the job described by `config` in `job_dir`; return its result.
    `swept_keys` (the keys its command line or sweep set) come first in TensorBoard's HPARAMS tab."""
    job_dir = Path(job_dir)
    resolved = OmegaConf.to_container(config, resolve=True)
    validate(resolved)  # run.py checks every job up front; this guards other entry points
    previous = read_result(job_dir / RESULT_FILE)
    if not config.force and is_done(previous, resolved, devices.stream_device_type(config.trainer.accelerator)):
        print(f"skip {job_dir}: result.json is complete for this config (force=true reruns it)")
        return previous
    try:
        with devices.job_device(config) as device:  # holds one GPU for the whole job; released on any exit
            return _train(config, resolved, job_dir, device, swept_keys)
    except Exception as error:  # noqa: BLE001 - a failed job must leave a record and let the sweep go on
        failure = {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
            "config": resolved,
            **devices.describe_job(config),
        }
        path = write_result(job_dir, failure)
        print(f"FAILED {job_dir}: {failure['error']} (recorded in {path})")
        if not multirun:
            raise
        return failure


def _train(config: DictConfig, resolved: dict, job_dir: Path, device, swept_keys=()) -> dict:
    started, started_at = time.perf_counter(), time.time()
    module = build_module(config)
    task, net = module.task, module.net
    print(f"{task.name}: {_where(task.grid_point())} m_factor={net.m_factor} params/replica={net.params_per_replica()}"
          f"  {config.trials} replicas x {config.trainer.max_steps} steps on {device}"
          + "".join(f"; {note}" for note in task.notes()), flush=True)

    checkpoint_dir = job_dir / "checkpoints"
    resume_from = checkpoint_to_resume(checkpoint_dir, identity(resolved), device.type, start_over=config.force)
    if resume_from is None:
        # A fresh start: curves of an earlier, killed attempt would overlap the new ones in TensorBoard.
        shutil.rmtree(job_dir / "tensorboard", ignore_errors=True)
    # Read now: checkpoints written during this run replace last.ckpt.
    resumed_from_step = _checkpoint_step(resume_from)
    trainer = build_trainer(config.trainer, device, job_dir, checkpoint_dir)
    trainer.fit(module, train_dataloaders=range(config.trainer.max_steps), ckpt_path=resume_from)
    settled_at = settled_at_step(trainer)  # a convergence stop (loss settled, every replica fitted) is a finish
    if trainer.global_step != config.trainer.max_steps and settled_at is None:
        # Lightning can return early (a callback asking to stop, an interrupted loop): never record that as done.
        raise RuntimeError(f"training stopped at step {trainer.global_step} of {config.trainer.max_steps}")

    with trainer.strategy.precision_plugin.forward_context():  # evaluate in training's dtype (64-true: float64)
        per_replica = module.evaluate()
    columns = [key for key in per_replica[0] if key != "seed"]  # the task's own per-replica metrics, for the table
    analysis_rows, analysis_summary = run_analyses(config, task, net, module.replica_seeds, per_replica, job_dir)
    for row, extra in zip(per_replica, analysis_rows):
        row.update(extra)
    charts = {**task.CHARTS, **analysis_summary.pop("analysis_charts", {})}
    summary = summarize(per_replica)
    extras = task.result_extras()
    result = {
        "status": "ok",
        "task": task.name,
        "m_factor": net.m_factor,
        "activation": net.activation,
        **task.grid_point(),
        **net.grid_point(),
        "params_per_replica": net.params_per_replica(),
        **summary,
        **extras,
        "extra_keys": list(extras),
        "charts": charts,
        **analysis_summary,
        "per_replica": per_replica,
        "trained_steps": trainer.global_step,
        **({"stopped_at_step": settled_at} if config.trainer.get("stop_when_loss_change_below")
           or config.trainer.get("stop_when_fitted") else {}),
        "resumed_from_step": resumed_from_step,
        "wall_seconds": time.perf_counter() - started,
        "started_at": started_at,
        "finished_at": time.time(),
        **devices.describe_job(config, device),
        "stream_device": device.type,  # part of what the job computed (identity.result_identity)
        "config": resolved,
    }
    log_hparams(trainer.logger, job_hparams(resolved, swept_keys),
                {f"final/{k}": v for k, v in _scalars(summary).items()}, swept_keys)
    trainer.logger.experiment.add_text("config", config_text(resolved))
    trainer.logger.finalize("success")
    path = write_result(job_dir, result)
    if not config.trainer.keep_checkpoints:
        forget_checkpoints(checkpoint_dir)
    print_table(result, task.grid_point(), columns)
    print(f"result: {path}   curves: tensorboard --logdir {shlex.quote(str(job_dir / 'tensorboard'))}", flush=True)
    return result


def _checkpoint_step(path: str | None) -> int | None:
    if path is None:
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _scalars(summary: dict) -> dict:
    return {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and v is not None}


def _where(grid_point: dict) -> str:
    """The task's place on its curve, as the task states it (`steps=1 rule=B3/S23 neighborhood=moore`)."""
    return " ".join(f"{key}={value}" for key, value in grid_point.items())


def print_table(result: dict, grid_point: dict, columns: list[str]) -> None:
    """The job's line and one row per replica, with the columns the task's evaluation gave."""
    low, high = result["success_ci_low"], result["success_ci_high"]
    print(
        f"{result['task']}: {_where(grid_point)} m_factor={result['m_factor']} "
        f"params/replica={result['params_per_replica']}  "
        f"success {result['successes']}/{result['trials']} = {result['success_rate']:.2f} "
        f"(95% CI {low:.2f}-{high:.2f})  {result['wall_seconds']:.1f}s on {result['device']}"
    )
    keys = [k for k in columns if k in result["per_replica"][0]]
    width = max([14, *(len(k) for k in keys)])
    print("  replica  " + "  ".join(f"{k:>{width}}" for k in keys))
    for index, row in enumerate(result["per_replica"]):
        cells = [f"{row[k]:>{width}.4f}" if isinstance(row[k], float) else f"{str(row[k]):>{width}}" for k in keys]
        print(f"  {index:>7}  " + "  ".join(cells))

