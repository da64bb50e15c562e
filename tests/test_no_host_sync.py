"""GPU readiness: no training step between two log steps reads a device value on the host (a sync on a GPU).

On CPU nothing syncs, so every Tensor method that copies a value to the host is replaced, during steps 1..n, by one
that records the call; the module is told it is on a device where host checks cost a sync.
"""

from __future__ import annotations

import os
import traceback

import pytest
import pytorch_lightning as pl
import torch

from overparam.config import compose
from overparam.core.build import build_module
from overparam.tasks.life.kernels import SWITCH

HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


class HostReadGuard(pl.Callback):
    def __init__(self):
        self.reads: list[str] = []
        self.originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def on_train_start(self, trainer, module):
        module.check_on_host = False  # as on a GPU

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        if batch_index == 0:  # step 0 is a log step
            return
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, self._recording(name, original))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)

    def _recording(self, name, original):
        def read(tensor, *args, **kwargs):
            stack = traceback.format_stack(limit=8)[:-1]
            # torch.optim keeps its `step` counters on the host (unless capturable): reading them is no device sync
            if not any(f"torch{os.sep}optim{os.sep}" in frame for frame in stack):
                self.reads.append(f"Tensor.{name} at\n{''.join(stack)}")
            return original(tensor, *args, **kwargs)

        return read


@pytest.mark.parametrize("steps, m_factor", [(1, 2), (2, 2), (2, 1)])
def test_training_steps_between_log_steps_never_read_device_values(steps, m_factor, tmp_path, monkeypatch):
    monkeypatch.setenv(SWITCH, "0")  # the numba kernel is CPU-only (numpy views): the GPU runs the plain path
    config = compose([f"task.steps={steps}", f"model.m_factor={m_factor}", "trials=3", "task.batch_size=8",
                      "trainer.max_steps=6", "trainer.log_every_n_steps=50"])
    guard = HostReadGuard()
    trainer = pl.Trainer(
        max_steps=6, accelerator="cpu", devices=1, callbacks=[guard], enable_checkpointing=False,
        logger=pl.loggers.TensorBoardLogger(save_dir=str(tmp_path), name="tb", version="", default_hp_metric=False),
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=50,
    )
    try:
        trainer.fit(build_module(config), train_dataloaders=range(6))
    finally:
        guard.on_train_batch_end(None, None, None, None, None)
    assert trainer.global_step == 6
    assert not guard.reads, f"{len(guard.reads)} host reads inside training steps; the first:\n{guard.reads[0]}"


def test_the_guard_sees_a_host_read():
    guard = HostReadGuard()
    guard.on_train_batch_start(None, None, None, 1)
    try:
        torch.ones(2).sum().item()
    finally:
        guard.on_train_batch_end(None, None, None, None, None)
    assert len(guard.reads) == 1
