"""attention_map and SAD: hand-computed values, schedule, detaching, resizing, label mimic, gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from lanekd.distill import DistillConfig, attention_map, build_distillers
from lanekd.distill.attention import map_mse
from lanekd.distill.sad import SADDistiller, label_attention, resolve_start
from lanekd.errors import ConfigError
from tests.test_distill_common import TinyLaneNet, make_output


def softmax(values: list[float]) -> list[float]:
    e = [math.exp(v) for v in values]
    return [v / sum(e) for v in e]


def test_attention_map_of_known_tensor() -> None:
    # channel 0 = [1, 0], channel 1 = [1, 2]  ->  sum_c A^2 = [2, 4]  ->  softmax
    feat = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])
    att = attention_map(feat)
    assert att.shape == (1, 1, 2)
    expected = [1 / (1 + math.e ** 2), math.e ** 2 / (1 + math.e ** 2)]
    assert att.flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_attention_map_p1_uses_absolute_values() -> None:
    feat = torch.tensor([[[[-1.0, 0.0]], [[1.0, -3.0]]]])  # sum |A| = [2, 3]
    assert attention_map(feat, p=1).flatten().tolist() == pytest.approx(softmax([2, 3]), rel=1e-6)


def test_attention_map_is_per_sample_spatial_softmax() -> None:
    feat = torch.randn(3, 4, 5, 6)
    att = attention_map(feat)
    assert torch.allclose(att.sum(dim=(1, 2)), torch.ones(3))
    # batch of one: a real distribution, not Torch SpatialSoftMax's all-ones map (docs/distill.md)
    single = attention_map(feat[:1])
    assert torch.allclose(single, att[:1]) and single.max() < 1


def test_attention_map_resizes_aggregated_map_before_softmax() -> None:
    feat = torch.tensor([[[[0.0, 2.0]]]])  # G = [0, 4]
    att = attention_map(feat, size=(1, 4))
    # bilinear, half-pixel centres: source x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1)
    assert att.flatten().tolist() == pytest.approx(softmax([0, 1, 3, 4]), rel=1e-6)


def test_attention_map_mean_aggregation_divides_by_channels() -> None:
    feat = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])  # sum_c A^2 = [2, 4], mean = [1, 2]
    att = attention_map(feat, aggregation="mean")
    assert att.flatten().tolist() == pytest.approx(softmax([1, 2]), rel=1e-6)
    with pytest.raises(ValueError, match="aggregation"):
        attention_map(feat, aggregation="max")


def test_attention_map_rejects_non_4d() -> None:
    with pytest.raises(ValueError, match="B, C, H, W"):
        attention_map(torch.zeros(3, 4, 5))


def test_attention_map_gradcheck() -> None:
    feat = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: attention_map(x), (feat,))
    assert torch.autograd.gradcheck(lambda x: attention_map(x, size=(5, 7)), (feat,))
    assert torch.autograd.gradcheck(lambda x: attention_map(x, p=3), (feat,))


def test_map_mse_reductions() -> None:
    a = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])
    b = torch.tensor([[[0.0, 0.0]], [[0.0, 3.0]]])
    # per-sample pixel sums 1 + 4 = 5 and 9; batch mean 7; full mean (1 + 4 + 0 + 9) / 4
    assert map_mse(a, b, "sum-mean").item() == pytest.approx(7.0)
    assert map_mse(a, b, "mean").item() == pytest.approx(3.5)


def _chain() -> dict[str, torch.Tensor]:
    # two samples, 1x2 maps (one channel, sqrt of G):
    # G(block2) = [[1, 0], [0, 0]], G(block3) = [[0, 1], [2, 0]], G(block4) = [[3, 0], [0, 0]]
    def leaf(rows: list[list[float]]) -> torch.Tensor:
        return torch.tensor(rows).sqrt().view(2, 1, 1, 2).clone().requires_grad_(True)

    return {"block2": leaf([[1, 0], [0, 0]]), "block3": leaf([[0, 1], [2, 0]]),
            "block4": leaf([[3, 0], [0, 0]])}


def _sq(a: list[float], b: list[float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def test_sad_value_hand_computed() -> None:
    feats = _chain()
    sad = SADDistiller(("block2", "block3", "block4"), gamma=0.1, start=0, aggregation="sum")
    term = sad(make_output(feats), {}, None, iteration=5, max_iter=10)
    g2, g3, g4 = [[1, 0], [0, 0]], [[0, 1], [2, 0]], [[3, 0], [0, 0]]
    per_sample = [_sq(softmax(g2[i]), softmax(g3[i])) + _sq(softmax(g3[i]), softmax(g4[i])) for i in range(2)]
    assert term.item() == pytest.approx(0.1 * sum(per_sample) / 2, rel=1e-5)


def test_sad_mean_reduction_divides_by_pixels() -> None:
    feats = _chain()
    a = SADDistiller(("block2", "block3"), start=0)(make_output(feats), {}, None, 0, 1)
    b = SADDistiller(("block2", "block3"), start=0, reduction="mean")(make_output(feats), {}, None, 0, 1)
    assert b.item() == pytest.approx(a.item() / 2, rel=1e-6)  # 1x2 maps


def test_sad_detaches_deeper_map() -> None:
    feats = _chain()
    SADDistiller(("block2", "block3"), start=0)(make_output(feats), {}, None, 0, 1).backward()
    assert feats["block2"].grad is not None and feats["block2"].grad.abs().sum() > 0
    assert feats["block3"].grad is None  # the target receives no gradient
    feats = _chain()
    SADDistiller(("block2", "block3"), start=0, detach=False)(make_output(feats), {}, None, 0, 1).backward()
    assert feats["block3"].grad is not None and feats["block3"].grad.abs().sum() > 0


def test_sad_inactive_before_start_is_exact_zero() -> None:
    feats = _chain()
    out = make_output(feats)
    sad = SADDistiller(("block2", "block3", "block4"), gamma=0.1)
    assert resolve_start(None, 60000) == 40000
    before = sad(out, {}, None, iteration=39999, max_iter=60000)
    assert before.item() == 0.0 and not sad.is_active(39999, 60000)
    before.backward()
    assert feats["block2"].grad is None  # no path through the features at all
    assert sad(out, {}, None, iteration=40000, max_iter=60000).item() > 0
    explicit = SADDistiller(("block2", "block3"), start=7)
    assert explicit(out, {}, None, 6, 100).item() == 0.0 and explicit(out, {}, None, 7, 100).item() > 0


def test_sad_upsamples_the_smaller_map() -> None:
    # ERFNet-like: the deeper block is half the size; its constant map upsamples to a uniform target
    shallow = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], requires_grad=True)
    deep = torch.tensor([[[[2.0]]]], requires_grad=True)
    sad = SADDistiller(("a", "b"), gamma=1.0, start=0, aggregation="sum")
    term = sad(make_output({"a": shallow, "b": deep}), {}, None, 0, 1)
    src = softmax([1, 0, 0, 0])
    assert term.item() == pytest.approx(_sq(src, [0.25] * 4), rel=1e-6)


def test_sad_aggregation_option_reaches_the_loss() -> None:
    feats = _chain()
    cfg = DistillConfig(sad_start=0, sad_aggregation="mean", sad_blocks=("block2", "block3"))
    (sad,) = build_distillers(["sad"], cfg, TinyLaneNet(width=1))
    term = sad(make_output(feats), {}, None, 0, 1)  # one channel: mean == sum
    assert term.item() == pytest.approx(SADDistiller(("block2", "block3"), start=0, aggregation="sum")(
        make_output(feats), {}, None, 0, 1).item())
    two = {k: torch.cat([v, v], dim=1) for k, v in _chain().items()}  # two equal channels: mean = G
    assert sad(make_output(two), {}, None, 0, 1).item() == pytest.approx(term.item(), rel=1e-6)


def test_sad_gamma_scales() -> None:
    out = make_output(_chain())
    one = SADDistiller(("block2", "block3"), gamma=1.0, start=0)(out, {}, None, 0, 1)
    tenth = SADDistiller(("block2", "block3"), gamma=0.1, start=0)(out, {}, None, 0, 1)
    assert tenth.item() == pytest.approx(0.1 * one.item(), rel=1e-6)


def test_label_attention() -> None:
    label = torch.zeros(2, 4, 4, dtype=torch.long)
    label[0, 0, 0] = 1
    label[0, 3, 3] = 2
    label[0, 3, 2] = 255  # ignored: not a lane pixel
    maps, has = label_attention(label, (2, 2))
    assert has.tolist() == [True, False]
    assert maps[0].tolist() == [[0.5, 0.0], [0.0, 0.5]]
    assert maps[1].abs().sum() == 0


def test_sad_label_mimic_adds_deepest_to_label_term() -> None:
    feats = _chain()
    label = torch.zeros(2, 2, 4, dtype=torch.long)
    label[0, :, 2:] = 1  # lanes in the right half of sample 0; sample 1 has none
    base = SADDistiller(("block2", "block3", "block4"), gamma=1.0, start=0, aggregation="sum")
    mimic = SADDistiller(("block2", "block3", "block4"), gamma=1.0, start=0, label_mimic=True,
                         aggregation="sum")
    out = make_output(feats)
    extra = mimic(out, {"label": label}, None, 0, 1) - base(out, {"label": label}, None, 0, 1)
    # sample 0: softmax([3, 0]) vs [0, 1]; sample 1 contributes nothing; batch mean over 2
    assert extra.item() == pytest.approx(_sq(softmax([3, 0]), [0.0, 1.0]) / 2, rel=1e-5)


def test_sad_needs_two_blocks() -> None:
    with pytest.raises(ConfigError, match="at least two"):
        SADDistiller(("block4",))


def test_sad_from_config_uses_student_blocks_and_checks_names() -> None:
    student = TinyLaneNet()
    (sad,) = build_distillers(["sad"], DistillConfig(), student)
    assert sad.blocks == ("block2", "block3", "block4") and sad.student_features == sad.blocks
    assert not sad.needs_teacher and sad.loss_name == "loss_sad"
    with pytest.raises(ConfigError, match="block9"):
        build_distillers(["sad"], DistillConfig(sad_blocks=("block2", "block9")), student)


def test_sad_trains_student_features() -> None:
    student = TinyLaneNet()
    (sad,) = build_distillers(["sad"], DistillConfig(sad_start=0), student)
    x = torch.randn(2, 3, 32, 32)
    sad(student(x, return_features=True), {}, None, 0, 10).backward()
    assert student.c2.weight.grad.abs().sum() > 0  # block2 is pulled towards block3
    assert student.head.weight.grad is None  # the head is not on any SAD path


def test_zscore_aggregation_is_scale_free_and_never_one_hot() -> None:
    torch.manual_seed(0)
    feat = 10.0 * torch.randn(2, 16, 6, 10)  # large activations, as after some training
    assert attention_map(feat, aggregation="sum").amax(dim=(1, 2)).min() > 0.99  # saturated
    z = attention_map(feat, aggregation="zscore")
    assert z.amax(dim=(1, 2)).max() < 0.3
    torch.testing.assert_close(z.sum(dim=(1, 2)), torch.ones(2))
    # standardisation makes the map independent of the activations' scale
    torch.testing.assert_close(attention_map(feat * 100.0, aggregation="zscore"), z, rtol=1e-4, atol=1e-6)
    # a constant map (and a single position) gives the uniform distribution
    torch.testing.assert_close(attention_map(torch.ones(1, 4, 3, 5), aggregation="zscore"),
                               torch.full((1, 3, 5), 1 / 15))
    one_position = attention_map(torch.randn(2, 4, 1, 1), aggregation="zscore")
    torch.testing.assert_close(one_position, torch.ones(2, 1, 1))
    g = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: attention_map(t, aggregation="zscore"), (g,))


# ---------------------------------------------------------------- paper preset, upsampling, saturation


def test_paper_preset_sets_the_three_options() -> None:
    d = DistillConfig()
    assert (d.sad_aggregation, d.sad_upsample, d.sad_reduction) == ("zscore", False, "sum-mean")
    paper = DistillConfig(sad_preset="paper")
    assert (paper.sad_aggregation, paper.sad_upsample, paper.sad_reduction) == ("sum", True, "mean")
    (sad,) = build_distillers(["sad"], paper, TinyLaneNet())
    assert (sad.aggregation, sad.upsample, sad.reduction) == ("sum", True, "mean")
    # an explicit value that agrees is fine, one that contradicts is an error; round trip keeps it
    assert DistillConfig(sad_preset="paper", sad_upsample=True) == paper
    assert DistillConfig.from_dict(paper.to_dict()) == paper
    assert DistillConfig.from_dict({"sad_preset": "paper"}) == paper
    with pytest.raises(ConfigError, match="sad_preset paper sets sad_aggregation = 'sum'"):
        DistillConfig(sad_preset="paper", sad_aggregation="zscore")
    with pytest.raises(ConfigError, match="sad_preset must be one of paper"):
        DistillConfig(sad_preset="fast")
    assert DistillConfig(sad_upsample=True).sad_aggregation == "zscore"  # no preset: the defaults


def test_upsampling_compares_the_maps_at_the_input_size() -> None:
    torch.manual_seed(0)
    feats = {"block2": torch.randn(2, 4, 4, 6), "block3": torch.randn(2, 4, 2, 3)}
    batch = {"image": torch.zeros(2, 3, 32, 48)}
    up = SADDistiller(("block2", "block3"), gamma=1.0, start=0, aggregation="sum", upsample=True,
                      reduction="mean")(make_output(feats), batch, None, 0, 1)

    def at_input(f: torch.Tensor) -> torch.Tensor:  # Ψ of the sum map, upsampled to 32x48 first
        g = f.pow(2).sum(dim=1, keepdim=True)
        g = torch.nn.functional.interpolate(g, size=(32, 48), mode="bilinear", align_corners=False)
        return torch.softmax(g.flatten(1), dim=1).view(2, 32, 48)

    ref = (at_input(feats["block2"]) - at_input(feats["block3"])).pow(2).mean()
    assert up.item() == pytest.approx(ref.item(), rel=1e-5)
    plain = SADDistiller(("block2", "block3"), gamma=1.0, start=0, aggregation="sum", reduction="mean")(
        make_output(feats), batch, None, 0, 1)
    assert plain.item() != pytest.approx(up.item(), rel=1e-2)  # without it: compared at 4x6
    # the label-mimic target is drawn at the input size too
    label = torch.zeros(2, 32, 48, dtype=torch.int64)
    label[:, :, 10:12] = 1
    mimic = SADDistiller(("block2", "block3"), gamma=1.0, start=0, upsample=True, label_mimic=True)(
        make_output(feats), {**batch, "label": label}, None, 0, 1)
    assert math.isfinite(mimic.item()) and mimic.item() > 0


def _peaked(scale: float) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {b: (torch.randn(4, 8, 6, 8) * scale).requires_grad_() for b in ("block2", "block3")}


def test_saturation_warns_once_with_sum_and_not_with_zscore() -> None:
    sad = SADDistiller(("block2", "block3"), gamma=1.0, start=0, aggregation="sum")
    feats = _peaked(30.0)  # G spans thousands: the sum's softmax is one-hot, as on BatchNorm networks
    term = sad(make_output(feats), {}, None, 0, 1)
    term.backward()
    assert term.item() > 0 and feats["block2"].grad.abs().max().item() < 1e-6
    (msg,) = sad.take_warnings()
    assert "sad: the attention softmax is saturated" in msg and "block2" in msg
    assert "'sum'" in msg and "--sad-aggregation zscore" in msg
    for _ in range(250):  # checked again later, but a run warns once
        sad(make_output(_peaked(30.0)), {}, None, 0, 1)
    assert sad.take_warnings() == []
    z = SADDistiller(("block2", "block3"), gamma=1.0, start=0, aggregation="zscore")
    z(make_output(_peaked(30.0)), {}, None, 0, 1)
    assert z.take_warnings() == []
    # an unsaturated sum does not warn either
    small = SADDistiller(("block2", "block3"), gamma=1.0, start=0, aggregation="sum")
    small(make_output(_peaked(0.1)), {}, None, 0, 1)
    assert small.take_warnings() == []
    # an inactive term computes nothing and checks nothing
    late = SADDistiller(("block2", "block3"), gamma=1.0, start=10, aggregation="sum")
    late(make_output(_peaked(30.0)), {}, None, 0, 20)
    assert late.take_warnings() == []
