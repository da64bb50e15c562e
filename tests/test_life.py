"""The simulator against known patterns and hand-checked boards."""

import pytest
import torch

from overparam import life_step, parse_rule
from overparam.tasks.life import life_run, sample_boards


def board(rows):
    return torch.tensor([[1.0 if c == "#" else 0.0 for c in row] for row in rows])


def test_block_is_still_life():
    block = board(["....", ".##.", ".##.", "...."])
    assert torch.equal(life_step(block), block)


def test_blinker_oscillates_with_period_two():
    horizontal = board([".....", ".....", ".###.", ".....", "....."])
    vertical = board([".....", "..#..", "..#..", "..#..", "....."])
    assert torch.equal(life_step(horizontal), vertical)
    assert torch.equal(life_step(vertical), horizontal)


def test_glider_moves_one_cell_diagonally_every_four_steps():
    glider = torch.zeros(8, 8)
    glider[:3, :3] = board([".#.", "..#", "###"])
    after = life_run(glider, 4, parse_rule("B3/S23", "moore"))
    assert torch.equal(after, torch.roll(glider, shifts=(1, 1), dims=(0, 1)))


def test_glider_on_a_torus_comes_home():
    glider = torch.zeros(6, 6)
    glider[:3, :3] = board([".#.", "..#", "###"])
    after = life_run(glider, 4 * 6, parse_rule("B3/S23", "moore"), boundary="wrap")
    assert torch.equal(after, glider)


def test_dead_edges_differ_from_wrapped_edges():
    edge_blinker = board(["###..", ".....", ".....", ".....", "....."])
    dead = life_step(edge_blinker, boundary="dead")
    wrap = life_step(edge_blinker, boundary="wrap")
    assert torch.equal(dead, board([".#...", ".#...", ".....", ".....", "....."]))
    # On a torus the bottom row is the top row's neighbor, so the blinker stands across the seam.
    assert torch.equal(wrap, board([".#...", ".#...", ".....", ".....", ".#..."]))


def test_von_neumann_counts_only_orthogonal_neighbors():
    # Center cell: dead, 3 orthogonal live neighbors (N, W, E) and 1 diagonal one: born under von Neumann;
    # under Moore it has 4 neighbors and stays dead.
    pattern = board(["##.", "#.#", "..."])
    assert life_step(pattern, neighborhood="von_neumann")[1, 1] == 1
    assert life_step(pattern, neighborhood="moore")[1, 1] == 0


def test_von_neumann_hand_checked_board():
    start = board(["#.#", ".#.", "#.#"])
    # Corners have 0 orthogonal live neighbors; edge cells 3 (two corners + center) -> born; the center has 0 -> dies.
    assert torch.equal(life_step(start, neighborhood="von_neumann"), board([".#.", "#.#", ".#."]))
    # Moore: corners see only the center (1) and die, edges see 3 and are born, the center sees 4 and dies.
    assert torch.equal(life_step(start, neighborhood="moore"), board([".#.", "#.#", ".#."]))


def test_other_rules_and_batched_boards():
    seeds = board(["....", ".##.", "....", "...."])  # B2/S: Seeds, every live cell dies
    expected = board([".##.", "....", ".##.", "...."])
    assert torch.equal(life_step(seeds, "B2/S"), expected)
    batch = torch.stack([seeds, expected])
    assert torch.equal(life_step(batch, "B2/S")[0], expected)


def test_every_neighborhood_follows_the_rule():
    for neighborhood, rule_string in (("moore", "B36/S23"), ("von_neumann", "B13/S024")):
        rule = parse_rule(rule_string, neighborhood)
        codes = torch.arange(512)
        boards = ((codes[:, None] >> torch.arange(9)) & 1).float().reshape(512, 3, 3)
        center = life_step(boards, rule, neighborhood)[:, 1, 1]
        from overparam.tasks.life.rules import NEIGHBOR_INDICES

        flat = boards.reshape(512, 9)
        neighbors = flat[:, NEIGHBOR_INDICES[neighborhood]].sum(1).long()
        alive = flat[:, 4].long()
        expected = torch.tensor([float(rule.alive_next(a, n)) for a, n in zip(alive.tolist(), neighbors.tolist())])
        assert torch.equal(center, expected)


@pytest.mark.parametrize(
    "rule, neighborhood, message",
    [("B9/S23", "moore", "only 8"), ("X3/S23", "moore", "B<digits>/S<digits>"), ("B3/S5", "von_neumann", "only 4")],
)
def test_malformed_rules_are_rejected(rule, neighborhood, message):
    with pytest.raises(ValueError, match=message):
        parse_rule(rule, neighborhood)


def test_density_range_draws_one_density_per_board():
    generator = torch.Generator().manual_seed(0)
    boards = sample_boards(generator, 2000, 10, (0.0, 1.0))
    densities = boards.mean((1, 2))
    assert densities.min() < 0.05 and densities.max() > 0.95
    fixed = sample_boards(generator, 2000, 10, 0.3).mean()
    assert abs(fixed.item() - 0.3) < 0.01
