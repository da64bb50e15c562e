"""One replica-batched training step replayed as a CUDA graph, for `python -m overparam.tasks.life.bench --device cuda
--cuda-graphs`: the first GPU figures without the per-kernel launch cost that dominates small nets.

What is captured: `replica_step` on a static batch (the net's forward, each replica's loss, the divergence mask,
backward, the freeze of diverged replicas and the optimizer step), by PyTorch's whole-network recipe (warm-up on a
side stream, then `torch.cuda.graph`). What stays eager: drawing the batch, because every replica draws from its own
`torch.Generator` and a graph replays a fixed random stream; the batch is copied into the graph's static input
tensors before each replay.

Where the path allows: a CUDA device, a net with no Dropout2d while training (its masks come from the replicas'
own generators too), and Adam (rebuilt with `capturable=True`, its step counters on the device) or SGD.
`unavailable_reason` says why not otherwise; the bench then reports the eager path only.

Not run on this project's CI machine (no GPU): `tests/test_cuda_graphs.py` checks on CPU that the captured body
computes the module's own step, and replays on a GPU under the `gpu` marker.
"""

from __future__ import annotations

import torch

from overparam.core.module import ReplicaModule
from overparam.core.step import replica_step

WARMUP_STEPS = 3  # eager steps on a side stream before capture (allocations and lazy optimizer state settle)


def unavailable_reason(module: ReplicaModule, optimizer: torch.optim.Optimizer, device) -> str | None:
    """Why this module's step cannot be a CUDA graph on `device`, or None when it can."""
    if torch.device(device).type != "cuda":
        return f"CUDA graphs need a CUDA device, not {torch.device(device).type}"
    if getattr(module.net, "dropout", 0.0) > 0:
        return "the net draws Dropout2d masks from per-replica generators while training (set model.dropout=0)"
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.SGD)):
        return f"{type(optimizer).__name__} is not Adam or SGD"
    return None


def capturable(optimizer: torch.optim.Optimizer, params) -> torch.optim.Optimizer:
    """The same optimizer and settings over `params`, with Adam's step counters on the device."""
    settings = dict(optimizer.defaults)
    if isinstance(optimizer, torch.optim.Adam):
        settings.update(capturable=True, foreach=True, fused=None)
    return type(optimizer)(params, **settings)


def step_body(module: ReplicaModule, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
              targets: torch.Tensor) -> torch.Tensor:
    """The module's step (`replica_step`) on a static batch, as a graph can hold it: no host reads (the freeze of
    diverged replicas is masked arithmetic), no generator. Returns the replicas' losses `[K]`."""
    def losses_of():
        return module.task.replica_losses(module.net(inputs), targets, module.net.output_kind)

    return replica_step(module.net, optimizer, module.alive, losses_of, check_on_host=False)


class GraphedStep:
    """`step()` draws a batch eagerly and replays the captured body on it; `losses` holds the last losses."""

    def __init__(self, module: ReplicaModule, optimizer: torch.optim.Optimizer):
        reason = unavailable_reason(module, optimizer, module.device)
        if reason:
            raise ValueError(f"no CUDA graph for this step: {reason}")
        self.module, self.optimizer = module, capturable(optimizer, module.net.parameters())
        self.inputs, self.targets = self._draw()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step_body(module, self.optimizer, self.inputs, self.targets)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # the body's zero_grad sets the gradients to None inside the capture, so backward allocates them from the
        # graph's own pool and every replay writes them afresh
        with torch.cuda.graph(self.graph):
            self.losses = step_body(module, self.optimizer, self.inputs, self.targets)

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.task.train_batch(self.module.data_generators, self.module.device)

    def step(self) -> torch.Tensor:
        inputs, targets = self._draw()
        self.inputs.copy_(inputs)
        self.targets.copy_(targets)
        self.graph.replay()
        return self.losses
