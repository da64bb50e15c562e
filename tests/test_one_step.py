"""One training step (overparam.core.step.replica_step), whoever drives it: the Trainer, the benchmark's raw loop and
the lottery's retraining train the same seeds to the same bits, a replica diverging midway included; Lightning's
own knobs either work per replica or are refused in one line."""

import pytest
import torch

from helpers import TINY, run_py
from overparam.config import ConfigError, compose
from overparam.config.preflight import check
from overparam.core.build import build_hand_driven, build_module, build_net, build_task
from overparam.core.step import clip_replica_gradients, replica_step
from overparam.jobs.job import run
from overparam.jobs.trainer import build_trainer
from overparam.seeds import replica_seeds
from overparam.tasks.life.analysis.lottery import train as lottery_train

STEPS, DIVERGES_AT = 12, 5
OVERRIDES = ["task.steps=2", "model.m_factor=2", "trials=3", f"trainer.max_steps={STEPS}", "task.batch_size=8",
             "trainer.progress=none", "trainer.checkpoint_every_n_steps=0"]


class DivergingTask:
    """A task whose replica 1 has a NaN loss at its DIVERGES_AT-th step (counted per training_losses call)."""

    def __init__(self, task):
        self.task, self.calls = task, 0

    def __getattr__(self, name):
        return getattr(self.task, name)

    def training_losses(self, *args):
        losses = self.task.training_losses(*args)
        self.calls += 1
        if self.calls == DIVERGES_AT:
            losses = losses * torch.tensor([1.0, float("nan"), 1.0])
        return losses


def trained_by_trainer(tmp_path):
    config = compose(OVERRIDES)
    module = build_module(config)
    module.task = DivergingTask(module.task)
    build_trainer(config.trainer, torch.device("cpu"), tmp_path).fit(module, train_dataloaders=range(STEPS))
    return module.net, module.alive


def trained_by_raw_loop():
    module, optimizer = build_hand_driven(compose(OVERRIDES))
    module.task = DivergingTask(module.task)
    for _ in range(STEPS):
        module.train_step(optimizer)
    return module.net, module.alive


def trained_by_lottery():
    config = compose(OVERRIDES)
    task = build_task(config.task)
    seeds = replica_seeds(config.seed, config.trials)
    net = build_net(config.model, task, seeds)
    alive = lottery_train(net, DivergingTask(task), seeds, config.optim, STEPS)
    return net, alive


def test_the_trainer_the_raw_loop_and_the_lottery_train_to_the_same_bits_with_a_replica_diverging(tmp_path):
    results = [trained_by_trainer(tmp_path), trained_by_raw_loop(), trained_by_lottery()]
    for _, alive in results:
        assert alive.tolist() == [True, False, True]
    reference = list(results[0][0].parameters())
    for net, _ in results[1:]:
        for mine, theirs in zip(reference, net.parameters()):
            assert torch.equal(mine, theirs)
    # the diverged replica was frozen at the step it diverged: its weights are finite, the others kept training
    assert all(torch.isfinite(p[1]).all() for p in reference)


def test_a_diverged_replica_stays_where_it_was_and_the_others_are_untouched():
    net = torch.nn.Linear(1, 1)
    weight = torch.nn.Parameter(torch.tensor([[1.0], [2.0], [3.0]]))  # three replicas of one number
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    alive = torch.ones(3, dtype=torch.bool)
    blow_up = torch.tensor([1.0, float("inf"), 1.0])
    for step in range(3):
        replica_step(net, optimizer, alive, lambda scale=(blow_up if step == 1 else 1.0): (weight**2).sum(1) * scale)
    # replica 1 took one step (from 2.0 with gradient 4 at lr 0.1) before diverging, then froze
    assert alive.tolist() == [True, False, True]
    assert weight[1].item() == pytest.approx(2.0 - 0.1 * 4.0)
    alone = torch.nn.Parameter(torch.tensor([[1.0], [3.0]]))
    alone_optimizer = torch.optim.SGD([alone], lr=0.1, momentum=0.9)
    for _ in range(3):
        replica_step(net, alone_optimizer, torch.ones(2, dtype=torch.bool), lambda: (alone**2).sum(1))
    assert torch.equal(weight[[0, 2]], alone)


def test_clipping_by_norm_scales_each_replica_by_its_own_norm():
    grads = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    parameter = torch.nn.Parameter(torch.zeros(2, 2))
    parameter.grad = grads.clone()
    clip_replica_gradients([parameter], 1.0, "norm")
    torch.testing.assert_close(parameter.grad[0], grads[0] / 5.0, rtol=1e-5, atol=1e-6)  # clipped to norm 1
    assert torch.equal(parameter.grad[1], grads[1])  # under the limit: untouched, whatever the other replica did
    parameter.grad = grads.clone()
    clip_replica_gradients([parameter], 0.35, "value")
    assert torch.equal(parameter.grad, grads.clamp(-0.35, 0.35))


def test_gradient_clipping_from_the_config_keeps_replicas_independent(tmp_path):
    clipped = ["trainer.gradient_clip_val=0.01", "trainer.max_steps=5", *TINY]
    together = run(compose(["trials=3", *clipped]), tmp_path / "together")
    alone = run(compose(["trials=1", *clipped]), tmp_path / "alone")
    # replica 0 trained alone and among others
    assert together["per_replica"][0]["final_loss"] == alone["per_replica"][0]["final_loss"]


@pytest.mark.parametrize(("override", "said"), [
    ("+trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches is not supported: every step draws"),
    ("trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches is not supported: every step draws"),
    ("trainer.precision=16-mixed", "trainer.precision='16-mixed': must be one of 32-true, 64-true"),
    ("trainer.gradient_clip_algorithm=global", "trainer.gradient_clip_algorithm='global': must be one of norm"),
])
def test_lightning_settings_a_replica_job_cannot_honour_are_config_errors(override, said):
    with pytest.raises(ConfigError) as error:
        check([override])
    assert said in str(error.value) and "\n" not in str(error.value)


def test_the_command_line_refuses_them_in_one_line():
    completed = run_py("trainer.accumulate_grad_batches=2", check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip() == ("config error: trainer.accumulate_grad_batches is not supported: every step "
                                        "draws a fresh batch per replica; raise task.batch_size instead")
