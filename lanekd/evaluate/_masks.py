"""Folder and size checks of the evaluators; pairing GT and predicted label images by relative path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from lanekd.errors import ConfigError, DataError


def check_dirs(*dirs: Path) -> None:
    """Raise a DataError for the first of ``dirs`` that is not an existing folder."""
    for d in dirs:
        if not d.is_dir():
            raise DataError(d, "directory not found")


def check_same_size(pred_path: Path, gt: np.ndarray, pred: np.ndarray) -> None:
    """Raise a DataError naming ``pred_path`` when the prediction and ground-truth sizes differ."""
    if gt.shape != pred.shape:
        raise DataError(pred_path, f"size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth "
                                   f"{gt.shape[1]}x{gt.shape[0]}")


def mask_files(gt_dir: str | Path, pred_dir: str | Path) -> tuple[Path, Path, list[Path]]:
    """Check both folders and list every ``*.png`` under ``gt_dir`` (relative paths, sorted)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    check_dirs(gt_dir, pred_dir)
    files = sorted(p.relative_to(gt_dir) for p in gt_dir.rglob("*.png"))
    if not files:
        raise ConfigError(f"no .png label images under {gt_dir}")
    return gt_dir, pred_dir, files


def iter_mask_pairs(gt_dir: Path, pred_dir: Path, files: list[Path],
                    read: Callable[[Path], np.ndarray]) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """Yield ``(relative path, gt, pred)``; a missing or differently sized prediction is a DataError."""
    for rel in files:
        pp = pred_dir / rel
        if not pp.is_file():
            raise DataError(pp, "prediction missing")
        g, p = read(gt_dir / rel), read(pp)
        check_same_size(pp, g, p)
        yield rel, g, p
