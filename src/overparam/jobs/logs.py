"""What a job says, through Python `logging`: Hydra's job logging (conf/hydra/job_logging/overparam.yaml) sends it to
the job's own log file and to the console, where lines of jobs running side by side carry their job's tag."""

from __future__ import annotations

import logging

log = logging.getLogger("overparam")


class JobTag(logging.Filter):
    """Adds `job_tag` to every record: `[#3 model.m_factor=5,task.steps=2] ` inside a multirun, empty otherwise."""

    def __init__(self):
        super().__init__()
        self.tag = _tag()

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_tag = self.tag
        return True


def _tag() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
    except (ImportError, ValueError):
        return ""
    if hydra.mode != RunMode.MULTIRUN:
        return ""
    return f"[#{hydra.job.num} {hydra.job.override_dirname}] "
