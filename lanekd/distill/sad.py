"""SAD: Self Attention Distillation (Hou et al., ICCV 2019).

Each block's attention map mimics the next, deeper block's: for the chain ``b_1 .. b_M``
(``model.sad_blocks``, e.g. E2, E3, E4 of ENet-SAD or layer2..layer4 of a ResNet)

    L_sad = γ · Σ_{m<M} MSE(Ψ(A_m), Ψ(A_{m+1}))

with Ψ the spatial-softmax attention (:func:`lanekd.distill.attention.attention_map`), the deeper
map detached by default (it plays the teacher), MSE summed over pixels and averaged over the batch.
When two maps differ in size the smaller aggregated map is upsampled bilinearly (ERFNet's 1/4 vs
1/8 stages). The term is exactly zero before ``start`` (default: 2/3 of training), because adding
SAD to an untrained model hurts (SAD paper). No teacher.

The optional ``label_mimic`` variant (the released Torch code) adds one more path: the
deepest block's attention mimics the label's lane mask, turned into a spatial distribution (the
fraction of lane pixels per feature cell, area-averaged to the block's size, normalised to sum 1
per sample; images without lane pixels contribute nothing). *(inferred: the released graph's
wiring of the label target is not visible.)*
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.distill.attention import aggregate_attention, common_size, map_mse, resize_map, spatial_softmax
from lanekd.distill.base import IGNORE_INDEX, Distiller, check_features, default_blocks, feature
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import SAD
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput


def resolve_start(start: int | None, max_iter: int) -> int:
    """The SAD start iteration: ``start`` or, when ``None``, ``floor(2/3 · max_iter)``."""
    if start is not None:
        return int(start)
    return (2 * int(max_iter)) // 3


def label_attention(label: torch.Tensor, size: tuple[int, int], ignore_index: int = IGNORE_INDEX) -> tuple[
        torch.Tensor, torch.Tensor]:
    """The label's lane mask as a spatial distribution at ``size``.

    Args:
        label: ``(B, H, W)`` classes, 0 = background, ``ignore_index`` ignored.
        size: ``(h, w)`` of the attention map it is compared with.

    Returns:
        ``(maps, has_lanes)``: ``(B, h, w)`` float32 maps summing to 1 (all zero where the image has
        no lane pixel) and a ``(B,)`` bool mask of images with lane pixels.
    """
    lanes = ((label != 0) & (label != ignore_index)).float().unsqueeze(1)
    small = F.adaptive_avg_pool2d(lanes, size).squeeze(1)  # fraction of lane pixels per cell
    total = small.flatten(1).sum(dim=1)
    has = total > 0
    maps = small / total.clamp_min(1e-12).view(-1, 1, 1)
    return maps, has


class SADDistiller(Distiller):
    """Self attention distillation along ``blocks`` (see module docstring)."""

    method = SAD

    def __init__(self, blocks: tuple[str, ...], gamma: float = 0.1, start: int | None = None, p: float = 2.0,
                 detach: bool = True, label_mimic: bool = False, reduction: str = "sum-mean",
                 aggregation: str = "zscore", upsample: bool = False) -> None:
        super().__init__()
        if len(blocks) < 2:
            raise ConfigError(f"sad_blocks: SAD needs at least two blocks (a chain), got {blocks}")
        self.blocks = tuple(blocks)
        self.gamma = float(gamma)
        self.start = start
        self.p = float(p)
        self.detach = bool(detach)
        self.label_mimic = bool(label_mimic)
        self.reduction = reduction
        self.aggregation = aggregation
        self.upsample = bool(upsample)
        self.student_features = self.blocks

    def is_active(self, iteration: int, max_iter: int) -> bool:
        return iteration >= resolve_start(self.start, max_iter)

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """The unweighted SAD loss (computed whatever the iteration; ``targets`` is unused)."""
        label = batch.get("label")
        aggregated = [aggregate_attention(feature(student, b, "student"), self.p, self.aggregation)
                      for b in self.blocks]
        full = input_size(batch) if self.upsample else None
        total = aggregated[0].new_zeros(())
        trained: list[tuple[str, torch.Tensor]] = []  # the maps the gradient flows into
        for name, shallow, deep in zip(self.blocks, aggregated[:-1], aggregated[1:], strict=False):
            size = full or common_size(shallow.shape, deep.shape)
            src = spatial_softmax(resize_map(shallow, size))
            tgt = spatial_softmax(resize_map(deep, size))
            if self.detach:
                tgt = tgt.detach()
            trained.append((name, src))
            total = total + map_mse(src, tgt, self.reduction)
        if self.label_mimic:
            if label is None:
                raise ValueError("sad label_mimic needs batch['label']")
            deepest = spatial_softmax(resize_map(aggregated[-1], full or tuple(aggregated[-1].shape[-2:])))
            target, has = label_attention(label.to(deepest.device), tuple(deepest.shape[-2:]))
            # images without lane pixels (all-zero target) contribute nothing
            masked = deepest * has.view(-1, 1, 1).to(deepest.dtype)
            trained.append((self.blocks[-1], deepest))
            total = total + map_mse(masked, target, self.reduction)
        self.check_saturation(trained, self.aggregation)
        return total

    def coefficient(self) -> float:
        return self.gamma

    def extra_repr(self) -> str:
        return (f"blocks={self.blocks}, gamma={self.gamma}, start={self.start}, p={self.p}, "
                f"detach={self.detach}, label_mimic={self.label_mimic}, reduction={self.reduction!r}, "
                f"aggregation={self.aggregation!r}, upsample={self.upsample}")


def input_size(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """``(H, W)`` of the network input: the image's, else the label's (same size in lanekd data)."""
    ref = batch.get("image", batch.get("label"))
    if ref is None:
        raise ValueError("sad upsample needs batch['image'] (or batch['label']) for the input size")
    return int(ref.shape[-2]), int(ref.shape[-1])


def build_sad(cfg: DistillConfig, student: nn.Module, teacher: nn.Module | None = None) -> SADDistiller:
    """SAD distiller for ``student`` from ``cfg`` (no teacher)."""
    blocks = default_blocks(student, cfg.sad_blocks, "sad_blocks")
    check_features(student, blocks, "student", "sad_blocks")
    # DistillConfig fills these from sad_preset or the defaults on construction
    assert cfg.sad_reduction is not None and cfg.sad_aggregation is not None and cfg.sad_upsample is not None
    return SADDistiller(blocks, gamma=cfg.sad_gamma, start=cfg.sad_start, p=cfg.sad_p, detach=cfg.sad_detach,
                        label_mimic=cfg.sad_label_mimic, reduction=cfg.sad_reduction,
                        aggregation=cfg.sad_aggregation, upsample=cfg.sad_upsample)
