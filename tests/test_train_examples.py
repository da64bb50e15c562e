"""task.train_examples: each replica's own fixed training set, every board once per epoch in a fresh order,
independent of the other replicas, the same losses on every path, resumed exactly after a kill."""

import os
import signal
import time

import pytest
import torch

from helpers import popen_py, run_py
from overparam.jobs.results import read_result
from overparam.tasks.life import LifeTask, parse_rule
from overparam.tasks.life.net import LifeConvNet


def generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def finite_task(**settings):
    settings = {"batch_size": 4, "train_size": 5, "train_examples": 12, **settings}
    return LifeTask(parse_rule("B3/S23", "moore"), **settings)


@pytest.mark.parametrize("density", [0.5, 0.3, (0.1, 0.9)])
def test_a_replica_sees_the_same_boards_alone_and_among_others(density):
    among, alone = finite_task(density=density), finite_task(density=density)
    gens_among, gens_alone = generators([5, 6, 7]), generators([6])
    for _ in range(7):  # more than two epochs
        assert torch.equal(among.train_cells(gens_among, "cpu")[1], alone.train_cells(gens_alone, "cpu")[0])


def test_every_board_once_per_epoch_in_a_new_order_and_nothing_new():
    task, gens = finite_task(), generators([1, 2])
    epochs = [torch.cat([task.train_cells(gens, "cpu") for _ in range(3)], dim=1) for _ in range(3)]
    for replica in range(2):
        boards = [sorted(tuple(b.flatten().tolist()) for b in epoch[replica]) for epoch in epochs]
        assert boards[0] == boards[1] == boards[2] and len(set(boards[0])) > 1
    assert not torch.equal(epochs[0], epochs[1])
    assert not torch.equal(epochs[0][0], epochs[0][1])  # each replica has its own set


@pytest.mark.parametrize("blocks, head", [(1, "sigmoid"), (2, "sigmoid_bceloss")])
def test_the_fast_paths_give_the_plain_losses_on_a_finite_set(blocks, head):
    fast_task, plain_task = finite_task(steps=blocks), finite_task(steps=blocks)
    net = LifeConvNet(2, blocks, 2, "leaky_relu", head)
    net.reset_parameters([3, 4])
    fast_gens, plain_gens = generators([8, 9]), generators([8, 9])
    for _ in range(4):
        fast = fast_task.training_losses(net, fast_gens, None, "cpu")
        boards, targets = plain_task.train_batch(plain_gens, "cpu")
        plain = plain_task.replica_losses(net(boards), targets, net.output_kind)
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)


def test_state_dict_resumes_the_same_boards():
    reference, gens = finite_task(), generators([4, 9])
    expected = [reference.train_cells(gens, "cpu") for _ in range(8)]
    task, gens = finite_task(), generators([4, 9])
    taken = [task.train_cells(gens, "cpu") for _ in range(4)]
    state, generator_states = task.state_dict(), [g.get_state() for g in gens]
    resumed, gens = finite_task(), generators([0, 0])
    resumed.load_state_dict(state)
    for generator, generator_state in zip(gens, generator_states):
        generator.set_state(generator_state)
    taken += [resumed.train_cells(gens, "cpu") for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(taken, expected))


# 40 boards in batches of 16: 2 steps per epoch, so checkpoints every 15 steps fall mid-epoch or at its end
JOB = ["trials=2", "trainer.max_steps=120", "task.batch_size=16", "task.train_examples=40", "task.test_boards=50",
       "trainer.progress=none", "trainer.checkpoint_every_n_steps=15", "task.density=0.4"]


@pytest.mark.slow
def test_a_job_killed_after_a_checkpoint_ends_where_an_uninterrupted_one_ends(tmp_path):
    run_py(*JOB, f"hydra.run.dir={tmp_path / 'whole'}")
    killed = tmp_path / "killed"
    process = popen_py(*JOB, f"hydra.run.dir={killed}")
    try:
        deadline = time.time() + 120
        while not (killed / "checkpoints" / "last.ckpt").exists():
            assert time.time() < deadline, "no checkpoint"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert read_result(killed / "result.json") is None
    run_py(*JOB, f"hydra.run.dir={killed}")
    whole, resumed = read_result(tmp_path / "whole" / "result.json"), read_result(killed / "result.json")
    assert resumed["resumed_from_step"] is not None  # (every 15 steps: mostly mid-epoch, as epochs are 2 steps)
    assert resumed["per_replica"] == whole["per_replica"]
