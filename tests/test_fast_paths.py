"""The fused training paths give the loss and gradients of the plain path: boards -> net -> per-cell loss."""

import pytest
import torch

from overparam.tasks.life import LifeTask, life_run, parse_rule
from overparam.tasks.life.net import LifeConvNet
from overparam.tasks.life.simulate import fair_coin_boards


def generators(count):
    return [torch.Generator().manual_seed(100 + i) for i in range(count)]


def plain_losses(task, net, replicas):
    boards, targets = task.train_batch(generators(replicas), "cpu")
    return task.replica_losses(net(boards, generators(replicas)), targets, net.output_kind)


@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize(
    "steps, blocks, head, normalize, activation, density",
    [
        (1, 1, "sigmoid", False, "relu", 0.5),      # per-pattern counts
        (2, 2, "sigmoid", False, "relu", 0.5),      # flat layout, first block looked up
        (3, 3, "clamp", False, "gelu", 0.3),
        (2, 2, "sigmoid", True, "leaky_relu", 0.5),  # Dropout2d in the first block: every cell through the convs
        (1, 1, "sigmoid_bceloss", False, "leaky_relu", 0.5),  # Firner's nn.Sigmoid + nn.BCELoss, each path
        (2, 2, "sigmoid_bceloss", False, "leaky_relu", 0.3),
        (2, 2, "sigmoid_bceloss", True, "leaky_relu", 0.5),
    ],
)
def test_fused_losses_and_gradients_equal_the_plain_path(boundary, steps, blocks, head, normalize, activation, density):
    replicas = 3
    task = LifeTask(parse_rule("B3/S23", "moore"), steps=steps, boundary=boundary, density=density,
                    batch_size=16, train_size=7)
    net = LifeConvNet(replicas, blocks, 3, activation, head, boundary=boundary, normalize=normalize)
    net.reset_parameters([1, 2, 3])
    fused = task.training_losses(net, generators(replicas), generators(replicas), "cpu")
    fused.sum().backward()
    fused_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    plain = plain_losses(task, net, replicas)
    plain.sum().backward()
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused_grads, (p.grad for p in net.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_pattern_target_counts_match_a_direct_count():
    task = LifeTask(parse_rule("B36/S23", "moore"), steps=2, boundary="wrap")
    boards = fair_coin_boards(generators(2), 8, 6, "cpu")
    counts = task.pattern_target_counts(boards)
    targets = life_run(boards, 2, task.rule, "wrap")
    padded = torch.cat([boards[..., -1:, :], boards, boards[..., :1, :]], dim=-2)
    padded = torch.cat([padded[..., -1:], padded, padded[..., :1]], dim=-1).long()
    codes = sum(padded[..., 1 + dy : 7 + dy, 1 + dx : 7 + dx] << (3 * (dy + 1) + dx + 1)
                for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    expected = torch.zeros(2, 512, 2)
    for k in range(2):
        expected[k].view(-1).index_add_(0, (2 * codes[k] + targets[k].long()).reshape(-1), torch.ones(8 * 36))
    assert torch.equal(counts, expected) and counts.sum() == 2 * 8 * 36


def test_cached_pattern_tables_made_under_inference_mode_still_train():
    from overparam.tasks.life.patterns import _pattern_matrix, _rule_table

    _pattern_matrix.cache_clear()
    _rule_table.cache_clear()
    net = LifeConvNet(2, 1, 2)
    net.reset_parameters([1, 2])
    with torch.inference_mode():
        net(torch.zeros(2, 3, 5, 5))
        life_run(torch.zeros(3, 5, 5), 1, parse_rule("B3/S23", "moore"))
    net.pattern_outputs().sum().backward()
    assert net.layers[0].weight.grad.abs().sum() > 0
