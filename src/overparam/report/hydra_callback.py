"""Hydra callback: when a multirun ends, aggregate its jobs' result files (overparam.report)."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from overparam.report import report_exit_code, write_report

        summary = write_report(config.hydra.sweep.dir)
        code = report_exit_code(summary)
        if code:
            raise SystemExit(code)
