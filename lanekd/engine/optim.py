"""Optimisers and per-iteration learning-rate schedules.

Schedules are multipliers of the base learning rate at iteration ``it`` of ``max_iter``:

* ``poly``: ``(1 - it / max_iter) ** power`` (SCNN/SAD, ``power`` 0.9);
* ``cosine``: ``0.5 * (1 + cos(pi * it / max_iter))``;
* ``onecycle``: a linear rise from ``warmup_factor`` to 1 over the first 30 % of training,
  then a cosine fall to 0 (Smith's one-cycle policy, without momentum cycling).

``poly`` and ``cosine`` are multiplied during the first ``warmup_iters`` iterations by a factor
rising linearly from ``warmup_factor`` to 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

ONECYCLE_PEAK = 0.3  # fraction of training spent rising in the one-cycle schedule


#: Parameters, or parameter groups (dicts with ``params`` and a ``lr_scale`` factor of the base rate).
Params = Iterable[torch.nn.Parameter] | Iterable[dict]


def _groups(params: Params, lr: float) -> list[dict]:
    """Trainable parameter groups with their learning rates (``lr`` times each group's ``lr_scale``)."""
    items = list(params)
    if not items or not isinstance(items[0], dict):
        items = [{"params": items}]
    out = []
    for g in items:
        trainable = [p for p in g["params"] if p.requires_grad]
        if trainable:
            out.append({"params": trainable, "lr": lr * float(g.get("lr_scale", 1.0))})
    return out


def build_sgd(
    params: Params,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    nesterov: bool = True,
) -> torch.optim.SGD:
    """SGD with momentum, weight decay on every parameter (as the Torch code) and optional Nesterov."""
    return torch.optim.SGD(
        _groups(params, lr), lr=lr, momentum=momentum, weight_decay=weight_decay,
        nesterov=nesterov and momentum > 0,
    )


def build_optimizer(
    name: str,
    params: Params,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    nesterov: bool = True,
) -> torch.optim.Optimizer:
    """``sgd`` (see :func:`build_sgd`) or ``adamw`` (betas (momentum, 0.999), decoupled decay)."""
    if name == "sgd":
        return build_sgd(params, lr, momentum, weight_decay, nesterov)
    if name == "adamw":
        return torch.optim.AdamW(_groups(params, lr), lr=lr, betas=(momentum, 0.999),
                                 weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def schedule_factor(
    iteration: int,
    max_iter: int,
    schedule: str = "poly",
    power: float = 0.9,
    warmup_iters: int = 0,
    warmup_factor: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based)."""
    t = min(max(iteration / max_iter, 0.0), 1.0)
    if schedule == "onecycle":
        if t < ONECYCLE_PEAK:
            a = t / ONECYCLE_PEAK
            return warmup_factor * (1.0 - a) + a
        return 0.5 * (1.0 + math.cos(math.pi * (t - ONECYCLE_PEAK) / (1.0 - ONECYCLE_PEAK)))
    if schedule == "poly":
        factor = (1.0 - t) ** power
    elif schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * t))
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        factor *= warmup_factor * (1.0 - alpha) + alpha
    return factor


def poly_factor(
    iteration: int, max_iter: int, power: float = 0.9, warmup_iters: int = 0, warmup_factor: float = 0.1
) -> float:
    """Multiplier of the poly schedule at ``iteration`` (0-based)."""
    return schedule_factor(iteration, max_iter, "poly", power, warmup_iters, warmup_factor)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    max_iter: int,
    schedule: str = "poly",
    power: float = 0.9,
    warmup_iters: int = 0,
    warmup_factor: float = 0.1,
) -> LambdaLR:
    """A ``LambdaLR`` stepping once per iteration with :func:`schedule_factor`.

    Its ``state_dict`` holds only the step count (the lambda is rebuilt from the config), so a
    resumed run continues the same curve.
    """
    schedule_factor(0, max_iter, schedule)  # unknown names fail here, not at the first step
    return LambdaLR(
        optimizer, lambda it: schedule_factor(it, max_iter, schedule, power, warmup_iters, warmup_factor)
    )


def build_poly_scheduler(
    optimizer: torch.optim.Optimizer,
    max_iter: int,
    power: float = 0.9,
    warmup_iters: int = 0,
    warmup_factor: float = 0.1,
) -> LambdaLR:
    """:func:`build_scheduler` with the poly schedule."""
    return build_scheduler(optimizer, max_iter, "poly", power, warmup_iters, warmup_factor)
