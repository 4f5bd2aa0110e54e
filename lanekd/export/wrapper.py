"""The graph that gets exported: image in, probabilities out (softmax/sigmoid baked in)."""

from __future__ import annotations

import torch
from torch import nn


class ProbabilityHead(nn.Module):
    """Wrap a lane network so it returns ``(seg_prob, exist_prob)``.

    Baking softmax and sigmoid into the graph keeps every runtime (PyTorch, ONNX Runtime,
    TorchScript) feeding the decoder the same thing.

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
        seg = torch.softmax(out.seg, dim=1)
        if out.exist is None:
            return seg, seg.new_zeros((seg.shape[0], 0))
        return seg, torch.sigmoid(out.exist)
