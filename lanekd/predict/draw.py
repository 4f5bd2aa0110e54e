"""Drawing lanes and label maps for overlays, reports and visualisations."""

from __future__ import annotations

import cv2
import numpy as np

#: RGB colour of each lane slot (slot 0 = leftmost); cycles past the end.
SLOT_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 220, 64), (64, 128, 255), (255, 200, 0), (255, 0, 255), (0, 230, 230))


def slot_color(slot: int) -> tuple[int, int, int]:
    return SLOT_COLORS[slot % len(SLOT_COLORS)]


def draw_lanes(image: np.ndarray, lanes: list[np.ndarray], thickness: int = 4,
               points: bool = True) -> np.ndarray:
    """Draw lanes (one ``(N, 2)`` array per slot, empty when absent) on a copy of an RGB image."""
    out = np.ascontiguousarray(image.copy())
    for slot, lane in enumerate(lanes):
        lane = np.asarray(lane, np.float64).reshape(-1, 2)
        if len(lane) == 0:
            continue
        pts = np.round(lane).astype(np.int32).reshape(-1, 1, 2)
        color = slot_color(slot)
        cv2.polylines(out, [pts], False, color, thickness, cv2.LINE_AA)
        if points:
            for x, y in pts.reshape(-1, 2):
                cv2.circle(out, (int(x), int(y)), thickness + 1, color, -1, cv2.LINE_AA)
    return out


def colorize_label(label: np.ndarray) -> np.ndarray:
    """``(H, W)`` slot label map (0 background, k = slot k-1, 255 ignore) -> RGB image."""
    out = np.zeros((*label.shape, 3), np.uint8)
    for value in np.unique(label):
        if value == 0:
            continue
        out[label == value] = (128, 128, 128) if value == 255 else slot_color(int(value) - 1)
    return out


def heatmap(values: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Min-max normalise a 2-D map to an RGB JET heat map, resized to ``(H, W)`` if given."""
    v = values.astype(np.float32)
    v = (v - v.min()) / max(float(v.max() - v.min()), 1e-12)
    img = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_JET)
    if size is not None:
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def label_caption(image: np.ndarray, text: str) -> np.ndarray:
    """Add a caption band above an RGB image."""
    band = np.full((28, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)
