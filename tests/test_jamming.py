"""The jamming task: data, the quadratic hinge, success on the training set, replica independence, exact resume."""

import math

import pytest
import torch

from overparam.config import compose
from overparam.config.validate import ConfigError, validate
from overparam.core.build import build_net, build_task
from overparam.seeds import replica_generator, replica_seeds
from overparam.tasks.jamming import JammingTask, margin_deficits, quadratic_hinge, random_points

JAMMING = ["task=jamming", "model=mlp", "model.hidden=[1,1]", "trainer.precision=64-true", "trainer.progress=none"]


def test_points_are_centerd_on_the_sphere_of_radius_sqrt_d_and_labels_are_signs():
    x, y = random_points(500, 7, replica_generator(1, "data"), "cpu")
    assert x.dtype == torch.float64 and x.shape == (500, 7)
    torch.testing.assert_close(x.norm(dim=1), torch.full((500,), math.sqrt(7), dtype=torch.float64))
    assert set(y.tolist()) == {-1.0, 1.0}
    again, _ = random_points(500, 7, replica_generator(1, "data"), "cpu")
    assert torch.equal(x, again)


def test_quadratic_hinge_by_hand():
    outputs = torch.tensor([[[2.0], [0.5], [-1.0]]])  # one replica, three examples
    labels = torch.tensor([[1.0, 1.0, 1.0]])
    # Delta = 1 - y f: -1 (met), 0.5, 2 -> (0 + 0.25 + 4) / 2 / 3
    torch.testing.assert_close(margin_deficits(outputs, labels, 1.0), torch.tensor([[-1.0, 0.5, 2.0]]))
    torch.testing.assert_close(quadratic_hinge(outputs, labels, 1.0), torch.tensor([4.25 / 6]))
    mixed = torch.tensor([[1.0, -1.0, -1.0]])  # margin 0.5: Delta = -1.5, 1.0, -0.5
    assert quadratic_hinge(outputs, mixed, 0.5).item() == pytest.approx(1.0 / 6)


def test_each_replica_has_its_own_dataset_and_evaluation_reads_the_training_set():
    task = JammingTask(points=20, dimension=3)
    generators = [replica_generator(s, "data") for s in replica_seeds(0, 2)]
    x, y = task.train_batch(generators, "cpu")
    assert x.shape == (2, 20, 3) and y.shape == (2, 20)
    assert not torch.equal(x[0], x[1])
    again, _ = task.train_batch(generators, "cpu")  # full batch: the same points every step
    assert torch.equal(x, again)

    def perfect(inputs):  # f = 2y: every margin met
        return (2 * task.labels).unsqueeze(-1).to(inputs.dtype)

    rows = task.evaluate(perfect, 2, "cpu")
    assert [row["success"] for row in rows] == [True, True] and rows[0]["violated_fraction"] == 0.0

    def one_wrong(inputs):
        f = 2 * task.labels.clone()
        f[:, 0] = task.labels[:, 0] * (1.0 - 1e-3)  # Delta = 1e-3 > the 1e-4 tolerance: violated
        f[1, 1] = task.labels[1, 1] * (1.0 - 1e-5)  # inside the tolerance: not a violation
        return f.unsqueeze(-1)

    rows = task.evaluate(one_wrong, 2, "cpu")
    assert [row["violated_fraction"] for row in rows] == [1 / 20, 1 / 20]
    assert not rows[0]["success"]
    assert rows[0]["max_deficit"] == pytest.approx(1e-3)


def test_the_dataset_travels_in_the_task_state():
    task = JammingTask(points=10, dimension=2)
    task.train_batch([replica_generator(3, "data")], "cpu")
    restored = JammingTask(points=10, dimension=2)
    restored.load_state_dict(task.state_dict())
    inputs, _ = restored.train_batch([replica_generator(99, "data")], "cpu")  # another stream: no new draw
    assert torch.equal(inputs, task.inputs.to(inputs.dtype))


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.points=0", "task.points=0: must be an integer >= 1"),
        ("task.margin=0", "task.margin=0: must be a number > 0"),
        ("task.violation_tolerance=-1", "task.violation_tolerance=-1: must be a number >= 0"),
    ],
)
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("+", r"\+")):
        validate(compose([*JAMMING, override]))


def test_the_presets_validate():
    for preset in ("jamming", "jamming_full"):
        validate(compose([f"experiment={preset}"]))


def test_a_wide_net_fits_and_a_narrow_one_jams_and_the_job_stops_when_settled(tmp_path):
    from overparam.jobs.job import run

    common = [*JAMMING, "task.points=60", "task.dimension=5", "trials=4", "optim.lr=0.01",
              "trainer.max_steps=3000", "trainer.stop_when_loss_change_below=0.001", "trainer.stop_window_steps=200"]
    wide = run(compose([*common, "model.m_factor=12"]), tmp_path / "wide")  # 12*5 + 144 + 12 = 216 weights >> 60
    assert wide["success_rate"] == 1.0 and wide["hinge_loss_mean"] == 0.0
    assert wide["stopped_at_step"] is not None and wide["stopped_at_step"] < 3000
    # 5 + 1 + 1 weights for 60 labels: jammed whatever the budget
    narrow = run(compose([*common, "model.m_factor=1", "trainer.max_steps=400"]), tmp_path / "narrow")
    assert narrow["success_rate"] == 0.0 and narrow["violated_fraction_mean"] > 0.1


def test_a_replica_fits_the_same_points_the_same_way_among_others_or_alone():
    import pytorch_lightning as pl

    from overparam.core.build import build_optimizer
    from overparam.core.module import ReplicaModule

    config = compose([*JAMMING, "task.points=30", "task.dimension=4", "model.m_factor=3"])
    seeds = replica_seeds(0, 3)

    def fit(chosen):
        task = build_task(config.task)
        module = ReplicaModule(task, build_net(config.model, task, chosen), chosen, build_optimizer(config.optim))
        pl.Trainer(max_steps=30, accelerator="cpu", logger=False, enable_checkpointing=False, precision="64-true",
                   enable_progress_bar=False, enable_model_summary=False).fit(module, train_dataloaders=range(30))
        return module

    among, alone = fit(seeds), fit(seeds[1:2])
    assert torch.equal(among.task.inputs[1], alone.task.inputs[0])
    for together, single in zip(among.net.parameters(), alone.net.parameters()):
        torch.testing.assert_close(together[1], single[0])
