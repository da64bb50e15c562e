"""Checkpoints that survive SIGKILL: atomic writes, weights-only loads, a config stamp to resume safely, and the
replica net a checkpoint holds (for export)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from overparam.atomic import atomic_write, atomic_write_text

STAMP = "config.json"
LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file and renames it, so a kill leaves the previous checkpoint intact; loads weights only."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def checkpoint_to_resume(checkpoint_dir: Path, config_identity: dict, stream_device: str = "cpu",
                         start_over: bool = False) -> str | None:
    """The last checkpoint in `checkpoint_dir` if it was written for this config; otherwise clear the folder.

    A checkpoint of this config whose random streams live on another device type cannot resume exactly (a CPU
    generator's state is not a CUDA one's): that stops with one line, unless `start_over` (force=true) clears it.
    """
    stamp = checkpoint_dir / STAMP
    last = checkpoint_dir / LAST
    try:
        stamped = json.loads(stamp.read_text())
    except (OSError, ValueError):
        stamped = {}
    same = isinstance(stamped, dict) and stamped.get("identity") == config_identity
    if same and last.exists() and stamped.get("stream_device") != stream_device and not start_over:
        raise CheckpointDeviceMismatch(
            f"{last} holds random streams drawn on {stamped.get('stream_device')}, this job draws them on "
            f"{stream_device}: resume it there (trainer.accelerator), or force=true to start over here"
        )
    if same and last.exists() and stamped.get("stream_device") == stream_device:
        return str(last)
    forget_checkpoints(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stamp_text = json.dumps({"identity": config_identity, "stream_device": stream_device}, sort_keys=True)
    atomic_write_text(stamp, stamp_text)
    return None


class CheckpointDeviceMismatch(RuntimeError):
    """A checkpoint that only another device type can resume."""


def forget_checkpoints(checkpoint_dir: Path) -> None:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def net_from_checkpoint(checkpoint: str | Path, config) -> torch.nn.Module:
    """The replica-batched net of a job checkpoint (`checkpoints/last.ckpt`), built from the job's config
    (the resolved dict in result.json or `.hydra/config.yaml`, or a DictConfig)."""
    from omegaconf import OmegaConf

    from overparam.core.build import build_net, build_task
    from overparam.seeds import replica_seeds

    config = OmegaConf.create(config) if isinstance(config, dict) else config
    task = build_task(config.task)
    net = build_net(config.model, task, replica_seeds(config.seed, config.trials))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict({key[len("net."):]: value for key, value in state.items() if key.startswith("net.")})
    return net


def export_checkpoint(checkpoint: str | Path, config, replica: int, path: str | Path) -> Path:
    """Replica `replica` of a job checkpoint, saved as a plain torch module at `path`."""
    from overparam.nets.export import save_replica

    return save_replica(net_from_checkpoint(checkpoint, config).export_replica(replica), path)
