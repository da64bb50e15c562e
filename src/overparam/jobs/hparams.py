"""What a job logs to TensorBoard's HPARAMS tab: the keys that make up its identity, the swept ones first.

TensorBoard (2.21) lists a run's hyperparameters sorted by (does not differ, name) and shows the first five: with
every key of the config and none marked as differing, a sweep over width and steps opened on `model._target_`,
`model.activation`... and hid `model.m_factor` and `task.steps`. So each job marks the keys its command line or
sweep set as differing (`HParamInfo.differs`), which puts them first. The full resolved config goes into the run
as text (`config_text`).
"""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from overparam.jobs.identity import settings


def overridden_keys(overrides) -> list[str]:
    """Config keys set on the command line or by a sweep (`HydraConfig.get().overrides.task`), in their order:
    `task.steps=2`, `+x=1`, `~y` give task.steps, x, y; group choices (`experiment=firner`) and hydra keys
    are not config values and are left out."""
    keys = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "=" in override and "." in key and not key.startswith("hydra") and key not in keys:
            keys.append(key)
    return keys


def job_hparams(resolved: dict, swept_keys=()) -> dict:
    """The job's identity settings as `group.key: value` (lists as JSON text), the swept keys first."""
    flat = settings(resolved)
    order = [key for key in swept_keys if key in flat] + [key for key in flat if key not in swept_keys]
    return {key: _scalar(flat[key]) for key in order}


def log_hparams(logger, hparams: dict, metrics: dict, swept_keys=()) -> None:
    """Write `hparams` and the final `metrics` to a Lightning TensorBoardLogger's run, `swept_keys` marked as
    differing (what `TensorBoardLogger.log_hyperparams` writes, with that mark)."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    experiment, session_start, session_end = hparams_summaries(hparams, metrics)
    value = experiment.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in swept_keys
    value.metadata.plugin_data.content = data.SerializeToString()
    logger.log_metrics(metrics, step=0)
    writer = logger.experiment._get_file_writer()
    for summary in (experiment, session_start, session_end):
        writer.add_summary(summary)


def _scalar(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def config_text(resolved: dict) -> str:
    """The resolved config as YAML, indented so that TensorBoard's TEXT tab shows it as code (markdown)."""
    return "\n".join("    " + line for line in OmegaConf.to_yaml(OmegaConf.create(resolved)).splitlines())
