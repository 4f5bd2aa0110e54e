"""The :class:`Distiller` interface every distillation term implements, and shared helpers.

A distiller is a parameter-free ``nn.Module``. The engine asks it which features to request
(``student_features``, ``teacher_features``), what the teacher consumes (``teacher_input``) and
calls ``forward`` once per step; ``forward`` returns the *weighted* loss term.

Teacher-based distillers split their work in two so the frozen teacher's part can be cached
(``lanekd.distill.cache``): :meth:`Distiller.teacher_targets` turns a teacher output into small
per-sample target tensors (keys ``"<method>:<what>"``), and :meth:`Distiller.loss_from_targets`
computes the unweighted loss. ``forward`` uses cached targets when the ``teacher`` argument
already carries them in ``features`` (what ``TeacherCache.targets`` returns), otherwise it computes
them from the live teacher output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from lanekd.distill.methods import Method
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput

IGNORE_INDEX = 255


def zero_term(student: LaneOutput) -> torch.Tensor:
    """An exact ``0.`` float32 scalar connected to the student graph (for an inactive term).

    Connected so that ``term.backward()`` and DDP see the same graph whether or not the term is
    active; the gradient it sends is exactly zero.
    """
    anchor = student.seg
    if anchor.requires_grad:
        return anchor.reshape(-1)[:1].sum().float() * 0.0
    return torch.zeros((), device=anchor.device, dtype=torch.float32)


def label_to_onehot(label: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """One-hot encode a label map; ignored pixels get an all-zero vector.

    This is also the input encoding of LGAD's label-input teacher (``teacher_input="onehot"``),
    so the engine's ``train-teacher --label-input`` and the distillers agree.

    Args:
        label: ``(B, H, W)`` integer classes in ``[0, num_classes)`` or ``ignore_index``.
        num_classes: number of classes C.

    Returns:
        ``(B, C, H, W)`` float32 in {0, 1}.
    """
    if label.dim() != 3:
        raise ValueError(f"expected a (B, H, W) label map, got shape {tuple(label.shape)}")
    lab = label.long()
    valid = lab != ignore_index
    bad = valid & ((lab < 0) | (lab >= num_classes))
    if bool(bad.any()):
        raise ValueError(f"label values must lie in [0, {num_classes}) or be {ignore_index}, "
                         f"got {int(lab[bad][0])}")
    safe = torch.where(valid, lab, torch.zeros_like(lab))
    onehot = torch.zeros(lab.shape[0], num_classes, *lab.shape[1:], device=lab.device, dtype=torch.float32)
    onehot.scatter_(1, safe.unsqueeze(1), valid.unsqueeze(1).float())
    return onehot


def model_num_classes(model: nn.Module) -> int | None:
    """The class count a lane model was built with (``build_args["num_classes"]``), if known."""
    args = getattr(model, "build_args", None)
    if isinstance(args, dict) and "num_classes" in args:
        return int(args["num_classes"])
    return None


def model_in_channels(model: nn.Module) -> int | None:
    """The input channel count of a lane model (``in_channels`` attribute or build argument), if known."""
    attr = getattr(model, "in_channels", None)
    if isinstance(attr, int):
        return attr
    args = getattr(model, "build_args", None)
    if isinstance(args, dict):
        return int(args.get("in_channels", 3))
    return None


def check_features(model: nn.Module, names: tuple[str, ...], role: str, option: str) -> None:
    """Raise :class:`ConfigError` if ``model`` declares ``feature_channels`` and lacks any of ``names``."""
    channels = getattr(model, "feature_channels", None)
    if not isinstance(channels, dict):
        return
    missing = [n for n in names if n not in channels]
    if missing:
        raise ConfigError(f"{option}: the {role} has no feature(s) {', '.join(missing)} "
                          f"(available: {', '.join(sorted(channels))})")


def default_blocks(model: nn.Module, blocks: tuple[str, ...] | None, option: str) -> tuple[str, ...]:
    """``blocks`` or, when ``None``, the model's ``sad_blocks``."""
    if blocks is not None:
        return tuple(blocks)
    found = getattr(model, "sad_blocks", None)
    if not found:
        raise ConfigError(f"{option}: the student declares no sad_blocks; pass the block names explicitly")
    return tuple(found)


#: A softmax map whose largest entry exceeds this is treated as one-hot: its gradient is ~0.
SATURATED_MAX = 0.99
#: Check for saturation on the first active call and then every this many calls (each check
#: reads one number back from the device).
SATURATION_CHECK_EVERY = 100


class Distiller(nn.Module):
    """Base class of a distillation term.

    A subclass binds to its registry record, ``method = SAD`` (:class:`lanekd.distill.methods.Method`),
    which sets the class attributes below.

    Attributes:
        name: method name as given to ``--method`` (``sad``, ``intra-kd``, ...).
        loss_name: key of the term in logs (``loss_sad``, ...).
        needs_teacher: whether ``forward`` needs a teacher output (live or cached).
        teacher_input: what the teacher consumes: ``"image"`` (``batch["image"]``) or ``"onehot"``
            (:func:`label_to_onehot` of ``batch["label"]``).
        student_features / teacher_features: feature names to request with ``return_features=True``.
    """

    method: ClassVar[Method | None] = None
    name: ClassVar[str] = ""
    loss_name: ClassVar[str] = ""
    needs_teacher: ClassVar[bool] = False
    teacher_input: ClassVar[str] = "image"
    # target keys a teacher cache must keep in float32 whatever its dtype (see lanekd.distill.cache)
    float32_targets: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        m = cls.__dict__.get("method")
        if m is not None:
            cls.name, cls.loss_name = m.name, m.loss_name
            cls.needs_teacher, cls.teacher_input = m.needs_teacher, m.teacher_input

    def __init__(self) -> None:
        super().__init__()
        self.student_features: tuple[str, ...] = ()
        self.teacher_features: tuple[str, ...] = ()
        self._warnings: list[str] = []
        self._warned = False
        self._checks = 0

    # -- warnings the training loop reports (stderr and metrics.jsonl) --------------------------
    def take_warnings(self) -> list[str]:
        """Warnings raised since the last call (each kind at most once per run); clears them."""
        out, self._warnings = self._warnings, []
        return out

    def check_saturation(self, maps: Sequence[tuple[str, torch.Tensor]], aggregation: str) -> None:
        """Warn once when the spatial softmax of most samples is one-hot.

        A saturated softmax (max Ψ > :data:`SATURATED_MAX`) passes back no gradient while the loss
        between two one-hot maps at different positions stays positive, so the term would log a
        value and teach nothing (the paper's plain ``sum`` aggregation on batch-normalised networks,
        docs/distill.md).

        Args:
            maps: ``(label, Ψ)`` pairs of student maps that receive the gradient, Ψ ``(B, H, W)``.
            aggregation: the channel aggregation in use (named in the message).
        """
        if self._warned:
            return
        self._checks += 1
        if (self._checks - 1) % SATURATION_CHECK_EVERY:
            return
        with torch.no_grad():
            fracs = torch.stack([(m.detach().flatten(1).amax(dim=1) > SATURATED_MAX).float().mean()
                                 for _, m in maps]).cpu().tolist()
        worst = max(range(len(fracs)), key=fracs.__getitem__)
        if fracs[worst] <= 0.5:
            return
        self._warned = True
        flag = f"--{self.method.section.replace('_', '-')}-aggregation" if self.method else "the aggregation"
        self._warnings.append(
            f"{self.name}: the attention softmax is saturated (max value > {SATURATED_MAX} in "
            f"{fracs[worst]:.0%} of the samples at {maps[worst][0]}, aggregation {aggregation!r}): "
            f"{self.loss_name} is positive but its gradient is ~0; use {flag} zscore (docs/distill.md)")

    # -- schedule ------------------------------------------------------------------------------
    def is_active(self, iteration: int, max_iter: int) -> bool:
        """Whether the term is non-zero at ``iteration`` (0-based) of ``max_iter``.

        The engine may skip requesting features while no distiller is active.
        """
        return True

    # -- teacher targets (cacheable) -------------------------------------------------------------
    def target_keys(self) -> tuple[str, ...]:
        """Keys of the per-sample targets :meth:`teacher_targets` produces."""
        return ()

    def target_signature(self) -> dict[str, Any]:
        """The options the targets depend on (stored in a teacher cache and checked on reuse)."""
        return {}

    def teacher_targets(self, teacher: LaneOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Detached per-sample targets ``(B, ...)`` computed from a live teacher output."""
        return {}

    def resolve_targets(self, teacher: LaneOutput | None,
                        batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Targets from a cache (``teacher.features`` already holds them) or from a live teacher."""
        if teacher is None:
            raise ValueError(f"{self.name} needs a teacher output (live or cached), got None")
        keys = self.target_keys()
        if keys and all(k in teacher.features for k in keys):
            return {k: teacher.features[k].float() for k in keys}
        return self.teacher_targets(teacher, batch)

    def coefficient(self) -> float:
        """The term's weight (γ, α, ...); 0 switches the term off."""
        raise NotImplementedError

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """The unweighted loss from the student output and the teacher targets (``{}`` without teacher)."""
        raise NotImplementedError

    def forward(self, student: LaneOutput, batch: dict[str, torch.Tensor], teacher: LaneOutput | None,
                iteration: int, max_iter: int) -> torch.Tensor:
        """The weighted term: ``coefficient · loss``, an exact 0 while inactive.

        Args:
            student: student output with the ``student_features`` requested.
            batch: the training batch (``label`` ``(B, H, W)`` int64 with 255 = ignore, ``image``).
            teacher: live teacher output (with ``teacher_features``) or cached targets; ``None`` when
                ``needs_teacher`` is false.
            iteration: 0-based iteration; max_iter: total iterations (schedules).

        Returns:
            float32 scalar.
        """
        weight = self.coefficient()
        if weight == 0 or not self.is_active(iteration, max_iter):
            return zero_term(student)
        # Losses run in float32 whatever the caller's autocast: softmax maps of order 1/(H·W),
        # cubed deviations and summed region moments do not survive float16.
        with torch.autocast(device_type=student.seg.device.type, enabled=False):
            targets = self.resolve_targets(teacher, batch) if self.needs_teacher else {}
            return weight * self.loss_from_targets(student, batch, targets)

    def extra_repr(self) -> str:
        return f"student_features={self.student_features}, teacher_features={self.teacher_features}"


def feature(out: LaneOutput, name: str, role: str) -> torch.Tensor:
    """``out.features[name]`` or a clear error naming what was requested."""
    try:
        return out.features[name]
    except KeyError:
        raise KeyError(f"the {role} output has no feature {name!r} (got {sorted(out.features)}); "
                       "call the model with return_features=True") from None
