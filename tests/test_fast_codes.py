"""The numba codes/targets/counts kernels (tasks.life.kernels.codes) give the torch path's integers exactly."""

from __future__ import annotations

import pytest
import torch

from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import SWITCH
from overparam.tasks.life.kernels import codes as fast_codes
from overparam.tasks.life.net import LifeConvNet
from overparam.tasks.life.paths import flat_targets

pytest.importorskip("numba")
RULES = [("B3/S23", "moore"), ("B36/S125", "moore"), ("B2/S0", "von_neumann")]


def _boards(replicas, batch, height, width, density=0.5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(replicas, batch, height, width, generator=generator) < density).to(torch.uint8)


def _torch_path(monkeypatch):
    """Only the codes kernels off (OVERPARAM_FUSED=0 would also turn off the fused later blocks)."""
    monkeypatch.setattr(fast_codes, "_load", lambda device: None)


@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("rule, neighborhood", RULES)
def test_flat_codes_and_targets_equal_the_torch_path(boundary, steps, rule, neighborhood, monkeypatch):
    task = LifeTask(parse_rule(rule, neighborhood), steps=steps, boundary=boundary)
    boards = _boards(3, 5, 7, 6, density=0.4, seed=steps)
    grid = FlatBoards(5, 7, 6, boundary)
    alive = grid.embed(boards)
    fast = fast_codes.flat_codes_and_targets(alive, grid, task.rule, steps)
    assert fast is not None  # a comparison of two paths, not of the torch path with itself
    _torch_path(monkeypatch)
    codes = grid.codes(alive)
    targets = flat_targets(task, alive, codes, grid)
    assert torch.equal(fast[0], codes) and fast[0].dtype == codes.dtype
    assert torch.equal(fast[1], targets) and fast[1].dtype == targets.dtype
    assert bool(targets.any()) and bool((targets == 0).any())  # not a trivially empty or full board


@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("rule, neighborhood", RULES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_pattern_target_counts_equal_the_torch_path(boundary, steps, rule, neighborhood, dtype, monkeypatch):
    task = LifeTask(parse_rule(rule, neighborhood), steps=steps, boundary=boundary)
    boards = _boards(3, 9, 6, 8, seed=10 + steps).to(dtype)
    fast = task.pattern_target_counts(boards)
    _torch_path(monkeypatch)
    plain = task.pattern_target_counts(boards)
    assert torch.equal(fast, plain) and fast.dtype == plain.dtype
    assert fast.sum() == 3 * 9 * 6 * 8 and (fast > 0).sum() > 100


@pytest.mark.parametrize("steps, blocks", [(1, 1), (2, 2), (3, 3)])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
def test_a_training_step_is_the_same_with_or_without_the_kernels(steps, blocks, boundary, monkeypatch):
    """Same seeds, same integers: the losses and gradients are equal bit for bit."""
    results = []
    for fast_on in (True, False):
        if not fast_on:
            _torch_path(monkeypatch)
        task = LifeTask(parse_rule("B3/S23", "moore"), steps=steps, boundary=boundary, batch_size=8, train_size=6)
        net = LifeConvNet(3, blocks, 2, boundary=boundary)
        net.reset_parameters([1, 2, 3])
        generators = [torch.Generator().manual_seed(50 + k) for k in range(3)]
        losses = task.training_losses(net, generators, None, "cpu")
        losses.sum().backward()
        results.append((losses.detach(), [p.grad for p in net.parameters()]))
    (fast_losses, fast_grads), (plain_losses, plain_grads) = results
    assert torch.equal(fast_losses, plain_losses)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, plain_grads))


def test_the_switch_and_other_dtypes_give_the_torch_path(monkeypatch):
    boards = _boards(2, 3, 5, 5)
    rule = parse_rule("B3/S23", "moore")
    assert fast_codes.pattern_target_counts(boards, rule, 1, "dead") is not None
    assert fast_codes.pattern_target_counts(boards.float(), rule, 1, "dead") is None  # uint8 only
    monkeypatch.setenv(SWITCH, "0")
    assert fast_codes.pattern_target_counts(boards, rule, 1, "dead") is None
