"""One job: build the task and K replicas from a resolved config, train them with Lightning, write result.json.

A job is idempotent: when its folder already holds a complete result of the same experiment (`identity`) it returns
that result without training; when it holds a checkpoint of the same experiment it resumes from it. What it says
goes through `logging` (its header, progress lines and result table also land in Hydra's per-job log file).
"""

from __future__ import annotations

import logging
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
from overparam.core.convergence import finished_early_at
from overparam.core.evaluation import held_out_evaluation
from overparam.jobs import devices
from overparam.jobs.announce import closing_line, header, result_table
from overparam.jobs.checkpoints import checkpoint_to_resume, forget_checkpoints
from overparam.jobs.identity import identity, is_done
from overparam.jobs.loggers import build_loggers, log_job_end
from overparam.jobs.logs import log
from overparam.jobs.results import RESULT_FILE, read_result, write_result
from overparam.jobs.trainer import build_trainer
from overparam.stats import summarize

# Lightning's start-up banner (GPU available..., tips) says nothing a result file does not (also outside Hydra).
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
        log.info(f"skip {job_dir}: result.json is complete for this config (force=true reruns it)")
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
        log.error(f"FAILED {job_dir}: {failure['error']} (recorded in {path})")
        if not multirun:
            raise
        return failure


def _train(config: DictConfig, resolved: dict, job_dir: Path, device, swept_keys=()) -> dict:
    started, started_at = time.perf_counter(), time.time()
    module = build_module(config)
    log.info(header(module.task, module.net, config.trials, config.trainer.max_steps, device,
                    _trainer_notes(config.trainer)))
    checkpoint_dir = job_dir / "checkpoints"
    resume_from = checkpoint_to_resume(checkpoint_dir, identity(resolved), device.type, start_over=config.force)
    if resume_from is None:
        # A fresh start: curves of an earlier, killed attempt would overlap the new ones in TensorBoard.
        shutil.rmtree(job_dir / "tensorboard", ignore_errors=True)
    resumed_from_step = _checkpoint_step(resume_from)  # read now: checkpoints written during this run replace it
    loggers = build_loggers(config.get("logger"), job_dir)
    trainer = build_trainer(config.trainer, device, job_dir, checkpoint_dir, loggers=loggers)
    trainer.fit(module, train_dataloaders=range(config.trainer.max_steps), ckpt_path=resume_from)
    # The convergence stops (loss settled, every replica fitted) and trainer.stop_when_solved end a job: a finish.
    stopped_at = finished_early_at(trainer)
    if trainer.global_step != config.trainer.max_steps and stopped_at is None:
        # Lightning can return early (a callback asking to stop, an interrupted loop): never record that as done.
        raise RuntimeError(f"training stopped at step {trainer.global_step} of {config.trainer.max_steps}")
    evaluation = held_out_evaluation(trainer)
    training = {
        "trained_steps": trainer.global_step,
        **({"stopped_at_step": stopped_at} if _stops_early(config.trainer) else {}),
        **({"evaluated_steps": list(evaluation.steps), "eval_seconds": evaluation.seconds}
           if evaluation is not None else {}),
        "resumed_from_step": resumed_from_step,
    }
    with trainer.strategy.precision_plugin.forward_context():  # evaluate in training's dtype (64-true: float64)
        per_replica = module.evaluate()
        certified, certify_seconds = (_certify(module.task, module.net, [bool(row["success"]) for row in per_replica])
                                      if config.trainer.get("certify", True) else (None, 0.0))
    if certified is not None:
        training["certify_seconds"] = certify_seconds
    records = evaluation.per_replica() if evaluation is not None else [{} for _ in per_replica]
    for index, (row, record) in enumerate(zip(per_replica, records)):
        row.update(record)
        if certified is not None:
            row["certified"] = bool(certified[index]) and not row["diverged"]
        if config.trainer.get("stop_when_solved"):  # success: exact at some evaluation (core.evaluation)
            row["success"] = row["solved_at_step"] is not None
    # the task's own per-replica metrics and the evaluation's, for the table
    columns = [key for key in per_replica[0] if key not in ("seed", "exact_at_steps")]
    result = _result(config, resolved, module, per_replica, job_dir, training)
    result.update(wall_seconds=time.perf_counter() - started, started_at=started_at, finished_at=time.time(),
                  **devices.describe_job(config, device), stream_device=device.type, config=resolved)
    log_job_end(loggers, resolved, summarize(result["per_replica"]), swept_keys)
    path = write_result(job_dir, result)
    if not config.trainer.keep_checkpoints:
        forget_checkpoints(checkpoint_dir)
    for line in result_table(result, module.task.grid_point(), columns):
        log.info(line)
    log.info(closing_line(path, job_dir, loggers))
    return result


def _result(config, resolved: dict, module, per_replica: list[dict], job_dir: Path, training: dict) -> dict:
    """result.json's numbers: the grid point, the success rate and per-replica metrics (with the analyses'), the
    task's extras and what the report needs to draw and pool them. `stream_device` (added by the caller) is part of
    what the job computed (`identity.result_identity`)."""
    task, net = module.task, module.net
    analysis_rows, analysis_summary = run_analyses(config, task, net, module.replica_seeds, per_replica, job_dir)
    for row, extra in zip(per_replica, analysis_rows):
        row.update(extra)
    charts = {**task.CHARTS, **analysis_summary.pop("analysis_charts", {})}
    extras = task.result_extras()
    return {
        "status": "ok",
        "task": task.name,
        "m_factor": net.m_factor,
        "activation": net.activation,
        **task.grid_point(),
        **net.grid_point(),
        "params_per_replica": net.params_per_replica(),
        **summarize(per_replica),
        **extras,
        "extra_keys": list(extras),
        "charts": charts,
        **analysis_summary,
        "per_replica": per_replica,
        **training,
    }


def _stops_early(trainer_config) -> bool:
    return bool(trainer_config.get("stop_when_loss_change_below") or trainer_config.get("stop_when_solved")
                or trainer_config.get("stop_when_fitted"))


def _trainer_notes(trainer_config) -> list[str]:
    """The header line's remarks on trainer settings that change what a result means."""
    if trainer_config.get("stop_when_solved"):
        return [f"stops when every replica is solved: success = exact at some evaluation (every "
                f"{trainer_config.eval_every_n_steps} steps), not exact at the end"]
    return []


@torch.no_grad()
def _certify(task, net, exact: list[bool]) -> tuple[list[bool] | None, float]:
    """The task's certificate of every replica (`Task.certify`), in eval mode, and the seconds it took."""
    started = time.perf_counter()
    was_training = net.training
    net.eval()
    try:
        certified = task.certify(net, exact)
    finally:
        net.train(was_training)
    return certified, time.perf_counter() - started


def _checkpoint_step(path: str | None) -> int | None:
    if path is None:
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
