"""Teachers of a distillation run: load and check the ``--teacher`` checkpoint, run it online or
from a target cache, and build the distillers (:func:`build_distillation`, the trainer's one call).

What a method needs comes from its registry record (:mod:`lanekd.distill.methods`): the teacher
kind (none, RGB, label-input). Every check runs before the first training step and names the
checkpoint file: a missing ``--teacher``, a file that is not a lanekd checkpoint, or a teacher of
the wrong kind (an RGB teacher for LGAD, a label-input one for the RGB methods).

The checkpoint loader is passed in (the engine's ``load_checkpoint_model``), so this package does
not import the engine that imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from lanekd.distill.base import Distiller, label_to_onehot
from lanekd.distill.config import DistillConfig
from lanekd.distill.methods import NONE, check_teacher_given, get_method, teacher_kind
from lanekd.distill.registry import build_distillers
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput

#: ``(path, device) -> (model, meta)`` with ``meta["config"]`` the teacher run's config dict.
TeacherLoader = Callable[[str, torch.device], tuple[nn.Module, dict]]
#: ``(batch, channels_last) -> LaneOutput``: a live teacher output or cached targets.
TeacherSource = Callable[..., LaneOutput]


class RunOptions(Protocol):
    """The parts of a training config this module reads (``lanekd.engine.TrainConfig`` has them)."""

    methods: list[str]
    teacher: str | None
    cache_teacher: bool
    distill: Any
    channels_last: bool
    out: str
    data: str | None
    batch_size: int | None
    quiet: bool


class Barrier(Protocol):
    """The distributed context: rank 0 builds the cache while the others wait."""

    @property
    def is_main(self) -> bool: ...

    def barrier(self) -> None: ...


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` everywhere (a teacher never trains)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class OnlineTeacher:
    """A frozen teacher run on every step (eval mode, no grad).

    Args:
        model: the teacher; it is frozen here.
        input_kind: ``"image"`` (RGB) or ``"onehot"`` (the label-input teacher of LGAD).
        num_classes: class count for the one-hot input.
    """

    def __init__(self, model: nn.Module, input_kind: str, num_classes: int) -> None:
        self.model = freeze(model)
        self.input_kind = input_kind
        self.num_classes = num_classes

    @torch.no_grad()
    def __call__(self, batch: dict[str, torch.Tensor], channels_last: bool = False) -> LaneOutput:
        if self.input_kind == "image":
            x = batch["image"]
        else:
            x = label_to_onehot(batch["label"], self.num_classes)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x, return_features=True)


def is_label_input(meta: dict) -> bool:
    """Whether a checkpoint's run trained a label-input teacher (``train-teacher --label-input``)."""
    cfg = meta.get("config") or {}
    return bool(cfg.get("label_input"))


def check_teacher_kind(path: str, meta: dict, methods: Sequence[str]) -> None:
    """:class:`ConfigError` naming ``path`` when its teacher is of the wrong kind for ``methods``."""
    kind = teacher_kind(methods)
    label = is_label_input(meta)
    users = ",".join(n for n in methods if n != NONE and get_method(n).needs_teacher)
    if kind == "rgb" and label:
        raise ConfigError(f"{path}: a label-input teacher (trained with --label-input) cannot drive {users}; "
                          "give an RGB teacher")
    if kind == "label" and not label:
        raise ConfigError(f"{path}: {users} needs a label-input teacher "
                          "(`lanekd train-teacher --label-input`), this one takes images")


def load_teacher(path: str, methods: Sequence[str], device: torch.device,
                 load: TeacherLoader) -> nn.Module:
    """Load the ``--teacher`` checkpoint, check its kind for ``methods`` and freeze it.

    Raises:
        LaneKDError / ConfigError: naming ``path``: missing, not a lanekd checkpoint, wrong kind.
    """
    model, meta = load(path, device)
    check_teacher_kind(path, meta, methods)
    return freeze(model)


def build_distillation(
    cfg: RunOptions, student: nn.Module, device: torch.device, num_classes: int, dist: Barrier,
    load: TeacherLoader,
) -> tuple[list[Distiller], dict[str, TeacherSource]]:
    """The distillers of ``cfg.methods`` and the teacher sources they read, keyed by teacher input.

    Args:
        cfg: the run's options (methods, teacher, cache_teacher, distill, ...).
        student: the student model (its features and classes are checked against the teacher).
        num_classes: class count of the data (the one-hot input of a label-input teacher).
        dist: distributed context (rank 0 builds a teacher cache).
        load: checkpoint loader ``(path, device) -> (model, meta)``.

    Returns:
        ``(distillers, teachers)``: empty when ``cfg.methods`` is empty or ``["none"]``.
    """
    methods = [m for m in cfg.methods if m != NONE]
    if not methods:
        return [], {}
    check_teacher_given(methods, cfg.teacher)
    teacher = None
    if teacher_kind(methods) != "none":
        assert cfg.teacher is not None
        teacher = load_teacher(cfg.teacher, methods, device, load)
        if cfg.channels_last:
            teacher.to(memory_format=torch.channels_last)
    dcfg = cfg.distill if cfg.distill is not None else DistillConfig()
    distillers = list(build_distillers(methods, dcfg, student, teacher=teacher))
    for d in distillers:
        d.to(device)
    kinds = {d.teacher_input for d in distillers if d.needs_teacher}
    if cfg.cache_teacher and not kinds:
        raise ConfigError("--cache-teacher: none of the selected methods uses a teacher")
    teachers: dict[str, TeacherSource] = {}
    for kind in kinds:
        assert teacher is not None
        if cfg.cache_teacher:
            teachers[kind] = cached_teacher(cfg, teacher, distillers, num_classes, device, dist)
        else:
            teachers[kind] = OnlineTeacher(teacher, kind, num_classes)
    return distillers, teachers


def cached_teacher(cfg: RunOptions, teacher: nn.Module, distillers: list[Distiller], num_classes: int,
                   device: torch.device, dist: Barrier) -> TeacherSource:
    """The teacher-target cache: built once into ``OUT/teacher_cache.h5`` (rank 0), reused when it
    still matches the teacher, data and options. Valid only without augmentation (see
    :mod:`lanekd.distill.cache`), so the trainer turns augmentation off with ``--cache-teacher``."""
    from lanekd.distill.cache import TeacherCache

    path = Path(cfg.out) / "teacher_cache.h5"
    if dist.is_main:
        cache = None
        if path.is_file():
            cache = TeacherCache(path)
            try:
                cache.check(distillers, teacher=teacher, dataset=cfg.data)
            except ConfigError:
                cache.close()
                cache = None
        if cache is None:
            if not cfg.quiet:
                print(f"caching teacher targets into {path}", file=sys.stderr)
            TeacherCache.build(
                teacher,
                cfg.data,
                distillers,
                path,
                batch_size=max(1, min(cfg.batch_size or 1, 16)),
                device=device,
                num_classes=num_classes,
                quiet=cfg.quiet,
            ).close()
    dist.barrier()
    cache = TeacherCache(path)

    def source(batch: dict[str, torch.Tensor], channels_last: bool = False) -> LaneOutput:
        return cache.targets(batch["index"], device=device)

    return source
