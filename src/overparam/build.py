"""From a resolved config to plain-torch objects, the Hydra way: every task, model and optimizer config names its
class (`_target_`), and `hydra.utils.instantiate` builds it. Nothing here knows a task or a model by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from hydra.utils import instantiate

from .nets.replica import ReplicaNet
from .tasks.base import Task


def build_task(task_config) -> Task:
    return instantiate(task_config, _convert_="all")


def build_net(model_config, task: Task, replica_seeds: Sequence[int]) -> ReplicaNet:
    """The replica-batched net for `task`, each replica initialised from its own seed."""
    # Bound as a partial and called in Python: the task's inputs may be objects (a parsed Rule) that a config
    # merge would turn into dicts.
    make_net = instantiate(model_config, _partial_=True, _convert_="all")
    net = make_net(replicas=len(replica_seeds), **task.net_inputs())
    net.reset_parameters(replica_seeds)
    return net


def build_optimizer(optim_config) -> Callable[..., torch.optim.Optimizer]:
    """The optimizer's constructor with its settings bound: call it with the parameters. Each torch optimizer
    updates every parameter element on its own, so replicas never mix."""
    return instantiate(optim_config, _partial_=True, _convert_="all")
