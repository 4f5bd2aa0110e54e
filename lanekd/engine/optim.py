"""SGD and the per-iteration poly learning-rate schedule (METHODS §2.5).

``lr(it) = base * (1 - it / max_iter) ** power``, optionally multiplied during the first
``warmup_iters`` iterations by a factor rising linearly from ``warmup_factor`` to 1.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR


def build_sgd(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    nesterov: bool = True,
) -> torch.optim.SGD:
    """SGD with momentum, weight decay on every parameter (as the Torch code) and optional Nesterov."""
    params = [p for p in params if p.requires_grad]
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov and momentum > 0
    )


def poly_factor(
    iteration: int, max_iter: int, power: float = 0.9, warmup_iters: int = 0, warmup_factor: float = 0.1
) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based)."""
    factor = max(0.0, 1.0 - iteration / max_iter) ** power
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        factor *= warmup_factor * (1.0 - alpha) + alpha
    return factor


def build_poly_scheduler(
    optimizer: torch.optim.Optimizer,
    max_iter: int,
    power: float = 0.9,
    warmup_iters: int = 0,
    warmup_factor: float = 0.1,
) -> LambdaLR:
    """A ``LambdaLR`` stepping once per iteration with :func:`poly_factor`.

    Its ``state_dict`` holds only the step count (the lambda is rebuilt from the config), so a
    resumed run continues the same curve.
    """
    return LambdaLR(optimizer, lambda it: poly_factor(it, max_iter, power, warmup_iters, warmup_factor))
