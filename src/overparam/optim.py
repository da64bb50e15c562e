"""The optimizer named by the config. Each one updates every parameter element on its own, so replicas never mix."""

from __future__ import annotations

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(params, optim) -> torch.optim.Optimizer:
    name = optim.name
    if name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov, weight_decay=optim.weight_decay
        )
    raise ValueError(f"optim.name={name!r} is not one of {', '.join(OPTIMIZERS)}")
