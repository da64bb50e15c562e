"""The QUBO Max-Cut task: QUBO = cut, encodings, the dataset cache, the Bayes wall, the MLP, a real job."""

import itertools
import random

import networkx as nx
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import overparam
from overparam.config import compose
from overparam.config.validate import ConfigError, validate
from overparam.nets.mlp import ReplicaMLP
from overparam.seeds import replica_generator, replica_seed
from overparam.stats import pooled_r2
from overparam.tasks.maxcut import qubo as maxcut
from overparam.tasks.maxcut.qubo import (
    adjacency_from_edges,
    decode_adjacency,
    edge_list_bayes_prediction,
    encode_targets,
    graph_dataset,
    maxcut_qubo,
    qubo_inputs,
    random_graph_edges,
)
from overparam.tasks.maxcut.task import MaxCutTask


def brute_force_cut(edges, assignment) -> int:
    return sum(assignment[u] != assignment[v] for u, v in edges)


def small_graphs():
    yield 4, list(nx.complete_graph(4).edges)  # max cut 4
    yield 5, list(nx.cycle_graph(5).edges)  # odd cycle: max cut 4
    for seed in range(4):
        graph = nx.gnm_random_graph(7, 9, seed=seed)
        yield 7, list(graph.edges)


@pytest.mark.parametrize("nodes, edges", list(small_graphs()))
def test_qubo_value_is_the_cut_of_every_assignment(nodes, edges):
    adjacency = np.zeros((nodes, nodes), dtype=np.int64)
    for u, v in edges:
        adjacency[u, v] = adjacency[v, u] = 1
    q = overparam.maxcut_qubo(adjacency)  # the lazy export
    assert isinstance(q, np.ndarray)
    assignments = np.array(list(itertools.product([0, 1], repeat=nodes)))
    values = np.einsum("ai,ij,aj->a", assignments, q, assignments)
    cuts = np.array([brute_force_cut(edges, x) for x in assignments])
    np.testing.assert_array_equal(values, cuts)
    # torch, batched, gives the same matrix
    torch.testing.assert_close(maxcut_qubo(torch.from_numpy(adjacency)[None])[0], torch.from_numpy(q))


def test_known_max_cuts_and_the_sign_convention():
    k4 = maxcut_qubo(adjacency_from_edges(torch.tensor(list(nx.complete_graph(4).edges)), 4))
    c5 = maxcut_qubo(adjacency_from_edges(torch.tensor(list(nx.cycle_graph(5).edges)), 5))
    best = [max(float(torch.tensor(x, dtype=torch.float) @ q @ torch.tensor(x, dtype=torch.float))
                for x in itertools.product([0, 1], repeat=len(q))) for q in (k4, c5)]
    assert best == [4.0, 4.0]
    assert torch.equal(k4.diagonal(), torch.full((4,), 3.0)) and k4[0, 1] == -1  # Q = D - A


def test_qubo_rejects_a_non_symmetric_matrix():
    with pytest.raises(ValueError, match="symmetric"):
        maxcut_qubo(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))


@pytest.mark.parametrize("encoding, part", [("adjacency", "full"), ("adjacency", "upper"), ("edge_list", "full"),
                                            ("sorted_edge_list", "full")])
def test_encodings_round_trip(encoding, part):
    nodes, count = 9, 12
    graphs = [nx.gnm_random_graph(nodes, count, seed=s) for s in range(20)]
    edges = torch.tensor([list(g.edges) for g in graphs])
    targets = encode_targets(edges, nodes, encoding, part)
    assert targets.shape == (20, maxcut.output_size(nodes, count, encoding, part))
    torch.testing.assert_close(decode_adjacency(targets, nodes, encoding, part), adjacency_from_edges(edges, nodes))
    for graph, row in zip(graphs, targets):
        if encoding == "edge_list":
            assert row.long().tolist() == [x for edge in graph.edges for x in edge]  # networkx's order
        if encoding == "sorted_edge_list":
            assert row.long().tolist() == [x for edge in sorted(tuple(sorted(e)) for e in graph.edges) for x in edge]
        if encoding == "adjacency" and part == "full":
            expected = torch.tensor(nx.to_numpy_array(graph), dtype=torch.float)
            torch.testing.assert_close(row.view(nodes, nodes), expected)


def test_the_dataset_is_deterministic_cached_and_reused(tmp_path, monkeypatch):
    first = graph_dataset(10, 12, 30, seed=7, cache_dir=tmp_path / "a")
    files = list((tmp_path / "a").rglob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "a").rglob("*.tmp"))
    stamp = files[0].stat().st_mtime_ns

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached dataset was regenerated")

    monkeypatch.setattr(maxcut, "random_graph_edges", no_generation)
    again = graph_dataset(10, 12, 30, seed=7, cache_dir=tmp_path / "a")
    np.testing.assert_array_equal(first, again)
    assert files[0].stat().st_mtime_ns == stamp
    monkeypatch.undo()

    elsewhere = graph_dataset(10, 12, 30, seed=7, cache_dir=tmp_path / "b")  # regenerated from scratch
    np.testing.assert_array_equal(first, elsewhere)
    other_seed = graph_dataset(10, 12, 30, seed=8, cache_dir=tmp_path / "a")
    assert not np.array_equal(first, other_seed)
    assert len(list((tmp_path / "a").rglob("*.npy"))) == 2  # keyed by its parameters
    # graph i is gnm_random_graph with its own seed, and the graphs differ
    direct = random_graph_edges(10, 12, maxcut.graph_seed(7, 3))
    np.testing.assert_array_equal(first[3], direct)
    assert len({first[i].tobytes() for i in range(30)}) == 30


def test_a_corrupt_cache_file_is_rebuilt(tmp_path):
    path = maxcut.dataset_path(6, 5, 4, 0, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    data = graph_dataset(6, 5, 4, 0, tmp_path)
    np.testing.assert_array_equal(np.load(path), data)


def test_the_same_qubo_comes_with_different_insertion_order_edge_lists():
    by_graph = {}
    for seed in range(500):
        edges = tuple(nx.gnm_random_graph(5, 4, seed=seed).edges)
        by_graph.setdefault(frozenset(edges), set()).add(edges)
    orders = next(sorted(group) for group in by_graph.values() if len(group) > 1)
    a, b = (torch.tensor(order) for order in orders[:2])
    assert torch.equal(maxcut_qubo(adjacency_from_edges(a, 5)), maxcut_qubo(adjacency_from_edges(b, 5)))
    assert not torch.equal(encode_targets(a, 5, "edge_list"), encode_targets(b, 5, "edge_list"))
    assert torch.equal(encode_targets(a, 5, "sorted_edge_list"), encode_targets(b, 5, "sorted_edge_list"))
    assert torch.equal(encode_targets(a, 5, "adjacency"), encode_targets(b, 5, "adjacency"))


def test_the_bayes_prediction_is_the_mean_over_random_insertion_orders():
    """Simulate gnm's random insertion: the same edge set added in shuffled orders, read back as G.edges."""
    graph = nx.gnm_random_graph(8, 14, seed=3)
    edge_set = list(graph.edges)
    rng = random.Random(0)
    lists = []
    for _ in range(4000):
        order = edge_set[:]
        rng.shuffle(order)
        shuffled = nx.Graph()
        shuffled.add_nodes_from(range(8))
        shuffled.add_edges_from((v, u) if rng.random() < 0.5 else (u, v) for u, v in order)
        lists.append(list(shuffled.edges))
    samples = torch.tensor(lists, dtype=torch.float).flatten(1)
    assert len({tuple(row.tolist()) for row in samples}) > 10  # the order really is random
    bayes = edge_list_bayes_prediction(torch.tensor(edge_set), 8)
    torch.testing.assert_close(samples.mean(0), bayes, atol=0.15, rtol=0)
    simulated_floor = ((samples - samples.mean(0)) ** 2).mean()
    exact_floor = ((samples - bayes) ** 2).mean()
    torch.testing.assert_close(simulated_floor, exact_floor, atol=0.02, rtol=0.02)
    assert exact_floor > 0.5


def test_the_published_wall_for_64_nodes_and_90_edges(tmp_path):
    """docs/qubo.md: the insertion-order list has R^2 <= ~0.42 and MSE >= ~50.6 per output."""
    task = MaxCutTask(nodes=64, edges=90, samples=1500, encoding="edge_list", test_fraction=0.5, cache_dir=tmp_path)
    limits = task.result_extras()
    assert 0.39 < limits["bayes_r2_ceiling"] < 0.45
    assert 48 < limits["bayes_mse_floor"] < 53
    assert task.input_size == 4096 and task.output_size == 180
    sorted_task = MaxCutTask(nodes=64, edges=90, samples=1500, encoding="sorted_edge_list", cache_dir=tmp_path)
    assert sorted_task.result_extras()["bayes_r2_ceiling"] == 1.0


def tiny_task(tmp_path, **overrides):
    settings = dict(nodes=8, edges=10, samples=300, encoding="adjacency", batch_size=16, cache_dir=tmp_path)
    return MaxCutTask(**{**settings, **overrides})


def test_batches_are_per_replica_and_split_from_the_test_set(tmp_path):
    task = tiny_task(tmp_path)
    assert (task.train_count, task.test_count) == (270, 30)
    seeds = [replica_seed(0, i) for i in range(3)]
    inputs, targets = task.train_batch([replica_generator(s, "data") for s in seeds], "cpu")
    alone_inputs, alone_targets = task.train_batch([replica_generator(seeds[1], "data")], "cpu")
    assert inputs.shape == (3, 16, 64) and targets.shape == (3, 16, 64)
    torch.testing.assert_close(inputs[1], alone_inputs[0])
    torch.testing.assert_close(targets[1], alone_targets[0])
    assert not torch.equal(inputs[0], inputs[1])
    # targets are the graphs behind the inputs: adjacency = -(off-diagonal of Q)
    q = inputs.view(3, 16, 8, 8)
    torch.testing.assert_close(targets.view(3, 16, 8, 8), -(q - torch.diag_embed(q.diagonal(dim1=-2, dim2=-1))))
    test_rows = {tuple(row.tolist()) for row in task.test_graphs("cpu").flatten(1)}
    train_rows = {tuple(row.tolist()) for row in task.graphs[: task.train_count].flatten(1)}
    assert not test_rows & train_rows


def test_evaluate_scores_an_exact_and_a_constant_predictor(tmp_path):
    task = tiny_task(tmp_path)
    _, test_targets = task.inputs_and_targets(task.test_graphs("cpu"))
    mean = test_targets.mean(0) + 0.1

    def predict(inputs):  # replica 0: the exact linear inverse; replica 1: a constant
        q = inputs.view(*inputs.shape[:2], 8, 8)
        exact = -(q - torch.diag_embed(q.diagonal(dim1=-2, dim2=-1))).flatten(-2)
        return torch.stack([exact[0], mean.expand_as(exact[1])])

    exact, constant = task.evaluate(predict, replicas=2, device="cpu", chunk=7)
    assert exact == dict(success=True, exact_recovery=1.0, exact_target_recovery=1.0, output_accuracy=1.0,
                         test_r2=1.0, test_mse=0.0, train_mse=0.0)
    assert constant["success"] is False and constant["exact_recovery"] == 0.0
    expected_r2 = pooled_r2(mean.expand_as(test_targets), test_targets).item()
    assert constant["test_r2"] == pytest.approx(expected_r2, abs=1e-6)
    assert constant["test_mse"] == pytest.approx(((mean - test_targets) ** 2).mean().item(), rel=1e-5)


def test_bad_parameters_fail_at_once_naming_the_key():
    good = OmegaConf.to_container(compose(["task=maxcut", "model=mlp"]))
    validate(good)
    validate(OmegaConf.create(good))
    cases = {
        "edges": (3000, "task.edges=3000: must be an integer in 1..2016"),
        "encoding": ("adjacency_list",
                     "task.encoding='adjacency_list': must be one of adjacency, edge_list, sorted_edge_list"),
        "adjacency_part": ("lower", "task.adjacency_part='lower': must be one of full, upper"),
        "samples": (5, "task.samples=5"),
        "nodes": (1, "task.nodes=1"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(ConfigError) as error:
            validate({**good, "task": {**good["task"], key: value}})
        assert message in str(error.value) and "\n" not in str(error.value)


def test_the_validation_layer_rejects_bad_maxcut_configs_before_any_work():
    validate(compose(["experiment=qubo_structural_bias_cpu"]))
    with pytest.raises(ValueError, match="task.edges=121"):
        validate(compose(["experiment=qubo_structural_bias_cpu", "task.edges=121"]))


def test_the_mlp_counts_a_sum_of_layers_and_keeps_replicas_apart():
    net = ReplicaMLP(replicas=3, inputs=4, outputs=2, hidden=[3, 0, 5], activation="relu")
    assert net.hidden == [3, 5]
    assert net.params_per_replica() == (4 + 1) * 3 + (3 + 1) * 5 + (5 + 1) * 2
    assert ReplicaMLP(1, 4096, 180, []).params_per_replica() == 737_460  # docs/qubo.md
    seeds = [replica_seed(1, i) for i in range(3)]
    net.reset_parameters(seeds)
    alone = ReplicaMLP(replicas=1, inputs=4, outputs=2, hidden=[3, 5])
    alone.reset_parameters(seeds[2:])
    x = torch.randn(3, 6, 4)
    torch.testing.assert_close(net(x)[2], alone(x[2:])[0])
    assert not torch.allclose(net(x)[0], net(x)[1])
    with pytest.raises(ValueError, match="model.activation"):
        ReplicaMLP(1, 4, 2, [3], activation="tanh")


def test_a_linear_net_learns_the_adjacency_matrix_end_to_end(tmp_path):
    from overparam.jobs.job import run

    config = compose([
        "task=maxcut", "model=mlp", "optim=sgd", "optim.lr=0.5", "optim.momentum=0.9",
        "task.nodes=8", "task.edges=10", "task.samples=400", "task.batch_size=50", f"task.cache_dir={tmp_path}",
        "trials=2", "trainer.max_steps=300", "trainer.progress=none", "trainer.checkpoint_every_n_steps=0",
    ])
    result = run(config, tmp_path / "job")
    assert result["status"] == "ok" and result["encoding"] == "adjacency" and result["hidden"] == []
    assert result["params_per_replica"] == 64 * 64 + 64
    assert result["test_r2_mean"] > 0.99
    assert result["exact_recovery_mean"] == 1.0 and result["success_rate"] == 1.0
    assert result["bayes_r2_ceiling"] == 1.0 and result["test_graphs"] == 40
    assert result["train_mse_mean"] < 0.01


def test_an_edge_list_in_another_order_recovers_the_graph_but_not_the_target(tmp_path):
    """Replica 0 lists every graph's edges sorted (the right graph, another order); replica 1 the target itself;
    replica 2 the target with its second edge replaced by its first; replica 3 the target with a node out of range."""
    task = tiny_task(tmp_path, encoding="edge_list")
    by_qubo = {tuple(q.tolist()): edges for q, edges in zip(qubo_inputs(task.graphs, 8), task.graphs)}

    def predict(inputs):
        edges = torch.stack([by_qubo[tuple(q.tolist())] for q in inputs[0]])
        target = encode_targets(edges, 8, "edge_list")
        repeated = edges.clone()
        repeated[:, 1] = repeated[:, 0]
        out_of_range = target.clone()
        out_of_range[:, 0] = 8.2
        return torch.stack([encode_targets(edges, 8, "sorted_edge_list") + 0.3, target - 0.3,
                            encode_targets(repeated, 8, "edge_list"), out_of_range])

    sorted_order, itself, repeated_edge, invalid = task.evaluate(predict, replicas=4, device="cpu", chunk=7)
    test = task.test_graphs("cpu")
    targets = encode_targets(test, 8, "edge_list")
    in_sorted_order = (targets == encode_targets(test, 8, "sorted_edge_list")).all(-1).float().mean().item()
    assert in_sorted_order < 0.5  # networkx's order is random within a node: most lists are not sorted
    assert sorted_order["exact_recovery"] == 1.0 and sorted_order["success"] is True
    assert sorted_order["exact_target_recovery"] == pytest.approx(in_sorted_order)
    assert itself["exact_recovery"] == itself["exact_target_recovery"] == 1.0
    assert repeated_edge["exact_recovery"] == 0.0 and invalid["exact_recovery"] == 0.0


def test_the_bayes_edge_list_names_the_graph_only_when_no_node_lists_two_edges(tmp_path):
    """The conditional mean averages v over a node's group, so a group of two or more edges decodes to one repeated
    edge: the Bayes predictor recovers exactly the graphs in which every u appears once."""
    task = tiny_task(tmp_path, nodes=16, edges=6, samples=400, encoding="edge_list")
    test = task.test_graphs("cpu")
    u = test[..., 0]
    distinct_u = torch.tensor([len(set(row.tolist())) == len(row) for row in u]).float().mean().item()
    assert 0 < distinct_u < 1
    assert task.result_extras()["bayes_graph_recovery"] == pytest.approx(distinct_u)
    assert tiny_task(tmp_path, encoding="sorted_edge_list").result_extras()["bayes_graph_recovery"] == 1.0
