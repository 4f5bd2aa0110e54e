"""Parameter and FLOP counting with forward hooks (no extra dependency).

FLOPs are counted as 2 x multiply-accumulates of ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` layers
(biases, BN, activations, pooling, softmax, interpolation and the unpooling scatter are not counted:
together they are well under 1% of any registered model). Hooks fire on every call, so a layer used
several times (SCNN slices, shared ENet-SAD blocks) is counted each time.
"""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; shared parameters are counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        # every input pixel is scattered through the whole kernel to all output channels of its group
        kh, kw = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_flops(model: nn.Module, input_size: tuple[int, int] | None = None, batch: int = 1,
                in_channels: int | None = None) -> int:
    """FLOPs (2 x MACs) of one forward of ``model`` on a ``(batch, in_channels, H, W)`` input.

    Runs a real forward under ``torch.no_grad`` in eval mode on the model's device; build the model
    on the ``meta`` device (``with torch.device("meta"): build_model(...)``) to count without computing.

    Args:
        model: the network; ``input_size`` and ``in_channels`` default to its ``input_size`` and
            ``in_channels`` attributes.
    """
    size = input_size if input_size is not None else model.input_size
    cin = in_channels if in_channels is not None else getattr(model, "in_channels", 3)
    param = next(model.parameters())
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(batch, cin, *size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return 2 * total
