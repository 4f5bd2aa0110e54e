"""The bad-input corpus: every command and option that takes a path or a number, run as a hostile
user would. Each bad case must exit 1 (bad input) with exactly one line on stderr naming the file, or
2 (usage error) naming the option; never a traceback, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from tests.engine_data import make_tiny_h5
from tests.helpers_models import SMALL, make_checkpoint


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def check_bad(cli, root: Path, args: list, code: int = 1, names: tuple = ()) -> str:
    """Run ``lanekd *args`` and assert the bad-input contract; returns stderr."""
    before = listing(root)
    rc, _, err = cli(*[a.format(root=root) if isinstance(a, str) else a for a in args])
    assert rc == code, err
    assert "Traceback" not in err
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert str(name).format(root=root) in err, err
    assert listing(root) == before, "something was left behind"
    return err


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Path:
    """Shared inputs: a prepared file, a checkpoint, images, and look-alike bad files."""
    root = tmp_path_factory.mktemp("corpus")
    make_tiny_h5(root / "data.h5", n=4, size=SMALL)
    make_tiny_h5(root / "other_size.h5", n=2, size=(64, 128))
    make_checkpoint(root / "m.pt", "enet")
    cv2.imwrite(str(root / "frame.png"), np.full((590, 1640, 3), 90, np.uint8))
    (root / "text.txt").write_text("hello\n")
    (root / "drive.mp4").write_text("not a video\n")
    (root / "afile").write_text("x")
    (root / "adir.h5").mkdir()
    with h5py.File(root / "foreign.h5", "w") as f:  # an HDF5 file, but not a lanekd one
        f["x"] = [1, 2, 3]
    return root


# (id, args, exit code, texts the message must contain); {root} is the corpus folder
CASES = [
    # prepare: output locations (checked before the conversion starts)
    ("prepare-out-parent-is-file", ["prepare", "synthetic", "--n", "2", "--out", "{root}/afile/x.h5"], 1,
     ("afile", "not a folder")),
    ("prepare-out-is-folder", ["prepare", "synthetic", "--n", "2", "--out", "{root}/adir.h5"], 1,
     ("adir.h5", "existing folder")),
    ("prepare-out-not-h5", ["prepare", "synthetic", "--n", "2", "--out", "{root}/x.txt"], 1, ("x.txt",)),
    ("prepare-layout-out-is-file", ["prepare", "synthetic", "--n", "2", "--layout", "culane", "--out",
                                    "{root}/afile"], 1, ("afile", "is a file")),
    ("prepare-layout-under-file", ["prepare", "synthetic", "--n", "2", "--layout", "culane", "--out",
                                   "{root}/afile/lay"], 1, ("afile",)),
    # prepare: numbers
    ("prepare-layout-size", ["prepare", "synthetic", "--n", "2", "--layout", "culane", "--size", "96x256",
                             "--out", "{root}/lay"], 2, ("--size", "590x1640")),
    ("prepare-size-stride", ["prepare", "synthetic", "--n", "2", "--size", "96x25",
                             "--out", "{root}/x.h5"], 2,
     ("divisible by 8", "stride")),
    ("prepare-size-huge", ["prepare", "synthetic", "--n", "2", "--size", "100000x100000",
                           "--out", "{root}/x.h5"], 2, ("4096",)),
    ("prepare-size-zero", ["prepare", "synthetic", "--size", "0x96", "--out", "{root}/x.h5"], 2, ("--size",)),
    ("prepare-size-text", ["prepare", "synthetic", "--size", "big", "--out", "{root}/x.h5"], 2, ("HxW",)),
    ("prepare-n-negative", ["prepare", "synthetic", "--n", "-1", "--out", "{root}/x.h5"], 2, ("--n",)),
    ("prepare-workers-zero", ["prepare", "synthetic", "--workers", "0", "--out", "{root}/x.h5"], 2,
     ("--workers",)),
    ("prepare-flush-zero", ["prepare", "synthetic", "--flush-every", "0", "--out", "{root}/x.h5"], 2,
     ("--flush-every",)),
    ("prepare-crop-negative", ["prepare", "synthetic", "--n", "2", "--crop-top", "-5", "--out",
                               "{root}/x.h5"], 1, ("crop_top",)),
    # prepare: input paths
    ("prepare-root-missing", ["prepare", "culane", "--root", "{root}/nope", "--out", "{root}/x.h5"], 1,
     ("nope",)),
    ("prepare-custom-missing", ["prepare", "custom", "--root", "{root}/nope.jsonl",
                                "--out", "{root}/x.h5"], 1,
     ("nope",)),
    ("verify-missing", ["prepare", "--verify", "{root}/nope.h5"], 1, ("nope.h5",)),
    ("verify-not-hdf5", ["prepare", "--verify", "{root}/text.txt"], 1, ("text.txt",)),
    ("verify-foreign", ["prepare", "--verify", "{root}/foreign.h5"], 1, ("foreign.h5", "not a lanekd")),
    ("info-missing", ["info", "{root}/nope.h5"], 1, ("nope.h5",)),
    ("info-not-hdf5", ["info", "{root}/frame.png"], 1, ("frame.png",)),
    ("info-foreign", ["info", "{root}/foreign.h5"], 1, ("foreign.h5",)),
    # train-teacher / distill: paths and numbers, all before the first step
    ("train-data-missing", ["train-teacher", "--model", "enet", "--data", "{root}/nope.h5", "--iters", "1",
                            "--out", "{root}/r"], 1, ("nope.h5",)),
    ("train-data-not-hdf5", ["train-teacher", "--model", "enet", "--data", "{root}/text.txt", "--iters", "1",
                             "--out", "{root}/r"], 1, ("text.txt",)),
    ("train-data-foreign", ["train-teacher", "--model", "enet", "--data", "{root}/foreign.h5", "--iters", "1",
                            "--out", "{root}/r"], 1, ("foreign.h5",)),
    ("distill-val-foreign", ["distill", "--data", "{root}/data.h5", "--val", "{root}/foreign.h5", "--iters",
                             "1", "--batch-size", "2", "--workers", "0", "--out", "{root}/r"], 1,
     ("foreign.h5", "not a lanekd")),
    ("distill-val-missing", ["distill", "--data", "{root}/data.h5", "--val", "{root}/nope.h5", "--iters", "1",
                             "--out", "{root}/r"], 1, ("nope.h5",)),
    ("distill-val-other-size", ["distill", "--data", "{root}/data.h5", "--val", "{root}/other_size.h5",
                                "--iters", "1", "--batch-size", "2", "--out", "{root}/r"], 1,
     ("other_size.h5", "64x160")),
    ("distill-batch-too-big", ["distill", "--data", "{root}/data.h5", "--iters", "1", "--batch-size", "20",
                               "--workers", "0", "--out", "{root}/r"], 1, ("data.h5", "--batch-size 20")),
    ("distill-out-is-file", ["distill", "--data", "{root}/data.h5", "--iters", "1", "--batch-size", "2",
                             "--out", "{root}/afile"], 1, ("afile", "is a file")),
    ("distill-out-under-file", ["distill", "--data", "{root}/data.h5", "--iters", "1", "--batch-size", "2",
                                "--out", "{root}/afile/run"], 1, ("afile",)),
    ("distill-teacher-missing", ["distill", "--method", "kd", "--teacher", "{root}/nope.pt", "--data",
                                 "{root}/data.h5", "--iters", "1", "--batch-size", "2", "--workers", "0",
                                 "--out", "{root}/r"], 1, ("nope.pt",)),
    ("distill-resume-nothing", ["distill", "--data", "{root}/data.h5", "--iters", "1", "--resume",
                                "--out", "{root}/r"], 1, ("last.pt",)),
    ("train-iters-zero", ["train-teacher", "--data", "{root}/data.h5", "--iters", "0"], 2, ("--iters",)),
    ("train-batch-zero", ["train-teacher", "--data", "{root}/data.h5", "--iters", "1",
                          "--batch-size", "0"], 2,
     ("--batch-size",)),
    ("train-lr-negative", ["train-teacher", "--data", "{root}/data.h5", "--iters", "1", "--lr", "-1",
                           "--out", "{root}/r"], 1, ("--lr",)),
    ("train-workers-negative", ["train-teacher", "--data", "{root}/data.h5", "--iters", "1", "--workers",
                                "-1"], 2, ("--workers",)),
    # export
    ("export-ckpt-missing", ["export", "{root}/nope.pt", "--out", "{root}/x.onnx"], 1, ("nope.pt",)),
    ("export-ckpt-text", ["export", "{root}/text.txt", "--out", "{root}/x.onnx"], 1, ("text.txt",)),
    ("export-out-under-file", ["export", "{root}/m.pt", "--out", "{root}/afile/x.onnx"], 1, ("afile",)),
    ("export-out-is-folder", ["export", "{root}/m.pt", "--out", "{root}/adir.h5"], 1, ("adir.h5",)),
    ("export-check-image-missing", ["export", "{root}/m.pt", "-f", "torchscript", "--out", "{root}/x.ts",
                                    "--check-image", "{root}/nope.png"], 1, ("nope.png",)),
    ("export-opset-old", ["export", "{root}/m.pt", "--out", "{root}/x.onnx", "--opset", "5"], 2,
     ("--opset",)),
    ("export-tolerance-negative", ["export", "{root}/m.pt", "--out", "{root}/x.onnx", "--tolerance", "-1"], 2,
     ("--tolerance",)),
    ("export-size-mismatch", ["export", "{root}/m.pt", "--out", "{root}/x.onnx",
                              "--input-size", "128x320"], 2,
     ("64x160",)),
    # predict / visualize / bench
    ("predict-model-missing", ["predict", "{root}/nope.pt", "{root}/frame.png", "--out", "{root}/p"], 1,
     ("nope.pt",)),
    ("predict-model-text", ["predict", "{root}/text.txt", "{root}/frame.png", "--out", "{root}/p"], 1,
     ("text.txt",)),
    ("predict-input-missing", ["predict", "{root}/m.pt", "{root}/nope.jpg", "--out", "{root}/p"], 1,
     ("nope.jpg",)),
    ("predict-fake-video", ["predict", "{root}/m.pt", "{root}/drive.mp4", "--out", "{root}/p"], 1,
     ("drive.mp4",)),
    ("predict-out-under-file", ["predict", "{root}/m.pt", "{root}/frame.png", "--out", "{root}/afile/p"], 1,
     ("afile",)),
    ("predict-batch-zero", ["predict", "{root}/m.pt", "{root}/frame.png", "--out", "{root}/p",
                            "--batch", "0"], 1, ("--batch",)),
    ("vis-attention-ckpt-missing", ["visualize", "attention", "{root}/nope.pt", "{root}/frame.png", "--out",
                                    "{root}/a.png"], 1, ("nope.pt",)),
    ("vis-attention-image-missing", ["visualize", "attention", "{root}/m.pt", "{root}/nope.png", "--out",
                                     "{root}/a.png"], 1, ("nope.png",)),
    ("vis-attention-out-under-file", ["visualize", "attention", "{root}/m.pt", "{root}/frame.png", "--out",
                                      "{root}/afile/a.png"], 1, ("afile",)),
    ("vis-data-missing", ["visualize", "data", "{root}/nope.h5", "--out", "{root}/d.png"], 1, ("nope.h5",)),
    ("vis-data-index", ["visualize", "data", "{root}/data.h5", "--index", "99", "--out", "{root}/d.png"], 1,
     ("data.h5", "99")),
    ("vis-data-out-under-file", ["visualize", "data", "{root}/data.h5", "--out", "{root}/afile/d.png"], 1,
     ("afile", "is a file")),
    ("bench-model-missing", ["bench", "{root}/nope.onnx"], 1, ("nope.onnx",)),
    ("bench-batch-zero", ["bench", "{root}/m.pt", "--batch", "0"], 1, ("--batch",)),
    ("bench-runs-zero", ["bench", "{root}/m.pt", "--runs", "0"], 1, ("--runs",)),
    ("bench-size-stride", ["bench", "enet", "--input-size", "96x25"], 1, ("divisible by 8",)),
    ("models-size-stride", ["models", "--input-size", "96x25"], 1, ("divisible by 8",)),
    # evaluate: paths
    ("evaluate-culane-gt-missing", ["evaluate", "-b", "culane", "--gt", "{root}/nope", "--pred", "{root}"], 1,
     ("nope",)),
    ("evaluate-tusimple-gt-missing", ["evaluate", "-b", "tusimple", "--gt", "{root}/nope.json", "--pred",
                                      "{root}/text.txt"], 1, ("nope.json",)),
    ("evaluate-tusimple-pred-text", ["evaluate", "-b", "tusimple", "--gt", "{root}/text.txt", "--pred",
                                     "{root}/text.txt"], 1, ("text.txt",)),
]


# predict creates --out before it finds the video unreadable (an empty folder is left behind)
_KNOWN = {"predict-fake-video"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="empty --out "
                                                "folder left")) if c[0] in _KNOWN else c for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(env, cli, case):
    _, args, code, names = case
    check_bad(cli, env, args, code, names)


def test_unwritable_output_folder(tmp_path, cli, monkeypatch):
    """An --out in a folder the user may not write to fails before the work (simulated: the tests
    may run as root, for whom every folder is writable)."""
    import lanekd.utils.io as io

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    ckpt = make_checkpoint(tmp_path / "m.pt", "enet")
    make_tiny_h5(tmp_path / "d.h5", n=2, size=SMALL)
    for args in (["prepare", "synthetic", "--n", "2", "--out", locked / "x.h5"],
                 ["prepare", "synthetic", "--n", "2", "--layout", "culane", "--out", locked / "lay"],
                 ["export", ckpt, "--out", locked / "x.onnx"],
                 ["train-teacher", "--model", "enet", "--data", tmp_path / "d.h5", "--iters", "1",
                  "--batch-size", "2", "--out", locked / "run"]):
        err = check_bad(cli, tmp_path, args, 1, ("locked", "permission denied"))
        assert err.count("\n") == 1


def test_os_error_during_write_is_one_line(tmp_path, cli, monkeypatch):
    """A fault the pre-checks cannot foresee (disk full) is still one line, and the partial file goes."""
    import errno

    import lanekd.data.prepare as prep

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(prep.H5Writer, "__init__", full)
    err = check_bad(cli, tmp_path, ["prepare", "synthetic", "--n", "2", "--out", tmp_path / "x.h5"], 1,
                    ("x.h5", "No space left on device"))
    assert "Traceback" not in err


def _write_culane_one(root: Path, line: str) -> Path:
    rel = "driver_00/clip/00000.jpg"
    (root / rel).parent.mkdir(parents=True)
    cv2.imwrite(str(root / rel), np.full((590, 1640, 3), 80, np.uint8))
    (root / rel).with_suffix(".lines.txt").write_text(line + "\n")
    (root / "list").mkdir()
    (root / "list" / "train_gt.txt").write_text(f"/{rel} /laneseg_label_w16/{rel[:-4]}.png 1 0 0 0\n")
    return root


def test_huge_coordinate_is_drawn_on_the_right_side(tmp_path, cli):
    """A coordinate of 1e9 used to wrap in int32 and draw the lane on the left; it must run from
    x=400 (source) rightwards, like the same lane ending at the image border."""
    from lanekd.data import LaneH5

    labels = {}
    for name, x in (("huge", "1000000000"), ("border", None)):
        root = tmp_path / name
        # the border reference: the same straight line, cut where it leaves the 1640-wide frame
        line = f"400 589 {x} 560" if x else f"400 589 1639 {589 - 29 * (1639 - 400) / (1e9 - 400):.6f}"
        _write_culane_one(root, line)
        code, _, err = cli("prepare", "culane", "--root", root, "--out", tmp_path / f"{name}.h5",
                           "--size", "96x256", "--quiet")
        assert code == 0, err
        labels[name] = LaneH5(tmp_path / f"{name}.h5").label(0)
    xs = np.nonzero(labels["huge"])[1]
    assert xs.min() >= 400 * 256 / 1640 - 4 and xs.max() == 255
    np.testing.assert_array_equal(labels["huge"], labels["border"])


def test_huge_tusimple_x_stays_on_its_side(tmp_path):
    from lanekd.data.render import render_label

    lane = np.array([[600, 710], [1e9, 700], [1e9, 600]], np.float32)
    label = render_label([lane], [1], (720, 1280), (96, 160), 0, 2)
    xs = np.nonzero(label)[1]
    assert xs.min() >= 600 * 160 / 1280 - 3 and xs.max() == 159


@pytest.mark.parametrize("fmt", ["custom", "tusimple"])
def test_json_lines_error_column(tmp_path, cli, fmt):
    """The column in the message is where the JSON breaks (here 18: the missing comma)."""
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 40, 3), np.uint8))
    if fmt == "custom":
        good = '{"image": "a.png", "lanes": []}'
        broken = '{"image": "a.png""lanes": []}'
        path = tmp_path / "d.jsonl"
        root = path
    else:
        good = '{"raw_file": "a.png", "lanes": [], "h_samples": []}'
        broken = '{"raw_file": "ab""lanes": [], "h_samples": []}'
        root = tmp_path / "ts"
        root.mkdir()
        cv2.imwrite(str(root / "a.png"), np.zeros((20, 40, 3), np.uint8))
        path = root / "test_label.json"
    assert broken.index('"lanes"') + 1 == 18
    path.write_text(broken + "\n" + good + "\n")
    check_bad(cli, tmp_path, ["prepare", fmt, "--root", root, "--split", "test", "--out", tmp_path / "x.h5"],
              1, (f"{path.name}:1:", "column 18"))


def test_custom_misspelt_key_fails_or_is_skipped(tmp_path, cli):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 40, 3), np.uint8))
    path = tmp_path / "d.jsonl"
    path.write_text('{"image": "a.png", "lanes": []}\n{"image": "a.png", "Lanes": [[[1, 19], [5, 2]]]}\n'
                    '{"image": "a.png"}\n')
    check_bad(cli, tmp_path, ["prepare", "custom", "--root", path, "--out", tmp_path / "x.h5"], 1,
              ("d.jsonl:2:", "unknown key 'Lanes'"))
    code, stdout, err = cli("prepare", "custom", "--root", path, "--out", tmp_path / "x.h5", "--on-error",
                            "skip", "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["count"] == 1 and [s["line"] for s in res["skipped_samples"]] == [2, 3]
    assert "missing key 'lanes'" in res["skipped_samples"][1]["error"]


def test_lr_divergence_message_tells_whether_a_checkpoint_exists(tmp_path, cli):
    data = make_tiny_h5(tmp_path / "d.h5", n=4, size=SMALL)
    base = ["train-teacher", "--model", "enet", "--data", data, "--iters", "4", "--batch-size", "2",
            "--workers", "0", "--lr", "1e30", "--no-augment", "--quiet"]
    code, _, err = cli(*base, "--out", tmp_path / "a")
    assert code == 1 and "no checkpoint was written yet" in err and "is kept" not in err
    assert not (tmp_path / "a" / "last.pt").exists()
    code, _, err = cli(*base, "--out", tmp_path / "b", "--ckpt-every", "1")
    assert code == 1 and f"last good checkpoint {tmp_path / 'b' / 'last.pt'} is kept" in err
    assert len(err.strip().splitlines()) == 1


def test_failing_final_validation_keeps_the_weights(tmp_path):
    from lanekd.engine import TrainConfig, train
    from lanekd.engine.checkpoint import read_checkpoint
    from lanekd.errors import DataError, LaneKDError

    data = make_tiny_h5(tmp_path / "d.h5", n=4, size=SMALL)

    def broken_val(model):
        raise DataError(tmp_path / "val.h5", "sample 3: stored image cannot be decoded")

    cfg = TrainConfig(model="enet", data=str(data), iters=2, batch_size=2, workers=0, quiet=True,
                      out=str(tmp_path / "r"))
    with pytest.raises(LaneKDError, match=r"val.h5: .*weights are saved in .*last.pt"):
        train(cfg, val_evaluate=broken_val)
    assert read_checkpoint(tmp_path / "r" / "last.pt")["iteration"] == 2


def test_config_json_records_distill_defaults(tmp_path):
    from lanekd.distill import DistillConfig
    from lanekd.engine import TrainConfig, train

    data = make_tiny_h5(tmp_path / "d.h5", n=2, size=SMALL)
    train(TrainConfig(model="enet", data=str(data), iters=1, batch_size=2, workers=0, quiet=True,
                      out=str(tmp_path / "r"), distill=None))
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["distill"]
    assert saved == DistillConfig().to_dict()


def test_prepare_size_limit_in_library(tmp_path):
    from lanekd.data import prepare_dataset
    from lanekd.errors import ConfigError

    with pytest.raises(ConfigError, match="4096"):
        prepare_dataset("synthetic", tmp_path / "x.h5", n=1, size=(100000, 100000))
    assert not list(tmp_path.iterdir())


def test_no_third_party_noise_on_stderr(env):
    """FFmpeg writes "moov atom not found" straight to the process's stderr (not through Python),
    so only a real process shows it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lanekd", "predict", str(env / "m.pt"),
                           str(env / "drive.mp4"), "--out", str(env / "noise")], capture_output=True,
                          text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"})
    # (without lanekd's default FFmpeg log level, "[OPENCV:FFMPEG:16] moov atom not found" comes first)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {env / 'drive.mp4'}: cannot read video (not a video "
                                                "file or unsupported codec)"]
