"""LifeConvNet against plain torch.nn nets built independently from its weights: nn.Conv2d layers (cross-correlation,
zero or circular padding), the activation, and Firner's nn.Sigmoid + nn.BCELoss or BCE on logits.

Random weights make every kernel asymmetric, so a flipped or transposed kernel, a wrong stencil order or a wrong
padding fails here (the hand-built presolve kernel is symmetric and would not notice)."""

import pytest
import torch
from torch import nn

from overparam.nets.replica import LEAKY_SLOPE
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.net import LifeConvNet


def generators(count, base=100):
    return [torch.Generator().manual_seed(base + i) for i in range(count)]


def reference_net(net: LifeConvNet, k: int) -> nn.Sequential:
    """Replica k of `net` as an nn.Sequential of nn.Conv2d, sharing nothing with the replica code path."""
    modules = []
    last = len(net.layers) - 1
    padding_mode = "zeros" if net.boundary == "dead" else "circular"
    for index, layer in enumerate(net.layers):
        block, position = divmod(index, net.layers_per_block)
        weight, bias = layer.weight[k].detach().T, layer.bias[k, 0].detach()  # [out, in], [out]
        fan_out, fan_in = weight.shape
        if position == 0 and block < net.blocks:  # input index = stencil offset * channels + channel
            channels = fan_in // 9
            conv = nn.Conv2d(channels, fan_out, 3, padding=1, padding_mode=padding_mode)
            kernel = weight.view(fan_out, 9, channels).permute(0, 2, 1).reshape(fan_out, channels, 3, 3)
        else:
            conv = nn.Conv2d(fan_in, fan_out, 1)
            kernel = weight.view(fan_out, fan_in, 1, 1)
        with torch.no_grad():
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)
        modules.append(conv)
        if index < last:
            modules.append(nn.LeakyReLU(LEAKY_SLOPE))
    if net.head == "sigmoid_bceloss":
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def replica_gradients(reference: nn.Sequential) -> list[torch.Tensor]:
    """The reference's gradients in the replica layout (weight `[in, out]` with 3x3 inputs offset-major, bias)."""
    grads = []
    for conv in (m for m in reference if isinstance(m, nn.Conv2d)):
        out, channels, height, _ = conv.weight.shape
        weight = conv.weight.grad.reshape(out, channels, height * height).permute(0, 2, 1).reshape(out, -1)
        grads += [weight.T, conv.bias.grad]
    return grads


@pytest.mark.parametrize("head, reference_loss", [("sigmoid_bceloss", nn.BCELoss()),
                                                  ("sigmoid", nn.BCEWithLogitsLoss())])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("blocks, layout", [(1, "firner"), (2, "firner"), (2, "springer_kenyon")])
def test_every_path_equals_a_plain_conv2d_net_and_torch_loss(head, reference_loss, boundary, blocks, layout):
    replicas, m = 3, 2
    task = LifeTask(parse_rule("B3/S23", "von_neumann"), steps=blocks, boundary=boundary, batch_size=8, train_size=6)
    net = LifeConvNet(replicas, blocks, m, "leaky_relu", head, layout, boundary=boundary)
    net.reset_parameters([7, 8, 9])
    with torch.no_grad():  # spread the weights so that some cells saturate, where the two losses differ most
        for p in net.parameters():
            p.mul_(4.0)
    losses = task.training_losses(net, generators(replicas), generators(replicas), "cpu")  # the fast path
    losses.sum().backward()
    boards, targets = task.train_batch(generators(replicas), "cpu")
    for k in range(replicas):
        reference = reference_net(net, k)
        expected = reference_loss(reference(boards[k].unsqueeze(1)), targets[k].unsqueeze(1))
        expected.backward()
        torch.testing.assert_close(losses[k], expected, rtol=1e-5, atol=1e-6)
        ours = [g[k].reshape(-1) for p in net.layers for g in (p.weight.grad, p.bias.grad)]
        for a, b in zip(ours, replica_gradients(reference)):
            torch.testing.assert_close(a, b.reshape(-1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("path", ["fast", "plain"])
def test_a_saturated_wrong_cell_stops_learning_with_firners_loss_only(path):
    """Every output at logit 20: sigmoid(20) is 1.0 in float32, so nn.BCELoss clamps log(0) at -100 and its gradient
    is exactly 0, while BCE on logits still pulls every dead cell back (gradient sigmoid(20) - 0)."""
    task = LifeTask(parse_rule("B3/S23", "von_neumann"), batch_size=8, train_size=6)
    gradients = {}
    for head in ("sigmoid_bceloss", "sigmoid"):
        net = LifeConvNet(2, 1, 1, "leaky_relu", head)
        net.reset_parameters([1, 2])
        with torch.no_grad():
            net.layers[-1].weight.zero_()
            net.layers[-1].bias.fill_(20.0)
        if path == "fast":
            losses = task.training_losses(net, generators(2), generators(2), "cpu")
        else:
            boards, targets = task.train_batch(generators(2), "cpu")
            losses = task.replica_losses(net(boards), targets, net.output_kind)
        losses.sum().backward()
        gradients[head] = net.layers[-1].bias.grad
        if head == "sigmoid_bceloss":
            _, targets = task.train_batch(generators(2), "cpu")
            dead_fraction = 1 - targets.flatten(1).mean(1)
            torch.testing.assert_close(losses, 100 * dead_fraction)  # log(1 - 1) clamped at -100
            assert all(torch.equal(p.grad, torch.zeros_like(p.grad)) for p in net.parameters())
    assert (gradients["sigmoid"] > 0.5).all()


@pytest.mark.parametrize("path", ["fast", "plain"])
@pytest.mark.parametrize("logit", [-20.0, -40.0, -100.0])
def test_a_wrongly_dead_cell_keeps_learning_with_firners_loss_until_its_sigmoid_underflows(path, logit):
    """The other side of the saturation: every output at a very negative logit. nn.BCELoss divides by
    max(p (1 - p), 1e-12), so a live cell (target 1) pulls its logit up with gradient -1 while p >= 1e-12 (logit
    above about -27.6), then with about -1e12 p (-4e-6 at -40), and with exactly 0 once sigmoid underflows to 0 in
    float32 (below about -88). Ours matches nn.BCELoss on the same probabilities at each logit."""
    task = LifeTask(parse_rule("B3/S23", "von_neumann"), batch_size=8, train_size=6)
    net = LifeConvNet(2, 1, 1, "leaky_relu", "sigmoid_bceloss")
    net.reset_parameters([1, 2])
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.fill_(logit)
    if path == "fast":
        losses = task.training_losses(net, generators(2), generators(2), "cpu")
    else:
        boards, targets = task.train_batch(generators(2), "cpu")
        losses = task.replica_losses(net(boards), targets, net.output_kind)
    losses.sum().backward()
    _, targets = task.train_batch(generators(2), "cpu")
    z = torch.full_like(targets, logit, requires_grad=True)
    reference = torch.stack([torch.nn.BCELoss()(torch.sigmoid(z[k]), targets[k]) for k in range(2)])
    reference.sum().backward()
    expected = z.grad.flatten(1).sum(1)  # the bias gradient: every cell's logit moves with it
    torch.testing.assert_close(net.layers[-1].bias.grad.flatten(), expected, rtol=1e-4, atol=1e-12)
    if logit == -20.0:
        live_fraction = targets.flatten(1).mean(1)
        torch.testing.assert_close(expected, -live_fraction, rtol=1e-4, atol=1e-6)  # -1 per live cell, averaged
    if logit == -100.0:
        assert torch.equal(net.layers[-1].bias.grad, torch.zeros_like(net.layers[-1].bias.grad))
