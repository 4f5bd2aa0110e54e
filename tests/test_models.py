"""Tests of lanekd.models: shapes, features, existence branch, counts vs papers, init, export, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lanekd.errors import ConfigError
from lanekd.models import STUDENTS, LaneOutput, build_model, count_flops, count_parameters, list_models
from lanekd.models.common import ExistenceBranch
from lanekd.models.enet import max_unpool2x2
from lanekd.models.registry import model_options
from lanekd.models.resnet import PyramidPooling
from lanekd.models.scnn import MessagePassing

NAMES = ["enet", "enet-sad", "erfnet", "resnet18", "resnet34", "resnet50", "resnet101", "scnn"]
# Small sizes keep the whole file fast; the deep models get the smallest input with an existence map.
SIZES = {"enet": (64, 128), "enet-sad": (64, 128), "erfnet": (64, 128), "resnet18": (32, 64),
         "resnet34": (32, 64), "resnet50": (32, 32), "resnet101": (32, 32), "scnn": (32, 64)}


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU is shared; single-threaded is also more deterministic
    yield
    torch.set_num_threads(old)


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return build_model(name, **kwargs)


def test_registry_names() -> None:
    assert list_models() == NAMES
    assert set(STUDENTS) <= set(NAMES)
    assert model_options("enet-sad") == {"in_channels": 3, "share": "none", "exist_conv": "1x1",
                                         "exist_pool": "avg", "bottleneck_width": "output"}


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_features(name: str) -> None:
    size = SIZES[name]
    batch = 2
    model = build_model(name, input_size=size, seed=0)
    x = torch.randn(batch, 3, *size)
    out = model(x)
    assert isinstance(out, LaneOutput)
    assert out.seg.shape == (batch, 5, *size)
    assert out.exist is not None and out.exist.shape == (batch, 4)
    assert out.features == {}  # not requested: nothing returned
    out = model(x, return_features=True)
    assert set(out.features) == {"block1", "block2", "block3", "block4", "encoder"}
    for key, feat in out.features.items():
        assert feat.shape[:2] == (batch, model.feature_channels[key]), key
    for key in ("block3", "block4", "encoder"):  # the deep stages sit at 1/8
        assert out.features[key].shape[-2:] == (size[0] // 8, size[1] // 8), key
    widths = [out.features[f"block{i}"].shape[-1] for i in range(1, 5)]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # shallow -> deep
    assert set(model.sad_blocks) <= set(out.features)
    (out.seg.logsumexp(1).mean() + out.exist.sum() + sum(f.mean() for f in out.features.values())).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]


def test_sad_blocks_defaults() -> None:
    assert meta_model("enet-sad").sad_blocks == ("block2", "block3", "block4")
    assert meta_model("resnet18").sad_blocks == ("block2", "block3", "block4")
    assert meta_model("erfnet").sad_blocks == ("block2", "block4")


# --- parameter counts against the papers ------------------------------------------------------------

@pytest.mark.parametrize("name,size,paper", [
    ("enet-sad", (208, 976), 0.98e6),   # released ENet-SAD (ENet-Label-Torch), 976x208
    ("erfnet", (208, 976), 2.49e6),     # ERFNet-CULane-PyTorch README, 976x208
    ("scnn", (288, 800), 20.72e6),      # SAD paper speed table, SCNN at 800x288
    ("resnet18", (288, 800), 12.41e6),  # SAD paper speed table (ResNet-18-SAD)
    ("resnet34", (288, 800), 22.72e6),
    ("resnet101", (288, 800), 52.53e6),
])
def test_parameter_counts_match_papers(name: str, size: tuple[int, int], paper: float) -> None:
    n = count_parameters(meta_model(name, input_size=size))
    assert abs(n / paper - 1) < 0.05, (name, n)


def test_enet_sad_open_choices_change_the_architecture() -> None:
    base = build_model("enet-sad", input_size=(64, 128))
    e34 = build_model("enet-sad", input_size=(64, 128), share="e3e4")
    shared = build_model("enet-sad", input_size=(64, 128), share="all")
    assert e34.e4 is e34.e3 and e34.e3 is not e34.e2
    assert shared.e3 is shared.e2 and shared.e4 is shared.e2
    stage = count_parameters(base.e2)
    assert count_parameters(base) - count_parameters(e34) == stage
    assert count_parameters(base) - count_parameters(shared) == 2 * stage
    erf = build_model("enet-sad", input_size=(64, 128), exist_conv="erfnet")
    assert isinstance(erf.exist.conv, nn.Sequential) and isinstance(base.exist.conv, nn.Conv2d)
    wide = build_model("enet-sad", input_size=(64, 128), bottleneck_width="input")
    assert wide.down2.ext[0][0].out_channels == 16 and base.down2.ext[0][0].out_channels == 32
    x = torch.randn(1, 3, 64, 128)
    for model in (e34, shared, erf, wide):
        assert model.eval()(x).seg.shape == (1, 5, 64, 128)


# --- existence branch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,size,classes,flat", [
    ("enet-sad", (208, 976), 5, 3965), ("erfnet", (208, 976), 5, 3965),
    ("scnn", (288, 800), 5, 4500), ("enet", (368, 640), 7, 6440), ("resnet18", (360, 640), 5, 4400),
])
def test_existence_flatten_size_follows_input_size(name, size, classes, flat) -> None:
    model = meta_model(name, input_size=size, num_classes=classes, num_lanes=classes - 1)
    assert model.exist.fc1.in_features == flat
    assert model.exist.fc2.out_features == classes - 1


def test_existence_branch_hand_computed() -> None:
    branch = ExistenceBranch(num_classes=2, num_lanes=1, input_size=(32, 32), pool="avg", hidden=1)
    with torch.no_grad():
        branch.fc1.weight.fill_(1.0)
        branch.fc1.bias.zero_()
        branch.fc2.weight.fill_(2.0)
        branch.fc2.bias.fill_(-1.0)
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 0, 0] = np.log(3.0)  # softmax there: (0.75, 0.25); everywhere else (0.5, 0.5)
    # avg: both channels of each 2x2 cell average to a sum of 1 per cell, 4 cells -> fc1 = 4 -> 2*4-1 = 7
    assert branch(x).item() == pytest.approx(7.0, abs=1e-6)
    branch.pool = "max"
    # max: cell (0,0) gives 0.75 + 0.5, the other three 0.5 + 0.5 -> fc1 = 4.25 -> 7.5
    assert branch(x).item() == pytest.approx(7.5, abs=1e-6)
    assert ExistenceBranch(5, 4, (208, 976)).fc1.in_features == 3965


@pytest.mark.parametrize("name", ["enet-sad", "resnet18"])
def test_without_existence_branch(name: str) -> None:
    for kwargs in ({"num_lanes": 0}, {"exist_head": False}):
        model = build_model(name, input_size=(32, 64), **kwargs)
        assert model.exist is None
        assert not any("exist" in n for n, _ in model.named_parameters())
        out = model(torch.randn(1, 3, 40, 72))  # any size divisible by 8 works without the branch
        assert out.exist is None and out.seg.shape == (1, 5, 40, 72)
    assert build_model(name, input_size=(32, 64), num_classes=2, num_lanes=0).build_args["num_lanes"] == 0


# --- label input, options, errors -----------------------------------------------------------------------

@pytest.mark.parametrize("name,cin", [("enet", 5), ("enet-sad", 5), ("erfnet", 5), ("enet-sad", 37),
                                       ("erfnet", 37), ("resnet18", 5)])
def test_label_input_channels(name: str, cin: int) -> None:
    model = build_model(name, num_classes=cin, num_lanes=0, input_size=(32, 64), in_channels=cin).eval()
    onehot = F.one_hot(torch.randint(0, cin, (2, 32, 64)), cin).permute(0, 3, 1, 2).float()
    assert model(onehot).seg.shape == (2, cin, 32, 64)
    assert model.in_channels == cin
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3, 32, 64))


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="valid models: enet, enet-sad, erfnet, resnet18"):
        build_model("enet_sad")
    with pytest.raises(ConfigError, match="no option.*head.*valid options: seed, exist_head, in_channels"):
        build_model("enet", head="psp")
    with pytest.raises(ConfigError, match="divisible by 8"):
        build_model("enet", input_size=(100, 100))
    with pytest.raises(ConfigError, match="share"):
        build_model("enet-sad", share="sometimes")
    with pytest.raises(ConfigError, match="head"):
        build_model("resnet18", head="aspp")
    with pytest.raises(ConfigError, match="exist_pool"):
        build_model("erfnet", exist_pool="median")
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("enet", num_classes=1)
    with pytest.raises(ConfigError, match="in_channels"):
        build_model("enet", in_channels=0)
    with pytest.raises(ConfigError, match="scnn_kernel must be odd"):
        build_model("scnn", scnn_kernel=8)
    model = build_model("erfnet", input_size=(32, 64))
    with pytest.raises(ConfigError, match="built for input size 32x64.*got 64x64"):
        model(torch.randn(1, 3, 64, 64))


# --- deterministic init, build_args ------------------------------------------------------------------

def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["enet-sad", "erfnet", "resnet18"])
def test_deterministic_init_from_seed(name: str) -> None:
    rng_before = torch.get_rng_state()
    a = build_model(name, input_size=(32, 64), seed=3)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone
    b = build_model(**a.build_args)
    c = build_model(name, input_size=(32, 64), seed=4)
    assert _same_state(a, b)
    assert not _same_state(a, c)
    torch.manual_seed(7)  # seeding globally before building is equivalent
    d = build_model(name, input_size=(32, 64))
    torch.manual_seed(7)
    e = build_model(name, input_size=(32, 64))
    assert _same_state(d, e)


def test_build_args_rebuild_identical_architecture() -> None:
    m = build_model("resnet18", num_classes=7, num_lanes=6, input_size=(48, 64), head="psp", scnn=True,
                    in_channels=7)
    assert m.build_args == {"name": "resnet18", "num_classes": 7, "num_lanes": 6, "input_size": (48, 64),
                            "seed": None, "exist_head": True, "head": "psp", "scnn": True, "in_channels": 7}
    args = json.loads(json.dumps(m.build_args))  # survives a JSON round trip (lists for tuples)
    r = build_model(**args)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [(n, p.shape) for n, p in r.named_parameters()]


# --- building blocks: hand-computed values --------------------------------------------------------------

def test_max_unpool_matches_torch() -> None:
    x = torch.randn(2, 3, 6, 8)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(max_unpool2x2(pooled, idx, (6, 8)), F.max_unpool2d(pooled, idx, 2, output_size=(6, 8)))


def test_message_passing_hand_computed() -> None:
    mp = MessagePassing(1, kernel=1)
    with torch.no_grad():
        for conv in (mp.down, mp.up, mp.right, mp.left):
            conv.weight.fill_(1.0)
    x = torch.ones(1, 1, 3, 1)
    # down: [1, 1+1, 1+2] = [1, 2, 3]; up: [1+5, 2+3, 3] = [6, 5, 3]; right/left: one column, unchanged
    assert mp(x).flatten().tolist() == [6.0, 5.0, 3.0]
    x = torch.tensor([[[[1.0, -4.0, 2.0]]]])  # one row: down/up unchanged
    # right: [1, -4+1, 2+relu(-3)] = [1, -3, 2]; left: [1+relu(-3+2), -3+2, 2] = [1, -1, 2]
    assert mp(x).flatten().tolist() == [1.0, -1.0, 2.0]


@pytest.mark.parametrize("pool", ["avg", "bilinear"])
def test_pyramid_pooling_pads_height_and_width_correctly(pool: str) -> None:
    psp = PyramidPooling(8, 2, pool=pool)
    x = torch.randn(2, 8, 6, 13)  # h != w, neither a multiple of any bin: a swapped pad breaks the crop
    assert psp(x).shape == (2, 8 + 4 * 2, 6, 13)
    psp.eval()
    with torch.no_grad():
        for stage in psp.stages:
            stage[0].weight.fill_(1.0 / 8)  # each branch reads the channel mean of the pooled input
        y = psp(torch.ones(1, 8, 20, 20))
    # 20x20 ones, zero-padded to 20, 20, 30, 60: avg bins give 1, 1, 400/900, 400/3600; the bilinear
    # resize to 1x1 samples the centre of the padded map: 1, 1, 1 (row 14.5 is inside) and 0 (row 29.5)
    pooled = [1.0, 1.0, 4 / 9, 1 / 9] if pool == "avg" else [1.0, 1.0, 1.0, 0.0]
    for i, (value, stage) in enumerate(zip(pooled, psp.stages, strict=True)):
        bn = stage[1]
        expected = torch.relu((value - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))
        expected = expected.view(1, 2, 1, 1)
        branch = y[:, 8 + 2 * i: 10 + 2 * i]
        assert torch.allclose(branch, expected.expand_as(branch), atol=1e-5), i


def test_resnet_output_stride_and_options() -> None:
    model = build_model("resnet18", input_size=(32, 64), head="psp", scnn=True).eval()
    assert model.head.scnn is not None
    assert model.backbone.layer4[0].conv1.dilation == (2, 2)  # torchvision: first block keeps the old one
    assert model.backbone.layer4[1].conv1.dilation == (4, 4)
    assert model.backbone.bn1.momentum == 0.1
    out = model(torch.randn(1, 3, 32, 64), return_features=True)
    assert out.features["encoder"].shape == (1, 512, 4, 8)


def test_count_flops_hand_computed() -> None:
    class Tiny(nn.Module):
        input_size = (4, 4)

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.up = nn.ConvTranspose2d(2, 1, 2, stride=2)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(self.up(self.pool(self.conv(x))).flatten(1))

    # conv: 2*16 outputs * 9 = 288 MACs; deconv: 8 inputs * 1 * 4 = 32; linear: 16*3 = 48 -> 2 * 368
    assert count_flops(Tiny(), in_channels=1) == 2 * 368
    assert count_flops(Tiny(), in_channels=1, batch=3) == 3 * 2 * 368
    assert count_parameters(Tiny()) == 20 + 9 + 51


# --- deployment: TorchScript, ONNX, channels_last, bfloat16 ---------------------------------------------

class _SegExist(nn.Module):
    """Export wrapper: (seg, exist) tensors instead of the NamedTuple with a dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.seg, out.exist


@pytest.mark.parametrize("name", STUDENTS)
def test_student_torchscript_and_onnx(name: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    size = (32, 64)
    wrapper = _SegExist(build_model(name, input_size=size, seed=0).eval())
    x = torch.randn(1, 3, *size)
    x2 = torch.randn(1, 3, *size)  # a different input: nothing was frozen into the graph
    with torch.no_grad():
        ref, ref2 = wrapper(x), wrapper(x2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapper, x, check_trace=False)
            path = tmp_path / f"{name}.onnx"
            # torch 2.13's legacy exporter leaves the module in training mode afterwards (seen here),
            # so the references are computed before exporting.
            torch.onnx.export(wrapper, (x,), str(path), dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["seg", "exist"])
        wrapper.eval()
        for a, b in zip(traced(x2), ref2, strict=True):
            assert torch.allclose(a, b, atol=1e-5)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for inp, expect in ((x, ref), (x2, ref2)):
        seg, exist = session.run(None, {"image": inp.numpy()})
        assert np.abs(seg - expect[0].numpy()).max() < 1e-4
        assert np.abs(exist - expect[1].numpy()).max() < 1e-4


@pytest.mark.parametrize("name", [*STUDENTS, "resnet18", "scnn"])
def test_channels_last_and_bf16_autocast(name: str) -> None:
    size = SIZES[name]
    model = build_model(name, input_size=size, seed=1).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ref = model(x)
        cl_model = build_model(**model.build_args).eval().to(memory_format=torch.channels_last)
        cl = cl_model(x.to(memory_format=torch.channels_last))
        assert torch.allclose(cl.seg, ref.seg, atol=1e-4) and torch.allclose(cl.exist, ref.exist, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf = model(x)
    assert bf.seg.shape == ref.seg.shape and torch.isfinite(bf.seg.float()).all()
    assert (bf.seg.float().argmax(1) == ref.seg.argmax(1)).float().mean() > 0.7


# --- CLI ---------------------------------------------------------------------------------------------------

def test_cli_models_json(cli) -> None:
    code, out, err = cli("models", "--input-size", "208x976", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["input_size"] == [208, 976]
    rows = {r["name"]: r for r in doc["models"]}
    assert list(rows) == NAMES
    assert abs(rows["enet-sad"]["params"] / 0.98e6 - 1) < 0.05
    assert rows["enet-sad"]["params"] == count_parameters(meta_model("enet-sad", input_size=(208, 976)))
    assert 0 < rows["enet-sad"]["gflops"] < rows["erfnet"]["gflops"] < rows["resnet101"]["gflops"]


def test_cli_models_table_and_errors(cli) -> None:
    code, out, _ = cli("models", "--num-lanes", "0", "--num-classes", "2")
    assert code == 0
    assert "enet-sad" in out and "resnet101" in out and "GFLOPs" in out
    code, _, err = cli("models", "--input-size", "100x100")
    assert code == 1 and "divisible by 8" in err


def test_bench_models_script_smoke(capsys) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.main(["--models", "enet-sad,scnn", "--runs", "1", "--warmup", "0", "--batch", "1,2",
                       "--input-size", "32x64", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["batch"]): r for r in doc["results"]}
    assert set(rows) == {("enet-sad", 1), ("enet-sad", 2), ("scnn", 1), ("scnn", 2)}
    assert rows[("enet-sad", 2)]["time_vs_enet_sad"] == 1.0
    assert rows[("scnn", 1)]["params_vs_enet_sad"] > 10
    assert rows[("scnn", 2)]["fps"] == pytest.approx(2e3 / rows[("scnn", 2)]["ms_per_batch"])
    assert bench.main(["--models", "nope"]) == 1


@pytest.mark.parametrize("name", ["enet-sad", "erfnet", "resnet18"])
def test_resize_exist_accepts_other_sizes(name: str) -> None:
    model = build_model(name, input_size=(32, 64), seed=0).eval()
    with pytest.raises(ConfigError, match="built for input size 32x64"):
        model(torch.randn(1, 3, 16, 32))
    small = model(torch.randn(2, 3, 16, 32), resize_exist=True)
    assert small.seg.shape == (2, 5, 16, 32) and small.exist.shape == (2, 4)
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():  # at the built size the flag changes nothing
        assert torch.equal(model(x).exist, model(x, resize_exist=True).exist)
