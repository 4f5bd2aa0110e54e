"""`lanekd prepare` end to end: CULane layout, synthetic, workers, bad input, skip, SIGKILL + resume,
and the synthetic cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from lanekd.data import LaneH5, ensure_synthetic, prepare_dataset
from lanekd.utils.io import tmp_path_for

CULANE_SIZE = (590, 1640)
LANES = [  # left-to-right lanes of a CULane frame, bottom to top
    "100 589 400 400 600 300",
    "600 589 700 400 780 300",
    "1100 589 950 400 860 300",
    "1600 589 1250 400 940 300",
]


def write_culane(root: Path, n: int = 5) -> Path:
    """A tiny CULane layout: list/train_gt.txt + JPEG frames + .lines.txt (flags 0 1 1 1 / 1 1 1 1)."""
    h, w = CULANE_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    lines = []
    for i in range(n):
        rel = f"driver_00_30frame/clip.MP4/{i:05d}.jpg"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = np.stack([(xx // 7 + 20 * i) % 256, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
        cv2.imwrite(str(p), img)
        lanes = LANES[1:] if i % 2 else LANES
        p.with_suffix(".lines.txt").write_text("\n".join(lanes) + "\n")
        flags = "0 1 1 1" if i % 2 else "1 1 1 1"
        lines.append(f"/{rel} /laneseg_label_w16/{rel[:-4]}.png {flags}")
    (root / "list").mkdir(parents=True, exist_ok=True)
    (root / "list" / "train_gt.txt").write_text("\n".join(lines) + "\n")
    return root


def h5_content(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of a file (strings as arrays), for content equality."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
        attrs = {k: f.attrs[k] for k in f.attrs}
    out["__count"] = np.array(attrs["count"])
    return out


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = h5_content(a), h5_content(b)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)


def no_leftovers(out: Path) -> bool:
    return not out.exists() and not tmp_path_for(out).exists()


@pytest.fixture
def culane(tmp_path):
    return write_culane(tmp_path / "CULane")


def test_prepare_culane_cli(culane, tmp_path, cli):
    out = tmp_path / "train.h5"
    code, stdout, err = cli("prepare", "culane", "--root", culane, "--out", out, "--size", "40x96",
                            "--quiet")
    assert code == 0, err
    assert stdout.count("\n") == 1 and "prepared 5 culane/train samples" in stdout
    assert out.exists() and not tmp_path_for(out).exists()
    ds = LaneH5(out)
    assert len(ds) == 5 and ds.attrs["size"] == (40, 96) and ds.attrs["dataset"] == "culane"
    assert ds.names[0] == "/driver_00_30frame/clip.MP4/00000.jpg"  # verbatim, leading '/'
    assert ds[0]["exist"].tolist() == [1, 1, 1, 1] and ds[1]["exist"].tolist() == [0, 1, 1, 1]
    assert set(np.unique(ds[0]["label"])) == {0, 1, 2, 3, 4}
    assert set(np.unique(ds[1]["label"])) == {0, 2, 3, 4}
    lanes, slots = ds.lanes(1)
    assert slots == [1, 2, 3]
    np.testing.assert_allclose(lanes[0], [[600, 589], [700, 400], [780, 300]])
    code, stdout, _ = cli("prepare", "--verify", out, "--json")
    assert code == 0 and json.loads(stdout)["count"] == 5
    code, stdout, _ = cli("prepare", "culane", "--root", culane, "--out", tmp_path / "j.h5",
                          "--size", "40x96", "--json")
    doc = json.loads(stdout)
    assert code == 0 and doc["count"] == 5 and doc["skipped"] == 0 and doc["storage"] == "encoded"


def test_defaults_from_dataset_info(culane, tmp_path):
    res = prepare_dataset("culane", tmp_path / "d.h5", root=culane)
    assert res.size == (288, 800)
    ds = LaneH5(tmp_path / "d.h5")
    assert ds.attrs["line_width"] == 8 and ds.attrs["crop_top"] == 0
    res = prepare_dataset("culane", tmp_path / "c.h5", root=culane, size=(104, 488), crop_top=240)
    lab = LaneH5(tmp_path / "c.h5")[0]["label"]
    # lanes end at source row 300: 60 rows below the crop, of 350 kept -> about row 17.5 of 104
    rows = np.flatnonzero(lab.any(axis=1))
    assert 12 <= rows.min() <= 20 and rows.max() == 103


def test_workers_give_identical_file(culane, tmp_path):
    prepare_dataset("culane", tmp_path / "w1.h5", root=culane, size=(36, 100), workers=1)
    prepare_dataset("culane", tmp_path / "w2.h5", root=culane, size=(36, 100), workers=2)
    assert_same_content(tmp_path / "w1.h5", tmp_path / "w2.h5")


def _break(culane: Path, i: int, how: str) -> Path:
    img = culane / f"driver_00_30frame/clip.MP4/{i:05d}.jpg"
    if how == "missing":
        img.unlink()
    elif how == "corrupt":
        img.write_bytes(b"\xff\xd8 this is not a JPEG at all \xff\xd9")
    elif how == "truncated":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        img.write_bytes(os.urandom(3000))
    elif how == "lines":
        img.with_suffix(".lines.txt").write_text("100 589 abc 400\n")
    elif how == "odd":
        img.with_suffix(".lines.txt").write_text("100 589 400\n")
    return img


@pytest.mark.parametrize("how, expect", [
    ("missing", r"train_gt.txt:3: .*not found"),
    ("corrupt", r"00002.jpg: cannot decode image"),
    ("truncated", r"00002.jpg: truncated JPEG"),
    ("garbage", r"00002.jpg: cannot decode image"),
    ("lines", r"00002.lines.txt:1: non-numeric"),
    ("odd", r"00002.lines.txt:1: odd number"),
])
def test_bad_input_fails_cleanly(culane, tmp_path, cli, how, expect):
    import re

    _break(culane, 2, how)
    out = tmp_path / "bad.h5"
    code, stdout, err = cli("prepare", "culane", "--root", culane, "--out", out, "--size", "40x96",
                            "--resume")
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(expect, err), err
    assert no_leftovers(out)  # not even the temp file, --resume or not


def test_bad_input_fails_cleanly_with_workers(culane, tmp_path, cli):
    _break(culane, 3, "truncated")
    out = tmp_path / "bad.h5"
    code, _, err = cli("prepare", "culane", "--root", culane, "--out", out, "--size", "40x96",
                       "--workers", "2")
    assert code == 1 and "00003.jpg: truncated JPEG" in err and "train_gt.txt:4" in err
    assert no_leftovers(out)


def test_skip_mode_reports_and_writes_json(culane, tmp_path, cli):
    _break(culane, 1, "truncated")
    _break(culane, 3, "lines")
    out = tmp_path / "skip.h5"
    code, stdout, err = cli("prepare", "culane", "--root", culane, "--out", out, "--size", "40x96",
                            "--on-error", "skip")
    assert code == 0, err
    assert "skipped 2 bad samples" in stdout
    ds = LaneH5(out)
    assert len(ds) == 3
    assert ds.names == [f"/driver_00_30frame/clip.MP4/{i:05d}.jpg" for i in (0, 2, 4)]
    rep = json.loads((tmp_path / "skip.h5.skipped.json").read_text())
    assert rep["count"] == 2
    files = sorted(Path(s["file"]).name for s in rep["skipped"])
    assert files == ["00001.jpg", "00003.lines.txt"]
    bad_img = next(s for s in rep["skipped"] if s["file"].endswith(".jpg"))
    assert bad_img["name"] == "/driver_00_30frame/clip.MP4/00001.jpg" and "truncated" in bad_img["error"]
    assert ds.attrs["skipped"] != "[]"
    # a later clean run removes the stale report
    _break(culane, 1, "missing")
    write_culane(culane)
    cli("prepare", "culane", "--root", culane, "--out", out, "--size", "40x96", "--on-error", "skip")
    assert not (tmp_path / "skip.h5.skipped.json").exists()


def test_bad_options(culane, tmp_path, cli):
    assert cli("prepare", "culane", "--root", culane, "--out", tmp_path / "x.h5", "--storage", "zip")[0] == 2
    assert cli("prepare", "nosuch", "--root", culane, "--out", tmp_path / "x.h5")[0] == 2
    assert cli("prepare", "culane", "--root", culane)[0] == 2
    assert cli("prepare", "synthetic", "--root", culane, "--out", tmp_path / "x.h5")[0] == 2
    assert cli("prepare", "culane", "--root", culane, "--out", tmp_path / "x.h5", "--size", "3x")[0] == 2
    code, _, err = cli("prepare", "culane", "--out", tmp_path / "x.h5")
    assert code == 1 and "--root" in err
    code, _, err = cli("prepare", "culane", "--root", tmp_path / "nowhere", "--out", tmp_path / "x.h5")
    assert code == 1 and "Traceback" not in err
    assert no_leftovers(tmp_path / "x.h5")


def test_synthetic_cli_deterministic(tmp_path, cli):
    from lanekd.data.synthetic import SYNTHETIC_CATEGORIES

    for name in ("a.h5", "b.h5"):
        code, _, err = cli("prepare", "synthetic", "--n", "6", "--seed", "3", "--size", "40x96",
                           "--out", tmp_path / name, "--quiet")
        assert code == 0, err
    a = LaneH5(tmp_path / "a.h5")
    assert len(a) == 6 and a.attrs["dataset"] == "synthetic" and a.attrs["source_size"] == (590, 1640)
    assert set(a.categories) <= set(SYNTHETIC_CATEGORIES)
    assert a.names[0] == "synthetic/train/000000.jpg"
    assert_same_content(tmp_path / "a.h5", tmp_path / "b.h5")


def test_synthetic_culane_layout_round_trip(tmp_path, cli):
    code, stdout, err = cli("prepare", "synthetic", "--layout", "culane", "--n", "4", "--split", "train",
                            "--out", tmp_path / "layout")
    assert code == 0, err
    assert (tmp_path / "layout" / "list" / "train_gt.txt").is_file()
    code, stdout, err = cli("prepare", "culane", "--root", tmp_path / "layout", "--out", tmp_path / "l.h5",
                            "--size", "40x96", "--quiet")
    assert code == 0, err
    ds = LaneH5(tmp_path / "l.h5")
    assert len(ds) == 4
    # culane masks were used: same slots as the polylines say
    for i in range(4):
        present = {s + 1 for s in ds.lanes(i)[1]}
        assert set(np.unique(ds.label(i))) - {0} <= present


def test_synthetic_tusimple_layout_round_trip(tmp_path, cli):
    code, stdout, err = cli("prepare", "synthetic", "--layout", "tusimple", "--n", "3", "--split", "val",
                            "--out", tmp_path / "layout", "--json")
    assert code == 0, err
    assert json.loads(stdout)["layout"] == "tusimple"
    assert (tmp_path / "layout" / "label_data_0531.json").is_file()  # the file TuSimple's val split reads
    code, stdout, err = cli("prepare", "tusimple", "--root", tmp_path / "layout", "--split", "val",
                            "--out", tmp_path / "t.h5", "--size", "48x80", "--quiet")
    assert code == 0, err
    ds = LaneH5(tmp_path / "t.h5")
    assert len(ds) == 3 and ds.attrs["num_slots"] == 6 and ds.attrs["source_size"] == (720, 1280)
    code, _, err = cli("prepare", "synthetic", "--layout", "tusimple", "--n", "1", "--size", "96x160",
                       "--out", tmp_path / "x")
    assert code == 2 and "720x1280" in err


def _wait_committed(tmp: Path, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll the partial file's committed count (reading without the writer's lock)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return -1
        try:
            with h5py.File(tmp, "r", locking=False) as f:
                count = int(f.attrs["count"])
            if count >= at_least:
                return count
        except (OSError, KeyError):
            pass
        time.sleep(0.01)
    return -1


def test_sigkill_then_resume_gives_same_content(tmp_path, cli):
    out = tmp_path / "r.h5"
    args = ["prepare", "synthetic", "--n", "40", "--size", "40x96", "--flush-every", "3", "--out", str(out),
            "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "lanekd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        got = _wait_committed(tmp_path_for(out), 6, proc)
        if got < 0:
            pytest.fail(f"conversion finished before it could be killed: {proc.communicate()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists() and tmp_path_for(out).exists()
    # different options: refuse to mix
    code, _, err = cli("prepare", "synthetic", "--n", "40", "--size", "40x120", "--flush-every", "3",
                       "--out", out, "--resume")
    assert code == 1 and "cannot resume" in err and "size" in err
    assert tmp_path_for(out).exists()
    code, stdout, err = cli(*args[:-1], "--resume")
    assert code == 0, err
    assert "resumed after" in stdout
    resumed_after = int(stdout.split("resumed after ")[1].split()[0].rstrip(",;"))
    assert 0 < resumed_after < 40
    cli("prepare", "synthetic", "--n", "40", "--size", "40x96", "--out", tmp_path / "full.h5")
    assert_same_content(out, tmp_path / "full.h5")


def test_ensure_synthetic_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("LANEKD_CACHE", str(tmp_path / "cache"))
    p = ensure_synthetic("val", 3, size=(36, 100), seed=1)
    assert p.parent == tmp_path / "cache" and p.is_file()
    assert LaneH5(p).attrs["split"] == "val" and len(LaneH5(p)) == 3
    mtime = p.stat().st_mtime_ns
    assert ensure_synthetic("val", 3, size=(36, 100), seed=1) == p and p.stat().st_mtime_ns == mtime
    other = ensure_synthetic("val", 3, size=(36, 100), seed=2, cache_dir=tmp_path / "c2")
    assert other.parent == tmp_path / "c2" and other.name != p.name


def test_ensure_synthetic_two_processes_race(tmp_path):
    code = ("import sys; from lanekd.data import ensure_synthetic; "
            "print(ensure_synthetic('train', 4, size=(36, 100), cache_dir=sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    assert len(LaneH5(paths.pop())) == 4
    assert not list(tmp_path.glob(".*.tmp"))


def test_realdata_culane_and_tusimple(realdata, tmp_path, cli):
    code, _, err = cli("prepare", "culane", "--root", realdata / "culane", "--out", tmp_path / "c.h5",
                       "--quiet")
    assert code == 0, err
    ds = LaneH5(tmp_path / "c.h5")
    rows = [line.split() for line in (realdata / "culane" / "list" / "train_gt.txt").read_text().splitlines()
            if line.strip()]
    assert len(ds) == len(rows) == 15
    for i, row in enumerate(rows):
        assert ds.names[i] == row[0]
        assert ds.exist[i].tolist() == [int(v) for v in row[2:6]]
        present = {k + 1 for k, v in enumerate(row[2:6]) if v == "1"}
        assert set(np.unique(ds.label(i))) - {0} == present
    # TuSimple frames are PNG bytes behind a .jpg name
    code, _, err = cli("prepare", "tusimple", "--root", realdata / "tusimple", "--out", tmp_path / "t.h5",
                       "--quiet")
    assert code == 0, err
    t = LaneH5(tmp_path / "t.h5")
    assert len(t) == 6 and t.size == (368, 640) and t.num_slots == 6
    assert cli("prepare", "--verify", tmp_path / "t.h5")[0] == 0
