"""Certified exactness of Life nets: every neighborhood a board can show, checked; known answers and the windows
checked against the net run on real boards (dead edges included)."""

import pytest
import torch

from overparam.tasks.life import LifeTask, life_run, parse_rule
from overparam.tasks.life import certificate as cert
from overparam.tasks.life.flatboards import FlatBoards
from overparam.tasks.life.net import LifeConvNet
from overparam.tasks.life.patterns import rule_table

RULE = parse_rule("B3/S23")


class TableNet:
    """A one-block "net" given by its logit on each of the 512 patterns, per replica."""

    blocks, output_kind = 1, "logits"

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def pattern_outputs(self) -> torch.Tensor:
        return self.logits

    def predict(self, boards: torch.Tensor, boundary: str = "dead") -> torch.Tensor:
        """Probabilities on `[K, T, H, W]` boards: each cell's logit looked up by its 3x3 code."""
        replicas, count, height, width = boards.shape
        grid = FlatBoards(count, height, width, boundary)
        codes = grid.codes(grid.embed(boards.to(torch.uint8)))  # [K, L]
        return grid.interior(torch.sigmoid(torch.gather(self.logits, 1, codes.long())))


def exact_logits(replicas: int) -> torch.Tensor:
    return (rule_table(RULE).float() * 10 - 5).expand(replicas, -1).clone()


def test_one_step_certificate_is_the_512_patterns():
    logits = exact_logits(3)
    logits[1, 511] = 5.0  # replica 1 wrong on the all-alive pattern (it dies of overcrowding)
    net = TableNet(logits)
    assert cert.certify(net, RULE, 1, "dead", [True, True, True]) == [True, False, True]
    assert cert.certify(net, RULE, 1, "wrap", [False, True, True]) == [False, False, True]  # 0 is not checked


def test_a_replica_can_pass_the_held_out_boards_and_fail_the_certificate():
    # Sparse held-out boards never show the all-alive pattern: the held-out set passes a net wrong there
    logits = exact_logits(2)
    logits[1, 511] = 5.0
    net = TableNet(logits)
    task = LifeTask(test_density=0.1, test_boards=200)
    rows = task.evaluate(lambda boards: net.predict(boards), 2, "cpu")
    assert [row["success"] for row in rows] == [True, True]
    assert cert.certify(net, RULE, 1, "dead", [True, True]) == [True, False]
    assert task.certify(torch.nn.Linear(1, 1), [True, True]) is None  # not a Life net: no certificate


@pytest.mark.parametrize("neighborhood", ["moore", "von_neumann"])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
def test_presolved_one_step_nets_are_certified(neighborhood, boundary):
    rule = parse_rule("B3/S23", neighborhood)
    net = LifeConvNet(replicas=2, m_factor=2, steps=1, boundary=boundary, rule=rule, presolve=True)
    net.reset_parameters([1, 2])
    net.eval()
    task = LifeTask(neighborhood=neighborhood, boundary=boundary)
    with torch.no_grad():
        assert task.certify(net, [True, True]) == [True, True]
        untrained = LifeConvNet(replicas=1, m_factor=2, steps=1, boundary=boundary, rule=rule)
        untrained.reset_parameters([3])
        assert task.certify(untrained.eval(), [True]) == [False]


def test_a_one_block_net_cannot_be_certified_for_two_steps():
    # the target two steps ahead depends on 5x5 cells, the net's output on 3x3: some window is always wrong
    net = LifeConvNet(replicas=1, m_factor=1, steps=2, d_factor=0.5, rule=RULE, presolve=True)
    net.reset_parameters([1])
    with torch.no_grad():
        assert LifeTask(steps=2).certify(net.eval(), [True]) == [False]


def test_three_blocks_are_beyond_the_certificate():
    net = LifeConvNet(replicas=1, m_factor=1, steps=3, rule=RULE)
    net.reset_parameters([1])
    assert LifeTask(steps=3).certify(net.eval(), [True]) is None


SIDES = {"low": 0, "mid": 2, "high": 4}  # the cell's row (or column) on a 5x5 board for each class


@pytest.mark.parametrize("layout", ["firner", "springer_kenyon"])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("steps, d_factor", [(2, 1.0), (1, 2.0), (2, 0.5)])
def test_windows_give_the_net_s_own_output_and_the_target_on_real_boards(layout, boundary, steps, d_factor):
    """Every class of window (interior; with dead edges, the 4 edges and 4 corners) against the net run on 5x5
    boards whose cell (r, c) sees that window, and against the simulator."""
    torch.manual_seed(0)
    net = LifeConvNet(replicas=3, m_factor=3, steps=steps, d_factor=d_factor, layout=layout, boundary=boundary,
                      rule=RULE)
    net.reset_parameters([5, 6, 7])
    net.eval()
    classes = cert.window_classes(boundary)
    assert len(classes) == (9 if boundary == "dead" else 1)
    sides = [(rows, cols) for rows in SIDES for cols in SIDES] if boundary == "dead" else [("mid", "mid")]
    boards = (torch.rand(64, 5, 5) < 0.5).float()
    with torch.no_grad():
        outputs = net(boards.expand(3, -1, -1, -1))  # [3, 64, 5, 5] logits
    targets = life_run(boards, steps, RULE, boundary)
    for (rows, cols), (free, onboard) in zip(sides, classes):
        r, c = SIDES[rows], SIDES[cols]
        windows = torch.zeros(64, dtype=torch.int64)
        for y in range(-2, 3):
            for x in range(-2, 3):
                if boundary == "wrap" or (0 <= r + y < 5 and 0 <= c + x < 5):
                    cell = boards[:, (r + y) % 5, (c + x) % 5].long()
                    windows |= cell << ((y + 2) * 5 + (x + 2))
        assert all(((windows >> bit) & 1).sum() == 0 for bit in range(25) if bit not in free)
        with torch.no_grad():
            mine = cert._outputs(net, cert._codes(windows), onboard)
        torch.testing.assert_close(mine, outputs[:, :, r, c], rtol=1e-5, atol=1e-5)
        assert torch.equal(cert._targets(RULE, steps, windows, onboard), targets[:, r, c].long())


def test_the_window_codes_are_the_codes_around_each_generation_one_position():
    windows = torch.randint(0, 1 << 25, (500,))
    codes = cert._codes(windows)  # [9, N]
    for j, (dy, dx) in enumerate([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]):
        expected = torch.zeros_like(windows)
        for bit, (sy, sx) in enumerate([(sy, sx) for sy in (-1, 0, 1) for sx in (-1, 0, 1)]):
            expected |= ((windows >> ((dy + sy + 2) * 5 + (dx + sx + 2))) & 1) << bit
        assert torch.equal(codes[j], expected)


def test_a_wrong_replica_leaves_the_check_and_the_others_finish_it():
    net = LifeConvNet(replicas=2, m_factor=1, steps=2, boundary="wrap", rule=RULE, presolve=True)
    net.reset_parameters([1, 2])
    with torch.no_grad():
        net.layers[-1].bias[1] += 100.0  # replica 1 predicts every cell alive
        net.eval()
        limited = cert.certify(net, RULE, 2, "wrap", [True, True], chunk=1 << 12, limit=1 << 14)
    assert limited == [True, False]


@pytest.mark.slow
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
def test_presolved_two_step_nets_pass_all_windows(boundary):
    net = LifeConvNet(replicas=1, m_factor=1, steps=2, boundary=boundary, rule=RULE, presolve=True)
    net.reset_parameters([1])
    with torch.no_grad():
        assert LifeTask(steps=2, boundary=boundary).certify(net.eval(), [True]) == [True]
