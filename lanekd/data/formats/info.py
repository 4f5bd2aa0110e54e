"""Static facts about every supported dataset (geometry, slots, classes, decoder profile)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of lanekd needs to know about a dataset before reading a sample.

    Attributes:
        name: registry key (``culane``, ``tusimple``, ...).
        num_slots: lane slots (existence outputs); 0 where the dataset has no lane instances.
        num_classes: segmentation classes including background (docs/datasets.md).
        source_size: ``(H, W)`` of the dataset's frames; ``(0, 0)`` when it varies per image.
        default_size: ``(H, W)`` network input used by the reference recipes (after ``crop_top``).
        crop_top: rows removed from the top of the source frame before resizing.
        line_width_at_source: width in source pixels of the lines drawn for per-pixel labels
            (CULane ``laneseg_label_w16`` = 16 px on 1640 columns; other datasets scaled by width).
        label_format: format of the label images the dataset ships (``None``: labels are rendered
            from the polylines); see ``lanekd.data.formats.labels``.
        splits: the split names the reader accepts (besides paths).
        decode_profile: the :mod:`lanekd.decode.profiles` profile that reads this dataset's
            probability maps back into source-frame lanes; ``prepare`` writes it into the HDF5
            attribute ``decode_profile``, where training, validation, export and predict read it.
    """

    name: str
    num_slots: int
    num_classes: int
    source_size: tuple[int, int]
    default_size: tuple[int, int]
    crop_top: int
    line_width_at_source: float
    label_format: str | None = None
    splits: tuple[str, ...] = ()
    decode_profile: str = "culane"


# A plain dict so that `grep DATASETS` finds every entry; keys are what `--dataset` accepts.
DATASETS: dict[str, DatasetInfo] = {
    "culane": DatasetInfo(
        "culane", 4, 5, (590, 1640), (288, 800), 0, 16.0, "culane", ("train", "val", "test"),
        decode_profile="culane",
    ),
    "tusimple": DatasetInfo(
        "tusimple",
        6,
        7,
        (720, 1280),
        (368, 640),
        0,
        16.0 * 1280 / 1640,
        None,
        ("train", "val", "test", "trainval"),
        decode_profile="tusimple",
    ),
    "llamas": DatasetInfo(
        "llamas", 4, 5, (717, 1276), (288, 960), 333, 16.0 * 1276 / 1640, None, ("train", "valid"),
        decode_profile="llamas",
    ),
    # SAD protocol: one binary lane class, existence not trained (SAD paper); 8 px training lines.
    "bdd100k": DatasetInfo(
        "bdd100k", 1, 2, (720, 1280), (360, 640), 0, 8.0, "binary255", ("train", "val", "test"),
        decode_profile="culane",  # no lane decoder of its own: CULane's rows
    ),
    # 37 train ids, no lane instances; rows above 1700 are dropped (IntRA-KD, Hou et al., CVPR 2020);
    # 496x1664 keeps the aspect of the remaining 1010x3384 band.
    "apolloscape": DatasetInfo(
        "apolloscape",
        0,
        37,
        (2710, 3384),
        (496, 1664),
        1700,
        16.0 * 3384 / 1640,
        "apollo_ids",
        ("train", "val", "test"),
        decode_profile="culane",  # no lane instances: CULane's rows
    ),
    # Users' own data: image sizes vary, 4 slots unless the reader is told otherwise.
    "custom": DatasetInfo("custom", 4, 5, (0, 0), (288, 800), 0, 16.0, None, (), decode_profile="culane"),
    # Built-in synthetic road scenes (lanekd.data.synthetic) use CULane geometry.
    "synthetic": DatasetInfo(
        "synthetic", 4, 5, (590, 1640), (288, 800), 0, 16.0, None, ("train", "val", "test"),
        decode_profile="culane",
    ),
}


def get_info(name: str) -> DatasetInfo:
    """``DATASETS[name]`` with a one-line error listing the known names."""
    from lanekd.errors import ConfigError

    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None


def decode_profile_name(attrs: Mapping[str, Any]) -> str:
    """The decoder profile of prepared data: the one place that falls back for older files.

    Args:
        attrs: HDF5 attributes (``decode_profile``, written by ``prepare``) or a checkpoint's
            ``data_attrs`` (``profile``, copied from them at training time).

    Returns:
        The recorded profile; for files and checkpoints written before it was recorded, the
        ``decode_profile`` of their dataset's :class:`DatasetInfo` (``culane`` for an unknown
        dataset, the profile whose geometry the synthetic scenes share).
    """
    for key in ("decode_profile", "profile"):
        if attrs.get(key):
            return str(attrs[key])
    info = DATASETS.get(str(attrs.get("dataset")))
    return info.decode_profile if info is not None else "culane"
