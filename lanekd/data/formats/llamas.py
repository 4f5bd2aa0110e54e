"""LLAMAS reader: one label JSON of lane markers per image (the unsupervised_llamas label format;
docs/datasets.md).

Layout (``root`` is the dataset folder)::

    root/labels/{train,valid}/<recording>/<stem>.json
    root/color_images/{train,valid,test}/<recording>/<stem>_color_rect.png
    root/grayscale_images/{train,valid,test}/<recording>/<stem>_gray_rect.png

Test labels are not public, so only ``train`` and ``valid`` (alias ``val``) can be read; ``split``
may also be a folder of label JSONs laid out as ``<folder>/<recording>/<stem>.json``.

Lanes are the benchmark's ground-truth curves for ``l1, l0, r0, r1`` (slots 0-3): one x per image
row, built from the markers exactly as the official ``get_horizontal_values_for_four_lanes``
(cleaning, extension of the nearest marker to the image border, per-row averaging and linear
filling of gaps), returned as dense ``(N, 2)`` polylines bottom to top.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lanekd.data.formats.common import DirIndex, exist_flags
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import DataError, LaneKDError

INFO = DATASETS["llamas"]
LLAMAS_LANE_IDS = ("l1", "l0", "r0", "r1")  # slot order
MIN_LANE_HEIGHT = 20  # px of pixel_start.y span below which a lane is dropped (official cleaning)


def clean_llamas_lanes(label: dict[str, Any]) -> list[dict[str, Any]]:
    """The official cleaning: drop short lanes and lanes with < 2 markers, renumber ids per side.

    Pixel coordinates are cast to int, world coordinates to float. Returns new lane dicts; the input
    is not modified.
    """
    lanes = []
    for lane in label["lanes"]:
        markers = [
            {
                "pixel_start": {k: int(v) for k, v in m["pixel_start"].items()},
                "pixel_end": {k: int(v) for k, v in m["pixel_end"].items()},
                "world_start": {k: float(v) for k, v in m["world_start"].items()},
                "world_end": {k: float(v) for k, v in m["world_end"].items()},
            }
            for m in lane["markers"]
        ]
        if not markers:
            continue
        start_ys = [m["pixel_start"]["y"] for m in markers]
        if max(start_ys) - min(start_ys) < MIN_LANE_HEIGHT or len(markers) < 2:
            continue
        lanes.append({"lane_id": str(lane["lane_id"]), "markers": markers})
    # Renumber per side in sorted order, so a dropped l1 turns l2 into l1.
    mapping: dict[str, str] = {}
    counters = {"l": 0, "r": 0}
    for key in sorted(lane["lane_id"] for lane in lanes):
        side = key[:1]
        if side in counters:
            mapping[key] = f"{side}{counters[side]}"
            counters[side] += 1
    for lane in lanes:
        lane["lane_id"] = mapping.get(lane["lane_id"], lane["lane_id"])
    return lanes


def _extension_marker(markers: list[dict[str, Any]], height: int, width: int) -> dict[str, Any] | None:
    """Pixel part of the marker that extends the lane's nearest marker to the image border."""
    usable = [
        m
        for m in markers
        if m["pixel_start"]["y"] != m["pixel_end"]["y"] and m["pixel_start"]["x"] != m["pixel_end"]["x"]
    ]
    if not usable:
        return None
    near = min(usable, key=lambda m: m["world_start"]["z"])
    if near["world_start"]["z"] < 0:
        return None
    sx, sy = near["pixel_start"]["x"], near["pixel_start"]["y"]
    ex, ey = near["pixel_end"]["x"], near["pixel_end"]["y"]
    dx_dy = (ex - sx) / (ey - sy)
    dy_dx = (ey - sy) / (ex - sx)
    bottom_x = sx + (height - 1 - sy) * dx_dy
    if bottom_x < 0:
        new = (0.0, sy - sx * dy_dx)
    elif bottom_x > width:
        new = (float(width), sy + (width - sx) * dy_dx)
    else:
        new = (bottom_x, float(height - 1))
    return {
        "pixel_start": {"x": int(round(new[0])), "y": int(round(new[1]))},
        "pixel_end": {"x": sx, "y": sy},
    }


def llamas_lane_rows(markers: list[dict[str, Any]], height: int = 717, width: int = 1276) -> np.ndarray:
    """Per-row x of one cleaned lane: ``(height,)`` float64, ``-1`` where the lane has no value.

    The nearest marker is extended to the bottom row (or the image side); every marker adds its
    start point and, when it spans more than 2 rows, one rounded x per row; x values on one row are
    averaged; rows between the first and last value are filled linearly.
    """
    ext = _extension_marker(markers, height, width)
    all_markers = ([ext] if ext is not None else []) + markers
    sums = np.zeros(height)
    counts = np.zeros(height)

    def add(y: int, x: float) -> None:
        if 0 <= y < height:  # the official script crashes on rows outside the image; we skip them
            sums[y] += x
            counts[y] += 1

    for m in all_markers:
        sx, sy = m["pixel_start"]["x"], m["pixel_start"]["y"]
        ex, ey = m["pixel_end"]["x"], m["pixel_end"]["y"]
        add(sy, sx)
        rows = sy - ey
        if rows > 2:
            slope = (ex - sx) / rows
            for i in range(rows + 1):
                add(int(round(sy - i)), float(round(sx + slope * i)))
    xs = np.full(height, -1.0)
    have = counts > 0
    xs[have] = sums[have] / counts[have]
    rows_set = np.flatnonzero(have)
    if len(rows_set) > 1:
        span = np.arange(rows_set[0], rows_set[-1] + 1)
        xs[span] = np.interp(span, rows_set, xs[rows_set])
    return xs


def llamas_lanes(label: dict[str, Any], height: int = 717, width: int = 1276) -> dict[str, np.ndarray]:
    """Ground-truth polylines of ``l1, l0, r0, r1`` from a parsed label JSON.

    Returns:
        Lane id -> ``(N, 2)`` float32 ``(x, y)`` points, one per row with a value, bottom to top;
        ids without any value are absent.
    """
    out: dict[str, np.ndarray] = {}
    for lane in clean_llamas_lanes(label):
        if lane["lane_id"] not in LLAMAS_LANE_IDS:
            continue
        xs = llamas_lane_rows(lane["markers"], height, width)
        rows = np.flatnonzero(xs >= 0)[::-1]
        if len(rows):
            out[lane["lane_id"]] = np.stack([xs[rows], rows], axis=1).astype(np.float32)
    return out


def _label_dir(root: Path, split: str) -> tuple[Path, str]:
    if split == "test":
        raise LaneKDError(f"{root}: LLAMAS test labels are not public; use train or valid")
    name = "valid" if split == "val" else split
    if name in ("train", "valid"):
        folder = root / "labels" / name
        if not folder.is_dir():
            raise LaneKDError(f"{folder}: LLAMAS label folder not found")
        return folder, name
    for cand in (Path(split), root / split):
        if cand.is_dir():
            return cand, cand.name
    raise LaneKDError(f"{root}: unknown LLAMAS split {split!r}; use train, valid or a label folder")


def read_llamas(
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    *,
    check_images: bool = True,
    color: bool = True,
) -> Iterator[LaneSample]:
    """Yield the LLAMAS samples of ``split``.

    Args:
        root: dataset folder.
        split: ``train``, ``valid``/``val`` or a label folder.
        policy: bad labels raise (``fail``) or are recorded and skipped (``skip``).
        check_images: require the image of every label to exist (default).
        color: use ``color_images`` (default) or ``grayscale_images``.

    Yields:
        :class:`LaneSample` named ``<recording>/<stem>.json`` (the benchmark's evaluation key),
        size ``(717, 1276)``, slots 0-3 = l1, l0, r0, r1.
    """
    policy = policy if policy is not None else ErrorPolicy()
    root = Path(root)
    label_dir, split_name = _label_dir(root, split)
    kind, suffix = ("color_images", "_color_rect.png") if color else ("grayscale_images", "_gray_rect.png")
    return _iter_llamas(label_dir, root / kind / split_name, suffix, policy, check_images)


def _iter_llamas(
    label_dir: Path, image_dir: Path, suffix: str, policy: ErrorPolicy, check_images: bool
) -> Iterator[LaneSample]:
    height, width = INFO.source_size
    index = DirIndex()
    for dirpath, dirnames, filenames in os.walk(label_dir):
        dirnames.sort()
        for fname in sorted(f for f in filenames if f.endswith(".json")):
            label_path = Path(dirpath) / fname
            rel = label_path.relative_to(label_dir)
            image_path = image_dir / rel.parent / (rel.name[: -len(".json")] + suffix)
            try:
                if check_images and not index.exists(image_path):
                    raise DataError(label_path, f"image {image_path} not found")
                lanes = _parse_label(label_path, height, width)
            except DataError as exc:
                policy(exc)
                continue
            slots = [LLAMAS_LANE_IDS.index(k) for k in LLAMAS_LANE_IDS if k in lanes]
            yield LaneSample(
                name=rel.as_posix(),
                image_path=image_path,
                size=INFO.source_size,
                lanes=[lanes[k] for k in LLAMAS_LANE_IDS if k in lanes],
                slots=slots,
                num_slots=INFO.num_slots,
                exist=exist_flags(slots, INFO.num_slots),
                source=(str(label_path), None),
            )


def load_label_json(path: str | Path) -> dict[str, Any]:
    """Read one LLAMAS label JSON; unreadable or invalid JSON is a DataError naming file and line."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read label: {exc}") from None


def _parse_label(path: Path, height: int, width: int) -> dict[str, np.ndarray]:
    label = load_label_json(path)
    try:
        return llamas_lanes(label, height, width)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise DataError(path, f"malformed LLAMAS label ({type(exc).__name__}: {exc})") from None
