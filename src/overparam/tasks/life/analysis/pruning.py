"""Prune a trained replica's hidden units while it stays exact: the first half of the lottery experiment.

Hidden units (`units.hidden_layers`) are removed one at a time. Each round scores the remaining units by importance
= mean |activation| on the test boards x the L1 norm of the weights that read the unit, and removes the least
important unit whose removal leaves the rule exact on the test set (candidates are tried in order of importance,
all at once as replicas of one batched net); with `finetune_steps` > 0 every candidate is first fine-tuned for that
many steps (the job's optimizer, removed weights held at zero). It stops when no removal stays exact. The pruned
width is the smallest width factor that holds the survivors: per block, max(ceil(3x3 units / 2), 1x1 units).
"""

from __future__ import annotations

import copy
import math

import torch

from overparam.core.retrain import train_replicas
from overparam.tasks.life.analysis.units import apply_masks, full_masks, hidden_layers, reading_rows, unit_mask
from overparam.tasks.life.net import LifeConvNet

ACTIVATION_MODULES = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.GELU, torch.nn.SiLU, torch.nn.PReLU)


def take(net: LifeConvNet, replicas: list[int]) -> LifeConvNet:
    """A new net holding copies of the given replicas of `net`, in that order (repeats allowed)."""
    index = torch.as_tensor(replicas, dtype=torch.long)
    chosen = copy.deepcopy(net)
    for parameter in chosen.parameters():
        parameter.data = parameter.data[index].clone()
    chosen.replicas = len(replicas)
    return chosen


def exact(net: LifeConvNet, task) -> list[bool]:
    """Whether each replica predicts every test board exactly (the job's success criterion)."""
    def predict(boards):
        outputs = net(boards)
        return torch.sigmoid(outputs) if net.output_kind == "logits" else outputs

    was_training = net.training
    net.eval()
    try:
        per_pattern = net.pattern_outputs()
        if per_pattern is None:
            return [row["success"] for row in task.evaluate(predict, net.replicas, "cpu")]
        # One block: exact on the test set = right on every (pattern, target) pair that occurs in it.
        with torch.no_grad():
            predicted = (torch.sigmoid(per_pattern) if net.output_kind == "logits" else per_pattern).round()
        counts = _test_counts(task)
        wrong = (counts[:, 0] > 0) & (predicted != 0) | (counts[:, 1] > 0) & (predicted != 1)
        return (~wrong.any(1)).tolist()
    finally:
        net.train(was_training)


def _test_counts(task) -> torch.Tensor:
    boards, _ = task.test_set("cpu")
    return task.pattern_target_counts(boards.unsqueeze(0).to(torch.uint8))[0]


def importance(net: LifeConvNet, replica: int, task) -> dict[int, torch.Tensor]:
    """`{hidden layer: [units]}` mean |activation| on the test boards x L1 norm of the weights reading the unit."""
    module = net.export_replica(replica)
    activations = [m for m in module if isinstance(m, ACTIVATION_MODULES)]  # one per layer, in order
    magnitudes = {}
    hooks = [act.register_forward_hook(lambda mod, inp, out, i=i: magnitudes.__setitem__(i, out.abs().mean((0, 2, 3))))
             for i, act in enumerate(activations)]
    boards, _ = task.test_set("cpu")
    with torch.no_grad():
        module(boards)
    for hook in hooks:
        hook.remove()
    scores = {}
    following = net.layers
    for index in hidden_layers(net):
        units = net.layers[index].weight.shape[2]
        reads = torch.stack([following[index + 1].weight[replica][reading_rows(net, index, u)].abs().sum()
                             for u in range(units)])
        scores[index] = (magnitudes[index] * reads).detach()
    return scores


def pruned_width(net: LifeConvNet, removed: dict[int, set]) -> int:
    width = 0
    for block in range(net.blocks):
        first = block * net.layers_per_block
        conv_units = net.layers[first].weight.shape[2] - len(removed.get(first, ()))
        mid_units = net.layers[first + 1].weight.shape[2] - len(removed.get(first + 1, ()))
        width = max(width, math.ceil(conv_units / 2), mid_units)
    return width


def train(net, task, seeds, optim_config, steps: int, masks=None) -> torch.Tensor:
    """`steps` optimizer steps as the job takes them (`core.retrain.train_replicas`); masked weights stay at zero.
    Returns which replicas are still alive."""
    return train_replicas(net, task, seeds, optim_config, steps,
                          None if masks is None else lambda: apply_masks(net, masks))


def prune(net: LifeConvNet, replica: int, task, finetune_steps: int, optim_config, seed: int):
    """Prune replica `replica` of `net` (the module docstring); returns (pruned width, removed units). With
    `finetune_steps`, each candidate is retrained that many steps (`train`) before it is judged."""
    current = take(net, [replica])
    removed: dict[int, set] = {index: set() for index in hidden_layers(net)}
    while True:
        scores = importance(current, 0, task)
        candidates = sorted(
            ((float(scores[index][unit]), index, unit) for index in removed
             for unit in range(net.layers[index].weight.shape[2])
             if unit not in removed[index] and net.layers[index].weight.shape[2] - len(removed[index]) > 1),
        )
        if not candidates:
            break
        trial = take(current, [0] * len(candidates))
        masks = full_masks(trial)
        for k, (_, index, unit) in enumerate(candidates):
            unit_mask(trial, {**removed, index: removed[index] | {unit}}, k, masks)
        apply_masks(trial, masks)
        alive = train(trial, task, [seed] * len(candidates), optim_config, finetune_steps, masks) \
            if finetune_steps else torch.ones(len(candidates), dtype=torch.bool)
        survivors = [k for k, ok in enumerate(exact(trial, task)) if ok and alive[k]]
        if not survivors:
            break
        _, index, unit = candidates[survivors[0]]
        removed[index].add(unit)
        current = take(trial, [survivors[0]])
    return pruned_width(net, removed), removed
