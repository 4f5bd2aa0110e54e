"""LLAMAS F1 and segmentation AP read from official-format label JSONs (unsupervised_llamas
evaluation; docs/evaluate.md).

No real LLAMAS label exists in ../shared, so the labels are generated: lane markers on a flat road
(camera height 1.5 m) projected with a pinhole matrix, so pixel and world coordinates agree."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.decode import write_llamas_tree
from lanekd.errors import DataError
from lanekd.evaluate import llamas as L

PROJ = [[1000.0, 0.0, 638.0], [0.0, 1000.0, 200.0], [0.0, 0.0, 1.0]]
LANE_X = {"l1": -5.25, "l0": -1.75, "r0": 1.75, "r1": 5.25}   # metres; lane width 3.5 m
DASHES = ((5, 8), (10, 13), (15, 18))                          # z ranges of the markers (rows 500..283)


def _px(x: float, z: float) -> dict:
    return {"x": round(1000 * x / z + 638), "y": round(1500 / z + 200)}


def lane(lane_id: str, x: float, dashes: tuple = DASHES) -> dict:
    return {"lane_id": lane_id, "markers": [
        {"lane_marker_id": f"{lane_id}{z0}", "world_start": {"x": x, "y": 1.5, "z": z0},
         "world_end": {"x": x, "y": 1.5, "z": z1}, "pixel_start": _px(x, z0), "pixel_end": _px(x, z1)}
        for z0, z1 in dashes]}


def write_label(root: Path, key: str, lanes: list[dict]) -> Path:
    path = root / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"projection_matrix": PROJ, "lanes": lanes}))
    return path


def four_lanes() -> list[dict]:
    return [lane(k, x) for k, x in LANE_X.items()]


def test_gt_lanes_from_json(tmp_path: Path) -> None:
    path = write_label(tmp_path, "rec/a", [*four_lanes(), lane("r2", 8.75)])
    gt = L.llamas_gt_lanes(L.read_llamas_label(path), path)
    assert len(gt) == 4                                     # only l1, l0, r0, r1 (r2 is an outer lane)
    for g in gt:
        assert g[0, 1] == 300 and np.all(g[:, 0] >= 0) and np.all(np.diff(g[:, 1]) == 1)
    # l0/r0 reach the bottom row; l1 (x < 0 at the bottom) is extended to the image side instead
    assert gt[1][-1, 1] == gt[2][-1, 1] == 716 and gt[0][-1, 1] < 716
    # r0 markers lie on the line u = 1000*1.75/z + 638, v = 1500/z + 200  ->  u = 638 + 7/6 (v - 200);
    # the nearest marker is extended to row 716 along that line (per-row values are rounded).
    r0 = gt[2]
    expected = 638 + 7 / 6 * (r0[:, 1] - 200)
    assert np.abs(r0[:, 0] - expected).max() < 2.0  # marker ends are whole pixels
    assert r0[-1, 0] == pytest.approx(1240, abs=1)          # 638 + 7/6 * 516 = 1240


def _write_preds(pred_dir: Path, keys: list[str], lanes: list[list[np.ndarray]]) -> None:
    write_llamas_tree(pred_dir, [f"{k}.json" for k in keys], lanes)


def test_f1_json_ground_truth(tmp_path: Path, cli) -> None:
    gt_dir, pred_dir = tmp_path / "labels" / "valid", tmp_path / "pred"
    a = write_label(gt_dir, "rec1/a", four_lanes())
    write_label(gt_dir, "rec2/b", four_lanes()[1:3])          # only l0, r0
    gt_a = L.llamas_gt_lanes(L.read_llamas_label(a), a)
    sparse = [g[::20] for g in gt_a]                           # predictions sampled every 20 rows
    _write_preds(pred_dir, ["rec1/a", "rec2/b"], [sparse, sparse[1:3]])
    r = L.evaluate_llamas(gt_dir, pred_dir, per_image=True)
    assert (r["tp"], r["fp"], r["fn"], r["f1"]) == (6, 0, 0, 1.0) and r["gt_format"] == "json"
    assert r["images"]["rec2/b.lines.txt"] == {"tp": 2, "fp": 0, "fn": 0}
    # image a: r1 shifted 150 px (no overlap with any GT) -> 1 FP + 1 FN; image b: l1 predicted but absent
    shifted = [*sparse[:3], sparse[3] + [150.0, 0.0]]
    _write_preds(pred_dir, ["rec1/a", "rec2/b"], [shifted, sparse[:3]])
    r = L.evaluate_llamas(gt_dir, pred_dir)
    assert (r["tp"], r["fp"], r["fn"]) == (5, 2, 1)
    assert r["precision"] == pytest.approx(5 / 7) and r["recall"] == pytest.approx(5 / 6)
    assert r["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))
    code, out, _ = cli("evaluate", "-b", "llamas", "--gt", gt_dir, "--pred", pred_dir, "--json")
    assert code == 0 and json.loads(out)["tp"] == 5
    # the same curves given as .lines.txt ground truth score identically
    lines_gt = tmp_path / "lines_gt"
    _write_preds(lines_gt, ["rec1/a"], [gt_a])
    (pred_dir / "rec2" / "b.lines.txt").unlink()
    r2 = L.evaluate_llamas(lines_gt, pred_dir)
    assert r2["gt_format"] == "lines" and (r2["tp"], r2["fp"], r2["fn"]) == (3, 1, 1)


def test_f1_bad_input(tmp_path: Path, cli) -> None:
    gt_dir, pred_dir = tmp_path / "g", tmp_path / "p"
    write_label(gt_dir, "rec/a", four_lanes())
    pred_dir.mkdir()
    with pytest.raises(DataError, match=r"rec/a\.lines\.txt: prediction file missing"):
        L.evaluate_llamas(gt_dir, pred_dir)
    (pred_dir / "rec").mkdir()
    (pred_dir / "rec" / "a.lines.txt").write_text("1 2 3 4\n5 6 7\n")
    code, _, err = cli("evaluate", "-b", "llamas", "--gt", gt_dir, "--pred", pred_dir)
    assert code == 1 and "a.lines.txt:2: odd number of values" in err
    (gt_dir / "rec" / "a.json").write_text('{"lanes": [\n')
    with pytest.raises(DataError, match=r"a\.json:2: not valid JSON"):
        L.evaluate_llamas(gt_dir, pred_dir)
    # a pixel-vertical lane (x = 0 m) is not extended to the bottom and lies above row 300 only
    write_label(gt_dir, "rec/a", [lane("l0", 0.0, ((20, 25), (30, 40)))])
    with pytest.raises(DataError, match="official script stops"):
        L.evaluate_llamas(gt_dir, pred_dir)


def test_segmentation_target_geometry(tmp_path: Path) -> None:
    path = write_label(tmp_path, "rec/a", four_lanes())
    label = L.read_llamas_label(path)
    t = L.llamas_segmentation_target(label)
    assert t.shape == (717, 1276) and set(np.unique(t)) == {0, 1}
    # r0's near marker: centre u 988 -> 856.75 and half width 10 -> 6.25 px between rows 500 and 387.5;
    # at row 450 the centre is 929.7 and the half width 8.3 px.
    assert t[450, 924:936].all() and not t[450, 915] and not t[450, 945]
    assert not t[:270].any() and not t[505:].any()             # markers span rows 283..500 only
    assert not t[355:385].any() and t[320:345].any()           # the gap between dashes is no target
    m = L.llamas_segmentation_target(label, multi_class=True)
    assert m.shape == (717, 1276, 5)
    assert m[450, 924:936, 3].all() and not m[450, 924:936, [1, 2, 4]].any()    # r0 = class 3
    assert m[450, 300, 1] == 0 and m[450, 300, 0] == 1
    np.testing.assert_array_equal(m[..., 0], 1 - m[..., 1:].max(axis=2))
    assert np.count_nonzero(m[..., 1:]) <= np.count_nonzero(t)  # AA edges blend out of the class colours


def _write_seg(pred_dir: Path, key: str, planes: dict[int, np.ndarray]) -> None:
    for c, img in planes.items():
        p = pred_dir / f"{key}_{c}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), img.astype(np.uint8))


def test_segmentation_ap_json(tmp_path: Path, cli) -> None:
    gt_dir, pred_dir = tmp_path / "g", tmp_path / "p"
    path = write_label(gt_dir, "rec/a", four_lanes())
    label = L.read_llamas_label(path)
    t = L.llamas_segmentation_target(label)
    _write_seg(pred_dir, "rec/a.json", {1: t * 255})
    r = L.evaluate_llamas_segmentation(gt_dir, pred_dir)
    assert r["ap"] == 1.0 and r["classes"]["marker"]["precision"] == 1.0
    # false positives above the targets: recall jumps at t = 0.50 while the previous precision is 0
    fp_above = np.where(t > 0, 128, 0)
    fp_above[100:110, 100:200] = 255
    _write_seg(pred_dir, "rec/a.json", {1: fp_above})
    assert L.evaluate_llamas_segmentation(gt_dir, pred_dir)["ap"] == 0.0
    # multi-class: perfect planes except r1 predicted nowhere -> (1 + 1 + 1 + 0) / 4
    m = L.llamas_segmentation_target(label, multi_class=True)
    planes = {c: m[..., c] * 255 for c in range(5)}
    planes[4] = np.zeros_like(planes[4])
    _write_seg(pred_dir, "rec/a.json", planes)
    r = L.evaluate_llamas_segmentation(gt_dir, pred_dir, multi_class=True)
    assert r["classes"]["l1"]["auc"] == 1.0 and r["classes"]["r1"]["auc"] == 0.0
    assert r["ap"] == 0.75 and r["metric"] == "ap-multi"
    code, out, _ = cli("evaluate", "-b", "llamas", "--metric", "ap-multi", "--gt", gt_dir, "--pred",
                       pred_dir, "--json")
    assert code == 0 and json.loads(out)["ap"] == 0.75
    (pred_dir / "rec" / "a.json_2.png").unlink()
    code, _, err = cli("evaluate", "-b", "llamas", "--metric", "ap-multi", "--gt", gt_dir, "--pred", pred_dir)
    assert code == 1 and "a.json_2.png" in err


def test_segmentation_pr_matches_thresholding() -> None:
    rng = np.random.default_rng(0)
    prob = rng.integers(0, 256, (40, 50)) / 255
    target = rng.random((40, 50)) < 0.2
    ref_r, ref_p, area = 0.0, 1.0, 0.0                        # literal per-threshold loop
    for i in range(101):
        th = (100 - i) / 100
        pred = prob >= th
        tp = np.count_nonzero(pred & target)
        p = tp / np.count_nonzero(pred) if pred.any() else 0.0
        r = tp / np.count_nonzero(target)
        area += (r - ref_r) * ref_p
        ref_r, ref_p = r, p
    assert L.segmentation_pr(prob, target)["auc"] == area
