"""Finite training sets: each replica walks its own shuffle of N examples, reshuffled every epoch.

Fresh data every step (the Life default) never repeats an example; a fixed training set of N examples, seen
epoch after epoch, is what a published protocol with a dataset (Springer & Kenyon's 10,000 boards, MNIST-1D's
4,000 examples) and any memorisation study need. Like `DataLoader(shuffle=True, drop_last=True)` per replica:
an epoch is N // batch_size batches of a fresh permutation drawn from that replica's own data generator, so
replica k's batches do not depend on the other replicas. The state (the current permutations and the position in
them) travels in checkpoints (`state_dict`), so a resumed job draws exactly the batches it would have drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class EpochSampler:
    def __init__(self, examples: int, batch_size: int):
        if not 1 <= batch_size <= examples:
            raise ValueError(f"batch_size={batch_size} must be between 1 and the number of examples ({examples})")
        self.examples, self.batch_size = examples, batch_size
        self.batches_per_epoch = examples // batch_size
        self.permutations: torch.Tensor | None = None  # [K, N]: this epoch's order, replica by replica
        self.position = 0  # batches already taken from this epoch

    def next_indices(self, generators: Sequence[torch.Generator], device) -> torch.Tensor:
        """`[K, batch_size]` example indices for the next step, replica k's from its own permutation."""
        if self.permutations is None or self.position == self.batches_per_epoch:
            self.permutations = torch.stack(
                [torch.randperm(self.examples, generator=g, device=device) for g in generators]
            )
            self.position = 0
        start = self.position * self.batch_size
        self.position += 1
        return self.permutations[:, start : start + self.batch_size]

    def state_dict(self) -> dict:
        return {"permutations": self.permutations, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.permutations, self.position = state["permutations"], state["position"]
