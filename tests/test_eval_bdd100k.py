"""BDD100K lane-marking F-score of the bdd100k toolkit: hand-computed cases and toolkit parity."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.errors import DataError
from lanekd.evaluate import bdd100k as B

# bdd100k/bdd100k tests/eval/lane_test.py expectations for the shipped masks (realdata/SOURCES.md):
# rows = 2 directions, 2 styles, 8 categories, DIRECTION/STYLE/CATEGORY means, AVERAGE; cols = F1_pix1/2/5.
TOOLKIT_EXPECTED = [
    [70.53328267, 80.9831119, 100.0], [100.0, 100.0, 100.0], [70.53328267, 80.9831119, 100.0],
    [100.0, 100.0, 100.0], [99.82147748, 100.0, 100.0], [100.0, 100.0, 100.0], [100.0, 100.0, 100.0],
    [75.33066961, 79.34917317, 100.0], [71.02916505, 86.25984707, 100.0], [100.0, 100.0, 100.0],
    [96.43828133, 100.0, 100.0], [94.79621737, 100.0, 100.0], [85.26664133, 90.49155595, 100.0],
    [85.26664133, 90.49155595, 100.0], [92.17697636, 95.70112753, 100.0], [87.57008634, 92.22807981, 100.0],
]


def _table(result: dict) -> np.ndarray:
    keys = [f"F1_pix{b}" for b in B.BOUND_PIXELS]
    return np.array([[result[k][name] for k in keys] for name in result[keys[0]]])


def test_toolkit_parity(realdata: Path, cli) -> None:
    root = realdata / "bdd100k" / "lane_eval_testcase"
    r = B.evaluate_lane_marking(root / "gts", root / "res")
    assert r["num_images"] == 4 and r["missing_predictions"] == 0
    assert list(r["F1_pix1"])[:2] == ["parallel", "vertical"] and list(r["F1_pix1"])[-1] == "AVERAGE"
    np.testing.assert_allclose(_table(r), TOOLKIT_EXPECTED, rtol=0, atol=1e-6)
    same = B.evaluate_lane_marking(root / "gts", root / "gts")
    assert np.all(_table(same) == 100.0)
    code, out, _ = cli("evaluate", "-b", "bdd100k", "--metric", "toolkit", "--gt", root / "gts",
                       "--pred", root / "res", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["metric"] == "toolkit" and doc["F1_pix2"]["AVERAGE"] == pytest.approx(92.22807981, abs=1e-6)
    code, out, _ = cli("evaluate", "-b", "bdd100k", "--metric", "toolkit", "--gt", root / "gts",
                       "--pred", root / "res", "--quiet")
    assert code == 0 and "87.57 / 92.23 / 100.00" in out


def test_boundary_f1_hand_computed() -> None:
    gt = np.zeros((12, 14), bool)
    gt[5, 0:10] = True
    down2 = np.roll(gt, 2, axis=0)
    assert B.boundary_f1(gt, down2, 1) == 0.0      # the radius-1 disk does not reach 2 rows
    assert B.boundary_f1(gt, down2, 2) == 1.0
    diag = np.roll(down2, (-1, 1), axis=(0, 1))    # one row down, one column right
    # radius 1 (plus-shaped disk): 9 of 10 pixels match on each side -> P = R = F = 0.9
    assert B.boundary_f1(gt, diag, 1) == pytest.approx(0.9)
    assert B.boundary_f1(gt, diag, 2) == 1.0       # (1, 1) lies in the radius-2 disk
    empty = np.zeros_like(gt)
    assert B.boundary_f1(empty, empty, 1) == 1.0
    assert B.boundary_f1(gt, empty, 5) == 0.0 and B.boundary_f1(empty, gt, 5) == 0.0


def test_lane_marking_classes_and_missing_prediction(tmp_path: Path) -> None:
    gt = np.full((20, 30), 255, np.uint8)
    gt[10, 5:25] = 16 | 6                      # parallel, dashed, single white
    pred = gt.copy()
    pred[10, 5:25] = 16 | 7                    # same line, category single yellow
    s = B.lane_marking_scores(gt, pred)
    assert np.all(s["direction"] == 1.0) and np.all(s["style"] == 1.0)
    cat = s["category"][:, 0]
    assert cat[6] == 0.0 and cat[7] == 0.0 and np.all(np.delete(cat, [6, 7]) == 1.0)
    for d in ("g", "p"):
        (tmp_path / d / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "g" / "a.png"), gt)
    cv2.imwrite(str(tmp_path / "g" / "b.png"), np.full((20, 30), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "p" / "sub" / "a.png"), pred)   # matched by name, not by folder
    r = B.evaluate_lane_marking(tmp_path / "g", tmp_path / "p")
    assert r["missing_predictions"] == 1
    # a: categories 6/8, others 1. b (missing -> all-zero = foreground parallel/solid/crosswalk
    # everywhere on an empty GT): parallel 0, vertical 1, solid 0, dashed 1, crosswalk 0, others 1.
    f = r["F1_pix1"]
    assert f["parallel"] == 50.0 and f["vertical"] == 100.0 and f["solid"] == 50.0
    assert f["single white"] == 50.0 and f["crosswalk"] == 50.0 and f["road curb"] == 100.0
    assert f["CATEGORY"] == pytest.approx((6 / 8 + 7 / 8) / 2 * 100)
    assert f["DIRECTION"] == 75.0 and f["STYLE"] == 75.0
    assert f["AVERAGE"] == pytest.approx((75 + 75 + f["CATEGORY"]) / 3)


def test_lane_marking_bad_input(tmp_path: Path, cli) -> None:
    for d in ("g", "p"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "g" / "a.png"), np.full((4, 5), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "p" / "a.png"), np.full((4, 6), 255, np.uint8))
    with pytest.raises(DataError, match=r"p/a\.png: size 6x4 differs"):
        B.evaluate_lane_marking(tmp_path / "g", tmp_path / "p")
    cv2.imwrite(str(tmp_path / "p" / "a.png"), np.full((4, 5, 3), 255, np.uint8))
    with pytest.raises(DataError, match="single-channel"):
        B.evaluate_lane_marking(tmp_path / "g", tmp_path / "p")
    (tmp_path / "p" / "a.png").write_bytes(b"not a png")
    code, _, err = cli("evaluate", "-b", "bdd100k", "--metric", "toolkit", "--gt", tmp_path / "g",
                       "--pred", tmp_path / "p")
    assert code == 1 and "a.png" in err and "cannot read" in err
    code, _, err = cli("evaluate", "-b", "bdd100k", "--metric", "f1", "--gt", tmp_path / "g",
                       "--pred", tmp_path / "p")
    assert code == 2 and "--metric" in err
