"""Supervised lane losses of SCNN (Pan et al., AAAI 2018) and the SAD paper (Hou et al., ICCV 2019).

* segmentation: softmax cross-entropy, background weight 0.4, lanes 1, ignore 255; the mean is
  weighted (normalised by the sum of the target weights), as Torch's
  ``SpatialCrossEntropyCriterion(weights)`` and PyTorch's ``NLLLoss(weight=...)`` do;
* existence: binary cross-entropy on logits, mean over batch x lanes, weight 0.1;
* optional soft IoU loss of the SAD paper: ``1 - sum(p*y) / sum(p + y - p*y)`` over the lane
  classes (background excluded), ignore pixels masked out.

Every term is returned *weighted*, so ``loss_total`` is their plain sum and the logged values
add up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.distill.base import label_to_onehot

IGNORE_INDEX = 255


def weighted_cross_entropy(
    logits: torch.Tensor,
    label: torch.Tensor,
    background_weight: float = 0.4,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Class-weighted pixel cross-entropy.

    Args:
        logits: ``(B, C, H, W)`` class logits.
        label: ``(B, H, W)`` int64 class ids in ``[0, C)`` or ``ignore_index``.
        background_weight: weight of class 0; all other classes weigh 1.

    Returns:
        scalar: ``sum_i w[y_i] * nll_i / sum_i w[y_i]`` over non-ignored pixels (0 when every
        pixel is ignored, still attached to the graph).
    """
    c = logits.shape[1]
    weight = torch.ones(c, dtype=torch.float32, device=logits.device)
    weight[0] = background_weight
    valid = label != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), label, weight=weight, ignore_index=ignore_index)


def existence_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over ``(B, L)``.

    Args:
        logits: ``(B, L)`` existence logits.
        target: ``(B, L)`` 0/1 existence flags.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), target.to(torch.float32))


def soft_iou_loss(
    logits: torch.Tensor, label: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Soft IoU loss over the lane classes (SAD paper §3.4).

    Args:
        logits: ``(B, C, H, W)`` class logits; channel 0 is background.
        label: ``(B, H, W)`` class ids or ``ignore_index``.

    Returns:
        scalar ``1 - sum(p*y) / sum(p + y - p*y)`` pooled over batch, lane classes and valid pixels.
    """
    prob = logits.float().softmax(dim=1)[:, 1:]
    valid = (label != ignore_index).unsqueeze(1).to(prob.dtype)
    onehot = onehot_label(label, logits.shape[1])[:, 1:]
    prob = prob * valid
    inter = (prob * onehot).sum()
    union = (prob + onehot - prob * onehot).sum()
    return 1.0 - inter / union.clamp_min(1e-6)


class LaneLoss(nn.Module):
    """Weighted sum of the supervised terms.

    Args:
        background_weight: cross-entropy weight of the background class (0.4).
        exist_weight: coefficient of the existence BCE (0.1; 0 disables it).
        iou_weight: coefficient of the soft IoU loss (0 disables it; the SAD paper uses 0.1).

    ``forward(seg, exist, label, exist_target)`` returns a dict with ``loss_seg``,
    ``loss_exist`` and ``loss_iou`` (each already multiplied by its coefficient).
    """

    def __init__(
        self, background_weight: float = 0.4, exist_weight: float = 0.1, iou_weight: float = 0.0
    ) -> None:
        super().__init__()
        self.background_weight = background_weight
        self.exist_weight = exist_weight
        self.iou_weight = iou_weight

    def forward(
        self,
        seg: torch.Tensor,
        exist: torch.Tensor | None,
        label: torch.Tensor,
        exist_target: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        zero = seg.new_zeros((), dtype=torch.float32)
        out = {"loss_seg": weighted_cross_entropy(seg, label, self.background_weight)}
        if self.exist_weight > 0 and exist is not None and exist_target is not None:
            out["loss_exist"] = self.exist_weight * existence_bce(exist, exist_target)
        else:
            out["loss_exist"] = zero
        out["loss_iou"] = self.iou_weight * soft_iou_loss(seg, label) if self.iou_weight > 0 else zero
        return out


def onehot_label(label: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot encode a label map; ignore pixels become all-zero vectors.

    The same encoding the distillers use (:func:`lanekd.distill.base.label_to_onehot`), so the
    LGAD teacher trained here sees at distillation time exactly what it was trained on.

    Args:
        label: ``(B, H, W)`` int64 class ids or 255.

    Returns:
        ``(B, num_classes, H, W)`` tensor (input of the LGAD label-fed teacher, Liu & Zhu 2021).
    """
    return label_to_onehot(label, num_classes).to(dtype)
