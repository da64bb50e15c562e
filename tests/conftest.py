import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# One torch thread per test process: the suite runs on 2 busy cores, where 2 threads make tiny steps far slower.
torch.set_num_threads(1)
os.environ.setdefault("HYDRA_FULL_ERROR", "0")


@pytest.fixture
def root() -> Path:
    return ROOT
