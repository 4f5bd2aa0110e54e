"""Best-checkpoint selection of ValidationHook and the progress line, on a stand-in trainer
(no model, no training): which validations may become ``best.pt``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lanekd.distill.sad import SADDistiller
from lanekd.engine.events import EventStorage
from lanekd.engine.hooks import ProgressHook, ValidationHook


class _Trainer(SimpleNamespace):
    """Just what ValidationHook reads: iter, max_iter, distillers, storage, save_checkpoint, barrier."""

    def __init__(self, max_iter: int, distillers=()) -> None:
        super().__init__(iter=0, max_iter=max_iter, distillers=list(distillers), is_main=True, quiet=True,
                         storage=EventStorage(), global_batch=4, lr=0.1, saved=[], model=None)

    def save_checkpoint(self, path, metrics=None) -> None:
        self.saved.append(self.iter)

    def barrier(self) -> None:
        pass


def _validate(values: dict[int, float], max_iter: int, distillers=()) -> tuple[ValidationHook, _Trainer]:
    """Run the hook's schedule: validation at each iteration in ``values`` (the last one at the end)."""
    t = _Trainer(max_iter, distillers)
    hook = ValidationHook(lambda m: {"metric": "culane_f1", "value": values[t.iter]}, 2, None, "best.pt")
    hook.trainer = t
    for i in range(1, max_iter + 1):
        t.iter = i
        if i in values:
            hook.after_step()
    hook.after_train()
    return hook, t


def test_ties_go_to_the_later_checkpoint():
    # F1 0 at every check (an untrained student): best.pt is the last one, not the first
    hook, t = _validate({2: 0.0, 4: 0.0, 6: 0.0}, 6)
    assert hook.best_iter == 6 and t.saved == [2, 4, 6]
    # a strictly better early value still wins over later lower ones
    hook, t = _validate({2: 0.3, 4: 0.5, 6: 0.4}, 6)
    assert hook.best_iter == 4 and hook.best == 0.5


def test_checkpoints_before_a_term_switches_on_are_not_candidates():
    # SAD on from step index 4 (the 5th step): validations after 2 and 4 steps predate it
    sad = SADDistiller(("a", "b"), start=4)
    hook, t = _validate({2: 0.9, 4: 0.8, 6: 0.5, 8: 0.5}, 8, [sad])
    assert t.saved == [6, 8] and hook.best_iter == 8 and hook.best == 0.5
    assert hook.last["best_candidate"] is True


def test_default_sad_start_and_a_term_that_never_switches_on():
    # default start 2/3 of 9 = step 6: after 6 steps SAD has not run yet, after 8 it has
    hook, t = _validate({2: 0.9, 4: 0.9, 6: 0.9, 8: 0.1, 9: 0.1}, 9, [SADDistiller(("a", "b"))])
    assert t.saved == [8, 9] and hook.best_iter == 9
    # a start past the end: the term is never on, so it blocks nothing
    hook, t = _validate({2: 0.9, 4: 0.1}, 4, [SADDistiller(("a", "b"), start=100)])
    assert hook.best_iter == 2 and t.saved == [2]


def test_progress_line_has_the_run_name_and_the_logged_means(capsys: pytest.CaptureFixture):
    t = _Trainer(10)
    hook = ProgressHook(quiet=False, every=10, description="sad-s0")
    hook.trainer = t
    hook.before_train()
    t.iter = 10
    t.storage.put_losses({"loss_seg": 1.0552, "loss_total": 1.0552})  # this step's values
    t.storage.put_record({"type": "train", "iter": 10, "lr": 0.1, "loss_seg": 1.2724, "loss_sad": 0.0,
                          "loss_total": 1.2724})  # what metrics.jsonl holds: the mean since the last record
    hook.after_step()
    line = capsys.readouterr().err
    assert line.startswith("[sad-s0] iter 10/10") and "seg=1.2724" in line and "total=1.2724" in line
    assert "1.0552" not in line and "sad=" not in line
