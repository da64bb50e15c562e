"""The replica-batched conv net: parameter counts, the exact hand-built solution, replica independence."""

import itertools

import pytest
import torch

from overparam.nets.replica import ACTIVATIONS
from overparam.tasks.life import life_run, parse_rule, sample_boards
from overparam.tasks.life.net import LifeConvNet
from overparam.tasks.life.rules import NEIGHBOR_INDICES, blocks_for


@pytest.mark.parametrize("m, expected", [(1, 25), (5, 161), (20, 1241), (100, 22201)])
def test_firner_parameter_count_per_block(m, expected):
    assert expected == 2 * m * m + 22 * m + 1
    assert LifeConvNet(replicas=3, blocks=1, m_factor=m).params_per_replica() == expected
    assert LifeConvNet(replicas=2, blocks=3, m_factor=m).params_per_replica() == 3 * expected


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_springer_kenyon_minimal_net_has_23n_plus_2_parameters(steps):
    net = LifeConvNet(replicas=1, blocks=steps, m_factor=1, layout="springer_kenyon")
    assert net.params_per_replica() == 23 * steps + 2


def test_depth_factor_floors_steps_times_d():
    assert [blocks_for(3, d) for d in (0.7, 1.0, 1.5, 2.0)] == [2, 3, 4, 6]


def all_neighborhoods():
    codes = torch.arange(512)
    return ((codes[:, None] >> torch.arange(9)) & 1).float().reshape(512, 3, 3)


def probabilities(net, boards):
    with torch.no_grad():
        out = net(boards)
    return torch.sigmoid(out) if net.output_kind == "logits" else out


CASES = [
    (neighborhood, layout, activation, head)
    for neighborhood, layout, activation, head in itertools.product(
        ("moore", "von_neumann"), ("firner", "springer_kenyon"), ACTIVATIONS, ("sigmoid", "clamp")
    )
    if not (layout == "springer_kenyon" and activation == "leaky_relu")
]


@pytest.mark.parametrize("neighborhood, layout, activation, head", CASES)
def test_presolve_is_exact_on_every_neighborhood(neighborhood, layout, activation, head):
    rule = parse_rule("B3/S23", neighborhood)
    net = LifeConvNet(2, 1, 1, activation, head, layout).eval()
    net.presolve(rule)
    boards = all_neighborhoods()
    center = probabilities(net, boards.expand(2, -1, -1, -1))[..., 1, 1]
    flat = boards.reshape(512, 9)
    expected = torch.tensor(
        [float(rule.alive_next(int(row[4]), int(row[NEIGHBOR_INDICES[neighborhood]].sum()))) for row in flat]
    )
    assert (center - expected).abs().max() < 1e-3
    assert torch.equal(center.round(), expected.expand(2, -1))


@pytest.mark.parametrize("neighborhood, layout, activation, head", CASES)
def test_presolve_is_exact_for_several_steps_on_random_boards(neighborhood, layout, activation, head):
    rule = parse_rule("B3/S23", neighborhood)
    generator = torch.Generator().manual_seed(1)
    boards = sample_boards(generator, 64, 9, 0.45)
    for steps in (2, 3):
        net = LifeConvNet(1, steps, 1, activation, head, layout).eval()
        net.presolve(rule)
        predicted = probabilities(net, boards[None])[0]
        assert torch.equal(predicted.round(), life_run(boards, steps, rule))


@pytest.mark.parametrize("rule_string, m", [("B36/S23", 2), ("B2/S", 1), ("B1357/S1357", 8), ("B0/S8", 2)])
def test_presolve_handles_any_life_like_rule_given_enough_width(rule_string, m):
    rule = parse_rule(rule_string, "moore")
    assert len(rule.alive_intervals()) <= m
    net = LifeConvNet(1, 2, m, "relu", "clamp", boundary="wrap").eval()
    net.presolve(rule)
    boards = sample_boards(torch.Generator().manual_seed(2), 64, 8, 0.5)
    assert torch.equal(probabilities(net, boards[None])[0], life_run(boards, 2, rule, "wrap"))


def test_presolve_refuses_a_net_too_narrow_for_the_rule():
    with pytest.raises(ValueError, match="m_factor >= 2"):
        LifeConvNet(1, 1, 1).presolve(parse_rule("B36/S23", "moore"))


def test_replicas_do_not_mix():
    """Changing replica 1's weights changes only replica 1's output; its gradient reaches only its own weights."""
    net = LifeConvNet(3, 2, 2, "leaky_relu")
    net.reset_parameters([11, 12, 13])
    boards = sample_boards(torch.Generator().manual_seed(0), 4, 6, 0.5).expand(3, -1, -1, -1)
    before = net(boards).detach()
    with torch.no_grad():
        net.layers[0].weight[1] += 1.0
    after = net(boards)
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2])
    assert not torch.equal(after[1], before[1])
    after[2].sum().backward()
    grad = net.layers[0].weight.grad
    assert grad[0].abs().sum() == 0 and grad[1].abs().sum() == 0 and grad[2].abs().sum() > 0


def test_same_seed_gives_same_initialisation_alone_or_among_others():
    alone = LifeConvNet(1, 2, 3, normalize=True)
    alone.reset_parameters([42])
    among = LifeConvNet(3, 2, 3, normalize=True)
    among.reset_parameters([7, 42, 9])
    for a, b in zip(alone.parameters(), among.parameters()):
        assert torch.equal(a[0], b[1])
