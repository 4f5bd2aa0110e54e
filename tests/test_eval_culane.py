"""CULane evaluator: golden parity, OpenCV-4.6 rasteriser equivalence, hand-computed cases, errors, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lanekd.errors import DataError
from lanekd.evaluate import _raster
from lanekd.evaluate import culane as C


def _vertical(x: float, y0: float = 200, y1: float = 580, step: float = 10) -> np.ndarray:
    ys = np.arange(y1, y0 - 1, -step)
    return np.stack([np.full_like(ys, x), ys], axis=1).astype(np.float32)


# ---------------------------------------------------------------- golden parity (official tool outputs)
@pytest.fixture(scope="module")
def golden_culane(golden: Path) -> tuple[Path, dict]:
    root = golden / "culane_eval"
    return root, json.loads((root / "expected.json").read_text())


def test_golden_every_image_and_split(golden_culane: tuple[Path, dict]) -> None:
    root, exp = golden_culane
    res = C.evaluate_culane(root / "anno", root / "pred", list_file=root / "list" / "test.txt",
                            per_image=True)
    assert len(res["images"]) == len(exp["images"])
    worst = 0.0
    for key, e in exp["images"].items():
        got = res["images"][key]
        assert (got["tp"], got["fp"], got["fn"]) == (e["tp"], e["fp"], e["fn"]), key
        a = np.array(got["iou"], dtype=float).reshape(np.shape(e["iou"]) if e["iou"] else (0, 0))
        b = np.array(e["iou"], dtype=float).reshape(a.shape)
        assert np.array_equal(np.isnan(a), np.isnan(b)), key
        if a.size:
            worst = max(worst, float(np.nanmax(np.abs(a - b), initial=0.0)))
    assert worst <= 1e-6
    for name, e in exp["splits"].items():
        g = res["splits"][name]
        assert (g["tp"], g["fp"], g["fn"]) == (e["tp"], e["fp"], e["fn"]), name
        for k in ("precision", "recall", "f1"):
            assert g[k] == pytest.approx(e[k], abs=5e-6), (name, k)
    o = res["overall"]
    assert (o["tp"], o["fp"], o["fn"]) == (exp["overall"]["tp"], exp["overall"]["fp"], exp["overall"]["fn"])
    assert o["f1"] == pytest.approx(exp["overall"]["f1"], abs=5e-6)
    assert res["warnings"] > 0  # the golden predictions contain blank lines


def test_golden_workers_same_result(golden_culane: tuple[Path, dict]) -> None:
    root, _ = golden_culane
    kw = dict(list_file=root / "list" / "test.txt")
    a = C.evaluate_culane(root / "anno", root / "pred", workers=1, **kw)
    b = C.evaluate_culane(root / "anno", root / "pred", workers=2, **kw)
    assert a["overall"] == b["overall"] and a["splits"] == b["splits"]


@pytest.mark.slow
def test_golden_reference_rasterizer_subset(golden_culane: tuple[Path, dict]) -> None:
    root, exp = golden_culane
    entries = C.read_list(root / "list" / "test.txt")[:12]
    for e in entries:
        key = C._image_key(e)
        gt = C.read_lines_file(C.lines_path(root / "anno", e))
        pr = C.read_lines_file(C.lines_path(root / "pred", e))
        if gt and pr:
            m = C.iou_matrix(gt, pr, rasterizer="reference")
            np.testing.assert_allclose(m, np.array(exp["images"][key]["iou"], float), atol=1e-12)


# ---------------------------------------------------------------- rasteriser equivalence
def _random_lane(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(2, 25))
    y = np.sort(rng.uniform(-40, 640, n))[::-1]
    x = rng.uniform(-200, 1840) + rng.uniform(-4, 4) * (y - y[0]) + rng.normal(0, 3, n)
    return np.stack([x, y], axis=1).astype(np.float32)


def test_fast_rasterizer_matches_reference_on_random_lanes() -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        lane = _random_lane(rng)
        px, py = C._pixel_points(lane)
        fast = _raster.lane_shape(px, py, C.CULANE_SIZE, 30)
        ref = _raster.draw_lane_reference(px, py, C.CULANE_SIZE, 30)
        assert np.array_equal(fast.to_mask(C.CULANE_SIZE), ref)
        assert fast.area == int(ref.sum())


def test_nan_lane_draws_only_outline_and_last_cap() -> None:
    # repeated points make the official spline NaN: only the last point's cap and the outline of a
    # quad reaching to INT_MIN are drawn
    lane = np.array([[500, 580], [500, 580], [520, 500], [540, 400]], np.float32)
    px, py = C._pixel_points(lane)
    assert px[0] == _raster.INT_MIN and px[-1] == 540
    shape = C.rasterize_lane(lane)
    ref = _raster.draw_lane_reference(px, py, C.CULANE_SIZE, 30)
    assert np.array_equal(shape.to_mask(C.CULANE_SIZE), ref)
    disk = 2 * int(_raster.disk_halfwidths(15).sum() + 31)
    assert disk // 2 < shape.area < 5000


def test_cv_round_half_even_and_nan() -> None:
    out = _raster.cv_round(np.array([0.5, 1.5, 2.5, -0.5, np.nan, 3e9], np.float32))
    assert out.tolist() == [0, 2, 2, 0, _raster.INT_MIN, _raster.INT_MIN]


# ---------------------------------------------------------------- hand-computed cases
def test_vertical_lane_area_and_identical_iou() -> None:
    lane = np.array([[800, 300], [800, 500]], np.float32)  # 2-point lane: one segment
    shape = C.rasterize_lane(lane)
    # rows 300..500 are 31 px wide (x 785..815); the caps add the disk rows above and below
    w = _raster.disk_halfwidths(15)
    expected = 201 * 31 + 2 * int(np.sum(2 * w[:15] + 1))
    assert shape.area == expected
    assert C.iou_matrix([lane], [lane])[0, 0] == 1.0


def test_two_lanes_known_ious() -> None:
    a = np.array([[800, 300], [800, 500]], np.float32)
    b = np.array([[810, 300], [810, 500]], np.float32)  # shifted 10 px: rows overlap 21 of 31 px
    c = np.array([[200, 300], [200, 500]], np.float32)
    m = C.iou_matrix([a, c], [b, c])
    area = C.rasterize_lane(a).area
    w = _raster.disk_halfwidths(15)
    caps = sum(max(0, 2 * int(v) + 1 - 10) for v in w[:15]) * 2  # cap rows overlap width - 10
    inter = 201 * 21 + caps
    assert m[0, 0] == pytest.approx(inter / (2 * area - inter), abs=1e-12)
    assert m[0, 1] == 0.0 and m[1, 0] == 0.0 and m[1, 1] == 1.0
    assert C.score_image([a, c], [b, c]) == (2, 0, 0)


def test_score_image_conventions() -> None:
    gt = [_vertical(400), _vertical(900)]
    assert C.score_image(gt, []) == (0, 0, 2)
    assert C.score_image([], gt) == (0, 2, 0)
    # a 1-point predicted lane still counts (as FP), IoU 0 with everything
    assert C.score_image(gt, [gt[0], np.array([[400, 500]], np.float32)]) == (1, 1, 1)
    # strictly greater than the threshold
    m = C.iou_matrix([gt[0]], [gt[0] + np.array([20, 0], np.float32)])[0, 0]
    assert C.score_image([gt[0]], [gt[0] + np.array([20, 0], np.float32)], iou=float(m)) == (0, 1, 1)
    # a lane entirely outside the image has IoU 0/0 = NaN and is never a TP
    out = np.array([[-500, 100], [-400, 50]], np.float32)
    assert math.isnan(C.iou_matrix([out], [out])[0, 0])
    assert C.score_image([out], [out]) == (0, 1, 1)


def test_matching_maximises_total_iou() -> None:
    m = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert C.match_counts(m, 0.5) == (2, 0, 0)  # greedy would take 0.9 and leave 0.1


def test_prf_minus_one_conventions() -> None:
    assert C.prf(0, 5, 0) == {"tp": 0, "fp": 5, "fn": 0, "precision": 0.0, "recall": -1.0, "f1": 0.0}
    r = C.prf(0, 0, 3)
    assert r["precision"] == -1.0 and r["recall"] == 0.0 and r["f1"] == 0.0
    assert C.prf(3, 1, 1)["f1"] == pytest.approx(0.75)


# ---------------------------------------------------------------- parsing and bad input
def test_parse_official_rules() -> None:
    rep = C.ParseReport()
    lanes = C.parse_lines("1 2 3 4 \n\n5 6 7\n8 9 x 1 2\n", report=rep)
    assert [len(v) for v in lanes] == [2, 0, 1, 1]
    assert lanes[0].dtype == np.float32
    assert [ln for ln, _ in rep.issues] == [2, 3, 4]
    assert C.parse_lines("") == [] and len(C.parse_lines("1 2 3 4")) == 1


def test_strict_parse_names_file_and_line() -> None:
    with pytest.raises(DataError, match=r"pred\.lines\.txt:2: odd number"):
        C.parse_lines("1 2 3 4\n1 2 3\n", "pred.lines.txt", strict=True)


def _layout(tmp: Path, gt: str, pred: str | None) -> tuple[Path, Path]:
    for sub, text in (("gt", gt), ("pred", pred)):
        if text is None:
            continue
        d = tmp / sub / "drv" / "clip"
        d.mkdir(parents=True, exist_ok=True)
        (d / "00000.lines.txt").write_text(text)
    (tmp / "gt" / "list").mkdir(parents=True, exist_ok=True)
    (tmp / "gt" / "list" / "test.txt").write_text("/drv/clip/00000.jpg\n")
    (tmp / "pred").mkdir(exist_ok=True)
    return tmp / "gt", tmp / "pred"


def test_missing_prediction_is_no_lanes_and_binary_file_errors(tmp_path: Path) -> None:
    gt, pred = _layout(tmp_path, "800 580 800 300\n400 580 400 300\n", None)
    res = C.evaluate_culane(gt, pred)
    assert (res["overall"]["tp"], res["overall"]["fp"], res["overall"]["fn"]) == (0, 0, 2)
    assert res["splits"] == {}
    (pred / "drv" / "clip").mkdir(parents=True)
    (pred / "drv" / "clip" / "00000.lines.txt").write_bytes(b"1 2\n\xff\xfe\x00")
    with pytest.raises(DataError, match="00000.lines.txt:2: not a text file"):
        C.evaluate_culane(gt, pred)


def test_warnings_counted_and_strict(tmp_path: Path) -> None:
    gt, pred = _layout(tmp_path, "800 580 800 300\n", "800 580 800 300 5\n\n")
    res = C.evaluate_culane(gt, pred)
    assert res["warnings"] == 2 and res["overall"]["tp"] == 1 and res["overall"]["fp"] == 1
    with pytest.raises(DataError, match=":1: odd number"):
        C.evaluate_culane(gt, pred, strict=True)


def test_bad_list_and_dirs(tmp_path: Path) -> None:
    gt, pred = _layout(tmp_path, "1 2 3 4\n", "1 2 3 4\n")
    with pytest.raises(DataError, match="list file not found"):
        C.evaluate_culane(gt, pred, list_file=tmp_path / "nope.txt")
    with pytest.raises(DataError, match="prediction directory not found"):
        C.evaluate_culane(gt, tmp_path / "nope")


# ---------------------------------------------------------------- CLI
def test_cli_json_shape(cli, golden_culane: tuple[Path, dict]) -> None:
    root, exp = golden_culane
    code, out, _ = cli("evaluate", "--benchmark", "culane", "--gt", root / "anno", "--pred", root / "pred",
                       "--list", root / "list" / "test.txt", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["benchmark"] == "culane"
    assert set(doc["overall"]) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert list(doc["splits"]) == list(C.SPLITS)
    assert doc["overall"]["tp"] == exp["overall"]["tp"]
    assert doc["splits"]["cross"]["fp"] == exp["splits"]["cross"]["fp"]


def test_cli_table_quiet_and_errors(cli, tmp_path: Path) -> None:
    gt, pred = _layout(tmp_path, "800 580 800 300\n", "800 580 800 300\n")
    code, out, _ = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--quiet")
    assert code == 0 and out.count("\n") == 1 and "F1 100.00" in out
    code, out, _ = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred)
    assert code == 0 and "Total" in out
    code, _, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", tmp_path / "missing")
    assert code == 1 and "prediction directory not found" in err and "Traceback" not in err
    code, _, _ = cli("evaluate", "-b", "nosuch", "--gt", gt, "--pred", pred)
    assert code == 2
