"""IntRA-KD: AOI masks (against cv2), moments and graphs (by hand and numpy), loss, gradients."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from lanekd.distill import DistillConfig, build_distillers, teacher_forward
from lanekd.distill.intra_kd import (
    IntraKDDistiller,
    affinity_graphs,
    aoi_masks,
    region_graphs,
    region_moments,
)
from lanekd.errors import ConfigError
from tests.test_distill_common import TinyLaneNet, make_batch, make_output


@pytest.mark.parametrize("size", [(5, 7), (6, 9), (40, 56)])
def test_aoi_masks_match_cv2_blur_then_resize(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, size=(40, 56))
    label[rng.random(label.shape) < 0.1] = 255
    got = aoi_masks(torch.from_numpy(label)[None], 4, size, kernel=11)[0].numpy()
    for k in range(4):
        mask = (label == k).astype(np.float32)
        expected = cv2.resize(cv2.blur(mask, (11, 11)), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        assert np.allclose(got[k], expected, atol=1e-5), k
    assert np.all(got[3] == 0)  # class 3 is absent: an all-zero AOI


def test_aoi_masks_kernel1_same_size_is_onehot() -> None:
    label = torch.tensor([[[0, 1], [255, 1]]])
    masks = aoi_masks(label, 3, (2, 2), kernel=1)
    assert masks[0, 0].tolist() == [[1, 0], [0, 0]]
    assert masks[0, 1].tolist() == [[0, 1], [0, 1]]
    assert masks[0, 2].abs().sum() == 0


def test_region_moments_by_hand() -> None:
    # channel 0 = [[1, 2], [3, 4]], channel 1 = [[0, 1], [0, 1]]; region 0 = top row (hard mask)
    feat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    masks = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    mom = region_moments(feat, masks, "aoi")
    assert mom.shape == (1, 3, 2, 2)
    assert mom[0, 0, 0].tolist() == pytest.approx([1.5, 0.5])  # means
    assert mom[0, 1, 0].tolist() == pytest.approx([0.25, 0.25])  # variances
    assert mom[0, 2, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # symmetric: no skew
    assert mom[0, :, 1].abs().sum() == 0  # empty region: zero moments
    hw = region_moments(feat, masks, "hw")  # Z = 4 instead of 2
    assert hw[0, 0, 0].tolist() == pytest.approx([0.75, 0.25])


def _numpy_moments(feat: np.ndarray, masks: np.ndarray, normaliser: str, eps: float) -> np.ndarray:
    """Direct loop transcription of the IntRA-KD paper's affinity graph (float64)."""
    b, c, h, w = feat.shape
    n = masks.shape[1]
    out = np.zeros((b, 3, n, c))
    for i in range(b):
        for k in range(n):
            m = masks[i, k]
            z = float((m > 0).sum()) if normaliser == "aoi" else float(h * w)
            if z == 0:
                continue
            for ch in range(c):
                f = feat[i, ch]
                mu1 = (m * f).sum() / z
                mu2 = (m * (f - mu1) ** 2).sum() / z
                sigma = math.sqrt(mu2 + eps)
                mu3 = (m * ((f - mu1) / sigma) ** 3).sum() / z
                out[i, :, k, ch] = (mu1, mu2, mu3)
    return out


@pytest.mark.parametrize("normaliser", ["aoi", "hw"])
def test_region_moments_match_numpy_loops(normaliser: str) -> None:
    rng = np.random.default_rng(1)
    feat = rng.normal(size=(2, 3, 5, 6)) + 2.0
    label = rng.integers(0, 3, size=(2, 20, 24))
    label[0][label[0] == 2] = 1  # class 2 absent in sample 0
    masks = aoi_masks(torch.from_numpy(label), 3, (5, 6), kernel=5).double()
    got = region_moments(torch.from_numpy(feat), masks, normaliser, eps=1e-10).numpy()
    expected = _numpy_moments(feat, masks.numpy(), normaliser, 1e-10)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-12)
    got32 = region_moments(torch.from_numpy(feat).float(), masks.float(), normaliser).numpy()
    assert np.allclose(got32, expected, rtol=1e-4, atol=1e-5)


def test_affinity_graphs_by_hand() -> None:
    v = torch.tensor([[[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]])  # (B=1, P=1, n=3, c=2)
    g = affinity_graphs(v)[0, 0]
    r = 1 / math.sqrt(2)
    assert g.tolist() == [pytest.approx([1, r, 0]), pytest.approx([r, 1, 0]), [0, 0, 0]]


def test_affinity_graph_zero_vector_gradient_is_finite() -> None:
    v = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]]], requires_grad=True)
    (affinity_graphs(v) * torch.randn(1, 1, 2, 2)).sum().backward()
    assert torch.isfinite(v.grad).all()


def _hand_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Label [0,0,0,1,1,1]; student regions ch0 (0,0,3)|(1,1,1), ch1 (1,1,1)|(0,0,3);
    teacher (0,0,3)|(0,0,3)."""
    label = torch.tensor([[[0, 0, 0, 1, 1, 1]]])
    student = torch.tensor([[[[0.0, 0.0, 3.0, 1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0, 0.0, 0.0, 3.0]]]])
    teacher = torch.tensor([[[[0.0, 0.0, 3.0, 0.0, 0.0, 3.0]]]])
    return label, student, teacher


def test_region_graphs_and_loss_by_hand() -> None:
    # (0,0,3): mean 1, variance 2, skewness ((-1)^3 + (-1)^3 + 2^3) / 3 / 2^1.5 = 1/sqrt(2); (1,1,1): 1, 0, 0
    label, student, teacher = _hand_case()
    mom = region_moments(student, aoi_masks(label, 2, (1, 6), kernel=1))
    assert mom[0, :, 0].tolist() == [pytest.approx([1, 1]), pytest.approx([2, 0]),
                                     pytest.approx([1 / math.sqrt(2), 0], abs=1e-6)]
    gs = region_graphs(student, label, 2, kernel=1)[0]
    gt = region_graphs(teacher, label, 2, kernel=1)[0]
    eye, ones = torch.eye(2), torch.ones(2, 2)
    assert torch.allclose(gs[0], ones)
    assert torch.allclose(gs[1], eye, atol=1e-6) and torch.allclose(gs[2], eye, atol=1e-6)
    assert torch.allclose(gt, ones.expand(3, 2, 2))
    # L = mean((1-1)^2) + mean((I-1)^2) + mean((I-1)^2) = 0 + 0.5 + 0.5; alpha = 2
    kd = IntraKDDistiller(alpha=2.0, kernel=1)
    s_out = make_output({"encoder": student}, seg=torch.zeros(1, 2, 1, 6))
    t_out = make_output({"encoder": teacher}, seg=torch.zeros(1, 2, 1, 6))
    term = kd(s_out, {"label": label}, t_out, 0, 1)
    assert term.item() == pytest.approx(2.0 * 1.0, rel=1e-5)


def test_region_graphs_gradcheck() -> None:
    rng = np.random.default_rng(2)
    label = torch.from_numpy(rng.integers(0, 3, size=(1, 8, 8)))
    feat = torch.tensor(rng.normal(size=(1, 2, 4, 4)), requires_grad=True)
    for normaliser in ("aoi", "hw"):
        fn = lambda x, nm=normaliser: region_graphs(x, label, 3, kernel=3, normaliser=nm)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (feat,))


def test_constant_channel_gives_finite_gradient() -> None:
    feat = torch.randn(1, 3, 4, 4)
    feat[:, 1] = 0.0  # a dead ReLU channel: variance 0 in every region
    feat[:, 2] = 1.5  # a constant channel
    feat.requires_grad_(True)
    label = torch.randint(0, 3, (1, 8, 8))
    (region_graphs(feat, label, 3, kernel=3) * torch.randn(1, 3, 3, 3)).sum().backward()
    assert torch.isfinite(feat.grad).all()


def test_intra_kd_teacher_gets_no_gradient_student_does() -> None:
    batch = make_batch(b=2, h=16, w=16, num_classes=3)
    s_feat = torch.randn(2, 4, 4, 4, requires_grad=True)
    t_feat = torch.randn(2, 7, 2, 2, requires_grad=True)  # other channels and size: own AOIs
    s_out = make_output({"encoder": s_feat}, seg=torch.zeros(2, 3, 16, 16))
    t_out = make_output({"encoder": t_feat}, seg=torch.zeros(2, 3, 16, 16))
    term = IntraKDDistiller(alpha=1.0)(s_out, batch, t_out, 0, 1)
    assert term.item() > 0
    term.backward()
    assert t_feat.grad is None
    assert s_feat.grad is not None and s_feat.grad.abs().sum() > 0


def test_intra_kd_alpha_scales_and_zero_alpha_is_exact_zero() -> None:
    batch = make_batch(b=1, h=16, w=16, num_classes=3)
    seg = torch.zeros(1, 3, 16, 16, requires_grad=True)
    s_out = make_output({"encoder": torch.randn(1, 4, 4, 4)}, seg=seg)
    t_out = make_output({"encoder": torch.randn(1, 4, 4, 4)}, seg=torch.zeros(1, 3, 16, 16))
    one = IntraKDDistiller(alpha=1.0)(s_out, batch, t_out, 0, 1)
    assert IntraKDDistiller(alpha=0.5)(s_out, batch, t_out, 0, 1).item() == pytest.approx(0.5 * one.item())
    assert IntraKDDistiller(alpha=0.0)(s_out, batch, t_out, 0, 1).item() == 0.0


def test_intra_kd_from_config_with_models() -> None:
    student, teacher = TinyLaneNet(width=4, seed=1), TinyLaneNet(width=8, seed=2)
    (d,) = build_distillers(["intra-kd"], DistillConfig(intra_kd_alpha=3.0), student, teacher)
    assert d.needs_teacher and d.teacher_input == "image" and d.loss_name == "loss_intra_kd"
    assert d.student_features == ("encoder",) and d.teacher_features == ("encoder",)
    batch = make_batch(b=2, h=32, w=32)
    out = student(batch["image"], return_features=True)
    term = d(out, batch, teacher_forward(teacher, batch, [d]), 0, 10)
    term.backward()
    assert torch.isfinite(term) and student.c4.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ConfigError, match="classes"):
        build_distillers(["intra-kd"], DistillConfig(), student, TinyLaneNet(num_classes=7))
    with pytest.raises(ConfigError, match="nope"):
        build_distillers(["intra-kd"], DistillConfig(intra_kd_student_feature="nope"), student, teacher)



def test_checkpointed_and_plain_paths_agree() -> None:
    feat = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    masks = aoi_masks(torch.randint(0, 4, (2, 8, 10)), 4, (4, 5), kernel=3).double()
    with torch.no_grad():
        plain = region_moments(feat, masks)  # no checkpointing without grad
    graded = region_moments(feat.clone().requires_grad_(True), masks)
    assert torch.allclose(plain, graded.detach())
