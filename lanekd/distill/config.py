"""Typed configuration of every distillation term (coefficients, schedules, variants).

Each field carries its one-line help text in ``dataclasses.field(metadata={"help": ...})`` so the
CLI can turn fields into flags mechanically (``sad_gamma`` -> ``--sad-gamma``). Defaults follow
the papers and their official code; choices the papers leave open are fields too and are
documented, with their evidence, in ``docs/distill.md``.

Block lists are tuples of feature names (``block1`` .. ``block4``, see
``lanekd.models.output``); ``None`` means "the student's ``sad_blocks``". :meth:`DistillConfig.from_dict`
also accepts comma-separated strings for them (what a CLI flag delivers).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from lanekd.errors import ConfigError

SAD_REDUCTIONS = ("sum-mean", "mean")
INTRA_KD_NORMALISERS = ("aoi", "hw")
# same as lanekd.distill.attention.AGGREGATIONS (no torch import here)
AGGREGATIONS = ("sum", "mean", "zscore")
#: SAD options each preset sets, and the values of those options without a preset.
SAD_PRESET_VALUES: dict[str, dict[str, Any]] = {
    "paper": {"sad_aggregation": "sum", "sad_upsample": True, "sad_reduction": "mean"},
}
SAD_PRESETS = tuple(SAD_PRESET_VALUES)
SAD_UNSET_DEFAULTS: dict[str, Any] = {"sad_aggregation": "zscore", "sad_upsample": False,
                                      "sad_reduction": "sum-mean"}


def _help(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata for the CLI's generated flag: help text and optionally ``choices``."""
    return {"help": text, **extra}


@dataclass
class DistillConfig:
    """Coefficients and schedules of SAD, IntRA-KD, LGAD, logit KD and attention transfer.

    Only the fields of the selected methods are used; the others are ignored.
    """

    # --- SAD (Hou et al., ICCV 2019) ---
    sad_gamma: float = field(default=0.1, metadata=_help(
        "SAD loss weight gamma (paper: 0.1)."))
    sad_start: int | None = field(default=None, metadata=_help(
        "Iteration at which SAD switches on (default: 2/3 of training, e.g. 40K of 60K on CULane)."))
    sad_blocks: tuple[str, ...] | None = field(default=None, metadata=_help(
        "Feature blocks of the SAD chain, shallow to deep, comma list (default: the student's sad_blocks)."))
    sad_p: float = field(default=2.0, metadata=_help(
        "Exponent p of the attention generator sum_c |A|^p (paper: 2)."))
    sad_detach: bool = field(default=True, metadata=_help(
        "Stop the gradient through the deeper (target) attention map."))
    sad_label_mimic: bool = field(default=False, metadata=_help(
        "Released-code variant: the deepest block's attention also mimics the label's lane mask."))
    sad_reduction: str | None = field(default=None, metadata=_help(
        "SAD MSE reduction: sum-mean (default; sum over pixels, mean over batch) or mean (over all "
        "elements, the official code's and the paper preset's).",
        choices=SAD_REDUCTIONS))
    # Default "zscore": the paper's plain sum makes the spatial softmax one-hot on BatchNorm features
    # (SAD loss and gradient exactly 0 on ENet-SAD), and so does sum/C once training has grown the
    # activations (measured in docs/distill.md). "sum" keeps the literal formula.
    # None (unset) takes the preset's value, else the default (as TrainConfig's recipe options).
    sad_aggregation: str | None = field(default=None, metadata=_help(
        "Channel aggregation of the attention map before the spatial softmax: zscore (default; "
        "standardised per sample, never one-hot), mean (sum/C) or sum (the paper's literal formula).",
        choices=AGGREGATIONS))
    sad_upsample: bool | None = field(default=None, metadata=_help(
        "Upsample each aggregated attention map bilinearly to the input image size before the softmax "
        "(the official code's x8 for 1/8-size maps; default off, on with the paper preset)."))
    sad_preset: str | None = field(default=None, metadata=_help(
        "paper: the official code's SAD, i.e. sum aggregation, upsampling to the input size and "
        "element-mean MSE (an option given explicitly must agree with it).",
        choices=SAD_PRESETS))

    # --- IntRA-KD (Hou et al., CVPR 2020) ---
    intra_kd_alpha: float = field(default=1.0, metadata=_help(
        "IntRA-KD loss weight alpha (paper value unknown; tune so alpha*L is about 0.1x the CE loss)."))
    intra_kd_kernel: int = field(default=11, metadata=_help(
        "Side of the box filter that smooths each class mask into its AOI (odd, paper example: 11)."))
    intra_kd_normaliser: str = field(default="aoi", metadata=_help(
        "Moment normaliser Z_k: aoi (non-zero AOI pixels, paper) or hw (h*w, author's example).",
        choices=INTRA_KD_NORMALISERS))
    intra_kd_student_feature: str = field(default="encoder", metadata=_help(
        "Student feature map whose region moments are distilled."))
    intra_kd_teacher_feature: str = field(default="encoder", metadata=_help(
        "Teacher feature map whose region moments are the target."))
    intra_kd_eps: float = field(default=1e-10, metadata=_help(
        "Epsilon in the skewness standardisation sigma = sqrt(var + eps)."))

    # --- LGAD (Liu & Zhu, Neurocomputing 2021) ---
    lgad_gamma: float = field(default=0.1, metadata=_help(
        "LGAD loss weight (inferred by analogy to SAD: 0.1)."))
    lgad_blocks: tuple[str, ...] | None = field(default=None, metadata=_help(
        "Blocks whose attention mimics the label-input teacher's same block, comma list "
        "(default: the student's sad_blocks)."))
    lgad_p: float = field(default=2.0, metadata=_help(
        "Exponent p of the LGAD attention generator (SAD's: 2)."))
    lgad_reduction: str = field(default="sum-mean", metadata=_help(
        "LGAD MSE reduction: sum-mean or mean (as --sad-reduction).", choices=SAD_REDUCTIONS))
    lgad_aggregation: str = field(default="zscore", metadata=_help(
        "Channel aggregation of the LGAD attention maps: zscore (default), mean or sum "
        "(as --sad-aggregation).", choices=AGGREGATIONS))

    # --- Logit KD (Hinton et al. 2015) ---
    kd_weight: float = field(default=1.0, metadata=_help(
        "Pixel-wise logit KD loss weight."))
    kd_temperature: float = field(default=1.0, metadata=_help(
        "KD softmax temperature T (the loss is scaled by T^2)."))

    # --- Attention transfer (Zagoruyko & Komodakis, ICLR 2017) ---
    at_weight: float = field(default=0.1, metadata=_help(
        "Attention-transfer loss weight (per block: squared L2 of unit attention vectors, batch mean)."))
    at_p: float = field(default=2.0, metadata=_help(
        "Exponent p of the AT attention map sum_c |A|^p."))
    at_blocks: tuple[str, ...] | None = field(default=None, metadata=_help(
        "Blocks matched between student and teacher, comma list (default: the student's sad_blocks)."))

    def __post_init__(self) -> None:
        self._apply_sad_preset()
        self.validate()

    def _apply_sad_preset(self) -> None:
        """Fill the unset (``None``) SAD options from ``sad_preset``, then from the defaults."""
        if self.sad_preset is not None:
            if self.sad_preset not in SAD_PRESET_VALUES:
                raise ConfigError(f"sad_preset must be one of {', '.join(SAD_PRESETS)}, "
                                  f"got {self.sad_preset!r}")
            for name, value in SAD_PRESET_VALUES[self.sad_preset].items():
                given = getattr(self, name)
                if given is not None and given != value:
                    raise ConfigError(f"sad_preset {self.sad_preset} sets {name} = {value!r}, "
                                      f"but {name} = {given!r} was given; drop one of them")
                setattr(self, name, value)
        for name, value in SAD_UNSET_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an out-of-range value (called on construction)."""
        for name in ("sad_gamma", "intra_kd_alpha", "lgad_gamma", "kd_weight", "at_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("sad_p", "lgad_p", "at_p", "kd_temperature", "intra_kd_eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        if self.sad_start is not None and self.sad_start < 0:
            raise ConfigError(f"sad_start must be >= 0, got {self.sad_start}")
        if self.intra_kd_kernel < 1 or self.intra_kd_kernel % 2 == 0:
            raise ConfigError(f"intra_kd_kernel must be a positive odd integer, got {self.intra_kd_kernel}")
        for name in ("sad_reduction", "lgad_reduction"):
            if getattr(self, name) not in SAD_REDUCTIONS:
                raise ConfigError(f"{name} must be one of {', '.join(SAD_REDUCTIONS)}, "
                                  f"got {getattr(self, name)!r}")
        for name in ("sad_aggregation", "lgad_aggregation"):
            if getattr(self, name) not in AGGREGATIONS:
                raise ConfigError(f"{name} must be one of {', '.join(AGGREGATIONS)}, "
                                  f"got {getattr(self, name)!r}")
        if self.intra_kd_normaliser not in INTRA_KD_NORMALISERS:
            raise ConfigError(f"intra_kd_normaliser must be one of {', '.join(INTRA_KD_NORMALISERS)}, "
                              f"got {self.intra_kd_normaliser!r}")
        for name in ("sad_blocks", "lgad_blocks", "at_blocks"):
            blocks = getattr(self, name)
            if blocks is not None and (len(blocks) == 0 or any(not b for b in blocks)):
                raise ConfigError(f"{name} must list at least one non-empty block name, got {blocks!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DistillConfig:
        """Build from a (possibly partial) dict, e.g. parsed flags or a dumped config.

        Block lists may be given as comma-separated strings or sequences; unknown keys raise
        :class:`ConfigError` so a typo in a config file is not silently ignored.
        """
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown distillation option(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            kwargs[key] = _coerce(key, value, hints[key])
        return cls(**kwargs)


def parse_blocks(value: str | typing.Sequence[str] | None) -> tuple[str, ...] | None:
    """``"block2, block3"`` or ``["block2", "block3"]`` -> ``("block2", "block3")``; ``None``/"" -> None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(v).strip() for v in items if str(v).strip())
    return names or None


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Convert a flag/JSON value to the field's type, or raise :class:`ConfigError`."""
    args = typing.get_args(hint)
    optional = type(None) in args and (typing.get_origin(hint) in (typing.Union, types.UnionType))
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be empty")
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    try:
        if typing.get_origin(base) is tuple:
            return parse_blocks(value)
        if base is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return low in ("1", "true", "yes", "on")
            return bool(value)
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if base is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: cannot interpret {value!r} as {getattr(base, '__name__', base)}") from None
