"""How far training moved each replica from its initialisation: ||w - w0|| / ||w0||, over all its parameters, over
its weights only (Firner's --normalize draws biases from U(-1, 1) and weights from N(0, 0.02), so the biases dominate
||w0|| there), and layer by layer (the weight of layer i).

w0 is recomputed, not stored: a job's initialisation is a deterministic function of its config and replica seeds
(`build_net` -> `reset_parameters` from each replica's "init" stream, then `presolve` if configured), so
rebuilding it after training (or after a resume) gives exactly the weights training started from. Works for any
replica net: every parameter carries the replica dimension first.
"""

from __future__ import annotations

import torch

from overparam.analysis.base import Analysis, Trained


def flat_parameters(net, only_weights: bool = False) -> torch.Tensor:
    """`[K, P]`: each replica's parameters (or only those named `weight`) as one float64 vector."""
    return torch.cat([p.detach().reshape(p.shape[0], -1).double() for name, p in net.named_parameters()
                      if not only_weights or name.endswith("weight")], dim=1)


def relative(trained: torch.Tensor, start: torch.Tensor) -> list[float]:
    moved, size = (trained - start).norm(dim=1), start.norm(dim=1)
    return [m / s if s > 0 else float("nan") for m, s in zip(moved.tolist(), size.tolist())]


def distance_from_init(net, initial) -> list[dict]:
    trained, start = flat_parameters(net), flat_parameters(initial)
    rows = [{"init_distance": d} for d in (trained - start).norm(dim=1).tolist()]
    columns = {"init_relative_distance": relative(trained, start),
               "init_weight_relative_distance": relative(flat_parameters(net, True), flat_parameters(initial, True))}
    for index, (layer, first) in enumerate(zip(net.layers, initial.layers)):
        columns[f"init_relative_distance_layer{index}"] = relative(
            layer.weight.detach().flatten(1).double(), first.weight.detach().flatten(1).double())
    for name, values in columns.items():
        for row, value in zip(rows, values):
            row[name] = value
    return rows


class DistanceFromInit(Analysis):
    """||w - w0|| / ||w0|| per replica: all parameters, weights only, and per layer."""

    BY_OUTCOME = ("init_relative_distance", "init_weight_relative_distance")
    CHARTS = {"distance from init vs width (solved / failed replicas)": [
        "init_weight_relative_distance_mean_success", "init_weight_relative_distance_mean_failed"]}

    def run(self, trained: Trained) -> tuple[list[dict], dict]:
        return distance_from_init(trained.net, trained.initial), {}
