"""DistillConfig and the method registry: defaults, help text, parsing, errors, combinations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lanekd.distill import (
    METHODS,
    DistillConfig,
    build_distillers,
    parse_methods,
    required_features,
    teacher_forward,
    teacher_input_kind,
)
from lanekd.errors import ConfigError
from tests.test_distill_common import TinyLaneNet, make_batch


def test_config_spec_defaults() -> None:
    cfg = DistillConfig()
    assert (cfg.sad_gamma, cfg.sad_start, cfg.sad_blocks, cfg.sad_p) == (0.1, None, None, 2.0)
    assert cfg.sad_detach and not cfg.sad_label_mimic and cfg.sad_reduction == "sum-mean"
    assert (cfg.intra_kd_kernel, cfg.intra_kd_normaliser, cfg.intra_kd_eps) == (11, "aoi", 1e-10)
    assert (cfg.intra_kd_student_feature, cfg.intra_kd_teacher_feature) == ("encoder", "encoder")
    assert cfg.lgad_gamma == 0.1 and cfg.at_p == 2.0 and cfg.kd_temperature == 1.0


def test_every_field_has_help_text() -> None:
    for f in dataclasses.fields(DistillConfig):
        assert f.metadata.get("help"), f.name
        assert "\n" not in f.metadata["help"]


@pytest.mark.parametrize("kwargs, match", [
    ({"sad_gamma": -1.0}, "sad_gamma"),
    ({"kd_temperature": 0.0}, "kd_temperature"),
    ({"intra_kd_kernel": 4}, "odd"),
    ({"sad_reduction": "max"}, "sum-mean"),
    ({"intra_kd_normaliser": "bad"}, "aoi"),
    ({"sad_start": -5}, "sad_start"),
    ({"at_blocks": ()}, "at_blocks"),
    ({"intra_kd_alpha": float("nan")}, "intra_kd_alpha"),
])
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DistillConfig(**kwargs)


def test_config_from_dict_coerces_flag_strings_and_round_trips() -> None:
    cfg = DistillConfig.from_dict({"sad_blocks": "block3, block4", "sad_start": "40000",
                                   "sad_detach": "false", "kd_temperature": "4", "at_blocks": ["block4"]})
    assert cfg.sad_blocks == ("block3", "block4") and cfg.sad_start == 40000 and cfg.sad_detach is False
    assert cfg.kd_temperature == 4.0 and cfg.at_blocks == ("block4",)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown distillation option"):
        DistillConfig.from_dict({"sad_gama": 0.2})
    with pytest.raises(ConfigError, match="sad_detach"):
        DistillConfig.from_dict({"sad_detach": "maybe"})
    with pytest.raises(ConfigError, match="sad_start"):
        DistillConfig.from_dict({"sad_start": 1.5})


def test_parse_methods() -> None:
    assert parse_methods("sad,kd") == ["sad", "kd"]
    assert parse_methods(["sad", "intra-kd"]) == ["sad", "intra-kd"]
    assert parse_methods(["none"]) == [] and parse_methods("none") == []
    assert METHODS == ("none", "sad", "intra-kd", "lgad", "kd", "at")


@pytest.mark.parametrize("methods, match", [
    (["sad,bogus"], r"unknown distillation method 'bogus' \(valid: none, sad, intra-kd, lgad, kd, at\)"),
    (["none,sad"], "cannot be combined"),
    (["sad", "sad"], "more than once"),
    ([""], "no distillation method"),
])
def test_parse_methods_errors(methods: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_methods(methods)


@pytest.mark.parametrize("method", ["intra-kd", "lgad", "kd", "at"])
def test_teacher_required(method: str) -> None:
    with pytest.raises(ConfigError, match="needs a teacher"):
        build_distillers([method], DistillConfig(), TinyLaneNet())


def test_teacher_inputs_must_agree() -> None:
    label_teacher = TinyLaneNet(in_channels=5)
    with pytest.raises(ConfigError, match="differently fed teachers"):
        build_distillers(["lgad,kd"], DistillConfig(), TinyLaneNet(), label_teacher)


def test_none_builds_nothing() -> None:
    assert build_distillers(["none"], DistillConfig(), TinyLaneNet()) == []


def test_distiller_attributes() -> None:
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=1)
    ds = build_distillers(["sad,intra-kd,kd,at"], None, student, teacher)
    assert [d.name for d in ds] == ["sad", "intra-kd", "kd", "at"]
    assert [d.loss_name for d in ds] == ["loss_sad", "loss_intra_kd", "loss_kd", "loss_at"]
    assert [d.needs_teacher for d in ds] == [False, True, True, True]
    assert teacher_input_kind(ds) == "image" and teacher_input_kind(ds[:1]) is None
    s_names, t_names = required_features(ds)
    assert s_names == ("block2", "block3", "block4", "encoder")
    assert t_names == ("encoder", "block2", "block3", "block4")


def test_sad_plus_kd_combination_equals_sum_of_parts() -> None:
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=1)
    cfg = DistillConfig(sad_start=0)
    batch = make_batch(b=2, h=32, w=32)
    out = student(batch["image"], return_features=True)
    combined = build_distillers(["sad,kd"], cfg, student, teacher)
    t_out = teacher_forward(teacher, batch, combined)
    total = sum(d(out, batch, t_out, 3, 10) for d in combined)
    sad_only = build_distillers(["sad"], cfg, student)[0](out, batch, None, 3, 10)
    kd_only = build_distillers(["kd"], cfg, student, teacher)[0](out, batch, t_out, 3, 10)
    assert total.item() == pytest.approx(sad_only.item() + kd_only.item(), rel=1e-6)
    assert sad_only.item() > 0 and kd_only.item() > 0
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_teacher_forward_none_without_teacher_methods() -> None:
    ds = build_distillers(["sad"], DistillConfig(), TinyLaneNet())
    assert teacher_forward(TinyLaneNet(), make_batch(), ds) is None


def test_teacher_forward_runs_frozen_eval_mode() -> None:
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=1)
    teacher.train()
    ds = build_distillers(["at"], DistillConfig(), student, teacher)
    out = teacher_forward(teacher, make_batch(), ds)
    assert not teacher.training and not out.seg.requires_grad
    assert set(out.features) >= {"block2", "block3", "block4"}
    assert torch.isfinite(out.seg).all()


def test_terms_are_float32_and_unchanged_under_autocast() -> None:
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=1)
    ds = build_distillers(["sad,intra-kd,kd,at"], DistillConfig(sad_start=0), student, teacher)
    batch = make_batch(b=2, h=32, w=32)
    out = student(batch["image"], return_features=True)
    t_out = teacher_forward(teacher, batch, ds)
    plain = [d(out, batch, t_out, 0, 1) for d in ds]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        autocast = [d(out, batch, t_out, 0, 1) for d in ds]
    for d, a, b in zip(ds, plain, autocast, strict=True):
        assert b.dtype == torch.float32, d.name
        assert b.item() == pytest.approx(a.item(), rel=1e-6), d.name
