"""CULane reader: list files + ``.lines.txt`` annotations (+ ``laneseg_label_w16`` masks).

Layout (``root`` is the dataset folder)::

    root/list/train_gt.txt            img_path mask_path e1 e2 e3 e4
    root/list/val_gt.txt              same
    root/list/test.txt                /driver_xx/.../00000.jpg   (leading '/')
    root/list/test_split/test0_normal.txt ... test8_night.txt   (no leading '/')
    root/driver_xx_30frame/<video>/00000.jpg + 00000.lines.txt
    root/laneseg_label_w16/driver_xx_30frame/<video>/00000.png  (optional)

Slots: with existence flags (``*_gt.txt``) the k-th set flag belongs to the k-th lane of the
``.lines.txt`` file (the files list lanes left to right). Without flags (``test.txt``, ``train.txt``,
the test splits) slots follow :func:`~lanekd.data.formats.common.assign_slots_by_position`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lanekd.data.formats.common import (
    DirIndex,
    assign_slots_by_position,
    bottom_first,
    exist_flags,
    nonblank_lines,
    parse_flags,
    parse_lines_file,
    resolve_under,
    sort_by_slot,
)
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import DataError, LaneKDError

INFO = DATASETS["culane"]
CULANE_CATEGORIES = ("normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night")


def culane_list_file(root: str | Path, split: str) -> Path:
    """The list file of ``split``.

    Accepted: ``train`` (``train_gt.txt``, else ``train.txt``), ``val`` (``val_gt.txt``, else
    ``val.txt``), ``test`` (``test.txt``), a test category (``night`` or ``test8_night`` ->
    ``test_split/test8_night.txt``), any other ``list/<split>.txt``, or a path to a list file.
    """
    root = Path(root)
    lst = root / "list"
    candidates: list[Path] = []
    if split in ("train", "val"):
        candidates = [lst / f"{split}_gt.txt", lst / f"{split}.txt"]
    elif split in CULANE_CATEGORIES:
        k = CULANE_CATEGORIES.index(split)
        candidates = [lst / "test_split" / f"test{k}_{split}.txt"]
    else:
        candidates = [lst / f"{split}.txt", lst / "test_split" / f"{split}.txt", Path(split), root / split]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise LaneKDError(
        f"{root}: no CULane list for split {split!r} (looked for {', '.join(map(str, candidates))})"
    )


def culane_categories(root: str | Path) -> dict[str, str]:
    """Map image name (without leading ``/``) -> test category, from ``list/test_split`` when present."""
    split_dir = Path(root) / "list" / "test_split"
    out: dict[str, str] = {}
    if not split_dir.is_dir():
        return out
    for path in sorted(split_dir.glob("test*_*.txt")):
        category = path.stem.split("_", 1)[1]
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                tokens = line.split()
                if tokens:
                    out[tokens[0].lstrip("/")] = category
    return out


def read_culane(
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    *,
    check_images: bool = True,
    labels: bool = True,
) -> Iterator[LaneSample]:
    """Yield the samples of a CULane list.

    Args:
        root: dataset folder (holds ``list/`` and the ``driver_*`` folders).
        split: see :func:`culane_list_file`.
        policy: bad samples raise (``fail``) or are recorded and skipped (``skip``).
        check_images: require every image file to exist (default). ``False`` reads annotations only,
            e.g. for evaluation ground truth without frames.
        labels: read the ``.lines.txt`` annotations (default). ``False`` yields unlabelled samples
            (no lanes, all flags 0) for prediction on image lists.

    Yields:
        :class:`LaneSample` with ``name`` verbatim from the list (leading ``/`` kept), size
        ``(590, 1640)``, lanes ordered left to right and bottom to top.
    """
    policy = policy if policy is not None else ErrorPolicy()
    root = Path(root)
    list_file = culane_list_file(root, split)
    return _iter_culane(root, list_file, policy, check_images, labels)


def _iter_culane(
    root: Path, list_file: Path, policy: ErrorPolicy, check_images: bool, labels: bool
) -> Iterator[LaneSample]:
    categories = culane_categories(root)
    fixed_category = None
    if list_file.parent.name == "test_split" and "_" in list_file.stem:
        fixed_category = list_file.stem.split("_", 1)[1]
    index = DirIndex()
    num_slots = INFO.num_slots
    for lineno, line in nonblank_lines(list_file):
        tokens = line.split()
        try:
            sample = _read_line(root, list_file, lineno, tokens, index, num_slots, check_images, labels)
        except DataError as exc:
            policy(exc)
            continue
        sample.category = fixed_category or categories.get(tokens[0].lstrip("/"))
        yield sample


def _read_line(
    root: Path,
    list_file: Path,
    lineno: int,
    tokens: list[str],
    index: DirIndex,
    num_slots: int,
    check_images: bool,
    labels: bool,
) -> LaneSample:
    """Parse one list line into a sample (raises DataError naming ``list_file:lineno``)."""
    if len(tokens) not in (1, 2, 2 + num_slots):
        raise DataError(
            list_file,
            f"expected 'image [mask e1..e{num_slots}]', got {len(tokens)} fields",
            lineno,
        )
    name = tokens[0]
    flags: list[int] | None = None
    if len(tokens) == 2 + num_slots:
        flags = parse_flags(tokens[2:], list_file, lineno)
    image_path = resolve_under(root, name)
    if check_images and not index.exists(image_path):
        raise DataError(list_file, f"image {image_path} not found", lineno)

    label_path = None
    if len(tokens) >= 2:
        mask = resolve_under(root, tokens[1])
        label_path = mask if index.exists(mask) else None

    lanes: list[np.ndarray] = []
    slots: list[int] = []
    if labels:
        lines_path = image_path.with_suffix(".lines.txt")
        if not index.exists(lines_path):
            raise DataError(list_file, f"annotation {lines_path} not found", lineno)
        lanes = [bottom_first(lane) for lane in parse_lines_file(lines_path)]
        if flags is not None:
            present = [k for k, f in enumerate(flags) if f]
            if len(present) != len(lanes):
                raise DataError(
                    list_file,
                    f"{len(present)} existence flags set but {lines_path.name} has {len(lanes)} lanes",
                    lineno,
                )
            slots = present
        else:
            try:
                slots = assign_slots_by_position(lanes, INFO.source_size, num_slots)
            except ValueError as exc:
                raise DataError(lines_path, str(exc)) from None
            lanes, slots = sort_by_slot(lanes, slots)
    exist = exist_flags(slots, num_slots)
    return LaneSample(
        name=name,
        image_path=image_path,
        size=INFO.source_size,
        lanes=lanes,
        slots=slots,
        num_slots=num_slots,
        exist=exist,
        label_path=label_path,
        label_format="culane" if label_path is not None else None,
        source=(str(list_file), lineno),
    )
