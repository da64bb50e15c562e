"""The training-loss Hessian of one replica: top eigenvalues (scipy `eigsh` on Hessian-vector products) and its
spectral density (stochastic Lanczos quadrature, SLQ), in float64.

The replica is exported to a plain module (`export_replica`) so its parameters are its own; the loss is the
training loss (mean BCE on the net's logits, or on its probabilities for the clamp head) on one fixed training
batch, in eval mode (no dropout). Hessian-vector products are forward-over-reverse `torch.func.jvp(grad(loss))`.

Summary numbers (tol = `zero_tolerance` x lambda_max):
- `hessian_lambda_max`, `hessian_lambda_min`: largest and smallest eigenvalue (eigsh, `LA` and `SA`);
- `hessian_outliers`: how many of the `top_k` largest eigenvalues exceed `outlier_fraction` x lambda_max
  (Sagun et al.'s few large eigenvalues standing out of a bulk near zero; a count equal to top_k is a floor);
- `hessian_near_zero_fraction`: the SLQ mass of eigenvalues with |lambda| <= tol;
- `hessian_negative_fraction` and `hessian_negative_count` (that fraction x parameters, rounded): SLQ mass below
  -tol: directions of negative curvature mean the replica sits at a saddle, not a minimum.
Nets of up to `dense_limit` parameters (every Life net of the why_width preset) get the exact spectrum from the
dense Hessian (P vectorised Hessian-vector products): ARPACK needs hundreds of products to separate the clustered
small eigenvalues, more than P itself. Above it the extremes come from eigsh and the masses from SLQ (with
`lanczos_steps` >= P its nodes are every eigenvalue, its masses estimates from `probes` random probes).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, eigsh
from torch.func import functional_call, grad, jvp
from torch.nn import functional as F


class ReplicaHessian:
    """Hessian-vector products of `loss(module(inputs), targets)` with respect to the module's parameters."""

    def __init__(self, module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, output_kind: str,
                 weights: torch.Tensor | None = None):
        self.module = copy.deepcopy(module).double().eval()
        self.weights = None if weights is None else weights.double()
        self.names = [name for name, _ in self.module.named_parameters()]
        self.shapes = [p.shape for _, p in self.module.named_parameters()]
        self.point = torch.cat([p.detach().reshape(-1) for _, p in self.module.named_parameters()])
        self.size = self.point.numel()
        self.inputs, self.targets = inputs.double(), targets.double()
        self.output_kind = output_kind
        self._gradient = grad(self.loss)

    def _parameters(self, flat: torch.Tensor) -> dict:
        parts = torch.split(flat, [int(np.prod(s)) for s in self.shapes])
        return {name: part.reshape(shape) for name, part, shape in zip(self.names, parts, self.shapes)}

    def loss(self, flat: torch.Tensor) -> torch.Tensor:
        outputs = functional_call(self.module, self._parameters(flat), (self.inputs,))
        if self.output_kind == "logits":
            losses = F.binary_cross_entropy_with_logits(outputs, self.targets, reduction="none")
        else:
            losses = F.binary_cross_entropy(outputs, self.targets, reduction="none")
        if self.weights is None:
            return losses.mean()
        return (losses * self.weights).sum() / self.weights.sum()

    def vector_product(self, vector: torch.Tensor) -> torch.Tensor:
        return jvp(self._gradient, (self.point,), (vector,))[1]

    def dense(self, chunk: int = 64) -> np.ndarray:
        """The full `[P, P]` Hessian: one vectorised Hessian-vector product per basis vector, `chunk` at a time."""
        basis = torch.eye(self.size, dtype=torch.float64)
        return torch.func.vmap(self.vector_product, chunk_size=chunk)(basis).numpy()

    def operator(self) -> LinearOperator:
        def matvec(v):
            return self.vector_product(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))).numpy()

        return LinearOperator((self.size, self.size), matvec=matvec, dtype=np.float64)


def top_eigenvalues(hessian: ReplicaHessian, count: int, which: str = "LA") -> np.ndarray:
    """The `count` largest (`LA`) or smallest (`SA`) eigenvalues, in decreasing order, by implicitly restarted
    Lanczos (ARPACK via scipy's `eigsh`); the dense eigvalsh for nets too small for ARPACK (count >= size)."""
    count = min(count, hessian.size)
    if count >= hessian.size - 1:
        dense = np.linalg.eigvalsh(hessian.operator() @ np.eye(hessian.size))
        chosen = dense[-count:] if which == "LA" else dense[:count]
        return np.sort(chosen)[::-1]
    start = np.random.default_rng(0).standard_normal(hessian.size)  # ARPACK's own start vector is not seeded
    values = eigsh(hessian.operator(), k=count, which=which, v0=start, return_eigenvectors=False)
    return np.sort(values)[::-1]


def lanczos_quadrature(hessian: ReplicaHessian, steps: int, probes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SLQ: nodes and weights (summing to 1) of the spectral density, averaged over `probes` Rademacher probes,
    each run through `steps` Lanczos steps with full reorthogonalisation."""
    generator = np.random.default_rng(seed)
    steps = min(steps, hessian.size)
    nodes, weights = [], []
    for _ in range(probes):
        vector = generator.choice([-1.0, 1.0], size=hessian.size)
        vector /= np.linalg.norm(vector)
        basis, alphas, betas = [vector], [], []
        for step in range(steps):
            product = hessian.vector_product(torch.from_numpy(basis[-1])).numpy()
            alpha = float(basis[-1] @ product)
            alphas.append(alpha)
            product = product - alpha * basis[-1] - (betas[-1] * basis[-2] if betas else 0.0)
            stacked = np.stack(basis)
            product -= stacked.T @ (stacked @ product)  # full reorthogonalisation, twice is enough
            product -= stacked.T @ (stacked @ product)
            beta = float(np.linalg.norm(product))
            if step == steps - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
                break
            betas.append(beta)
            basis.append(product / beta)
        ritz, vectors = eigh_tridiagonal(np.array(alphas), np.array(betas[: len(alphas) - 1]))
        nodes.append(ritz)
        weights.append(vectors[0] ** 2 / probes)
    return np.concatenate(nodes), np.concatenate(weights)


def spectrum_summary(hessian: ReplicaHessian, settings) -> dict:
    """The numbers of the module docstring: exact (every eigenvalue of the dense Hessian, each of mass 1 / P) up
    to `dense_limit` parameters, else eigsh for the extremes and SLQ for the density."""
    if hessian.size <= settings.dense_limit:
        nodes = np.linalg.eigvalsh(hessian.dense())
        weights = np.full(hessian.size, 1.0 / hessian.size)
        top, lowest = nodes[::-1][: settings.top_k], nodes[0]
    else:
        top = top_eigenvalues(hessian, settings.top_k, "LA")
        lowest = top_eigenvalues(hessian, 1, "SA")[0]
        nodes, weights = lanczos_quadrature(hessian, settings.lanczos_steps, settings.probes, settings.seed)
    lambda_max = float(top[0])
    tolerance = settings.zero_tolerance * abs(lambda_max)
    negative = float(weights[nodes < -tolerance].sum())
    return {
        "hessian_parameters": hessian.size,
        "hessian_method": "dense" if hessian.size <= settings.dense_limit else "lanczos",
        "hessian_lambda_max": lambda_max,
        "hessian_lambda_min": float(lowest),
        "hessian_top": top.tolist(),
        "hessian_outliers": int((top > settings.outlier_fraction * lambda_max).sum()),
        "hessian_near_zero_fraction": float(weights[np.abs(nodes) <= tolerance].sum()),
        "hessian_negative_fraction": negative,
        "hessian_negative_count": int(round(negative * hessian.size)),
        "hessian_slq_nodes": nodes.tolist(),
        "hessian_slq_weights": weights.tolist(),
    }


def hessian_batch(task, settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed training batch `[B, 1, H, W]` (boards and targets), drawn like training data from `settings.seed`."""
    from ..tasks.life import sample_boards

    generator = torch.Generator().manual_seed(settings.seed)
    density = task.density if isinstance(task.density, (int, float)) else tuple(task.density)
    boards = sample_boards(generator, settings.boards, task.train_size, density)
    return boards.unsqueeze(1), task.targets(boards).unsqueeze(1)


def pattern_batch(task, inputs: torch.Tensor):
    """A one-block net's output at a cell is a function of its 3x3 pattern, so the loss on a batch is a sum over
    the 512 patterns x 2 targets weighted by how often each occurs: the same loss, 512 cells instead of B x H x W.
    Returns patterns `[1024, 1, 3, 3]` (each twice), targets `[1024, 1, 1, 1]` (0 then 1) and the counts."""
    from ..tasks.life.patterns import pattern_matrix

    counts = task.pattern_target_counts(inputs[:, 0].unsqueeze(0).to(torch.uint8))[0]  # [512, 2]
    patterns = pattern_matrix(torch.float64).T.reshape(512, 1, 3, 3)
    both = torch.cat([patterns, patterns])
    targets = torch.cat([torch.zeros(512), torch.ones(512)]).double().reshape(1024, 1, 1, 1)
    weights = torch.cat([counts[:, 0], counts[:, 1]]).reshape(1024, 1, 1, 1)
    return both, targets, weights


def hessian_spectra(net, task, settings) -> tuple[list[dict], list]:
    """Per replica the summary above (rows) and (nodes, weights) for the density figure."""
    from .export import export_replica

    if not hasattr(task, "train_size"):
        return [{} for _ in range(net.replicas)], []
    inputs, targets = hessian_batch(task, settings)
    weights = None
    if getattr(net, "blocks", None) == 1:
        inputs, targets, weights = pattern_batch(task, inputs)
    rows, densities = [], []
    for replica in range(net.replicas):
        module = export_replica(net, replica)
        if weights is not None:
            for conv in module:
                if isinstance(conv, torch.nn.Conv2d):
                    # a 3x3 pattern in, its center cell's output out; a circular (wrap) conv pads in its own
                    # F.pad call, from sizes fixed at construction, so it must become a zero-padding conv too
                    conv.padding, conv.padding_mode = (0, 0), "zeros"
        hessian = ReplicaHessian(module, inputs, targets, net.output_kind, weights)
        row = spectrum_summary(hessian, settings)
        densities.append((row["hessian_slq_nodes"], row["hessian_slq_weights"]))
        rows.append(row)
    return rows, densities


def plot_densities(densities: list, successes: list[bool], path, width: float = 0.02) -> None:
    """Each replica's SLQ density, broadened by a Gaussian of `width` on a symmetric-log eigenvalue axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    grid = np.linspace(-8, 8, 800)  # asinh(lambda / 1e-5) / ln(10), roughly log10 |lambda| + 5 with a sign

    def squash(values):
        return np.arcsinh(np.asarray(values) / 1e-5) / np.log(10)

    for (nodes, weights), success in zip(densities, successes):
        centers = squash(nodes)
        density = (np.asarray(weights)[:, None] * np.exp(-0.5 * ((grid[None] - centers[:, None]) / (10 * width)) ** 2))
        axis.plot(grid, density.sum(0), color="tab:green" if success else "tab:red", alpha=0.5, lw=1)
    ticks = [-100.0, -1.0, -0.01, -1e-4, 0.0, 1e-4, 0.01, 1.0, 100.0]
    axis.set_xticks(squash(ticks), [f"{t:g}" for t in ticks])
    axis.set_xlabel("Hessian eigenvalue (symmetric log axis)")
    axis.set_ylabel("eigenvalue mass, broadened (green: solved, red: failed)", fontsize=8)
    axis.set_yscale("log")
    axis.set_ylim(1e-4, 2)
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
