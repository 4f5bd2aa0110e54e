"""Per-pixel label maps at the training size: rendered from polylines, or resized from a dataset's
label image (already turned into class ids by ``lanekd.data.formats.read_label_map``).

Label values: 0 background, ``k`` = lane slot ``k`` (1-based, i.e. ``LaneSample`` slot ``k - 1``),
255 ignore. Datasets whose label images carry classes rather than slots (BDD100K binary masks,
ApolloScape train ids) keep those class ids.

Geometry: the source frame ``(Hs, Ws)`` loses its top ``crop_top`` rows, then the remaining
``(Hs - crop_top, Ws)`` is resized to ``(H, W)``; a source point ``(x, y)`` lands on
``((x + 0.5) * W / Ws - 0.5, (y - crop_top + 0.5) * H / (Hs - crop_top) - 0.5)`` (pixel-centre
alignment, the convention of ``cv2.resize``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

IGNORE = 255

# Sub-pixel precision for cv2.polylines (coordinates are fixed point with this many fractional bits).
_SHIFT = 4
# cv2.polylines takes int32 fixed-point coordinates: beyond 2^31 / 2^_SHIFT pixels they wrap and a
# lane lands on the wrong side of the image. Lanes reaching past _FAR pixels are clipped to the image
# grown by _MARGIN on each side first; so far out, the clipped end's rounding moves no drawn pixel.
_FAR = float(1 << 20)
_MARGIN = float(1 << 16)


def scaled_line_width(line_width_at_source: float, source_size: tuple[int, int], size: tuple[int, int],
                      crop_top: int = 0) -> int:
    """Line thickness at the training size: the source width scaled by the geometric mean of the
    vertical and horizontal resize factors, rounded, at least 1 (16 px at 1640x590 -> 8 px at 288x800)."""
    hs, ws = source_size
    h, w = size
    sy = h / max(1, hs - crop_top)
    sx = w / max(1, ws)
    return max(1, int(round(line_width_at_source * math.sqrt(sx * sy))))


def source_to_target(points: np.ndarray, source_size: tuple[int, int], size: tuple[int, int],
                     crop_top: int = 0) -> np.ndarray:
    """Map ``(N, 2)`` source-pixel ``(x, y)`` points to training-size pixels (float32)."""
    hs, ws = source_size
    h, w = size
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    out = np.empty_like(pts)
    out[:, 0] = (pts[:, 0] + 0.5) * (w / ws) - 0.5
    out[:, 1] = (pts[:, 1] - crop_top + 0.5) * (h / (hs - crop_top)) - 0.5
    return out.astype(np.float32)


def render_label(lanes: Sequence[np.ndarray], slots: Sequence[int], source_size: tuple[int, int],
                 size: tuple[int, int], crop_top: int = 0, line_width: int = 8) -> np.ndarray:
    """Draw lanes as thick polylines into an ``(H, W)`` uint8 map; lane of slot ``s`` gets value ``s + 1``.

    Lanes are drawn in slot order so a later slot wins where two lanes overlap (as the official
    ``seg_label_generate`` tool, which draws lanes in file order, left to right).
    """
    h, w = size
    label = np.zeros((h, w), np.uint8)
    scale = 1 << _SHIFT
    for lane, slot in sorted(zip(lanes, slots, strict=True), key=lambda t: t[1]):
        pts = source_to_target(lane, source_size, size, crop_top)
        if len(pts) < 2:
            continue
        pieces = [pts] if np.abs(pts).max() <= _FAR else _clip_polyline(pts, h, w)
        fixed = [np.round(p * scale).astype(np.int32).reshape(-1, 1, 2) for p in pieces]
        if not fixed:
            continue
        cv2.polylines(label, fixed, isClosed=False, color=int(slot) + 1, thickness=int(line_width),
                      lineType=cv2.LINE_8, shift=_SHIFT)
    return label


def _clip_polyline(pts: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    """Clip each segment of an ``(N, 2)`` polyline to ``[-_MARGIN, w - 1 + _MARGIN] x
    [-_MARGIN, h - 1 + _MARGIN]`` (Liang-Barsky); returns the visible segments as ``(2, 2)`` arrays."""
    lo = (-_MARGIN, -_MARGIN)
    hi = (w - 1 + _MARGIN, h - 1 + _MARGIN)
    out = []
    p = pts.astype(np.float64)
    for a, b in zip(p[:-1], p[1:], strict=True):
        d = b - a
        t0, t1 = 0.0, 1.0
        for k in (0, 1):
            for num, den in ((a[k] - lo[k], -d[k]), (hi[k] - a[k], d[k])):
                if den == 0:
                    if num < 0:
                        t0, t1 = 1.0, 0.0  # parallel to this border and outside it
                elif den < 0:
                    t0 = max(t0, num / den)
                else:
                    t1 = min(t1, num / den)
        if t0 <= t1:
            out.append(np.stack([a + t0 * d, a + t1 * d]))
    return out


def resize_label(label: np.ndarray, size: tuple[int, int], crop_top: int = 0) -> np.ndarray:
    """Crop the top ``crop_top`` rows of an ``(Hs, Ws)`` uint8 class-id map and resize it (nearest)
    to ``(H, W)``."""
    h, w = size
    lab = label[crop_top:]
    if lab.shape != (h, w):
        lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(lab)


def resize_image(image: np.ndarray, size: tuple[int, int], crop_top: int = 0) -> np.ndarray:
    """Crop the top ``crop_top`` rows and resize an ``(Hs, Ws, 3)`` image to ``(H, W, 3)`` (bilinear,
    as the official PyTorch loaders)."""
    h, w = size
    img = image[crop_top:]
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(img)
