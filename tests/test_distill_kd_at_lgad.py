"""Logit KD, attention transfer and LGAD: 2-pixel hand values, resizing, gradients, config checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lanekd.distill import DistillConfig, build_distillers, label_to_onehot, teacher_forward
from lanekd.distill.at import ATDistiller
from lanekd.distill.kd import KDDistiller, pixel_kd
from lanekd.distill.lgad import LGADDistiller
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput
from tests.test_distill_common import TinyLaneNet, make_batch, make_output


def _kd_logits() -> tuple[torch.Tensor, torch.Tensor]:
    # pixel 0: student [0, 0], teacher [ln 3, 0]; pixel 1: student [1, 0], teacher [0, 5]
    s = torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]]], requires_grad=True)
    t = torch.tensor([[[[math.log(3.0), 0.0]], [[0.0, 5.0]]]], requires_grad=True)
    return s, t


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(v: list[float]) -> list[float]:
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def test_pixel_kd_two_pixels_with_ignore() -> None:
    s, t = _kd_logits()
    label = torch.tensor([[[0, 255]]])  # pixel 1 ignored
    expected = _kl([0.75, 0.25], [0.5, 0.5])
    assert pixel_kd(s, t, label).item() == pytest.approx(expected, rel=1e-6)
    both = (expected + _kl(_softmax([0, 5]), _softmax([1, 0]))) / 2
    assert pixel_kd(s, t, None).item() == pytest.approx(both, rel=1e-6)
    assert pixel_kd(s, t, torch.tensor([[[255, 255]]])).item() == 0.0


def test_pixel_kd_temperature_scaling() -> None:
    s, t = _kd_logits()
    label = torch.tensor([[[0, 255]]])
    pt = _softmax([math.log(3.0) / 4, 0.0])
    assert pixel_kd(s, t, label, temperature=4.0).item() == pytest.approx(16 * _kl(pt, [0.5, 0.5]), rel=1e-5)


def test_pixel_kd_resizes_teacher_logits() -> None:
    s = torch.zeros(1, 2, 4, 4)
    t_small = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    assert pixel_kd(s, t_small).item() == pytest.approx(_kl([0.75, 0.25], [0.5, 0.5]), rel=1e-6)


def test_kd_distiller_gradients_and_weight() -> None:
    s, t = _kd_logits()
    batch = {"label": torch.tensor([[[0, 1]]])}
    term = KDDistiller(weight=2.0)(LaneOutput(s, None, {}), batch, LaneOutput(t, None, {}), 0, 1)
    assert term.item() == pytest.approx(2.0 * pixel_kd(s, t, batch["label"]).item(), rel=1e-6)
    term.backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_kd_class_mismatch_is_config_error() -> None:
    with pytest.raises(ConfigError, match="classes"):
        build_distillers(["kd"], DistillConfig(), TinyLaneNet(num_classes=5), TinyLaneNet(num_classes=7))


def _one_channel(values: list[float]) -> torch.Tensor:
    """A (1, 1, 1, N) feature whose sum_c A^2 equals ``values``."""
    return torch.tensor(values).sqrt().view(1, 1, 1, -1).clone().requires_grad_(True)


def test_at_two_pixels_by_hand() -> None:
    s, t = _one_channel([1.0, 0.0]), _one_channel([1.0, 1.0])  # q_S = [1, 0], q_T = [1, 1] / sqrt 2
    at = ATDistiller(("block3",), weight=1.0)
    term = at(make_output({"block3": s}), {}, make_output({"block3": t}), 0, 1)
    assert term.item() == pytest.approx(2 - math.sqrt(2), rel=1e-6)
    term.backward()
    assert t.grad is None and s.grad is not None
    # two blocks are summed, the weight multiplies
    two = ATDistiller(("a", "b"), weight=0.1)
    feats = {"a": _one_channel([1.0, 0.0]), "b": _one_channel([0.0, 4.0])}
    tfeats = {"a": _one_channel([1.0, 1.0]), "b": _one_channel([0.0, 1.0])}
    assert two(make_output(feats), {}, make_output(tfeats), 0, 1).item() == pytest.approx(
        0.1 * (2 - math.sqrt(2)), rel=1e-6)


def test_at_upsamples_smaller_map() -> None:
    s, t = _one_channel([1.0, 0.0]), _one_channel([7.0])  # teacher 1x1 -> constant 1x2 map
    term = ATDistiller(("x",), weight=1.0)(make_output({"x": s}), {}, make_output({"x": t}), 0, 1)
    assert term.item() == pytest.approx(2 - math.sqrt(2), rel=1e-6)


def test_lgad_two_pixels_by_hand_and_gradients() -> None:
    s, t = _one_channel([2.0, 4.0]), _one_channel([3.0, 3.0])  # Ψ_S = softmax([2, 4]), Ψ_T = [.5, .5]
    lgad = LGADDistiller(("block2",), gamma=0.1, aggregation="sum")
    term = lgad(make_output({"block2": s}), {}, make_output({"block2": t}), 0, 1)
    ps = _softmax([2.0, 4.0])
    assert term.item() == pytest.approx(0.1 * ((ps[0] - 0.5) ** 2 + (ps[1] - 0.5) ** 2), rel=1e-6)
    term.backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    # a smaller teacher map is upsampled and renormalised: constant 1x1 -> [.5, .5] again
    s2 = _one_channel([2.0, 4.0])
    small = lgad(make_output({"block2": s2}), {}, make_output({"block2": _one_channel([9.0])}), 0, 1)
    assert small.item() == pytest.approx(term.item(), rel=1e-6)


class _Recorder(nn.Module):
    """Wraps a model and records the input it was called with."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.build_args = inner.build_args
        self.feature_channels = inner.feature_channels
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, return_features: bool = False) -> LaneOutput:
        self.seen = x
        return self.inner(x, return_features=return_features)


def test_lgad_teacher_is_fed_the_onehot_label() -> None:
    student = TinyLaneNet(num_classes=5)
    teacher = _Recorder(TinyLaneNet(in_channels=5, num_classes=5, seed=3))
    (d,) = build_distillers(["lgad"], DistillConfig(), student, teacher)
    assert d.teacher_input == "onehot" and d.teacher_features == ("block2", "block3", "block4")
    batch = make_batch(b=2, h=16, w=16)
    t_out = teacher_forward(teacher, batch, [d])
    assert torch.equal(teacher.seen, label_to_onehot(batch["label"], 5))
    term = d(student(batch["image"], return_features=True), batch, t_out, 0, 1)
    term.backward()
    assert term.item() > 0 and all(p.grad is None for p in teacher.parameters())


def test_lgad_rejects_image_teacher() -> None:
    with pytest.raises(ConfigError, match="label-input"):
        build_distillers(["lgad"], DistillConfig(), TinyLaneNet(), TinyLaneNet(in_channels=3))


def test_at_checks_teacher_blocks() -> None:
    teacher = TinyLaneNet()
    teacher.feature_channels = {"block4": 6}
    with pytest.raises(ConfigError, match="block2"):
        build_distillers(["at"], DistillConfig(), TinyLaneNet(), teacher)


def test_lgad_warns_once_when_the_student_attention_saturates() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(4, 8, 6, 8) * 30, torch.randn(4, 8, 6, 8)
    lgad = LGADDistiller(("block2",), gamma=0.1, aggregation="sum")
    lgad(make_output({"block2": s}), {}, make_output({"block2": t}), 0, 1)
    (msg,) = lgad.take_warnings()
    assert msg.startswith("lgad: the attention softmax is saturated") and "--lgad-aggregation zscore" in msg
    lgad(make_output({"block2": s}), {}, make_output({"block2": t}), 0, 1)
    assert lgad.take_warnings() == []
    z = LGADDistiller(("block2",), gamma=0.1, aggregation="zscore")
    z(make_output({"block2": s}), {}, make_output({"block2": t}), 0, 1)
    assert z.take_warnings() == []
