"""The training loop shared by ``train-teacher`` and ``distill``.

:class:`Trainer` is a plain loop (forward, supervised loss + distillation terms, backward,
optimiser and per-iteration LR step) with checkpointing, validation and logging delegated to
hooks (:mod:`lanekd.engine.hooks`). :func:`train` builds everything from a
:class:`~lanekd.engine.config.TrainConfig` and runs it; tests and library users may pass their
own model and datasets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

# OnlineTeacher and freeze are re-exported by lanekd.engine
from lanekd.distill.teachers import OnlineTeacher, build_distillation, freeze  # noqa: F401
from lanekd.engine.checkpoint import (
    load_checkpoint_model,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from lanekd.engine.config import TrainConfig
from lanekd.engine.dist import DistContext, init_distributed
from lanekd.engine.hooks import (
    CheckpointHook,
    HookBase,
    MetricsLogger,
    ProgressHook,
    TensorBoardHook,
    ValidationHook,
)
from lanekd.engine.losses import LaneLoss, onehot_label
from lanekd.engine.optim import build_optimizer, build_scheduler
from lanekd.engine.sampler import ResumableBatchSampler
from lanekd.errors import ConfigError, LaneKDError
from lanekd.utils.io import check_output_dir


class TrainingInterrupted(LaneKDError):
    """SIGINT/SIGTERM arrived; ``last.pt`` was saved. ``exit_code`` is 130 or 143."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TrainingDiverged(LaneKDError):
    """The loss became NaN or infinite; the last good checkpoint is kept untouched."""


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
    img_s: float
    losses: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker; numpy and random are not, so augmentations would repeat across workers
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


class Trainer:
    """Plain training loop; see the module docstring.

    Args:
        model: the bare model (its ``state_dict`` is what checkpoints hold).
        optimizer, scheduler: stepped once per iteration.
        loader, sampler: the DataLoader built on ``sampler`` (a :class:`ResumableBatchSampler`).
        loss_fn: supervised loss returning a dict of weighted terms.
        max_iter: total iterations.
        distillers: ``lanekd.distill`` Distiller modules; each adds its ``loss_name`` term.
        teachers: ``{"image": source, "onehot": source}`` callables producing teacher outputs.
        forward_model: what to call in the forward (DDP and/or compiled wrapper); default ``model``.
        label_input_classes: > 0 feeds the one-hot label map instead of the image (LGAD teacher).
        checkpoint_extra: constant entries of every checkpoint (model_args, data_attrs, config).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loader: DataLoader,
        sampler: ResumableBatchSampler,
        loss_fn: nn.Module,
        max_iter: int,
        *,
        distillers: Sequence[nn.Module] = (),
        teachers: dict[str, Callable] | None = None,
        forward_model: nn.Module | None = None,
        device: str | torch.device = "cpu",
        amp: str | None = None,
        scaler: torch.amp.GradScaler | None = None,
        clip_grad: float | None = None,
        channels_last: bool = False,
        label_input_classes: int = 0,
        dist_ctx: DistContext | None = None,
        hooks: Sequence[HookBase] = (),
        loader_generator: torch.Generator | None = None,
        checkpoint_extra: dict[str, Any] | None = None,
        quiet: bool = False,
    ) -> None:
        self.model = model
        self.forward_model = forward_model if forward_model is not None else model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loader = loader
        self.sampler = sampler
        self.loss_fn = loss_fn
        self.max_iter = max_iter
        self.distillers = list(distillers)
        self.teachers = teachers or {}
        self.device = torch.device(device)
        self.amp = amp
        self.scaler = scaler
        self.clip_grad = clip_grad
        self.channels_last = channels_last
        self.label_input_classes = label_input_classes
        self.dist = dist_ctx or DistContext()
        self.loader_generator = loader_generator
        self.checkpoint_extra = checkpoint_extra or {}
        self.quiet = quiet
        self.hooks: list[HookBase] = []
        for h in hooks:
            self.register_hook(h)
        self.iter = 0
        self.last_losses: dict[str, float] = {}
        self.last_record: dict[str, Any] | None = None
        self.last_val: dict[str, Any] | None = None
        self.stop_signal: int | None = None
        self._need_features = any(getattr(d, "student_features", ()) for d in self.distillers) or bool(
            self.distillers
        )

    # --- properties used by hooks
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def global_batch(self) -> int:
        return self.sampler.batch_size

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def epoch_float(self) -> float:
        return self.iter / self.sampler.batches_per_epoch

    def register_hook(self, hook: HookBase) -> None:
        hook.trainer = self
        self.hooks.append(hook)

    def barrier(self) -> None:
        self.dist.barrier()

    # --- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "distillers": [d.state_dict() for d in self.distillers],
            "iteration": self.iter,
            "rng": rng_state(self.loader_generator),
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        for d, s in zip(self.distillers, ckpt.get("distillers", []), strict=False):
            d.load_state_dict(s)
        self.iter = int(ckpt["iteration"])
        for h in self.hooks:
            s = ckpt.get("hooks", {}).get(type(h).__name__)
            if s:
                h.load_state_dict(s)
        set_rng_state(ckpt["rng"], self.loader_generator)

    def save_checkpoint(self, path: str | Path, metrics: dict[str, Any] | None = None) -> None:
        """Atomically write the full training state plus the constant metadata (rank 0 only)."""
        if not self.is_main:
            return
        state = {**self.checkpoint_extra, **self.state_dict(), "metrics": metrics or self.last_val}
        save_checkpoint(path, state)

    # --- the loop
    def train(self) -> None:
        for h in self.hooks:
            h.before_train()
        try:
            while self.iter < self.max_iter:
                self.sampler.set_position(*divmod(self.iter, self.sampler.batches_per_epoch))
                for batch in self.loader:
                    self.run_step(batch)
                    for h in self.hooks:
                        h.after_step()
                    if self.dist.any_flag(self.stop_signal is not None):
                        self._interrupted()
                    if self.iter >= self.max_iter:
                        break
        finally:
            if self.stop_signal is None and self.iter >= self.max_iter:
                self._finish()
            else:
                for h in self.hooks:
                    if isinstance(h, ProgressHook):
                        h.after_train()

    def _finish(self) -> None:
        """End-of-training hooks. If one fails (the final validation, say), ``last.pt`` is written
        anyway: a finished training is never lost to a failing validation."""
        try:
            for h in self.hooks:
                h.after_train()
        except Exception as e:
            saved = [h.path for h in self.hooks if isinstance(h, CheckpointHook)]
            for path in saved:
                self.save_checkpoint(path)
            if saved and isinstance(e, LaneKDError):
                raise LaneKDError(f"{e} (after training; the weights are saved in {saved[0]})") from None
            raise

    def _interrupted(self) -> None:
        sig = self.stop_signal if self.stop_signal is not None else signal.SIGTERM
        name = signal.Signals(sig).name
        path = None
        for h in self.hooks:
            if isinstance(h, CheckpointHook):
                path = h.path
                self.save_checkpoint(path)
        where = f"; saved {path} (continue with --resume)" if path else ""
        raise TrainingInterrupted(f"interrupted by {name} at iteration {self.iter}{where}", 128 + int(sig))

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        nb = self.device.type == "cuda"
        return {
            k: v.to(self.device, non_blocking=nb) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()
        }

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def run_step(self, batch: dict[str, Any]) -> None:
        """One optimisation step on one batch; updates ``iter`` and ``last_losses``."""
        batch = self._to_device(batch)
        label = batch["label"]
        if self.label_input_classes:
            x = onehot_label(label, self.label_input_classes)
        else:
            x = batch["image"]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        with self._autocast():
            out = self.forward_model(x, return_features=self._need_features)
            teacher_out = {kind: src(batch, self.channels_last) for kind, src in self.teachers.items()}
            losses = self.loss_fn(out.seg, out.exist, label, batch.get("exist"))
            for d in self.distillers:
                term = d(
                    out,
                    batch,
                    teacher_out.get(d.teacher_input) if d.needs_teacher else None,
                    self.iter,
                    self.max_iter,
                )
                losses[d.loss_name] = (
                    losses[d.loss_name] + term.float() if d.loss_name in losses else term.float()
                )
        total = torch.stack([v.float() for v in losses.values()]).sum()
        values = torch.stack([*(v.detach().float() for v in losses.values()), total.detach()]).cpu().tolist()
        finite = all(math.isfinite(v) for v in values)
        if self.dist.any_flag(not finite, self.device):
            terms = ", ".join(f"{k}={v:.4g}" for k, v in zip(losses, values, strict=False))
            kept = next((h.path for h in self.hooks if isinstance(h, CheckpointHook) and h.path.is_file()),
                        None)
            where = f"the last good checkpoint {kept} is kept" if kept else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"loss became non-finite at iteration {self.iter + 1} ({terms}); "
                f"stopped, {where} (try a lower --lr or --clip-grad)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
        else:
            total.backward()
        self._sync_extra_grads()
        if self.clip_grad is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.iter += 1
        self.last_losses = dict(zip([*losses, "loss_total"], values, strict=True))

    def _sync_extra_grads(self) -> None:
        # DDP averages the model's gradients; learnable distiller parts (adapters) are outside it
        if not self.dist.enabled:
            return
        import torch.distributed as dist

        for d in self.distillers:
            for p in d.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.dist.world_size


# --------------------------------------------------------------------------------------------
# building a run from a TrainConfig


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


DATA_ATTR_KEYS = (
    "dataset",
    "split",
    "size",
    "source_size",
    "crop_top",
    "num_slots",
    "num_classes",
    "mean",
    "std",
    "profile",
    "decode_profile",
)


def data_attrs_from_h5(path: str | Path) -> dict[str, Any]:
    """The HDF5 attributes export/predict need (plain JSON values)."""
    from lanekd.data import LaneH5

    h5 = LaneH5(path)
    attrs = dict(h5.attrs)
    out = {k: _jsonable(attrs[k]) for k in DATA_ATTR_KEYS if k in attrs}
    if "num_classes" not in out and "num_slots" in out:
        out["num_classes"] = int(out["num_slots"]) + 1
    out.setdefault("profile", out.get("decode_profile") or _default_profile(out.get("dataset")))
    close = getattr(h5, "close", None)
    if callable(close):
        close()
    return out


def _default_profile(dataset: str | None) -> str:
    return {"tusimple": "tusimple", "llamas": "llamas"}.get(str(dataset), "culane")


def _resolve_data(cfg: TrainConfig) -> None:
    """Fill ``cfg.data``/``cfg.val`` with the built-in synthetic set when no data is given."""
    if cfg.data is not None:
        if not Path(cfg.data).is_file():
            raise LaneKDError(f"{cfg.data}: training data not found (prepare it with `lanekd prepare`)")
        if cfg.val is not None and not Path(cfg.val).is_file():
            raise LaneKDError(f"{cfg.val}: validation data not found")
        _check_h5_inputs(cfg.data, cfg.val, cfg.batch_size)
        return
    from lanekd.data import ensure_synthetic
    from lanekd.data.cache import wide_line_width

    size = tuple(cfg.synthetic_size)
    lw = wide_line_width(size)
    cfg.data = str(ensure_synthetic("train", cfg.synthetic_n, size=size, seed=cfg.seed, line_width=lw))
    if cfg.val is None and cfg.synthetic_val_n > 0:
        cfg.val = str(ensure_synthetic("val", cfg.synthetic_val_n, size=size, seed=cfg.seed, line_width=lw))


def _check_h5_inputs(data: str, val: str | None, batch_size: int) -> None:
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


def train(
    cfg: TrainConfig,
    *,
    model: nn.Module | None = None,
    train_set: Dataset | None = None,
    val_evaluate: Callable[[nn.Module], dict[str, Any]] | None = None,
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
    t_start = time.perf_counter()
    dctx = init_distributed(cfg.device)
    device = torch.device(
        cfg.device if not cfg.device.startswith("cuda") or not dctx.enabled else f"cuda:{dctx.local_rank}"
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available")
    if cfg.sync_bn and dctx.enabled and device.type != "cuda":
        raise ConfigError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
    out_dir = check_output_dir(cfg.out)  # an unusable --out fails now, not at the first checkpoint
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    resume_ckpt = None
    if cfg.resume:
        if not last_path.is_file():
            raise LaneKDError(f"{last_path}: nothing to resume (no last.pt in --out)")
        resume_ckpt = read_checkpoint(last_path)

    try:
        return _train(
            cfg,
            dctx,
            device,
            out_dir,
            last_path,
            best_path,
            resume_ckpt,
            model,
            train_set,
            val_evaluate,
            data_attrs,
            extra_hooks,
            t_start,
        )
    finally:
        dctx.close()


def _train(
    cfg: TrainConfig,
    dctx: DistContext,
    device: torch.device,
    out_dir: Path,
    last_path: Path,
    best_path: Path,
    resume_ckpt: dict | None,
    model: nn.Module | None,
    train_set: Dataset | None,
    val_evaluate: Callable | None,
    data_attrs: dict | None,
    extra_hooks: Sequence[HookBase],
    t_start: float,
) -> TrainResult:
    seed_all(cfg.seed)
    if train_set is None:
        _resolve_data(cfg)
        from lanekd.data import LaneDataset

        # the teacher cache holds targets of un-augmented samples, so it implies no augmentation
        augment = cfg.augment and not cfg.cache_teacher
        if cfg.augment and cfg.cache_teacher and dctx.is_main and not cfg.quiet:
            print(
                "--cache-teacher: training without augmentation (cached targets are per sample)",
                file=sys.stderr,
            )
        train_set = LaneDataset(cfg.data, train=augment)
        data_attrs = data_attrs_from_h5(cfg.data)
    data_attrs = dict(data_attrs or {})
    num_classes = int(data_attrs.get("num_classes", 5))
    num_slots = int(data_attrs.get("num_slots", num_classes - 1))
    size = tuple(data_attrs.get("size", (288, 800)))

    if model is None:
        from lanekd.models import build_model

        opts = dict(cfg.model_options)
        if cfg.label_input:
            opts["in_channels"] = num_classes
        model = build_model(cfg.model, num_classes=num_classes, num_lanes=num_slots, input_size=size, **opts)
    model_args = _jsonable(dict(getattr(model, "build_args", {"name": type(model).__name__})))
    if cfg.sync_bn and dctx.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)

    # teachers and distillers: every teacher check runs here, before the first step
    distillers, teachers = build_distillation(cfg, model, device, num_classes, dctx, load_checkpoint_model)

    seed_all(cfg.seed + 7919 * dctx.rank)  # per-process augmentation streams

    lr = cfg.effective_lr()
    params = list(model.parameters()) + [p for d in distillers for p in d.parameters()]
    optimizer = build_optimizer(cfg.optimizer, params, lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    sampler = ResumableBatchSampler(
        len(train_set), cfg.batch_size, seed=cfg.seed, rank=dctx.rank, world_size=dctx.world_size
    )
    max_iter = cfg.iters if cfg.iters is not None else cfg.epochs * sampler.batches_per_epoch
    scheduler = build_scheduler(
        optimizer, max_iter, cfg.schedule, cfg.poly_power, cfg.warmup_iters, cfg.warmup_factor
    )
    scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
    gen = torch.Generator()
    gen.manual_seed(cfg.seed)
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        generator=gen,
        worker_init_fn=_seed_worker,
        persistent_workers=cfg.workers > 0,
    )

    forward_model: nn.Module = model
    if dctx.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        forward_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        forward_model = torch.compile(forward_model)

    resolved = cfg.to_dict()
    if resolved.get("distill") is None:  # library callers leave it unset: record the defaults used
        from lanekd.distill import DistillConfig

        resolved["distill"] = DistillConfig().to_dict()
    resolved.update(effective_lr=lr, max_iter=max_iter, world_size=dctx.world_size)
    checkpoint_extra = {"model_args": model_args, "data_attrs": data_attrs, "config": _jsonable(resolved)}

    hooks: list[HookBase] = []
    logger = None
    if dctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        logger = MetricsLogger(out_dir / "metrics.jsonl", cfg.log_every)
        hooks += [
            logger,
            ProgressHook(cfg.quiet, cfg.log_every, out_dir.name or "train"),  # the run's name
        ]
    if val_evaluate is None and cfg.val is not None:
        val_evaluate = _make_val_fn(cfg, device, num_classes if cfg.label_input else 0)
    if val_evaluate is not None:
        hooks.append(ValidationHook(val_evaluate, cfg.val_every, logger, best_path))
    if cfg.tensorboard and dctx.is_main:
        hooks.append(TensorBoardHook(out_dir / "tensorboard"))
    hooks += list(extra_hooks)
    # without validation best.pt is the final weights (docs/training.md)
    hooks.append(CheckpointHook(last_path, cfg.ckpt_every, None if val_evaluate is not None else best_path))

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
        forward_model=forward_model,
        device=device,
        amp=cfg.amp,
        scaler=scaler,
        clip_grad=cfg.clip_grad,
        channels_last=cfg.channels_last,
        label_input_classes=num_classes if cfg.label_input else 0,
        dist_ctx=dctx,
        hooks=hooks,
        loader_generator=gen,
        checkpoint_extra=checkpoint_extra,
        quiet=cfg.quiet,
    )
    if resume_ckpt is not None:
        trainer.load_state_dict(resume_ckpt)
        if trainer.iter >= max_iter and not cfg.quiet and dctx.is_main:
            print(f"{last_path}: already at iteration {trainer.iter} of {max_iter}", file=sys.stderr)
    if dctx.is_main:
        (out_dir / "config.json").write_text(json.dumps(_jsonable(resolved), indent=2) + "\n")
        if cfg.scale_lr and not cfg.quiet:
            print(
                f"lr scaled linearly with the global batch: {cfg.lr} x {cfg.batch_size}/12 = {lr:.6g}",
                file=sys.stderr,
            )

    start_iter = trainer.iter
    with _signal_handlers(trainer):
        trainer.train()
    elapsed = time.perf_counter() - t_start
    val_hook = next((h for h in trainer.hooks if isinstance(h, ValidationHook)), None)
    done = trainer.iter - start_iter
    return TrainResult(
        out_dir=str(out_dir),
        iterations=trainer.iter,
        world_size=dctx.world_size,
        lr=lr,
        loss_total=trainer.last_losses.get("loss_total"),
        metric=val_hook.last["metric"] if val_hook and val_hook.last else None,
        best_value=val_hook.best if val_hook and val_hook.best_iter >= 0 else None,
        best_iter=val_hook.best_iter if val_hook and val_hook.best_iter >= 0 else None,
        final_value=val_hook.last["value"] if val_hook and val_hook.last else None,
        last_checkpoint=str(last_path) if last_path.exists() else None,
        best_checkpoint=str(best_path) if best_path.exists() else None,
        elapsed_s=elapsed,
        img_s=done * cfg.batch_size / max(elapsed, 1e-9),
        losses=dict(trainer.last_losses),
    )


@contextlib.contextmanager
def _signal_handlers(trainer: Trainer):
    """SIGINT/SIGTERM finish the current step, save last.pt and stop (exit 130/143)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_signal is not None:  # second signal: stop right now
            raise KeyboardInterrupt
        trainer.stop_signal = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _make_val_fn(cfg: TrainConfig, device: torch.device, label_input_classes: int) -> Callable:
    from lanekd.engine.validation import evaluate_model

    def run(model: nn.Module) -> dict[str, Any]:
        return evaluate_model(
            model,
            cfg.val,
            device=device,
            batch_size=max(1, min(cfg.batch_size, 16)),
            amp=cfg.amp,
            label_input_classes=label_input_classes,
            max_images=cfg.max_val_images,
            channels_last=cfg.channels_last,
        )

    return run

