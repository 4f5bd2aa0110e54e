"""Prediction writers: CULane/LLAMAS .lines.txt trees, TuSimple JSON lines, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanekd.decode import (
    TUSIMPLE_H_SAMPLES,
    culane_lines_path,
    decode,
    format_culane_lines,
    lanes_to_h_samples,
    llamas_lines_path,
    write_culane_lines,
    write_culane_tree,
    write_llamas_tree,
    write_tusimple_json,
)
from lanekd.evaluate.tusimple import evaluate_tusimple


def parse_lines(text: str) -> list[np.ndarray]:
    return [np.array(ln.split(), dtype=float).reshape(-1, 2) for ln in text.splitlines()]


def test_culane_line_format_and_round_trip(tmp_path: Path) -> None:
    lanes = [np.array([[647.0, 589.0], [663.0, 569.0]]), np.zeros((0, 2)),
             np.array([[10.123456, 589.0], [-3.5, 579.0], [1700.25, 569.0]])]
    text = format_culane_lines(lanes)
    # integral values as integers (prob2lines layout), trailing space per point, absent lanes skipped
    assert text.splitlines()[0] == "647 589 663 569 "
    assert text.splitlines()[1] == "10.123 589 -3.5 579 1700.25 569 "
    assert text.count("\n") == 2
    path = write_culane_lines(tmp_path / "a" / "b.lines.txt", lanes)
    back = parse_lines(path.read_text())
    np.testing.assert_allclose(back[0], lanes[0])
    np.testing.assert_allclose(back[1], lanes[2], atol=5e-4)
    assert write_culane_lines(tmp_path / "empty.lines.txt", [np.zeros((0, 2))] * 4).read_text() == ""


def test_culane_tree_mirrors_the_list(tmp_path: Path) -> None:
    names = ["/driver_37_30frame/05181432_0203.MP4/00000.jpg",
             "driver_100_30frame/05251517_0433.MP4/00030.jpg"]
    expected = tmp_path / "driver_37_30frame/05181432_0203.MP4/00000.lines.txt"
    assert culane_lines_path(tmp_path, names[0]) == expected
    assert culane_lines_path(tmp_path, "a/b") == tmp_path / "a/b.lines.txt"
    lanes = [[np.array([[1.0, 2.0], [3.0, 4.0]])], []]
    paths = write_culane_tree(tmp_path, names, lanes)
    assert [p.read_text() for p in paths] == ["1 2 3 4 \n", ""]
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary file
    with pytest.raises(ValueError, match="2 names but 1 lane lists"):
        write_culane_tree(tmp_path, names, lanes[:1])
    with pytest.raises(ValueError, match="empty image name"):
        culane_lines_path(tmp_path, " ")


def test_llamas_tree_paths(tmp_path: Path) -> None:
    rec = "images-2014-12-22-12-35-10_mapping_280S_ramps"
    assert llamas_lines_path(tmp_path, f"color_images/test/{rec}/1419283521_0744236000_color_rect.png") == \
        tmp_path / rec / "1419283521_0744236000.lines.txt"
    assert llamas_lines_path(tmp_path, f"labels/valid/{rec}/1419283521_0744236000.json") == \
        tmp_path / rec / "1419283521_0744236000.lines.txt"
    (p,) = write_llamas_tree(tmp_path, [f"{rec}/1_gray_rect.png"], [[np.array([[5.0, 716.0], [6.0, 696.0]])]])
    assert p == tmp_path / rec / "1.lines.txt" and p.read_text() == "5 716 6 696 \n"
    with pytest.raises(ValueError, match="recording folder"):
        llamas_lines_path(tmp_path, "x.png")


def test_lanes_to_h_samples() -> None:
    hs = [160, 170, 180, 190, 200]
    lanes = [
        np.array([[10.0, 200.0], [30.0, 180.0]]),  # bottom first; 190 interpolated; 160/170 outside span
        np.zeros((0, 2)),  # absent: omitted
        np.array([[5.0, 100.0], [6.0, 120.0]]),  # no point inside h_samples: omitted (would be an FP)
    ]
    assert lanes_to_h_samples(lanes, hs) == [[-2, -2, 30.0, 20.0, 10.0]]


def test_tusimple_json_round_trip_through_the_evaluator(tmp_path: Path) -> None:
    hs = list(TUSIMPLE_H_SAMPLES)
    ys = np.array(hs[10:], dtype=float)[::-1]
    lanes = [[np.stack([300 + 0.5 * (710 - ys), ys], 1), np.stack([900 - 0.8 * (710 - ys), ys], 1)],
             [np.stack([600.0 + 0 * ys, ys], 1)]]
    raw = ["clips/a/1/20.jpg", "clips/a/2/20.jpg"]
    gt = tmp_path / "gt.json"
    recs = [{"raw_file": r, "h_samples": hs, "lanes": lanes_to_h_samples(ls, hs)}
            for r, ls in zip(raw, lanes, strict=True)]
    gt.write_text("".join(json.dumps(r) + "\n" for r in recs))
    pred = write_tusimple_json(tmp_path / "out" / "pred.json", raw, lanes, hs, [12.5, 250.0])
    recs = [json.loads(ln) for ln in pred.read_text().splitlines()]
    assert [r["run_time"] for r in recs] == [12.5, 250.0]
    assert all(len(lane) == 56 for r in recs for lane in r["lanes"])
    assert recs[0]["lanes"][0][:10] == [-2] * 10
    res = evaluate_tusimple(gt, pred, per_image=True)
    assert res["images"][raw[0]] == [1.0, 0.0, 0.0]
    assert res["images"][raw[1]] == [0.0, 0.0, 1.0]  # 250 ms > 200: zeroed, as lane.py does
    pred = write_tusimple_json(tmp_path / "pred2.json", raw, lanes, [hs, hs], 3)
    assert evaluate_tusimple(gt, pred)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="run times"):
        write_tusimple_json(tmp_path / "x.json", raw, lanes, hs, [1.0])


def test_decode_to_tusimple_end_to_end(tmp_path: Path) -> None:
    from tests.test_decode import lane_map

    h, w = 368, 640
    rows = np.arange(h)
    cols = np.where(rows > 150, (100 + 0.8 * rows).astype(int), -1)
    p = lane_map(h, w, cols, lanes=6, slot=2)
    e = np.array([[0, 0, 0.9, 0, 0, 0]])
    lanes = decode(p, e, profile="tusimple")[0]
    assert [len(lane) > 0 for lane in lanes] == [False, False, True, False, False, False]
    hs = list(TUSIMPLE_H_SAMPLES)
    # GT: the band centre mapped to source pixels (x = 2 * col, y = 720/368 * row).
    ys = np.array(hs, dtype=float)
    r = ys * h / 720
    gt_x = np.where(r > 151, 2 * (100 + 0.8 * r), -2)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"raw_file": "x", "h_samples": hs, "lanes": [gt_x.tolist()]}) + "\n")
    res = evaluate_tusimple(gt, write_tusimple_json(tmp_path / "p.json", ["x"], [lanes], hs, 5.0))
    assert res["accuracy"] > 0.9 and res["fp"] == 0 and res["fn"] == 0
