"""Training through the Lightning module: replica independence, divergence, learning at all."""

import pytest
import pytorch_lightning as pl
import torch

from overparam.config import compose
from overparam.core.build import build_net, build_optimizer, build_task
from overparam.core.module import ReplicaModule
from overparam.seeds import replica_seed


def fit(config, seeds, steps):
    task = build_task(config.task)
    net = build_net(config.model, task, seeds)
    module = ReplicaModule(task, net, seeds, build_optimizer(config.optim))
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=range(steps))
    return module


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.m_factor=3", "task.steps=2"],
        # normalize: Dropout2d masks must come from each replica's own stream too
        ["model.m_factor=2", "task.steps=2", "model.normalize=true", "model.activation=leaky_relu"],
        ["optim=sgd", "model.activation=prelu", "task.density=[0.2,0.8]"],
    ],
)
def test_a_replica_trained_among_others_ends_where_it_ends_alone(overrides):
    config = compose(overrides + ["task.batch_size=16"])
    seeds = [replica_seed(0, i) for i in range(3)]
    among = fit(config, seeds, steps=25)
    alone = fit(config, seeds[1:2], steps=25)
    for together, single in zip(among.net.parameters(), alone.net.parameters()):
        torch.testing.assert_close(together[1], single[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(list(among.net.parameters())[0][0], list(among.net.parameters())[0][1])


def test_a_nan_replica_is_frozen_and_marked_while_the_others_train_on():
    config = compose(["model.m_factor=2", "task.batch_size=16"])
    seeds = [replica_seed(0, i) for i in range(3)]
    reference = fit(config, seeds, steps=20)

    task = build_task(config.task)
    net = build_net(config.model, task, seeds)
    with torch.no_grad():
        net.layers[0].bias[1] = float("nan")
    poisoned_start = [p[1].clone() for p in net.parameters()]
    module = ReplicaModule(task, net, seeds, build_optimizer(config.optim))
    pl.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(module, train_dataloaders=range(20))
    assert module.alive.tolist() == [True, False, True]
    for start, now in zip(poisoned_start, net.parameters()):
        torch.testing.assert_close(now[1], start, equal_nan=True)  # frozen
    for clean, trained in zip(reference.net.parameters(), net.parameters()):
        torch.testing.assert_close(trained[0], clean[0])
        torch.testing.assert_close(trained[2], clean[2])
    rows = module.evaluate()
    assert [row["diverged"] for row in rows] == [False, True, False]
    assert rows[1]["success"] is False


def test_training_lowers_the_loss_and_wide_one_step_nets_learn_life():
    config = compose(["model.m_factor=8", "task.neighborhood=von_neumann", "optim.lr=0.01"])
    seeds = [replica_seed(0, i) for i in range(2)]
    task = build_task(config.task)
    boards, targets = task.train_batch([torch.Generator().manual_seed(99 + i) for i in range(2)], "cpu")

    def held_out_losses(net):  # one fixed batch, never trained on
        with torch.no_grad():
            return task.replica_losses(net(boards), targets, net.output_kind)

    before = held_out_losses(build_net(config.model, task, seeds))  # the same initial weights fit starts from
    module = fit(config, seeds, steps=300)
    after = held_out_losses(module.net)
    assert (after < 0.5 * before).all(), (before, after)
    rows = module.evaluate()
    assert max(row["board_accuracy"] for row in rows) > 0.9
