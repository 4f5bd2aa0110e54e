"""Building the distillation terms: ``build_distillers(["sad,kd"], cfg, student, teacher)`` and the
teacher helpers.

The list of methods is :mod:`lanekd.distill.methods` (torch-free); this module turns names into
:class:`Distiller` modules with each method's builder. The engine uses:

* :func:`build_distillers` to turn ``--method`` into a list of :class:`Distiller` modules;
* :func:`required_features` for the feature names to request from student and teacher;
* :func:`teacher_forward` to run the frozen teacher on a batch with the input it expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lanekd.distill.base import Distiller, label_to_onehot, model_num_classes
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import get_method, parse_methods, teacher_kind
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput

__all__ = ["build_distillers", "parse_methods", "required_features", "teacher_forward", "teacher_input_kind",
           "teacher_inputs"]


def build_distillers(methods: str | Sequence[str], cfg: DistillConfig | None, student: nn.Module,
                     teacher: nn.Module | None = None) -> list[Distiller]:
    """Build the distillation terms for ``methods``.

    Args:
        methods: names from :func:`lanekd.distill.methods.method_names`; each item may be a comma list.
        cfg: coefficients and schedules (``None``: the defaults).
        student: the student lane model (its ``sad_blocks`` and ``feature_channels`` set defaults and
            are checked).
        teacher: the frozen teacher, required by every method whose record has a teacher kind.

    Raises:
        ConfigError: unknown or repeated method, missing teacher, missing features, or methods that
            need different teacher inputs (one teacher cannot take both images and label maps).
    """
    cfg = cfg if cfg is not None else DistillConfig()
    names = parse_methods(methods)
    teacher_kind(names)  # one teacher cannot be fed both images and label maps
    if teacher is None:
        needing = [n for n in names if get_method(n).needs_teacher]
        if needing:
            raise ConfigError(f"method {needing[0]!r} needs a teacher (--teacher CKPT)")
    return [get_method(n).build(cfg, student, teacher) for n in names]


def required_features(distillers: Sequence[Distiller]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(student_names, teacher_names)``: the union of the features the distillers need, in order."""
    student: dict[str, None] = {}
    teacher: dict[str, None] = {}
    for d in distillers:
        student.update(dict.fromkeys(d.student_features))
        teacher.update(dict.fromkeys(d.teacher_features))
    return tuple(student), tuple(teacher)


def teacher_input_kind(distillers: Sequence[Distiller]) -> str | None:
    """``"image"``, ``"onehot"`` or ``None`` (no teacher needed)."""
    kinds = {d.teacher_input for d in distillers if d.needs_teacher}
    return kinds.pop() if kinds else None


def teacher_inputs(batch: dict[str, torch.Tensor], kind: str, num_classes: int,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """The teacher's input for ``batch``: the image, or the one-hot label map (LGAD's teacher)."""
    if kind == "image":
        x = batch["image"]
    elif kind == "onehot":
        x = label_to_onehot(batch["label"], num_classes)
    else:
        raise ValueError(f"unknown teacher input {kind!r}")
    return x.to(device) if device is not None else x


@torch.no_grad()
def teacher_forward(teacher: nn.Module, batch: dict[str, torch.Tensor], distillers: Sequence[Distiller],
                    num_classes: int | None = None,
                    device: torch.device | str | None = None) -> LaneOutput | None:
    """Run the frozen teacher (eval mode, no grad) on ``batch`` as the distillers need; ``None`` if none does.

    ``num_classes`` (for the one-hot input) defaults to the teacher's ``build_args["in_channels"]``
    or ``num_classes``.
    """
    kind = teacher_input_kind(distillers)
    if kind is None:
        return None
    if kind == "onehot" and num_classes is None:
        args = getattr(teacher, "build_args", {}) or {}
        num_classes = int(args.get("in_channels", model_num_classes(teacher) or 0)) or None
        if num_classes is None:
            raise ValueError("teacher_forward: pass num_classes for a one-hot teacher input")
    if teacher.training:
        teacher.eval()
    x = teacher_inputs(batch, kind, num_classes or 0, device)
    _, names = required_features(distillers)
    return teacher(x, return_features=bool(names))
