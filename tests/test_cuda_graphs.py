"""The CUDA-graph step (overparam.perf.cuda_graphs): on CPU, that its captured body is the module's own step and that it
says why a step cannot be captured; on a GPU (`-m gpu`), that replaying the graph trains as the eager step does."""

from __future__ import annotations

import pytest
import torch

from overparam.config import compose
from overparam.core.build import build_hand_driven
from overparam.perf.cuda_graphs import GraphedStep, capturable, step_body, unavailable_reason

CONFIGS = [["task.steps=1", "model.m_factor=2", "task.batch_size=8"],
           ["task.steps=2", "model.m_factor=2", "task.batch_size=8"],
           ["task=jamming", "model=mlp", "model.hidden=[1,1]", "task.points=20", "task.dimension=3"]]


def module_and_optimizer(overrides, device="cpu"):
    return build_hand_driven(compose([*overrides, "trials=3"]), device)


@pytest.mark.parametrize("overrides", CONFIGS)
def test_the_captured_body_trains_as_the_modules_own_step(overrides):
    """Same seeds, three steps each: the module's training_step (whatever fast path it picks) + backward + step,
    against the graph's body on the task's plain batch. Equal up to float rounding of the other path."""
    own, own_optimizer = module_and_optimizer(overrides)
    body, body_optimizer = module_and_optimizer(overrides)
    for _ in range(3):
        own.train_step(own_optimizer)
        inputs, targets = body.task.train_batch(body.data_generators, body.device)
        losses = step_body(body, body_optimizer, inputs, targets)
    assert losses.shape == (3,)
    for mine, theirs in zip(own.net.parameters(), body.net.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_it_says_why_a_step_cannot_be_captured():
    module, optimizer = module_and_optimizer(CONFIGS[0])
    assert unavailable_reason(module, optimizer, "cpu") == "CUDA graphs need a CUDA device, not cpu"
    assert unavailable_reason(module, optimizer, "cuda") is None
    firner, firner_optimizer = module_and_optimizer(["experiment=firner"])
    assert "Dropout2d" in unavailable_reason(firner, firner_optimizer, "cuda")
    rmsprop = torch.optim.RMSprop(module.net.parameters())
    assert unavailable_reason(module, rmsprop, "cuda") == "RMSprop is not Adam or SGD"
    with pytest.raises(ValueError, match="no CUDA graph for this step: CUDA graphs need a CUDA device"):
        GraphedStep(module, optimizer)


def test_the_capturable_optimizer_keeps_its_settings():
    module, optimizer = module_and_optimizer(CONFIGS[0])
    rebuilt = capturable(optimizer, module.net.parameters())
    assert type(rebuilt) is type(optimizer) and rebuilt.defaults["capturable"] is True
    assert {k: v for k, v in rebuilt.defaults.items() if k not in ("capturable", "foreach", "fused")} == \
        {k: v for k, v in optimizer.defaults.items() if k not in ("capturable", "foreach", "fused")}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("overrides", CONFIGS)
def test_replaying_the_graph_trains_as_the_eager_body_does(overrides):
    graphed_module, optimizer = module_and_optimizer(overrides, "cuda")
    eager_module, eager_optimizer = module_and_optimizer(overrides, "cuda")
    eager_optimizer = capturable(eager_optimizer, eager_module.net.parameters())
    graphed = GraphedStep(graphed_module, optimizer)  # its warm-up steps train too: the eager side runs as many
    for _ in range(3 + 5):
        inputs, targets = eager_module.task.train_batch(eager_module.data_generators, eager_module.device)
        step_body(eager_module, eager_optimizer, inputs, targets)
    for _ in range(5):
        graphed.step()
    torch.cuda.synchronize()
    for mine, theirs in zip(graphed_module.net.parameters(), eager_module.net.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
