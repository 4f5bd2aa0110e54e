"""Activation-based attention maps shared by SAD, LGAD and attention transfer.

SAD's attention generator (SAD paper) is Ψ(A) = Φ(B(G^p_sum(A))):

1. ``G^p_sum``: channel aggregation Σ_c |A_c|^p (p = 2 in the paper);
2. ``B``: bilinear resize of the *aggregated* map, only when the requested size differs. Resizing
   the one-channel map before the softmax follows the composite order Φ∘B∘G of the paper and
   is C times cheaper than resizing the features;
3. ``Φ``: a softmax over the H·W positions of *each sample* (not across the batch as Torch's
   ``SpatialSoftMax`` on a 3-D tensor did in the official ENet-SAD code; docs/distill.md), so every
   map sums to 1.

All computations run in float32 (or float64 if the input is float64) whatever the autocast
dtype, because softmax maps of order 1/(H·W) underflow in float16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


AGGREGATIONS = ("sum", "mean", "zscore")


def aggregate_attention(feat: torch.Tensor, p: float = 2.0, aggregation: str = "sum") -> torch.Tensor:
    """Channel aggregation G^p_sum(A) = Σ_c |A_c|^p (or a rescaled form of it).

    Args:
        feat: ``(B, C, H, W)`` feature map.
        p: exponent (> 0).
        aggregation: ``"sum"`` (the paper's G^p_sum); ``"mean"`` (Σ/C: a fixed spatial-softmax
            temperature of C); ``"zscore"`` (G standardised per sample over its positions: an
            adaptive temperature, so Ψ stays a peaked but not one-hot map however large the
            activations grow during training — measured in docs/distill.md).

    Returns:
        ``(B, H, W)`` map (non-negative except for ``zscore``), float32 (float64 for float64 input).
    """
    if feat.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) feature map, got shape {tuple(feat.shape)}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    x = feat.to(_compute_dtype(feat))
    # x * x avoids abs(), whose gradient is undefined at 0
    g = (x * x).sum(dim=1) if p == 2 else x.abs().pow(p).sum(dim=1)
    if aggregation == "mean":
        return g / x.shape[1]
    if aggregation == "zscore":
        flat = g.flatten(1)
        # constant maps (std 0) become all-zero, i.e. a uniform Ψ
        std, mean = torch.std_mean(flat, dim=1, keepdim=True, correction=0)
        return ((flat - mean) / (std + 1e-6)).view_as(g)
    return g


def resize_map(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (half-pixel centres, ``align_corners=False``) of ``(B, H, W)`` maps."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m.unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)


def spatial_softmax(m: torch.Tensor) -> torch.Tensor:
    """Per-sample softmax over all H·W positions of ``(B, H, W)`` maps; each output sums to 1."""
    b, h, w = m.shape
    return torch.softmax(m.reshape(b, h * w), dim=1).reshape(b, h, w)


def attention_map(feat: torch.Tensor, size: tuple[int, int] | None = None, p: float = 2.0,
                  aggregation: str = "sum") -> torch.Tensor:
    """SAD attention Ψ(A) = spatial-softmax(resize(Σ_c |A_c|^p)).

    Args:
        feat: ``(B, C, H, W)`` block output.
        size: ``(H', W')`` output size; ``None`` keeps ``(H, W)``. The aggregated map is resized
            bilinearly *before* the softmax.
        p: channel-aggregation exponent.
        aggregation: ``"sum"`` (paper), ``"mean"`` or ``"zscore"``, see :func:`aggregate_attention`.

    Returns:
        ``(B, H', W')`` maps, each summing to 1 over its positions.

    Example:
        >>> attention_map(torch.zeros(2, 8, 4, 5)).sum(dim=(1, 2))
        tensor([1., 1.])
    """
    g = aggregate_attention(feat, p, aggregation)
    if size is not None:
        g = resize_map(g, size)
    return spatial_softmax(g)


def common_size(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int]:
    """The size two maps are compared at: the larger of each dimension (the smaller map is upsampled,
    never is a map downsampled; SAD paper: the smaller map is upsampled to the larger)."""
    return max(int(a[-2]), int(b[-2])), max(int(a[-1]), int(b[-1]))


def map_mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sum-mean") -> torch.Tensor:
    """Squared error between ``(B, H, W)`` maps.

    ``sum-mean``: sum over pixels, mean over the batch (docs/distill.md: softmax maps
    are of order 1/(H·W), so a full mean would be vanishingly small). ``mean``: mean over all
    B·H·W elements (Torch ``nn.MSECriterion`` default).
    """
    diff = (pred - target).pow(2)
    if reduction == "sum-mean":
        return diff.flatten(1).sum(dim=1).mean()
    if reduction == "mean":
        return diff.mean()
    raise ValueError(f"unknown reduction {reduction!r}")
