"""Lottery ticket or escape dimensions? Prune a successful wide replica (`pruning`), rewind its surviving units to
their initial weights and train them again, beside a control that re-initialises the same surviving architecture.

Rewind: the surviving units' *initial* weights (the same seed's initialisation) form a net of the pruned width
(unused slots held at zero; all tickets of a job share the widest pruned width), trained as the job trained the
replica (`core.step.replica_step`: the job's optimizer, the replica's own data stream from step 0) for
`rewind_steps` steps (0: the job's own budget). The control, `reinit`, is trained the same way: the same surviving
architecture (same masks, same data streams) with fresh initial weights (Frankle & Carbin's random
re-initialisation). Each replica thus gives a pair of outcomes (rewound, re-initialised). A ticket from which
pruning removed no unit (`prune_removed_units` 0) is the replica's own net: rewound, it replays the replica's own
successful run (same start, same data), so its success says nothing about a ticket; the docs' table
(`python -m overparam.report.tables why-width`) splits the pairs by whether pruning narrowed the net.
Fresh nets of the minimal width, the other natural comparison, are the sweep's own grid point at that width: with
the job's full budget they are trained exactly as the tickets are, so the lottery does not train them again.
"""

from __future__ import annotations

import copy

import torch

from overparam.analysis.base import Analysis, Trained
from overparam.config.checks import boolean, integer
from overparam.seeds import replica_seed
from overparam.tasks.life.analysis.pruning import exact, prune, train
from overparam.tasks.life.analysis.units import apply_masks, hidden_layers, reading_rows
from overparam.tasks.life.net import LifeConvNet


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


class Lottery(Analysis):
    """Per successful replica wider than minimal: its pruned width (with and without fine-tuning), whether its
    rewound survivors and their re-initialised control train to an exact net again."""

    CHECKS = {"finetune_steps": integer(0), "rewind": boolean, "rewind_steps": integer(0)}
    BY_OUTCOME = ("prune_width", "prune_width_finetuned")
    RATES = ("rewind_success", "reinit_success")
    CHARTS = {"lottery: rewound vs re-initialised survivors (success rate)": ["rewind_success_rate",
                                                                               "reinit_success_rate"]}

    def __init__(self, finetune_steps: int = 0, rewind: bool = True, rewind_steps: int = 0):
        """`finetune_steps` > 0: also prune with that many fine-tune steps per candidate (slow); `rewind`: train
        the rewound survivors and their control; `rewind_steps`: their training budget (0: the job's)."""
        self.finetune_steps, self.rewind, self.rewind_steps = finetune_steps, rewind, rewind_steps

    @classmethod
    def unsuitable(cls, task_class: type, model_class: type) -> str | None:
        if not issubclass(model_class, LifeConvNet):
            return f"needs model=life_conv (a LifeConvNet), got {model_class.__name__}"
        return None

    def run(self, trained: Trained) -> tuple[list[dict], dict]:
        net, task, config, seeds = trained.net, trained.task, trained.config, trained.seeds
        rows = [{} for _ in trained.per_replica]
        minimal = len(task.rule.alive_intervals())
        chosen = [k for k, ok in enumerate(trained.successes) if ok and net.m_factor > minimal]
        removals = []
        for k in chosen:
            rows[k]["prune_width"], removed = prune(net, k, task, 0, config.optim, seeds[k])
            # 0: the ticket is the replica's own net, and its rewound retraining replays the replica's own run
            rows[k]["prune_removed_units"] = sum(len(units) for units in removed.values())
            if self.finetune_steps:
                rows[k]["prune_width_finetuned"] = prune(net, k, task, self.finetune_steps, config.optim, seeds[k])[0]
            removals.append(removed)
        if not (chosen and self.rewind):
            return rows, {}
        steps = self.rewind_steps or config.trainer.max_steps
        width = max(rows[k]["prune_width"] for k in chosen)
        tickets, masks = rewound(trained.initial, chosen, removals, width)
        # the control: the same surviving architecture (same masks, same data streams), new initial weights
        reinit = copy.deepcopy(tickets)
        reinit.reset_parameters([replica_seed(config.seed, config.trials + i) for i in chosen])
        apply_masks(reinit, masks)
        for name, candidate in (("rewind", tickets), ("reinit", reinit)):
            alive = train(candidate, task, [seeds[k] for k in chosen], config.optim, steps, masks)
            for k, ok, live in zip(chosen, exact(candidate, task), alive.tolist()):
                rows[k][f"{name}_success"] = ok and live
        return rows, {"rewind_width": width, "rewind_steps": steps}
