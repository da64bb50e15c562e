"""A concise periodic training log: ten lines per job (through `logging`, so in the job's log file too) instead of a
progress bar in every log file; `trainer.progress=bar` shows Lightning's bar instead, for one job in a terminal."""

from __future__ import annotations

import time

import pytorch_lightning as pl

from overparam.jobs.logs import log


class ProgressLog(pl.Callback):
    def __init__(self, max_steps: int, mode: str = "log", lines: int = 10):
        self.every = max(1, max_steps // lines) if mode == "log" else 0
        self.max_steps = max_steps
        self._last_time = None
        self._last_step = 0

    def on_train_start(self, trainer, module):
        self._last_time, self._last_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        step = trainer.global_step
        if not self.every or (step % self.every and step != self.max_steps):
            return
        now = time.perf_counter()
        per_step = (now - self._last_time) / max(1, step - self._last_step) * 1e3
        self._last_time, self._last_step = now, step
        alive = module.alive
        losses = module.last_losses[alive]
        loss = f"{losses.mean().item():.4f}" if len(losses) else "nan"
        log.info(f"  step {step:>6}/{self.max_steps}  loss {loss}  alive {int(alive.sum())}/{len(alive)}  "
                 f"{per_step:.2f} ms/step")
