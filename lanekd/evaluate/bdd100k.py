"""BDD100K lanes, the SAD protocol.

Binary lane masks (0 background, anything else lane; the SAD labels use 255), 720x1280. Per image:
accuracy = |pred lane & GT lane| / |GT lane| (a lane-pixel recall; 0 when the image has no GT lane pixel)
and IoU = |pred & GT| / |pred | GT| of the lane class (0 when both are empty). Reported values are the
means over *all* images (x100 in papers). This is not the toolkit's F1_pix lane-marking metric (see below).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import ConfigError, DataError
from lanekd.evaluate._masks import check_dirs, check_same_size, iter_mask_pairs, mask_files


def score_masks(gt: np.ndarray, pred: np.ndarray, background: int = 0) -> tuple[float, float]:
    """(accuracy, iou) of one image from masks of the same shape (pixels != ``background`` are lane)."""
    g = np.asarray(gt) != background
    p = np.asarray(pred) != background
    if g.shape != p.shape:
        raise ValueError(f"mask shapes differ: {g.shape} vs {p.shape}")
    inter = int(np.count_nonzero(g & p))
    ng = int(np.count_nonzero(g))
    union = ng + int(np.count_nonzero(p)) - inter
    return (inter / ng if ng else 0.0), (inter / union if union else 0.0)


def _read_mask(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(path, "cannot read the mask image")
    return img


def evaluate_bdd100k(gt_dir: str | Path, pred_dir: str | Path, per_image: bool = False,
                     background: int = 0) -> dict[str, Any]:
    """SAD-protocol accuracy and IoU of every ``*.png`` under ``gt_dir`` vs the same path in ``pred_dir``.

    ``background`` is the mask value of non-lane pixels: 0 for the SAD labels, 255 for masks in the
    toolkit's lane-mark byte format (then every marking class counts as lane).

    Returns:
        ``{"benchmark": "bdd100k", "accuracy", "iou", "num_images"}`` (fractions; papers print x100).
    """
    gt_dir, pred_dir, files = mask_files(gt_dir, pred_dir)
    accs, ious, images = [], [], {}
    for rel, g, p in iter_mask_pairs(gt_dir, pred_dir, files, _read_mask):
        a, i = score_masks(g, p, background)
        accs.append(a)
        ious.append(i)
        images[str(rel)] = {"accuracy": a, "iou": i}
    result: dict[str, Any] = {"benchmark": "bdd100k", "accuracy": float(np.mean(accs)),
                              "iou": float(np.mean(ious)), "num_images": len(files)}
    if per_image:
        result["images"] = images
    return result


def format_bdd100k(result: dict[str, Any]) -> str:
    return (f"BDD100K (SAD protocol) over {result['num_images']} images: accuracy "
            f"{result['accuracy'] * 100:.2f} %, IoU {result['iou'] * 100:.2f}")


# --- the bdd100k toolkit's lane-marking metric -----------------------------------
# Byte layout of a toolkit mask: bits 0-2 category, bit 3 background flag (1 = background), bit 4 style,
# bit 5 direction. Each task is (bit offset, bit width, class names in value order).
LANE_TASKS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "direction": (5, 1, ("parallel", "vertical")),
    "style": (4, 1, ("solid", "dashed")),
    "category": (0, 3, ("crosswalk", "double other", "double white", "double yellow", "road curb",
                        "single other", "single white", "single yellow")),
}
BOUND_PIXELS = (1, 2, 5)


def _disk(radius: int) -> np.ndarray:
    """skimage's ``disk(radius)``: the pixels with i^2 + j^2 <= r^2, as a uint8 kernel."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius).astype(np.uint8)


_DISKS = {b: _disk(b) for b in BOUND_PIXELS}


def boundary_f1(gt: np.ndarray, pred: np.ndarray, bound: int) -> float:
    """The toolkit's per-class F-score of one image (DAVIS boundary F-measure applied to the masks).

    Precision = |pred & dilate(gt)| / |pred|, recall = |gt & dilate(pred)| / |gt|, dilation with a disk
    of radius ``bound`` px. Empty pred with non-empty GT -> (P 1, R 0); non-empty pred with empty GT ->
    (P 0, R 1); both empty -> F 1.

    Args:
        gt: (H, W) bool mask.
        pred: (H, W) bool mask.
        bound: dilation radius in pixels.
    """
    import cv2

    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    n_gt, n_pd = int(np.count_nonzero(gt)), int(np.count_nonzero(pred))
    if n_gt == 0 or n_pd == 0:
        # P/R special cases: F = 1 when both are empty, else one of P, R is 0 -> F = 0
        return 1.0 if n_gt == n_pd else 0.0
    kernel = _DISKS.get(bound)
    kernel = _disk(bound) if kernel is None else kernel
    gt_dil = cv2.dilate(gt.astype(np.uint8), kernel).astype(bool)
    pd_dil = cv2.dilate(pred.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred & gt_dil) / float(n_pd)
    recall = np.count_nonzero(gt & pd_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def lane_marking_scores(gt_byte: np.ndarray, pred_byte: np.ndarray,
                        bounds: tuple[int, ...] = BOUND_PIXELS) -> dict[str, np.ndarray]:
    """Per-class F-scores of one image in the toolkit's byte format.

    Args:
        gt_byte: (H, W) uint8 toolkit mask.
        pred_byte: (H, W) uint8 toolkit mask.

    Returns:
        Task name -> (num_classes, len(bounds)) F-scores in [0, 1].
    """
    gt_byte, pred_byte = np.asarray(gt_byte, np.uint8), np.asarray(pred_byte, np.uint8)
    gt_fg, pd_fg = (gt_byte & 8) == 0, (pred_byte & 8) == 0
    out = {}
    for task, (offset, width, names) in LANE_TASKS.items():
        field = (1 << width) - 1
        g_val, p_val = (gt_byte >> offset) & field, (pred_byte >> offset) & field
        scores = np.empty((len(names), len(bounds)))
        for value in range(len(names)):
            g, p = (g_val == value) & gt_fg, (p_val == value) & pd_fg
            scores[value] = [boundary_f1(g, p, b) for b in bounds]
        out[task] = scores
    return out


def _read_byte_mask(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(path, "cannot read the mask image")
    if img.ndim != 2 or img.dtype != np.uint8:
        raise DataError(path, "expected an 8-bit single-channel lane-mark mask (toolkit byte format)")
    return img


def _pngs_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.rglob("*.png")):
        if p.stem in found:
            raise DataError(p, f"duplicate image name (also {found[p.stem]}); masks are matched by name")
        found[p.stem] = p
    return found


def evaluate_lane_marking(gt_dir: str | Path, pred_dir: str | Path,
                          per_image: bool = False) -> dict[str, Any]:
    """The toolkit's lane-marking F-scores (``bdd100k.eval.lane.evaluate_lane_marking``).

    GT and prediction PNGs are matched by file name. As in the toolkit, a missing prediction is scored
    as an all-zero mask (which decodes as foreground "crosswalk" everywhere); their number is reported.

    Returns:
        ``{"benchmark": "bdd100k", "metric": "toolkit", "num_images", "missing_predictions",
        "F1_pix1", "F1_pix2", "F1_pix5"}``; each ``F1_pixB`` maps the 12 class names, then
        ``DIRECTION``, ``STYLE``, ``CATEGORY`` (task means) and ``AVERAGE`` (mean of those) to x100
        scores, in the toolkit's row order.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    check_dirs(gt_dir, pred_dir)
    gts = _pngs_by_stem(gt_dir)
    if not gts:
        raise ConfigError(f"no .png masks under {gt_dir}")
    preds = _pngs_by_stem(pred_dir)
    sums = {task: np.zeros((len(names), len(BOUND_PIXELS))) for task, (_, _, names) in LANE_TASKS.items()}
    missing = 0
    images: dict[str, Any] = {}
    for stem, gp in gts.items():
        g = _read_byte_mask(gp)
        pp = preds.get(stem)
        if pp is None:
            missing += 1
            p = np.zeros_like(g)
        else:
            p = _read_byte_mask(pp)
            check_same_size(pp, g, p)
        scores = lane_marking_scores(g, p)
        for task in sums:
            sums[task] += scores[task]
        if per_image:
            images[stem] = {task: (s * 100).tolist() for task, s in scores.items()}
    result: dict[str, Any] = {"benchmark": "bdd100k", "metric": "toolkit", "num_images": len(gts),
                              "missing_predictions": missing}
    means = {task: s / len(gts) * 100 for task, s in sums.items()}
    task_means = {task: m.mean(axis=0) for task, m in means.items()}
    average = np.mean(list(task_means.values()), axis=0)
    for j, bound in enumerate(BOUND_PIXELS):
        col: dict[str, float] = {}
        for task, (_, _, names) in LANE_TASKS.items():
            col.update({name: float(means[task][i, j]) for i, name in enumerate(names)})
        col.update({task.upper(): float(m[j]) for task, m in task_means.items()})
        col["AVERAGE"] = float(average[j])
        result[f"F1_pix{bound}"] = col
    if per_image:
        result["images"] = images
    return result


def format_lane_marking(result: dict[str, Any]) -> str:
    keys = [f"F1_pix{b}" for b in BOUND_PIXELS]
    lines = [f"BDD100K lane marking (toolkit F-score) over {result['num_images']} images"
             + (f", {result['missing_predictions']} predictions missing (scored as all-zero masks)"
                if result["missing_predictions"] else ""),
             f"{'class':<16}" + "".join(f"{k:>10}" for k in keys)]
    for name in result[keys[0]]:
        lines.append(f"{name:<16}" + "".join(f"{result[k][name]:>10.2f}" for k in keys))
    return "\n".join(lines)
