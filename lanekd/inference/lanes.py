"""One way from a batch to decoded lanes, for every caller: validation (a PyTorch module on
normalised tensors), predict and bench (a :class:`~lanekd.inference.backends.Backend`)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from lanekd.inference.head import lane_probabilities, slot_presence

if TYPE_CHECKING:
    from lanekd.decode import DecodeProfile
    from lanekd.inference.backends import Backend

Lanes = list[list[np.ndarray]]


def _autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    if not amp:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@torch.no_grad()
def module_probabilities(
    model: nn.Module,
    x: torch.Tensor,
    *,
    amp: str | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a lane network and return float32 ``(seg_prob (B, C, H, W), exist_prob (B, L or 0))``.

    Args:
        x: ``(B, 3, H, W)`` normalised images (or ``(B, C, H, W)`` one-hot labels for an LGAD
            teacher) on the model's device.
        amp: ``None``, ``"fp16"`` or ``"bf16"`` autocast for the forward.
    """
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(x.device, amp):
        out = model(x)
    return lane_probabilities(out.seg.float(), None if out.exist is None else out.exist.float())


def infer_lanes(
    model: nn.Module | Backend,
    x: torch.Tensor | np.ndarray,
    profile: str | DecodeProfile,
    *,
    amp: str | None = None,
    channels_last: bool = False,
    spline: bool = True,
) -> tuple[Lanes, torch.Tensor, torch.Tensor]:
    """Probabilities, slot presence (:func:`~lanekd.inference.head.slot_presence`) and decoded lanes.

    Args:
        model: a lane network (``nn.Module``; ``amp``/``channels_last`` apply) or a loaded
            :class:`Backend` (PyTorch, ONNX, TorchScript).
        x: ``(B, 3, H, W)`` normalised batch (a tensor on the module's device, or a float32 array).
        profile: decoder profile, resolved once by the caller for a whole run when it is an object.
        spline: resample each lane along a spline (``lanekd.decode.decode``).

    Returns:
        ``(lanes, prob, exist)``: per image the decoded lanes in the profile's source pixels,
        the ``(B, C, H, W)`` probabilities and the ``(B, L)`` existence the decoder used.
    """
    from lanekd.decode import decode

    if isinstance(model, nn.Module):
        xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(x)
        prob, exist = module_probabilities(model, xt, amp=amp, channels_last=channels_last)
    else:
        seg_np, exist_np = model.run(x.cpu().numpy() if isinstance(x, torch.Tensor) else x)
        prob, exist = torch.from_numpy(seg_np), torch.from_numpy(exist_np)
    exist = slot_presence(prob, exist)
    return decode(prob, exist, profile=profile, spline=spline), prob, exist

