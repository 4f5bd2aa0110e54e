"""From network outputs to what the decoder reads: class probabilities and per-slot existence.

:class:`ProbabilityHead` is also the graph that gets exported (softmax/sigmoid baked in), so every
runtime (PyTorch, ONNX Runtime, TorchScript) feeds the decoder the same thing.
"""

from __future__ import annotations

import torch
from torch import nn


def lane_probabilities(
    seg: torch.Tensor, exist: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over classes and sigmoid over lane slots.

    Args:
        seg: ``(B, C, H, W)`` segmentation logits (channel 0 = background).
        exist: ``(B, L)`` existence logits, or ``None`` for a network without the branch.

    Returns:
        ``(seg_prob, exist_prob)``: ``(B, C, H, W)`` and ``(B, L)`` (``(B, 0)`` without the branch).
    """
    prob = torch.softmax(seg, dim=1)
    if exist is None:
        return prob, prob.new_zeros((prob.shape[0], 0))
    return prob, torch.sigmoid(exist)


def slot_presence(prob: torch.Tensor, exist: torch.Tensor) -> torch.Tensor:
    """Existence probabilities the decoder thresholds, for networks with or without the branch.

    The one rule for a network without an existence branch (``exist`` of shape ``(B, 0)``): a slot
    is present (1.0) when its channel wins the per-pixel argmax at one pixel at least, else absent
    (0.0). Validation and predict both decode with it, so a model is scored on what it predicts
    (decoding every slot, as predict once did, can read a lane off a slot that never wins a pixel).

    Args:
        prob: ``(B, L+1, H, W)`` class probabilities.
        exist: ``(B, L)`` existence probabilities, or ``(B, 0)``.

    Returns:
        ``(B, L)`` float existence probabilities on ``prob``'s device.
    """
    if exist.shape[1]:
        return exist
    lanes = torch.arange(1, prob.shape[1], device=prob.device).view(1, -1, 1, 1)
    return (prob.argmax(dim=1, keepdim=True) == lanes).flatten(2).any(dim=2).float()


class ProbabilityHead(nn.Module):
    """Wrap a lane network so it returns ``(seg_prob, exist_prob)`` (:func:`lane_probabilities`).

    Shapes:
        x: ``(B, 3, H, W)`` normalised image.
        seg_prob: ``(B, C, H, W)`` class probabilities.
        exist_prob: ``(B, L)`` lane-existence probabilities (``(B, 0)`` without the branch).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return lane_probabilities(out.seg, out.exist)
