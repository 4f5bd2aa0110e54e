"""Engine tests on tiny stand-in models/datasets: losses, schedule, sampler, the loop, resume,
NaN stop, checkpoint contents, metrics.jsonl, SIGINT and 2-process DDP (gloo)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lanekd.engine import (
    LOSS_NAMES,
    HookBase,
    LaneLoss,
    ResumableBatchSampler,
    TrainConfig,
    TrainingDiverged,
    existence_bce,
    onehot_label,
    poly_factor,
    read_checkpoint,
    soft_iou_loss,
    train,
    weighted_cross_entropy,
)
from lanekd.engine.checkpoint import save_checkpoint
from lanekd.errors import ConfigError, LaneKDError
from lanekd.models.output import LaneOutput

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# stand-ins


class TinyLaneNet(nn.Module):
    """A few convolutions with the lane-model interface; ``bn=False`` makes it BN-free (DDP test)."""

    def __init__(
        self, num_classes: int = 5, num_lanes: int = 4, in_channels: int = 3, bn: bool = True
    ) -> None:
        super().__init__()
        self.build_args = {
            "name": "tiny",
            "num_classes": num_classes,
            "num_lanes": num_lanes,
            "in_channels": in_channels,
        }
        self.sad_blocks = ("block2", "block3", "block4")
        self.feature_channels = {"block1": 8, "block2": 8, "block3": 8, "block4": 8, "encoder": 8}
        norm = nn.BatchNorm2d if bn else nn.Identity
        self.c1 = nn.Sequential(nn.Conv2d(in_channels, 8, 3, 2, 1), norm(8), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), norm(8), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.c4 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)
        self.fc = nn.Linear(8, num_lanes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> LaneOutput:
        f1 = self.c1(x)
        f2 = self.c2(f1)
        f3 = self.c3(f2)
        f4 = self.c4(f3)
        seg = F.interpolate(self.head(f4), size=x.shape[-2:], mode="bilinear", align_corners=False)
        exist = self.fc(f4.mean(dim=(2, 3)))
        feats = (
            {"block1": f1, "block2": f2, "block3": f3, "block4": f4, "encoder": f4} if return_features else {}
        )
        return LaneOutput(seg, exist, feats)


class TinyLanes(torch.utils.data.Dataset):
    """Deterministic random images with vertical lane stripes; ``augment`` adds torch-RNG noise."""

    def __init__(self, n: int = 24, size: tuple[int, int] = (16, 32), augment: bool = False) -> None:
        self.n, self.size, self.augment = n, size, augment

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        h, w = self.size
        label = torch.zeros(h, w, dtype=torch.int64)
        exist = torch.zeros(4)
        for k in range(4):
            if torch.rand((), generator=g) < 0.7:
                x0 = 2 + 7 * k + int(torch.randint(0, 3, (), generator=g))
                label[:, x0 : x0 + 2] = k + 1
                exist[k] = 1
        image = torch.randn(3, h, w, generator=g) * 0.3 + (label > 0).float().unsqueeze(0)
        if self.augment:  # global torch RNG: exercises RNG-state resume
            image = image + 0.05 * torch.randn(3, h, w)
        label[0, 0] = 255
        return {"image": image, "label": label, "exist": exist, "index": torch.tensor(i)}


def tiny_cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        model="tiny",
        out=str(out),
        iters=6,
        batch_size=4,
        lr=0.05,
        workers=0,
        quiet=True,
        ckpt_every=0,
        log_every=2,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def run_tiny(out: Path, *, bn: bool = True, hooks=(), augment: bool = True, **kw):
    torch.manual_seed(0)
    model = TinyLaneNet(bn=bn)
    return train(
        tiny_cfg(out, **kw),
        model=model,
        train_set=TinyLanes(augment=augment),
        data_attrs={"num_classes": 5, "num_slots": 4, "size": [16, 32]},
        extra_hooks=hooks,
    )


# ---------------------------------------------------------------------------------------------
# losses (hand-computed)


def test_weighted_ce_hand_computed():
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 1, 0, 0] = math.log(3.0)  # pixel 0: p(class1) = 3/4
    label = torch.tensor([[[1, 0, 255]]])
    # pixel0: w=1, nll=-log(3/4); pixel1: w=0.4, equal logits -> nll=-log(1/2); pixel2 ignored
    nll0 = -math.log(0.75)
    nll1 = -math.log(0.5)
    expected = (1.0 * nll0 + 0.4 * nll1) / 1.4
    assert weighted_cross_entropy(logits, label, 0.4).item() == pytest.approx(expected, rel=1e-6)
    assert weighted_cross_entropy(logits, torch.full_like(label, 255)).item() == 0.0


def test_existence_and_iou_hand_computed():
    assert existence_bce(torch.zeros(2, 4), torch.ones(2, 4)).item() == pytest.approx(math.log(2))
    logits = torch.tensor([[[[0.0, 0.0]], [[0.0, 0.0]]]])  # p(lane) = 0.5 everywhere
    label = torch.tensor([[[1, 0]]])
    # inter = 0.5, union = (0.5+1-0.5) + (0.5+0-0) = 1.5 -> 1 - 1/3
    assert soft_iou_loss(logits, label).item() == pytest.approx(2 / 3, rel=1e-6)
    ll = LaneLoss(0.4, 0.1, 0.1)(logits, torch.zeros(1, 4), label, torch.ones(1, 4))
    assert ll["loss_exist"].item() == pytest.approx(0.1 * math.log(2), rel=1e-6)
    assert ll["loss_iou"].item() == pytest.approx(0.1 * 2 / 3, rel=1e-6)


def test_loss_gradients_flow_and_onehot():
    logits = torch.randn(2, 5, 4, 6, requires_grad=True)
    label = torch.randint(0, 5, (2, 4, 6))
    out = LaneLoss(iou_weight=0.1)(logits, None, label, None)
    sum(out.values()).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert out["loss_exist"].item() == 0.0
    oh = onehot_label(torch.tensor([[[0, 2, 255]]]), 3)
    assert oh[0, :, 0, 0].tolist() == [1, 0, 0] and oh[0, :, 0, 1].tolist() == [0, 0, 1]
    assert oh[0, :, 0, 2].tolist() == [0, 0, 0]


# ---------------------------------------------------------------------------------------------
# schedule and sampler


def test_poly_and_warmup():
    assert poly_factor(0, 100) == 1.0
    assert poly_factor(50, 100) == pytest.approx(0.5**0.9)
    assert poly_factor(100, 100) == 0.0
    assert poly_factor(0, 100, warmup_iters=10, warmup_factor=0.1) == pytest.approx(0.1)
    assert poly_factor(5, 100, warmup_iters=10, warmup_factor=0.1) == pytest.approx(0.55 * 0.95**0.9)


def test_sampler_shards_cover_global_batch_and_resume():
    one = ResumableBatchSampler(20, 4, seed=1)
    shards = [ResumableBatchSampler(20, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    for b, s0, s1 in zip(one, *shards):
        assert sorted(b) == sorted(s0 + s1) and len(s0) == 2
    full = list(one)
    one.set_position(0, 3)
    assert list(one) == full[3:]
    one.set_position(1, 0)
    assert list(one) != full  # a new epoch reshuffles
    with pytest.raises(ConfigError):
        ResumableBatchSampler(3, 4)
    with pytest.raises(ConfigError):
        ResumableBatchSampler(20, 3, world_size=2)


def test_config_validation():
    with pytest.raises(ConfigError):
        TrainConfig(iters=None).validate()
    with pytest.raises(ConfigError):
        TrainConfig(iters=5, epochs=2).validate()
    with pytest.raises(ConfigError):
        TrainConfig(iters=5, amp="fp8").validate()
    with pytest.raises(ConfigError):
        TrainConfig(iters=5, methods=["nope"]).validate()
    assert TrainConfig(iters=5, batch_size=24, lr=0.01, scale_lr=True).effective_lr() == pytest.approx(0.02)


# ---------------------------------------------------------------------------------------------
# the loop


def test_run_writes_metrics_config_and_checkpoint(tmp_path):
    res = run_tiny(tmp_path / "r", iou_weight=0.1)
    assert res.iterations == 6 and res.last_checkpoint
    recs = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in recs] == [2, 4, 6]
    for r in recs:
        for k in (*LOSS_NAMES, "loss_total", "lr", "img_s"):
            assert k in r, k
        parts = sum(r[k] for k in LOSS_NAMES)
        assert r["loss_total"] == pytest.approx(parts, rel=1e-5)
    assert recs[-1]["loss_iou"] > 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["max_iter"] == 6 and cfg["effective_lr"] == 0.05
    ck = read_checkpoint(tmp_path / "r" / "last.pt")
    for k in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "iteration",
        "rng",
        "config",
        "model_args",
        "data_attrs",
        "hooks",
    ):
        assert k in ck, k
    assert ck["iteration"] == 6 and ck["model_args"]["name"] == "tiny"
    assert set(ck["rng"]) >= {"torch", "numpy", "python", "loader"}
    assert ck["data_attrs"]["num_slots"] == 4
    # the lr followed the poly schedule: after 6 of 6 steps it is 0
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.0


def test_epochs_and_scaled_lr(tmp_path, capsys):
    res = run_tiny(tmp_path / "e", iters=None, epochs=2, scale_lr=True, batch_size=8, quiet=False)
    assert res.iterations == 2 * (24 // 8)
    assert res.lr == pytest.approx(0.05 * 8 / 12)
    assert "scaled linearly" in capsys.readouterr().err


class _StopAt(HookBase):
    def __init__(self, at: int) -> None:
        self.at = at

    def after_step(self) -> None:
        if self.trainer.iter == self.at:
            self.trainer.stop_signal = signal.SIGINT


def test_scale_batch_keeps_label_values():
    from lanekd.engine.trainer import progressive_size, scale_batch

    assert progressive_size((144, 400), 256) == (96, 256) and progressive_size((288, 800), 256) == (96, 256)
    assert progressive_size((590, 1640), 512) == (184, 512) and progressive_size((16, 64), 16) == (8, 16)
    label = torch.randint(0, 5, (2, 144, 400))
    label[:, :10] = 255
    batch = {"image": torch.rand(2, 3, 144, 400), "label": label, "exist": torch.ones(2, 4)}
    small = scale_batch(batch, (96, 256))
    assert small["image"].shape == (2, 3, 96, 256) and small["label"].shape == (2, 96, 256)
    assert small["label"].dtype == label.dtype and small["exist"] is batch["exist"]
    assert set(small["label"].unique().tolist()) <= set(label.unique().tolist())
    assert (small["label"][:, :6] == 255).all() and (small["label"][:, 7:] != 255).all()
    assert small["image"].min() >= 0 and small["image"].max() <= 1  # antialiased bilinear: no overshoot


def test_progressive_resize_schedule(tmp_path, capsys):
    """The first progressive_fraction of the iterations see scaled inputs (with resize_exist)."""
    seen: list[tuple[tuple[int, int], bool]] = []

    class Recording(TinyLaneNet):
        def forward(self, x, return_features=False, resize_exist=False):
            seen.append((tuple(x.shape[-2:]), resize_exist))
            return super().forward(x, return_features)

    def run(name: str, **kw) -> None:
        seen.clear()
        torch.manual_seed(0)
        res = train(tiny_cfg(tmp_path / name, iters=8, **kw), model=Recording(),
                    train_set=TinyLanes(size=(32, 64)),
                    data_attrs={"num_classes": 5, "num_slots": 4, "size": [32, 64]})
        assert res.iterations == 8

    run("p", progressive_width=32, progressive_fraction=0.75, quiet=False)
    assert seen == [((16, 32), True)] * 6 + [((32, 64), False)] * 2
    assert "progressive resizing: iterations 1-6 at 16x32, then 32x64" in capsys.readouterr().err
    run("off", progressive_width=0)
    assert seen == [((32, 64), False)] * 8
    run("wider", progressive_width=64)  # not narrower than the data: nothing to scale
    assert seen == [((32, 64), False)] * 8
    for bad in ({"progressive_width": -8}, {"progressive_width": 30}, {"progressive_fraction": 2.0}):
        with pytest.raises(ConfigError, match="progressive"):
            TrainConfig(iters=5, **bad).resolved().validate()


def test_fast_recipe_resizes_only_from_scratch_without_teacher():
    def width(**kw) -> int:
        return TrainConfig(iters=5, **kw).resolved().progressive_width

    assert width() == 256 and width(methods=["sad"]) == 256
    assert width(model="erfnet") == 256
    assert width(recipe="paper") == 0 and width(init="x.pt") == 0 and width(label_input=True) == 0
    assert width(methods=["kd"], teacher="t.pt") == 0 and width(methods=["sad", "lgad"], teacher="t.pt") == 0
    assert width(init="x.pt", progressive_width=128) == 128  # an explicit flag wins
    with pytest.raises(ConfigError, match="trains without a teacher; kd needs one"):
        TrainConfig(iters=5, methods=["kd"], teacher="t.pt", progressive_width=256).resolved().validate()


def test_resume_is_bit_identical(tmp_path):
    full = run_tiny(tmp_path / "full", iters=10)
    from lanekd.engine import TrainingInterrupted

    with pytest.raises(TrainingInterrupted) as ei:
        run_tiny(tmp_path / "part", iters=10, hooks=[_StopAt(4)])
    assert ei.value.exit_code == 130
    part = read_checkpoint(tmp_path / "part" / "last.pt")
    assert part["iteration"] == 4 and part["train_seconds"] > 0
    # the training time carries over a resume: pretend the first part took 1000 s
    save_checkpoint(tmp_path / "part" / "last.pt", {**part, "train_seconds": 1000.0})
    res = run_tiny(tmp_path / "part", iters=10, resume=True)
    assert res.iterations == 10
    assert 1000.0 < res.train_seconds < 1000.0 + res.elapsed_s
    assert full.train_seconds <= full.elapsed_s
    a = read_checkpoint(full.last_checkpoint)["model"]
    b = read_checkpoint(res.last_checkpoint)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # metrics.jsonl was continued, not duplicated
    iters = [json.loads(x)["iter"] for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert iters == [2, 4, 6, 8, 10]


def test_resume_without_checkpoint_is_clear(tmp_path):
    with pytest.raises(LaneKDError, match="nothing to resume"):
        run_tiny(tmp_path / "none", resume=True)


class _Poison(HookBase):
    def after_step(self) -> None:
        if self.trainer.iter == 3:
            with torch.no_grad():
                self.trainer.model.head.weight.fill_(float("nan"))


def test_nan_loss_stops_and_keeps_last_good(tmp_path):
    with pytest.raises(TrainingDiverged, match="non-finite at iteration 4"):
        run_tiny(tmp_path / "n", iters=8, ckpt_every=2, hooks=[_Poison()])
    ck = read_checkpoint(tmp_path / "n" / "last.pt")
    assert ck["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_validation_hook_writes_best(tmp_path):
    scores = iter([0.2, 0.5, 0.4])

    def fake_val(model):
        v = next(scores)
        return {"metric": "culane_f1", "value": v, "f1": v}

    torch.manual_seed(0)
    cfg = tiny_cfg(tmp_path / "v", iters=6, val_every=2)
    res = train(
        cfg,
        model=TinyLaneNet(),
        train_set=TinyLanes(),
        val_evaluate=fake_val,
        data_attrs={"num_classes": 5, "num_slots": 4},
    )
    assert res.best_value == 0.5 and res.best_iter == 4 and res.final_value == 0.4
    assert read_checkpoint(tmp_path / "v" / "best.pt")["iteration"] == 4
    vals = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in vals if r["type"] == "val"] == [2, 4, 6]


def test_not_a_checkpoint(tmp_path):
    from lanekd.engine import load_checkpoint_model

    bad = tmp_path / "x.pt"
    bad.write_text("hello")
    with pytest.raises(LaneKDError, match="not a lanekd checkpoint"):
        load_checkpoint_model(bad)
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(LaneKDError, match="not a lanekd checkpoint"):
        load_checkpoint_model(bad)
    with pytest.raises(LaneKDError, match="not found"):
        load_checkpoint_model(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------------
# SIGINT in a subprocess

_SIGINT_SCRIPT = r"""
import sys, time, torch
sys.path.insert(0, {tests!r})
from test_engine import run_tiny
from lanekd.engine import HookBase, TrainingInterrupted
from pathlib import Path

class Slow(HookBase):
    def after_step(self):
        if self.trainer.iter == 2:
            Path({ready!r}).write_text("go")
        time.sleep(0.05)

try:
    run_tiny(Path({out!r}), iters=100000, hooks=[Slow()])
except TrainingInterrupted as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_code)
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_last_and_exits(tmp_path, sig, code):
    ready = tmp_path / "ready"
    script = _SIGINT_SCRIPT.format(tests=str(REPO / "tests"), ready=str(ready), out=str(tmp_path / "s"))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "never got ready"
    proc.send_signal(sig)
    _, errtext = proc.communicate(timeout=60)
    assert proc.returncode == code, errtext
    assert "interrupted by" in errtext and "--resume" in errtext
    ck = read_checkpoint(tmp_path / "s" / "last.pt")
    assert ck["iteration"] >= 2


# ---------------------------------------------------------------------------------------------
# DDP on CPU with gloo: 2 processes x batch 2 == 1 process x batch 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    # BN-free stand-in and unweighted CE: per-process BN statistics and the per-process
    # normalisation of a class-weighted mean would otherwise differ from one big batch
    run_tiny(Path(out), bn=False, augment=False, background_weight=1.0, iters=4)


def test_ddp_two_processes_match_one(tmp_path):
    import torch.multiprocessing as mp

    port = _free_port()
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "ddp")), nprocs=2, join=True)
    single = run_tiny(tmp_path / "one", bn=False, augment=False, background_weight=1.0, iters=4)
    a = read_checkpoint(tmp_path / "ddp" / "last.pt")
    b = read_checkpoint(single.last_checkpoint)
    assert a["config"]["world_size"] == 2
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=1e-5)


class _LabelEcho(nn.Module):
    """Returns the one-hot label it is fed as logits (``scale`` 0: everything background)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x, return_features=False):
        seg = x * self.scale
        if self.scale == 0:
            seg = seg.clone()
            seg[:, 0] = 1.0
        return LaneOutput(seg, torch.full((x.shape[0], 4), 10.0), {})


def test_evaluate_model_pixel_and_f1_scores(tmp_path):
    from lanekd.engine.validation import evaluate_model
    from tests.engine_data import make_tiny_h5

    # at 144x400 a perfect segmentation decodes to every lane (at 64x160 the 2-px lanes fall under
    # the decoder's 9x9-mean threshold: the demo's quick size was chosen with this check)
    h5 = make_tiny_h5(tmp_path / "v.h5", n=6, split="val", size=(144, 400))
    perfect = evaluate_model(_LabelEcho(20.0), h5, label_input_classes=5)
    assert perfect["pixel_accuracy"] == 1.0 and perfect["pixel_iou"] == 1.0
    assert perfect["fp"] == 0 and perfect["fn"] == 0 and perfect["f1"] == 1.0
    blind = evaluate_model(_LabelEcho(0.0), h5, label_input_classes=5)
    assert blind["pixel_accuracy"] == 0.0 and blind["pixel_iou"] == 0.0
    assert blind["tp"] == 0 and blind["fn"] == perfect["tp"] + perfect["fn"]


def test_cpu_amx_probe_reads_cpuinfo_flags(tmp_path):
    from lanekd.engine.hardware import cpu_has_amx_bf16

    amx, plain = tmp_path / "amx", tmp_path / "plain"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16x\n")
    assert cpu_has_amx_bf16(str(amx)) is True
    assert cpu_has_amx_bf16(str(plain)) is False  # a flag is a whole word


def test_amp_default_follows_the_cpu(monkeypatch):
    """Unset --amp / --channels-last: bf16 + channels_last on an AMX-BF16 CPU, fp32 elsewhere;
    an explicit choice always wins."""
    import lanekd.engine.hardware as hw

    def hw_of(native: bool, **kw) -> tuple[str | None, bool | None, str | None]:
        monkeypatch.setattr(hw, "cpu_has_amx_bf16", lambda: native)
        cfg = TrainConfig(iters=5, **kw).resolved()
        cfg.validate()
        return cfg.amp, cfg.channels_last, cfg.autocast()

    assert hw_of(True) == ("bf16", True, "bf16")
    assert hw_of(False) == ("off", False, None)
    assert hw_of(True, amp="off") == ("off", False, None)
    assert hw_of(True, channels_last=False) == ("bf16", False, "bf16")
    assert hw_of(False, amp="bf16") == ("bf16", False, "bf16")
    assert hw_of(True, device="cuda") == ("off", False, None)  # GPUs: choose --amp yourself
    with pytest.raises(ConfigError, match="--amp must be one of bf16, fp16, off"):
        TrainConfig(iters=5, amp="fp8").resolved().validate()


def test_step_runs_under_the_resolved_autocast(tmp_path, monkeypatch, capsys):
    import lanekd.engine.hardware as hw

    seen: list[tuple[bool, bool]] = []

    class Recording(TinyLaneNet):
        def forward(self, x, return_features=False):
            if self.training:
                seen.append((torch.is_autocast_enabled("cpu"),
                             x.is_contiguous(memory_format=torch.channels_last)))
            return super().forward(x, return_features)

    for native, want in ((True, (True, True)), (False, (False, False))):
        monkeypatch.setattr(hw, "cpu_has_amx_bf16", lambda native=native: native)
        seen.clear()
        attrs = {"num_classes": 5, "num_slots": 4, "size": [32, 64]}
        train(tiny_cfg(tmp_path / str(native), iters=2, amp=None, channels_last=None, quiet=False),
              model=Recording(), train_set=TinyLanes(size=(32, 64)), data_attrs=attrs)
        assert seen == [want, want]
        said = "mixed precision: bf16 autocast + channels_last (--amp off: fp32)" in capsys.readouterr().err
        assert said == native


def test_existence_branch_learns_at_its_own_rate():
    """The existence branch is its own optimiser group at exist_lr_scale x the base rate; the
    schedule keeps the ratio; every parameter is optimised exactly once."""
    from lanekd.engine.build import param_groups
    from lanekd.engine.optim import build_optimizer, build_scheduler
    from lanekd.models import build_model

    model = build_model("enet-sad", input_size=(32, 64))
    for name, base in (("sgd", 0.5), ("adamw", 2e-3)):
        opt = build_optimizer(name, param_groups(model, [], 0.1), base)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([base, base * 0.1])
        assert {id(p) for p in opt.param_groups[1]["params"]} == {id(p) for p in model.exist.parameters()}
        flat = [id(p) for g in opt.param_groups for p in g["params"]]
        assert sorted(flat) == sorted(id(p) for p in model.parameters())
    sched = build_scheduler(opt, 10, "poly", warmup_iters=2)
    for _ in range(4):
        opt.step()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert 0 < lrs[0] < 2e-3 and lrs[1] == pytest.approx(lrs[0] * 0.1)
    no_branch = build_model("enet-sad", input_size=(32, 64), num_lanes=0)
    assert len(param_groups(no_branch, [], 0.1)) == 1
    assert len(param_groups(model, [], 1.0)) == 1  # the paper's single group, as before the option


def test_resume_with_other_groups_is_a_clear_error(tmp_path):
    """A last.pt whose optimiser has other parameter groups is refused with a one-line error."""
    from lanekd.models import build_model

    attrs = {"num_classes": 5, "num_slots": 4, "size": [32, 64]}

    def run(**kw):
        return train(tiny_cfg(tmp_path / "r", **{"iters": 2, "ckpt_every": 1, **kw}),
                     model=build_model("enet-sad", input_size=(32, 64)),
                     train_set=TinyLanes(size=(32, 64)), data_attrs=attrs)

    run(exist_lr_scale=1.0)
    with pytest.raises(LaneKDError, match="optimiser state does not fit this run"):
        run(exist_lr_scale=0.1, iters=4, resume=True)


def test_recipe_sets_the_existence_rate():
    def scale(**kw) -> float | None:
        cfg = TrainConfig(iters=5, **kw).resolved()
        cfg.validate()
        return cfg.exist_lr_scale

    assert scale() == 0.1 and scale(recipe="paper") == 1.0 and scale(exist_lr_scale=0.5) == 0.5
    lr = {m: TrainConfig(iters=5, model=m).resolved().lr for m in ("enet-sad", "erfnet", "resnet18")}
    assert lr == {"enet-sad": 0.5, "erfnet": 0.5, "resnet18": 0.2}
    with pytest.raises(ConfigError, match="--exist-lr-scale must be positive"):
        scale(exist_lr_scale=0.0)
