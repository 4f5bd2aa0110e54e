"""ApolloScape lane segmentation reader: label-id PNGs and the 37 train ids of IntRA-KD (Hou et al.,
CVPR 2020; docs/datasets.md).

Layout of the official release (``root`` is the dataset folder; folder names contain spaces)::

    root/ColorImage_road02/ColorImage/Record001/Camera 5/170927_063811892_Camera_5.jpg
    root/Labels_road02/Label/Record001/Camera 5/170927_063811892_Camera_5_bin.png

``split`` is one of

* a list file (``root/list/<split>.txt`` or a path): lines ``image label [flags...]`` (the IntRA-KD
  lists) or a lone ``..._bin.png`` label path per line (the toolkit's ``*_list.csv``); paths may hold
  spaces and are taken relative to ``root`` (a leading ``/`` is ignored only when the absolute path
  does not exist);
* a folder (under ``root`` or a path), searched recursively for ``*_bin.png`` labels.

Without an explicit image path the image is derived from the label path: ``Labels_`` ->
``ColorImage_``, ``/Label/`` -> ``/ColorImage/``, ``_bin.png`` -> ``.jpg``.

Label PNGs are palette images whose *indices* are the class ids; several ids share a palette colour,
so :func:`read_apollo_label_ids` reads the indices, never the colours.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lanekd.data.formats.common import DirIndex, nonblank_lines
from lanekd.data.formats.info import DATASETS
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import DataError, LaneKDError

INFO = DATASETS["apolloscape"]

# (name, label id, train id, ignoreInEval) in train-id order (the ApolloScape lane-segmentation
# label table). IntRA-KD trains 37 classes: the official table's "noise" (249) and "ignored" (255)
# are merged into train id 36.
APOLLO_CLASSES: tuple[tuple[str, int, int, bool], ...] = (
    ("void", 0, 0, False),
    ("s_w_d", 200, 1, False),
    ("s_y_d", 204, 2, False),
    ("ds_w_dn", 213, 3, True),
    ("ds_y_dn", 209, 4, False),
    ("sb_w_do", 206, 5, True),
    ("sb_y_do", 207, 6, True),
    ("b_w_g", 201, 7, False),
    ("b_y_g", 203, 8, False),
    ("db_w_g", 211, 9, True),
    ("db_y_g", 208, 10, True),
    ("db_w_s", 216, 11, True),
    ("s_w_s", 217, 12, False),
    ("ds_w_s", 215, 13, True),
    ("s_w_c", 218, 14, True),
    ("s_y_c", 219, 15, True),
    ("s_w_p", 210, 16, False),
    ("s_n_p", 232, 17, True),
    ("c_wy_z", 214, 18, False),
    ("a_w_u", 202, 19, True),
    ("a_w_t", 220, 20, False),
    ("a_w_tl", 221, 21, False),
    ("a_w_tr", 222, 22, False),
    ("a_w_tlr", 231, 23, True),
    ("a_w_l", 224, 24, False),
    ("a_w_r", 225, 25, False),
    ("a_w_lr", 226, 26, False),
    ("a_n_lu", 230, 27, True),
    ("a_w_tu", 228, 28, True),
    ("a_w_m", 229, 29, True),
    ("a_y_t", 233, 30, True),
    ("b_n_sr", 205, 31, False),
    ("d_wy_za", 212, 32, True),
    ("r_wy_np", 227, 33, False),
    ("vom_wy_n", 223, 34, True),
    ("om_n_n", 250, 35, False),
    ("noise", 249, 36, True),
    ("ignored", 255, 36, True),
)
APOLLO_IGNORE_LABEL = 255  # train id for label ids outside the table (and for padding)


def _id_to_train_id() -> np.ndarray:
    lut = np.full(256, APOLLO_IGNORE_LABEL, np.uint8)
    for _, label_id, train_id, _ in APOLLO_CLASSES:
        lut[label_id] = train_id
    return lut


#: ``(256,)`` uint8 LUT: ``APOLLO_ID_TO_TRAIN_ID[label_ids]`` -> train ids 0..36 (255 = unknown id).
APOLLO_ID_TO_TRAIN_ID: np.ndarray = _id_to_train_id()
#: ``(37,)`` uint8: train id -> label id written in predictions (36 -> 249 "noise", as IntRA-KD does).
APOLLO_TRAIN_ID_TO_ID: np.ndarray = np.array([c[1] for c in APOLLO_CLASSES[:37]], np.uint8)
#: Label ids the official evaluation ignores.
APOLLO_IGNORE_IN_EVAL: frozenset[int] = frozenset(c[1] for c in APOLLO_CLASSES if c[3])


def read_apollo_label_ids(path: str | Path) -> np.ndarray:
    """Class ids of an ApolloScape label PNG: ``(H, W)`` uint8.

    Palette PNGs store the id as the palette index, and OpenCV expands palettes to colours (id 219
    shares black with void 0). The palette is therefore replaced by a grey ramp (entry ``i`` = ``i``)
    before decoding, which makes the decoded grey value equal to the index. Greyscale PNGs are read
    as they are.

    Raises:
        DataError: the file is missing or not a decodable PNG.
    """
    import cv2

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read label: {exc.strerror or exc}") from None
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError(path, "label is not a PNG file")
    data = _grey_palette(data)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(path, "cannot decode label PNG")
    if img.ndim == 3:
        img = img[..., 0]
    if img.dtype != np.uint8:
        raise DataError(path, f"label PNG must be 8-bit, got {img.dtype}")
    return img


def _grey_palette(data: bytes) -> bytes:
    """Rewrite the PLTE chunk of a PNG byte string so that palette entry ``i`` is grey ``i``."""
    pos = 8
    out = [data[:8]]
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if ctype == b"PLTE":
            n = length // 3
            body = bytes(np.repeat(np.arange(n, dtype=np.uint8), 3))
            crc = zlib.crc32(b"PLTE" + body) & 0xFFFFFFFF
            out.append(struct.pack(">I", len(body)) + b"PLTE" + body + struct.pack(">I", crc))
        elif ctype != b"tRNS":  # transparency would turn indices into an alpha channel
            out.append(data[pos:end])
        pos = end
    return b"".join(out)


_LIST_LINE = re.compile(
    r"^(?P<image>.+?\.(?:jpg|jpeg|png))\s+(?P<label>.+?\.png)(?P<flags>(?:\s+\S+)*)\s*$", re.I
)


def image_for_label(label_path: str) -> str:
    """The colour-image path of an ApolloScape label path (official naming)."""
    image = label_path.replace("Labels_", "ColorImage_").replace("/Label/", "/ColorImage/")
    return re.sub(r"_bin\.png$", ".jpg", image)


def _under(root: Path, written: str) -> Path:
    path = Path(written)
    if path.is_absolute() and path.exists():
        return path
    return root / written.lstrip("/")


def read_apolloscape(
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    *,
    check_images: bool = True,
) -> Iterator[LaneSample]:
    """Yield ApolloScape samples whose ``label_path`` is a label-id PNG.

    Args:
        root: dataset folder.
        split: a list file or a folder (see the module docstring).
        policy: bad samples raise (``fail``) or are recorded and skipped (``skip``).
        check_images: require every colour image to exist (default).

    Yields:
        :class:`LaneSample` of size ``(2710, 3384)``, no polylines, 0 slots, ``label_format``
        ``apollo_ids`` (ids -> train ids with :data:`APOLLO_ID_TO_TRAIN_ID`).
    """
    policy = policy if policy is not None else ErrorPolicy()
    root = Path(root)
    list_file = next(
        (c for c in (root / "list" / f"{split}.txt", Path(split), root / split) if c.is_file()), None
    )
    if list_file is not None:
        entries = _list_entries(root, list_file, policy)
    else:
        folder = next((c for c in (root / split, Path(split)) if c.is_dir()), None)
        if folder is None:
            raise LaneKDError(f"{root}: no ApolloScape list or folder for split {split!r}")
        entries = _folder_entries(root, folder)
    return _iter_apolloscape(entries, policy, check_images)


def _iter_apolloscape(
    entries: Iterator[Entry], policy: ErrorPolicy, check_images: bool
) -> Iterator[LaneSample]:
    index = DirIndex()
    for name, image_path, label_path, source in entries:
        try:
            if not index.exists(label_path):
                raise DataError(source[0], f"label {label_path} not found", source[1])
            if check_images and not index.exists(image_path):
                raise DataError(source[0], f"image {image_path} not found", source[1])
        except DataError as exc:
            policy(exc)
            continue
        yield LaneSample(
            name=name,
            image_path=image_path,
            size=INFO.source_size,
            num_slots=0,
            exist=np.zeros(0, np.uint8),
            label_path=label_path,
            label_format="apollo_ids",
            source=source,
        )


Entry = tuple[str, Path, Path, tuple[str, int | None]]


def _list_entries(root: Path, list_file: Path, policy: ErrorPolicy) -> Iterator[Entry]:
    for lineno, raw in nonblank_lines(list_file):
        line = raw.strip()
        source = (str(list_file), lineno)
        if line.lower().endswith(".png") and not re.search(r"\.(jpg|jpeg)\s", line, re.I):
            label = line  # label-only list (one path per line, spaces allowed)
            name = image_for_label(label)
        else:
            match = _LIST_LINE.match(line)
            if match is None or any(f not in ("0", "1") for f in match["flags"].split()):
                policy(DataError(list_file, "expected 'image label [0/1 flags]' or a label path", lineno))
                continue
            name, label = match["image"], match["label"]
        yield name, _under(root, name), _under(root, label), source


def _folder_entries(root: Path, folder: Path) -> Iterator[Entry]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for fname in sorted(f for f in filenames if f.endswith("_bin.png")):
            label_path = Path(dirpath) / fname
            rel = (
                label_path.relative_to(root).as_posix()
                if label_path.is_relative_to(root)
                else str(label_path)
            )
            name = image_for_label(rel)
            yield name, _under(root, name), label_path, (str(label_path), None)
