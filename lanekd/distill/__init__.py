"""Distillation losses: SAD, IntRA-KD, LGAD, pixel-wise logit KD and attention transfer.

Library entry points::

    from lanekd.distill import DistillConfig, build_distillers
    distillers = build_distillers(["sad"], DistillConfig(sad_start=40000), student)
    out = student(images, return_features=True)
    loss = loss_seg + sum(d(out, batch, None, iteration, max_iter) for d in distillers)

See ``docs/distill.md`` for every option, its default and the evidence behind it.
"""

from lanekd.distill.at import ATDistiller
from lanekd.distill.attention import aggregate_attention, attention_map, spatial_softmax
from lanekd.distill.base import Distiller, label_to_onehot
from lanekd.distill.cache import TeacherCache
from lanekd.distill.config import DistillConfig
from lanekd.distill.intra_kd import IntraKDDistiller, aoi_masks, region_graphs, region_moments
from lanekd.distill.kd import KDDistiller, pixel_kd
from lanekd.distill.lgad import LGADDistiller
from lanekd.distill.registry import (
    METHODS,
    build_distillers,
    parse_methods,
    required_features,
    teacher_forward,
    teacher_input_kind,
)
from lanekd.distill.sad import SADDistiller

__all__ = [
    "METHODS",
    "ATDistiller",
    "DistillConfig",
    "Distiller",
    "IntraKDDistiller",
    "KDDistiller",
    "LGADDistiller",
    "SADDistiller",
    "TeacherCache",
    "aggregate_attention",
    "aoi_masks",
    "attention_map",
    "build_distillers",
    "label_to_onehot",
    "parse_methods",
    "pixel_kd",
    "region_graphs",
    "region_moments",
    "required_features",
    "spatial_softmax",
    "teacher_forward",
    "teacher_input_kind",
]
