"""BDD100K lane reader: binary lane masks, SAD protocol (SAD paper; docs/datasets.md).

Two sources of masks (``source=`` option):

``"sad"`` (default) - the SAD authors' lists and 0/255 masks (255 = lane, one class)::

    root/list/train_gt_bdd.txt, val_gt_bdd.txt, test_gt_bdd.txt
        /val_img/val/<id>.jpg /val_label/final_val/<id>.png 1 1 1 1
    (paths are relative to root; a leading '/' is ignored)

``"lanemark"`` - the official BDD100K lane-mark masks (255 = background, class bits otherwise),
turned into the same binary lane map when labels are read (format ``bdd_lanemark``)::

    root/labels/lane/masks/{train,val}/<id>.png
    root/images/100k/{train,val}/<id>.jpg

``split`` may also be a list file (``sad``) or a folder of masks (``lanemark``; images are then
looked up in ``image_dir`` when given, else next to the masks).

Samples carry no polylines (the dataset's lanes are masks): ``lanes`` is empty, ``num_slots`` is 1
and its flag says whether the list marks any lane (SAD lists always do).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lanekd.data.formats.common import DirIndex, nonblank_lines, parse_flags, resolve_under
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import ConfigError, DataError, LaneKDError

INFO = DATASETS["bdd100k"]


def read_bdd100k(
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    *,
    source: str = "sad",
    check_images: bool = True,
    image_dir: str | Path | None = None,
) -> Iterator[LaneSample]:
    """Yield BDD100K samples with ``label_path`` pointing at a binary lane mask.

    Args:
        root: dataset folder.
        split: ``train``, ``val``, ``test`` (SAD lists) / ``train``, ``val`` (lane-mark masks), or a
            list file / mask folder.
        policy: bad samples raise (``fail``) or are recorded and skipped (``skip``).
        source: ``"sad"`` or ``"lanemark"`` (see the module docstring).
        check_images: require every image to exist (default).
        image_dir: ``lanemark`` with a mask-folder split: where the ``<id>.jpg`` images are.

    Yields:
        :class:`LaneSample` of size ``(720, 1280)``, no polylines, ``label_format`` ``binary255``
        (SAD) or ``bdd_lanemark``.
    """
    policy = policy if policy is not None else ErrorPolicy()
    root = Path(root)
    if source == "sad":
        return _read_sad(root, split, policy, check_images)
    if source == "lanemark":
        return _read_lanemark(root, split, policy, check_images, image_dir)
    raise ConfigError(f"unknown BDD100K source {source!r}; use 'sad' or 'lanemark'")


def _read_sad(root: Path, split: str, policy: ErrorPolicy, check_images: bool) -> Iterator[LaneSample]:
    candidates = [root / "list" / f"{split}_gt_bdd.txt", Path(split), root / split]
    list_file = next((c for c in candidates if c.is_file()), None)
    if list_file is None:
        raise LaneKDError(f"{root}: no BDD100K list for split {split!r} (looked for {candidates[0]})")
    return _iter_sad(root, list_file, policy, check_images)


def _iter_sad(root: Path, list_file: Path, policy: ErrorPolicy, check_images: bool) -> Iterator[LaneSample]:
    index = DirIndex()
    for lineno, line in nonblank_lines(list_file):
        tokens = line.split()
        try:
            if len(tokens) < 2:
                raise DataError(list_file, "expected 'image mask [flags...]'", lineno)
            flags = parse_flags(tokens[2:], list_file, lineno)
            image_path = resolve_under(root, tokens[0])
            mask_path = resolve_under(root, tokens[1])
            if check_images and not index.exists(image_path):
                raise DataError(list_file, f"image {image_path} not found", lineno)
            if not index.exists(mask_path):
                raise DataError(list_file, f"label {mask_path} not found", lineno)
        except DataError as exc:
            policy(exc)
            continue
        has_lane = 1 if not flags or any(flags) else 0
        yield _sample(tokens[0], image_path, mask_path, "binary255", has_lane, (str(list_file), lineno))


def _read_lanemark(
    root: Path, split: str, policy: ErrorPolicy, check_images: bool, image_dir: str | Path | None
) -> Iterator[LaneSample]:
    mask_dir = root / "labels" / "lane" / "masks" / split
    if mask_dir.is_dir():
        images = Path(image_dir) if image_dir is not None else root / "images" / "100k" / split
    else:
        mask_dir = next((c for c in (Path(split), root / split) if c.is_dir()), None)  # type: ignore[assignment]
        if mask_dir is None:
            raise LaneKDError(f"{root}: no BDD100K lane-mark masks for split {split!r}")
        images = Path(image_dir) if image_dir is not None else mask_dir
    return _iter_lanemark(root, mask_dir, images, policy, check_images)


def _iter_lanemark(
    root: Path, mask_dir: Path, images: Path, policy: ErrorPolicy, check_images: bool
) -> Iterator[LaneSample]:
    index = DirIndex()
    for mask_path in sorted(mask_dir.glob("*.png")):
        image_path = images / (mask_path.stem + ".jpg")
        if check_images and not index.exists(image_path):
            policy(DataError(mask_path, f"image {image_path} not found"))
            continue
        name = image_path.relative_to(root).as_posix() if image_path.is_relative_to(root) else image_path.name
        yield _sample(name, image_path, mask_path, "bdd_lanemark", 1, (str(mask_path), None))


def _sample(
    name: str, image_path: Path, mask_path: Path, fmt: str, has_lane: int, source: tuple[str, int | None]
) -> LaneSample:
    return LaneSample(
        name=name,
        image_path=image_path,
        size=INFO.source_size,
        num_slots=INFO.num_slots,
        exist=np.array([has_lane], np.uint8),
        label_path=mask_path,
        label_format=fmt,
        source=source,
    )
