"""Typed training configuration (one dataclass, no global config object).

The CLI fills a :class:`TrainConfig` from its flags; the library entry point
:func:`lanekd.engine.train` takes one. The resolved config (after defaults, synthetic-data
paths and LR scaling are filled in) is dumped beside the checkpoints as ``config.json`` and
stored inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanekd.distill.methods import check_teacher_given, parse_methods, teacher_methods
from lanekd.errors import ConfigError

#: The batch size the reference learning rate refers to (SAD/SCNN papers: batch 12, lr 0.01).
REFERENCE_BATCH = 12

AMP_MODES = ("bf16", "fp16")
#: What ``--amp`` accepts: an autocast mode or ``off`` (unset: chosen for the hardware, see resolved()).
AMP_CHOICES = (*AMP_MODES, "off")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "cosine", "onecycle")


def _meta(panel: str, text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata the CLI turns into a flag: help text, help panel and optionally ``choices``
    (allowed values), ``metavar`` and ``min``."""
    return {"help": text, "panel": panel, **extra}


#: Schedule defaults of each recipe. "paper" is the SAD/SCNN schedule (SGD 0.01, Nesterov,
#: poly 0.9, batch 12); "fast" is the recipe measured to learn fastest on a 2-core CPU
#: (docs/training.md), with per-model learning rates under "lr".
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True,
              "schedule": "poly", "warmup_iters": 0, "batch_size": 12, "progressive_width": 0,
              "exist_lr_scale": 1.0},
    "fast": {"optimizer": "sgd", "lr": {"default": 0.5, "resnet18": 0.2}, "momentum": 0.9,
             "weight_decay": 1e-4, "nesterov": False, "schedule": "poly", "warmup_iters": 100,
             "batch_size": 8, "progressive_width": 256, "exist_lr_scale": 0.1},
}
#: File in a run's output folder that holds the run's resolved :class:`TrainConfig` (as JSON).
RUN_CONFIG_FILE = "config.json"


def read_run_config(run: str | Path) -> dict[str, Any]:
    """The resolved configuration a run in folder ``run`` trained with; ``{}`` when the run has
    not written one (or it is unreadable)."""
    try:
        return json.loads((Path(run) / RUN_CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}


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
    model: str = field(default="enet-sad", metadata=_meta(
        "Model", "Architecture (see `lanekd models`)."))
    model_options: dict[str, Any] = field(default_factory=dict, metadata=_meta(
        "Model", "Extra model option KEY=VALUE (repeatable; see lanekd.models.model_options).",
        metavar="KEY=VALUE"))
    init: str | None = field(default=None, metadata=_meta(
        "Model", "Start from the weights of this checkpoint or zoo entry (`lanekd zoo list`); tensors "
        "whose shape differs (e.g. the existence head at another input size) start fresh.",
        metavar="CKPT|NAME"))
    label_input: bool = field(default=False, metadata=_meta(
        "Model", "Train LGAD's teacher: fed the one-hot label map, it reconstructs it (docs/distill.md)."))
    methods: list[str] = field(default_factory=list, metadata=_meta(
        "Distillation", "Distillation methods; empty = plain supervised training."))
    teacher: str | None = field(default=None, metadata=_meta(
        "Distillation", "Frozen teacher checkpoint: an RGB teacher for intra-kd, kd and at, a "
        "`train-teacher --label-input` one for lgad.", metavar="CKPT"))
    cache_teacher: bool = field(default=False, metadata=_meta(
        "Distillation", "Compute the teacher's targets once into OUT/teacher_cache.h5 "
        "(implies --no-augment)."))
    distill: Any = None  # lanekd.distill.DistillConfig | None; its fields are flags of their own

    # data
    data: str | None = field(default=None, metadata=_meta(
        "Data", "Training FILE.h5 from `lanekd prepare` (default: the built-in synthetic set, "
        "prepared once into the cache).", metavar="FILE.h5"))
    val: str | None = field(default=None, metadata=_meta(
        "Data", "Validation FILE.h5, scored with the benchmark metric; best.pt is then the best-scoring "
        "checkpoint (without it: the final weights).", metavar="FILE.h5"))
    synthetic_n: int = field(default=240, metadata=_meta(
        "Data", "Synthetic training images when --data is absent.", min=1))
    synthetic_val_n: int = field(default=40, metadata=_meta(
        "Data", "Synthetic validation images when --data is absent.", min=1))
    synthetic_size: tuple[int, int] = field(default=(144, 400), metadata=_meta(
        "Data", "Image size HxW of the synthetic data.", metavar="HxW"))
    augment: bool = field(default=True, metadata=_meta(
        "Data", "Random augmentation of the training images."))
    max_val_images: int | None = field(default=None, metadata=_meta(
        "Data", "Validate on at most this many images.", min=1))
    seed: int = field(default=0, metadata=_meta(
        "Data", "Seed of initialisation, data order and augmentation."))

    # schedule and optimiser: ``None`` takes the value of ``recipe`` (see RECIPES)
    recipe: str = field(default="fast", metadata=_meta(
        "Schedule", "Fills every schedule option left unset: fast (measured fastest to learn on a "
        "CPU, docs/training.md) or paper (SGD 0.01, Nesterov, poly 0.9, batch 12).",
        choices=tuple(RECIPES)))
    iters: int | None = field(default=None, metadata=_meta(
        "Schedule", "Training iterations (default 200 on the synthetic data).", min=1))
    epochs: int | None = field(default=None, metadata=_meta(
        "Schedule", "Training epochs (instead of --iters).", min=1))
    batch_size: int | None = field(default=None, metadata=_meta(
        "Schedule", "Global batch size, all processes together (fast: 8, paper: 12).", min=1))
    optimizer: str | None = field(default=None, metadata=_meta(
        "Schedule", "Optimiser (default: the recipe's, sgd).", choices=OPTIMIZERS))
    lr: float | None = field(default=None, metadata=_meta(
        "Schedule", "Base learning rate (fast: per model, e.g. 0.5 for ENet-SAD with SGD; "
        "paper: 0.01)."))
    scale_lr: bool = field(default=False, metadata=_meta(
        "Schedule", "Scale --lr linearly with the global batch (lr*batch/12)."))
    momentum: float | None = field(default=None, metadata=_meta(
        "Schedule", "SGD momentum / AdamW beta1 (default 0.9).", min=0.0))
    weight_decay: float | None = field(default=None, metadata=_meta(
        "Schedule", "Weight decay (default 1e-4).", min=0.0))
    nesterov: bool | None = field(default=None, metadata=_meta(
        "Schedule", "Nesterov momentum for SGD (paper: on, as the official Torch code)."))
    schedule: str | None = field(default=None, metadata=_meta(
        "Schedule", "Learning-rate schedule per iteration (default: the recipe's, poly).",
        choices=SCHEDULES))
    poly_power: float = field(default=0.9, metadata=_meta(
        "Schedule", "Exponent of the poly schedule lr*(1-iter/max_iter)^power."))
    warmup_iters: int | None = field(default=None, metadata=_meta(
        "Schedule", "Linear learning-rate warm-up iterations (fast: 100, paper: 0).", min=0))
    warmup_factor: float = field(default=0.1, metadata=_meta(
        "Schedule", "Learning-rate multiplier at iteration 0 of the linear warm-up."))
    progressive_width: int | None = field(default=None, metadata=_meta(
        "Schedule", "Progressive resizing: train the first --progressive-fraction of the iterations "
        "on inputs scaled down to this width (height alike; 144x400 -> 96x256 at 256; images bilinear, "
        "labels nearest), then at the data's size; 0 = off. Validation always runs at the data's "
        "size. fast: 256 when training from scratch without a teacher, else off; paper: off.",
        metavar="W", min=0))
    progressive_fraction: float = field(default=0.75, metadata=_meta(
        "Schedule", "Share of the iterations trained at --progressive-width."))
    exist_lr_scale: float | None = field(default=None, metadata=_meta(
        "Schedule", "Learning-rate factor of the existence branch (default: the recipe's; fast 0.1, "
        "paper 1).", metavar="F"))

    # supervised loss (SAD paper, Sec. 3.4; docs/training.md)
    background_weight: float = field(default=0.4, metadata=_meta(
        "Loss", "Cross-entropy weight of the background class (lanes: 1)."))
    exist_weight: float = field(default=0.1, metadata=_meta(
        "Loss", "Weight of the lane-existence BCE loss."))
    iou_weight: float = field(default=0.0, metadata=_meta(
        "Loss", "Weight of the soft IoU loss (--iou-loss sets the SAD paper's 0.1)."))

    # hardware
    device: str = field(default="cpu", metadata=_meta(
        "Hardware", "cpu or cuda (DDP: one GPU per torchrun process)."))
    workers: int = field(default=2, metadata=_meta(
        "Hardware", "DataLoader worker processes.", min=0))
    amp: str | None = field(default=None, metadata=_meta(
        "Hardware", "Mixed precision: bf16, fp16 with gradient scaling, or off (default: bf16 on a "
        "CPU with AMX-BF16, where it is faster at the same F1; off elsewhere).",
        choices=AMP_CHOICES))
    channels_last: bool | None = field(default=None, metadata=_meta(
        "Hardware", "Use the channels_last memory format (default: on together with the default "
        "bf16 on an AMX-BF16 CPU, else off)."))
    compile: bool = field(default=False, metadata=_meta(
        "Hardware", "Compile the model with torch.compile."))
    clip_grad: float | None = field(default=None, metadata=_meta(
        "Hardware", "Clip the gradient norm to this value (default: off)."))
    sync_bn: bool = field(default=False, metadata=_meta(
        "Hardware", "Synchronised BatchNorm across DDP processes (CUDA)."))

    # bookkeeping
    out: str = field(default="runs/lanekd", metadata=_meta(
        "Output", "Output folder: last.pt, best.pt, metrics.jsonl, config.json.", metavar="DIR"))
    resume: bool = field(default=False, metadata=_meta(
        "Output", "Continue from OUT/last.pt."))
    ckpt_every: int = field(default=500, metadata=_meta(
        "Output", "Write last.pt every N iterations (and at the end).", min=0))
    val_every: int = field(default=0, metadata=_meta(
        "Output", "Validate every N iterations (0: only at the end).", min=0))
    log_every: int = field(default=10, metadata=_meta(
        "Output", "Write a metrics.jsonl record every N iterations.", min=1))
    quiet: bool = field(default=False, metadata=_meta(
        "Output", "No progress output; only the one-line summary."))
    tensorboard: bool = field(default=False, metadata=_meta(
        "Output", "Also write TensorBoard logs (pip install 'lanekd[tensorboard]')."))

    def resolved(self) -> TrainConfig:
        """A copy with every schedule option left ``None`` filled from :data:`RECIPES`.

        The fast recipe's learning rate depends on the model (``RECIPES["fast"]["lr"]``) and on
        the optimiser: AdamW chosen without ``--lr`` gets :data:`ADAMW_LR`. Its progressive
        resizing applies to runs from scratch without a teacher (``init`` unset, no teacher
        method, not a label-input teacher). Unset ``amp`` / ``channels_last`` become bf16 with
        channels_last on a CPU with AMX-BF16 (measured faster there at the same F1), else off.
        """
        if self.recipe not in RECIPES:
            raise ConfigError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        rec = RECIPES[self.recipe]
        out = dataclasses.replace(self)
        for name in ("optimizer", "momentum", "weight_decay", "nesterov", "schedule", "warmup_iters",
                     "batch_size", "exist_lr_scale"):
            if getattr(out, name) is None:
                setattr(out, name, rec[name])
        if out.progressive_width is None:  # fine-tuning and teachers' targets stay at full size
            taught = teacher_methods(parse_methods(out.methods)) if out.methods else []
            out.progressive_width = 0 if out.init or taught or self.label_input else rec["progressive_width"]
        if out.amp is None or out.channels_last is None:
            from lanekd.engine.hardware import cpu_has_amx_bf16

            native = out.device == "cpu" and cpu_has_amx_bf16()
            if out.amp is None:
                out.amp = "bf16" if native else "off"
            if out.channels_last is None:
                out.channels_last = native and out.amp == "bf16"
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
                     "batch_size", "exist_lr_scale"):
            if getattr(self, name) is None:
                raise ConfigError(f"{name} is unset: validate the resolved() config")
        if self.exist_lr_scale <= 0:
            raise ConfigError(f"--exist-lr-scale must be positive, got {self.exist_lr_scale}")
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
        if self.amp is not None and self.amp not in AMP_CHOICES:
            raise ConfigError(f"--amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
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
        if self.progressive_width is None or self.progressive_width < 0:
            raise ConfigError("--progressive-width must be >= 0 (0: off); validate the resolved() config")
        if self.progressive_width % 8 or not 0 <= self.progressive_fraction <= 1:
            raise ConfigError("--progressive-width must be a multiple of 8 and --progressive-fraction "
                              "in [0, 1]")
        if self.progressive_width and self.methods:
            taught = teacher_methods(parse_methods(self.methods))
            if taught:
                raise ConfigError(f"--progressive-width trains without a teacher; {', '.join(taught)} "
                                  "needs one (use --progressive-width 0)")

    def autocast(self) -> str | None:
        """The autocast mode of the training step and validation: ``bf16``, ``fp16`` or ``None``."""
        return None if self.amp in (None, "off") else self.amp

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
