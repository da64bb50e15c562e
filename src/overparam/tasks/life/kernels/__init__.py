"""numba kernels for the Life training step, behind one switch and one loader.

Two families of kernels compute, faster and with the same numbers, what the torch code of the Life package
computes: `codes_kernels` (neighborhood codes, targets and pattern counts: integers, equal bit for bit; used by
`codes`) and `block_kernels` (the net's later blocks, forward and backward, in tiles; used by `blocks`). Both run
on the CPU only, need numba, and are turned off together by `OVERPARAM_FUSED=0` (for comparison and debugging).
`KERNELS` decides whether they run and imports them on first use, so numba is imported only when a fast path
actually runs; without numba the plain torch path runs and one warning line says so.
"""

from __future__ import annotations

import importlib
import logging
import os

import torch

SWITCH = "OVERPARAM_FUSED"  # 0 / off / false / no: the plain torch path everywhere
log = logging.getLogger(__name__)


class Kernels:
    """The one switch and the one loader of the Life package's numba kernels."""

    def __init__(self):
        self._modules: dict[str, object] = {}  # name -> imported module, or None when numba is missing

    def switched_off(self) -> bool:
        return os.environ.get(SWITCH, "").lower() in ("0", "off", "false", "no")

    def load(self, name: str, device) -> object | None:
        """Module `name` (`codes_kernels` or `block_kernels`) for tensors on `device`, or None when the kernels do
        not apply there: not the CPU, switched off, or numba not importable."""
        if torch.device(device).type != "cpu" or self.switched_off():
            return None
        if name not in self._modules:
            try:
                self._modules[name] = importlib.import_module(f"{__name__}.{name}")
            except ImportError as error:
                if not any(module is None for module in self._modules.values()):  # say it once
                    log.warning(f"Life kernels off, plain torch path ({error}); pip install numba for the fast path")
                self._modules[name] = None
        return self._modules[name]


KERNELS = Kernels()
