"""Max-Cut QUBOs of random graphs and the target encodings of the graph behind them (qubo-nn's data).

Plain numpy/torch; networkx only makes the graphs. A dataset is stored as each graph's edge list in the
order networkx yields it, `[samples, edges, 2]`; the QUBO inputs and every target encoding are computed
from it on the fly (cheap next to a matmul, and 30x smaller than storing matrices).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch

from overparam.atomic import atomic_write_bytes

ENCODINGS = ("adjacency", "edge_list", "sorted_edge_list")
ADJACENCY_PARTS = ("full", "upper")
# Bump when the stored dataset's meaning changes, so old cache files are never read.
DATASET_VERSION = 1


def maxcut_qubo(adjacency):
    """The Max-Cut QUBO of a graph: Q = L = D - A (the graph Laplacian), to be MAXIMISED.

    `adjacency`: a 0/1 symmetric matrix with zero diagonal, `[..., n, n]`, numpy array or torch tensor
    (the result has the same type). For x in {0, 1}^n, x^T Q x = cut(x), the number of edges with one end
    in {i : x_i = 1} and the other in {i : x_i = 0}: per edge (i, j), x_i + x_j - 2 x_i x_j = [x_i != x_j].
    Its off-diagonal is -A, so the graph is a linear function of Q (qubo-nn's current code returns -Q and
    minimises; R^2 and exact recovery do not care which).
    """
    if isinstance(adjacency, np.ndarray):
        return maxcut_qubo(torch.from_numpy(adjacency)).numpy()
    if adjacency.shape[-1] != adjacency.shape[-2] or not torch.equal(adjacency, adjacency.transpose(-1, -2)):
        raise ValueError(
            f"maxcut_qubo needs a symmetric [..., n, n] adjacency matrix, got shape {tuple(adjacency.shape)}"
        )
    return torch.diag_embed(adjacency.sum(-1)) - adjacency


def random_graph_edges(nodes: int, edges: int, seed: int) -> np.ndarray:
    """`[edges, 2]` of `networkx.gnm_random_graph(nodes, edges, seed)` in the order `G.edges` yields them.

    That order is node-major: (u, v) with u < v, grouped by u ascending, and within a group v in the order
    the edges were inserted, which gnm_random_graph randomises. It is qubo-nn's edge-list target.
    """
    import networkx

    graph = networkx.gnm_random_graph(nodes, edges, seed=int(seed))
    return np.asarray(list(graph.edges), dtype=np.int16).reshape(edges, 2)


def graph_seed(dataset_seed: int, index: int) -> int:
    """Graph `index`'s own seed: depends only on the dataset seed and the index (so datasets nest)."""
    return int(np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def default_cache_dir() -> Path:
    return Path(os.environ.get("OVERPARAM_CACHE", "~/.cache/overparam")).expanduser()


def dataset_path(nodes: int, edges: int, samples: int, seed: int, cache_dir: str | Path | None = None) -> Path:
    """Where the dataset with these parameters is cached; the name holds every input that shapes it."""
    import networkx

    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    key = f"v{DATASET_VERSION}-n{nodes}-e{edges}-s{samples}-seed{seed}-networkx{networkx.__version__}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return directory / "maxcut" / f"graphs_n{nodes}_e{edges}_s{samples}_seed{seed}_{digest}.npy"


def graph_dataset(nodes: int, edges: int, samples: int, seed: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """`[samples, edges, 2]` int16 edge lists of `samples` random graphs, graph i from `graph_seed(seed, i)`.

    Cached on disk, keyed by its parameters: the first call generates and writes the file atomically (two
    jobs building it at once both write whole files, and the last rename wins), later calls load it.
    """
    path = dataset_path(nodes, edges, samples, seed, cache_dir)
    expected = (samples, edges, 2)
    try:
        data = np.load(path, allow_pickle=False)
        if data.shape == expected and data.dtype == np.int16:
            return data
    except (OSError, ValueError):
        pass
    data = np.stack([random_graph_edges(nodes, edges, graph_seed(seed, i)) for i in range(samples)])
    buffer = io.BytesIO()
    np.save(buffer, data, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())  # two jobs building the same cache at once never see half a file
    return data


# ----- from edge lists to matrices and targets (torch, batched over any leading dims) ---------------------


def adjacency_from_edges(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """`[..., E, 2]` integer edge lists -> `[..., n, n]` float 0/1 symmetric adjacency matrices."""
    edges = edges.long()
    u, v = edges[..., 0], edges[..., 1]
    flat = torch.zeros(*edges.shape[:-2], nodes * nodes, device=edges.device)
    ones = torch.ones(u.shape, device=edges.device)
    flat.scatter_(-1, u * nodes + v, ones)
    flat.scatter_(-1, v * nodes + u, ones)
    return flat.unflatten(-1, (nodes, nodes))


def sort_edges(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """Each edge as (min, max), the list sorted lexicographically: one canonical list per graph."""
    edges = edges.long()
    low, high = edges.min(-1).values, edges.max(-1).values
    order = (low * nodes + high).argsort(-1)
    return torch.stack([low.gather(-1, order), high.gather(-1, order)], dim=-1)


def output_size(nodes: int, edges: int, encoding: str, adjacency_part: str = "full") -> int:
    if encoding == "adjacency":
        return nodes * nodes if adjacency_part == "full" else nodes * (nodes - 1) // 2
    return 2 * edges


def encode_targets(edges: torch.Tensor, nodes: int, encoding: str, adjacency_part: str = "full") -> torch.Tensor:
    """`[..., E, 2]` edge lists (networkx order) -> `[..., output_size]` float targets.

    adjacency: the matrix flattened row-major (`full`) or its strict upper triangle row-major (`upper`);
    edge_list: u0, v0, u1, v1, ... in networkx's order (random within a node's group);
    sorted_edge_list: the same numbers for `sort_edges`.
    """
    if encoding == "adjacency":
        adjacency = adjacency_from_edges(edges, nodes)
        if adjacency_part == "full":
            return adjacency.flatten(-2)
        rows, cols = torch.triu_indices(nodes, nodes, offset=1, device=edges.device)
        return adjacency[..., rows, cols]
    if encoding == "edge_list":
        return edges.float().flatten(-2)
    if encoding == "sorted_edge_list":
        return sort_edges(edges, nodes).float().flatten(-2)
    raise ValueError(f"task.encoding={encoding!r} is not one of {', '.join(ENCODINGS)}")


def decode_adjacency(targets: torch.Tensor, nodes: int, encoding: str, adjacency_part: str = "full") -> torch.Tensor:
    """The inverse of `encode_targets` for exact (integer-valued) targets: `[..., output_size]` -> `[..., n, n]`."""
    if encoding == "adjacency":
        if adjacency_part == "full":
            return targets.unflatten(-1, (nodes, nodes))
        rows, cols = torch.triu_indices(nodes, nodes, offset=1, device=targets.device)
        adjacency = torch.zeros(*targets.shape[:-1], nodes, nodes, device=targets.device, dtype=targets.dtype)
        adjacency[..., rows, cols] = targets
        return adjacency + adjacency.transpose(-1, -2)
    return adjacency_from_edges(targets.round().long().unflatten(-1, (-1, 2)), nodes)


def decode_graphs(predictions: torch.Tensor, nodes: int, encoding: str,
                  adjacency_part: str = "full") -> tuple[torch.Tensor, torch.Tensor]:
    """The graph a prediction `[..., output_size]` names, whatever order it lists the edges in.

    Returns `[..., n, n]` 0/1 adjacency matrices (after rounding) and a `[...]` bool: False where the prediction
    names no simple graph with the target's encoding (an entry that rounds outside 0/1 for adjacency, a node
    index outside 0..n-1 for the edge lists). A self-loop or a repeated edge stays in the matrix (a diagonal 1, one
    edge fewer), so such a prediction never equals a target graph.
    """
    rounded = predictions.round()
    if encoding == "adjacency":
        valid = ((rounded == 0) | (rounded == 1)).all(-1)
        return decode_adjacency(rounded.clamp(0, 1), nodes, encoding, adjacency_part), valid
    edges = rounded.unflatten(-1, (-1, 2))
    valid = ((edges >= 0) & (edges < nodes)).flatten(-2).all(-1)
    return adjacency_from_edges(edges.clamp(0, nodes - 1).long(), nodes), valid


def same_graph(predictions: torch.Tensor, edges: torch.Tensor, nodes: int, encoding: str,
               adjacency_part: str = "full") -> torch.Tensor:
    """`[...]` bool: the prediction decodes to exactly the graph whose edge list is `edges` `[..., E, 2]`."""
    decoded, valid = decode_graphs(predictions, nodes, encoding, adjacency_part)
    return valid & (decoded == adjacency_from_edges(edges, nodes)).flatten(-2).all(-1)


def qubo_inputs(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """`[..., E, 2]` edge lists -> `[..., n*n]` flattened Max-Cut QUBO matrices (the net's input)."""
    return maxcut_qubo(adjacency_from_edges(edges, nodes)).flatten(-2)


def edge_list_bayes_prediction(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """The Bayes-optimal (MSE) prediction of the networkx-order edge list given the graph, `[..., 2E]`.

    The QUBO determines the graph, and the graph determines everything in the list but the order of v
    within each u-group, which is a uniformly random permutation (gnm_random_graph inserts edges in a
    uniformly random order). So the conditional mean keeps u and replaces each v by its group's mean.
    """
    edges = edges.long()
    u, v = edges[..., 0], edges[..., 1]
    sums = torch.zeros(*u.shape[:-1], nodes, device=edges.device).scatter_add_(-1, u, v.float())
    counts = torch.zeros(*u.shape[:-1], nodes, device=edges.device).scatter_add_(-1, u, torch.ones_like(v.float()))
    v_mean = sums.gather(-1, u) / counts.gather(-1, u)
    return torch.stack([u.float(), v_mean], dim=-1).flatten(-2)
