"""The why-width analyses: export, loss walks, Hessian spectra, pruning, and their wiring into a job."""

import copy
import json
import re
import types

import numpy as np
import pytest
import torch

from helpers import TINY, run_py
from overparam.analysis.hessian import ReplicaHessian, spectrum_summary, task_loss
from overparam.config.validate import ConfigError
from overparam.nets.export import load_replica, save_replica
from overparam.stats import wilson_interval
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.analysis.pruning import prune
from overparam.tasks.life.analysis.units import permute_units
from overparam.tasks.life.analysis.walk import align, fixed_set_losses, solution_like, walk, walk_set
from overparam.tasks.life.net import LifeConvNet

VON_NEUMANN = parse_rule("B3/S23", "von_neumann")


def _random_net(layout, boundary, activation, head, replicas=3, blocks=2, m=2):
    net = LifeConvNet(replicas, blocks, m, activation, head, layout, boundary, normalize=True)
    net.reset_parameters(list(range(replicas)))
    with torch.no_grad():
        for layer in net.layers:  # large random weights: every kernel asymmetric, so a flipped conv would differ
            layer.weight.normal_(0, 0.7)
            layer.bias.normal_(0, 0.7)
        for act in net.acts:
            if act.name == "prelu":
                act.slope.uniform_(0.1, 0.5)
    return net.eval()


@pytest.mark.parametrize("layout", ["firner", "springer_kenyon"])
@pytest.mark.parametrize("boundary", ["dead", "wrap"])
@pytest.mark.parametrize("activation,head", [("leaky_relu", "sigmoid"), ("prelu", "clamp")])
def test_exported_replica_gives_the_replica_outputs(tmp_path, layout, boundary, activation, head):
    net = _random_net(layout, boundary, activation, head)
    boards = (torch.rand(3, 4, 7, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    expected = net(boards)
    for replica in range(3):
        module = load_replica(save_replica(net.export_replica(replica), tmp_path / f"r{replica}.pt"))
        assert type(module) is torch.nn.Sequential
        torch.testing.assert_close(module(boards[replica]), expected[replica], atol=1e-5, rtol=0)
    other = _random_net(layout, boundary, activation, head)
    with torch.no_grad():
        for layer in other.layers:
            layer.weight.normal_()
    other.import_replica(net.export_replica(1), 1)
    torch.testing.assert_close(other(boards)[1], expected[1], atol=1e-5, rtol=0)


def test_a_transposed_kernel_would_be_caught():
    net = _random_net("firner", "dead", "relu", "sigmoid", blocks=1)
    module = net.export_replica(0)
    with torch.no_grad():
        module[1].weight.copy_(module[1].weight.transpose(2, 3).clone())
    boards = (torch.rand(3, 4, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    assert not torch.allclose(module(boards[0]), net(boards)[0], atol=1e-3)


def test_aligned_walk_from_the_solution_to_itself_is_flat_at_its_loss():
    task = LifeTask(rule=VON_NEUMANN)
    net = LifeConvNet(3, 1, 3, "leaky_relu", normalize=True)
    net.reset_parameters([0, 1, 2])
    solution = solution_like(net, task.rule)
    shuffled = copy.deepcopy(solution)
    generator = torch.Generator().manual_seed(0)
    for replica in range(3):
        permute_units(shuffled, replica, 0, torch.randperm(6, generator=generator))
        permute_units(shuffled, replica, 1, torch.randperm(3, generator=generator))
    boards, targets = walk_set(task, 40, 10, 7)
    loss = fixed_set_losses(solution, task, boards, targets)
    aligned = walk(shuffled, align(solution, shuffled), task, boards, targets, points=10)
    assert aligned["l1"].max() == 0
    torch.testing.assert_close(aligned["profile"], loss.double().unsqueeze(1).expand(-1, 11))
    assert loss.max() < 1e-3
    unaligned = walk(shuffled, solution, task, boards, targets, points=10)
    assert unaligned["l1"].min() > 0  # the shuffle moved units, so only the alignment makes the walk trivial


def test_walk_loss_matches_nn_bceloss_on_boards():
    task = LifeTask(rule=VON_NEUMANN)
    net = _random_net("firner", "dead", "leaky_relu", "sigmoid", replicas=2, blocks=1)
    boards, targets = walk_set(task, 30, 10, 3)
    expected = [torch.nn.BCELoss()(torch.sigmoid(net(boards.expand(2, -1, -1, -1))[k]), targets) for k in range(2)]
    torch.testing.assert_close(fixed_set_losses(net, task, boards, targets), torch.stack(expected),
                               atol=1e-5, rtol=1e-5)


SPECTRUM = types.SimpleNamespace(examples=16, seed=3, top_k=5, lanczos_steps=25, probes=4, zero_tolerance=1e-4,
                                 outlier_fraction=0.1, dense_limit=0)


def test_hessian_matches_the_dense_autograd_hessian():
    task = LifeTask(rule=VON_NEUMANN)
    net = _random_net("firner", "dead", "leaky_relu", "sigmoid", replicas=1, blocks=1, m=1)
    inputs, targets, weights = task.fixed_batch(0, SPECTRUM.seed, SPECTRUM.examples)
    assert weights is None and inputs.shape == (1, 16, 10, 10)
    hessian = ReplicaHessian(net.export_replica(0), inputs[0], task_loss(task, targets, None, "logits"))
    assert hessian.size == 25
    dense = torch.autograd.functional.hessian(hessian.loss, hessian.point).numpy()
    np.testing.assert_allclose(hessian.operator() @ np.eye(25), dense, atol=1e-5)
    np.testing.assert_allclose(hessian.dense(), dense, atol=1e-5)
    eigenvalues = np.linalg.eigvalsh(dense)
    for dense_limit in (0, 1000):  # eigsh + SLQ, and the dense path
        summary = spectrum_summary(hessian, types.SimpleNamespace(**{**vars(SPECTRUM), "dense_limit": dense_limit}))
        np.testing.assert_allclose(summary["hessian_top"], eigenvalues[::-1][:5], atol=1e-5)
        np.testing.assert_allclose(summary["hessian_lambda_min"], eigenvalues[0], atol=1e-5)
        # with 25 Lanczos steps on 25 parameters the SLQ nodes are the eigenvalues
        nodes = np.array(summary["hessian_slq_nodes"])
        assert np.abs(nodes[:, None] - eigenvalues[None]).min(1).max() < 1e-5


def test_pruning_a_presolved_wide_net_finds_the_minimal_width():
    task = LifeTask(rule=VON_NEUMANN, test_boards=200)
    net = LifeConvNet(1, 1, 4, "leaky_relu", normalize=True)
    net.reset_parameters([0])
    net.presolve(task.rule)  # the solution in the first units, the other units dead (all-zero weights)
    width, removed = prune(net, 0, task, 0, None, 0)
    assert width == 1
    assert removed == {0: {2, 3, 4, 5, 6, 7}, 1: {1, 2, 3}}


def test_pruning_stops_at_two_units_for_a_two_run_rule():
    rule = parse_rule("B36/S23", "moore")  # alive on two runs of s = 2 neighbors + alive: needs width 2
    task = LifeTask(rule=rule, test_boards=200)
    net = LifeConvNet(1, 1, 4, "relu")
    net.reset_parameters([0])
    net.presolve(rule)
    assert len(rule.alive_intervals()) == 2
    assert prune(net, 0, task, 0, None, 0)[0] == 2


@pytest.mark.parametrize(("overrides", "said"), [
    (["analysis=walk", "analysis.walk.points=0"], "analysis.walk.points=0: must be an integer >= 1"),
    (["analysis=walk", "+analysis.walk.pointz=3"], "analysis.walk.pointz is not a config key"),
    (["analysis=walk", "task=jamming", "model=mlp"], "analysis.walk (LossWalk) cannot run here: needs task=life"),
    (["analysis=lottery", "task=jamming", "model=mlp"], "needs model=life_conv (a LifeConvNet), got ReplicaMLP"),
    (["analysis=walk", "task.rule=B36/S23", "model.m_factor=1"], "model.m_factor=1: analysis.walk needs"),
])
def test_analysis_settings_and_fit_are_checked_before_any_job(overrides, said):
    from overparam.config.preflight import check

    with pytest.raises(ConfigError, match=re.escape(said)):
        check(overrides)


def test_a_job_without_analysis_has_no_analysis_keys(tmp_path):
    run_py(*TINY, "trials=2", "trainer.max_steps=40", f"hydra.run.dir={tmp_path}")
    result = json.loads((tmp_path / "result.json").read_text())
    assert "analysis" not in result["config"]
    assert set(result["per_replica"][0]) == {"success", "board_accuracy", "cell_accuracy", "collapsed", "seed",
                                             "final_loss", "diverged",  # the evaluation during training's:
                                             "solved_at_step", "exact_at_end", "exact_at_steps", "certified"}
    assert not any(key.startswith(("walk", "hessian", "rewind", "baseline", "prune")) for key in result)
    assert not (tmp_path / "walks.png").exists()


def test_a_tiny_job_with_every_analysis_records_every_field(tmp_path):
    run_py(*TINY, "experiment=firner", "analysis=why", "trials=2", "trainer.max_steps=40", "model.m_factor=2",
           "model.presolve=true",
           "analysis.walk.boards=10", "analysis.hessian.examples=4",
           "trainer.keep_checkpoints=true", "trainer.checkpoint_every_n_steps=20", f"hydra.run.dir={tmp_path}")
    result = json.loads((tmp_path / "result.json").read_text())
    # the checkpoint's replicas, exported, score what the job recorded
    from omegaconf import OmegaConf

    from overparam.core.build import build_task
    from overparam.jobs.checkpoints import net_from_checkpoint

    net = net_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", result["config"])
    task = build_task(OmegaConf.create(result["config"]).task)
    for replica in range(2):
        module = net.export_replica(replica)
        def predict(boards, module=module):
            outputs = module(boards[0]).unsqueeze(0)
            return torch.sigmoid(outputs) if net.output_kind == "logits" else outputs

        scored = task.evaluate(predict, 1, "cpu")
        assert scored[0]["board_accuracy"] == result["per_replica"][replica]["board_accuracy"]
    row = result["per_replica"][0]
    for key in ("init_relative_distance", "walk_l1", "walk_l2", "walk_barrier", "walk_profile",
                "walk_trained_unaligned_barrier", "walk_init_barrier", "hessian_lambda_max", "hessian_outliers",
                "hessian_near_zero_fraction", "hessian_negative_count", "prune_width", "rewind_success",
                "reinit_success"):
        assert key in row, key
    assert row["prune_width"] == 1  # presolved: the solution in the first units, the rest stays unused
    assert len(row["walk_profile"]) == 51
    assert result["pooling"]["rates"] == ["rewind_success", "reinit_success"]
    assert "walk_barrier" in result["pooling"]["by_outcome"] and "rewind_width" in result
    assert (tmp_path / "walks.png").exists() and (tmp_path / "hessian.png").exists()
    _recorded_values_are_recomputed(result, net, task)


def _recorded_values_are_recomputed(result, net, task):
    """The job's analysis numbers, recomputed here from its checkpoint (the net the analyses saw) and config, by
    other routes: distance by hand, walk ends as the fixed-set losses of the net and of the solution, the barrier
    from the profile, the Hessian by autograd on the board batch (the job took the one-block pattern path), the
    rewind and reinit rates from the per-replica rows."""
    import math

    from omegaconf import OmegaConf
    from torch.func import functional_call
    from torch.nn import functional as F

    from overparam.core.build import build_net
    from overparam.report.pooling import pooled_columns
    from overparam.seeds import replica_seeds
    from overparam.stats import wilson_interval
    from overparam.tasks.life.batches import fixed_boards

    config = OmegaConf.create(result["config"])
    initial = build_net(config.model, task, replica_seeds(config.seed, config.trials))
    walk_boards, walk_targets = walk_set(task, config.analysis.walk.boards, config.analysis.walk.size,
                                         config.analysis.walk.seed)
    trained_loss = fixed_set_losses(net, task, walk_boards, walk_targets)
    solution_loss = fixed_set_losses(solution_like(net, task.rule), task, walk_boards, walk_targets)
    inputs, targets = fixed_boards(task, config.analysis.hessian.seed, config.analysis.hessian.examples)
    inputs, targets = inputs[0], targets[0]
    for replica, row in enumerate(result["per_replica"]):
        moved = sum(float(((p - q)[replica].double() ** 2).sum()) for p, q in zip(net.state_dict().values(),
                                                                                   initial.state_dict().values()))
        start = sum(float((q[replica].double() ** 2).sum()) for q in initial.state_dict().values())
        assert moved > 0
        assert row["init_relative_distance"] == pytest.approx(math.sqrt(moved / start), rel=1e-6)
        profile = row["walk_profile"]
        assert profile[0] == pytest.approx(float(trained_loss[replica]), rel=1e-5)
        assert profile[-1] == pytest.approx(float(solution_loss[replica]), rel=1e-4, abs=1e-7)
        chord = [profile[0] + i / 50 * (profile[-1] - profile[0]) for i in range(51)]
        assert row["walk_barrier"] == pytest.approx(max(p - c for p, c in zip(profile, chord)), abs=1e-9)
        module = net.export_replica(replica).double()
        named = [(name, p.shape) for name, p in module.named_parameters()]
        point = torch.cat([p.detach().reshape(-1) for p in module.parameters()])

        def loss(flat, module=module, named=named):
            parts = torch.split(flat, [shape.numel() for _, shape in named])
            weights = {name: part.reshape(shape) for (name, shape), part in zip(named, parts)}
            return F.binary_cross_entropy(functional_call(module, weights, (inputs.double(),)), targets.double())

        eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, point)).numpy()
        scale = abs(eigenvalues).max()
        assert scale > 1e-6
        assert row["hessian_parameters"] == point.numel() == 2 * 2 * 2 + 22 * 2 + 1
        assert row["hessian_lambda_max"] == pytest.approx(eigenvalues[-1], abs=1e-9 * scale)
        assert row["hessian_lambda_min"] == pytest.approx(eigenvalues[0], abs=1e-9 * scale)
        tol = config.analysis.hessian.zero_tolerance * eigenvalues[-1]
        assert row["hessian_near_zero_fraction"] == pytest.approx(np.mean(np.abs(eigenvalues) <= tol))
        assert row["hessian_negative_count"] == int(np.sum(eigenvalues < -tol))
    pooled = pooled_columns(result["per_replica"], result["pooling"])
    for arm in ("rewind", "reinit"):
        outcomes = [row[f"{arm}_success"] for row in result["per_replica"] if f"{arm}_success" in row]
        assert len(outcomes) == 2  # both replicas solved (presolved) and are wider than minimal: both pruned
        assert (pooled[f"{arm}_success_rate"], pooled[f"{arm}_success_trials"]) == (sum(outcomes) / 2, 2)
        low, high = wilson_interval(sum(outcomes), len(outcomes))
        assert (pooled[f"{arm}_success_ci_low"], pooled[f"{arm}_success_ci_high"]) == pytest.approx((low, high))


@pytest.mark.parametrize("neighborhood", ["von_neumann", "moore"])
def test_firners_hand_solution_is_exact_in_one_step(neighborhood):
    from overparam.tasks.life.analysis.pruning import exact

    task = LifeTask(rule=parse_rule("B3/S23", neighborhood), test_boards=200)
    net = LifeConvNet(2, 1, 3, "leaky_relu", normalize=True)
    net.reset_parameters([0, 1])
    assert exact(solution_like(net, task.rule, "firner"), task) == [True, True]
    assert exact(net, task) == [False, False]


def test_report_pools_successful_and_failed_replicas_apart():
    from overparam.report.pooling import pooled_columns

    rows = [{"success": True, "walk_barrier": 1.0, "rewind_success": True},
            {"success": True, "walk_barrier": 3.0, "rewind_success": False},
            {"success": False, "walk_barrier": 10.0}]
    pooled = pooled_columns(rows, {"by_outcome": ["walk_barrier"], "rates": ["rewind_success"]})
    assert pooled["walk_barrier_mean_success"] == 2.0 and pooled["walk_barrier_mean_failed"] == 10.0
    assert pooled["rewind_success_rate"] == 0.5 and pooled["rewind_success_trials"] == 2
    assert (pooled["rewind_success_ci_low"], pooled["rewind_success_ci_high"]) == wilson_interval(1, 2)
    assert pooled_columns([{"success": True}], {}) == {}


def test_exported_mlp_replica_gives_the_replica_outputs():
    from overparam.nets.mlp import ReplicaMLP

    net = ReplicaMLP(3, 5, 4, hidden=[6, 7], activation="prelu")
    net.reset_parameters([0, 1, 2])
    with torch.no_grad():
        net.acts[1].slope.uniform_(0.1, 0.5)
    inputs = torch.randn(3, 8, 5, generator=torch.Generator().manual_seed(0))
    expected = net(inputs)
    for replica in range(3):
        torch.testing.assert_close(net.export_replica(replica)(inputs[replica]), expected[replica])
    other = ReplicaMLP(3, 5, 4, hidden=[6, 7], activation="prelu")
    other.reset_parameters([5, 6, 7])
    other.import_replica(net.export_replica(2), 2)
    torch.testing.assert_close(other(inputs)[2], expected[2])
