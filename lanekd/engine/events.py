"""What the training loop and its hooks share: a small store (detectron2's ``EventStorage`` idea)
and the reason a run stopped early.

Hooks never look each other up. They publish into :class:`EventStorage` (the latest step's
losses, the latest ``metrics.jsonl`` record of each type, summary values) and read what others
published; :func:`lanekd.engine.build.train` assembles its :class:`TrainResult` from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StopKind = Literal["signal", "after_train", "error"]


@dataclass(frozen=True)
class Interrupt:
    """Why the loop ended without its normal finish; passed to every hook's ``on_interrupt``.

    Attributes:
        kind: ``"signal"`` (SIGINT/SIGTERM after a finished step), ``"after_train"`` (an
            end-of-training hook failed, e.g. the final validation) or ``"error"`` (an exception
            inside the loop: non-finite loss, a second signal, a data error).
        signum: the signal number for ``kind == "signal"``.
        error: the exception for ``"after_train"`` and ``"error"``.
    """

    kind: StopKind
    signum: int | None = None
    error: BaseException | None = None

    @property
    def state_is_good(self) -> bool:
        """Whether the model state is that of a completed step and worth saving (not after an
        error inside a step, where it may be half-updated or non-finite)."""
        return self.kind != "error"


@dataclass
class EventStorage:
    """Values the loop and the hooks publish during one run.

    Attributes:
        losses: the loss terms of the last step, ``loss_total`` included (written by the loop).
        records: the latest record of each ``type`` written to ``metrics.jsonl`` (``"train"``
            by :class:`~lanekd.engine.hooks.MetricsLogger`, ``"val"`` by
            :class:`~lanekd.engine.hooks.ValidationHook`).
        results: summary values for the run's result, e.g. ``metric``, ``best_value``,
            ``best_iter``, ``final_value``, ``last_checkpoint``, ``best_checkpoint``.
    """

    losses: dict[str, float] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def put_losses(self, losses: dict[str, float]) -> None:
        self.losses = dict(losses)

    def put_record(self, record: dict[str, Any] | None) -> None:
        """Keep ``record`` as the latest of its ``type`` (``None`` is ignored: nothing logged yet)."""
        if record is not None:
            self.records[str(record["type"])] = record

    def latest(self, kind: str) -> dict[str, Any] | None:
        """The latest record of type ``kind``, or ``None``."""
        return self.records.get(kind)

    def put_results(self, **values: Any) -> None:
        self.results.update(values)
