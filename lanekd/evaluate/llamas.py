"""LLAMAS metrics (spec/METRICS.md §3.3-3.4): CULane-style F1 on 717x1276 and segmentation AP.

F1 (karstenBehrendt/unsupervised_llamas ``culane_metric``): ground-truth lanes are dense per-row curves
(one x per image row, the l1/l0/r0/r1 curves of §3.2); only rows 300..716 with x >= 0 are used and a lane
needs > 1 valid value. Predictions (CULane ``.lines.txt`` format) with < 2 points are dropped,
consecutive duplicate points removed, and each lane is interpolated with ``splprep`` (s=0, degree
min(3, n-1)) at exactly 50 points. Both sides are truncated to int32 and drawn with ``cv2.line``,
thickness 30, on a 717x1276 canvas; IoU > 0.5 after ``linear_sum_assignment``; P, R, F1 are 0 when TP = 0.

Here the ground truth is read from ``<gt_dir>/<recording>/<name>.lines.txt`` files holding those curves
(one ``x y`` pair per valid row); turning LLAMAS label JSON into the curves is the dataset reader's job.

Segmentation AP: per image, 101 thresholds 1.00..0.00 on the probability map (``pred >= t``), pixel
precision/recall (0 when undefined), curve starting at (R 0, P 1), area = sum (R_i - R_{i-1}) * P_{i-1};
the dataset score is the mean over images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import ConfigError, DataError
from lanekd.evaluate.culane import parse_lines

LLAMAS_SIZE = (717, 1276)
GT_FIRST_ROW = 300


def gt_lane_points(lane: np.ndarray) -> np.ndarray | None:
    """Rows 300..716 with x >= 0 of a dense ground-truth curve, or None when the lane is not kept."""
    lane = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
    valid = lane[:, 0] >= 0
    if valid.sum() <= 1:
        return None
    pts = lane[valid & (lane[:, 1] >= GT_FIRST_ROW)]
    return pts if len(pts) >= 2 else None


def interp_prediction(lane: np.ndarray, n: int = 50) -> np.ndarray | None:
    """The LLAMAS script's prediction interpolation: dedupe, splprep(s=0, k=min(3, n-1)), 50 points."""
    from scipy.interpolate import splev, splprep

    pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return None
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    pts = pts[keep]
    if len(pts) < 2:
        return None
    tck, _ = splprep([pts[:, 0], pts[:, 1]], s=0, k=min(3, len(pts) - 1))
    x, y = splev(np.linspace(0.0, 1.0, n), tck)
    return np.stack([x, y], axis=1)


def _draw(pts: np.ndarray, width: int, size: tuple[int, int]) -> np.ndarray:
    import cv2

    m = np.zeros(size, dtype=np.uint8)
    p = pts.astype(np.int32)
    for a, b in zip(p[:-1], p[1:], strict=True):
        cv2.line(m, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, thickness=width)
    return m


def score_image(gt_lanes: list[np.ndarray], pred_lanes: list[np.ndarray], iou: float = 0.5,
                width: int = 30, size: tuple[int, int] = LLAMAS_SIZE) -> tuple[int, int, int]:
    """(tp, fp, fn) of one image under the LLAMAS F1 rules (lanes as (N, 2) arrays)."""
    from scipy.optimize import linear_sum_assignment

    gts = [g for g in (gt_lane_points(x) for x in gt_lanes) if g is not None]
    preds = [p for p in (interp_prediction(x) for x in pred_lanes) if p is not None]
    if not gts or not preds:
        return 0, len(preds), len(gts)
    gm = [_draw(g, width, size).astype(bool) for g in gts]
    pm = [_draw(p, width, size).astype(bool) for p in preds]
    ious = np.zeros((len(gm), len(pm)))
    for i, a in enumerate(gm):
        for j, b in enumerate(pm):
            union = np.count_nonzero(a | b)
            ious[i, j] = np.count_nonzero(a & b) / union if union else 0.0
    rows, cols = linear_sum_assignment(1 - ious)
    tp = int(np.sum(ious[rows, cols] > iou))
    return tp, len(pm) - tp, len(gm) - tp


def evaluate_llamas(gt_dir: str | Path, pred_dir: str | Path, iou: float = 0.5, width: int = 30,
                    per_image: bool = False) -> dict[str, Any]:
    """LLAMAS F1 over every ``.lines.txt`` under ``gt_dir``; each needs a prediction file (as upstream).

    Returns:
        ``{"benchmark": "llamas", "tp", "fp", "fn", "precision", "recall", "f1", "num_images"}``.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d in (gt_dir, pred_dir):
        if not d.is_dir():
            raise DataError(d, "directory not found")
    files = sorted(p.relative_to(gt_dir) for p in gt_dir.rglob("*.lines.txt"))
    if not files:
        raise ConfigError(f"no .lines.txt ground-truth files under {gt_dir}")
    tp = fp = fn = 0
    images = {}
    for rel in files:
        pp = pred_dir / rel
        if not pp.is_file():
            raise DataError(pp, "prediction file missing (the LLAMAS script requires one per label)")
        gt = parse_lines((gt_dir / rel).read_text(), gt_dir / rel)
        pr = parse_lines(pp.read_text(), pp)
        c = score_image(gt, pr, iou, width)
        tp, fp, fn = tp + c[0], fp + c[1], fn + c[2]
        images[str(rel)] = {"tp": c[0], "fp": c[1], "fn": c[2]}
    precision = tp / (tp + fp) if tp else 0.0
    recall = tp / (tp + fn) if tp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    result: dict[str, Any] = {"benchmark": "llamas", "tp": tp, "fp": fp, "fn": fn, "precision": precision,
                              "recall": recall, "f1": f1, "num_images": len(files)}
    if per_image:
        result["images"] = images
    return result


def segmentation_ap(prob: np.ndarray, target: np.ndarray) -> float:
    """Area under the pixel precision-recall curve of one image (LLAMAS segmentation metric).

    Args:
        prob: (H, W) probabilities in [0, 1] (PNG value / 255).
        target: (H, W) bool/0-1 target mask.

    Returns:
        The left-sum area with 101 thresholds 1.00..0.00 (0 for an image without target pixels).
    """
    t = np.asarray(target).astype(bool).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    thresholds = np.round(np.linspace(1.0, 0.0, 101), 2)
    prev_r, prev_p, area = 0.0, 1.0, 0.0
    npos = int(t.sum())
    for th in thresholds:
        pred = p >= th
        tp = int(np.count_nonzero(pred & t))
        fp = int(np.count_nonzero(pred)) - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / npos if npos else 0.0
        area += (recall - prev_r) * prev_p
        prev_r, prev_p = recall, precision
    return area


def format_llamas(result: dict[str, Any]) -> str:
    return (f"LLAMAS over {result['num_images']} images: TP {result['tp']} FP {result['fp']} "
            f"FN {result['fn']}  precision {result['precision']:.4f} recall {result['recall']:.4f} "
            f"F1 {result['f1']:.4f}")
