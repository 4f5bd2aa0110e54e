"""Custom data: one JSON object per line (JSON lines) describing an image and its lanes.

Format (one line per image)::

    {"image": "frames/0001.jpg", "lanes": [[[x, y], [x, y], ...], ...]}

``"image"`` and ``"lanes"`` are required (``"lanes": []`` for an image without lanes); optional
keys: ``"slots"`` (one 0-based slot per lane, distinct, ``< num_slots``) and ``"category"`` (a
string). Any other key is an error (a misspelt ``"Lanes"`` must not give a sample without lanes).
Coordinates are source-image pixels (x right, y down). Relative image
paths are relative to the folder of the JSON-lines file.

``root`` is the JSON-lines file itself (``split`` is then ignored) or a folder holding
``<split>.jsonl``. Without ``"slots"`` the lanes get ego-relative slots by position:
:func:`~lanekd.data.formats.common.assign_slots_by_position` (x where a lane meets the bottom row,
left lanes from the centre outwards).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lanekd.data.formats.common import (
    DirIndex,
    assign_slots_by_position,
    bottom_first,
    exist_flags,
    image_size,
    nonblank_lines,
    parse_json_object,
    sort_by_slot,
)
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import ConfigError, DataError, LaneKDError

INFO = DATASETS["custom"]
_REQUIRED = ("image", "lanes")
_KEYS = (*_REQUIRED, "slots", "category")


def custom_file(root: str | Path, split: str) -> Path:
    """The JSON-lines file: ``root`` itself when it is a file, else ``root/<split>.jsonl``."""
    root = Path(root)
    if root.is_file():
        return root
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise LaneKDError(f"{path}: custom dataset file not found")
    return path


def read_custom(
    root: str | Path,
    split: str = "train",
    policy: ErrorPolicy | None = None,
    *,
    num_slots: int = INFO.num_slots,
    check_images: bool = True,
) -> Iterator[LaneSample]:
    """Yield the samples of a custom JSON-lines file.

    Args:
        root: the ``.jsonl`` file or a folder with ``<split>.jsonl``.
        split: picks the file in a folder.
        policy: bad lines raise (``fail``) or are recorded and skipped (``skip``).
        num_slots: lane slots of the data (default 4).
        check_images: require every image to exist (default). The image size is read from the
            file header (PNG/JPEG/BMP) when the image exists, else it is ``(0, 0)``.

    Yields:
        :class:`LaneSample` named by the ``image`` value as written.
    """
    if num_slots < 1:
        raise ConfigError(f"num_slots must be >= 1, got {num_slots}")
    policy = policy if policy is not None else ErrorPolicy()
    return _iter_custom(custom_file(root, split), policy, num_slots, check_images)


def _iter_custom(path: Path, policy: ErrorPolicy, num_slots: int, check_images: bool) -> Iterator[LaneSample]:
    index = DirIndex()
    for lineno, line in nonblank_lines(path):
        try:
            yield _parse(path, lineno, line, index, num_slots, check_images)
        except DataError as exc:
            policy(exc)


def _parse(
    path: Path, lineno: int, line: str, index: DirIndex, num_slots: int, check_images: bool
) -> LaneSample:
    def bad(message: str) -> DataError:
        return DataError(path, message, lineno)

    entry = parse_json_object(path, lineno, line)
    # a misspelt key ("Lanes") would otherwise silently give a sample without lanes
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (the keys are {', '.join(_KEYS)})")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        hint = ' (write "lanes": [] for an image without lanes)' if missing[0] == "lanes" else ""
        raise bad(f"missing key {missing[0]!r}{hint}")
    image = entry.get("image")
    if not isinstance(image, str) or not image:
        raise bad("'image' must be a non-empty string")
    lanes = [
        bottom_first(_lane(lane, i, bad))
        for i, lane in enumerate(_list(entry["lanes"], "lanes", bad))
    ]
    image_path = Path(image) if Path(image).is_absolute() else path.parent / image
    exists = index.exists(image_path)
    if check_images and not exists:
        raise bad(f"image {image_path} not found")
    size = (image_size(image_path) if exists else None) or (0, 0)
    if check_images and size == (0, 0):
        raise bad(f"cannot read the size of {image_path} (not a PNG, JPEG or BMP file?)")

    if "slots" in entry:
        slots = _list(entry["slots"], "slots", bad)
        if len(slots) != len(lanes):
            raise bad(f"{len(slots)} slots for {len(lanes)} lanes")
        if any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < num_slots for s in slots):
            raise bad(f"slots must be integers in [0, {num_slots - 1}], got {slots}")
        if len(set(slots)) != len(slots):
            raise bad(f"slots must be distinct, got {slots}")
    else:
        if size == (0, 0) and lanes:
            raise bad("slots by position need the image width; give 'slots' or the image")
        try:
            slots = assign_slots_by_position(lanes, size, num_slots)
        except ValueError as exc:
            raise bad(str(exc)) from None
    lanes, slots = sort_by_slot(lanes, list(slots))
    category = entry.get("category")
    if category is not None and not isinstance(category, str):
        raise bad("'category' must be a string")
    return LaneSample(
        name=image,
        image_path=image_path,
        size=size,
        lanes=lanes,
        slots=slots,
        num_slots=num_slots,
        exist=exist_flags(slots, num_slots),
        category=category,
        source=(str(path), lineno),
    )


def _list(value: Any, what: str, bad) -> list:
    if not isinstance(value, list):
        raise bad(f"'{what}' must be a list")
    return value


def _lane(value: Any, i: int, bad) -> np.ndarray:
    """One lane ``[[x, y], ...]`` -> ``(N, 2)`` float32 (at least one point, finite numbers)."""
    if not isinstance(value, list) or not value:
        raise bad(f"lane {i} must be a non-empty list of [x, y] points")
    for p in value:
        if (
            not isinstance(p, list)
            or len(p) != 2
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p
            )
        ):
            raise bad(f"lane {i}: point {p!r} is not [x, y] with finite numbers")
    return np.asarray(value, dtype=np.float32)
