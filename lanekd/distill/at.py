"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017; a baseline of the IntRA-KD paper).

For each matched block, q = vec(Σ_c |A_c|^p) / ‖vec(Σ_c |A_c|^p)‖₂ (p = 2) for student and teacher,
and

    L_at = Σ_blocks mean_b ‖q_S − q_T‖₂²

(each term lies in [0, 4], independent of the map size). When sizes differ the smaller aggregated
map is upsampled bilinearly before normalising. Default weight 0.1 *(inferred)*: the original
β = 1000 on a per-pixel mean of the same squared difference, halved, is 500/(h·w), i.e. about 0.14
for a 36×100 map (1/8 of 288×800).

The teacher target is stored as the unit-normalised map at the teacher's own size: normalisation
is scale invariant and the resize linear, so resizing the stored map gives the same q_T.
"""

from __future__ import annotations

import torch
from torch import nn

from lanekd.distill.attention import aggregate_attention, common_size, resize_map
from lanekd.distill.base import Distiller, check_features, default_blocks, feature
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import AT
from lanekd.models.output import LaneOutput


def unit_map(m: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` maps scaled to unit L2 norm per sample (all-zero maps stay zero)."""
    norm = m.flatten(1).norm(dim=1).view(-1, 1, 1)
    return torch.where(norm > 0, m / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(m))


def at_distance(student_map: torch.Tensor, teacher_map: torch.Tensor) -> torch.Tensor:
    """mean_b ‖q_S − q_T‖² for aggregated ``(B, H, W)`` maps (resized to the larger size)."""
    size = common_size(student_map.shape, teacher_map.shape)
    qs = unit_map(resize_map(student_map, size))
    qt = unit_map(resize_map(teacher_map.to(qs.dtype), size))
    return (qs - qt).pow(2).flatten(1).sum(dim=1).mean()


class ATDistiller(Distiller):
    """Attention transfer between the student's and teacher's blocks of the same name."""

    method = AT

    def __init__(self, blocks: tuple[str, ...], weight: float = 0.1, p: float = 2.0) -> None:
        super().__init__()
        self.blocks = tuple(blocks)
        self.weight = float(weight)
        self.p = float(p)
        self.student_features = self.blocks
        self.teacher_features = self.blocks

    def target_keys(self) -> tuple[str, ...]:
        return tuple(f"at:{b}" for b in self.blocks)

    def target_signature(self) -> dict[str, object]:
        return {"blocks": list(self.blocks), "p": self.p}

    def teacher_targets(self, teacher: LaneOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            maps = {b: aggregate_attention(feature(teacher, b, "teacher").detach(), self.p)
                    for b in self.blocks}
        return {f"at:{b}": unit_map(m).float() for b, m in maps.items()}

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for b in self.blocks:
            g = aggregate_attention(feature(student, b, "student"), self.p)
            term = at_distance(g, targets[f"at:{b}"].to(g.device))
            total = term if total is None else total + term
        assert total is not None
        return total

    def coefficient(self) -> float:
        return self.weight

    def extra_repr(self) -> str:
        return f"blocks={self.blocks}, weight={self.weight}, p={self.p}"


def build_at(cfg: DistillConfig, student: nn.Module, teacher: nn.Module | None = None) -> ATDistiller:
    """AT distiller over ``cfg.at_blocks`` (default: the student's sad_blocks) present in both models."""
    blocks = default_blocks(student, cfg.at_blocks, "at_blocks")
    check_features(student, blocks, "student", "at_blocks")
    if teacher is not None:
        check_features(teacher, blocks, "teacher", "at_blocks")
    return ATDistiller(blocks, weight=cfg.at_weight, p=cfg.at_p)
