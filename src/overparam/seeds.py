"""Seeds for replicas: each replica's streams depend only on the job seed and its own index."""

from __future__ import annotations

import numpy as np
import torch

# Independent streams of one replica: its initial weights, its training data, its dropout masks.
STREAMS = {"init": 0, "data": 1, "dropout": 2}


def replica_seed(seed: int, index: int) -> int:
    """A 63-bit seed for replica `index` of a job seeded `seed`; distinct (seed, index) pairs give distinct seeds
    in practice."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint64)[0] >> 1)


def replica_seeds(seed: int, trials: int) -> list[int]:
    """The seeds of a job's `trials` replicas."""
    return [replica_seed(seed, index) for index in range(trials)]


def replica_generator(replica: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator for one stream of one replica, seeded from the replica's seed, living on `device`."""
    stream_seed = int(np.random.SeedSequence([replica, STREAMS[stream]]).generate_state(2, dtype=np.uint64)[0] >> 1)
    generator = torch.Generator(device=device)
    generator.manual_seed(stream_seed)
    return generator
