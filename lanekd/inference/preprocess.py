"""Image pre-processing shared by predict, export checks and visualisation (the same resize and
normalisation as `prepare` and the training dataset)."""

from __future__ import annotations

import numpy as np

from lanekd.inference.meta import ModelMeta


def crop_rows(height: int, meta: ModelMeta) -> int:
    """Rows to cut from the top of a frame of ``height`` rows (crop scales with the frame)."""
    if meta.crop_top <= 0:
        return 0
    return int(round(meta.crop_top * height / meta.source_size[0]))


def preprocess_batch(images: list[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """Crop, resize and normalise RGB frames for the network, exactly as ``prepare`` and the
    training dataset do (same resize and normalisation functions).

    Args:
        images: ``(H_i, W_i, 3)`` uint8 RGB frames (sizes may differ).
        meta: the model's metadata (input size, crop, mean/std).

    Returns:
        ``(B, 3, H, W)`` float32 array, ``(rgb / 255 - mean) / std``.
    """
    from lanekd.data.augment import normalize
    from lanekd.data.render import resize_image

    h, w = meta.input_size
    out = np.empty((len(images), 3, h, w), np.float32)
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
        resized = resize_image(img, (h, w), crop_rows(img.shape[0], meta))
        out[i] = normalize(resized, meta.mean, meta.std).numpy()
    return out
