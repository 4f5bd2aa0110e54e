"""Typed training configuration (one dataclass, no global config object).

The CLI fills a :class:`TrainConfig` from its flags; the library entry point
:func:`lanekd.engine.train` takes one. The resolved config (after defaults, synthetic-data
paths and LR scaling are filled in) is dumped beside the checkpoints as ``config.json`` and
stored inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lanekd.distill.methods import check_teacher_given, parse_methods
from lanekd.errors import ConfigError

#: The batch size the reference learning rate refers to (SAD/SCNN papers: batch 12, lr 0.01).
REFERENCE_BATCH = 12

AMP_MODES = ("bf16", "fp16")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "cosine", "onecycle")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


#: Schedule defaults of each recipe. "paper" is the SAD/SCNN schedule (SGD 0.01, Nesterov,
#: poly 0.9, batch 12); "fast" is the recipe measured to learn fastest on a 2-core CPU
#: (docs/training.md), with per-model learning rates under "lr".
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True,
              "schedule": "poly", "warmup_iters": 0, "batch_size": 12},
    "fast": {"optimizer": "sgd", "lr": {"default": 0.5}, "momentum": 0.9, "weight_decay": 1e-4,
             "nesterov": False, "schedule": "poly", "warmup_iters": 100, "batch_size": 8},
}
#: AdamW's learning rate when the recipe's optimiser is overridden to adamw without --lr.
ADAMW_LR = 2e-3


@dataclass
class TrainConfig:
    """Everything one training run needs.

    Attributes are grouped: what to train (model, methods, teacher), data, schedule and
    optimiser, hardware, and bookkeeping. ``distill`` holds a
    :class:`lanekd.distill.DistillConfig` (or ``None`` for the spec defaults).
    """

    # what to train
    model: str = "enet-sad"
    model_options: dict[str, Any] = field(default_factory=dict)
    label_input: bool = False  # LGAD teacher: input is the one-hot label map (METHODS §5.3)
    methods: list[str] = field(default_factory=list)  # distillation methods; [] = plain supervised
    teacher: str | None = None  # teacher checkpoint (intra-kd, kd, at, lgad)
    cache_teacher: bool = False
    distill: Any = None  # lanekd.distill.DistillConfig | None

    # data
    data: str | None = None  # training HDF5; None = built-in synthetic data
    val: str | None = None
    synthetic_n: int = 240  # synthetic training images when data is None
    synthetic_val_n: int = 40
    synthetic_size: tuple[int, int] = (144, 400)
    augment: bool = True
    max_val_images: int | None = None

    # schedule and optimiser: ``None`` takes the value of ``recipe`` (see RECIPES)
    recipe: str = field(default="fast", metadata=_help(
        "Training recipe that fills every schedule option left unset: fast (measured fastest to learn "
        "on a CPU, docs/training.md) or paper (SGD 0.01, Nesterov, poly 0.9, batch 12)."))
    iters: int | None = None
    epochs: int | None = None
    batch_size: int | None = field(default=None, metadata=_help(
        "Global batch size, all processes together (fast: 8, paper: 12)."))
    optimizer: str | None = field(default=None, metadata=_help("Optimiser: sgd or adamw."))
    lr: float | None = field(default=None, metadata=_help(
        "Base learning rate (fast: per model, e.g. 0.5 for ENet-SAD with SGD; paper: 0.01)."))
    scale_lr: bool = False  # lr *= batch_size / 12
    momentum: float | None = field(default=None, metadata=_help("SGD momentum (0.9)."))
    weight_decay: float | None = field(default=None, metadata=_help("Weight decay (1e-4)."))
    nesterov: bool | None = field(default=None, metadata=_help(
        "Nesterov momentum for SGD (paper: on, as the official Torch code)."))
    schedule: str | None = field(default=None, metadata=_help(
        "Learning-rate schedule per iteration: poly, cosine or onecycle."))
    poly_power: float = 0.9
    warmup_iters: int | None = field(default=None, metadata=_help(
        "Linear learning-rate warm-up iterations (fast: 100, paper: 0)."))
    warmup_factor: float = 0.1  # lr multiplier at iteration 0 of the linear warm-up

    # supervised loss (METHODS §2.3, §3.4)
    background_weight: float = 0.4
    exist_weight: float = 0.1
    iou_weight: float = 0.0  # 0.1 in the SAD paper when the IoU loss is enabled

    # hardware
    device: str = "cpu"
    workers: int = 2
    amp: str | None = None  # "bf16" | "fp16" | None
    channels_last: bool = False
    compile: bool = False
    clip_grad: float | None = None
    sync_bn: bool = False

    # bookkeeping
    out: str = "runs/lanekd"
    seed: int = 0
    resume: bool = False
    ckpt_every: int = 500
    val_every: int = 0  # 0 = validate only at the end
    log_every: int = 10
    quiet: bool = False
    tensorboard: bool = False

    def resolved(self) -> TrainConfig:
        """A copy with every schedule option left ``None`` filled from :data:`RECIPES`.

        The fast recipe's learning rate depends on the model (``RECIPES["fast"]["lr"]``) and on
        the optimiser: AdamW chosen without ``--lr`` gets :data:`ADAMW_LR`.
        """
        if self.recipe not in RECIPES:
            raise ConfigError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        rec = RECIPES[self.recipe]
        out = dataclasses.replace(self)
        for name in ("optimizer", "momentum", "weight_decay", "nesterov", "schedule", "warmup_iters",
                     "batch_size"):
            if getattr(out, name) is None:
                setattr(out, name, rec[name])
        if out.lr is None:
            if out.optimizer != rec["optimizer"]:
                out.lr = ADAMW_LR if out.optimizer == "adamw" else RECIPES["paper"]["lr"]
            elif isinstance(rec["lr"], dict):
                key = "label-input" if self.label_input and "label-input" in rec["lr"] else self.model
                out.lr = rec["lr"].get(key, rec["lr"]["default"])
            else:
                out.lr = rec["lr"]
        return out

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an inconsistent configuration (call on :meth:`resolved`)."""
        for name in ("optimizer", "lr", "momentum", "weight_decay", "nesterov", "schedule", "warmup_iters",
                     "batch_size"):
            if getattr(self, name) is None:
                raise ConfigError(f"{name} is unset: validate the resolved() config")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("--momentum and --weight-decay must be >= 0")
        if (self.iters is None) == (self.epochs is None):
            if self.iters is None:
                raise ConfigError("give either --iters or --epochs")
            raise ConfigError("give --iters or --epochs, not both")
        if self.iters is not None and self.iters <= 0:
            raise ConfigError(f"--iters must be positive, got {self.iters}")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be positive, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.amp is not None and self.amp not in AMP_MODES:
            raise ConfigError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be cpu or cuda, got {self.device!r}")
        # the method registry knows the names and which need a teacher (torch-free)
        check_teacher_given(parse_methods(self.methods) if self.methods else [], self.teacher)
        if self.label_input and self.methods:
            raise ConfigError("--label-input trains a teacher; it cannot be combined with distillation")
        if self.ckpt_every < 0 or self.val_every < 0 or self.log_every <= 0:
            raise ConfigError("--ckpt-every/--val-every must be >= 0 and --log-every > 0")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"--clip-grad must be positive, got {self.clip_grad}")
        if self.warmup_iters < 0 or not 0 < self.warmup_factor <= 1:
            raise ConfigError("--warmup-iters must be >= 0 and the warm-up factor in (0, 1]")

    def effective_lr(self) -> float:
        """The base learning rate after optional linear scaling with the global batch."""
        assert self.lr is not None and self.batch_size is not None, "call on resolved()"
        return self.lr * self.batch_size / REFERENCE_BATCH if self.scale_lr else self.lr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (nested dataclasses such as ``distill`` become dicts)."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                v = dataclasses.asdict(v)
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d
