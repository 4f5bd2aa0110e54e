"""The method registry is the only list of methods; teachers are checked before the first step;
distillers' warnings (saturated attention) reach stderr and metrics.jsonl once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lanekd.distill import DistillConfig, Distiller, build_distillers
from lanekd.distill import methods as registry
from lanekd.distill.methods import Method
from lanekd.distill.teachers import check_teacher_kind
from lanekd.engine import TrainConfig
from lanekd.engine.hooks import loss_names
from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput
from tests.test_distill_common import TinyLaneNet
from tests.test_engine import run_tiny
from tests.test_train import teachers, tiny  # noqa: F401 (fixtures)


class FakeDistiller(Distiller):
    """A teacher-free term that flags a one-hot attention map on its first call."""

    method = Method("fake", "loss_fake", "none", "fake", lambda cfg, student, teacher: FakeDistiller(),
                    "a test method")

    def coefficient(self) -> float:
        return 1.0

    def loss_from_targets(self, student: LaneOutput, batch: dict[str, torch.Tensor],
                          targets: dict[str, torch.Tensor]) -> torch.Tensor:
        b = student.seg.shape[0]
        onehot = torch.zeros(b, 4, 4)
        onehot[:, 0, 0] = 1.0
        self.check_saturation([("block4", onehot)], "sum")
        return 0.01 * student.seg.float().pow(2).mean()


@pytest.fixture
def fake_method():
    registry.register(FakeDistiller.method)
    try:
        yield FakeDistiller.method
    finally:
        registry.unregister("fake")


def test_distiller_classes_take_their_facts_from_the_registry() -> None:
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=1)
    for m in registry.methods():
        t = TinyLaneNet(in_channels=5, seed=2) if m.teacher == "label" else teacher
        (d,) = build_distillers([m.name], DistillConfig(), student, t if m.needs_teacher else None)
        assert type(d).method is m
        assert (d.name, d.loss_name, d.needs_teacher) == (m.name, m.loss_name, m.teacher != "none")
        assert d.teacher_input == {"none": "image", "rgb": "image", "label": "onehot"}[m.teacher]
        # the config section is the prefix of the method's DistillConfig fields
        assert any(f.startswith(m.section + "_") for f in DistillConfig().to_dict()), m.section
    assert loss_names()[3:] == registry.loss_names()


def test_a_registered_method_is_accepted_built_and_logged(fake_method, tmp_path, capsys) -> None:
    import lanekd.distill

    assert "fake" in lanekd.distill.METHODS and "fake" in registry.method_help()
    TrainConfig(iters=1, methods=["fake"]).resolved().validate()
    res = run_tiny(tmp_path / "r", methods=["fake"])
    recs = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if r["type"] == "train"]
    assert all(r["loss_fake"] > 0 for r in train_recs) and res.losses["loss_fake"] > 0
    warnings = [r for r in recs if r["type"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["iter"] == 1 and "saturated" in warnings[0]["message"]
    assert "--fake-aggregation zscore" in warnings[0]["message"]
    err = capsys.readouterr().err
    assert err.count("warning: fake: the attention softmax is saturated") == 1
    with pytest.raises(ValueError, match="already registered"):
        registry.register(fake_method)


def test_unknown_method_and_missing_teacher_fail_in_validate() -> None:
    with pytest.raises(ConfigError, match="unknown distillation method 'nope'"):
        TrainConfig(iters=1, methods=["nope"]).resolved().validate()
    for name in ("intra-kd", "lgad", "kd", "at"):
        with pytest.raises(ConfigError, match=f"--method {name} needs --teacher"):
            TrainConfig(iters=1, methods=[name]).resolved().validate()
    with pytest.raises(ConfigError, match="differently fed teachers"):
        TrainConfig(iters=1, methods=["lgad", "kd"], teacher="t.pt").resolved().validate()


def test_teacher_kind_is_checked_naming_the_file() -> None:
    label, rgb = {"config": {"label_input": True}}, {"config": {"label_input": False}}
    with pytest.raises(ConfigError, match=r"^t\.pt: a label-input teacher .* cannot drive kd"):
        check_teacher_kind("t.pt", label, ["sad", "kd"])
    with pytest.raises(ConfigError, match=r"^t\.pt: lgad needs a label-input teacher"):
        check_teacher_kind("t.pt", rgb, ["lgad"])
    check_teacher_kind("t.pt", label, ["lgad"])
    check_teacher_kind("t.pt", rgb, ["intra-kd", "at"])


@pytest.mark.parametrize("method, kind", [("lgad", "rgb"), ("kd", "label")])
def test_wrong_teacher_kind_fails_before_training(cli, tiny, teachers, tmp_path, method, kind):  # noqa: F811
    out = tmp_path / "run"
    code, _, err = cli("distill", "--method", method, "--teacher", teachers[kind], "--data", tiny["train"],
                       "--iters", "1", "--batch-size", "4", "--workers", "0", "--out", out)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and "Traceback" not in err
    assert len(lines) == 1 and str(teachers[kind]) in lines[0], err
    assert not (out / "last.pt").exists() and not (out / "metrics.jsonl").exists()


def test_registry_and_configs_import_without_torch() -> None:
    code = ("import sys, lanekd.distill.methods, lanekd.distill.config, lanekd.engine.config; "
            "import lanekd.distill; lanekd.distill.METHODS; lanekd.distill.DistillConfig; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0
