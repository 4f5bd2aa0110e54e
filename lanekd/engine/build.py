"""Building one training run from a :class:`~lanekd.engine.config.TrainConfig` (``lanekd.engine.train``).

:func:`train` checks the options and the output folder, opens a :class:`RunContext` (what every
builder below reads), builds data, model, teachers/distillers, optimiser, loader and hooks, runs
the plain loop of :mod:`lanekd.engine.trainer` and assembles the :class:`TrainResult` from the
loop's :class:`~lanekd.engine.events.EventStorage`. Tests and library users may pass their own
model, training set and validation function.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lanekd.distill.teachers import build_distillation
from lanekd.engine.checkpoint import load_checkpoint_model, read_checkpoint
from lanekd.engine.config import RUN_CONFIG_FILE, TrainConfig
from lanekd.engine.dist import DistContext, init_distributed
from lanekd.engine.hooks import (
    CheckpointHook,
    HookBase,
    MetricsLogger,
    ProgressHook,
    TensorBoardHook,
    ValidationHook,
)
from lanekd.engine.losses import LaneLoss
from lanekd.engine.optim import build_optimizer, build_scheduler
from lanekd.engine.sampler import ResumableBatchSampler
from lanekd.engine.trainer import Trainer, seed_all, signal_handlers
from lanekd.errors import ConfigError, LaneKDError
from lanekd.utils.io import check_output_dir, jsonable

ValFn = Callable[[nn.Module], dict[str, Any]]


@dataclass
class TrainResult:
    """Summary of a finished run (also the ``--json`` output of the commands)."""

    out_dir: str
    iterations: int
    world_size: int
    lr: float
    loss_total: float | None
    metric: str | None
    best_value: float | None
    best_iter: int | None
    final_value: float | None
    last_checkpoint: str | None
    best_checkpoint: str | None
    elapsed_s: float
    train_seconds: float
    img_s: float
    losses: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunContext:
    """One run's resolved settings and inputs, shared by the builders.

    Attributes:
        cfg: the resolved and validated config (``cfg.data``/``cfg.val`` filled in by
            :func:`resolve_data`).
        dist: the process group (single process when not launched with torchrun).
        device: this process's device.
        out_dir: the output folder; ``last.pt``/``best.pt`` live in it.
        resume: the ``last.pt`` contents with ``--resume``, else ``None``.
        started: ``time.perf_counter()`` at the start (the result's ``elapsed_s``).
        model, train_set, val_evaluate, data_attrs: stand-ins given by the caller (else built).
        extra_hooks: the caller's hooks, run after the built-in ones except the checkpoint hook.
    """

    cfg: TrainConfig
    dist: DistContext
    device: torch.device
    out_dir: Path
    resume: dict[str, Any] | None
    started: float
    model: nn.Module | None = None
    train_set: Dataset | None = None
    val_evaluate: ValFn | None = None
    data_attrs: dict[str, Any] = field(default_factory=dict)
    extra_hooks: Sequence[HookBase] = ()

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def num_classes(self) -> int:
        return int(self.data_attrs.get("num_classes", 5))

    @property
    def label_input_classes(self) -> int:
        """> 0: the network is fed the one-hot label map of this many classes (LGAD teacher)."""
        return self.num_classes if self.cfg.label_input else 0

    @property
    def say(self) -> bool:
        """Whether this process prints notes (rank 0, not ``--quiet``)."""
        return self.dist.is_main and not self.cfg.quiet


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker; numpy and random are not, so augmentations would repeat across workers
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def train(
    cfg: TrainConfig,
    *,
    model: nn.Module | None = None,
    train_set: Dataset | None = None,
    val_evaluate: ValFn | None = None,
    data_attrs: dict[str, Any] | None = None,
    extra_hooks: Sequence[HookBase] = (),
) -> TrainResult:
    """Train one model as ``cfg`` describes and return a summary.

    The model, training set and validation function are built from ``cfg`` unless given (tests
    and library users can pass stand-ins; a given ``model`` must accept
    ``(x, return_features=bool)`` and return a :class:`LaneOutput` and carry ``build_args``).

    Raises:
        ConfigError / LaneKDError: bad options or inputs.
        TrainingInterrupted: SIGINT/SIGTERM (``last.pt`` saved).
        TrainingDiverged: non-finite loss.
    """
    cfg = cfg.resolved()
    cfg.validate()
    started = time.perf_counter()
    dctx = init_distributed(cfg.device)
    try:
        device = torch.device(
            cfg.device if not cfg.device.startswith("cuda") or not dctx.enabled else f"cuda:{dctx.local_rank}"
        )
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but CUDA is not available")
        if cfg.sync_bn and dctx.enabled and device.type != "cuda":
            raise ConfigError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
        out_dir = check_output_dir(cfg.out)  # an unusable --out fails now, not at the first checkpoint
        resume = None
        if cfg.resume:
            if not (out_dir / "last.pt").is_file():
                raise LaneKDError(f"{out_dir / 'last.pt'}: nothing to resume (no last.pt in --out)")
            resume = read_checkpoint(out_dir / "last.pt")
        ctx = RunContext(cfg, dctx, device, out_dir, resume, started, model, train_set, val_evaluate,
                         dict(data_attrs or {}), extra_hooks)
        return run(ctx)
    finally:
        dctx.close()


def run(ctx: RunContext) -> TrainResult:
    """Build everything ``ctx`` describes, train, and summarise."""
    cfg, dctx = ctx.cfg, ctx.dist
    seed_all(cfg.seed)
    train_set = ctx.train_set if ctx.train_set is not None else build_train_set(ctx)
    model = build_model(ctx)
    # teachers and distillers: every teacher check runs here, before the first step
    distillers, teachers = build_distillation(cfg, model, ctx.device, ctx.num_classes, dctx,
                                              load_checkpoint_model)
    seed_all(cfg.seed + 7919 * dctx.rank)  # per-process augmentation streams

    lr = cfg.effective_lr()
    optimizer = build_optimizer(cfg.optimizer, param_groups(model, distillers, cfg.exist_lr_scale), lr,
                                cfg.momentum, cfg.weight_decay, cfg.nesterov)
    sampler = ResumableBatchSampler(
        len(train_set), cfg.batch_size, seed=cfg.seed, rank=dctx.rank, world_size=dctx.world_size
    )
    max_iter = cfg.iters if cfg.iters is not None else cfg.epochs * sampler.batches_per_epoch
    scheduler = build_scheduler(
        optimizer, max_iter, cfg.schedule, cfg.poly_power, cfg.warmup_iters, cfg.warmup_factor
    )
    gen = torch.Generator()
    gen.manual_seed(cfg.seed)
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=ctx.device.type == "cuda",
        generator=gen,
        worker_init_fn=_seed_worker,
        persistent_workers=cfg.workers > 0,
    )
    resolved = resolved_config(cfg, effective_lr=lr, max_iter=max_iter, world_size=dctx.world_size)
    model_args = jsonable(dict(getattr(model, "build_args", {"name": type(model).__name__})))
    trainer = Trainer(
        model,
        optimizer,
        scheduler,
        loader,
        sampler,
        LaneLoss(cfg.background_weight, cfg.exist_weight, cfg.iou_weight),
        max_iter,
        distillers=distillers,
        teachers=teachers,
        forward_model=forward_wrapper(ctx, model),
        device=ctx.device,
        amp=cfg.autocast(),
        scaler=torch.amp.GradScaler(ctx.device.type) if cfg.autocast() == "fp16" else None,
        clip_grad=cfg.clip_grad,
        channels_last=bool(cfg.channels_last),
        label_input_classes=ctx.label_input_classes,
        dist_ctx=dctx,
        hooks=build_hooks(ctx),
        loader_generator=gen,
        checkpoint_extra={"model_args": model_args, "data_attrs": ctx.data_attrs, "config": resolved},
        quiet=cfg.quiet,
        progressive=(cfg.progressive_width, round(cfg.progressive_fraction * max_iter)),
    )
    if ctx.resume is not None:
        try:
            trainer.load_state_dict(ctx.resume)
        except ValueError as e:  # torch's optimiser: other parameter groups (e.g. another --exist-lr-scale)
            raise LaneKDError(f"{ctx.last_path}: its optimiser state does not fit this run ({e}); resume "
                              "with the options the run was started with") from None
        if trainer.iter >= max_iter and ctx.say:
            print(f"{ctx.last_path}: already at iteration {trainer.iter} of {max_iter}", file=sys.stderr)
    if dctx.is_main:
        (ctx.out_dir / RUN_CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n")
        size = ctx.data_attrs.get("size")
        small = trainer.small_size(size) if size else None
        if small is not None and not cfg.quiet:
            print(f"progressive resizing: iterations 1-{trainer.progressive_iters} at {small[0]}x{small[1]}, "
                  f"then {int(size[0])}x{int(size[1])} (--progressive-width 0: full size throughout)",
                  file=sys.stderr)
        if cfg.autocast() and not cfg.quiet:
            layout = " + channels_last" if cfg.channels_last else ""
            print(f"mixed precision: {cfg.autocast()} autocast{layout} (--amp off: fp32)", file=sys.stderr)
        if cfg.scale_lr and not cfg.quiet:
            print(
                f"lr scaled linearly with the global batch: {cfg.lr} x {cfg.batch_size}/12 = {lr:.6g}",
                file=sys.stderr,
            )

    start_iter = trainer.iter
    with signal_handlers(trainer):
        trainer.train()
    elapsed = time.perf_counter() - ctx.started
    store = trainer.storage
    results = {k: store.results.get(k) for k in ("metric", "best_value", "best_iter", "final_value",
                                                 "last_checkpoint", "best_checkpoint")}
    return TrainResult(
        out_dir=str(ctx.out_dir),
        iterations=trainer.iter,
        world_size=dctx.world_size,
        lr=lr,
        loss_total=store.losses.get("loss_total"),
        elapsed_s=elapsed,
        train_seconds=trainer.train_seconds,
        img_s=(trainer.iter - start_iter) * cfg.batch_size / max(elapsed, 1e-9),
        losses=dict(store.losses),
        **results,
    )


def resolved_config(cfg: TrainConfig, **derived: Any) -> dict[str, Any]:
    """``config.json`` and the checkpoints' ``config``: the config plus ``derived`` values."""
    resolved = cfg.to_dict()
    if resolved.get("distill") is None:  # library callers leave it unset: record the defaults used
        from lanekd.distill import DistillConfig

        resolved["distill"] = DistillConfig().to_dict()
    resolved.update(derived)
    return jsonable(resolved)


# --------------------------------------------------------------------------------------------
# data


def build_train_set(ctx: RunContext) -> Dataset:
    """The training dataset from ``cfg.data`` (the built-in synthetic set when none is given);
    fills ``ctx.data_attrs`` from the file."""
    from lanekd.data import LaneDataset
    from lanekd.data.h5 import data_attrs_from_h5

    cfg = ctx.cfg
    resolve_data(cfg)
    # the teacher cache holds targets of un-augmented samples, so it implies no augmentation
    augment = cfg.augment and not cfg.cache_teacher
    if cfg.augment and cfg.cache_teacher and ctx.say:
        print("--cache-teacher: training without augmentation (cached targets are per sample)",
              file=sys.stderr)
    assert cfg.data is not None
    ctx.data_attrs = data_attrs_from_h5(cfg.data)
    return LaneDataset(cfg.data, train=augment)


def resolve_data(cfg: TrainConfig) -> None:
    """Fill ``cfg.data``/``cfg.val`` with the built-in synthetic set when no data is given."""
    if cfg.data is not None:
        if not Path(cfg.data).is_file():
            raise LaneKDError(f"{cfg.data}: training data not found (prepare it with `lanekd prepare`)")
        if cfg.val is not None and not Path(cfg.val).is_file():
            raise LaneKDError(f"{cfg.val}: validation data not found")
        check_h5_inputs(cfg.data, cfg.val, cfg.batch_size)
        return
    from lanekd.data import ensure_synthetic
    from lanekd.data.cache import wide_line_width

    size = tuple(cfg.synthetic_size)
    lw = wide_line_width(size)
    cfg.data = str(ensure_synthetic("train", cfg.synthetic_n, size=size, seed=cfg.seed, line_width=lw))
    if cfg.val is None and cfg.synthetic_val_n > 0:
        cfg.val = str(ensure_synthetic("val", cfg.synthetic_val_n, size=size, seed=cfg.seed, line_width=lw))


def check_h5_inputs(data: str, val: str | None, batch_size: int) -> None:
    """Open ``--data`` and ``--val`` before the first step: a file that is not a lanekd file, or that
    no network can be built for, fails now instead of after the whole training."""
    from lanekd.data import LaneH5
    from lanekd.errors import DataError
    from lanekd.models.common import check_input_size

    train_h5 = LaneH5(data)
    size = tuple(int(v) for v in train_h5.attrs.get("size", ()))
    try:
        check_input_size(size)
    except ConfigError as e:
        raise DataError(data, f"prepared at a size no network takes ({e}); prepare it with --size") from None
    if len(train_h5) < batch_size:
        raise DataError(data, f"has {len(train_h5)} samples, fewer than --batch-size {batch_size}")
    if val is None:
        return
    val_h5 = LaneH5(val)
    val_size = tuple(int(v) for v in val_h5.attrs.get("size", ()))
    if val_size != size:
        raise DataError(val, f"prepared at {val_size[0]}x{val_size[1]}, the training data {data} at "
                             f"{size[0]}x{size[1]}")
    if val_h5.attrs.get("num_classes") != train_h5.attrs.get("num_classes"):
        raise DataError(val, f"has {val_h5.attrs.get('num_classes')} classes, the training data {data} "
                             f"{train_h5.attrs.get('num_classes')}")
    if len(val_h5) == 0:
        raise DataError(val, "has no samples to validate on")


# --------------------------------------------------------------------------------------------
# model and hooks


def build_model(ctx: RunContext) -> nn.Module:
    """The student (or teacher) network on ``ctx.device``: ``ctx.model`` or one built from the
    registry for the data's classes, slots and size."""
    cfg, model = ctx.cfg, ctx.model
    if model is None:
        from lanekd.models import build_model as build_registered

        num_classes = ctx.num_classes
        num_slots = int(ctx.data_attrs.get("num_slots", num_classes - 1))
        size = tuple(ctx.data_attrs.get("size", (288, 800)))
        opts = dict(cfg.model_options)
        if cfg.label_input:
            opts["in_channels"] = num_classes
        model = build_registered(cfg.model, num_classes=num_classes, num_lanes=num_slots, input_size=size,
                                 **opts)
        if cfg.init and ctx.resume is None:  # a resumed run restores its own weights instead
            from lanekd.engine.checkpoint import load_init_weights

            load_init_weights(model, cfg.init)
    if cfg.sync_bn and ctx.dist.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(ctx.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def param_groups(model: nn.Module, distillers: list[nn.Module],
                 exist_lr_scale: float) -> list[dict[str, Any]]:
    """The optimiser's groups: the existence branch (``model.exist``) at ``exist_lr_scale`` times
    the base rate, everything else (network, distillers' own parameters) at the base rate; one
    group when the scale is 1 (so checkpoints from before the option still resume)."""
    theirs = [p for d in distillers for p in d.parameters()]
    exist = getattr(model, "exist", None)
    if not isinstance(exist, nn.Module) or exist_lr_scale == 1.0:
        return [{"params": [*model.parameters(), *theirs]}]
    own = list(exist.parameters())
    ids = {id(p) for p in own}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": rest + theirs}, {"params": own, "lr_scale": exist_lr_scale}]


def forward_wrapper(ctx: RunContext, model: nn.Module) -> nn.Module:
    """What the loop calls in the forward: ``model`` inside DDP and/or ``torch.compile``."""
    forward_model: nn.Module = model
    if ctx.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        device = ctx.device
        forward_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if ctx.cfg.compile:
        forward_model = torch.compile(forward_model)
    return forward_model


def build_hooks(ctx: RunContext) -> list[HookBase]:
    """The hooks in their fixed order: metrics log, progress, validation, TensorBoard, the
    caller's, then the checkpoint hook (so ``last.pt`` carries every other hook's state)."""
    cfg, dctx = ctx.cfg, ctx.dist
    hooks: list[HookBase] = []
    logger = None
    if dctx.is_main:
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        logger = MetricsLogger(ctx.out_dir / "metrics.jsonl", cfg.log_every)
        run_name = ctx.out_dir.name or "train"
        hooks += [logger, ProgressHook(cfg.quiet, cfg.log_every, run_name)]
    val_evaluate = ctx.val_evaluate
    if val_evaluate is None and cfg.val is not None:
        val_evaluate = make_val_fn(ctx)
    if val_evaluate is not None:
        hooks.append(ValidationHook(val_evaluate, cfg.val_every, logger, ctx.best_path))
    if cfg.tensorboard and dctx.is_main:
        hooks.append(TensorBoardHook(ctx.out_dir / "tensorboard"))
    hooks += list(ctx.extra_hooks)
    # without validation best.pt is the final weights (docs/training.md)
    final_copy = None if val_evaluate is not None else ctx.best_path
    hooks.append(CheckpointHook(ctx.last_path, cfg.ckpt_every, final_copy))
    return hooks


def make_val_fn(ctx: RunContext) -> ValFn:
    """``model -> metrics`` on ``cfg.val`` (:func:`lanekd.engine.validation.evaluate_model`)."""
    from lanekd.engine.validation import evaluate_model

    cfg = ctx.cfg
    assert cfg.val is not None

    def evaluate(model: nn.Module) -> dict[str, Any]:
        return evaluate_model(
            model,
            cfg.val,  # type: ignore[arg-type]
            device=ctx.device,
            batch_size=max(1, min(cfg.batch_size, 16)),
            amp=cfg.autocast(),
            label_input_classes=ctx.label_input_classes,
            max_images=cfg.max_val_images,
            channels_last=bool(cfg.channels_last),
        )

    return evaluate
