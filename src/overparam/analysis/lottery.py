"""Lottery ticket or escape dimensions? Prune a successful wide replica, then rewind its survivors to their
initial weights and train them again.

(a) Pruning: hidden units (`units.hidden_layers`) are removed one at a time. Each round scores the remaining
units by importance = mean |activation| on the test boards x the L1 norm of the weights that read the unit, and
removes the least important unit whose removal leaves the rule exact on the test set (candidates are tried in
order of importance, all at once as replicas of one batched net); with `finetune_steps` > 0 every candidate is
first fine-tuned for that many steps (the job's optimizer, removed weights held at zero). It stops when no
removal stays exact. The pruned width is the smallest width factor that holds the survivors: per block,
max(ceil(3x3 units / 2), 1x1 units).
(b) Rewind: the surviving units' *initial* weights (the same seed's initialisation) form a net of the pruned
width (unused slots held at zero; all tickets of a job share the widest pruned width), trained like the job
trained the replica: the job's optimizer, its data stream (the replica's own "data" generator from step 0),
`rewind_steps` steps. Two controls, trained the same way: `reinit`, the same surviving architecture (same masks,
same data streams) with fresh initial weights (Frankle & Carbin's random re-initialisation), and `baseline`,
freshly initialised nets of the minimal width (one unit per run of the rule's alive codes).
A winning-ticket story predicts rewinds far above the baseline; an escape-dimension story does not.
"""

from __future__ import annotations

import copy
import math

import torch

from ..build import build_optimizer
from ..metrics import wilson_interval
from ..nets.life_conv import LifeConvNet
from ..seeds import replica_generator, replica_seed
from .export import export_replica
from .units import apply_masks, full_masks, hidden_layers, reading_rows, unit_mask


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


def train(net, task, seeds, optim_config, steps: int, masks=None) -> None:
    """`steps` optimizer steps as the job takes them: the sum of the replicas' losses on fresh batches from each
    seed's own data (and dropout) stream; non-finite losses count zero. Masked weights stay at zero."""
    data = [replica_generator(seed, "data") for seed in seeds]
    dropout = [replica_generator(seed, "dropout") for seed in seeds]
    optimizer = build_optimizer(optim_config)(net.parameters())
    net.train()
    for _ in range(steps):
        losses = task.training_losses(net, data, dropout, "cpu")
        optimizer.zero_grad()
        torch.where(torch.isfinite(losses), losses, torch.zeros_like(losses)).sum().backward()
        optimizer.step()
        if masks is not None:
            apply_masks(net, masks)


def importance(net: LifeConvNet, replica: int, task) -> dict[int, torch.Tensor]:
    """`{hidden layer: [units]}` mean |activation| on the test boards x L1 norm of the weights reading the unit."""
    module = export_replica(net, replica)
    activations = [m for m in module if not isinstance(m, (torch.nn.Conv2d, torch.nn.Dropout2d, torch.nn.Hardtanh))]
    magnitudes = {}
    hooks = [act.register_forward_hook(lambda mod, inp, out, i=i: magnitudes.__setitem__(i, out.abs().mean((0, 2, 3))))
             for i, act in enumerate(activations)]
    boards, _ = task.test_set("cpu")
    with torch.no_grad():
        module(boards.unsqueeze(1))
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


def prune(net: LifeConvNet, replica: int, task, finetune_steps: int, optim_config, seed: int):
    """Prune replica `replica` of `net` as the module docstring says; returns (pruned width, removed units)."""
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
        if finetune_steps:
            train(trial, task, [seed] * len(candidates), optim_config, finetune_steps, masks)
        survivors = [k for k, ok in enumerate(exact(trial, task)) if ok]
        if not survivors:
            break
        _, index, unit = candidates[survivors[0]]
        removed[index].add(unit)
        current = take(trial, [survivors[0]])
    return pruned_width(net, removed), removed


def rewound(initial: LifeConvNet, replicas: list[int], removals: list[dict], width: int):
    """A net of `width` holding, per replica, the surviving units' initial weights (unused slots zero), and the
    masks that keep those slots at zero."""
    net = LifeConvNet(len(replicas), initial.blocks, width, initial.acts[0].name, initial.head, initial.layout,
                      initial.boundary, initial.normalize, initial.dropout)
    masks = [torch.zeros_like(p) for layer in net.layers for p in (layer.weight, layer.bias)]
    hidden = set(hidden_layers(initial))
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.zero_()
            layer.bias.zero_()
        for slot, (replica, removed) in enumerate(zip(replicas, removals)):
            kept = {i: [u for u in range(initial.layers[i].weight.shape[2]) if u not in removed.get(i, ())]
                    for i in hidden}
            for index, (old, new) in enumerate(zip(initial.layers, net.layers)):
                columns = kept.get(index, list(range(old.weight.shape[2])))
                if index - 1 in hidden:
                    rows_old = [r for u in kept[index - 1] for r in reading_rows(initial, index - 1, u)]
                    rows_new = [r for j in range(len(kept[index - 1])) for r in reading_rows(net, index - 1, j)]
                else:
                    rows_old = rows_new = list(range(old.weight.shape[1]))
                rows_o, rows_n = torch.tensor(rows_old)[:, None], torch.tensor(rows_new)[:, None]
                cols_o, cols_n = torch.tensor(columns)[None, :], torch.arange(len(columns))[None, :]
                new.weight[slot][rows_n, cols_n] = old.weight[replica][rows_o, cols_o]
                new.bias[slot][0, cols_n[0]] = old.bias[replica][0, cols_o[0]]
                masks[2 * index][slot][rows_n, cols_n] = 1
                masks[2 * index + 1][slot][0, cols_n[0]] = 1
            for old_act, new_act in zip(initial.acts, net.acts):
                if old_act.name == "prelu":
                    new_act.slope[slot] = old_act.slope[replica]
    return net, masks


def lottery(net, initial, task, per_replica: list[dict], seeds: list[int], config, settings) -> tuple[list[dict], dict]:
    """Per replica: pruned widths (with and without fine-tune) and the rewound net's success; per job: the rewind and
    baseline success counts with Wilson intervals. Only successful replicas wider than minimal are pruned."""
    rows = [{} for _ in per_replica]
    if not isinstance(net, LifeConvNet):
        return rows, {}
    minimal = len(task.rule.alive_intervals())
    chosen = [k for k, row in enumerate(per_replica) if row.get("success") and net.m_factor > minimal]
    removals = []
    for k in chosen:
        width, removed = prune(net, k, task, 0, config.optim, seeds[k])
        rows[k]["prune_width"] = width
        if settings.finetune_steps:
            rows[k]["prune_width_finetuned"] = prune(net, k, task, settings.finetune_steps, config.optim, seeds[k])[0]
        removals.append(removed)
    steps = settings.rewind_steps or config.trainer.max_steps
    summary = {}
    if chosen and settings.rewind:
        width = max(rows[k]["prune_width"] for k in chosen)
        tickets, masks = rewound(initial, chosen, removals, width)
        train(tickets, task, [seeds[k] for k in chosen], config.optim, steps, masks)
        for k, ok in zip(chosen, exact(tickets, task)):
            rows[k]["rewind_success"] = ok
        summary.update(_rate("rewind", [rows[k]["rewind_success"] for k in chosen]))
        summary["rewind_width"] = width
        # The lottery-ticket control: the same surviving architecture (same masks, same data streams), new weights.
        reinit_seeds = [replica_seed(config.seed, config.trials + settings.baseline_trials + i) for i in chosen]
        reinit = copy.deepcopy(tickets)
        reinit.reset_parameters(reinit_seeds)
        apply_masks(reinit, masks)
        train(reinit, task, [seeds[k] for k in chosen], config.optim, steps, masks)
        for k, ok in zip(chosen, exact(reinit, task)):
            rows[k]["reinit_success"] = ok
        summary.update(_rate("reinit", [rows[k]["reinit_success"] for k in chosen]))
    if chosen and settings.rewind and settings.baseline_trials:
        baseline_seeds = [replica_seed(config.seed, config.trials + i) for i in range(settings.baseline_trials)]
        fresh = LifeConvNet(len(baseline_seeds), net.blocks, minimal, net.acts[0].name, net.head, net.layout,
                            net.boundary, net.normalize, net.dropout)
        fresh.reset_parameters(baseline_seeds)
        train(fresh, task, baseline_seeds, config.optim, steps)
        summary.update(_rate("baseline", exact(fresh, task)))
        summary["baseline_width"] = minimal
    if chosen:
        summary["rewind_steps"] = steps
    return rows, summary


def _rate(name: str, outcomes: list[bool]) -> dict:
    successes, trials = sum(outcomes), len(outcomes)
    low, high = wilson_interval(successes, trials)
    return {f"{name}_successes": successes, f"{name}_trials": trials, f"{name}_success_rate": successes / trials,
            f"{name}_ci_low": low, f"{name}_ci_high": high}
