"""Tiny prepared HDF5 files for the engine/train tests (hand-drawn lanes on a CULane-sized frame).

Independent of the synthetic-scene generator so the engine tests stay fast and deterministic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lanekd.data.sample import LaneSample

CATEGORIES = ("normal", "curve", "night")


def tiny_samples(n: int, seed: int = 0, size: tuple[int, int] = (590, 1640)) -> list[LaneSample]:
    """``n`` scenes with 2-4 straight lanes converging to a vanishing point."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 60, np.uint8)
        img[: h // 3] = (120, 150, 200)
        lanes, slots = [], []
        vx = w / 2 + rng.uniform(-80, 80)
        for k, bx in enumerate((-0.15, 0.3, 0.7, 1.15)):
            if rng.random() < 0.25:
                continue
            x0 = bx * w + rng.uniform(-40, 40)
            ys = np.linspace(h - 1, h * 0.45, 12)
            t = (h - 1 - ys) / (h - 1 - h * 0.4)
            xs = x0 + (vx - x0) * t
            pts = np.stack([xs, ys], 1).astype(np.float32)
            cv2.polylines(img, [pts.round().astype(np.int32)], False, (230, 230, 230), 14)
            lanes.append(pts)
            slots.append(k)
        exist = np.zeros(4, np.uint8)
        exist[slots] = 1
        out.append(
            LaneSample(
                name=f"tiny/{i:04d}.jpg",
                image_path=Path(f"tiny/{i:04d}.jpg"),
                size=(h, w),
                lanes=lanes,
                slots=slots,
                num_slots=4,
                exist=exist,
                category=CATEGORIES[i % len(CATEGORIES)],
                image=img[:, :, ::-1].copy(),
            )
        )
    return out


def make_tiny_h5(
    path: str | Path, n: int = 16, seed: int = 0, size: tuple[int, int] = (64, 160), split: str = "train"
) -> Path:
    """Prepare ``n`` tiny scenes into ``path`` (CULane geometry, network size ``size``)."""
    from lanekd.data import prepare_dataset

    prepare_dataset("culane", path, split=split, size=size, samples=tiny_samples(n, seed), quiet=True)
    return Path(path)
