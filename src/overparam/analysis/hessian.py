"""The training-loss Hessian of each replica: top eigenvalues (scipy `eigsh` on Hessian-vector products) and its
spectral density (stochastic Lanczos quadrature, SLQ), in float64; for any task and replica net.

The replica is exported to a plain module (`ReplicaNet.export_replica`) so its parameters are its own; the loss is
the task's own training loss (`Task.replica_losses`) on one fixed batch (`Task.fixed_batch`: e.g. Life's boards
drawn from a seed, jamming's own training set), in eval mode (no dropout). Hessian-vector products are
forward-over-reverse `torch.func.jvp(grad(loss))`.

Summary numbers (tol = `zero_tolerance` x lambda_max):
- `hessian_lambda_max`, `hessian_lambda_min`: largest and smallest eigenvalue (eigsh, `LA` and `SA`);
- `hessian_loss` and `hessian_gradient_norm`: the loss and the norm of its gradient at the trained point, on the
  same batch. A small lambda_max of a BCE loss partly reflects saturated outputs (a small loss); negative
  eigenvalues mark a saddle only near a critical point (a small gradient norm);
- `hessian_outliers`: how many of the `top_k` largest eigenvalues exceed `outlier_fraction` x lambda_max
  (Sagun et al.'s few large eigenvalues standing out of a bulk near zero); it is capped at top_k, so a count equal
  to top_k is a floor;
- `hessian_near_zero_fraction`: the spectral mass of eigenvalues with |lambda| <= tol;
- `hessian_negative_fraction` and `hessian_negative_count` (that fraction x parameters, rounded): the mass below
  -tol, directions of negative curvature.
Nets of up to `dense_limit` parameters get the exact spectrum from the dense Hessian (P vectorised Hessian-vector
products): ARPACK needs hundreds of products to separate the clustered small eigenvalues, more than P itself.
Above it the extremes come from eigsh and the masses from SLQ (with `lanczos_steps` >= P its nodes are every
eigenvalue, its masses estimates from `probes` random probes).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, eigsh
from torch.func import functional_call, grad, jvp

from overparam.analysis.base import Analysis, Trained
from overparam.config.checks import boolean, integer, number
from overparam.nets.replica import ReplicaNet


class ReplicaHessian:
    """Hessian-vector products of `loss(module(inputs))` with respect to the module's parameters, in float64."""

    def __init__(self, module: torch.nn.Module, inputs: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor]):
        self.module = copy.deepcopy(module).double().eval()
        self.names = [name for name, _ in self.module.named_parameters()]
        self.shapes = [p.shape for _, p in self.module.named_parameters()]
        self.point = torch.cat([p.detach().reshape(-1) for _, p in self.module.named_parameters()])
        self.size = self.point.numel()
        self.inputs = inputs.double()
        self.loss_of_outputs = loss
        self._gradient = grad(self.loss)

    def _parameters(self, flat: torch.Tensor) -> dict:
        parts = torch.split(flat, [int(np.prod(s)) for s in self.shapes])
        return {name: part.reshape(shape) for name, part, shape in zip(self.names, parts, self.shapes)}

    def loss(self, flat: torch.Tensor) -> torch.Tensor:
        return self.loss_of_outputs(functional_call(self.module, self._parameters(flat), (self.inputs,)))

    def gradient_norm(self) -> float:
        return float(self._gradient(self.point).norm())

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
        "hessian_loss": float(hessian.loss(hessian.point)),
        "hessian_gradient_norm": hessian.gradient_norm(),
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


def task_loss(task, targets: torch.Tensor, weights: torch.Tensor | None, output_kind: str):
    """The task's training loss of one replica's outputs `[B, ...]` against `targets [1, B, ...]` (weighted when the
    task gave weights), in float64."""
    targets = targets.double()
    extra = {} if weights is None else {"weight": weights.double()}

    def loss(outputs: torch.Tensor) -> torch.Tensor:
        return task.replica_losses(outputs.unsqueeze(0), targets, output_kind, **extra)[0]

    return loss


def hessian_spectra(net, task, settings) -> tuple[list[dict], list]:
    """Per replica the summary above (rows) and (nodes, weights) for the density figure."""
    rows, densities = [], []
    for replica in range(net.replicas):
        inputs, targets, weights = task.fixed_batch(replica, settings.seed, settings.examples, net)
        loss = task_loss(task, targets, weights, net.output_kind)
        row = spectrum_summary(ReplicaHessian(net.export_replica(replica), inputs[0], loss), settings)
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


class HessianSpectrum(Analysis):
    """The training-loss Hessian's extremes and spectral density per replica (the module docstring)."""

    CHECKS = {"examples": integer(1), "seed": integer(0), "top_k": integer(1), "dense_limit": integer(0),
              "lanczos_steps": integer(1), "probes": integer(1), "zero_tolerance": number(0.0),
              "outlier_fraction": number(0.0), "images": boolean}
    BY_OUTCOME = ("hessian_lambda_max", "hessian_lambda_min", "hessian_loss", "hessian_gradient_norm",
                  "hessian_outliers", "hessian_near_zero_fraction", "hessian_negative_fraction")
    CHARTS = {"Hessian lambda_max vs width (solved / failed replicas)": [
        "hessian_lambda_max_mean_success", "hessian_lambda_max_mean_failed"]}

    def __init__(self, examples: int = 128, seed: int = 8765, top_k: int = 20, dense_limit: int = 1000,
                 lanczos_steps: int = 80, probes: int = 8, zero_tolerance: float = 1e-3,
                 outlier_fraction: float = 0.1, images: bool = True):
        """`examples`: the fixed batch's size (training examples drawn from `seed`, or the task's own set);
        `top_k` largest eigenvalues recorded; exact spectrum up to `dense_limit` parameters, else SLQ with
        `lanczos_steps` and `probes`; near zero within `zero_tolerance` x lambda_max; an outlier above
        `outlier_fraction` x lambda_max; `images`: hessian.png in the job folder."""
        self.examples, self.seed, self.top_k, self.dense_limit = examples, seed, top_k, dense_limit
        self.lanczos_steps, self.probes, self.zero_tolerance = lanczos_steps, probes, zero_tolerance
        self.outlier_fraction, self.images = outlier_fraction, images

    @classmethod
    def unsuitable(cls, task_class: type, model_class: type) -> str | None:
        if getattr(model_class, "export_replica", None) is getattr(ReplicaNet, "export_replica", None):
            return f"needs a net that exports its replicas as plain torch; {model_class.__name__} does not"
        return None

    def run(self, trained: Trained) -> tuple[list[dict], dict]:
        rows, densities = hessian_spectra(trained.net, trained.task, self)
        if densities and self.images:
            plot_densities(densities, trained.successes, trained.job_dir / "hessian.png")
        return rows, {}
