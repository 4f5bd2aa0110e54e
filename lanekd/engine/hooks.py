"""Small hook objects for the training loop (detectron2 style): orthogonal concerns stay out
of the loop body. Each hook sees the trainer through ``self.trainer``, shares values with the
other hooks only through ``self.trainer.storage`` (:class:`~lanekd.engine.events.EventStorage`),
and may carry state that is saved in the checkpoint (``state_dict``/``load_state_dict``).

Order matters and is fixed by :func:`lanekd.engine.build.build_hooks`: metrics log, progress,
validation (so ``best.pt`` carries the fresh metric), TensorBoard, then checkpoint (so
``last.pt`` carries every other hook's state).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanekd.distill.methods import loss_names as distill_loss_names
from lanekd.utils.progress import use_progress_bar

if TYPE_CHECKING:
    from lanekd.engine.events import Interrupt
    from lanekd.engine.trainer import Trainer

#: The supervised terms of :class:`lanekd.engine.losses.LaneLoss`.
SUPERVISED_LOSS_NAMES = ("loss_seg", "loss_exist", "loss_iou")


def loss_names() -> tuple[str, ...]:
    """Loss terms always present in metrics.jsonl (0.0 when a term is not used by the run): the
    supervised terms, then every registered distillation method's (:mod:`lanekd.distill.methods`)."""
    return (*SUPERVISED_LOSS_NAMES, *distill_loss_names())


#: :func:`loss_names` of the built-in methods (a method registered later is logged too).
LOSS_NAMES = loss_names()


class HookBase:
    """Base class: every method is a no-op.

    The loop calls ``before_train`` once, ``after_step`` after every step, and then exactly one
    of ``after_train`` (the run reached ``max_iter``) or ``on_interrupt`` (it stopped early; see
    :class:`~lanekd.engine.events.Interrupt`). When an ``after_train`` raises, every hook then
    gets ``on_interrupt`` with ``kind == "after_train"``, so a failing final validation never
    loses the finished weights.
    """

    trainer: Trainer

    def before_train(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def on_interrupt(self, stop: Interrupt) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class MetricsLogger(HookBase):
    """Append one JSON object per logged iteration to ``DIR/metrics.jsonl``.

    Training records: ``{"type": "train", "iter", "epoch", "lr", "img_s", "time", <every loss
    term>, "loss_total"}`` with each loss averaged over the iterations since the previous record.
    Validation records are written by :class:`ValidationHook` through :meth:`write`; warnings a
    distillation term raises (``Distiller.take_warnings``) become ``{"type": "warning"}`` records
    and a line on stderr. On resume,
    records past the resumed iteration (logged after the last checkpoint) are dropped.
    """

    def __init__(self, path: str | Path, every: int = 10) -> None:
        self.path = Path(path)
        self.every = every
        self._sums: dict[str, float] = {}
        self._count = 0
        self._t0 = 0.0
        self._images = 0

    def before_train(self) -> None:
        start = self.trainer.iter
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if start > 0 and self.path.exists():
            kept = [
                ln
                for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("iter", 0) <= start
            ]
            self.path.write_text("".join(k + "\n" for k in kept))
        elif start == 0:
            self.path.write_text("")
        self._t0 = time.perf_counter()

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def after_step(self) -> None:
        t = self.trainer
        for k, v in t.storage.losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1
        self._images += t.global_batch
        self._report_warnings()
        if t.iter % self.every and t.iter != t.max_iter:
            return
        now = time.perf_counter()
        rec: dict[str, Any] = {"type": "train", "iter": t.iter, "epoch": t.epoch_float, "lr": t.lr}
        names = loss_names()
        for name in (*names, *sorted(k for k in self._sums if k not in names and k != "loss_total")):
            rec[name] = self._sums.get(name, 0.0) / self._count
        rec["loss_total"] = self._sums.get("loss_total", 0.0) / self._count
        rec["img_s"] = self._images / max(now - self._t0, 1e-9)
        rec["time"] = time.time()
        t.storage.put_record(rec)
        self.write(rec)
        self._sums, self._count, self._images, self._t0 = {}, 0, 0, now

    def _report_warnings(self) -> None:
        """What the distillation terms flagged (e.g. a saturated attention softmax), each once: on
        stderr and as a ``{"type": "warning", "iter", "message"}`` record."""
        t = self.trainer
        for d in getattr(t, "distillers", ()):
            for msg in getattr(d, "take_warnings", list)():
                print(f"warning: {msg}", file=sys.stderr, flush=True)
                self.write({"type": "warning", "iter": t.iter, "message": msg})


class ProgressHook(HookBase):
    """A rich progress bar (loss terms, lr, img/s, ETA) on a terminal; plain log lines on stderr
    when not a terminal; nothing with ``quiet`` (the CLI prints the summary)."""

    def __init__(self, quiet: bool = False, every: int = 10, description: str = "train") -> None:
        self.quiet = quiet
        self.every = every
        self.description = description
        self._progress: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._start_iter = 0

    def before_train(self) -> None:
        self._t0 = time.perf_counter()
        self._start_iter = self.trainer.iter
        if use_progress_bar(self.quiet):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.trainer.max_iter, completed=self.trainer.iter, info=""
            )

    def _info(self) -> str:
        t = self.trainer
        done = t.iter - self._start_iter
        img_s = done * t.global_batch / max(time.perf_counter() - self._t0, 1e-9)
        # the losses of the metrics.jsonl record just written (means over its interval), so the
        # console and the log agree; the single step's values between records
        rec = t.storage.latest("train")
        rec = rec if rec is not None and rec["iter"] == t.iter else None
        losses = {k: v for k, v in rec.items() if k.startswith("loss_")} if rec else t.storage.losses
        terms = " ".join(f"{k[5:]}={v:.4f}" for k, v in losses.items() if v != 0.0 or k == "loss_total")
        return f"{terms} lr={t.lr:.2e} {img_s:.1f} img/s"

    def after_step(self) -> None:
        if self.quiet:
            return
        t = self.trainer
        if self._progress is not None:
            self._progress.update(self._task, completed=t.iter, info=self._info())
        elif t.iter % self.every == 0 or t.iter == t.max_iter:
            done = t.iter - self._start_iter
            elapsed = time.perf_counter() - self._t0
            eta = elapsed / max(done, 1) * (t.max_iter - t.iter)
            print(
                f"[{self.description}] iter {t.iter}/{t.max_iter} {self._info()} eta {eta:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def after_train(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_interrupt(self, stop: Interrupt) -> None:
        self.after_train()  # give the terminal back before the error message


class ValidationHook(HookBase):
    """Validate every ``every`` iterations (0 = only at the end) and keep ``best.pt`` for the
    highest metric (CULane F1 or TuSimple accuracy). Runs on rank 0; other ranks wait.

    Only checkpoints at which every distillation term that switches on during the run is already
    on are candidates (SAD starts late by default; an earlier checkpoint would be a network
    trained without it), and a tie goes to the later checkpoint (a plateau keeps the network
    trained longest). The last validation is always a candidate, so ``best.pt`` always exists.
    """

    def __init__(
        self, evaluate_fn: Any, every: int, logger: MetricsLogger | None, best_path: str | Path
    ) -> None:
        self.evaluate_fn = evaluate_fn
        self.every = every
        self.logger = logger
        self.best_path = Path(best_path)
        self.best: float = -math.inf
        self.best_iter = -1
        self.last: dict[str, Any] | None = None

    def terms_on(self) -> bool:
        """Whether every distillation term that is on at the run's last step was on in the step
        just done (``is_active`` takes the 0-based index of a step)."""
        t = self.trainer
        return all(
            d.is_active(t.iter - 1, t.max_iter) or not d.is_active(t.max_iter - 1, t.max_iter)
            for d in getattr(t, "distillers", ())
        )

    def _run(self) -> None:
        t = self.trainer
        if t.is_main:
            result = self.evaluate_fn(t.model)
            candidate = self.terms_on()
            self.last = {"type": "val", "iter": t.iter, **result, "best_candidate": candidate}
            t.storage.put_record(self.last)
            if self.logger is not None:
                self.logger.write(self.last)
            if candidate and result["value"] >= self.best:
                self.best, self.best_iter = float(result["value"]), t.iter
                t.save_checkpoint(self.best_path, metrics=self.last)
            if not t.quiet:
                note = "" if candidate else "; not a best candidate: a distillation term is still off"
                print(
                    f"[val] iter {t.iter}: {result['metric']} = {result['value']:.4f} "
                    f"(best {self.best:.4f} @ {self.best_iter}{note})",
                    file=sys.stderr,
                    flush=True,
                )
        t.barrier()

    def after_step(self) -> None:
        t = self.trainer
        if self.every and t.iter % self.every == 0 and t.iter != t.max_iter:
            self._run()

    def after_train(self) -> None:
        t = self.trainer
        if t.iter == t.max_iter and (self.last is None or self.last["iter"] != t.iter):
            self._run()
        found = self.best_iter >= 0
        t.storage.put_results(
            metric=self.last["metric"] if self.last else None,
            final_value=self.last["value"] if self.last else None,
            best_value=self.best if found else None,
            best_iter=self.best_iter if found else None,
            best_checkpoint=str(self.best_path) if self.best_path.exists() else None,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_iter": self.best_iter, "last": self.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_iter, self.last = state["best"], state["best_iter"], state["last"]
        self.trainer.storage.put_record(self.last)


class TensorBoardHook(HookBase):
    """Mirror the metrics records into TensorBoard event files (``tensorboard`` extra)."""

    def __init__(self, log_dir: str | Path) -> None:
        from lanekd.errors import ConfigError

        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "--tensorboard needs the tensorboard package: pip install 'lanekd[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(str(log_dir))
        self._logged = -1

    def after_step(self) -> None:
        t = self.trainer
        rec = t.storage.latest("train")
        if rec is not None and rec["iter"] != self._logged:
            self._logged = rec["iter"]
            for k, v in rec.items():
                if k.startswith("loss_") or k in ("lr", "img_s"):
                    self.writer.add_scalar(f"train/{k}", v, rec["iter"])
        val = t.storage.latest("val")
        if val is not None and val["iter"] == t.iter:
            self.writer.add_scalar(f"val/{val['metric']}", val["value"], t.iter)

    def after_train(self) -> None:
        self.writer.close()

    def on_interrupt(self, stop: Interrupt) -> None:
        self.writer.close()  # flush what was logged up to the stop


class CheckpointHook(HookBase):
    """Write ``last.pt`` every ``every`` iterations (0 = only at the end) and at the end.

    ``final_copy`` (``best.pt`` of a run without validation) also receives the final weights, so
    ``OUT/best.pt`` names a usable checkpoint whether or not the run validated. On an interrupt
    with a good state (a signal, a failing end-of-training hook) ``last.pt`` is written too.
    Publishes ``last_checkpoint`` (and ``best_checkpoint`` for ``final_copy``) once the file
    exists; the loop names it in its divergence and interrupt messages.
    """

    def __init__(self, path: str | Path, every: int, final_copy: str | Path | None = None) -> None:
        self.path = Path(path)
        self.every = every
        self.final_copy = Path(final_copy) if final_copy is not None else None

    def _save(self) -> None:
        self.trainer.save_checkpoint(self.path)  # rank 0 writes; every rank names the same file
        self.trainer.storage.put_results(last_checkpoint=str(self.path))

    def before_train(self) -> None:
        # resumed (or left by an earlier run): the last good state so far
        if self.path.is_file():
            self.trainer.storage.put_results(last_checkpoint=str(self.path))
        if self.final_copy is not None and self.final_copy.is_file():
            self.trainer.storage.put_results(best_checkpoint=str(self.final_copy))

    def after_step(self) -> None:
        t = self.trainer
        if self.every and t.iter % self.every == 0 and t.iter != t.max_iter:
            self._save()

    def after_train(self) -> None:
        t = self.trainer
        if t.iter == t.max_iter:
            self._save()
            if self.final_copy is not None:
                t.save_checkpoint(self.final_copy)
                t.storage.put_results(best_checkpoint=str(self.final_copy))

    def on_interrupt(self, stop: Interrupt) -> None:
        if stop.state_is_good:
            self._save()
