"""Shared stand-in models for the distillation tests, and tests of the shared helpers.

Other ``test_distill_*`` modules import :class:`TinyLaneNet` and :func:`make_output` from here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lanekd.distill.base import label_to_onehot, zero_term
from lanekd.models.output import LaneOutput


class TinyLaneNet(nn.Module):
    """A 4-block stand-in lane network honouring the model contract (LaneOutput, sad_blocks, ...)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 5, width: int = 6, num_lanes: int = 4,
                 seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.build_args = {"name": "tiny", "num_classes": num_classes, "in_channels": in_channels}
        self.sad_blocks = ("block2", "block3", "block4")
        self.feature_channels = {"block1": width, "block2": width, "block3": width, "block4": width,
                                 "encoder": width}
        self.c1 = nn.Conv2d(in_channels, width, 3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)  # a 0-dim buffer (num_batches_tracked), as real models have
        self.c2 = nn.Conv2d(width, width, 3, 2, 1)
        self.c3 = nn.Conv2d(width, width, 3, 1, 1)
        self.c4 = nn.Conv2d(width, width, 3, 1, 1)
        self.head = nn.Conv2d(width, num_classes, 1)
        self.exist_fc = nn.Linear(width, num_lanes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> LaneOutput:
        b1 = torch.relu(self.bn1(self.c1(x)))
        b2 = torch.relu(self.c2(b1))
        b3 = torch.relu(self.c3(b2))
        b4 = torch.relu(self.c4(b3))
        seg = F.interpolate(self.head(b4), size=x.shape[-2:], mode="bilinear", align_corners=False)
        feats = {"block1": b1, "block2": b2, "block3": b3, "block4": b4, "encoder": b4}
        if not return_features:
            feats = {}
        return LaneOutput(seg, self.exist_fc(b4.mean(dim=(2, 3))), feats)


def make_output(features: dict[str, torch.Tensor], seg: torch.Tensor | None = None) -> LaneOutput:
    """A LaneOutput around hand-made features (seg defaults to a small leaf tensor)."""
    if seg is None:
        b = next(iter(features.values())).shape[0]
        seg = torch.zeros(b, 5, 2, 2, requires_grad=True)
    return LaneOutput(seg, None, features)


def make_batch(b: int = 2, h: int = 32, w: int = 48, num_classes: int = 5,
               seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, num_classes, (b, h, w), generator=g)
    label[:, :2] = 255
    return {"image": torch.randn(b, 3, h, w, generator=g), "label": label, "index": torch.arange(b)}


def test_label_to_onehot_values_and_ignore() -> None:
    label = torch.tensor([[[0, 2], [255, 1]]])
    onehot = label_to_onehot(label, 3)
    assert onehot.shape == (1, 3, 2, 2)
    expected = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 1], [0, 0]]], dtype=torch.float32)
    assert torch.equal(onehot[0], expected)  # the ignored pixel belongs to no class


def test_label_to_onehot_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        label_to_onehot(torch.tensor([[[0, 3]]]), 3)


def test_zero_term_is_exact_zero_with_zero_gradient() -> None:
    seg = torch.randn(2, 5, 3, 3, requires_grad=True)
    term = zero_term(LaneOutput(seg, None, {}))
    assert term.item() == 0.0 and term.requires_grad
    term.backward()
    assert torch.equal(seg.grad, torch.zeros_like(seg))


def test_tiny_lane_net_contract() -> None:
    out = TinyLaneNet()(torch.randn(1, 3, 16, 24), return_features=True)
    assert out.seg.shape == (1, 5, 16, 24)
    assert set(out.features) == {"block1", "block2", "block3", "block4", "encoder"}
