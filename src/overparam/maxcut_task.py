"""The QUBO Max-Cut reverse-engineering task: from a graph's Max-Cut QUBO matrix, predict the graph.

Plain torch: a net is anything mapping `[K, B, nodes*nodes]` flattened QUBOs to `[K, B, output_size]` values.
The dataset (`task.samples` graphs, cached on disk) is split once: the first 90% train, the rest test.
A replica succeeds when it recovers at least `task.success_recovery` of the test graphs exactly after
rounding (default 1.0: every test graph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .maxcut import (
    ADJACENCY_PARTS,
    ENCODINGS,
    edge_list_bayes_prediction,
    encode_targets,
    graph_dataset,
    output_size,
    qubo_inputs,
)


def validate_maxcut(task) -> None:
    """Raise ValueError with a one-line message naming the key, the value and what is allowed.

    `task` is the task config, a DictConfig or a plain dict."""
    nodes, edges = task["nodes"], task["edges"]
    if not isinstance(nodes, int) or nodes < 2:
        raise ValueError(f"task.nodes={nodes!r} must be an integer >= 2")
    max_edges = nodes * (nodes - 1) // 2
    if not isinstance(edges, int) or not 1 <= edges <= max_edges:
        raise ValueError(
            f"task.edges={edges!r} must be an integer in 1..{max_edges} (nodes*(nodes-1)/2 for task.nodes={nodes})"
        )
    if task["encoding"] not in ENCODINGS:
        raise ValueError(f"task.encoding={task['encoding']!r} is not one of {', '.join(ENCODINGS)}")
    part = task.get("adjacency_part", "full")
    if part not in ADJACENCY_PARTS:
        raise ValueError(f"task.adjacency_part={part!r} is not one of {', '.join(ADJACENCY_PARTS)}")
    fraction = task.get("test_fraction", 0.1)
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"task.test_fraction={fraction!r} must be a number strictly between 0 and 1")
    samples = task["samples"]
    if not isinstance(samples, int) or samples < 2 or not 0 < _test_count(samples, fraction) < samples:
        raise ValueError(
            f"task.samples={samples!r} must be an integer large enough that both the train and the test split "
            f"(task.test_fraction={fraction}) are non-empty"
        )
    batch_size = task["batch_size"]
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"task.batch_size={batch_size!r} must be an integer >= 1")
    recovery = task.get("success_recovery", 1.0)
    if not isinstance(recovery, (int, float)) or not 0 < recovery <= 1:
        raise ValueError(f"task.success_recovery={recovery!r} must be a number in (0, 1]")
    train_eval = task.get("train_eval_samples", 1000)
    if not isinstance(train_eval, int) or train_eval < 0:
        raise ValueError(f"task.train_eval_samples={train_eval!r} must be an integer >= 0 (0: every training graph)")


def _test_count(samples: int, fraction: float) -> int:
    return int(round(samples * fraction))


@dataclass
class MaxCutTask:
    nodes: int
    edges: int
    samples: int
    encoding: str
    adjacency_part: str = "full"
    seed: int = 0
    test_fraction: float = 0.1
    batch_size: int = 500
    success_recovery: float = 1.0
    train_eval_samples: int = 1000
    cache_dir: str | None = None
    _on_device: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, task) -> "MaxCutTask":
        validate_maxcut(task)
        return cls(
            nodes=task.nodes,
            edges=task.edges,
            samples=task.samples,
            encoding=task.encoding,
            adjacency_part=task.get("adjacency_part", "full"),
            seed=task.get("dataset_seed", 0),
            test_fraction=task.get("test_fraction", 0.1),
            batch_size=task.batch_size,
            success_recovery=task.get("success_recovery", 1.0),
            train_eval_samples=task.get("train_eval_samples", 1000),
            cache_dir=task.get("cache_dir", None),
        )

    def __post_init__(self):
        # Every graph's edges in networkx's order; the first train_count are the training split.
        self.graphs = torch.from_numpy(
            graph_dataset(self.nodes, self.edges, self.samples, self.seed, self.cache_dir).astype("int64")
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
        """Per replica: summed squared error, graphs recovered exactly, outputs right after rounding."""
        device = graphs.device
        squared = torch.zeros(replicas, device=device, dtype=torch.float64)
        exact = torch.zeros(replicas, device=device)
        outputs_right = torch.zeros(replicas, device=device)
        for start in range(0, len(graphs), chunk):
            inputs, targets = self.inputs_and_targets(graphs[start : start + chunk])
            predicted = predict(inputs.expand(replicas, -1, -1))
            squared += ((predicted - targets) ** 2).sum(dim=(1, 2)).double()
            right = predicted.round() == targets
            exact += right.all(-1).sum(-1)
            outputs_right += right.sum(dim=(1, 2))
        return squared, exact, outputs_right

    @torch.no_grad()
    def evaluate(
        self, predict: Callable[[torch.Tensor], torch.Tensor], replicas: int, device, chunk: int = 250
    ) -> list[dict]:
        """Per-replica metrics: exact_recovery (fraction of test graphs whose rounded prediction equals the
        whole target), output_accuracy, test_mse and train_mse (per output, per graph), test_r2 (pooled over
        outputs, variance-weighted, as `overparam.metrics.pooled_r2`), success (exact_recovery >= success_recovery)."""
        test = self.test_graphs(device)
        squared, exact, outputs_right = self._errors(predict, test, replicas, chunk)
        _, targets = self.inputs_and_targets(test)
        deviation = ((targets - targets.mean(0)) ** 2).sum().double()
        train = self.train_eval_graphs(device)
        train_squared, _, _ = self._errors(predict, train, replicas, chunk)
        cells = len(test) * self.output_size
        rows = []
        for k in range(replicas):
            exact_recovery = exact[k].item() / len(test)
            rows.append(
                {
                    "success": exact_recovery >= self.success_recovery,
                    "exact_recovery": exact_recovery,
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
        over the test graphs. Targets that are a function of the QUBO have floor 0 and ceiling 1."""
        if self.encoding != "edge_list":
            return {"bayes_mse_floor": 0.0, "bayes_r2_ceiling": 1.0}
        test = self.test_graphs("cpu")
        targets = encode_targets(test, self.nodes, self.encoding)
        bayes = edge_list_bayes_prediction(test, self.nodes)
        squared = ((bayes - targets) ** 2).sum().double()
        deviation = ((targets - targets.mean(0)) ** 2).sum().double()
        return {"bayes_mse_floor": squared.item() / targets.numel(), "bayes_r2_ceiling": 1.0 - (squared / deviation).item()}

    def result_extras(self) -> dict:
        """Task-level numbers for result.json: the Bayes wall and the split sizes."""
        return {**self.bayes_limits(), "train_graphs": self.train_count, "test_graphs": self.test_count}
