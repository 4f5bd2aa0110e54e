"""ApolloScape lane-marking segmentation mIoU.

The official evaluation is the Cityscapes pixel-level script with ApolloScape's label table: one pooled
256x256 confusion matrix over all pixels (rows = ground-truth id, columns = predicted id, both *label
ids*, not train ids), and for every evaluated class ``c``: TP = M[c, c]; FN = row sum - TP (predictions
of any id, ignored ones included, are misses); FP = predictions of ``c`` on ground-truth pixels of
*evaluated* classes other than ``c`` (predictions on ignored ground truth are free); IoU = TP / (TP + FP
+ FN), NaN when the denominator is 0. The score is the mean of the non-NaN IoUs of the 18 evaluated ids,
void included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import DataError
from lanekd.evaluate._masks import iter_mask_pairs, mask_files

# (name, label id, train id, ignoreInEval), the dataset-api table (38 entries)
LABELS: tuple[tuple[str, int, int, bool], ...] = (
    ("void", 0, 0, False), ("s_w_d", 200, 1, False), ("s_y_d", 204, 2, False), ("ds_w_dn", 213, 3, True),
    ("ds_y_dn", 209, 4, False), ("sb_w_do", 206, 5, True), ("sb_y_do", 207, 6, True),
    ("b_w_g", 201, 7, False), ("b_y_g", 203, 8, False), ("db_w_g", 211, 9, True), ("db_y_g", 208, 10, True),
    ("db_w_s", 216, 11, True), ("s_w_s", 217, 12, False), ("ds_w_s", 215, 13, True), ("s_w_c", 218, 14, True),
    ("s_y_c", 219, 15, True), ("s_w_p", 210, 16, False), ("s_n_p", 232, 17, True), ("c_wy_z", 214, 18, False),
    ("a_w_u", 202, 19, True), ("a_w_t", 220, 20, False), ("a_w_tl", 221, 21, False),
    ("a_w_tr", 222, 22, False), ("a_w_tlr", 231, 23, True), ("a_w_l", 224, 24, False),
    ("a_w_r", 225, 25, False), ("a_w_lr", 226, 26, False), ("a_n_lu", 230, 27, True),
    ("a_w_tu", 228, 28, True), ("a_w_m", 229, 29, True), ("a_y_t", 233, 30, True), ("b_n_sr", 205, 31, False),
    ("d_wy_za", 212, 32, True), ("r_wy_np", 227, 33, False), ("vom_wy_n", 223, 34, True),
    ("om_n_n", 250, 35, False), ("noise", 249, 255, True), ("ignored", 255, 255, True),
)
EVAL_IDS: tuple[int, ...] = tuple(lid for _, lid, _, ign in LABELS if not ign)
ID_NAMES = {lid: name for name, lid, _, _ in LABELS}


def confusion(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(256, 256) int64 confusion matrix of two uint8 label-id maps of the same shape."""
    g = np.asarray(gt, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    return np.bincount(g * 256 + p, minlength=256 * 256).reshape(256, 256)


def iou_from_confusion(m: np.ndarray) -> dict[int, float]:
    """IoU of every evaluated id from a pooled confusion matrix (NaN where undefined)."""
    ev = np.array(EVAL_IDS)
    out: dict[int, float] = {}
    for c in EVAL_IDS:
        tp = int(m[c, c])
        fn = int(m[c, :].sum()) - tp
        fp = int(m[ev[ev != c], c].sum())
        d = tp + fp + fn
        out[c] = tp / d if d > 0 else float("nan")
    return out


def _png_palette(data: bytes) -> np.ndarray | None:
    """The PLTE entries (K, 3) RGB of a palette PNG (colour type 3), else None."""
    import struct

    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[25] != 3:
        return None
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"PLTE":
            return np.frombuffer(data[pos + 8:pos + 8 + length], dtype=np.uint8).reshape(-1, 3)
        if kind == b"IDAT":
            break
        pos += 12 + length
    return None


def _read_ids(path: Path) -> np.ndarray:
    """A label-id image: 8-bit grey, or a palette PNG (the released labels) mapped back to its indices."""
    import cv2

    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror or e}") from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(path, "cannot decode the label image")
    palette = _png_palette(data) if img.ndim == 3 else None
    if palette is not None:
        # OpenCV expands palettes to BGR; invert the palette (first index wins for repeated colours)
        key = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
        lut = np.full(1 << 24, -1, dtype=np.int16)
        lut[key[::-1]] = np.arange(len(key) - 1, -1, -1, dtype=np.int16)  # first index wins
        pix = (img[..., 2].astype(np.int32) << 16) | (img[..., 1].astype(np.int32) << 8) | img[..., 0]
        ids = lut[pix]
        if ids.min() < 0:
            raise DataError(path, "pixel colour not in the PNG palette")
        return ids.astype(np.uint8)
    if img.ndim == 3 and all(np.array_equal(img[..., 0], img[..., c]) for c in range(1, img.shape[2])):
        img = np.ascontiguousarray(img[..., 0])  # grey stored in identical colour channels
    if img.ndim != 2 or img.dtype != np.uint8:
        raise DataError(path, f"expected a single-channel 8-bit label-id image, got shape {img.shape} "
                              f"{img.dtype}")
    return img


def evaluate_apolloscape(gt_dir: str | Path, pred_dir: str | Path, per_image: bool = False) -> dict[str, Any]:
    """mIoU of every ``*.png`` under ``gt_dir`` against the same relative path under ``pred_dir``.

    Args:
        gt_dir: ground-truth label-id PNGs (any folder depth).
        pred_dir: predictions with the same relative paths (uint8 label ids, same size).
        per_image: include per-image mIoU.

    Returns:
        ``{"benchmark": "apolloscape", "miou", "class_iou": {name: iou|None}, "num_images"}``.
    """
    gt_dir, pred_dir, files = mask_files(gt_dir, pred_dir)
    total = np.zeros((256, 256), dtype=np.int64)
    images = {}
    for rel, g, p in iter_mask_pairs(gt_dir, pred_dir, files, _read_ids):
        m = confusion(g, p)
        total += m
        if per_image:
            images[str(rel)] = _miou(iou_from_confusion(m))
    ious = iou_from_confusion(total)
    result: dict[str, Any] = {
        "benchmark": "apolloscape",
        "miou": _miou(ious),
        "class_iou": {ID_NAMES[c]: (None if np.isnan(v) else v) for c, v in ious.items()},
        "num_images": len(files),
    }
    if per_image:
        result["images"] = images
    return result


def _miou(ious: dict[int, float]) -> float:
    vals = [v for v in ious.values() if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def format_apolloscape(result: dict[str, Any]) -> str:
    lines = [f"{'class':<10}{'IoU':>8}"]
    for name, v in result["class_iou"].items():
        lines.append(f"{name:<10}{'n/a' if v is None else f'{v * 100:.2f}':>8}")
    lines.append(f"mIoU: {result['miou'] * 100:.2f} over {result['num_images']} images")
    return "\n".join(lines)
