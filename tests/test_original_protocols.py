"""Settings that reproduce the original protocols: Geiger et al.'s stop when fitted, their orthogonal init and
alternating labels; Firner's trained walk destination; the paired difference the lottery is judged by."""

import math

import numpy as np
import pytest
import torch

from overparam.core.step import replica_step
from overparam.nets.mlp import ReplicaMLP, orthogonal_units_
from overparam.seeds import replica_generator
from overparam.stats import paired_difference, wilson_interval
from overparam.tasks.jamming import random_points

# ----- Geiger et al.: stop each replica as soon as its loss is exactly 0 -------------------------------------------


def _hinge_run(steps: int, fitted: torch.Tensor | None):
    """Two replicas of one parameter: replica 0 minimises relu(0.5 - w)^2 (0 once w >= 0.5), replica 1 (w - 3)^2."""
    weight = torch.nn.Parameter(torch.zeros(2, 1))
    optimizer = torch.optim.Adam([weight], lr=0.05)
    alive = torch.ones(2, dtype=torch.bool)
    trace = []
    for _ in range(steps):
        replica_step(None, optimizer, alive, lambda: torch.stack([torch.relu(0.5 - weight[0, 0]) ** 2,
                                                                  (weight[1, 0] - 3.0) ** 2]), fitted=fitted)
        trace.append(weight.detach().clone())
    return trace


def test_a_fitted_replica_is_frozen_where_its_loss_first_read_zero():
    fitted = torch.zeros(2, dtype=torch.bool)
    trace = _hinge_run(60, fitted)
    assert fitted.tolist() == [True, False]
    first = next(i for i, w in enumerate(trace) if w[0, 0] >= 0.5)  # the step after which the loss reads 0
    assert all(torch.equal(w[0], trace[first][0]) for w in trace[first:])  # never moves again
    assert not torch.equal(trace[-1][1], trace[first][1])  # replica 1 trains on
    # without the stop Adam's momentum carries replica 0 on past the point where its loss first read 0
    free = _hinge_run(60, None)
    assert free[-1][0, 0] > free[first][0, 0]
    assert torch.equal(torch.stack(free)[:, 1], torch.stack(trace)[:, 1])  # replica 1 is the same either way


def test_a_job_stops_when_every_replica_has_fitted_and_says_when(tmp_path):
    from helpers import run_py

    out = tmp_path / "job"
    run_py("task=jamming", "model=mlp", "model.hidden=[1]", "model.m_factor=64", "task.points=20", "task.dimension=3",
           "trials=3", "trainer.max_steps=3000", "trainer.precision=64-true", "trainer.progress=none",
           "trainer.stop_when_fitted=true", "optim.lr=0.01", "task.violation_tolerance=0", f"hydra.run.dir={out}")
    import json

    result = json.loads((out / "result.json").read_text())
    steps = [row["fitted_at_step"] for row in result["per_replica"]]
    assert all(row["success"] for row in result["per_replica"]) and all(s is not None for s in steps)
    assert result["trained_steps"] == result["stopped_at_step"] == max(steps) + 1 < 3000
    assert all(row["final_loss"] == 0.0 or row["fitted_at_step"] < max(steps) for row in result["per_replica"])


# ----- Geiger et al.'s orthogonal init and labels ------------------------------------------------------------------


@pytest.mark.parametrize("fan_in,fan_out", [(10, 16), (10, 25), (16, 16), (16, 1), (40, 7)])
def test_orthogonal_units_gives_every_unit_unit_norm_in_orthonormal_blocks(fan_in, fan_out):
    weight = orthogonal_units_(torch.empty(fan_in, fan_out, dtype=torch.float64), replica_generator(3, "init"))
    torch.testing.assert_close(weight.norm(dim=0), torch.ones(fan_out, dtype=torch.float64))
    for start in range(0, fan_out, fan_in):
        block = weight[:, start : start + fan_in]
        torch.testing.assert_close(block.T @ block, torch.eye(block.shape[1], dtype=torch.float64))


def test_torch_orthogonal_on_the_stored_weight_shrinks_wide_units_which_orthogonal_units_does_not():
    wide = ReplicaMLP(8, 10, 1, [1, 1], m_factor=40, init="orthogonal")
    wide.reset_parameters(list(range(8)))
    norms = wide.layers[0].weight.norm(dim=1)  # [K, 40]: each hidden unit's incoming weights
    assert norms.pow(2).mean().item() == pytest.approx(10 / 40, rel=1e-6)  # orthonormal rows: sum of squares = 10
    fixed = ReplicaMLP(8, 10, 1, [1, 1], m_factor=40, init="orthogonal_units")
    fixed.reset_parameters(list(range(8)))
    torch.testing.assert_close(fixed.layers[0].weight.norm(dim=1), torch.ones(8, 40))
    assert (fixed.layers[0].bias == 0).all()


def test_alternating_labels_keep_the_points_and_balance_the_signs():
    x, y = random_points(9, 4, replica_generator(1, "data"), "cpu")
    x2, y2 = random_points(9, 4, replica_generator(1, "data"), "cpu", labels="alternating")
    assert torch.equal(x, x2)
    assert y2.tolist() == [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]


# ----- the paired difference ---------------------------------------------------------------------------------------


def _pairs(a, b, c, d):
    return [(True, True)] * a + [(True, False)] * b + [(False, True)] * c + [(False, False)] * d


def test_paired_difference_counts_sign_and_limits():
    out = paired_difference(_pairs(10, 15, 5, 20))
    assert (out["pairs"], out["both"], out["first_only"], out["second_only"], out["neither"]) == (50, 10, 15, 5, 20)
    assert out["difference"] == pytest.approx(0.2) and out["ci_low"] < 0.2 < out["ci_high"]
    swapped = paired_difference(_pairs(10, 5, 15, 20))
    assert swapped["ci_low"] == pytest.approx(-out["ci_high"]) and swapped["ci_high"] == pytest.approx(-out["ci_low"])
    # exact McNemar: 15 vs 5 discordant pairs, two-sided binomial p = 2 P(X <= 5 | 20, 1/2)
    assert out["mcnemar_p"] == pytest.approx(2 * sum(math.comb(20, k) for k in range(6)) / 2**20)
    # no discordant pairs: the difference is 0 and the interval is not empty
    same = paired_difference(_pairs(7, 0, 0, 5))
    assert same["difference"] == 0 and same["ci_low"] < 0 < same["ci_high"] and same["mcnemar_p"] == 1.0
    # with phi = 0 (independent margins) the limits are Newcombe's for independent samples (his method 10)
    a, b, c, d = 4, 4, 4, 4
    out = paired_difference(_pairs(a, b, c, d))
    l1, u1 = wilson_interval(8, 16)
    assert out["ci_low"] == pytest.approx(-math.hypot(0.5 - l1, u1 - 0.5))


def test_paired_difference_covers_the_true_difference_about_95_percent_of_the_time():
    """Correlated pairs (as a rewound ticket and its re-initialised control on one replica's data) with a true
    difference of 0.15: Newcombe's method 10 is known to hold its nominal coverage closely at such sizes."""
    rng = np.random.default_rng(0)
    probabilities = np.array([0.35, 0.25, 0.10, 0.30])  # both, first only, second only, neither
    true = probabilities[1] - probabilities[2]
    covered, runs = 0, 2000
    for _ in range(runs):
        counts = rng.multinomial(60, probabilities)
        out = paired_difference(_pairs(*counts))
        covered += out["ci_low"] <= true <= out["ci_high"]
    assert 0.93 <= covered / runs <= 0.975


# ----- Firner's trained walk destination ---------------------------------------------------------------------------


def test_the_trained_destination_is_his_hand_solution_trained_once_and_shared_by_every_replica():
    from omegaconf import OmegaConf

    from overparam.tasks.life import LifeTask
    from overparam.tasks.life.analysis.walk import fixed_set_losses, solution_like, trained_firner_solution, walk_set
    from overparam.tasks.life.net import LifeConvNet

    task = LifeTask(neighborhood="von_neumann", batch_size=16)
    net = LifeConvNet(3, 1, 2, "leaky_relu", "sigmoid_bceloss", normalize=True, rule=task.rule)
    adam = OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 0.001})
    untrained = trained_firner_solution(net, task, adam, 0, 100)
    for a, b in zip(untrained.parameters(), solution_like(net, task.rule, "firner").parameters()):
        assert torch.equal(a, b)
    trained = trained_firner_solution(net, task, adam, 30, 100)
    for parameter in trained.parameters():
        assert torch.equal(parameter[0], parameter[1]) and torch.equal(parameter[0], parameter[2])
    assert not all(torch.equal(a, b) for a, b in zip(trained.parameters(), untrained.parameters()))
    assert trained.dropout == 0.4 and net.dropout == 0.4  # the replicas' own architecture is kept
    boards, targets = walk_set(task, 200, 10, 1)
    assert (fixed_set_losses(trained, task, boards, targets) < 0.01).all()


# ----- the docs' tables --------------------------------------------------------------------------------------------


def test_the_why_width_table_pairs_the_lottery_arms_per_replica(tmp_path, capsys):
    import json

    from overparam.jobs.results import SCHEMA_VERSION
    from overparam.report.tables import main

    def job(width, seed, rows):
        folder = tmp_path / f"m{width}_s{seed}"
        folder.mkdir()
        config = {"seed": seed, "trials": len(rows), "model": {"m_factor": width}}
        per_replica = [{"seed": 1000 * seed + i, **row} for i, row in enumerate(rows)]
        result = {"schema": SCHEMA_VERSION, "status": "ok", "config": config, "m_factor": width,
                  "params_per_replica": 2 * width, "per_replica": per_replica}
        (folder / "result.json").write_text(json.dumps(result))

    job(1, 0, [{"success": True}, {"success": False}])
    job(3, 0, [{"success": True, "rewind_success": True, "reinit_success": False, "prune_width": 2},
               {"success": True, "rewind_success": True, "reinit_success": True, "prune_width": 1},
               {"success": False}])
    job(3, 1, [{"success": True, "rewind_success": False, "reinit_success": False, "prune_width": 3}])
    assert main(["why-width", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 3 | 2 | 2/3 (0.21-0.94) | 1/3 (0.06-0.79) | 1 / 1 / 0 / 1 | +0.33" in out
    assert "Fresh nets of width m = 1 (the sweep's own grid point, trained with the same budget): 1/2" in out
    # the pairs split by whether pruning narrowed the net (widths 2 and 1 at m = 3) or kept its width (3 at m = 3)
    assert "| pooled, pruned to a narrower width |  | 2/2 (0.34-1.00) | 1/2 (0.09-0.91) | 1 / 1 / 0 / 0 |" in out
    assert "| pooled, kept the full width |  | 0/1 (0.00-0.79) | 0/1 (0.00-0.79) | 0 / 0 / 0 / 1 |" in out


def _write_job(folder, config, result_fields, rows):
    import json

    from overparam.jobs.results import SCHEMA_VERSION

    folder.mkdir(parents=True)
    result = {"schema": SCHEMA_VERSION, "status": "ok", "config": config, "per_replica": rows, **result_fields}
    (folder / "result.json").write_text(json.dumps(result))


def test_the_jamming_table_counts_weights_only_and_brackets_separated_data(tmp_path, capsys):
    from overparam.report.tables import main

    # 4 hidden layers of h units on d = 10 inputs: N = 3h^2 + 15h + 1, N_w = 10h + 3h^2 + h
    for h, fitted in ((8, 0), (10, 12), (12, 16)):
        rows = [{"seed": i, "success": i < fitted, "violated_fraction": 0.0 if i < fitted else 0.1,
                 "fitted_at_step": 1000 + i if i < fitted else None} for i in range(16)]
        config = {"seed": 0, "model": {"m_factor": h, "hidden": [1, 1, 1, 1]}, "task": {"points": 600}}
        _write_job(tmp_path / f"h{h}", config, {"m_factor": h, "params_per_replica": 3 * h * h + 15 * h + 1,
                                                 "points": 600, "dimension": 10, "hidden": [h] * 4,
                                                 "trained_steps": 2000}, rows)
    assert main(["jamming", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| all | 10 | 451 | 410 | 12/16 (0.51-0.90) | 2.5% | 1,000-1,011 | 2,000 |" in out
    # 12/16 lies clearly above one half: N* in (313, 451], N_w* in (280, 410]
    assert "separated: N* in (313, 451], P/N* 1.33-1.92" in out
    assert "separated: N_w* in (280, 410], P/N_w* 1.46-2.14" in out


def test_the_double_descent_table_gives_errors_in_percent_with_t_intervals(tmp_path, capsys):
    from overparam.report.tables import main

    rows = [{"seed": i, "success": i == 0, "test_error": e, "train_error": 0.0 if i == 0 else 0.04,
             "train_clean_error": 0.15} for i, e in enumerate((0.54, 0.55, 0.53, 0.56))]
    _write_job(tmp_path / "h48", {"seed": 0, "model": {"m_factor": 48}}, {"m_factor": 48, "params_per_replica": 4810},
               rows)
    assert main(["double-descent", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # mean 54.5%, t interval 54.5 +- 3.182 * 1.291 / 2 (points)
    assert "| 48 | 4,810 | 54.5% (52.4-56.6) | 3.0% | 15.0% | 1/4 |" in out
