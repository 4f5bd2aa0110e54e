"""LLAMAS metrics: CULane-style F1 on 717x1276 and segmentation AP.

Ground truth is read from the official label JSONs (``<gt_dir>/<recording>/<name>.json``; the evaluation
key is the last two path parts). The dataset reader (:mod:`lanekd.data.formats.llamas`) does the official
cleaning and builds the per-row curves; this module only applies the metrics' rules to them.

F1 (karstenBehrendt/unsupervised_llamas ``culane_metric``): GT lanes are the l1/l0/r0/r1 per-row curves;
a lane is kept if it has > 1 valid (x >= 0) value, then only rows 300..716 with x >= 0 are used (a kept
lane with < 2 such points makes the official script fail; here it is a :class:`DataError`). Predictions
(``<pred_dir>/<recording>/<name>.lines.txt``, as written by ``lanekd.decode.write_llamas_tree``) with
< 2 points are dropped, consecutive duplicate points removed, and each lane is interpolated with
``splprep`` (s=0, degree min(3, n-1)) at exactly 50 points. Both sides are truncated to int32 and drawn
with ``cv2.line``, thickness 30, on a 717x1276 canvas; IoU > 0.5 after ``linear_sum_assignment``; P, R,
F1 are 0 when TP = 0. A folder of ``.lines.txt`` curves (one ``x y`` pair per valid row) is still
accepted as ground truth when it holds no ``.json`` label.

Segmentation AP (``evaluation/evaluate_segmentation.py``): targets are the cleaned markers projected
from 3D with a 0.1 m width and drawn as anti-aliased filled quadrilaterals (binary: value 1; multi-class:
the official per-lane colours, a class = pixels of exactly its colour). Per image and class, 101
thresholds t = 1.00..0.00 on the prediction PNG / 255 (``pred >= t``), pixel precision/recall (0 when
undefined), curve starting at (R 0, P 1), area = sum (R_i - R_{i-1}) * P_{i-1}; dataset score = mean
over images. Predictions: ``<pred_dir>/<recording>/<name>.json_<c>.png`` (c = 1 binary; 0..4 =
background, l1, l0, r0, r1 multi-class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanekd.data.formats.llamas import LLAMAS_LANE_IDS, clean_llamas_lanes, llamas_lane_rows, load_label_json
from lanekd.errors import ConfigError, DataError
from lanekd.evaluate._masks import check_dirs
from lanekd.evaluate.culane import read_lines_file

LLAMAS_SIZE = (717, 1276)
GT_FIRST_ROW = 300
MARKER_WIDTH = 0.1  # metres: width of the projected marker quadrilaterals of the segmentation targets
# The official multi-class target colours (BGR) per cleaned lane id (dataset_constants.DICT_COLORS). All of
# them are needed, not only l1/l0/r0/r1: anti-aliased edges of other lanes blend into the class pixels.
LANE_COLORS: dict[str, tuple[int, int, int]] = {
    "l6": (75, 25, 230), "l5": (75, 180, 60), "l4": (200, 130, 0), "l3": (48, 130, 245), "l2": (180, 30, 145),
    "l1": (0, 0, 255), "l0": (24, 140, 34), "r0": (255, 0, 0), "r1": (0, 255, 255), "r2": (40, 110, 170),
    "r3": (200, 250, 255), "r4": (255, 190, 230), "r5": (0, 0, 128), "r6": (195, 255, 170),
    "r7": (0, 128, 128), "r8": (195, 255, 170),
}


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


def read_llamas_label(path: str | Path) -> dict[str, Any]:
    """Load one LLAMAS label JSON and apply the official cleaning (reader's ``clean_llamas_lanes``).

    Returns:
        ``{"projection_matrix": (3, 3) float64 array, "lanes": cleaned lane dicts}``.
    """
    path = Path(path)
    label = load_label_json(path)
    try:
        lanes = clean_llamas_lanes(label)
        proj = np.asarray(label["projection_matrix"], dtype=np.float64)
        if proj.shape != (3, 3):
            raise ValueError(f"projection_matrix has shape {proj.shape}, expected 3x3")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(path, f"malformed LLAMAS label ({type(exc).__name__}: {exc})") from None
    return {"projection_matrix": proj, "lanes": lanes}


def llamas_gt_lanes(label: dict[str, Any], path: str | Path = "<label>") -> list[np.ndarray]:
    """The F1 metric's ground-truth lanes of a cleaned label (:func:`read_llamas_label`).

    Returns:
        For each of l1, l0, r0, r1 with > 1 valid row, the (N, 2) float64 ``(x, y)`` points of rows
        300..716 with x >= 0 (dense, one per row, top to bottom), as the official ``add_ys``.
    """
    height, width = LLAMAS_SIZE
    by_id = {lane["lane_id"]: lane for lane in label["lanes"]}
    out = []
    for lane_id in LLAMAS_LANE_IDS:
        if lane_id not in by_id:
            continue
        try:
            xs = llamas_lane_rows(by_id[lane_id]["markers"], height, width)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise DataError(path, f"malformed LLAMAS lane {lane_id} ({type(exc).__name__}: {exc})") from None
        if np.count_nonzero(xs >= 0) <= 1:
            continue  # lanes annotated with a single point are ignored
        rows = np.arange(GT_FIRST_ROW, height)
        valid = xs[GT_FIRST_ROW:] >= 0
        if np.count_nonzero(valid) < 2:
            raise DataError(path, f"lane {lane_id} has < 2 points in rows {GT_FIRST_ROW}..{height - 1} "
                                  "(the official script stops on this label)")
        out.append(np.stack([xs[GT_FIRST_ROW:][valid], rows[valid].astype(np.float64)], axis=1))
    return out


def read_prediction_lines(path: Path) -> list[np.ndarray]:
    """A prediction ``.lines.txt`` as the LLAMAS script reads it (float64 pairs; < 2-point lanes dropped)."""
    lanes = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read prediction: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            values = [float(t) for t in line.split()]
        except ValueError:
            raise DataError(path, "non-numeric value in a lane line", lineno) from None
        if len(values) % 2:
            raise DataError(path, "odd number of values (x y pairs expected)", lineno)
        if len(values) >= 4:
            lanes.append(np.asarray(values, dtype=np.float64).reshape(-1, 2))
    return lanes


def _label_files(gt_dir: Path) -> list[tuple[Path, str]]:
    """Label JSONs under ``gt_dir`` with their evaluation keys ``<recording>/<name>.json``."""
    files = sorted(gt_dir.rglob("*.json"))
    keyed = [(p, "/".join(p.parts[-2:])) for p in files]
    seen: dict[str, Path] = {}
    for p, key in keyed:
        if key in seen:
            raise DataError(p, f"evaluation key {key} also used by {seen[key]}")
        seen[key] = p
    return keyed


def evaluate_llamas(gt_dir: str | Path, pred_dir: str | Path, iou: float = 0.5, width: int = 30,
                    per_image: bool = False) -> dict[str, Any]:
    """LLAMAS F1 of the labels under ``gt_dir``; every label needs a prediction file (as upstream).

    Args:
        gt_dir: folder of label JSONs (e.g. ``llamas/labels/valid``) or, without any JSON, of
            ``<recording>/<name>.lines.txt`` per-row GT curves.
        pred_dir: ``<recording>/<name>.lines.txt`` predictions.

    Returns:
        ``{"benchmark": "llamas", "metric": "f1", "tp", "fp", "fn", "precision", "recall", "f1",
        "num_images", "gt_format"}`` (+ ``"images"`` with ``per_image``).
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    check_dirs(gt_dir, pred_dir)
    labels = _label_files(gt_dir)
    if labels:
        items = [(key[: -len(".json")] + ".lines.txt", path, "json") for path, key in labels]
    else:
        rels = sorted(p.relative_to(gt_dir).as_posix() for p in gt_dir.rglob("*.lines.txt"))
        items = [(rel, gt_dir / rel, "lines") for rel in rels]
    if not items:
        raise ConfigError(f"no LLAMAS label .json (or .lines.txt) ground truth under {gt_dir}")
    tp = fp = fn = 0
    images = {}
    for rel, gt_path, kind in items:
        pp = pred_dir / rel
        if not pp.is_file():
            raise DataError(pp, "prediction file missing (the LLAMAS script requires one per label)")
        if kind == "json":
            gt = llamas_gt_lanes(read_llamas_label(gt_path), gt_path)
        else:
            gt = read_lines_file(gt_path)
        c = score_image(gt, read_prediction_lines(pp), iou, width)
        tp, fp, fn = tp + c[0], fp + c[1], fn + c[2]
        images[rel] = {"tp": c[0], "fp": c[1], "fn": c[2]}
    precision = tp / (tp + fp) if tp else 0.0
    recall = tp / (tp + fn) if tp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    result: dict[str, Any] = {"benchmark": "llamas", "metric": "f1", "tp": tp, "fp": fp, "fn": fn,
                              "precision": precision, "recall": recall, "f1": f1, "num_images": len(items),
                              "gt_format": items[0][2]}
    if per_image:
        result["images"] = images
    return result


# --- segmentation AP ------------------------------------------------------------------------------------
def _draw_marker(img: np.ndarray, marker: dict[str, Any], proj: np.ndarray,
                 color: int | tuple[int, int, int]) -> None:
    """One marker as the official ``project_lane_marker``: a 0.1 m wide quadrilateral, anti-aliased."""
    import cv2

    p1 = np.array([marker["world_start"][k] for k in "xyz"], dtype=np.float64)
    p2 = np.array([marker["world_end"][k] for k in "xyz"], dtype=np.float64)
    if p1[2] <= 0 or p2[2] <= 0:
        return  # behind the camera: no valid projection (the official code would draw garbage)
    q1, q2 = proj.dot(p1), proj.dot(p2)
    q1, q2 = q1 / q1[2], q2 / q2[2]
    h1 = proj[0, 0] * MARKER_WIDTH / p1[2] / 2.0
    h2 = proj[0, 0] * MARKER_WIDTH / p2[2] / 2.0
    pts = np.array([[q1[0] - h1, q1[1]], [q1[0] + h1, q1[1]], [q2[0] + h2, q2[1]], [q2[0] - h2, q2[1]]],
                   dtype=np.float32)  # float32 first, then round half to even, as upstream
    if not np.all(np.isfinite(pts)) or np.abs(pts).max() > 1e6:
        return
    pts = np.round(pts).astype(np.int32)
    if pts[0, 1] != pts[3, 1]:
        for _ in range(2):  # upstream fills twice, which matters on anti-aliased edges
            cv2.fillConvexPoly(img, pts, color, cv2.LINE_AA, 0)


def llamas_segmentation_target(label: dict[str, Any], multi_class: bool = False,
                               path: str | Path = "<label>") -> np.ndarray:
    """Segmentation target of a cleaned label (:func:`read_llamas_label`).

    Returns:
        Binary: (717, 1276) uint8, 1 on markers. Multi-class: (717, 1276, 5) uint8 one-hot planes
        (no marker of l1/l0/r0/r1, l1, l0, r0, r1).
    """
    height, width = LLAMAS_SIZE
    proj = label["projection_matrix"]
    if not multi_class:
        img = np.zeros((height, width), np.uint8)
        for lane in label["lanes"]:
            for m in lane["markers"]:
                _draw_marker(img, m, proj, 1)
        return img
    img = np.zeros((height, width, 3), np.uint8)
    for lane in label["lanes"]:
        color = LANE_COLORS.get(lane["lane_id"])
        if color is None:
            raise DataError(path, f"lane id {lane['lane_id']} has no colour in the official table")
        for m in lane["markers"]:
            _draw_marker(img, m, proj, color)
    planes = [np.all(img == np.array(LANE_COLORS[k], np.uint8), axis=2) for k in LLAMAS_LANE_IDS]
    lanes = np.stack(planes, axis=2).astype(np.uint8)
    return np.concatenate([(lanes.sum(axis=2) == 0)[..., None].astype(np.uint8), lanes], axis=2)


def segmentation_pr(prob: np.ndarray, target: np.ndarray, steps: int = 100) -> dict[str, float]:
    """Area under the pixel precision-recall curve and its best corner (official ``binary_approx_auc``).

    Args:
        prob: (H, W) probabilities in [0, 1] (PNG value / 255).
        target: (H, W) bool/0-1 target mask.
        steps: thresholds are ``(steps - i) / steps`` for i = 0..steps.

    Returns:
        ``{"auc", "precision", "recall", "threshold"}``: left-sum area (0 for an image without target
        pixels) and the point maximising precision * recall.
    """
    t = np.asarray(target).astype(bool).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    # Counting pixels >= threshold on sorted values gives the same integers as thresholding the map.
    all_sorted, pos_sorted = np.sort(p), np.sort(p[t])
    npos = len(pos_sorted)
    prev_r, prev_p, area = 0.0, 1.0, 0.0
    best = {"auc": 0.0, "precision": 0.0, "recall": 0.0, "threshold": 0.0}
    corner = 0.0
    for i in range(steps + 1):
        th = (steps - i) / steps
        tp = npos - int(np.searchsorted(pos_sorted, th, side="left"))
        n_pred = len(all_sorted) - int(np.searchsorted(all_sorted, th, side="left"))
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / npos if npos else 0.0
        if precision * recall > corner:
            corner = precision * recall
            best.update(precision=precision, recall=recall, threshold=th)
        area += (recall - prev_r) * prev_p
        prev_r, prev_p = recall, precision
    best["auc"] = area
    return best


def segmentation_ap(prob: np.ndarray, target: np.ndarray) -> float:
    """Area under the pixel precision-recall curve of one image (see :func:`segmentation_pr`)."""
    return segmentation_pr(prob, target)["auc"]


SEGMENTATION_CLASSES = ("background", "l1", "l0", "r0", "r1")


def evaluate_llamas_segmentation(gt_dir: str | Path, pred_dir: str | Path, multi_class: bool = False,
                                 per_image: bool = False) -> dict[str, Any]:
    """LLAMAS segmentation AP of the label JSONs under ``gt_dir``.

    Args:
        gt_dir: folder of label JSONs.
        pred_dir: ``<recording>/<name>.json_<c>.png`` probability maps x255 (c = 1 binary, 0..4 multi-class).
        multi_class: score the 5 multi-class planes instead of the binary marker map.

    Returns:
        ``{"benchmark": "llamas", "metric": "ap"|"ap-multi", "ap", "classes", "num_images"}``: ``classes``
        maps class names to mean ``auc``/``precision``/``recall``/``threshold``; ``ap`` is the binary AP or
        the mean AP of l1, l0, r0, r1 (the background plane is reported, not averaged).
    """
    import cv2

    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    check_dirs(gt_dir, pred_dir)
    labels = _label_files(gt_dir)
    if not labels:
        raise ConfigError(f"no LLAMAS label .json files under {gt_dir}")
    classes = range(5) if multi_class else (1,)
    names = {c: SEGMENTATION_CLASSES[c] if multi_class else "marker" for c in classes}
    sums = {c: {"auc": 0.0, "precision": 0.0, "recall": 0.0, "threshold": 0.0} for c in classes}
    images = {}
    for path, key in labels:
        label = read_llamas_label(path)
        target = llamas_segmentation_target(label, multi_class, path)
        scores = {}
        for c in classes:
            pp = pred_dir / f"{key}_{c}.png"
            if not pp.is_file():
                raise DataError(pp, "prediction image missing (one per label and class)")
            pred = cv2.imread(str(pp), cv2.IMREAD_GRAYSCALE)
            if pred is None:
                raise DataError(pp, "cannot read the prediction image")
            if pred.shape != LLAMAS_SIZE:
                raise DataError(pp, f"size {pred.shape[1]}x{pred.shape[0]}, expected 1276x717")
            res = segmentation_pr(pred.astype(np.float64) / 255, target[..., c] if multi_class else target)
            for k, v in res.items():
                sums[c][k] += v
            scores[names[c]] = res
        images[key] = scores
    n = len(labels)
    per_class = {names[c]: {k: v / n for k, v in sums[c].items()} for c in classes}
    lane_classes = [names[c] for c in classes if c != 0]
    result: dict[str, Any] = {"benchmark": "llamas", "metric": "ap-multi" if multi_class else "ap",
                              "ap": float(np.mean([per_class[k]["auc"] for k in lane_classes])),
                              "classes": per_class, "num_images": n}
    if per_image:
        result["images"] = images
    return result


def format_llamas(result: dict[str, Any]) -> str:
    if result.get("metric", "f1") != "f1":
        head = (f"LLAMAS segmentation {'mAP (l1, l0, r0, r1)' if result['metric'] == 'ap-multi' else 'AP'} "
                f"{result['ap']:.4f} over {result['num_images']} images")
        rows = [f"  {k:<10} AP {v['auc']:.4f}  corner P {v['precision']:.4f} R {v['recall']:.4f}"
                for k, v in result["classes"].items()]
        return "\n".join([head, *rows])
    return (f"LLAMAS over {result['num_images']} images: TP {result['tp']} FP {result['fp']} "
            f"FN {result['fn']}  precision {result['precision']:.4f} recall {result['recall']:.4f} "
            f"F1 {result['f1']:.4f}")
