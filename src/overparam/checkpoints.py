"""Checkpoints that survive SIGKILL: atomic writes, weights-only loads, and a config stamp to resume safely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from .atomic import atomic_write, atomic_write_text

STAMP = "config.json"
LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file and renames it, so a kill leaves the previous checkpoint intact; loads weights only."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def checkpoint_to_resume(checkpoint_dir: Path, config_identity: dict) -> str | None:
    """The last checkpoint in `checkpoint_dir` if it was written for this config; otherwise clear the folder."""
    stamp = checkpoint_dir / STAMP
    last = checkpoint_dir / LAST
    try:
        same = json.loads(stamp.read_text()) == config_identity
    except (OSError, ValueError):
        same = False
    if same and last.exists():
        return str(last)
    forget_checkpoints(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(config_identity, sort_keys=True))
    return None


def forget_checkpoints(checkpoint_dir: Path) -> None:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
