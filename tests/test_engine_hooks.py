"""The loop's hook protocol and its shared store: every hook gets exactly one of ``after_train`` or
``on_interrupt``; hooks publish into ``trainer.storage`` and the run's result is read from it."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from lanekd.engine import (
    EventStorage,
    HookBase,
    Interrupt,
    TrainingDiverged,
    TrainingInterrupted,
    read_checkpoint,
)
from lanekd.errors import LaneKDError
from tests.test_engine import TinyLaneNet, TinyLanes, run_tiny, tiny_cfg


class _Recorder(HookBase):
    """Records the callbacks it receives; optionally stops the run or poisons the model."""

    def __init__(self, stop_at: int | None = None, poison_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.stops: list[Interrupt] = []
        self.stop_at, self.poison_at = stop_at, poison_at

    def before_train(self) -> None:
        self.calls.append("before_train")

    def after_step(self) -> None:
        t = self.trainer
        if t.iter == self.stop_at:
            t.stop_signal = signal.SIGINT
        if t.iter == self.poison_at:
            with torch.no_grad():
                t.model.head.weight.fill_(float("nan"))

    def after_train(self) -> None:
        self.calls.append("after_train")
        self.seen = dict(self.trainer.storage.results), self.trainer.storage.latest("train")

    def on_interrupt(self, stop: Interrupt) -> None:
        self.calls.append(f"on_interrupt:{stop.kind}")
        self.stops.append(stop)


def test_normal_end_calls_after_train_and_fills_the_store(tmp_path):
    rec = _Recorder()
    res = run_tiny(tmp_path / "r", iters=4, hooks=[rec])
    assert rec.calls == ["before_train", "after_train"]
    # the logger published its last record before the custom hook ran
    _, train_rec = rec.seen
    assert train_rec is not None and train_rec["type"] == "train" and train_rec["iter"] == 4
    # the result is assembled from the store the checkpoint hook published into
    assert res.last_checkpoint == str(tmp_path / "r" / "last.pt")
    assert res.best_checkpoint == str(tmp_path / "r" / "best.pt")  # no --val: the final weights
    assert res.loss_total is not None and res.losses["loss_total"] == res.loss_total
    assert res.metric is None and res.best_iter is None


def test_signal_sends_on_interrupt_and_saves_last(tmp_path):
    rec = _Recorder(stop_at=2)
    with pytest.raises(TrainingInterrupted, match="saved .*last.pt") as ei:
        run_tiny(tmp_path / "s", iters=8, hooks=[rec])
    assert ei.value.exit_code == 130
    assert rec.calls == ["before_train", "on_interrupt:signal"]
    assert rec.stops[0].signum == signal.SIGINT and rec.stops[0].state_is_good
    assert read_checkpoint(tmp_path / "s" / "last.pt")["iteration"] == 2


def test_divergence_sends_an_error_interrupt_and_writes_nothing(tmp_path):
    rec = _Recorder(poison_at=3)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        run_tiny(tmp_path / "d", iters=8, hooks=[rec])
    assert rec.calls == ["before_train", "on_interrupt:error"]
    assert isinstance(rec.stops[0].error, TrainingDiverged) and not rec.stops[0].state_is_good
    assert not (tmp_path / "d" / "last.pt").exists()


def test_failing_final_validation_interrupts_the_hooks_and_keeps_the_weights(tmp_path):
    calls = iter([{"metric": "culane_f1", "value": 0.1}])

    def val(model):
        try:
            return next(calls)
        except StopIteration:
            raise LaneKDError("validation data vanished") from None

    rec = _Recorder()
    torch.manual_seed(0)
    from lanekd.engine import train

    with pytest.raises(LaneKDError, match="after training; the weights are saved in .*last.pt"):
        train(tiny_cfg(tmp_path / "v", iters=4, val_every=2), model=TinyLaneNet(), train_set=TinyLanes(),
              val_evaluate=val, data_attrs={"num_classes": 5, "num_slots": 4}, extra_hooks=[rec])
    # the validation hook failed before the recorder's after_train: it only hears the interrupt
    assert rec.calls == ["before_train", "on_interrupt:after_train"]
    assert read_checkpoint(tmp_path / "v" / "last.pt")["iteration"] == 4
    vals = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in vals if r["type"] == "val"] == [2]


def test_validation_results_come_from_the_store(tmp_path):
    scores = iter([0.3, 0.2])
    rec = _Recorder()
    torch.manual_seed(0)
    from lanekd.engine import train

    res = train(tiny_cfg(tmp_path / "b", iters=4, val_every=2), model=TinyLaneNet(), train_set=TinyLanes(),
                val_evaluate=lambda m: {"metric": "culane_f1", "value": next(scores)},
                data_attrs={"num_classes": 5, "num_slots": 4}, extra_hooks=[rec])
    results, _ = rec.seen
    assert results["best_value"] == 0.3 and results["best_iter"] == 2 and results["final_value"] == 0.2
    assert (res.metric, res.best_value, res.best_iter, res.final_value) == ("culane_f1", 0.3, 2, 0.2)
    assert res.best_checkpoint == str(tmp_path / "b" / "best.pt")


def test_event_storage_keeps_the_latest_record_of_each_type():
    store = EventStorage()
    store.put_record(None)
    store.put_record({"type": "train", "iter": 2})
    store.put_record({"type": "val", "iter": 2, "value": 0.5})
    store.put_record({"type": "train", "iter": 4})
    assert store.latest("train") == {"type": "train", "iter": 4}
    assert store.latest("val")["value"] == 0.5 and store.latest("warning") is None

