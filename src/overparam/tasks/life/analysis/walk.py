"""Loss walks (Firner's loss_walk.py): the loss along the straight line from a net to the hand-built solution.

Firner steps from the trained net along the difference normalised to unit L1 norm, in 50 equal steps that end on
the destination: the points are start + (i / 50) (destination - start), i = 0..50. At each point the loss is
PyTorch's `nn.BCELoss` on sigmoid probabilities (which clamps log at -100, so a saturated wrong cell costs 100),
averaged over a fixed set of boards, in eval mode. The destination is the hand-built exact solution of the
configured rule embedded at the replica's width (`LifeConvNet.presolve`: the solution in the first units, zeros
elsewhere); with `destination: firner` Firner's own hand-built net (`firner_solution`); with `destination:
firner_trained` the destination his published walks used (analysis/get_walk_to_success_data.sh in
bfirner/dnn_game_of_life from commit 31022d2 on): his hand-built net trained for `destination_steps` batches
(1000 there) from that start, with the job's optimizer and loss, without dropout, on the data stream of
`destination_seed` (he used torch seed 100), the same net for every replica (`trained_firner_solution`). Hidden
units can be permuted without changing the function, so the solution's units are first matched to the replica's
(`align`), block by block; the unaligned walk is recorded too.

Firner averages each point's loss over 1000 batches of 128 10x10 boards (a stream reseeded before every point, so
the same boards at each point); `boards: 128000` matches that count (one fixed set). For a one-block net the loss
is a weighted sum over 512 (pattern, target) counts, counted once per walk set, so a large set costs no more per
point than a small one.

The barrier is the highest point of the profile above the straight line between its two end losses.
"""

from __future__ import annotations

import copy

import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F

from overparam.analysis.base import Analysis, Trained
from overparam.config.checks import boolean, choice, fail, integer
from overparam.tasks.life import sample_boards
from overparam.tasks.life.analysis.units import hidden_layers, permute_units
from overparam.tasks.life.net import LifeConvNet


def walk_set(task, boards: int, size: int, seed: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed evaluation boards `[B, H, W]` of every walk of a job, and their targets."""
    generator = torch.Generator(device=device).manual_seed(seed)
    density = task.density if isinstance(task.density, (int, float)) else tuple(task.density)
    cells = sample_boards(generator, boards, size, density, device)
    return cells, task.targets(cells)


@torch.no_grad()
def fixed_set_losses(net, task, boards: torch.Tensor, targets: torch.Tensor, chunk: int = 250,
                     counts: torch.Tensor | None = None) -> torch.Tensor:
    """`[K]` mean `nn.BCELoss` of each replica's probabilities on the fixed boards, in eval mode.

    For a one-block net the output is a function of each cell's 3x3 pattern, so the mean over the boards is a sum
    over 512 patterns weighted by how often each (pattern, target) occurs (`counts [512, 2]`, counted here when not
    given): the same number for any board count.
    """
    was_training = net.training
    net.eval()
    try:
        per_pattern = net.pattern_outputs()
        if per_pattern is not None:
            if counts is None:
                counts = task.pattern_target_counts(boards.unsqueeze(0).to(torch.uint8))[0]  # [512, 2]
            probabilities = _probabilities(net, per_pattern).unsqueeze(-1).expand(-1, -1, 2)
            wanted = torch.arange(2, dtype=probabilities.dtype).expand_as(probabilities)
            losses = F.binary_cross_entropy(probabilities, wanted, weight=counts.expand_as(probabilities),
                                            reduction="none")
            return losses.sum((1, 2)) / targets.numel()
        total = torch.zeros(net.replicas)
        for start in range(0, len(boards), chunk):
            batch = boards[start : start + chunk].expand(net.replicas, -1, -1, -1)
            probabilities = _probabilities(net, net(batch))
            wanted = targets[start : start + chunk].expand_as(probabilities)
            total += F.binary_cross_entropy(probabilities, wanted, reduction="none").flatten(1).sum(1)
        return total / targets.numel()
    finally:
        net.train(was_training)


def _probabilities(net, outputs: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(outputs) if net.output_kind == "logits" else outputs


def solution_like(net: LifeConvNet, rule, destination: str = "presolve") -> LifeConvNet:
    """A copy of `net` holding a hand-built solution of `rule` in every replica: overparam's own
    (`LifeConvNet.presolve`, any Life-like rule) or Firner's (`firner_solution`, B3/S23, firner layout)."""
    solution = copy.deepcopy(net)
    if destination in ("firner", "firner_trained"):
        firner_solution(solution, rule)
    else:
        solution.presolve(rule)
    return solution


def trained_firner_solution(net: LifeConvNet, task, optim_config, steps: int, seed: int) -> LifeConvNet:
    """A copy of `net` holding, in every replica, one net: Firner's hand-built solution trained for `steps` batches
    as a job trains (the job's optimizer, loss and batches; no dropout, as his destination is trained without
    --normalize) on the data stream of replica seed `seed`."""
    from overparam.core.retrain import train_replicas

    single = LifeConvNet(1, net.blocks, net.m_factor, net.activation, net.head, net.layout, net.boundary)
    firner_solution(single, task.rule)
    train_replicas(single, task, [seed], optim_config, steps)
    destination = copy.deepcopy(net)
    with torch.no_grad():
        for target, source in zip(destination.parameters(), single.parameters()):
            target.copy_(source.expand_as(target))
    return destination


@torch.no_grad()
def firner_solution(net: LifeConvNet, rule) -> None:
    """Firner's hand-built B3/S23 net (his `presolve`, bfirner/dnn_game_of_life) in the first units of every block,
    zeros elsewhere. With s = neighbors + cell / 2: a = act(s - 2), b = act(s - 3.5), mid = act(1 - 2a + 10b)
    (0 exactly on s in {2.5, 3, 3.5}, the cells alive next), out = 1 - 2 mid, or the logit 10 - 20 mid for the
    sigmoid head. Its weights are smaller than `presolve`'s, so walks to it are shorter."""
    from overparam.tasks.life.rules import CENTER, NEIGHBOR_INDICES

    if net.layout != "firner" or rule.alive_intervals() != [(5, 7)]:
        raise ValueError("Firner's hand solution is for B3/S23 in the firner layout")
    for layer in net.layers:
        layer.weight.zero_()
        layer.bias.zero_()
    for a in net.acts:
        if a.name == "prelu":
            a.slope.zero_()
    kernel = torch.zeros(9)
    kernel[NEIGHBOR_INDICES[rule.neighborhood]] = 1.0
    kernel[CENTER] = 0.5
    for block in range(net.blocks):
        first, second, third = net.layers[3 * block : 3 * block + 3]
        first.weight[:, :, 0] = kernel
        first.weight[:, :, 1] = kernel
        first.bias[:, 0, 0], first.bias[:, 0, 1] = -2.0, -3.5
        second.weight[:, 0, 0], second.weight[:, 1, 0], second.bias[:, 0, 0] = -2.0, 10.0, 1.0
        final_logit = block == net.blocks - 1 and net.head in ("sigmoid", "sigmoid_bceloss")
        third.weight[:, 0, 0], third.bias[:, 0, 0] = (-20.0, 10.0) if final_logit else (-2.0, 1.0)


@torch.no_grad()
def align(solution: LifeConvNet, net: LifeConvNet) -> LifeConvNet:
    """A copy of `solution` whose hidden units are permuted, replica by replica and layer by layer, to sit closest
    to `net`'s: unit a of the copy is the solution unit whose incoming weights and bias (already reordered by the
    previous layer's matching) have the smallest squared distance to unit a of `net` (`linear_sum_assignment`)."""
    aligned = copy.deepcopy(solution)
    for replica in range(net.replicas):
        for index in hidden_layers(net):
            ours, theirs = net.layers[index], aligned.layers[index]
            incoming = torch.cat([ours.weight[replica], ours.bias[replica]]).T  # [units, fan_in + 1]
            candidates = torch.cat([theirs.weight[replica], theirs.bias[replica]]).T
            cost = torch.cdist(incoming.double(), candidates.double()).pow(2)
            _, order = linear_sum_assignment(cost.numpy())
            permute_units(aligned, replica, index, order)
    return aligned


def _flat(net) -> torch.Tensor:
    """`[K, P]`: each replica's parameters as one vector."""
    return torch.cat([p.detach().reshape(p.shape[0], -1) for p in net.parameters()], dim=1)


@torch.no_grad()
def walk(start, end, task, boards, targets, points: int = 50, counts: torch.Tensor | None = None) -> dict:
    """Losses `[K, points + 1]` at start + (i / points)(end - start), with L1/L2 distances and barriers per replica."""
    probe = copy.deepcopy(start)
    pairs = list(zip(probe.parameters(), start.parameters(), end.parameters()))
    if counts is None and probe.pattern_outputs() is not None:  # one-block net: count the walk set's pairs once
        counts = task.pattern_target_counts(boards.unsqueeze(0).to(torch.uint8))[0]
    profile = []
    for i in range(points + 1):
        for parameter, a, b in pairs:
            parameter.copy_(torch.lerp(a, b, i / points))
        profile.append(fixed_set_losses(probe, task, boards, targets, counts=counts))
    profile = torch.stack(profile, dim=1).double()
    fractions = torch.linspace(0, 1, points + 1, dtype=torch.float64)
    chord = profile[:, :1] + fractions * (profile[:, -1:] - profile[:, :1])
    difference = _flat(end).double() - _flat(start).double()
    return {
        "l1": difference.abs().sum(1),
        "l2": difference.norm(dim=1),
        "barrier": (profile - chord).max(1).values,
        "start_loss": profile[:, 0],
        "end_loss": profile[:, -1],
        "profile": profile,
    }


WALKS = ("trained", "trained_unaligned", "init", "init_unaligned")
DESTINATIONS = ("presolve", "firner", "firner_trained")


def loss_walks(net, initial, task, settings, optim_config=None) -> tuple[list[dict], dict]:
    """Per replica: L1, L2, barrier and end losses of the four walks (from the trained net and from its
    initialisation, to the aligned and to the unaligned solution); and the profiles `{walk: [K, points + 1]}`.
    `optim_config` (the job's) trains the `firner_trained` destination."""
    boards, targets = walk_set(task, settings.boards, settings.size, settings.seed)
    if settings.destination == "firner_trained":
        solution = trained_firner_solution(net, task, optim_config, settings.destination_steps,
                                           settings.destination_seed)
    else:
        solution = solution_like(net, task.rule, settings.destination)
    counts = None
    if net.pattern_outputs() is not None:
        counts = task.pattern_target_counts(boards.unsqueeze(0).to(torch.uint8))[0]
    destinations = {
        "trained": (net, align(solution, net)),
        "trained_unaligned": (net, solution),
        "init": (initial, align(solution, initial)),
        "init_unaligned": (initial, solution),
    }
    rows = [{} for _ in range(net.replicas)]
    profiles = {}
    for name, (start, end) in destinations.items():
        measured = walk(start, end, task, boards, targets, settings.points, counts)
        profiles[name] = measured.pop("profile")
        prefix = "walk_" if name == "trained" else f"walk_{name}_"
        for key, values in measured.items():
            for row, value in zip(rows, values.tolist()):
                row[prefix + key] = value
    for row, profile in zip(rows, profiles["trained"].tolist()):
        row["walk_profile"] = profile
    return rows, profiles


def plot_walks(profiles: dict, successes: list[bool], path) -> None:
    """The trained replicas' walks to the aligned and to the unaligned solution (init walks dashed), log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, (trained, init, title) in zip(
        axes, [("trained", "init", "to the aligned solution"), ("trained_unaligned", "init_unaligned", "unaligned")]
    ):
        fractions = torch.linspace(0, 1, profiles[trained].shape[1])
        for k, success in enumerate(successes):
            color = "tab:green" if success else "tab:red"
            axis.plot(fractions, profiles[trained][k].clamp_min(1e-6), color=color, alpha=0.6, lw=1)
            axis.plot(fractions, profiles[init][k].clamp_min(1e-6), color="grey", alpha=0.3, lw=0.8, ls="--")
        axis.set_yscale("log")
        axis.set_title(f"loss walk {title}")
        axis.set_xlabel("fraction of the way to the solution")
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("BCE on the walk set")
    figure.suptitle("green: solved replicas, red: failed, grey dashed: from the initialisation", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


class LossWalk(Analysis):
    """Loss walks from each trained replica (and from its initialisation) to a hand-built solution (module
    docstring): L1 and L2 distance, barrier, start and end loss per walk."""

    CHECKS = {"boards": integer(1), "size": integer(3), "seed": integer(0), "points": integer(1),
              "destination": choice(*DESTINATIONS), "destination_steps": integer(0), "destination_seed": integer(0),
              "images": boolean}
    BY_OUTCOME = ("walk_barrier", "walk_l1", "walk_l2", "walk_start_loss", "walk_trained_unaligned_barrier",
                  "walk_init_barrier")
    CHARTS = {"loss-walk barrier vs width (solved / failed replicas)": ["walk_barrier_mean_success",
                                                                         "walk_barrier_mean_failed"]}

    def __init__(self, boards: int = 1000, size: int = 10, seed: int = 4321, points: int = 50,
                 destination: str = "presolve", destination_steps: int = 1000, destination_seed: int = 100,
                 images: bool = True):
        """`boards` fixed evaluation boards of `size` x `size` drawn from `seed` (the same for every replica and
        job); `points` equal steps to the `destination` (presolve: overparam's hand-built net, any rule; firner:
        his, B3/S23 only; firner_trained: his trained for `destination_steps` batches on the data stream of
        `destination_seed`); `images`: walks.png in the job folder."""
        self.boards, self.size, self.seed, self.points = boards, size, seed, points
        self.destination, self.images = destination, images
        self.destination_steps, self.destination_seed = destination_steps, destination_seed

    @classmethod
    def unsuitable(cls, task_class: type, model_class: type) -> str | None:
        if not issubclass(model_class, LifeConvNet) or not hasattr(task_class, "rule"):
            return f"needs task=life and model=life_conv, got {task_class.__name__} and {model_class.__name__}"
        return None

    @classmethod
    def check(cls, settings: dict, task: dict, model: dict) -> None:
        from overparam.tasks.life.rules import parse_rule

        rule = parse_rule(task["rule"], task["neighborhood"])
        destination = settings.get("destination")
        if destination in ("firner", "firner_trained") and (rule.notation != "B3/S23"
                                                            or model.get("layout") != "firner"):
            fail("analysis.walk.destination", destination, "Firner's hand solution needs task.rule=B3/S23 and "
                 "model.layout=firner")
        if len(rule.alive_intervals()) > model["m_factor"]:
            fail("model.m_factor", model["m_factor"], f"analysis.walk needs the hand solution of {rule.notation}, "
                 f"which takes m_factor >= {len(rule.alive_intervals())}")

    def run(self, trained: Trained) -> tuple[list[dict], dict]:
        rows, profiles = loss_walks(trained.net, trained.initial, trained.task, self, trained.config.optim)
        if profiles and self.images:
            plot_walks(profiles, trained.successes, trained.job_dir / "walks.png")
        return rows, {}
