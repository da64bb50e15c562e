"""How far training moved each replica: ||w - w0|| / ||w0|| over all its parameters (w0 = its initialisation).

w0 is recomputed, not stored: a job's initialisation is a deterministic function of its config and replica seeds
(`build_net` -> `reset_parameters` from each replica's "init" stream, then `presolve` if configured), so
rebuilding it after training (or after a resume) gives exactly the weights training started from.
"""

from __future__ import annotations

import torch


def flat_parameters(net) -> torch.Tensor:
    """`[K, P]`: each replica's parameters as one float64 vector."""
    return torch.cat([p.detach().reshape(p.shape[0], -1).double() for p in net.parameters()], dim=1)


def distance_from_init(net, initial) -> list[dict]:
    trained, start = flat_parameters(net), flat_parameters(initial)
    moved = (trained - start).norm(dim=1)
    return [{"init_distance": d, "init_relative_distance": d / s if s > 0 else float("nan")}
            for d, s in zip(moved.tolist(), start.norm(dim=1).tolist())]
