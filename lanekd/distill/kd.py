"""Pixel-wise logit knowledge distillation (Hinton et al. 2015; a baseline of the IntRA-KD paper).

    L_kd = T² · mean_{valid pixels} KL(softmax(t / T) || softmax(s / T))

with t, s the teacher and student class logits at each pixel; pixels labelled 255 (ignore) are
excluded. The T² factor keeps gradient magnitudes comparable across temperatures (Hinton).
Default T = 1 *(inferred)*: the usual choice of pixel-wise KD for segmentation, where the class
distribution per pixel is already soft at lane borders; T = 4 is the classification habit, one flag away.
If the teacher's logits have another spatial size they are resized bilinearly to the student's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.distill.base import IGNORE_INDEX, Distiller, model_num_classes
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import KD
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput

LOGITS_KEY = "kd:logits"


def pixel_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, label: torch.Tensor | None = None,
             temperature: float = 1.0, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """T²-scaled KL(teacher_T || student_T) averaged over valid pixels.

    Args:
        student_logits: ``(B, C, H, W)``.
        teacher_logits: ``(B, C, H', W')`` (resized to ``(H, W)`` when different).
        label: optional ``(B, H, W)`` labels; pixels equal to ``ignore_index`` are excluded.
        temperature: T > 0.

    Returns:
        Scalar; 0 when no pixel is valid.
    """
    dtype = torch.float64 if student_logits.dtype == torch.float64 else torch.float32
    s = student_logits.to(dtype)
    t = teacher_logits.to(device=s.device, dtype=dtype)
    if t.shape[1] != s.shape[1]:
        raise ValueError(f"teacher has {t.shape[1]} classes, student {s.shape[1]}")
    if t.shape[-2:] != s.shape[-2:]:
        t = F.interpolate(t, size=s.shape[-2:], mode="bilinear", align_corners=False)
    log_ps = F.log_softmax(s / temperature, dim=1)
    log_pt = F.log_softmax(t / temperature, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1)  # (B, H, W)
    if label is None:
        return kl.mean() * temperature ** 2
    if label.shape[-2:] != kl.shape[-2:]:
        raise ValueError(f"label size {tuple(label.shape[-2:])} != logits size {tuple(kl.shape[-2:])}")
    valid = (label.to(kl.device) != ignore_index).to(dtype)
    return (kl * valid).sum() / valid.sum().clamp_min(1.0) * temperature ** 2


class KDDistiller(Distiller):
    """Pixel-wise logit KD from an image-input teacher."""

    method = KD

    def __init__(self, weight: float = 1.0, temperature: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.temperature = float(temperature)

    def target_keys(self) -> tuple[str, ...]:
        return (LOGITS_KEY,)

    def teacher_targets(self, teacher: LaneOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {LOGITS_KEY: teacher.seg.detach().float()}

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        return pixel_kd(student.seg, targets[LOGITS_KEY], batch.get("label"), self.temperature)

    def coefficient(self) -> float:
        return self.weight

    def extra_repr(self) -> str:
        return f"weight={self.weight}, temperature={self.temperature}"


def build_kd(cfg: DistillConfig, student: nn.Module, teacher: nn.Module | None = None) -> KDDistiller:
    """Logit KD distiller; the teacher must predict the same classes."""
    if teacher is not None:
        ns, nt = model_num_classes(student), model_num_classes(teacher)
        if ns is not None and nt is not None and ns != nt:
            raise ConfigError(f"kd: teacher predicts {nt} classes but the student {ns}")
    return KDDistiller(weight=cfg.kd_weight, temperature=cfg.kd_temperature)
