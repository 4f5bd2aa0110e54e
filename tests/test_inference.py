"""The inference layer: one ``infer_lanes`` for validation and predict (same lanes, same rule for a
network without an existence branch), and imports that run one way."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from lanekd.decode import get_profile
from lanekd.inference import ModelMeta, TorchBackend, infer_lanes, slot_presence
from lanekd.models.output import LaneOutput

SIZE = (64, 160)


class _NoExistence(nn.Module):
    """Fixed class probabilities, no existence branch: slot 1 wins a vertical stripe; slot 2 never
    wins a pixel but holds 0.35 everywhere (above the 0.3 point threshold)."""

    def __init__(self) -> None:
        super().__init__()
        h, w = SIZE
        p = torch.tensor([0.45, 0.1, 0.35, 0.05, 0.05]).view(5, 1, 1).repeat(1, h, w)
        p[:, :, 70:82] = torch.tensor([0.1, 0.8, 0.05, 0.025, 0.025]).view(5, 1, 1)
        self.register_buffer("logits", p.log())

    def forward(self, x: torch.Tensor, return_features: bool = False) -> LaneOutput:
        return LaneOutput(self.logits.expand(x.shape[0], -1, -1, -1) + 0 * x.mean(), None, {})


def test_slot_presence_rule():
    model = _NoExistence()
    prob = torch.softmax(model.logits[None], dim=1)
    assert slot_presence(prob, prob.new_zeros((1, 0))).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    given = torch.tensor([[0.9, 0.1, 0.2, 0.7]])
    assert slot_presence(prob, given) is given  # an existence branch is used as is


def test_validation_and_predict_decode_the_same_lanes():
    from lanekd.predict.run import decode_batch

    model = _NoExistence().eval()
    prof = get_profile("culane")
    x = torch.zeros(2, 3, *SIZE)
    val_lanes, _, exist = infer_lanes(model, x, prof)  # what evaluate_model scores
    meta = ModelMeta(model="stand-in", input_size=SIZE, source_size=(590, 1640), num_slots=4)
    backend = TorchBackend(model, meta)
    bk_lanes, _, _ = infer_lanes(backend, x.numpy(), prof)
    frames = [np.zeros((590, 1640, 3), np.uint8)] * 2
    pred_lanes = decode_batch(backend, frames)  # what `lanekd predict` writes
    assert exist.tolist() == [[1.0, 0.0, 0.0, 0.0]] * 2
    for a, b, c in zip(val_lanes, bk_lanes, pred_lanes, strict=True):
        assert [len(lane) > 0 for lane in a] == [True, False, False, False]
        for la, lb, lc in zip(a, b, c, strict=True):
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(la, lc)


@pytest.mark.parametrize("module,banned", [
    ("lanekd.export.core", "lanekd.predict"),
    ("lanekd.predict.run", "lanekd.export"),
    ("lanekd.predict.bench", "lanekd.export"),
    ("lanekd.inference.backends", "lanekd.export"),
    ("lanekd.inference.lanes", "lanekd.predict"),
    ("lanekd.inference.checkpoint", "lanekd.engine"),
    ("lanekd.engine.validation", "lanekd.engine.trainer"),
    ("lanekd.engine.trainer", "lanekd.engine.build"),
])
def test_imports_run_one_way(module, banned):
    code = (f"import sys, {module}\n"
            f"bad = [m for m in sys.modules if m == {banned!r} or m.startswith({banned!r} + '.')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
