"""Helpers shared by the dataset readers: file-existence cache, CULane line files, slot rules.

Nothing here decodes images; the prepare pipeline does that. :func:`image_size` reads only the
header bytes of PNG/JPEG/BMP files (for the custom format, whose image sizes are not fixed).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import DataError


class DirIndex:
    """Answers "does this file exist?" with one ``os.listdir`` per directory.

    Datasets keep hundreds of frames (and their annotation files) per folder; listing a folder once
    replaces one ``stat`` per image, annotation and mask with a set lookup.
    """

    def __init__(self) -> None:
        self._dirs: dict[str, frozenset[str] | None] = {}

    def exists(self, path: str | Path) -> bool:
        """True when ``path`` is an existing entry of its folder (file or folder)."""
        parent, name = os.path.split(os.fspath(path))
        names = self._dirs.get(parent, ())
        if names == ():
            try:
                names = frozenset(os.listdir(parent or "."))
            except OSError:  # missing folder, not a folder, no permission: nothing exists there
                names = None
            self._dirs[parent] = names
        return names is not None and name in names


def parse_lines_file(path: str | Path) -> list[np.ndarray]:
    """Read a CULane-style ``.lines.txt``: one lane per line, ``x1 y1 x2 y2 ...``.

    Args:
        path: the annotation file.

    Returns:
        One ``(N, 2)`` float32 array per non-blank line, in file order (points as written).

    Raises:
        DataError: a token is not a number, or a line holds an odd count of values
            (names the file and the 1-based line).
    """
    lanes: list[np.ndarray] = []
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read annotation: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            values = np.array([float(t) for t in tokens], dtype=np.float32)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise DataError(path, f"non-numeric value {bad!r} in lane coordinates", lineno) from None
        if len(values) % 2:
            raise DataError(path, f"odd number of values ({len(values)}): expected x y pairs", lineno)
        if not np.isfinite(values).all():
            raise DataError(path, "non-finite value in lane coordinates", lineno)
        lanes.append(values.reshape(-1, 2))
    return lanes


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def bottom_first(lane: np.ndarray) -> np.ndarray:
    """Order the points of ``lane`` (N, 2) bottom to top (decreasing y), the convention of LaneSample."""
    if len(lane) > 1 and lane[0, 1] < lane[-1, 1]:
        return lane[::-1].copy()
    return lane


def x_at_bottom(lane: np.ndarray, height: int) -> float:
    """Where a lane meets the bottom image row ``height - 1``.

    The line through the two lowest points is extended to the bottom row; a lane with one point,
    or whose two lowest points share a row, uses the x of its lowest point.
    """
    # Plain Python on the (short) point list: this runs once per lane of every sample.
    pts = sorted(lane.tolist(), key=lambda p: -p[1])
    x0, y0 = pts[0]
    if len(pts) < 2:
        return x0
    x1, y1 = pts[1]
    if y0 - y1 < 1e-6:
        return x0
    return x0 + (x0 - x1) / (y0 - y1) * (height - 1 - y0)


def assign_slots_by_position(lanes: Sequence[np.ndarray], size: tuple[int, int], num_slots: int) -> list[int]:
    """Ego-relative slots from lane positions (used where the dataset gives no slot).

    Rule: each lane's x where it meets the bottom row (:func:`x_at_bottom`) decides. Lanes with
    that x left of the image centre ``W / 2`` are left lanes: the one nearest the centre gets slot
    ``num_slots // 2 - 1``, the next one outwards the slot below, and so on; right lanes fill
    ``num_slots // 2`` upwards. When one side has more lanes than slots, the whole left-to-right
    run is shifted (keeping the order) so that every lane gets a slot.

    Args:
        lanes: ``(N, 2)`` arrays of ``(x, y)`` source pixels.
        size: ``(H, W)`` of the source image.
        num_slots: slots of the dataset; must be ``>= len(lanes)``.

    Returns:
        The slot of each lane, in the order of ``lanes``.

    Raises:
        ValueError: more lanes than slots (callers turn it into a :class:`DataError`).
    """
    n = len(lanes)
    if n > num_slots:
        raise ValueError(f"{n} lanes but only {num_slots} slots")
    if n == 0:
        return []
    height, width = size
    xs = np.array([x_at_bottom(lane, height) for lane in lanes])
    order = np.argsort(xs, kind="stable")
    n_left = int((xs < width / 2).sum())
    start = min(max(num_slots // 2 - n_left, 0), num_slots - n)
    slots = [0] * n
    for rank, idx in enumerate(order):
        slots[int(idx)] = start + rank
    return slots


def sort_by_slot(lanes: list[np.ndarray], slots: list[int]) -> tuple[list[np.ndarray], list[int]]:
    """Reorder ``lanes`` and ``slots`` by increasing slot (left to right)."""
    order = sorted(range(len(slots)), key=slots.__getitem__)
    return [lanes[i] for i in order], [slots[i] for i in order]


def exist_flags(slots: Sequence[int], num_slots: int) -> np.ndarray:
    """``(num_slots,)`` uint8 existence flags with 1 at every slot in ``slots``."""
    exist = np.zeros(num_slots, np.uint8)
    exist[list(slots)] = 1
    return exist


def resolve_under(root: Path, relative: str) -> Path:
    """``root / relative`` with a leading ``/`` of ``relative`` dropped (CULane/BDD list paths)."""
    return root / relative.lstrip("/")


def image_size(path: str | Path) -> tuple[int, int] | None:
    """``(H, W)`` of a PNG, JPEG or BMP image from its header bytes only; ``None`` if unknown.

    The format is detected from the content, not the extension (TuSimple ships PNG bytes in
    ``.jpg`` files).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return int(height), int(width)
            if head[:2] == b"BM" and len(head) >= 26:
                width, height = struct.unpack("<ii", head[18:26])
                return abs(int(height)), int(width)
            if head[:2] == b"\xff\xd8":
                return _jpeg_size(fh)
    except OSError:
        return None
    return None


def _jpeg_size(fh) -> tuple[int, int] | None:
    """Walk JPEG segments to the first start-of-frame marker and read its height and width."""
    fh.seek(2)
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":
            byte = fh.read(1)
        while byte == b"\xff":  # fill bytes
            byte = fh.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # stand-alone markers carry no length
            continue
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            data = fh.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return int(height), int(width)
        fh.seek(length - 2, os.SEEK_CUR)


def nonblank_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, line)`` for every non-blank line of a text file."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, line


def parse_flags(tokens: Sequence[str], path: str | Path, lineno: int) -> list[int]:
    """Existence flags written as ``0``/``1`` tokens (anything else is a :class:`DataError`)."""
    if any(t not in ("0", "1") for t in tokens):
        raise DataError(path, f"existence flags must be 0 or 1, got {' '.join(tokens)}", lineno)
    return [int(t) for t in tokens]


def parse_json_object(path: str | Path, lineno: int, line: str) -> dict[str, Any]:
    """One JSON-lines record; a :class:`DataError` naming ``path:lineno`` unless it is a JSON object."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", lineno) from None
    if not isinstance(entry, dict):
        raise DataError(path, "expected a JSON object per line", lineno)
    return entry
