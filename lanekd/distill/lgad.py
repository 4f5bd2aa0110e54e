"""LGAD: Label-guided Attention Distillation (Liu & Zhu, Neurocomputing 2021).

No official code exists; this is the spec's reference design, *all inferred*:

* the teacher is a lane network of the same family fed the **one-hot label map** (``in_channels`` =
  number of classes; ``teacher_input = "onehot"``, see :func:`lanekd.distill.base.label_to_onehot`),
  trained beforehand to reconstruct the label (``lanekd train-teacher --label-input``);
* the student's SAD attention maps Ψ(A^S_m) (:func:`lanekd.distill.attention.attention_map`) regress
  onto the frozen teacher's Ψ(A^T_m) at the **same** blocks (default: the student's ``sad_blocks``),
  MSE summed over pixels and averaged over the batch, weighted by γ = 0.1; no late start.

The teacher's map is computed at its own resolution (that is what a teacher cache stores); when
the two sizes differ both sides are brought to the larger one: the student's aggregated map is
upsampled before its softmax, the teacher's Ψ is upsampled and renormalised to sum 1.
"""

from __future__ import annotations

import torch
from torch import nn

from lanekd.distill.attention import (
    aggregate_attention,
    attention_map,
    common_size,
    map_mse,
    resize_map,
    spatial_softmax,
)
from lanekd.distill.base import (
    Distiller,
    check_features,
    default_blocks,
    feature,
    model_in_channels,
    model_num_classes,
)
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import LGAD
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput


def _renormalise(m: torch.Tensor) -> torch.Tensor:
    return m / m.flatten(1).sum(dim=1).clamp_min(1e-30).view(-1, 1, 1)


class LGADDistiller(Distiller):
    """Student attention mimics a label-input teacher's attention at the same blocks."""

    method = LGAD

    def __init__(self, blocks: tuple[str, ...], gamma: float = 0.1, p: float = 2.0,
                 reduction: str = "sum-mean", aggregation: str = "zscore") -> None:
        super().__init__()
        self.blocks = tuple(blocks)
        self.gamma = float(gamma)
        self.p = float(p)
        self.reduction = reduction
        self.aggregation = aggregation
        self.student_features = self.blocks
        self.teacher_features = self.blocks

    def target_keys(self) -> tuple[str, ...]:
        return tuple(f"lgad:{b}" for b in self.blocks)

    def target_signature(self) -> dict[str, object]:
        return {"blocks": list(self.blocks), "p": self.p, "aggregation": self.aggregation}

    def teacher_targets(self, teacher: LaneOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {f"lgad:{b}": attention_map(feature(teacher, b, "teacher").detach(), p=self.p,
                                               aggregation=self.aggregation).float()
                    for b in self.blocks}

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unweighted Σ_blocks MSE(Ψ(A^S_m), Ψ(A^T_m))."""
        total: torch.Tensor | None = None
        trained: list[tuple[str, torch.Tensor]] = []
        for b in self.blocks:
            g = aggregate_attention(feature(student, b, "student"), self.p, self.aggregation)
            tgt = targets[f"lgad:{b}"].to(device=g.device, dtype=g.dtype)
            size = common_size(g.shape, tgt.shape)
            src = spatial_softmax(resize_map(g, size))
            if tuple(tgt.shape[-2:]) != size:
                tgt = _renormalise(resize_map(tgt, size))
            trained.append((b, src))
            term = map_mse(src, tgt, self.reduction)
            total = term if total is None else total + term
        assert total is not None
        self.check_saturation(trained, self.aggregation)
        return total

    def coefficient(self) -> float:
        return self.gamma

    def extra_repr(self) -> str:
        return (f"blocks={self.blocks}, gamma={self.gamma}, p={self.p}, reduction={self.reduction!r}, "
                f"aggregation={self.aggregation!r}")


def build_lgad(cfg: DistillConfig, student: nn.Module, teacher: nn.Module | None = None) -> LGADDistiller:
    """LGAD distiller; checks the teacher is a label-input network with the requested blocks."""
    blocks = default_blocks(student, cfg.lgad_blocks, "lgad_blocks")
    check_features(student, blocks, "student", "lgad_blocks")
    if teacher is not None:
        check_features(teacher, blocks, "teacher", "lgad_blocks")
        classes = model_num_classes(student)
        in_ch = model_in_channels(teacher)
        if classes is not None and in_ch is not None and in_ch != classes:
            raise ConfigError(f"lgad: the teacher takes {in_ch} input channels but LGAD feeds it the one-hot "
                              f"label map ({classes} channels); train it with train-teacher --label-input")
    return LGADDistiller(blocks, gamma=cfg.lgad_gamma, p=cfg.lgad_p, reduction=cfg.lgad_reduction,
                         aggregation=cfg.lgad_aggregation)
