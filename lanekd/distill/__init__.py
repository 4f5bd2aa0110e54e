"""Distillation losses: SAD, IntRA-KD, LGAD, pixel-wise logit KD and attention transfer.

Library entry points::

    from lanekd.distill import DistillConfig, build_distillers
    distillers = build_distillers(["sad"], DistillConfig(sad_start=40000), student)
    out = student(images, return_features=True)
    loss = loss_seg + sum(d(out, batch, None, iteration, max_iter) for d in distillers)

The names below are imported on first access, so ``lanekd.distill.config`` and the method
registry ``lanekd.distill.methods`` load without torch (the CLI builds its flags from them).
``METHODS`` is read from the registry on each access. See ``docs/distill.md`` for every option,
its default and the evidence behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lanekd.utils.lazy import lazy_export

_EXPORTS = {
    "ATDistiller": "at",
    "aggregate_attention": "attention",
    "attention_map": "attention",
    "spatial_softmax": "attention",
    "Distiller": "base",
    "label_to_onehot": "base",
    "TeacherCache": "cache",
    "DistillConfig": "config",
    "IntraKDDistiller": "intra_kd",
    "aoi_masks": "intra_kd",
    "region_graphs": "intra_kd",
    "region_moments": "intra_kd",
    "KDDistiller": "kd",
    "pixel_kd": "kd",
    "LGADDistiller": "lgad",
    "Method": "methods",
    "method_names": "methods",
    "parse_methods": "methods",
    "register": "methods",
    "build_distillers": "registry",
    "required_features": "registry",
    "teacher_forward": "registry",
    "teacher_input_kind": "registry",
    "SADDistiller": "sad",
    "build_distillation": "teachers",
}

__all__ = [
    "METHODS",
    "ATDistiller",
    "DistillConfig",
    "Distiller",
    "IntraKDDistiller",
    "KDDistiller",
    "LGADDistiller",
    "Method",
    "SADDistiller",
    "TeacherCache",
    "aggregate_attention",
    "aoi_masks",
    "attention_map",
    "build_distillation",
    "build_distillers",
    "label_to_onehot",
    "method_names",
    "parse_methods",
    "pixel_kd",
    "region_graphs",
    "region_moments",
    "register",
    "required_features",
    "spatial_softmax",
    "teacher_forward",
    "teacher_input_kind",
]

if TYPE_CHECKING:  # what static analysis sees; at run time __getattr__ imports on demand
    from lanekd.distill.at import ATDistiller
    from lanekd.distill.attention import aggregate_attention, attention_map, spatial_softmax
    from lanekd.distill.base import Distiller, label_to_onehot
    from lanekd.distill.cache import TeacherCache
    from lanekd.distill.config import DistillConfig
    from lanekd.distill.intra_kd import IntraKDDistiller, aoi_masks, region_graphs, region_moments
    from lanekd.distill.kd import KDDistiller, pixel_kd
    from lanekd.distill.lgad import LGADDistiller
    from lanekd.distill.methods import Method, method_names, parse_methods, register
    from lanekd.distill.registry import (
        build_distillers,
        required_features,
        teacher_forward,
        teacher_input_kind,
    )
    from lanekd.distill.sad import SADDistiller
    from lanekd.distill.teachers import build_distillation

    METHODS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    if name == "METHODS":
        from lanekd.distill.methods import method_names

        return method_names()
    return lazy_export("lanekd.distill", _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
