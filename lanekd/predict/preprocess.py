"""Image pre-processing shared by predict, export checks and visualisation."""

from __future__ import annotations

import cv2
import numpy as np

from lanekd.export.metadata import ModelMeta


def crop_rows(height: int, meta: ModelMeta) -> int:
    """Rows to cut from the top of a frame of ``height`` rows (crop scales with the frame)."""
    if meta.crop_top <= 0:
        return 0
    return int(round(meta.crop_top * height / meta.source_size[0]))


def preprocess_batch(images: list[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """Crop, resize and normalise RGB frames for the network.

    Args:
        images: ``(H_i, W_i, 3)`` uint8 RGB frames (sizes may differ).
        meta: the model's metadata (input size, crop, mean/std).

    Returns:
        ``(B, 3, H, W)`` float32 array, ``(rgb / 255 - mean) / std``.
    """
    h, w = meta.input_size
    out = np.empty((len(images), 3, h, w), np.float32)
    mean = np.asarray(meta.mean, np.float32)
    std = np.asarray(meta.std, np.float32)
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
        img = img[crop_rows(img.shape[0], meta):]
        resized = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        out[i] = ((resized / 255.0 - mean) / std).transpose(2, 0, 1)
    return out
