"""Synthetic road scenes: determinism, geometry of the ground truth, categories, the CULane and
TuSimple rigs and layouts."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.data.sample import LaneSample
from lanekd.data.synthetic import (
    CATEGORY_BLOCK,
    CATEGORY_MIX,
    SYNTHETIC_CATEGORIES,
    TUSIMPLE_H_SAMPLES,
    TUSIMPLE_LABEL_FILES,
    format_culane_lines,
    generate_samples,
    lane_points,
    render_laneseg_mask,
    render_scene,
    scene_category,
    tusimple_lanes,
    write_culane_layout,
    write_tusimple_layout,
    written_scenes,
)
from lanekd.data.synthetic_scene import Camera
from lanekd.errors import ConfigError

SMALL = (148, 410)  # quarter-size frames keep the bulk checks fast


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def small_scenes():
    return list(generate_samples(90, seed=0, split="train", size=SMALL))


# --------------------------------------------------------------------------- determinism
def test_same_seed_index_gives_identical_bytes():
    a = render_scene(3, 5, "train", SMALL)
    b = render_scene(3, 5, "train", SMALL)
    assert _digest(a.image) == _digest(b.image)
    assert a.slots == b.slots and a.category == b.category
    for la, lb in zip(a.lanes, b.lanes, strict=True):
        np.testing.assert_array_equal(la, lb)


def test_independent_of_n_and_order():
    direct = render_scene(3, 5, "val", SMALL)
    via_gen = list(generate_samples(7, seed=3, split="val", size=SMALL))[5]
    render_scene(3, 9, "val", SMALL)  # rendering something else first must not matter
    again = render_scene(3, 5, "val", SMALL)
    assert _digest(direct.image) == _digest(via_gen.image) == _digest(again.image)
    assert via_gen.name == "synthetic/val/000005.jpg"


def test_different_index_or_seed_differs():
    a = render_scene(0, 0, "train", SMALL)
    assert _digest(a.image) != _digest(render_scene(0, 1, "train", SMALL).image)
    assert _digest(a.image) != _digest(render_scene(1, 0, "train", SMALL).image)


def test_deterministic_across_processes():
    code = (
        "import hashlib; from lanekd.data.synthetic import render_scene; "
        f"print(hashlib.sha256(render_scene(0, 3, 'test', {SMALL!r}).image.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == _digest(render_scene(0, 3, "test", SMALL).image)


def test_same_scene_at_two_sizes_has_scaled_lanes():
    big, small = render_scene(0, 6, "train"), render_scene(0, 6, "train", (295, 820))
    assert big.category == small.category and big.slots == small.slots
    for lb, ls in zip(big.lanes, small.lanes, strict=True):
        # compare x at the small frame's rows, mapped into the big frame
        y = ls[:, 1] * 2.0
        inside = (y <= lb[0, 1]) & (y >= lb[-1, 1])
        xb = np.interp(y[inside], lb[::-1, 1], lb[::-1, 0])
        np.testing.assert_allclose(ls[inside, 0] * 2.0, xb, atol=2.0)
    # and the picture is the same one, up to fine noise
    down = cv2.resize(big.image, (820, 295), interpolation=cv2.INTER_AREA)
    assert np.abs(down.astype(int) - small.image).mean() < 10.0


def test_splits_disjoint():
    digests = {
        split: {_digest(s.image) for s in generate_samples(8, 0, split, SMALL)}
        for split in ("train", "val", "test")
    }
    assert all(len(d) == 8 for d in digests.values())
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


# --------------------------------------------------------------------------- sample contract
@pytest.mark.parametrize("size", [(590, 1640), (288, 800)])
def test_shapes_and_dtypes(size):
    s = render_scene(0, 4, "test", size)
    assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
    assert s.size == size and s.num_slots == 4
    assert s.exist.shape == (4,) and s.exist.dtype == np.uint8
    assert s.name == "synthetic/test/000004.jpg" and s.image_path == Path(s.name)
    assert s.category in SYNTHETIC_CATEGORIES
    for lane in s.lanes:
        assert lane.dtype == np.float32 and lane.ndim == 2 and lane.shape[1] == 2


def test_lanes_inside_image_and_bottom_to_top(small_scenes):
    H, W = SMALL
    step = 10 * H / 590
    n_lanes = 0
    for s in small_scenes:
        for lane in s.lanes:
            n_lanes += 1
            assert len(lane) >= 2
            assert (lane[:, 0] >= 0).all() and (lane[:, 0] <= W - 1).all()
            assert (lane[:, 1] >= 0).all() and (lane[:, 1] <= H - 1).all()
            dy = np.diff(lane[:, 1])
            np.testing.assert_allclose(dy, -step, atol=2e-3)  # bottom to top, CULane row spacing
            # every row sits on the H-1 - k*step grid
            k = (H - 1 - lane[:, 1]) / step
            np.testing.assert_allclose(k, np.round(k), atol=1e-3)
    assert n_lanes > 100


def test_slots_exist_consistent_and_left_to_right(small_scenes):
    for s in small_scenes:
        assert s.slots == sorted(set(s.slots))
        assert all(0 <= k < 4 for k in s.slots)
        assert [int(k) for k in np.flatnonzero(s.exist)] == s.slots
        # where two lanes share a row, the lower slot is further left
        for (la, ka), (lb, kb) in zip(zip(s.lanes, s.slots), list(zip(s.lanes, s.slots))[1:]):
            assert ka < kb
            common = np.intersect1d(np.round(la[:, 1], 2), np.round(lb[:, 1], 2))
            if len(common):
                y = common[0]
                xa = la[np.isclose(np.round(la[:, 1], 2), y), 0][0]
                xb = lb[np.isclose(np.round(lb[:, 1], 2), y), 0][0]
                assert xa < xb


# --------------------------------------------------------------------------- categories
def test_category_mix_per_block():
    assert sum(CATEGORY_MIX.values()) == CATEGORY_BLOCK
    assert tuple(CATEGORY_MIX) == SYNTHETIC_CATEGORIES
    for block in range(3):
        cats = [scene_category(7, "train", block * CATEGORY_BLOCK + i) for i in range(CATEGORY_BLOCK)]
        assert {c: cats.count(c) for c in SYNTHETIC_CATEGORIES} == CATEGORY_MIX
    order0 = [scene_category(7, "train", i) for i in range(CATEGORY_BLOCK)]
    order1 = [scene_category(7, "train", CATEGORY_BLOCK + i) for i in range(CATEGORY_BLOCK)]
    assert order0 != order1  # each block is shuffled on its own


def test_category_coverage_and_cross_has_no_lanes(small_scenes):
    cats = [s.category for s in small_scenes]
    assert set(cats) == set(SYNTHETIC_CATEGORIES)
    cross = [s for s in small_scenes if s.category == "cross"]
    assert cross
    for s in cross:
        assert s.lanes == [] and s.slots == [] and not s.exist.any()
    others = [s for s in small_scenes if s.category not in ("cross",)]
    assert np.mean([len(s.lanes) for s in others]) > 2.0


def _lane_contrast(sample) -> list[float]:
    """Mean grey level on the annotated polyline minus the mean 30 px to either side (lower image half)."""
    g = cv2.cvtColor(sample.image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    H, W = g.shape
    out = []
    for lane in sample.lanes:
        ys = np.arange(lane[-1, 1], lane[0, 1], 2.0)
        xs = np.interp(ys, lane[::-1, 1], lane[::-1, 0])
        keep = (ys > 0.55 * H) & (xs >= 30) & (xs < W - 30)
        if keep.sum() < 5:
            continue
        yi, xi = np.round(ys[keep]).astype(int), np.round(xs[keep]).astype(int)
        out.append(g[yi, xi].mean() - 0.5 * (g[yi, xi - 30].mean() + g[yi, xi + 30].mean()))
    return out


def test_paint_lies_under_polylines_and_noline_lacks_it():
    def first(cat: str, k: int) -> list[int]:
        return [i for i in range(300) if scene_category(0, "test", i) == cat][:k]

    normal = [c for i in first("normal", 4) for c in _lane_contrast(render_scene(0, i, "test"))]
    noline = [c for i in first("noline", 4) for c in _lane_contrast(render_scene(0, i, "test"))]
    assert len(normal) >= 8 and len(noline) >= 6
    assert np.mean(normal) > 20.0  # the paint is under the annotation
    assert np.mean(noline) < 0.5 * np.mean(normal)  # annotated where paint is missing or worn


# --------------------------------------------------------------------------- geometry golden values
def test_lane_points_hand_computed():
    # f h / (y - yh) = Z, so x = cx + X (y - yh) / h = 820 + (y - 290) for X = h = 1.5
    cam = Camera(590, 1640, f=1000.0, h=1.5, cx=820.0, yh=290.0)
    pts = lane_points(cam, 1.5, z_end=100.0)  # top row strictly below 290 + 15
    assert pts[0].tolist() == [1119.0, 589.0]
    assert pts[-1].tolist() == [839.0, 309.0]
    assert len(pts) == 29
    # a lane entering from the right edge starts at the first in-image row: x = 820 + 4 (y - 290)
    pts = lane_points(cam, 6.0, z_end=100.0)
    assert pts[0].tolist() == [1616.0, 489.0]
    # the camera offset moves every lane the other way, curvature bends the far end
    shifted = lane_points(Camera(590, 1640, f=1000.0, h=1.5, cx=820.0, yh=290.0, off=0.75), 1.5, 100.0)
    assert shifted[0].tolist() == [969.5, 589.0]
    bent = lane_points(Camera(590, 1640, f=1000.0, h=1.5, cx=820.0, yh=290.0, c0=0.002), 1.5, 100.0)
    assert bent[-1, 0] - 839.0 == pytest.approx(0.5 * 0.002 * 1000 * 1000 * 1.5 / 19, abs=1e-2)


def test_laneseg_mask_width_and_values():
    s = render_scene(0, 1, "train")
    mask = render_laneseg_mask(s)
    assert mask.shape == s.size and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, *(k + 1 for k in s.slots)}
    # a vertical lane is 16 px wide at 1640 and 8 px at 820; later slots overwrite earlier ones
    lanes = [
        np.array([[400.0, 580.0], [400.0, 300.0]], np.float32),
        np.array([[410.0, 580.0], [410.0, 300.0]], np.float32),
    ]
    sample = LaneSample("x.jpg", Path("x.jpg"), (590, 1640), lanes, [1, 2], exist=[0, 1, 1, 0])
    row = render_laneseg_mask(sample)[440]
    assert np.count_nonzero(row) == 27 and np.count_nonzero(row == 3) == 17  # OpenCV draws 2*(16//2)+1
    sample.size = (295, 820)
    sample.lanes = [lane * 0.5 for lane in lanes]
    assert np.count_nonzero(render_laneseg_mask(sample)[220] == 3) == 9


# --------------------------------------------------------------------------- CULane layout
def _parse_lines(path: Path) -> list[np.ndarray]:
    lanes = []
    for line in path.read_text().splitlines():
        vals = np.array([float(v) for v in line.split()], np.float64)
        assert len(vals) % 2 == 0
        lanes.append(vals.reshape(-1, 2))
    return lanes


def test_write_culane_layout_test_split_round_trip(tmp_path):
    n = 12
    root = write_culane_layout(tmp_path / "synth", n, seed=2, split="test", size=(295, 820), quality=95)
    assert root == tmp_path / "synth"
    listed = (root / "list" / "test.txt").read_text().splitlines()
    assert len(listed) == n and all(line.startswith("/driver_synth/test/") for line in listed)
    samples = list(generate_samples(n, seed=2, split="test", size=(295, 820)))
    for line, s in zip(listed, samples, strict=True):
        img = cv2.imread(str(root / line.lstrip("/")))
        assert img is not None and img.shape == (295, 820, 3)
        assert np.abs(img[..., ::-1].astype(int) - s.image).mean() < 4.0  # JPEG of the same frame
        parsed = _parse_lines((root / line.lstrip("/")).with_suffix(".lines.txt"))
        assert len(parsed) == len(s.lanes)
        for got, want in zip(parsed, s.lanes, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-2)
    split_files = sorted((root / "list" / "test_split").iterdir())
    assert [p.name for p in split_files] == sorted(
        f"test{k}_{c}.txt" for k, c in enumerate(SYNTHETIC_CATEGORIES)
    )
    union = []
    for k, cat in enumerate(SYNTHETIC_CATEGORIES):
        entries = (root / "list" / "test_split" / f"test{k}_{cat}.txt").read_text().splitlines()
        assert all(not e.startswith("/") for e in entries)
        for e in entries:
            assert samples[int(Path(e).stem)].category == cat
        union += entries
    assert sorted("/" + e for e in union) == sorted(listed)
    assert not [p for p in root.rglob(".*")]  # no temporary files left behind


def test_write_culane_layout_train_gt_and_masks(tmp_path):
    root = write_culane_layout(tmp_path, 6, seed=0, split="train", size=(295, 820))
    gt = (root / "list" / "train_gt.txt").read_text().splitlines()
    assert len(gt) == 6 and len((root / "list" / "train.txt").read_text().splitlines()) == 6
    for line, s in zip(gt, generate_samples(6, 0, "train", (295, 820)), strict=True):
        img_rel, mask_rel, *flags = line.split()
        assert img_rel == f"/driver_synth/train/{Path(s.name).stem}.jpg"
        assert [int(f) for f in flags] == s.exist.tolist()
        mask = cv2.imread(str(root / mask_rel.lstrip("/")), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (295, 820)
        assert set(np.unique(mask)) == {0, *(k + 1 for k in s.slots)}


def test_written_scenes_counts_a_complete_culane_write(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        write_culane_layout(tmp_path / split, n, seed=1, split=split, size=SMALL)
        assert written_scenes("culane", tmp_path / split, split) == n
    assert written_scenes("culane", tmp_path / "train", "val") == 0


@pytest.mark.parametrize("split", ["test", "train"])
def test_layout_readable_by_culane_reader(tmp_path, split):
    formats = pytest.importorskip("lanekd.data.formats")
    if not hasattr(formats, "read_dataset"):
        pytest.skip("the CULane reader has not landed")
    root = write_culane_layout(tmp_path, 10, seed=1, split=split, size=(295, 820))
    read = list(formats.read_dataset("culane", root, split))
    want = list(generate_samples(10, 1, split, (295, 820)))
    assert [r.name for r in read] == [f"/driver_synth/{split}/{i:06d}.jpg" for i in range(10)]
    for r, s in zip(read, want, strict=True):
        if split == "test":
            assert r.category == s.category  # from list/test_split
        else:
            assert r.exist.tolist() == s.exist.tolist()  # from list/train_gt.txt
        assert len(r.lanes) == len(s.lanes)
        for got, ref in zip(r.lanes, s.lanes, strict=True):
            np.testing.assert_allclose(got, ref, atol=1e-2)


def test_format_culane_lines():
    text = format_culane_lines([np.array([[10.5, 589.0], [12.25, 579.0]], np.float32)])
    assert text == "10.5 589 12.25 579 \n"
    assert format_culane_lines([]) == ""


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs", [{"split": "training"}, {"seed": -1}, {"size": (10, 10)}, {"n": -3}])
def test_bad_arguments(kwargs):
    args = {"n": 1, "seed": 0, "split": "train", "size": SMALL} | kwargs
    with pytest.raises(ConfigError):
        generate_samples(**args)  # checked eagerly, before iteration


def test_bad_index():
    for index in (-1, 1.5, True):
        with pytest.raises(ConfigError):
            render_scene(0, index)


def test_bad_quality(tmp_path):
    with pytest.raises(ConfigError):
        write_culane_layout(tmp_path, 1, quality=0)
    assert list(generate_samples(0)) == []


# --------------------------------------------------------------------------- TuSimple rig and layout
def test_tusimple_geometry_frames_slots_and_ego_lane_width():
    scenes = list(generate_samples(30, seed=4, split="train", geometry="tusimple"))
    widths = []
    for s in scenes:
        assert s.image.shape == (720, 1280, 3) and s.size == (720, 1280)
        assert s.num_slots == 6 and len(s.exist) == 6 and s.exist.sum() == len(s.slots)
        assert s.slots == sorted(s.slots)
        by_slot = dict(zip(s.slots, s.lanes, strict=True))
        if 2 in by_slot and 3 in by_slot:  # the ego lane at row 710, as measured on TuSimple's labels
            xl, xr = (np.interp(710, lane[::-1, 1], lane[::-1, 0]) for lane in (by_slot[2], by_slot[3]))
            widths.append(xr - xl)
    assert len(widths) >= 15
    assert 900 < np.median(widths) < 1200  # TuSimple: median 1047 px; CULane's rig would give ~620


def test_culane_is_the_default_geometry():
    a = render_scene(2, 7, "train", SMALL)
    b = render_scene(2, 7, "train", SMALL, geometry="culane")
    assert _digest(a.image) == _digest(b.image) and a.num_slots == 4
    with pytest.raises(ConfigError, match="tusimple"):
        render_scene(2, 7, "train", SMALL, geometry="llamas")


def test_tusimple_lanes_sample_the_rows_a_polyline_spans():
    lane = np.array([[100.0, 715.0], [200.0, 615.0], [300.0, 515.0]], np.float32)  # bottom to top
    (xs,) = tusimple_lanes([lane])
    assert len(xs) == len(TUSIMPLE_H_SAMPLES) == 56 and TUSIMPLE_H_SAMPLES[0] == 160
    row = dict(zip(TUSIMPLE_H_SAMPLES, xs, strict=True))
    assert row[520] == 295 and row[620] == 195 and row[710] == 105  # x = 815 - y
    assert row[510] == -2 and row[160] == -2
    assert tusimple_lanes([np.array([[5.0, 712.0], [6.0, 711.0]], np.float32)]) == []  # spans no row


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_tusimple_layout_read_back_by_the_tusimple_reader(tmp_path, split):
    import json

    from lanekd.data.formats.tusimple import read_tusimple

    write_tusimple_layout(tmp_path, 4, seed=6, split=split)
    label = tmp_path / TUSIMPLE_LABEL_FILES[split]
    entries = [json.loads(line) for line in label.read_text().splitlines()]
    assert len(entries) == 4 and written_scenes("tusimple", tmp_path, split) == 4
    assert written_scenes("tusimple", tmp_path / "nowhere", split) == 0
    samples = list(generate_samples(4, seed=6, split=split, geometry="tusimple"))
    read = list(read_tusimple(tmp_path, split))
    for r, s, e in zip(read, samples, entries, strict=True):
        assert r.name == e["raw_file"] and cv2.imread(str(tmp_path / e["raw_file"])).shape == (720, 1280, 3)
        assert r.slots == s.slots  # the reader's slots by position agree with the generator's
        for got, ref in zip(r.lanes, s.lanes, strict=True):  # the polyline resampled at h_samples
            ys = got[:, 1]
            np.testing.assert_allclose(got[:, 0], np.interp(ys, ref[::-1, 1], ref[::-1, 0]), atol=0.51)


def test_tusimple_rig_paints_us_highway_markings():
    from lanekd.data.synthetic import sample_scene
    from lanekd.data.synthetic_scene import GEOMETRIES

    def yellow(mk) -> bool:
        return mk.color[2] < 100  # yellow paint has little blue; white has as much as the others

    edges = []
    for i in range(60):
        sc = sample_scene(np.random.default_rng([3, i]), "normal", (720, 1280), GEOMETRIES["tusimple"])
        left = sorted((m for m in sc.markings if m.X < 0 and m.slot is not None), key=lambda m: m.X)
        assert not any(yellow(m) for m in left[1:]), "no yellow line between lanes of one direction"
        edges.append(yellow(left[0]))
        if not sc.urban:
            assert 2.7 <= sc.markings[0].dash <= 3.4 and 8.5 <= sc.markings[0].gap <= 9.8
    assert 0.7 < np.mean(edges) < 1.0  # the left edge of a divided highway is yellow
