"""The QUBO Max-Cut reverse-engineering task: from a graph's Max-Cut QUBO matrix, predict the graph.

Plain torch: a net is anything mapping `[K, B, nodes*nodes]` flattened QUBOs to `[K, B, output_size]` values.
The dataset (`task.samples` graphs, cached on disk) is split once: the first 90% train, the rest test.
A replica succeeds when it recovers at least `task.success_recovery` of the test graphs exactly (default 1.0:
every test graph): its rounded prediction names the graph, in any edge order (`exact_recovery`). Whether it also
lists the edges in the target's order is its own metric (`exact_target_recovery`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from overparam.config import Check, choice, fail, integer, is_int, number, optional, text
from overparam.tasks.base import Task
from overparam.tasks.maxcut.qubo import (
    ADJACENCY_PARTS,
    ENCODINGS,
    edge_list_bayes_prediction,
    encode_targets,
    graph_dataset,
    output_size,
    qubo_inputs,
    same_graph,
)


def _test_count(samples: int, fraction: float) -> int:
    return int(round(samples * fraction))


@dataclass
class MaxCutTask(Task):
    """From the Max-Cut QUBO of a random graph, predict the graph (in one of three target encodings)."""

    NET_INPUTS: ClassVar[tuple[str, ...]] = ("inputs", "outputs")
    CHECKS: ClassVar[dict[str, Check]] = {
        "nodes": integer(2),
        "encoding": choice(*ENCODINGS),
        "adjacency_part": choice(*ADJACENCY_PARTS),
        "test_fraction": number(0.0, exclusive_minimum=True, below=1.0),
        "batch_size": integer(1),
        "success_recovery": number(0.0, 1.0, exclusive_minimum=True),
        "train_eval_samples": integer(0),
        "dataset_seed": integer(0),
        "cache_dir": optional(text),
    }
    CHARTS: ClassVar[dict[str, list[str]]] = {
        "test R^2 vs width, with the Bayes ceiling": ["test_r2_mean", "bayes_r2_ceiling"],
        "exact recovery vs width (graph; in the target's order; the Bayes predictor's graph)":
            ["exact_recovery_mean", "exact_target_recovery_mean", "bayes_graph_recovery"],
    }

    nodes: int = 64  # networkx.gnm_random_graph(nodes, edges): qubo-nn's 64 nodes ...
    edges: int = 90  # ... and exactly 90 edges (at most nodes*(nodes-1)/2)
    samples: int = 10000  # graphs in the dataset: the first (1 - test_fraction) train, the rest test
    encoding: str = "adjacency"  # adjacency, edge_list (networkx's random insertion order), sorted_edge_list
    adjacency_part: str = "full"  # adjacency target: the full n*n matrix, or upper (its strict upper triangle)
    dataset_seed: int = 0  # graph i is drawn from a seed derived from (dataset_seed, i)
    test_fraction: float = 0.1
    batch_size: int = 500  # training graphs per replica per step, drawn with replacement
    success_recovery: float = 1.0  # a replica succeeds when it recovers this fraction of test graphs exactly
    train_eval_samples: int = 1000  # train_mse is measured on this many fixed training graphs (0: all of them)
    cache_dir: str | None = None  # dataset cache; null: $OVERPARAM_CACHE or ~/.cache/overparam
    name: str = "maxcut"
    _on_device: dict = field(default_factory=dict, repr=False, init=False)

    @classmethod
    def check(cls, task: dict, model: dict) -> None:
        nodes, edges = task["nodes"], task["edges"]
        max_edges = nodes * (nodes - 1) // 2
        if not is_int(edges) or not 1 <= edges <= max_edges:
            fail("task.edges", edges,
                 f"must be an integer in 1..{max_edges} (nodes*(nodes-1)/2 for task.nodes={nodes})")
        samples, fraction = task["samples"], task["test_fraction"]
        if not is_int(samples) or samples < 2 or not 0 < _test_count(samples, fraction) < samples:
            fail("task.samples", samples, "must be an integer large enough that both the train and the test split "
                 f"(task.test_fraction={fraction}) are non-empty")

    def grid_point(self) -> dict:
        return {"nodes": self.nodes, "edges": self.edges, "encoding": self.encoding}

    def net_inputs(self) -> dict:
        return {"inputs": self.input_size, "outputs": self.output_size}

    def __post_init__(self):
        # Every graph's edges in networkx's order; the first train_count are the training split.
        self.graphs = torch.from_numpy(
            graph_dataset(self.nodes, self.edges, self.samples, self.dataset_seed, self.cache_dir).astype("int64")
        )
        self.test_count = _test_count(self.samples, self.test_fraction)
        self.train_count = self.samples - self.test_count

    @property
    def input_size(self) -> int:
        return self.nodes * self.nodes

    @property
    def output_size(self) -> int:
        return output_size(self.nodes, self.edges, self.encoding, self.adjacency_part)

    def _graphs_on(self, device) -> torch.Tensor:
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = self.graphs.to(device)
        return self._on_device[key]

    def inputs_and_targets(self, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return qubo_inputs(edges, self.nodes), encode_targets(edges, self.nodes, self.encoding, self.adjacency_part)

    def train_batch(self, generators: Sequence[torch.Generator], device) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K, B, D_in]` QUBOs and `[K, B, D_out]` targets; replica k's B training graphs are drawn
        uniformly with replacement by its own generator (stateless, so a checkpoint's generator states
        resume the exact data stream)."""
        indices = torch.stack(
            [torch.randint(self.train_count, (self.batch_size,), generator=g, device=device) for g in generators]
        )
        return self.inputs_and_targets(self._graphs_on(device)[indices])

    @staticmethod
    def replica_losses(outputs: torch.Tensor, targets: torch.Tensor, output_kind: str) -> torch.Tensor:
        """Mean squared error per replica (over its batch and outputs, as torch's MSELoss), `[K]`."""
        return ((outputs - targets) ** 2).flatten(1).mean(1)

    def test_graphs(self, device) -> torch.Tensor:
        return self._graphs_on(device)[self.train_count :]

    def train_eval_graphs(self, device) -> torch.Tensor:
        """The fixed training graphs train_mse is measured on: the first `train_eval_samples` (0: all)."""
        count = min(self.train_eval_samples or self.train_count, self.train_count)
        return self._graphs_on(device)[:count]

    @torch.no_grad()
    def _errors(self, predict, graphs, replicas, chunk):
        """Per replica: summed squared error, graphs recovered exactly (in any order; in the target's order),
        outputs right after rounding."""
        device = graphs.device
        squared = torch.zeros(replicas, device=device, dtype=torch.float64)
        exact_graph = torch.zeros(replicas, device=device)
        exact = torch.zeros(replicas, device=device)
        outputs_right = torch.zeros(replicas, device=device)
        for start in range(0, len(graphs), chunk):
            inputs, targets = self.inputs_and_targets(graphs[start : start + chunk])
            predicted = predict(inputs.expand(replicas, -1, -1))
            squared += ((predicted - targets) ** 2).sum(dim=(1, 2)).double()
            right = predicted.round() == targets
            exact += right.all(-1).sum(-1)
            exact_graph += self.same_graph(predicted, graphs[start : start + chunk]).sum(-1)
            outputs_right += right.sum(dim=(1, 2))
        return squared, exact_graph, exact, outputs_right

    def same_graph(self, predictions: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """`[...]` bool: the rounded prediction names the graph `edges`, in any edge order."""
        return same_graph(predictions, edges, self.nodes, self.encoding, self.adjacency_part)

    @torch.no_grad()
    def evaluate(
        self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device, chunk: int = 250
    ) -> list[dict]:
        """Per-replica metrics: exact_recovery (fraction of test graphs whose rounded prediction names the
        graph, in any edge order), exact_target_recovery (... equals the whole target vector), output_accuracy,
        test_mse and train_mse (per output, per graph), test_r2 (pooled over outputs, variance-weighted, as
        `overparam.stats.pooled_r2`), success (exact_recovery >= success_recovery)."""
        test = self.test_graphs(device)
        squared, exact_graph, exact, outputs_right = self._errors(predict, test, replicas, chunk)
        _, targets = self.inputs_and_targets(test)
        deviation = ((targets - targets.mean(0)) ** 2).sum().double()
        train = self.train_eval_graphs(device)
        train_squared, *_ = self._errors(predict, train, replicas, chunk)
        cells = len(test) * self.output_size
        rows = []
        for k in range(replicas):
            exact_recovery = exact_graph[k].item() / len(test)
            rows.append(
                {
                    "success": exact_recovery >= self.success_recovery,
                    "exact_recovery": exact_recovery,
                    "exact_target_recovery": exact[k].item() / len(test),
                    "output_accuracy": outputs_right[k].item() / cells,
                    "test_r2": 1.0 - (squared[k] / deviation).item(),
                    "test_mse": squared[k].item() / cells,
                    "train_mse": train_squared[k].item() / (len(train) * self.output_size),
                }
            )
        return rows

    def bayes_limits(self) -> dict:
        """The best any predictor can do on the test set: the MSE floor and R^2 ceiling of the
        Bayes-optimal prediction (`edge_list_bayes_prediction`), computed graph by graph and averaged
        over the test graphs. Targets that are a function of the QUBO have floor 0 and ceiling 1.

        `bayes_graph_recovery` is the fraction of test graphs that prediction, rounded, names exactly: what a
        net at the MSE floor recovers. For edge_list it is not a bound on graph recovery as such: the QUBO fixes
        the graph, so a net listing each node's edges in any order would name every graph (at a higher MSE)."""
        if self.encoding != "edge_list":
            return {"bayes_mse_floor": 0.0, "bayes_r2_ceiling": 1.0, "bayes_graph_recovery": 1.0}
        test = self.test_graphs("cpu")
        targets = encode_targets(test, self.nodes, self.encoding)
        bayes = edge_list_bayes_prediction(test, self.nodes)
        squared = ((bayes - targets) ** 2).sum().double()
        deviation = ((targets - targets.mean(0)) ** 2).sum().double()
        return {"bayes_mse_floor": squared.item() / targets.numel(),
                "bayes_r2_ceiling": 1.0 - (squared / deviation).item(),
                "bayes_graph_recovery": self.same_graph(bayes, test).float().mean().item()}

    def result_extras(self) -> dict:
        """The Bayes wall and the split sizes."""
        return {**self.bayes_limits(), "train_graphs": self.train_count, "test_graphs": self.test_count}
