"""A model must learn: a regression in the loss, the labels or the default recipe shows up here.

Trains ENet-SAD with the default (fast) recipe on a tiny, easy set of bright straight lanes and
checks the lane-pixel IoU on held-out scenes of the same kind, against an untrained network.
Accuracy targets on realistic data live in benchmarks/ and docs/training.md, not here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lanekd.engine import TrainConfig, train
from lanekd.engine.checkpoint import load_checkpoint_model
from lanekd.engine.validation import evaluate_model
from lanekd.models import build_model
from tests.engine_data import tiny_samples


def _prepare(path: Path, n: int, seed: int, split: str) -> Path:
    from lanekd.data import prepare_dataset

    prepare_dataset("culane", path, split=split, size=(64, 160), samples=tiny_samples(n, seed), quiet=True,
                    line_width=4)
    return path


def test_default_recipe_learns_lane_pixels(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    data = _prepare(tmp_path / "train.h5", 32, 0, "train")
    val = _prepare(tmp_path / "val.h5", 12, 1, "val")
    res = train(TrainConfig(data=str(data), iters=250, out=str(tmp_path / "run"), workers=0, quiet=True,
                            ckpt_every=0, log_every=50, seed=0))
    assert res.iterations == 250
    net, _ = load_checkpoint_model(res.last_checkpoint)
    trained = evaluate_model(net, val, per_category=False)
    untrained = evaluate_model(build_model("enet-sad", input_size=(64, 160)).eval(), val, per_category=False)
    # measured: untrained 0.09, trained 0.48 after 250 iterations
    assert trained["pixel_iou"] > 0.3, trained
    assert trained["pixel_iou"] > untrained["pixel_iou"] + 0.2
