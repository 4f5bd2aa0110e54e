"""Training engine: typed config, the plain training loop with hooks, checkpoints, losses.

Public API::

    from lanekd.engine import TrainConfig, train, load_checkpoint_model
    result = train(TrainConfig(model="enet-sad", methods=["sad"], iters=300, out="runs/sad"))
    model, meta = load_checkpoint_model("runs/sad/best.pt")
"""

from __future__ import annotations

from lanekd.engine.checkpoint import load_checkpoint_model, read_checkpoint, save_checkpoint
from lanekd.engine.config import REFERENCE_BATCH, TrainConfig
from lanekd.engine.hooks import (
    LOSS_NAMES,
    CheckpointHook,
    HookBase,
    MetricsLogger,
    ProgressHook,
    TensorBoardHook,
    ValidationHook,
)
from lanekd.engine.losses import LaneLoss, existence_bce, onehot_label, soft_iou_loss, weighted_cross_entropy
from lanekd.engine.optim import build_poly_scheduler, build_sgd, poly_factor
from lanekd.engine.sampler import ResumableBatchSampler
from lanekd.engine.trainer import (
    OnlineTeacher,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    freeze,
    train,
)

__all__ = [
    "LOSS_NAMES",
    "REFERENCE_BATCH",
    "CheckpointHook",
    "HookBase",
    "LaneLoss",
    "MetricsLogger",
    "OnlineTeacher",
    "ProgressHook",
    "ResumableBatchSampler",
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
