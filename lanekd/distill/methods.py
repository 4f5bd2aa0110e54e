"""The method registry: the one list of distillation methods (importable without torch).

Each method is one :class:`Method` record: its ``--method`` name, the key of its term in
``metrics.jsonl``, the teacher it needs and the :class:`~lanekd.distill.config.DistillConfig`
section (field prefix) holding its options, plus the builder that turns a config into its
:class:`~lanekd.distill.base.Distiller`. The Distiller class binds to its record
(``method = SAD``), which gives it ``name``, ``loss_name``, ``needs_teacher`` and
``teacher_input``. Everything else asks this module: ``TrainConfig.validate`` and the CLI for
the names, the metrics logger for the loss names, :mod:`lanekd.distill.teachers` for the teacher
kinds. Adding a method is one record here (or one :func:`register` call) plus its module.

The module imports no torch, so option parsing and ``lanekd --help`` stay fast; builders given as
``"module:function"`` strings are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lanekd.errors import ConfigError

#: Teacher kinds: no teacher, an RGB (image-input) network, a label-input network (LGAD's,
#: trained with ``train-teacher --label-input``).
TEACHER_KINDS = ("none", "rgb", "label")
#: What each teacher kind consumes (``Distiller.teacher_input``).
TEACHER_INPUTS = {"none": "image", "rgb": "image", "label": "onehot"}


@dataclass(frozen=True)
class Method:
    """One distillation method.

    Attributes:
        name: the ``--method`` value.
        loss_name: key of the weighted term in the loss dict and ``metrics.jsonl``.
        teacher: ``"none"``, ``"rgb"`` or ``"label"`` (see :data:`TEACHER_KINDS`).
        section: the ``DistillConfig`` field prefix of its options (``"intra_kd"`` ->
            ``intra_kd_alpha``, ...; the CLI groups its flags by it).
        builder: ``(cfg, student, teacher) -> Distiller``, or its ``"module:function"`` path.
        summary: one line for ``--method`` help.
    """

    name: str
    loss_name: str
    teacher: str
    section: str
    builder: str | Callable[..., Any]
    summary: str = ""

    def __post_init__(self) -> None:
        if self.teacher not in TEACHER_KINDS:
            raise ValueError(f"method {self.name!r}: teacher must be one of {', '.join(TEACHER_KINDS)}")

    @property
    def needs_teacher(self) -> bool:
        return self.teacher != "none"

    @property
    def teacher_input(self) -> str:
        return TEACHER_INPUTS[self.teacher]

    def build(self, cfg: Any, student: Any, teacher: Any = None) -> Any:
        """The method's Distiller for ``student`` (and ``teacher``) from a ``DistillConfig``."""
        fn = self.builder
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        return fn(cfg, student, teacher)


SAD = Method("sad", "loss_sad", "none", "sad", "lanekd.distill.sad:build_sad",
             "self attention distillation (no teacher)")
INTRA_KD = Method("intra-kd", "loss_intra_kd", "rgb", "intra_kd", "lanekd.distill.intra_kd:build_intra_kd",
                  "inter-region affinity KD (RGB teacher)")
LGAD = Method("lgad", "loss_lgad", "label", "lgad", "lanekd.distill.lgad:build_lgad",
              "label-guided attention distillation (label-input teacher)")
KD = Method("kd", "loss_kd", "rgb", "kd", "lanekd.distill.kd:build_kd", "pixel-wise logit KD (RGB teacher)")
AT = Method("at", "loss_at", "rgb", "at", "lanekd.distill.at:build_at", "attention transfer (RGB teacher)")

# Registration order is the order of logs and help.
_REGISTRY: dict[str, Method] = {m.name: m for m in (SAD, INTRA_KD, LGAD, KD, AT)}
NONE = "none"


def register(method: Method) -> Method:
    """Add a method (e.g. from a plug-in); its name and loss name must be new."""
    if method.name == NONE or method.name in _REGISTRY:
        raise ValueError(f"distillation method {method.name!r} is already registered")
    if method.loss_name in loss_names():
        raise ValueError(f"loss name {method.loss_name!r} is already used")
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method added with :func:`register`."""
    _REGISTRY.pop(name, None)


def methods() -> tuple[Method, ...]:
    """Every registered method, in registration order."""
    return tuple(_REGISTRY.values())


def get_method(name: str) -> Method:
    """The record of ``name``; :class:`ConfigError` listing the valid names when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(method_names())
        raise ConfigError(f"unknown distillation method {name!r} (valid: {valid})") from None


def method_names() -> tuple[str, ...]:
    """``("none", <every registered name>)``: what ``--method`` accepts."""
    return (NONE, *_REGISTRY)


def loss_names() -> tuple[str, ...]:
    """The loss names of every registered method, in registration order."""
    return tuple(m.loss_name for m in _REGISTRY.values())


def method_help() -> str:
    """One-line ``--method`` help built from the registry."""
    items = "; ".join(f"{m.name}: {m.summary}" if m.summary else m.name for m in _REGISTRY.values())
    return f"Distillation method(s), a comma list adds terms (e.g. sad,kd): {items}; none: supervised only."


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """Split ``"sad,kd"`` / ``["sad", "kd"]`` into validated method names (``"none"`` alone -> ``[]``)."""
    items = [methods] if isinstance(methods, str) else list(methods)
    names = [part.strip().lower() for item in items for part in str(item).split(",") if part.strip()]
    valid = ", ".join(method_names())
    if not names:
        raise ConfigError(f"no distillation method given (valid: {valid})")
    for n in names:
        if n != NONE:
            get_method(n)
    if NONE in names:
        if len(names) > 1:
            raise ConfigError("method 'none' cannot be combined with other methods")
        return []
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"distillation method {dup[0]!r} given more than once")
    return names


def teacher_kind(names: Sequence[str]) -> str:
    """The one teacher kind ``names`` need: ``"none"``, ``"rgb"`` or ``"label"``.

    Raises:
        ConfigError: the methods need differently fed teachers (one teacher cannot take both).
    """
    used = [get_method(n) for n in names if n != NONE]
    kinds = {m.teacher for m in used} - {"none"}
    if len(kinds) > 1:
        by = ", ".join(f"{m.name}: {m.teacher}" for m in used if m.needs_teacher)
        raise ConfigError(f"these methods need differently fed teachers ({by}); combine only methods that "
                          "share one teacher")
    return kinds.pop() if kinds else "none"


def teacher_methods(names: Sequence[str]) -> list[str]:
    """The names in ``names`` whose method needs a teacher, in order."""
    return [n for n in names if n != NONE and get_method(n).needs_teacher]


def check_teacher_given(names: Sequence[str], teacher: str | None) -> None:
    """:class:`ConfigError` when ``names`` need a teacher and none is given (checked before any work)."""
    kind = teacher_kind(names)
    if kind != "none" and teacher is None:
        needing = ",".join(teacher_methods(names))
        how = "`lanekd train-teacher --label-input`" if kind == "label" else "`lanekd train-teacher`"
        raise ConfigError(f"--method {needing} needs --teacher CKPT (train one with {how})")
