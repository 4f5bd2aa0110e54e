"""BDD100K lanes, the SAD protocol (spec/METRICS.md §4.1).

Binary lane masks (0 background, anything else lane; the SAD labels use 255), 720x1280. Per image:
accuracy = |pred lane & GT lane| / |GT lane| (a lane-pixel recall; 0 when the image has no GT lane pixel)
and IoU = |pred & GT| / |pred | GT| of the lane class (0 when both are empty). Reported values are the
means over *all* images (x100 in papers). This is not the toolkit's F1_pix lane-marking metric (§4.2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import ConfigError, DataError


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
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d in (gt_dir, pred_dir):
        if not d.is_dir():
            raise DataError(d, "directory not found")
    files = sorted(p.relative_to(gt_dir) for p in gt_dir.rglob("*.png"))
    if not files:
        raise ConfigError(f"no .png masks under {gt_dir}")
    accs, ious, images = [], [], {}
    for rel in files:
        pp = pred_dir / rel
        if not pp.is_file():
            raise DataError(pp, "prediction missing")
        g, p = _read_mask(gt_dir / rel), _read_mask(pp)
        if g.shape != p.shape:
            raise DataError(pp, f"size {p.shape[1]}x{p.shape[0]} differs from the ground truth "
                                f"{g.shape[1]}x{g.shape[0]}")
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
