"""The fused kernel of later Life blocks (tasks.life.kernels.blocks) against the plain path: same outputs and
gradients."""

from __future__ import annotations

import pytest
import torch

from overparam.seeds import replica_generator
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import SWITCH
from overparam.tasks.life.kernels import blocks as fused
from overparam.tasks.life.net import LifeConvNet

pytest.importorskip("numba")
SEEDS = [11, 12, 13]


def _outputs_and_gradients(net, boards, boundary, fused_on, monkeypatch):
    monkeypatch.setenv(SWITCH, "1" if fused_on else "0")
    net.zero_grad()
    grid = FlatBoards(boards.shape[1], boards.shape[2], boards.shape[3], boundary)
    outputs = net.flat_outputs(grid.embed(boards), grid)
    # weights that differ per position, so that every output's gradient matters
    (outputs * torch.linspace(-1.0, 2.0, outputs.shape[-1])).sum().backward()
    return outputs.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("head", ["sigmoid", "sigmoid_bceloss", "clamp"])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
def test_fused_blocks_equal_the_plain_path(activation, head, boundary, monkeypatch):
    net = LifeConvNet(len(SEEDS), blocks=3, m_factor=3, activation=activation, head=head, boundary=boundary)
    net.reset_parameters(SEEDS)
    boards = (torch.rand(len(SEEDS), 9, 7, 6, generator=torch.Generator().manual_seed(0)) < 0.5).to(torch.uint8)
    assert fused.fused_blocks_apply(net, torch.zeros(1, 1, 1))  # not a comparison of the plain path with itself
    plain_outputs, plain_grads = _outputs_and_gradients(net, boards, boundary, False, monkeypatch)
    fused_outputs, fused_grads = _outputs_and_gradients(net, boards, boundary, True, monkeypatch)
    torch.testing.assert_close(fused_outputs, plain_outputs, rtol=1e-5, atol=1e-5)
    assert all(bool(g.any()) for g in plain_grads[-12:])  # every later layer gets a gradient: a real comparison
    for fused_grad, plain_grad in zip(fused_grads, plain_grads):
        torch.testing.assert_close(fused_grad, plain_grad, rtol=1e-4, atol=1e-5 * max(1.0, plain_grad.abs().max()))


def test_a_training_step_is_the_same_fused_or_plain(monkeypatch):
    """Through LifeTask.training_losses (flat layout, codes shared with the targets), K = 3, steps = 2."""
    task = LifeTask(parse_rule("B3/S23", "moore"), steps=2, batch_size=16)
    results = []
    for fused_on in (False, True):
        monkeypatch.setenv(SWITCH, "1" if fused_on else "0")
        net = LifeConvNet(len(SEEDS), blocks=2, m_factor=3, activation="leaky_relu")
        net.reset_parameters(SEEDS)
        generators = [replica_generator(seed, "data") for seed in SEEDS]
        losses = task.training_losses(net, generators, None, "cpu")
        losses.sum().backward()
        results.append((losses.detach(), [p.grad for p in net.parameters()]))
    (plain_losses, plain_grads), (fused_losses, fused_grads) = results
    torch.testing.assert_close(fused_losses, plain_losses, rtol=1e-5, atol=1e-6)
    for fused_grad, plain_grad in zip(fused_grads, plain_grads):
        torch.testing.assert_close(fused_grad, plain_grad, rtol=1e-4, atol=1e-6)


def test_the_plain_path_runs_where_the_kernel_does_not_apply(monkeypatch):
    x = torch.zeros(1, 1, 1)
    assert not fused.fused_blocks_apply(LifeConvNet(2, 2, 2, activation="elu"), x)  # other activations
    assert not fused.fused_blocks_apply(LifeConvNet(2, 1, 2), x)  # one block: nothing to fuse
    assert not fused.fused_blocks_apply(LifeConvNet(2, 2, 2, layout="springer_kenyon"), x)
    assert not fused.fused_blocks_apply(LifeConvNet(2, 2, 2), x.double())
    dropout = LifeConvNet(2, 3, 2, normalize=True, dropout=0.4)  # Dropout2d runs fused too (tests/test_dropout.py)
    assert fused.fused_blocks_apply(dropout.train(), x) and fused.fused_blocks_apply(dropout.eval(), x)
    monkeypatch.setenv(SWITCH, "0")
    assert not fused.fused_blocks_apply(LifeConvNet(2, 2, 2), x)


def test_the_lookup_fused_with_the_refresh_gives_the_same_bits(monkeypatch):
    """Dead boundary: `later_blocks_from_table` (lookup and refresh in one numba pass) against `later_blocks` on the
    torch lookup: outputs and the table's gradient equal bit for bit (same products, same order of additions)."""
    from overparam.tasks.life.net import lookup

    net = LifeConvNet(len(SEEDS), blocks=3, m_factor=2)
    net.reset_parameters(SEEDS)
    grid = FlatBoards(9, 7, 6, "dead")
    boards = (torch.rand(len(SEEDS), 9, 7, 6, generator=torch.Generator().manual_seed(3)) < 0.5).to(torch.uint8)
    codes = grid.codes(grid.embed(boards))
    results = []
    for fused_lookup in (True, False):
        table = torch.randn(len(SEEDS), 1, 512, generator=torch.Generator().manual_seed(4), requires_grad=True)
        if fused_lookup:
            outputs = fused.later_blocks_from_table(net, table, codes, grid)
        else:
            outputs = fused.later_blocks(net, lookup(table, codes), grid)
        (outputs * torch.linspace(-1.0, 2.0, outputs.shape[-1])).sum().backward()
        results.append((outputs.detach(), table.grad))
    (fused_outputs, fused_grad), (torch_outputs, torch_grad) = results
    assert torch.equal(fused_outputs, torch_outputs) and torch.equal(fused_grad, torch_grad)
    assert bool((torch_grad != 0).sum() > 100)  # most patterns occur and get a gradient
