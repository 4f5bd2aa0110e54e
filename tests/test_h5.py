"""HDF5 format: label rendering, write/read round trip, verify, info, fork/pickle safety."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from lanekd.data import LaneH5, prepare_dataset, verify_h5
from lanekd.data.h5 import DEFAULT_MEAN, DEFAULT_STD, sample_checksum
from lanekd.data.render import render_label, resize_label, scaled_line_width, source_to_target
from lanekd.data.sample import LaneSample
from lanekd.errors import DataError


def make_samples(tmp: Path, n: int = 4, size: tuple[int, int] = (59, 164),
                 ext: str = ".png") -> list[LaneSample]:
    """n small CULane-geometry frames written to disk (PNG: lossless, so pixels can be compared)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        # smooth content (JPEG-friendly, like real frames) that differs per frame
        img = np.stack([(xx * 255 // w + 40 * i) % 256, yy * 255 // h, (xx + yy + 30 * i) % 256], -1)
        img = img.astype(np.uint8)
        cv2.circle(img, (w // 2 + 5 * i, h // 2), 8, (255, 255, 255), -1)
        p = tmp / f"frame{i}{ext}"
        cv2.imwrite(str(p), img)
        lanes = [np.array([[20 + i, h - 1], [60, 10]], np.float32),
                 np.array([[140, h - 1], [100, 10]], np.float32)]
        out.append(LaneSample(name=f"/drv/v/frame{i}{ext}", image_path=p, size=size, lanes=lanes,
                              slots=[1, 2], exist=np.array([0, 1, 1, 0]), category=["normal", "night"][i % 2],
                              source=(str(tmp / "list.txt"), i + 1)))
    return out


def test_scaled_line_width_follows_culane_16px():
    assert scaled_line_width(16, (590, 1640), (590, 1640)) == 16
    # 16 * sqrt(800/1640 * 288/590) = 7.81 -> 8
    assert scaled_line_width(16, (590, 1640), (288, 800)) == 8
    # ENet-SAD setting: crop 240 rows, 208x976: 16 * sqrt(976/1640 * 208/350) = 9.52 -> 10
    assert scaled_line_width(16, (590, 1640), (208, 976), crop_top=240) == 10
    assert scaled_line_width(16, (590, 1640), (10, 20)) == 1


def test_source_to_target_pixel_centres():
    pts = np.array([[-0.5, -0.5], [1639.5, 589.5], [819.5, 294.5]])
    got = source_to_target(pts, (590, 1640), (295, 820))
    np.testing.assert_allclose(got, [[-0.5, -0.5], [819.5, 294.5], [409.5, 147]], atol=1e-5)
    # crop_top: source row 240 becomes row -0.5 + 0.5 * scale... the top edge of the kept band is at -0.5
    got = source_to_target(np.array([[0, 239.5]]), (590, 1640), (175, 820), crop_top=240)
    np.testing.assert_allclose(got[0, 1], -0.5, atol=1e-6)


def test_render_label_slots_and_width():
    lab = render_label([np.array([[10, 99], [10, 0]], np.float32), np.array([[50, 99], [50, 0]], np.float32)],
                       [0, 3], (100, 100), (100, 100), line_width=5)
    assert lab.dtype == np.uint8 and lab.shape == (100, 100)
    assert set(np.unique(lab)) == {0, 1, 4}
    row = lab[50]
    # OpenCV thick lines (as the official seg_label_generate draws them) cover thickness + 1 columns
    # when odd: 7 px centred on x = 10, exactly what cv2.line draws on integer coordinates.
    assert np.flatnonzero(row == 1).tolist() == [7, 8, 9, 10, 11, 12, 13]
    assert np.flatnonzero(row == 4).tolist() == [47, 48, 49, 50, 51, 52, 53]
    ref = np.zeros((100, 100), np.uint8)
    cv2.line(ref, (10, 99), (10, 0), 1, 5)
    np.testing.assert_array_equal(lab == 1, ref == 1)
    # a single-point lane draws nothing
    assert render_label([np.array([[5, 5]], np.float32)], [0], (100, 100), (100, 100)).max() == 0


def test_resize_label_crop_and_nearest():
    lab = np.zeros((10, 4), np.uint8)
    lab[6:] = 3
    lab[0:6] = 7  # cropped away
    got = resize_label(lab, (2, 2), crop_top=6)
    assert got.tolist() == [[3, 3], [3, 3]]


def test_roundtrip_encoded_and_raw(tmp_path):
    samples = make_samples(tmp_path)
    enc = prepare_dataset("culane", tmp_path / "e.h5", samples=samples, size=(30, 80))
    raw = prepare_dataset("culane", tmp_path / "r.h5", samples=samples, size=(30, 80), storage="raw")
    assert enc.count == raw.count == 4
    with LaneH5(tmp_path / "e.h5") as de, LaneH5(tmp_path / "r.h5") as dr:
        assert len(de) == len(dr) == 4
        assert de.attrs["storage"] == "encoded" and dr.attrs["storage"] == "raw"
        assert de.attrs["size"] == (30, 80) and de.attrs["source_size"] == (590, 1640)
        assert de.attrs["mean"] == pytest.approx(DEFAULT_MEAN)
        assert de.attrs["std"] == pytest.approx(DEFAULT_STD)
        assert de.attrs["num_slots"] == 4 and de.attrs["num_classes"] == 5 and de.attrs["format_version"] == 1
        for i, s in enumerate(samples):
            a, b = de[i], dr[i]
            src = cv2.cvtColor(cv2.imread(str(s.image_path)), cv2.COLOR_BGR2RGB)
            expect = cv2.resize(src, (80, 30), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_array_equal(b["image"], expect)  # raw is exact
            assert a["image"].shape == (30, 80, 3) and a["image"].dtype == np.uint8
            assert np.abs(a["image"].astype(int) - expect).mean() < 4  # JPEG q95: small error
            np.testing.assert_array_equal(a["label"], b["label"])
            assert set(np.unique(a["label"])) <= {0, 2, 3}
            assert a["exist"].tolist() == [0, 1, 1, 0] and a["exist"].dtype == np.uint8
            assert a["name"] == s.name  # verbatim, leading '/' kept
            assert a["category"] == s.category
            assert a["slots"] == [1, 2]
            for got, want in zip(a["lanes"], s.lanes, strict=True):
                np.testing.assert_array_equal(got, want)
            assert a["source_size"] == (59, 164)
    assert verify_h5(tmp_path / "e.h5")["count"] == 4
    assert verify_h5(tmp_path / "r.h5")["count"] == 4


def test_readable_with_h5py_alone(tmp_path):
    samples = make_samples(tmp_path, n=3)
    prepare_dataset("culane", tmp_path / "e.h5", samples=samples, size=(30, 80))
    ref = LaneH5(tmp_path / "e.h5")[2]
    # the recipe documented in docs/hdf5.md
    with h5py.File(tmp_path / "e.h5", "r") as f:
        o = f["image_offsets"][()]
        img = cv2.imdecode(f["image_bytes"][o[2]:o[3]], cv2.IMREAD_COLOR)[..., ::-1]
        label = f["labels"][2]
        k0, k1 = f["sample_lanes"][2:4]
        lo = f["lane_offsets"][()]
        lanes = [f["lane_points"][lo[k]:lo[k + 1]] for k in range(k0, k1)]
        name = f["names"][2].decode()
        assert f["checksums"][2] == sample_checksum(f["image_bytes"][o[2]:o[3]], label)
    np.testing.assert_array_equal(img, ref["image"])
    np.testing.assert_array_equal(label, ref["label"])
    assert name == ref["name"] and len(lanes) == 2


def test_index_errors_and_negative_index(tmp_path):
    prepare_dataset("culane", tmp_path / "e.h5", samples=make_samples(tmp_path, n=2), size=(30, 80))
    ds = LaneH5(tmp_path / "e.h5")
    assert ds[-1]["name"] == ds[1]["name"]
    with pytest.raises(IndexError):
        ds[2]


def test_empty_lanes_sample(tmp_path):
    s = make_samples(tmp_path, n=1)[0]
    s.lanes, s.slots, s.exist = [], [], np.zeros(4, np.uint8)
    prepare_dataset("culane", tmp_path / "e.h5", samples=[s], size=(30, 80))
    x = LaneH5(tmp_path / "e.h5")[0]
    assert x["lanes"] == [] and x["label"].max() == 0


def _corrupt(path: Path, key: str, index) -> None:
    with h5py.File(path, "r+") as f:
        ds = f[key]
        v = ds[index]
        ds[index] = v ^ 1 if np.ndim(v) == 0 else (v ^ 1)


def test_verify_names_first_bad_sample(tmp_path, cli):
    prepare_dataset("culane", tmp_path / "e.h5", samples=make_samples(tmp_path, n=4), size=(30, 80))
    code, out, err = cli("prepare", "--verify", tmp_path / "e.h5")
    assert code == 0 and "4 samples" in out
    with h5py.File(tmp_path / "e.h5", "r+") as f:  # flip one label pixel of sample 2
        lab = f["labels"][2]
        lab[0, 0] ^= 1
        f["labels"][2] = lab
    with pytest.raises(DataError, match=r"sample 2 \(/drv/v/frame2.png\): checksum mismatch"):
        verify_h5(tmp_path / "e.h5")
    code, out, err = cli("prepare", "--verify", tmp_path / "e.h5")
    assert code == 1 and "sample 2" in err and "checksum" in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_verify_detects_image_bytes_and_shape_damage(tmp_path):
    prepare_dataset("culane", tmp_path / "e.h5", samples=make_samples(tmp_path, n=3), size=(30, 80))
    with h5py.File(tmp_path / "e.h5", "r+") as f:
        o = f["image_offsets"][()]
        f["image_bytes"][o[1] + 700] ^= 0xFF
    with pytest.raises(DataError, match="sample 1 "):
        verify_h5(tmp_path / "e.h5")
    prepare_dataset("culane", tmp_path / "f.h5", samples=make_samples(tmp_path, n=3), size=(30, 80))
    with h5py.File(tmp_path / "f.h5", "r+") as f:
        f["exist"].resize(2, axis=0)
    with pytest.raises(DataError, match="'exist' has shape"):
        verify_h5(tmp_path / "f.h5")


def test_info_text_and_json(tmp_path, cli):
    prepare_dataset("culane", tmp_path / "e.h5", samples=make_samples(tmp_path, n=3), size=(30, 80))
    code, out, err = cli("info", tmp_path / "e.h5", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["samples"] == 3 and doc["dataset"] == "culane" and doc["size"] == [30, 80]
    assert doc["storage"] == "encoded" and doc["num_slots"] == 4 and doc["complete"] is True
    code, out, err = cli("info", tmp_path / "e.h5")
    assert code == 0 and "samples" in out and "30x80" in out


def test_info_and_reader_reject_bad_files(tmp_path, cli):
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    code, _, err = cli("info", tmp_path / "x.h5")
    assert code == 1 and "x.h5" in err and "Traceback" not in err
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["a"] = 1
    code, _, err = cli("info", tmp_path / "y.h5")
    assert code == 1 and "not a lanekd HDF5 file" in err
    code, _, err = cli("info", tmp_path / "missing.h5")
    assert code == 1 and "missing.h5" in err
    with pytest.raises(DataError, match="not a lanekd"):
        LaneH5(tmp_path / "y.h5")


def test_pickle_drops_handle_and_reopens(tmp_path):
    prepare_dataset("culane", tmp_path / "e.h5", samples=make_samples(tmp_path, n=2), size=(30, 80))
    ds = LaneH5(tmp_path / "e.h5")
    first = ds[0]["label"]
    assert ds._file is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None
    np.testing.assert_array_equal(clone[0]["label"], first)
    # a handle from another process id is never reused
    ds._pid = -12345
    old = ds._file
    ds.label(1)
    assert ds._file is not old
