"""TuSimple reader: JSON-lines label files (TuSimple benchmark format; docs/datasets.md).

Layout (``root`` is the dataset folder)::

    root/label_data_0313.json, label_data_0531.json, label_data_0601.json, test_label.json
    root/clips/<set>/<clip>/20.jpg           (the path in each line's ``raw_file``)

Splits follow the SAD code: ``train`` = 0313 + 0601, ``val`` = 0531, ``test`` = ``test_label.json``,
``trainval`` = all three label files; each file is read where present (error if none is). ``split``
may also be a path to one label file.

Each line holds ``raw_file``, ``h_samples`` (y values) and ``lanes`` (one x per ``h_samples`` entry,
``-2`` = no point). Lanes without any point (the placeholders of 0313) are dropped; slots follow
:func:`~lanekd.data.formats.common.assign_slots_by_position` with 6 slots (left lanes 2, 1, 0 from
the centre outwards, right lanes 3, 4, 5).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lanekd.data.formats.common import (
    DirIndex,
    assign_slots_by_position,
    exist_flags,
    nonblank_lines,
    parse_json_object,
    sort_by_slot,
)
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import DataError, LaneKDError

INFO = DATASETS["tusimple"]
TUSIMPLE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("label_data_0313.json", "label_data_0601.json"),
    "val": ("label_data_0531.json",),
    "test": ("test_label.json",),
    "trainval": ("label_data_0313.json", "label_data_0601.json", "label_data_0531.json"),
}


def tusimple_label_files(root: str | Path, split: str) -> list[Path]:
    """Label files of ``split`` that exist under ``root`` (or ``[split]`` when it is a file path)."""
    root = Path(root)
    if split not in TUSIMPLE_SPLITS:
        for cand in (Path(split), root / split):
            if cand.is_file():
                return [cand]
        raise LaneKDError(
            f"{root}: unknown TuSimple split {split!r}; use {', '.join(TUSIMPLE_SPLITS)} or a label file path"
        )
    files = [root / name for name in TUSIMPLE_SPLITS[split] if (root / name).is_file()]
    if not files:
        raise LaneKDError(f"{root}: none of {', '.join(TUSIMPLE_SPLITS[split])} found for split {split!r}")
    return files


def read_tusimple(
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    *,
    check_images: bool = True,
) -> Iterator[LaneSample]:
    """Yield the samples of the TuSimple label files of ``split``.

    Args:
        root: dataset folder (label files and the ``clips/`` tree).
        split: ``train``, ``val``, ``test``, ``trainval`` or a label file path.
        policy: bad lines raise (``fail``) or are recorded and skipped (``skip``).
        check_images: require every ``raw_file`` to exist under ``root`` (default).

    Yields:
        :class:`LaneSample` named by ``raw_file``, size ``(720, 1280)``, 6 slots, lanes left to
        right, points bottom to top.
    """
    policy = policy if policy is not None else ErrorPolicy()
    root = Path(root)
    return _iter_tusimple(root, tusimple_label_files(root, split), policy, check_images)


def _iter_tusimple(
    root: Path, label_files: list[Path], policy: ErrorPolicy, check_images: bool
) -> Iterator[LaneSample]:
    index = DirIndex()
    for label_file in label_files:
        for lineno, line in nonblank_lines(label_file):
            try:
                yield _parse_line(root, label_file, lineno, line, index, check_images)
            except DataError as exc:
                policy(exc)


def _parse_line(
    root: Path, label_file: Path, lineno: int, line: str, index: DirIndex, check_images: bool
) -> LaneSample:
    entry = parse_json_object(label_file, lineno, line)
    missing = [k for k in ("raw_file", "lanes", "h_samples") if k not in entry]
    if missing:
        raise DataError(label_file, f"missing key(s) {', '.join(missing)}", lineno)
    raw_file = entry["raw_file"]
    if not isinstance(raw_file, str) or not raw_file:
        raise DataError(label_file, "raw_file must be a non-empty string", lineno)
    h_samples, raw_lanes = entry["h_samples"], entry["lanes"]
    if not isinstance(h_samples, list) or not isinstance(raw_lanes, list):
        raise DataError(label_file, "h_samples and lanes must be lists", lineno)
    for i, xs in enumerate(raw_lanes):
        if not isinstance(xs, list) or len(xs) != len(h_samples):
            got = len(xs) if isinstance(xs, list) else "no list of"
            raise DataError(
                label_file, f"lane {i} has {got} x values but h_samples has {len(h_samples)}", lineno
            )
    try:
        ys = np.asarray(h_samples, dtype=np.float32).reshape(-1)
        lanes_x = np.asarray(raw_lanes, dtype=np.float32).reshape(len(raw_lanes), len(ys))
    except (TypeError, ValueError):
        raise DataError(label_file, "h_samples and lanes must hold numbers", lineno) from None
    image_path = root / raw_file
    if check_images and not index.exists(image_path):
        raise DataError(label_file, f"image {image_path} not found", lineno)

    lanes: list[np.ndarray] = []
    for xs in lanes_x:
        valid = xs >= 0  # -2 marks "no point"; any negative x is treated the same
        n = int(valid.sum())
        if n:
            # h_samples run top to bottom; LaneSample lanes run bottom to top.
            pts = np.empty((n, 2), np.float32)
            pts[:, 0] = xs[valid][::-1]
            pts[:, 1] = ys[valid][::-1]
            lanes.append(pts)
    try:
        slots = assign_slots_by_position(lanes, INFO.source_size, INFO.num_slots)
    except ValueError as exc:
        raise DataError(label_file, str(exc), lineno) from None
    lanes, slots = sort_by_slot(lanes, slots)
    return LaneSample(
        name=raw_file,
        image_path=image_path,
        size=INFO.source_size,
        lanes=lanes,
        slots=slots,
        num_slots=INFO.num_slots,
        exist=exist_flags(slots, INFO.num_slots),
        source=(str(label_file), lineno),
    )
