"""ApolloScape mIoU, BDD100K SAD protocol, LLAMAS F1/AP, TuSimple CLI wiring."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.errors import DataError
from lanekd.evaluate import apolloscape as A
from lanekd.evaluate import bdd100k as B
from lanekd.evaluate import llamas as L


def test_apolloscape_realdata_perfect(realdata: Path, cli) -> None:
    root = realdata / "apolloscape" / "test_eval_data"
    r = A.evaluate_apolloscape(root / "gt_dir", root / "pred_dir")
    assert r["num_images"] == 6 and r["miou"] == 1.0
    assert r["class_iou"]["void"] == 1.0 and "ds_w_dn" not in r["class_iou"]  # ignored id: not evaluated
    assert r["class_iou"]["a_w_lr"] is None and len(r["class_iou"]) == 18  # evaluated but absent: NaN
    code, out, _ = cli("evaluate", "-b", "apolloscape", "--gt", root / "gt_dir", "--pred", root / "pred_dir",
                       "--json")
    assert code == 0 and json.loads(out)["miou"] == 1.0


def test_apolloscape_hand_computed(tmp_path: Path) -> None:
    gt = np.zeros((4, 5), np.uint8)
    gt[0, :] = 200           # 5 px s_w_d
    gt[1, :2] = 213          # 2 px of an ignored id (ds_w_dn)
    pred = gt.copy()
    pred[0, 4] = 0           # one s_w_d pixel missed (FN for 200, FP for void)
    pred[1, :2] = 200        # predictions on ignored GT are free
    pred[3, 0] = 255         # predicting an ignored id on void: FN for void only
    for d, img in (("g", gt), ("p", pred)):
        (tmp_path / d).mkdir()
        cv2.imwrite(str(tmp_path / d / "a.png"), img)
    r = A.evaluate_apolloscape(tmp_path / "g", tmp_path / "p")
    # s_w_d: TP 4, FN 1, FP 0 -> 0.8; void: GT 13 px, TP 12, FN 1, FP 1 -> 12/14
    assert r["class_iou"]["s_w_d"] == pytest.approx(0.8)
    assert r["class_iou"]["void"] == pytest.approx(12 / 14)
    assert r["miou"] == pytest.approx((0.8 + 12 / 14) / 2)


def test_apolloscape_size_mismatch(tmp_path: Path) -> None:
    for d, shape in (("g", (4, 5)), ("p", (4, 6))):
        (tmp_path / d).mkdir()
        cv2.imwrite(str(tmp_path / d / "a.png"), np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match="differs from the ground truth"):
        A.evaluate_apolloscape(tmp_path / "g", tmp_path / "p")


def test_bdd100k_sad_hand_computed(tmp_path: Path) -> None:
    g = np.zeros((10, 10), np.uint8)
    g[2, :] = 255                        # 10 GT px
    p = np.zeros_like(g)
    p[2, :5] = 255
    p[5, :5] = 255                       # 5 hit + 5 false
    assert B.score_masks(g, p) == (0.5, 5 / 15)
    assert B.score_masks(np.zeros_like(g), np.zeros_like(g)) == (0.0, 0.0)
    for d, imgs in (("g", [g, np.zeros_like(g)]), ("p", [p, p])):
        (tmp_path / d).mkdir()
        for i, im in enumerate(imgs):
            cv2.imwrite(str(tmp_path / d / f"{i}.png"), im)
    r = B.evaluate_bdd100k(tmp_path / "g", tmp_path / "p")
    # the lane-less image pulls both means down (accuracy 0, IoU 0)
    assert r["accuracy"] == pytest.approx(0.25) and r["iou"] == pytest.approx(1 / 6)


def test_bdd100k_realdata_toolkit_masks(realdata: Path) -> None:
    root = realdata / "bdd100k" / "lane_eval_testcase"
    r = B.evaluate_bdd100k(root / "gts", root / "gts", background=255)
    assert r["num_images"] == 4 and r["accuracy"] == 1.0 and r["iou"] == 1.0
    r = B.evaluate_bdd100k(root / "gts", root / "res", background=255)
    assert 0.0 < r["iou"] < 1.0 and 0.0 < r["accuracy"] < 1.0


def test_llamas_f1_and_ap(tmp_path: Path, cli) -> None:
    ys = np.arange(716, 250, -1.0)
    lane = np.stack([600 + 0.5 * (716 - ys), ys], axis=1)
    assert L.score_image([lane], [lane[::40]]) == (1, 0, 0)
    assert L.score_image([lane], [lane[::40] + [300, 0]]) == (0, 1, 1)
    assert L.score_image([lane[ys < 300]], [lane[::40]]) == (0, 1, 0)  # GT above row 300 is dropped
    for d, text in (("g", " ".join(f"{x} {y}" for x, y in lane) + "\n"),
                    ("p", " ".join(f"{x} {y}" for x, y in lane[::40]) + "\n")):
        (tmp_path / d / "rec").mkdir(parents=True)
        (tmp_path / d / "rec" / "a.lines.txt").write_text(text)
    code, out, _ = cli("evaluate", "-b", "llamas", "--gt", tmp_path / "g", "--pred", tmp_path / "p", "--json")
    assert code == 0 and json.loads(out)["f1"] == 1.0
    t = np.zeros((4, 4), bool)
    t[0, :2] = True
    prob = np.zeros((4, 4))
    prob[0, 0], prob[0, 1], prob[1, 1] = 1.0, 0.5, 0.5
    # t=1.00: R 0.5 P 1; t=0.50: R 1 P 2/3 -> area 0.5*1 + 0.5*1 = 1.0 (left sum uses previous precision)
    assert L.segmentation_ap(prob, t) == pytest.approx(1.0)
    prob[0, 1] = 0.2
    # R 0.5 at t<=1 (P 1), R stays until 0.5 (P 0.5 after (1,1) joins), R 1 at 0.2 (P 2/3)
    assert L.segmentation_ap(prob, t) == pytest.approx(0.5 + 0.5 * 0.5)
    assert L.segmentation_ap(prob, np.zeros_like(t)) == 0.0


def test_tusimple_cli_wiring(cli, tmp_path: Path) -> None:
    pytest.importorskip("lanekd.evaluate.tusimple")
    hs = list(range(160, 720, 10))
    rec = {"raw_file": "clips/a/20.jpg", "h_samples": hs, "lanes": [[300 + i for i in range(len(hs))]],
           "run_time": 10}
    (tmp_path / "gt.json").write_text(json.dumps(rec) + "\n")
    (tmp_path / "pred.json").write_text(json.dumps(rec) + "\n")
    code, out, _ = cli("evaluate", "-b", "tusimple", "--gt", tmp_path / "gt.json", "--pred",
                       tmp_path / "pred.json", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["benchmark"] == "tusimple" and doc["accuracy"] == 1.0 and doc["f1"] == 1.0
