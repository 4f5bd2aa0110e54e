"""Training engine: typed config, the plain training loop with hooks, checkpoints, losses.

Public API::

    from lanekd.engine import TrainConfig, train, load_checkpoint_model
    result = train(TrainConfig(model="enet-sad", methods=["sad"], iters=300, out="runs/sad"))
    model, meta = load_checkpoint_model("runs/sad/best.pt")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lanekd.utils.lazy import lazy_export

# Names are imported on first access, so ``lanekd.engine.config`` loads without torch (the CLI
# builds its training flags from TrainConfig's fields).
_EXPORTS = {
    "load_checkpoint_model": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "REFERENCE_BATCH": "config",
    "TrainConfig": "config",
    "LOSS_NAMES": "hooks",
    "CheckpointHook": "hooks",
    "HookBase": "hooks",
    "MetricsLogger": "hooks",
    "ProgressHook": "hooks",
    "TensorBoardHook": "hooks",
    "ValidationHook": "hooks",
    "LaneLoss": "losses",
    "existence_bce": "losses",
    "onehot_label": "losses",
    "soft_iou_loss": "losses",
    "weighted_cross_entropy": "losses",
    "build_poly_scheduler": "optim",
    "build_sgd": "optim",
    "poly_factor": "optim",
    "ResumableBatchSampler": "sampler",
    "EventStorage": "events",
    "Interrupt": "events",
    "OnlineTeacher": "lanekd.distill.teachers",
    "freeze": "lanekd.distill.teachers",
    "Trainer": "trainer",
    "TrainingDiverged": "trainer",
    "TrainingInterrupted": "trainer",
    "RunContext": "build",
    "TrainResult": "build",
    "train": "build",
}

if TYPE_CHECKING:  # what static analysis sees; at run time __getattr__ imports on demand
    from lanekd.distill.teachers import OnlineTeacher, freeze
    from lanekd.engine.build import RunContext, TrainResult, train
    from lanekd.engine.checkpoint import load_checkpoint_model, read_checkpoint, save_checkpoint
    from lanekd.engine.config import REFERENCE_BATCH, TrainConfig
    from lanekd.engine.events import EventStorage, Interrupt
    from lanekd.engine.hooks import (
        LOSS_NAMES,
        CheckpointHook,
        HookBase,
        MetricsLogger,
        ProgressHook,
        TensorBoardHook,
        ValidationHook,
    )
    from lanekd.engine.losses import (
        LaneLoss,
        existence_bce,
        onehot_label,
        soft_iou_loss,
        weighted_cross_entropy,
    )
    from lanekd.engine.optim import build_poly_scheduler, build_sgd, poly_factor
    from lanekd.engine.sampler import ResumableBatchSampler
    from lanekd.engine.trainer import Trainer, TrainingDiverged, TrainingInterrupted

__all__ = [
    "LOSS_NAMES",
    "REFERENCE_BATCH",
    "CheckpointHook",
    "EventStorage",
    "HookBase",
    "Interrupt",
    "LaneLoss",
    "MetricsLogger",
    "OnlineTeacher",
    "ProgressHook",
    "ResumableBatchSampler",
    "RunContext",
    "TensorBoardHook",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "ValidationHook",
    "build_poly_scheduler",
    "build_sgd",
    "existence_bce",
    "freeze",
    "load_checkpoint_model",
    "onehot_label",
    "poly_factor",
    "read_checkpoint",
    "save_checkpoint",
    "soft_iou_loss",
    "train",
    "weighted_cross_entropy",
]


def __getattr__(name: str) -> Any:
    return lazy_export("lanekd.engine", _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
