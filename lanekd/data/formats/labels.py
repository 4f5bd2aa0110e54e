"""Turning the label images datasets ship (``LaneSample.label_path``) into class-id maps.

``LABEL_FORMATS`` (the value of ``LaneSample.label_format``):

* ``culane`` - ``laneseg_label_w16`` PNG, value ``k`` = slot ``k - 1``, 0 background (kept as is).
* ``binary255`` - SAD BDD100K masks: 0 background, any other value lane (class 1).
* ``bdd_lanemark`` - official BDD100K lane-mark masks (255 background; bits 0-2 category, bit 3
  background flag, bit 4 style, bit 5 direction). Lane = foreground, parallel direction, any
  category except crosswalk (0): the lane lines the SAD protocol segments (class 1).
* ``apollo_ids`` - ApolloScape label-id palette PNG -> train ids 0..36 (255 = unknown id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lanekd.data.formats.apolloscape import APOLLO_ID_TO_TRAIN_ID, read_apollo_label_ids
from lanekd.errors import DataError

LABEL_FORMATS = ("culane", "binary255", "bdd_lanemark", "apollo_ids")
BDD_BACKGROUND_BIT = 3
BDD_DIRECTION_BIT = 5
BDD_CROSSWALK = 0


def bdd_lanemark_to_binary(mask: np.ndarray) -> np.ndarray:
    """Official BDD100K lane-mark mask ``(H, W)`` uint8 -> binary lane map ``(H, W)`` uint8 (0/1)."""
    foreground = (mask >> BDD_BACKGROUND_BIT) & 1 == 0
    parallel = (mask >> BDD_DIRECTION_BIT) & 1 == 0
    not_crosswalk = (mask & 7) != BDD_CROSSWALK
    return (foreground & parallel & not_crosswalk).astype(np.uint8)


def read_label_map(path: str | Path, label_format: str, num_classes: int = 5) -> np.ndarray:
    """Read a dataset label image as class ids.

    Args:
        path: the label image (``LaneSample.label_path``).
        label_format: one of :data:`LABEL_FORMATS` (``LaneSample.label_format``).
        num_classes: classes including background, for the ``culane`` range check.

    Returns:
        ``(H, W)`` uint8 class ids, 255 = ignore.

    Raises:
        DataError: unreadable file, not single-channel, or (``culane``) values out of range.
    """
    if label_format == "apollo_ids":
        return APOLLO_ID_TO_TRAIN_ID[read_apollo_label_ids(path)]
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"unknown label format {label_format!r}; expected one of {LABEL_FORMATS}")
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(path, "cannot read label image")
    if img.ndim == 3:
        # A colour-saved grey mask is fine as long as the channels agree.
        if not (img[..., 0] == img[..., 1]).all() or not (img[..., 0] == img[..., 2]).all():
            raise DataError(path, "label image must be single-channel")
        img = img[..., 0]
    if img.dtype != np.uint8:
        raise DataError(path, f"label image must be 8-bit, got {img.dtype}")
    if label_format == "binary255":
        return (img > 0).astype(np.uint8)
    if label_format == "bdd_lanemark":
        return bdd_lanemark_to_binary(img)
    bad = (img >= num_classes) & (img != 255)
    if bad.any():
        raise DataError(
            path, f"label values must be 0..{num_classes - 1} (or 255), found {int(img[bad].max())}"
        )
    return img
