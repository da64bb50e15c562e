"""Firner's Dropout2d (model.normalize): what it does on the plain path, and the fast paths doing the same.

The plain path (`OVERPARAM_FUSED=0`) sends every cell through the convs and multiplies each block's 3x3 conv
output by its board's channel mask; the fast path looks the first 3x3 conv up per pattern and runs the rest in numba
kernels (`tasks.life.kernels.blocks`). Both take their masks from the replicas' own dropout generators, drawn the
same way.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from helpers import TINY
from overparam.nets.replica import LEAKY_SLOPE
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.kernels import SWITCH
from overparam.tasks.life.kernels import blocks as fused
from overparam.tasks.life.net import LifeConvNet

pytest.importorskip("numba")
SEEDS = [21, 22, 23]
P = 0.4


def generators(base=300):
    return [torch.Generator().manual_seed(base + i) for i in range(len(SEEDS))]


def dropout_net(blocks, head="sigmoid", boundary="dead", m=3, activation="leaky_relu"):
    """A net with Dropout2d and PyTorch's default init (wider than --normalize's N(0, 0.02), so that no head
    saturates and every layer gets a gradient)."""
    net = LifeConvNet(len(SEEDS), blocks, m, activation, head, boundary=boundary, normalize=True, dropout=P)
    net.reset_parameters(SEEDS)
    init = [torch.Generator().manual_seed(s) for s in SEEDS]
    for layer in net.layers:
        layer.reset(init, normalize=False)
    return net.train()


def boards(batch=9, height=7, width=6, seed=0):
    # 7 x 6 boards: 56 (dead) or 72 (wrap) flat positions each, so that tiles of 256 straddle boards
    return (torch.rand(len(SEEDS), batch, height, width, generator=torch.Generator().manual_seed(seed)) < 0.5).to(
        torch.uint8)


def outputs_and_gradients(net, cells, fused_on, monkeypatch):
    monkeypatch.setenv(SWITCH, "1" if fused_on else "0")
    net.zero_grad()
    grid = FlatBoards(cells.shape[1], cells.shape[2], cells.shape[3], net.boundary)
    streams = generators()
    outputs = net.flat_outputs(grid.embed(cells), grid, streams)
    (outputs * torch.linspace(-1.0, 2.0, outputs.shape[-1])).sum().backward()
    return outputs.detach(), [p.grad.clone() for p in net.parameters()], [g.get_state() for g in streams]


@pytest.mark.parametrize("head", ["sigmoid", "sigmoid_bceloss", "clamp"])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("blocks", [2, 3])
def test_the_fast_path_with_dropout_equals_the_plain_path(blocks, boundary, head, monkeypatch):
    net = dropout_net(blocks, head, boundary)
    cells = boards()
    calls = []
    kernel = fused._FirstBlock.apply
    monkeypatch.setattr(fused._FirstBlock, "apply", lambda *a: calls.append(1) or kernel(*a))
    plain, plain_grads, plain_states = outputs_and_gradients(net, cells, False, monkeypatch)
    assert not calls
    fast, fast_grads, fast_states = outputs_and_gradients(net, cells, True, monkeypatch)
    assert calls  # the fast path ran, with the first block's kernel
    assert all(torch.equal(a, b) for a, b in zip(plain_states, fast_states))  # the same draws, as many
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    assert all(bool(g.any()) for g in plain_grads)  # every parameter gets a gradient: a real comparison
    for fast_grad, plain_grad in zip(fast_grads, plain_grads):
        torch.testing.assert_close(fast_grad, plain_grad, rtol=1e-4, atol=1e-5 * max(1.0, plain_grad.abs().max()))
    # and dropout did act: the same net without it (eval mode) gives other outputs
    grid = FlatBoards(cells.shape[1], cells.shape[2], cells.shape[3], boundary)
    with torch.no_grad():
        undropped = net.eval().flat_outputs(grid.embed(cells), grid, generators())
    assert (grid.interior(undropped) - grid.interior(plain)).abs().max() > 1e-5  # 100x the paths' differences


@pytest.mark.parametrize("steps", [2, 3])
def test_a_firner_training_step_is_the_same_fast_or_plain(steps, monkeypatch):
    """Through `LifeTask.training_losses` (von Neumann B3/S23, Firner's head), m = 20 at one replica."""
    task = LifeTask(parse_rule("B3/S23", "von_neumann"), steps=steps, batch_size=16)
    results = []
    for fused_on in (False, True):
        monkeypatch.setenv(SWITCH, "1" if fused_on else "0")
        net = dropout_net(steps, "sigmoid_bceloss", m=20 if steps == 2 else 2)
        losses = task.training_losses(net, generators(500), generators(600), "cpu")
        losses.sum().backward()
        results.append((losses.detach(), [p.grad for p in net.parameters()]))
    (plain_losses, plain_grads), (fast_losses, fast_grads) = results
    torch.testing.assert_close(fast_losses, plain_losses, rtol=1e-5, atol=1e-6)
    for fast_grad, plain_grad in zip(fast_grads, plain_grads):
        torch.testing.assert_close(fast_grad, plain_grad, rtol=1e-4, atol=1e-5 * max(1.0, plain_grad.abs().max()))


def test_dropout2d_zeroes_whole_channels_of_a_board_and_scales_the_rest():
    """The plain path's first 3x3 conv with its Dropout2d against nn.functional.conv2d and masks drawn here."""
    net = dropout_net(2, m=4)
    cells = boards(batch=64, height=5, width=5, seed=1)
    grid = FlatBoards(64, 5, 5, "dead")
    streams = generators()
    masks = net.dropout_masks(64, streams)
    pre = net._run_layers(grid.embed(cells).float().unsqueeze(1), 0, 1, grid, masks)  # conv, dropout, act
    ours = grid.interior(pre)  # [K, 8, B, 5, 5]

    channels = 8
    for k in range(len(SEEDS)):
        weight = net.layers[0].weight[k].detach().T.reshape(channels, 3, 3, 1).permute(0, 3, 1, 2)  # [8, 1, 3, 3]
        conv = F.conv2d(cells[k].float().unsqueeze(1), weight, net.layers[0].bias[k, 0].detach(), padding=1)
        noise = torch.rand(64, 1, channels, generator=generators()[k])  # the replica's stream, drawn afresh
        kept = (noise[:, 0] < 1 - P).float()  # [B, C]
        expected = F.leaky_relu(conv * kept[:, :, None, None] / (1 - P), LEAKY_SLOPE)  # [B, C, 5, 5]
        torch.testing.assert_close(ours[k].permute(1, 0, 2, 3), expected, rtol=1e-5, atol=1e-6)
        zeroed = (ours[k] == 0).flatten(2).all(-1)  # [C, B]: a whole board's channel is 0 ...
        assert torch.equal(zeroed, kept.T == 0)  # ... exactly when it is dropped
    dropped = torch.stack([m == 0 for m in masks]).float().mean()
    assert abs(dropped.item() - P) < 0.06  # 1536 draws: P +- 4.6 standard deviations

    net.eval()
    assert net.dropout_masks(64, generators()) == []
    off = net._run_layers(grid.embed(cells).float().unsqueeze(1), 0, 1, grid, [])
    without = LifeConvNet(len(SEEDS), 2, 4, "leaky_relu", normalize=True, dropout=0.0)
    without.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(cells.float()), without.train()(cells.float()), rtol=0, atol=0)
    assert not torch.equal(off, pre)


def test_a_resumed_firner_job_ends_where_an_uninterrupted_one_ends(tmp_path, monkeypatch):
    from overparam.config import compose
    from overparam.jobs import job, progress
    from overparam.jobs import trainer as training

    overrides = ["experiment=firner", "task.steps=2", "model.m_factor=2", "trials=2", "trainer.max_steps=30",
                 "trainer.checkpoint_every_n_steps=10", *TINY]
    whole = job.run(compose(overrides), tmp_path / "whole")

    class CrashLater(progress.ProgressLog):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 25:
                raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "ProgressLog", CrashLater)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job.run(compose(overrides), tmp_path / "resumed")
    monkeypatch.undo()
    resumed = job.run(compose(overrides), tmp_path / "resumed")
    assert resumed["resumed_from_step"] == 20
    assert resumed["per_replica"] == whole["per_replica"]
    assert whole["config"]["model"]["dropout"] == P and whole["config"]["model"]["normalize"]
