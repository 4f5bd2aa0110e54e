"""The training loop shared by ``train-teacher`` and ``distill``.

:class:`Trainer` is a plain loop (forward, supervised loss + distillation terms, backward,
optimiser and per-iteration LR step) with checkpointing, validation and logging delegated to
hooks (:mod:`lanekd.engine.hooks`) that share values through an
:class:`~lanekd.engine.events.EventStorage`. Building a run from a
:class:`~lanekd.engine.config.TrainConfig` lives in :mod:`lanekd.engine.build`
(``lanekd.engine.train``).
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lanekd.engine.checkpoint import rng_state, save_checkpoint, set_rng_state
from lanekd.engine.dist import DistContext
from lanekd.engine.events import EventStorage, Interrupt
from lanekd.engine.hooks import HookBase
from lanekd.engine.losses import onehot_label
from lanekd.engine.sampler import ResumableBatchSampler
from lanekd.errors import LaneKDError


class TrainingInterrupted(LaneKDError):
    """SIGINT/SIGTERM arrived; ``last.pt`` was saved. ``exit_code`` is 130 or 143."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TrainingDiverged(LaneKDError):
    """The loss became NaN or infinite; the last good checkpoint is kept untouched."""


def progressive_size(size: tuple[int, int], width: int, multiple: int = 8) -> tuple[int, int]:
    """``(H, W)`` scaled to ``width`` (height alike, rounded to a multiple of ``multiple``)."""
    h, w = size
    return max(multiple, round(h * width / w / multiple) * multiple), width


def scale_batch(batch: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """A training batch at a smaller ``size`` for progressive resizing.

    ``image`` ``(B, 3, H, W)`` is resized bilinearly with antialiasing and ``label`` ``(B, H, W)``
    by nearest neighbour (class ids and the ignore value stay exact); every other entry is passed
    through.
    """
    out = dict(batch)
    if "image" in batch:
        out["image"] = torch.nn.functional.interpolate(
            batch["image"], size=size, mode="bilinear", align_corners=False, antialias=True)
    label = batch["label"]
    out["label"] = torch.nn.functional.interpolate(
        label[:, None].float(), size=size, mode="nearest-exact")[:, 0].to(label.dtype)
    return out


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
        progressive: ``(width, iters)``: the first ``iters`` iterations train on batches scaled
            down to ``width`` (:func:`scale_batch`; the model gets ``resize_exist=True``); batches
            no wider than ``width`` stay as they are.
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
        progressive: tuple[int, int] = (0, 0),
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
        self.progressive_width, self.progressive_iters = progressive
        self.storage = EventStorage()
        self.hooks: list[HookBase] = []
        for h in hooks:
            self.register_hook(h)
        self.iter = 0
        self.seconds_before = 0.0  # time spent in train() before a resume, read from the checkpoint
        self._started: float | None = None
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
            "train_seconds": self.train_seconds,
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
        self.seconds_before = float(ckpt.get("train_seconds") or 0.0)  # absent before it was recorded
        for h in self.hooks:
            s = ckpt.get("hooks", {}).get(type(h).__name__)
            if s:
                h.load_state_dict(s)
        set_rng_state(ckpt["rng"], self.loader_generator)

    def save_checkpoint(self, path: str | Path, metrics: dict[str, Any] | None = None) -> None:
        """Atomically write the full training state plus the constant metadata (rank 0 only)."""
        if not self.is_main:
            return
        metrics = metrics or self.storage.latest("val")
        state = {**self.checkpoint_extra, **self.state_dict(), "metrics": metrics}
        save_checkpoint(path, state)

    # --- the loop
    @property
    def train_seconds(self) -> float:
        """Seconds spent in :meth:`train` on this run, summed over resumes (up to the checkpoint each
        resume started from: the time between a run's last checkpoint and its interruption is lost
        with its iterations)."""
        now = 0.0 if self._started is None else time.perf_counter() - self._started
        return self.seconds_before + now

    def train(self) -> None:
        """Run to ``max_iter``; every hook then gets ``after_train``, or ``on_interrupt`` when the
        loop stops early (see :class:`~lanekd.engine.hooks.HookBase`)."""
        self._started = time.perf_counter()
        try:
            self._train()
        finally:  # the clock stops with the loop
            self.seconds_before, self._started = self.train_seconds, None

    def _train(self) -> None:
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
        except TrainingInterrupted:
            raise  # the hooks were told by _interrupted
        except BaseException as e:
            self._interrupt_hooks(Interrupt("error", error=e))
            raise
        self._finish()

    def _interrupt_hooks(self, stop: Interrupt) -> None:
        for h in self.hooks:
            h.on_interrupt(stop)

    def _finish(self) -> None:
        """End-of-training hooks. If one fails (the final validation, say), the hooks get an
        ``after_train`` interrupt, which writes ``last.pt``: a finished training is never lost to
        a failing validation."""
        try:
            for h in self.hooks:
                h.after_train()
        except Exception as e:
            self._interrupt_hooks(Interrupt("after_train", error=e))
            saved = self.storage.results.get("last_checkpoint")
            if saved and isinstance(e, LaneKDError):
                raise LaneKDError(f"{e} (after training; the weights are saved in {saved})") from None
            raise

    def _interrupted(self) -> None:
        sig = self.stop_signal if self.stop_signal is not None else signal.SIGTERM
        self._interrupt_hooks(Interrupt("signal", signum=int(sig)))
        path = self.storage.results.get("last_checkpoint")
        where = f"; saved {path} (continue with --resume)" if path else ""
        name = signal.Signals(sig).name
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

    def small_size(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """The input size of the progressive stage for data of ``size`` ``(H, W)``, or ``None``
        when there is none (off, or the data is no wider than the stage)."""
        h, w = int(size[0]), int(size[1])
        if not self.progressive_iters or not 0 < self.progressive_width < w:
            return None
        return progressive_size((h, w), self.progressive_width)

    def run_step(self, batch: dict[str, Any]) -> None:
        """One optimisation step on one batch; updates ``iter`` and ``storage.losses``."""
        batch = self._to_device(batch)
        small = self.small_size(batch["label"].shape[-2:]) if self.iter < self.progressive_iters else None
        if small is not None:
            batch = scale_batch(batch, small)
        label = batch["label"]
        if self.label_input_classes:
            x = onehot_label(label, self.label_input_classes)
        else:
            x = batch["image"]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        with self._autocast():
            extra = {"resize_exist": True} if small is not None else {}  # stand-in models lack the flag
            out = self.forward_model(x, return_features=self._need_features, **extra)
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
            kept = self.storage.results.get("last_checkpoint")
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
        self.storage.put_losses(dict(zip([*losses, "loss_total"], values, strict=True)))

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


@contextlib.contextmanager
def signal_handlers(trainer: Trainer) -> Iterator[None]:
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
