"""From a resolved config to plain-torch objects: the task and its replica-batched net."""

from __future__ import annotations

import math

from .life_task import LifeTask
from .nets import LifeConvNet


def blocks_for(steps: int, d_factor: float) -> int:
    """Firner's depth: floor(steps * d_factor) blocks (the epsilon keeps 3 * 0.7 from flooring to 2)."""
    return math.floor(steps * d_factor + 1e-9)


def build_task(task):
    if task.name == "life":
        return LifeTask.from_config(task)
    if task.name == "maxcut":
        from .maxcut_task import MaxCutTask

        return MaxCutTask.from_config(task)
    raise ValueError(f"task.name={task.name!r} is not one of life, maxcut")


def build_net(model, task_config, task, replica_seeds):
    """The replica-batched net, each replica initialised from its own seed (or the hand-built solution)."""
    replicas = len(replica_seeds)
    if model.name == "life_conv":
        net = LifeConvNet(
            replicas=replicas,
            blocks=blocks_for(task_config.steps, model.d_factor),
            m_factor=model.m_factor,
            activation=model.activation,
            head=model.head,
            layout=model.layout,
            boundary=task_config.boundary,
            normalize=model.normalize,
            dropout=model.dropout,
        )
    elif model.name == "mlp":
        from .mlp import ReplicaMLP

        net = ReplicaMLP(
            replicas=replicas,
            inputs=task.input_size,
            outputs=task.output_size,
            hidden=[model.m_factor * width for width in model.hidden],
            activation=model.activation,
        )
    else:
        raise ValueError(f"model.name={model.name!r} is not one of life_conv, mlp")
    net.reset_parameters(replica_seeds)
    if model.get("presolve", False):
        net.presolve(task.rule)
    return net


def grid_point(config) -> dict:
    """The numbers that place a job on a curve; stored at the top of result.json."""
    point = {"task": config.task.name, "m_factor": config.model.m_factor, "activation": config.model.activation}
    if config.task.name == "life":
        point.update(
            steps=config.task.steps,
            d_factor=config.model.d_factor,
            rule=config.task.rule,
            neighborhood=config.task.neighborhood,
            layout=config.model.layout,
        )
    else:
        # The hidden widths actually built (m_factor times model.hidden, zeros dropped: [] is the linear net).
        hidden = [config.model.m_factor * width for width in config.model.hidden]
        point.update(
            nodes=config.task.nodes,
            edges=config.task.edges,
            encoding=config.task.encoding,
            hidden=[width for width in hidden if width > 0],
        )
    return point
