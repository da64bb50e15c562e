"""The why-width analyses' numbers against closed forms and independent computations (not just their keys):
distance from init by hand, the Hessian summary's fractions on a matrix with known eigenvalues, the one-block
pattern path's Hessian against the board batch's, and the lottery's rewound and re-initialised nets by index
arithmetic written here, not taken from `rewound`."""

from __future__ import annotations

import copy
import math
import types

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator

from overparam.analysis.base import Trained
from overparam.analysis.distance import distance_from_init
from overparam.analysis.hessian import ReplicaHessian, hessian_spectra, spectrum_summary, task_loss
from overparam.seeds import replica_seed, replica_seeds
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.analysis import lottery as lottery_module
from overparam.tasks.life.analysis.lottery import rewound, train
from overparam.tasks.life.analysis.pruning import pruned_width
from overparam.tasks.life.analysis.units import apply_masks, full_masks, hidden_layers, unit_mask
from overparam.tasks.life.batches import fixed_boards, pattern_batch
from overparam.tasks.life.net import LifeConvNet

# ----- distance from init ---------------------------------------------------------------------------------


def test_distance_from_init_is_the_hand_computed_norm_ratio():
    """Replica 0 moves one weight by 0.5, replica 1 two weights by 3 and 4 (distance 5, a 3-4-5 triangle), replica
    2 not at all; ||w0|| is summed by hand over every named parameter, the PReLU slopes included."""
    initial = LifeConvNet(3, 1, 1, "prelu", normalize=False)
    initial.reset_parameters([11, 12, 13])
    trained = copy.deepcopy(initial)
    with torch.no_grad():
        trained.layers[0].weight[0, 4, 1] += 0.5
        trained.layers[1].bias[1, 0, 0] += 3.0
        trained.acts[2].slope[1, 0, 0] += 4.0  # a PReLU slope is a parameter too
    rows = distance_from_init(trained, initial)
    assert [row["init_distance"] for row in rows] == pytest.approx([0.5, 5.0, 0.0], abs=1e-6)
    for k, row in enumerate(rows):
        squares = sum(float(value) ** 2 for _, p in initial.named_parameters() for value in p[k].reshape(-1).tolist())
        assert row["init_relative_distance"] == pytest.approx(row["init_distance"] / math.sqrt(squares), rel=1e-9)
    # 25 + 3 PReLU slopes per replica (firner m = 1): the norm runs over exactly these parameters
    assert sum(p[0].numel() for p in initial.parameters()) == 25 + 3


def test_distance_from_an_all_zero_start_is_nan_not_infinite():
    initial = LifeConvNet(1, 1, 1, "relu")
    for p in initial.parameters():
        torch.nn.init.zeros_(p)
    trained = copy.deepcopy(initial)
    with torch.no_grad():
        trained.layers[0].weight[0, 0, 0] = 2.0
    (row,) = distance_from_init(trained, initial)
    assert row["init_distance"] == 2.0 and math.isnan(row["init_relative_distance"])


# ----- the Hessian summary on a matrix with known eigenvalues ---------------------------------------------

# lambda_max = 10; tol = zero_tolerance x lambda_max = 1e-3 x 10 = 0.01.
OUTLIERS = [10.0, 4.0, 2.0]  # > outlier_fraction x lambda_max = 1.0
BULK = [0.5, 0.3, 0.2, 0.1, 0.05]
NEAR_ZERO = [0.0, 1e-4, -1e-4, 5e-3, -5e-3, 9e-3, -9e-3]  # |lambda| <= 0.01
NEGATIVE = [-0.02, -0.5, -1.0, -3.0]  # < -0.01: negative curvature
EIGENVALUES = np.array(OUTLIERS + BULK + NEAR_ZERO + NEGATIVE)
SUMMARY = types.SimpleNamespace(top_k=5, lanczos_steps=len(EIGENVALUES), probes=3, seed=0, zero_tolerance=1e-3,
                                outlier_fraction=0.1, dense_limit=1000)


class KnownHessian:
    """What spectrum_summary reads from a ReplicaHessian (size, dense, vector_product, operator), for a fixed
    symmetric matrix: the Hessian of the quadratic loss w^T A w / 2."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix
        self.size = len(matrix)
        self.point = torch.linspace(-1.0, 1.0, self.size, dtype=torch.float64)  # where the loss is looked at

    def loss(self, flat: torch.Tensor) -> torch.Tensor:
        return flat @ torch.from_numpy(self.matrix) @ flat / 2

    def gradient_norm(self) -> float:
        return float(np.linalg.norm(self.matrix @ self.point.numpy()))

    def dense(self) -> np.ndarray:
        return self.matrix

    def vector_product(self, vector: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.matrix @ vector.numpy())

    def operator(self) -> LinearOperator:
        return LinearOperator(self.matrix.shape, matvec=lambda v: self.matrix @ np.ravel(v), dtype=np.float64)


def _rotated(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T


def _expected(top_k: int) -> dict:
    size = len(EIGENVALUES)
    return {"hessian_lambda_max": 10.0, "hessian_lambda_min": -3.0,
            "hessian_top": sorted(EIGENVALUES, reverse=True)[:top_k],
            "hessian_outliers": min(len(OUTLIERS), top_k),
            "hessian_near_zero_fraction": len(NEAR_ZERO) / size,
            "hessian_negative_fraction": len(NEGATIVE) / size,
            "hessian_negative_count": len(NEGATIVE)}


def test_dense_spectrum_fractions_are_the_closed_form_counts():
    """A rotated (non-diagonal) matrix with 7 of 19 eigenvalues within tol of zero and 4 below -tol: the dense
    path gives mass 7/19 and 4/19, 4 negative directions, 3 outliers, lambda_min -3."""
    known = KnownHessian(_rotated(EIGENVALUES, 1))
    summary = spectrum_summary(known, SUMMARY)
    assert summary["hessian_method"] == "dense" and summary["hessian_parameters"] == 19
    w = known.point.numpy()  # the loss w^T A w / 2 and its gradient A w at the point, beside the spectrum
    assert summary["hessian_loss"] == pytest.approx(w @ known.matrix @ w / 2)
    assert summary["hessian_gradient_norm"] == pytest.approx(np.linalg.norm(known.matrix @ w))
    for key, value in _expected(SUMMARY.top_k).items():
        assert summary[key] == pytest.approx(value, abs=1e-9), key


def test_lanczos_spectrum_fractions_are_exact_for_a_diagonal_matrix():
    """The eigsh + SLQ path. For a diagonal matrix the eigenvectors are the coordinate axes, so a Rademacher probe
    (normalised) puts weight exactly 1/P on every eigenvalue, and with P Lanczos steps the nodes are the
    eigenvalues: the SLQ masses equal the closed form, not just on average."""
    settings = types.SimpleNamespace(**{**vars(SUMMARY), "dense_limit": 0})
    summary = spectrum_summary(KnownHessian(np.diag(EIGENVALUES)), settings)
    assert summary["hessian_method"] == "lanczos"
    for key, value in _expected(SUMMARY.top_k).items():
        assert summary[key] == pytest.approx(value, abs=1e-8), key
    assert sum(summary["hessian_slq_weights"]) == pytest.approx(1.0)


@pytest.mark.parametrize("dense_limit", [0, 1000])
def test_outliers_are_counted_among_the_top_k_only(dense_limit):
    """Three eigenvalues exceed 0.1 x lambda_max, but with top_k = 2 only two are looked at: the count is capped
    at top_k (the module docstring's 'a count equal to top_k is a floor')."""
    settings = types.SimpleNamespace(**{**vars(SUMMARY), "top_k": 2, "dense_limit": dense_limit})
    summary = spectrum_summary(KnownHessian(np.diag(EIGENVALUES)), settings)
    assert summary["hessian_outliers"] == 2 and summary["hessian_top"] == pytest.approx([10.0, 4.0])
    wider = spectrum_summary(KnownHessian(np.diag(EIGENVALUES)), types.SimpleNamespace(**{**vars(settings),
                                                                                          "top_k": 8}))
    assert wider["hessian_outliers"] == 3  # with room for all of them, the true count


def test_the_tolerance_scales_with_lambda_max():
    """Doubling the matrix doubles tol, so the fractions do not change; a larger zero_tolerance (0.1 x 10 = 1)
    moves the bulk (0.5 ... 0.05), -0.02, -0.5 and -1 (|lambda| = tol counts: <= tol) into the near-zero mass:
    7 + 5 + 3 of 19, leaving one negative direction (-3)."""
    doubled = spectrum_summary(KnownHessian(np.diag(2 * EIGENVALUES)), SUMMARY)
    assert doubled["hessian_near_zero_fraction"] == pytest.approx(7 / 19)
    assert doubled["hessian_negative_fraction"] == pytest.approx(4 / 19)
    loose = spectrum_summary(KnownHessian(np.diag(EIGENVALUES)),
                             types.SimpleNamespace(**{**vars(SUMMARY), "zero_tolerance": 0.1}))
    assert loose["hessian_near_zero_fraction"] == pytest.approx(15 / 19)
    assert loose["hessian_negative_count"] == 1


# ----- the one-block pattern path ------------------------------------------------------------------------


def _random_one_block(boundary: str, m: int = 1, seed: int = 0) -> LifeConvNet:
    net = LifeConvNet(2, 1, m, "leaky_relu", "sigmoid", "firner", boundary, normalize=True)
    net.reset_parameters([seed, seed + 1])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:  # large random weights: no unit dead on every pattern, a full-rank-ish Hessian
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.7)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * 0.7)
    return net.eval()


@pytest.mark.parametrize("boundary, neighborhood", [("dead", "von_neumann"), ("wrap", "moore")])
def test_pattern_batch_hessian_equals_the_board_batch_hessian(boundary, neighborhood):
    """A one-block net's loss on a batch of boards (mean BCE over B x H x W cells) and the weighted sum over 512
    patterns x 2 targets (3x3 boards, weights = pattern counts at their center cell) are the same function of the
    parameters: their dense float64 Hessians agree to rounding."""
    task = LifeTask(rule=parse_rule("B3/S23", neighborhood), boundary=boundary, train_size=6)
    net = _random_one_block(boundary)
    inputs, targets = fixed_boards(task, seed=3, boards=5)
    assert inputs.shape == (1, 5, 6, 6)
    module = net.export_replica(1)
    on_boards = ReplicaHessian(module, inputs[0], task_loss(task, targets, None, "logits"))
    patterns, pattern_targets, weights = pattern_batch(task, inputs)
    assert float(weights.sum()) == 5 * 6 * 6  # every cell counted once, under its own target
    on_patterns = ReplicaHessian(module, patterns[0], task_loss(task, pattern_targets, weights, "logits"))
    assert float(on_patterns.loss(on_patterns.point)) == pytest.approx(float(on_boards.loss(on_boards.point)),
                                                                       rel=1e-12)
    board_hessian, pattern_hessian = on_boards.dense(), on_patterns.dense()
    assert np.abs(board_hessian).max() > 1e-3  # not trivially zero
    np.testing.assert_allclose(pattern_hessian, board_hessian, rtol=0, atol=1e-12 * np.abs(board_hessian).max())
    # and hessian_spectra, which takes the pattern path for this net, reports the board Hessian's spectrum
    spectra = types.SimpleNamespace(examples=5, seed=3, top_k=4, lanczos_steps=5, probes=1, zero_tolerance=1e-3,
                                    outlier_fraction=0.1, dense_limit=1000)
    assert task.fixed_batch(1, 3, 5, net)[2] is not None  # the pattern path is the one taken
    rows, _ = hessian_spectra(net, task, spectra)
    eigenvalues = np.linalg.eigvalsh(board_hessian)
    np.testing.assert_allclose(rows[1]["hessian_top"], eigenvalues[::-1][:4], atol=1e-12)
    assert rows[1]["hessian_lambda_min"] == pytest.approx(eigenvalues[0], abs=1e-12)
    tol = 1e-3 * eigenvalues[-1]
    assert rows[1]["hessian_near_zero_fraction"] == pytest.approx(np.mean(np.abs(eigenvalues) <= tol))


# ----- the lottery's rewound and re-initialised nets ------------------------------------------------------


def _kept(units: int, removed: set) -> list[int]:
    return [u for u in range(units) if u not in removed]


def _expected_rewound(initial: LifeConvNet, replica: int, removed: dict, width: int) -> list[torch.Tensor]:
    """Per layer weight and bias of one slot of the rewound net, by plain loops: kept unit j (in order) of a hidden
    layer goes to slot j; a 1x1 layer reads it at row j, a 3x3 layer reading c hidden channels at row o * c + j
    (o the stencil offset; c = the old net's channels at the old row, the new net's at the new row). Layer shapes
    come from a fresh net of the pruned width."""
    shapes = LifeConvNet(1, initial.blocks, width, "relu", initial.head, initial.layout).layers
    hidden = set(hidden_layers(initial))
    out = []
    for index, layer in enumerate(initial.layers):
        old_w, old_b = layer.weight[replica], layer.bias[replica]
        columns = _kept(old_w.shape[1], removed[index]) if index in hidden else list(range(old_w.shape[1]))
        if index - 1 in hidden:
            channels_old = initial.layers[index - 1].weight.shape[2]
            channels_new = shapes[index - 1].weight.shape[2]
            kept_in = _kept(channels_old, removed[index - 1])
            offsets = 9 if old_w.shape[0] == 9 * channels_old else 1
            rows = [(o * channels_old + u, o * channels_new + j) for o in range(offsets) for j, u in enumerate(kept_in)]
        else:  # the board, or the previous block's single output channel
            rows = [(r, r) for r in range(old_w.shape[0])]
        weight = torch.zeros(shapes[index].weight.shape[1:])
        bias = torch.zeros(shapes[index].bias.shape[1:])
        for c_new, c_old in enumerate(columns):
            bias[0, c_new] = old_b[0, c_old]
            for r_old, r_new in rows:
                weight[r_new, c_new] = old_w[r_old, c_old]
        out += [weight, bias]
    return out


# layout, blocks, m, {replica: removed units per hidden layer}; every replica prunes to width 2 < m = 3, so the
# new net's channel count differs from the old one's wherever rows are re-indexed.
LOTTERY_CASES = [
    ("firner", 2, 3, {0: {0: {1, 4}, 1: {2}, 3: {0, 1, 2}, 4: {0}}, 2: {0: {5, 0}, 1: {1}, 3: {3, 4}, 4: {1, 2}}}),
    ("springer_kenyon", 2, 3, {1: {0: {0, 3}, 1: {1}, 2: {4, 5}, 3: {0, 2}},
                               2: {0: {1, 2}, 1: {0}, 2: {1, 2, 5}, 3: {1}}}),
]


@pytest.mark.parametrize("layout, blocks, m, removals", LOTTERY_CASES)
def test_rewound_net_holds_the_initial_weights_of_the_kept_units(layout, blocks, m, removals):
    initial = LifeConvNet(3, blocks, m, "prelu", "sigmoid", layout, "dead", normalize=False)
    initial.reset_parameters([5, 6, 7])
    with torch.no_grad():
        for act in initial.acts:
            act.slope.uniform_(0.1, 0.5, generator=torch.Generator().manual_seed(9))
    replicas = list(removals)
    assert set(hidden_layers(initial)) == set(removals[replicas[0]])
    width = max(pruned_width(initial, removed) for removed in removals.values())
    net, masks = rewound(initial, replicas, list(removals.values()), width)
    assert net.m_factor == width == 2 < m
    parameters = [p for layer in net.layers for p in (layer.weight, layer.bias)]
    for slot, replica in enumerate(replicas):
        expected = _expected_rewound(initial, replica, removals[replica], width)
        for index, (got, want, mask) in enumerate(zip(parameters, expected, masks)):
            torch.testing.assert_close(got[slot], want, rtol=0, atol=0, msg=f"parameter {index}")
            # the mask is 1 exactly where a surviving weight was copied (no initial weight is exactly zero)
            torch.testing.assert_close(mask[slot], (want != 0).float(), rtol=0, atol=0, msg=f"mask {index}")
        for old_act, new_act in zip(initial.acts, net.acts):
            assert torch.equal(new_act.slope[slot], old_act.slope[replica])
    # An independent check of the same thing: the rewound slot computes what the initial replica computes with the
    # removed units zeroed in place (unit_mask), since a zeroed unit outputs act(0) = 0.
    zeroed = copy.deepcopy(initial)
    zero_masks = full_masks(zeroed)
    for replica in replicas:
        unit_mask(zeroed, removals[replica], replica, zero_masks)
    apply_masks(zeroed, zero_masks)
    boards = (torch.rand(len(replicas), 4, 7, 7, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    full = torch.zeros(3, 4, 7, 7)
    full[replicas] = boards
    expected_out = zeroed.eval()(full)[replicas]
    torch.testing.assert_close(net.eval()(boards), expected_out, atol=1e-6, rtol=1e-6)


def test_masked_slots_stay_zero_through_training_and_the_kept_weights_move():
    layout, blocks, m, removals = LOTTERY_CASES[0]
    task = LifeTask(rule=parse_rule("B3/S23", "von_neumann"), batch_size=4, train_size=6)
    initial = LifeConvNet(3, blocks, m, "relu", "sigmoid", layout, "dead", normalize=False)
    initial.reset_parameters([5, 6, 7])
    width = max(pruned_width(initial, removed) for removed in removals.values())
    net, masks = rewound(initial, list(removals), list(removals.values()), width)
    before = [p.detach().clone() for layer in net.layers for p in (layer.weight, layer.bias)]
    optim = {"_target_": "torch.optim.SGD", "lr": 0.5}
    train(net, task, [1, 2], optim, 3, masks)
    after = [p.detach() for layer in net.layers for p in (layer.weight, layer.bias)]
    moved = 0.0
    for old, new, mask in zip(before, after, masks):
        assert torch.all(new[mask == 0] == 0)
        moved += float((new - old)[mask == 1].abs().sum())
    assert moved > 0


def test_lottery_rewinds_the_initial_weights_and_reinitialises_from_the_documented_seeds(monkeypatch, tmp_path):
    """The Lottery analysis end to end with pruning stubbed to known removals and training recorded instead of run:
    the rewound net is `rewound(initial, ...)`, the reinit control has the same masks and zero slots but weights from
    a fresh width-`w` net seeded replica_seed(seed, trials + k) (masked), and both train on the pruned replicas' own
    data seeds for the job's budget."""
    layout, blocks, m, removals = LOTTERY_CASES[0]
    task = LifeTask(rule=parse_rule("B3/S23", "von_neumann"), test_boards=20)
    config = types.SimpleNamespace(seed=17, trials=3, optim={"_target_": "torch.optim.SGD", "lr": 0.1},
                                   trainer=types.SimpleNamespace(max_steps=7))
    seeds = replica_seeds(config.seed, config.trials)
    initial = LifeConvNet(3, blocks, m, "relu", "sigmoid", layout, "dead", normalize=True)
    initial.reset_parameters(seeds)
    trained = copy.deepcopy(initial)  # the job's trained net: only its m_factor and successes matter here
    per_replica = [{"success": True}, {"success": False}, {"success": True}]
    monkeypatch.setattr(lottery_module, "prune",
                        lambda net, k, *args: (pruned_width(net, removals[k]), removals[k]))
    calls = []

    def record(net, task, data_seeds, optim, steps, masks=None):
        calls.append((copy.deepcopy(net), list(data_seeds), steps, masks))
        return torch.ones(len(data_seeds), dtype=torch.bool)

    monkeypatch.setattr(lottery_module, "train", record)
    analysis = lottery_module.Lottery()
    rows, summary = analysis.run(Trained(config, task, trained, initial, seeds, per_replica, tmp_path))
    width = max(pruned_width(initial, removals[k]) for k in (0, 2))
    assert [row.get("prune_width") for row in rows] == [pruned_width(initial, removals[0]), None,
                                                          pruned_width(initial, removals[2])]
    assert summary == {"rewind_width": width, "rewind_steps": 7}
    (tickets, ticket_seeds, steps, masks), (reinit, reinit_data, reinit_steps, reinit_masks) = calls
    assert ticket_seeds == reinit_data == [seeds[0], seeds[2]] and steps == reinit_steps == 7
    expected, expected_masks = rewound(initial, [0, 2], [removals[0], removals[2]], width)
    for got, want in zip(tickets.parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert all(torch.equal(a, b) for a, b in zip(reinit_masks, masks))
    assert all(torch.equal(a, b) for a, b in zip(masks, expected_masks))
    fresh = LifeConvNet(2, blocks, width, "relu", "sigmoid", layout, "dead", normalize=True)
    fresh.reset_parameters([replica_seed(17, 3 + k) for k in (0, 2)])
    apply_masks(fresh, masks)
    for got, want, ticket, mask in zip(reinit.parameters(), fresh.parameters(), tickets.parameters(), masks):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert torch.all(got[mask == 0] == 0)
        assert not torch.equal(got[mask == 1], ticket[mask == 1])  # new weights, not the rewound ones
    assert {"rewind_success", "reinit_success"} <= set(rows[0]) and "rewind_success" not in rows[1]
