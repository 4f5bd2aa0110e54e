"""Pairing ground-truth and predicted label images by relative path (pixel-metric benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from lanekd.errors import ConfigError, DataError


def mask_files(gt_dir: str | Path, pred_dir: str | Path) -> tuple[Path, Path, list[Path]]:
    """Check both folders and list every ``*.png`` under ``gt_dir`` (relative paths, sorted)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d in (gt_dir, pred_dir):
        if not d.is_dir():
            raise DataError(d, "directory not found")
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
        if g.shape != p.shape:
            raise DataError(pp, f"size {p.shape[1]}x{p.shape[0]} differs from the ground truth "
                                f"{g.shape[1]}x{g.shape[0]}")
        yield rel, g, p
