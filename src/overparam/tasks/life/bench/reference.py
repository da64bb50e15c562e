"""The benchmark's references: the Game of Life net trained as one model in a plain PyTorch loop, the default
task's way (nn.Conv2d, ReLU, Adam, BCE on logits, fresh boards every step) and Firner's own way for `--firner`:
per block nn.Conv2d 3x3 (1 -> 2m, zero padding) -> nn.Dropout2d(0.4) (every block but the last) -> nn.LeakyReLU ->
1x1 (2m -> m) -> nn.LeakyReLU -> 1x1 (m -> 1) -> nn.LeakyReLU (but the last block's), then nn.Sigmoid and
nn.BCELoss; --normalize's init (weights N(0, 0.02), biases U(-1, 1)); Adam at 1e-3; fresh batches of 128 10x10
boards, every cell alive with probability 1/2, targets by von Neumann B3/S23 on dead-edged boards.
"""

from __future__ import annotations

import torch
from torch import nn

from overparam.perf.timing import timed
from overparam.tasks.life.rules import parse_rule
from overparam.tasks.life.simulate import life_run

BOARD, BATCH = 10, 128  # every point's boards: Firner's 10x10, 128 per step

FIRNER_DROPOUT = 0.4


def firner_net(m: int, blocks: int, dropout: float = FIRNER_DROPOUT) -> nn.Sequential:
    """Firner's net with --normalize, in train mode."""
    layers: list[nn.Module] = []
    for block in range(blocks):
        layers.append(nn.Conv2d(1, 2 * m, 3, padding=1))
        if block < blocks - 1 and dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        layers += [nn.LeakyReLU(), nn.Conv2d(2 * m, m, 1), nn.LeakyReLU(), nn.Conv2d(m, 1, 1)]
        if block < blocks - 1:
            layers.append(nn.LeakyReLU())
    layers.append(nn.Sigmoid())
    with torch.no_grad():
        for conv in (layer for layer in layers if isinstance(layer, nn.Conv2d)):
            conv.weight.normal_(0.0, 0.02)
            conv.bias.uniform_(-1.0, 1.0)
    return nn.Sequential(*layers).train()


def firner_step(m: int, steps: int, board: int, batch: int, device="cpu"):
    """One training step of Firner's loop as a function of nothing (its net, optimizer and data made here)."""
    rule = parse_rule("B3/S23", "von_neumann")
    net = firner_net(m, steps).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCELoss()

    def step():
        boards = (torch.rand(batch, 1, board, board, device=device) < 0.5).float()
        targets = life_run(boards, steps, rule, "dead")
        optimizer.zero_grad()
        loss = loss_fn(net(boards), targets)
        loss.backward()
        optimizer.step()

    return step


def reference_net(m: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for block in range(blocks):
        layers += [nn.Conv2d(1, 2 * m, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * m, m, 1), nn.ReLU(), nn.Conv2d(m, 1, 1)]
        if block < blocks - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def reference_seconds_per_step(m: int, steps: int, rule, seconds: float, device="cpu") -> float:
    torch.manual_seed(0)
    net = reference_net(m, steps).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()

    def step():
        boards = (torch.rand(BATCH, 1, BOARD, BOARD, device=device) < 0.5).float()
        targets = life_run(boards, steps, rule)
        optimizer.zero_grad()
        loss = loss_fn(net(boards), targets)
        loss.backward()
        optimizer.step()

    return timed(step, seconds, device=device)
