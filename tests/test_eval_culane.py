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


def _random_token(rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 8))
    if kind == 0:  # long mantissas: correct rounding matters
        return f"{'-' if rng.random() < 0.5 else ''}{rng.integers(0, 10**9)}{rng.integers(0, 10**9):09d}." \
               f"{rng.integers(0, 10**9):09d}"
    if kind == 1:
        return str(rng.choice(["1-2", "1e", "1.2.3", "-", ".", "+", "1+2", "e5", "--1", "1e5", "2E-3", "+.5",
                               "5.", "-0", "1e400", "1e-400", "00012.5000", "-.0e+1", "1..2", "-1-1"]))
    return f"{rng.uniform(-3000, 3000):.{int(rng.integers(0, 7))}f}"


def test_plain_floats_equal_float_per_token() -> None:
    """numpy's text reader gives float()'s values bit for bit, or None exactly when float() fails."""
    rng = np.random.default_rng(5)
    for t in range(600):
        n = int(rng.integers(0, 40))
        odd = 0.02 if t % 2 else 0.5  # share of unusual tokens
        toks = [_random_token(rng) if rng.random() < odd else f"{rng.uniform(0, 1640):.3f}" for _ in range(n)]
        seps = rng.choice([" ", "  ", "\t", "\n", " \n"], n)
        text = "".join(f"{a}{b}" for a, b in zip(toks, seps)).encode()
        try:
            want = np.array([float(v) for v in toks], np.float64)
        except ValueError:
            want = None
        got = C._plain_floats(text, n)
        if want is None:
            assert got is None, text
        else:
            assert got is not None and np.array_equal(got.view(np.int64), want.view(np.int64)), text


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


# ---------------------------------------------------------------- batched fast path vs the reference painter
def _edge_case_lanes(rng: np.random.Generator, size: tuple[int, int]) -> list[np.ndarray]:
    """Random lanes plus the cases the fast path treats specially, as float32 (N, 2) source points."""
    H, W = size
    lanes = [_random_lane(rng) * np.array([W / 1640, H / 590], np.float32) for _ in range(6)]
    for _ in range(3):  # near-horizontal and near-vertical
        y = rng.uniform(0, H)
        lanes.append(np.array([[rng.uniform(-50, W / 2), y],
                               [rng.uniform(W / 2, W + 50), y + rng.uniform(-3, 3)],
                               [W + 80, y + rng.uniform(-6, 6)]], np.float32))
        x = rng.uniform(0, W)
        lanes.append(np.array([[x, H + 20], [x + rng.uniform(-2, 2), H / 2], [x, -20]], np.float32))
    for cx in (0, W - 1):  # short diagonal lanes through every image corner (border variant mixing)
        for cy in (0, H - 1):
            d = rng.uniform(-14, 14, 2)
            lanes.append(np.array([[cx + d[0] - 25, cy + d[1] - 25], [cx + d[0], cy + d[1]],
                                   [cx + d[0] + 25, cy + d[1] + 25]], np.float32))
    lanes += [
        np.array([[300, 400], [300, 400], [340, 300], [360, 200]], np.float32),  # repeated point: NaN spline
        np.array([[-400, 100], [-300, 50]], np.float32),  # entirely off the image
        np.array([[200, 50], [205, 50]], np.float32),  # 2 points, short horizontal
        np.array([[100, 100], [1e7, 3e6]], np.float32),  # huge coordinate
        np.array([[500, 580], [520, 300], [480, 200], [520, 100]], np.float32),  # y-monotone S-curve
        np.array([[700, 500], [760, 300], [820, 500]], np.float32),  # not y-monotone: bitmap fallback
        np.array([[W / 2, H / 2], [W / 2 + 1, H / 2 + 1]], np.float32),  # one unit diagonal step
    ]
    return lanes


@pytest.mark.parametrize(("seed", "size"), [(0, (590, 1640)), (1, (590, 1640)), (2, (97, 211))])
def test_rasterize_batch_matches_reference_on_edge_cases(seed: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    lanes = _edge_case_lanes(rng, size)
    pts = [C._pixel_points(v) for v in lanes]
    px = np.concatenate([p[0] for p in pts])
    py = np.concatenate([p[1] for p in pts])
    runs = _raster.rasterize_batch(px, py, np.array([len(p[0]) for p in pts]), size, 30)
    for k, (x, y) in enumerate(pts):
        ref = _raster.draw_lane_reference(x, y, size, 30)
        got = runs.shape(k)
        assert np.array_equal(got.to_mask(size), ref), (seed, k, lanes[k][:3])
        assert int(runs.area[k]) == int(ref.sum())


def test_iou_matrices_match_reference_and_single_images() -> None:
    rng = np.random.default_rng(3)
    images = []
    for _ in range(4):
        gt = [_random_lane(rng) for _ in range(int(rng.integers(0, 4)))]
        pred = [g + np.array([rng.normal(0, 15), 0], np.float32) for g in gt[:2]]
        pred += [np.zeros((int(rng.integers(0, 2)), 2), np.float32)]  # < 2 points: IoU 0, still a lane
        images.append((gt, pred))
    batch = C.iou_matrices(images)
    for (gt, pred), m in zip(images, batch, strict=True):
        assert m.shape == (len(gt), len(pred))
        np.testing.assert_array_equal(m, C.iou_matrix(gt, pred))
        if gt and pred:
            np.testing.assert_array_equal(m, C.iou_matrix(gt, pred, rasterizer="reference"))


def test_batched_spline_equals_lane_by_lane() -> None:
    rng = np.random.default_rng(4)
    lanes = [_random_lane(rng) for _ in range(30)] + [np.array([[1, 2], [3, 4]], np.float32)]
    px, py, counts, order = C._pixel_points_many(lanes)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for j, i in enumerate(order):
        ex, ey = C._pixel_points(lanes[i])
        assert np.array_equal(px[offsets[j]:offsets[j + 1]], ex)
        assert np.array_equal(py[offsets[j]:offsets[j + 1]], ey)


def _corner_cases(every: int) -> list[tuple[int, int, int, int, int, int]]:
    st = _raster._stamps(30)
    cases = [(bx, by, dx, dy, k)
             for bx in (0, 1) for by in (2, 3) for dx in range(-st.near, st.near + 1)
             for dy in range(-st.near, st.near + 1) for k in range(9) if k != 4]
    return cases[::every]


def _check_corner_rule(every: int) -> None:
    """A unit step near an image corner draws what the batched rasteriser assumes (see rasterize_batch)."""
    st = _raster._stamps(30)
    big = 4 * st.R + 8
    for bx, by, dx, dy, k in _corner_cases(every):
        x = dx if bx == 0 else big - 1 - dx
        y = dy if by == 2 else big - 1 - dy
        sx, sy = _raster._DIRS[k]
        px, py = np.array([x, x + sx]), np.array([y, y + sy])
        ref = _raster.draw_lane_reference(px, py, (big, big), 30)
        got = _raster.rasterize_batch(px, py, np.array([2]), (big, big), 30)
        assert np.array_equal(got.shape(0).to_mask((big, big)), ref), (bx, by, dx, dy, k)


def test_corner_rule_sampled() -> None:
    _check_corner_rule(every=97)


@pytest.mark.slow
def test_corner_rule_third_of_all_positions() -> None:
    # every=1 (all 48 672 corner positions x directions, ~30 s) passed when the rule was introduced
    _check_corner_rule(every=3)


def test_clean_file_fast_path_equals_tolerant_reader() -> None:
    rng = np.random.default_rng(5)
    toks = ["1", "-2.5", "1e3", "1.5E-2", ".5", "5.", "+3", "0.1", "123456789.123456789", "x", "1e", "3.5.5"]
    clean = 0
    for _ in range(300):
        lines = [" " * int(rng.integers(0, 2)) + " ".join(rng.choice(toks, int(rng.choice([0, 1, 2, 4, 6]))))
                 for _ in range(int(rng.integers(0, 4)))]
        text = "\n".join(lines) + ("\n" if rng.random() < 0.5 else "")
        rep = C.ParseReport()
        fast = C.parse_lines(text, report=rep)
        clean += not rep.issues
        slow_rows = []
        for line in (text[:-1] if text.endswith("\n") else text).split("\n") if text else []:
            vals = []
            for tok in line.split():  # the tolerant rules: stop at the first non-number, drop an odd one
                m = C._NUMBER.match(tok)
                if m is None:
                    break
                vals.append(float(m.group(0)))
                if m.end() != len(tok):
                    break
            pairs = np.array(vals[:len(vals) // 2 * 2], np.float64)
            slow_rows.append(pairs.astype(np.float32).reshape(-1, 2))
        assert len(fast) == len(slow_rows)
        for a, b in zip(fast, slow_rows, strict=True):
            assert a.dtype == np.float32 and np.array_equal(a, b)
    assert clean > 30  # the fast path was exercised


# ---------------------------------------------------------------- property test: batched == reference painter
def _pixel_polyline(rng: np.random.Generator, size: tuple[int, int],
                    kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel points of one lane of the given kind (what ``cv_round`` of a spline can give)."""
    H, W = size
    n = int(rng.integers(2, 40))
    x = [int(rng.integers(-120, W + 120))]
    y = [int(rng.integers(-60, H + 60))]
    for _ in range(n - 1):
        if kind == "steep":  # mostly vertical, x drifting by a pixel
            dx, dy = int(rng.integers(-1, 2)), int(rng.choice([-1, 1]) * rng.integers(1, 25))
        elif kind == "near-horizontal":
            dx, dy = int(rng.choice([-1, 1]) * rng.integers(1, 40)), int(rng.integers(-1, 2))
        elif kind == "off-image":  # start and wander outside a border, crossing it at times
            dx, dy = int(rng.integers(-6, 7)), int(rng.integers(-3, 4))
        else:  # mixed step lengths, repeated points included
            dx, dy = (int(v) for v in rng.choice([0, 1, 2, 5, 17, 90]) * rng.integers(-1, 2, 2))
        x.append(x[-1] + dx)
        y.append(y[-1] + dy)
    px, py = np.array(x, np.int64), np.array(y, np.int64)
    if kind == "off-image":
        side = int(rng.integers(0, 4))
        shift = int(rng.integers(-25, 25))
        if side < 2:
            px += (0 if side == 0 else W - 1) - px[0] + shift
        else:
            py += (0 if side == 2 else H - 1) - py[0] + shift
    return px, py


@pytest.mark.parametrize("seed", range(16))
def test_batched_rasterizer_equals_reference_painter(seed: int) -> None:
    """Randomised off-image, steep, near-horizontal and mixed lanes, many per batch, pixel for pixel."""
    rng = np.random.default_rng(100 + seed)
    size = [(97, 211), (590, 1640), (60, 400)][seed % 3]
    kinds = ["off-image", "steep", "near-horizontal", "mixed"]
    lanes = [_pixel_polyline(rng, size, kinds[i % 4]) for i in range(24)]
    if seed % 4 == 0:  # an INT_MIN lane (a NaN spline) in the same batch
        lanes.append((np.array([_raster.INT_MIN, 40]), np.array([_raster.INT_MIN, 30])))
    px = np.concatenate([p for p, _ in lanes])
    py = np.concatenate([q for _, q in lanes])
    runs = _raster.rasterize_batch(px, py, np.array([len(p) for p, _ in lanes]), size, 30)
    for k, (x, y) in enumerate(lanes):
        ref = _raster.draw_lane_reference(x, y, size, 30)
        assert np.array_equal(runs.shape(k).to_mask(size), ref), (seed, k, x[:4], y[:4])
        assert int(runs.area[k]) == int(ref.sum())
    a = np.arange(len(lanes))
    b = np.roll(a, 1)
    refs = [_raster.draw_lane_reference(x, y, size, 30).astype(bool) for x, y in lanes]
    want = [int(np.count_nonzero(refs[i] & refs[j])) for i, j in zip(a, b, strict=True)]
    assert runs.intersections(a, b).tolist() == want


def test_segment_runs_batch_equals_scalar_segments() -> None:
    rng = np.random.default_rng(9)
    size = (120, 260)
    n = 400
    x0, y0 = rng.integers(-40, 300, n), rng.integers(-40, 160, n)
    step = rng.choice([1, 2, 4, 12, 80], n)
    x1, y1 = x0 + rng.integers(-step, step + 1), y0 + rng.integers(-step, step + 1)
    x1[(x0 == x1) & (y0 == y1)] += 1
    top, left, right, ok = _raster.segment_runs_batch(x0, y0, x1, y1, size, 30)
    assert ok.sum() > n // 2
    for i in range(n):
        cv = _raster._Canvas(size)
        _raster._thick_segment(cv, int(x0[i]), int(y0[i]), int(x1[i]), int(y1[i]), 30)
        m = cv.mask
        cnt = m.sum(axis=1)
        first = np.argmax(m, axis=1)
        last = size[1] - 1 - np.argmax(m[:, ::-1], axis=1)
        one_run = bool(np.all((cnt == 0) | (last - first + 1 == cnt)))
        assert bool(ok[i]) == one_run, i
        if ok[i]:
            got = np.zeros(size, np.uint8)
            for t in range(left.shape[1]):
                if top[i] + t < size[0] and left[i, t] <= right[i, t]:
                    got[top[i] + t, left[i, t]:right[i, t] + 1] = 1
            assert np.array_equal(got, m), i


# ---------------------------------------------------------------- never score silently
def _tree(tmp: Path, n: int, preds: int) -> tuple[Path, Path]:
    """``n`` images with one GT lane each; predictions (the GT) for the first ``preds`` only."""
    lst = []
    for i in range(n):
        for sub in ("gt", "pred")[: 1 + (i < preds)]:
            f = tmp / sub / "drv" / "clip" / f"{i:05d}.lines.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("800 580 800 300\n")
        lst.append(f"/drv/clip/{i:05d}.jpg")
    (tmp / "gt" / "list").mkdir(parents=True, exist_ok=True)
    (tmp / "gt" / "list" / "test.txt").write_text("\n".join(lst) + "\n")
    (tmp / "pred").mkdir(exist_ok=True)
    return tmp / "gt", tmp / "pred"


def test_cli_warns_on_empty_prediction_folder(cli, tmp_path: Path) -> None:
    gt, pred = _tree(tmp_path, 3, preds=0)
    code, out, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["missing_predictions"] == 3
    assert "warning:" in err and "none of the 3 prediction files exists" in err
    assert "none of the 3 prediction files" in doc["warning_examples"][0] and doc["warnings"] == 1


def test_cli_warns_when_most_predictions_missing(cli, tmp_path: Path) -> None:
    gt, pred = _tree(tmp_path, 5, preds=2)
    code, out, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--quiet")
    assert code == 0 and "3 of 5 prediction files are missing" in err
    assert "tolerated" not in out  # the warning is not a prediction-line issue
    gt, pred = _tree(tmp_path / "b", 5, preds=3)
    code, _, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--quiet")
    assert code == 0 and err == ""


def test_cli_list_entry_without_ground_truth_is_an_error(cli, tmp_path: Path) -> None:
    gt, pred = _tree(tmp_path, 2, preds=2)
    lst = tmp_path / "mine.txt"
    lst.write_text("/drv/clip/00000.jpg\n/drv/clip/00007.jpg\n")
    code, out, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--list", lst)
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"{lst}:2:" in err and "00007.lines.txt" in err and err.count("\n") == 1


def test_cli_empty_category_dash_in_table_official_value_in_json(cli, tmp_path: Path) -> None:
    gt, pred = _tree(tmp_path, 2, preds=2)
    (gt / "drv" / "clip" / "00001.lines.txt").write_text("")  # crowd image: no lanes, none predicted
    (pred / "drv" / "clip" / "00001.lines.txt").write_text("")
    sd = gt / "list" / "test_split"
    sd.mkdir()
    (sd / "test0_normal.txt").write_text("drv/clip/00000.jpg\n")
    (sd / "test1_crowd.txt").write_text("drv/clip/00001.jpg\n")
    code, out, _ = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--json")
    crowd = json.loads(out)["splits"]["crowd"]
    assert code == 0 and (crowd["precision"], crowd["recall"], crowd["f1"] * 100) == (-1.0, -1.0, -100.0)
    code, out, _ = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred)
    row = next(line for line in out.splitlines() if "Crowded" in line)
    assert code == 0 and "–" in row and "-1.0000" not in row and "-100.00" not in row
    assert "undefined" in out and "100.00" in next(line for line in out.splitlines() if "Normal" in line)


# ---------------------------------------------------------------- predict --root, then evaluate
def test_predict_leaf_folder_with_root_lines_up_for_evaluate(cli, tmp_path: Path) -> None:
    from tests.helpers_models import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt", "enet-sad")
    data, pred = tmp_path / "culane", tmp_path / "pred"
    assert cli("prepare", "synthetic", "--layout", "culane", "--n", "4", "--split", "test", "--out", data,
               "--quiet")[0] == 0
    names = [line.split()[0].lstrip("/") for line in (data / "list" / "test.txt").read_text().splitlines()
             if line.strip()]
    leaf = (data / names[0]).parent  # e.g. DATA/driver_synth/<clip>/: a folder deep in the dataset
    inside = [n for n in names if (data / n).parent == leaf]
    code, _, err = cli("predict", ckpt, leaf, "--root", data, "--out", pred, "--quiet", "--threshold", "0.1")
    assert code == 0, err
    assert all((pred / n).with_suffix(".lines.txt").is_file() for n in inside)
    lst = tmp_path / "leaf.txt"
    lst.write_text("".join(f"/{n}\n" for n in inside))
    code, out, err = cli("evaluate", "-b", "culane", "--gt", data, "--pred", pred, "--list", lst, "--json")
    assert code == 0 and err == "", err  # no "prediction files missing" warning: every file was found
    assert json.loads(out)["missing_predictions"] == 0
    # without --root the leaf folder's own name starts the tree: evaluate finds nothing and says so
    code, _, _ = cli("predict", ckpt, leaf, "--out", tmp_path / "p2", "--quiet", "--threshold", "0.1")
    code, out, err = cli("evaluate", "-b", "culane", "--gt", data, "--pred", tmp_path / "p2", "--list", lst,
                         "--json")
    assert code == 0 and "none of the" in err
    code, _, err = cli("predict", ckpt, leaf, "--root", tmp_path / "p2", "--out", pred, "--quiet")
    assert code == 1 and "is not inside --root" in err and "Traceback" not in err


def test_segments_with_holed_rows_match_reference() -> None:
    """Steps like (4, 1) draw rows with a hole (OpenCV's outline and fill disagree by a pixel): inside
    the image, across a border and as the only segment of a lane."""
    size = (200, 400)
    lanes = [(np.arange(10) * 4 + 100, np.arange(10) + 80), (np.array([150, 154]), np.array([90, 91])),
             (np.arange(12) * 4 - 20, 100 - np.arange(12)), (np.array([396, 400, 404]), np.array([5, 4, 3]))]
    px = np.concatenate([p for p, _ in lanes])
    py = np.concatenate([q for _, q in lanes])
    runs = _raster.rasterize_batch(px, py, np.array([len(p) for p, _ in lanes]), size, 30)
    for k, (x, y) in enumerate(lanes):
        assert np.array_equal(runs.shape(k).to_mask(size), _raster.draw_lane_reference(x, y, size, 30)), k


def test_workers_auto_and_bad_values(cli, tmp_path: Path) -> None:
    assert C.resolve_workers("auto") >= 1 and C.resolve_workers("3") == 3
    gt, pred = _tree(tmp_path, 70, preds=70)  # >= 64 images: the pool is used
    auto = C.evaluate_culane(gt, pred, per_image=True)
    one = C.evaluate_culane(gt, pred, workers=1, per_image=True)
    assert auto["images"] == one["images"] and auto["overall"]["tp"] == 70
    for bad in ("0", "many"):
        code, _, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--workers", bad)
        assert code == 1 and "--workers must be" in err and "Traceback" not in err


# ---------------------------------------------------------------- batched reading, splines, pixel sets
def test_read_lines_files_equals_file_by_file(tmp_path: Path) -> None:
    """Files read together (plain ones tokenised at once) give each file's lanes and reports."""
    rng = np.random.default_rng(7)
    toks = ["1", "-2.5", "1e3", ".5", "5.", "+3", "590", "123.456", "x", "1e", "3.5.5", "\u00e9"]
    paths = []
    for i in range(120):
        lines = [" ".join(rng.choice(toks[:8] if i % 3 else toks, int(rng.choice([0, 2, 4, 6, 3]))))
                 for _ in range(int(rng.integers(0, 4)))]
        p = tmp_path / f"{i}.lines.txt"
        if i % 17 != 5:  # some files are missing
            p.write_text("\n".join(lines) + ("\n" if rng.random() < 0.5 else ""))
        paths.append(str(p))
    reports = [C.ParseReport() for _ in paths]
    pts, lane_len, file_lanes = C.read_lines_files(paths, [False] * len(paths), reports)
    a = 0
    lane0 = np.concatenate([[0], np.cumsum(lane_len)])
    k = 0
    for p, rep in zip(paths, reports, strict=True):
        want_rep = C.ParseReport()
        want = C.read_lines_file(p, report=want_rep)
        assert rep.issues == want_rep.issues, p
        assert file_lanes[a] == len(want)
        for lane in want:
            got = pts[lane0[k]:lane0[k + 1]]
            assert got.dtype == np.float32 and np.array_equal(got, lane), p
            k += 1
        a += 1
    assert k == len(lane_len)


def test_lane_pixels_ragged_and_deduped_equal_lane_by_lane() -> None:
    rng = np.random.default_rng(8)
    lanes = [_random_lane(rng) for _ in range(40)] + [np.array([[1, 2], [3, 4]], np.float32)]
    lanes.append(np.array([[5, 9], [5, 9], [40, 300], [80, 500]], np.float32))  # repeated point: NaN
    lens = np.array([len(v) for v in lanes])
    px, py, counts, order = C.lane_pixels(np.concatenate(lanes), lens)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for j, i in enumerate(order):
        ex, ey = _raster.dedupe(*C._pixel_points(lanes[i]))
        assert np.array_equal(px[offsets[j]:offsets[j + 1]], ex)
        assert np.array_equal(py[offsets[j]:offsets[j + 1]], ey)


def test_int_min_lanes_as_pixel_sets_match_reference() -> None:
    """Lanes with INT_MIN points (image-crossing outlines) are recorded as pixel sets: pixels, areas and
    intersections with every other lane as the reference painter draws them."""
    rng = np.random.default_rng(9)
    size = (590, 1640)
    lanes = []
    for i in range(16):
        n = int(rng.integers(2, 6))
        x, y = rng.integers(-100, 1740, n), rng.integers(-50, 640, n)
        if i % 2 == 0:
            x[:max(1, n - 1)] = _raster.INT_MIN
            y[:max(1, n - 1)] = _raster.INT_MIN
        lanes.append((x, y))
    lanes.append(_pixel_polyline(rng, size, "steep"))
    px = np.concatenate([a for a, _ in lanes])
    py = np.concatenate([b for _, b in lanes])
    runs = _raster.rasterize_batch(px, py, np.array([len(a) for a, _ in lanes]), size, 30)
    refs = [_raster.draw_lane_reference(x, y, size, 30) for x, y in lanes]
    for k, ref in enumerate(refs):
        assert np.array_equal(runs.shape(k).to_mask(size), ref), k
        assert int(runs.area[k]) == int(ref.sum())
    a, b = np.repeat(np.arange(len(lanes)), len(lanes)), np.tile(np.arange(len(lanes)), len(lanes))
    want = [int(np.count_nonzero(refs[i] & refs[j])) for i, j in zip(a, b, strict=True)]
    assert runs.intersections(a, b).tolist() == want
    shapes = [runs.shape(k) for k in range(len(lanes))]
    assert [_raster.shape_intersection(shapes[i], shapes[j]) for i, j in zip(a, b, strict=True)] == want
