"""From a resolved config to the objects a job trains, the Hydra way: every task, model and optimizer config names its
class (`_target_`), and `hydra.utils.instantiate` builds it. Nothing here knows a task or a model by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from hydra.utils import instantiate

from overparam.core.module import ReplicaModule
from overparam.nets.replica import ReplicaNet
from overparam.seeds import replica_seeds
from overparam.tasks.base import Task


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


def build_module(config) -> ReplicaModule:
    """The task, its K replicas (seeded from `seed` and `trials`) and their optimizer, in the LightningModule."""
    task = build_task(config.task)
    seeds = replica_seeds(config.seed, config.trials)
    net = build_net(config.model, task, seeds)
    trainer = config.trainer
    return ReplicaModule(task, net, seeds, build_optimizer(config.optim), log_every=trainer.log_every_n_steps,
                         clip_value=trainer.get("gradient_clip_val"),
                         clip_algorithm=trainer.get("gradient_clip_algorithm", "norm"),
                         stop_when_fitted=bool(trainer.get("stop_when_fitted", False)))


def build_hand_driven(config, device="cpu") -> tuple[ReplicaModule, torch.optim.Optimizer]:
    """The module and its optimizer for a loop driven by hand, outside a Trainer (benchmarks, the step breakdown,
    the CUDA-graph step): on `device`, its data and dropout generators made as `fit` would make them."""
    module = build_module(config).to(device)
    module.setup("fit")
    return module, module.configure_optimizers()
