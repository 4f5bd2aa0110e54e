"""Dataset readers: every supported on-disk layout -> an iterator of :class:`LaneSample`.

Usage::

    from lanekd.data.formats import DATASETS, read_dataset

    for sample in read_dataset("culane", "/data/CULane", "train"):
        ...

``read_dataset`` dispatches through the plain dict :data:`READERS`; layouts, split names and slot
rules are documented in each reader module and in ``docs/datasets.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lanekd.data.formats.apolloscape import (
    APOLLO_ID_TO_TRAIN_ID,
    APOLLO_TRAIN_ID_TO_ID,
    read_apollo_label_ids,
    read_apolloscape,
)
from lanekd.data.formats.bdd100k import read_bdd100k
from lanekd.data.formats.common import assign_slots_by_position, parse_lines_file
from lanekd.data.formats.culane import read_culane
from lanekd.data.formats.custom import read_custom
from lanekd.data.formats.info import DATASETS, DatasetInfo, get_info
from lanekd.data.formats.labels import LABEL_FORMATS, read_label_map
from lanekd.data.formats.llamas import llamas_lanes, read_llamas
from lanekd.data.formats.tusimple import read_tusimple
from lanekd.data.policy import ErrorPolicy
from lanekd.data.sample import LaneSample
from lanekd.errors import ConfigError

Reader = Callable[..., Iterator[LaneSample]]

# name -> reader(root, split, policy, **options); "synthetic" has no reader (lanekd.data.synthetic).
READERS: dict[str, Reader] = {
    "culane": read_culane,
    "tusimple": read_tusimple,
    "llamas": read_llamas,
    "bdd100k": read_bdd100k,
    "apolloscape": read_apolloscape,
    "custom": read_custom,
}


def read_dataset(
    name: str,
    root: str | Path,
    split: str,
    policy: ErrorPolicy | None = None,
    **options: Any,
) -> Iterator[LaneSample]:
    """Iterate over the samples of one split of a dataset on disk.

    Args:
        name: ``culane``, ``tusimple``, ``llamas``, ``bdd100k``, ``apolloscape`` or ``custom``.
        root: the dataset folder (``custom``: the ``.jsonl`` file or its folder).
        split: a split name of the dataset (``DATASETS[name].splits``) or a list/label file path.
        policy: ``ErrorPolicy("fail")`` (default) raises the first :class:`~lanekd.errors.DataError`;
            ``ErrorPolicy("skip")`` records it in ``policy.skipped`` and goes on.
        **options: reader-specific keyword options, e.g. ``check_images=False`` (all readers),
            ``labels=False`` (culane), ``source="lanemark"`` (bdd100k), ``color=False`` (llamas),
            ``num_slots=6`` (custom).

    Returns:
        A lazy iterator; files are opened when iteration starts.

    Raises:
        ConfigError: unknown dataset name or option.
        LaneKDError: the split's files do not exist.
    """
    get_info(name)
    reader = READERS.get(name)
    if reader is None:
        raise ConfigError(f"dataset {name!r} is generated, not read: use lanekd.data.synthetic")
    policy = policy if policy is not None else ErrorPolicy()
    try:
        iterator = reader(root, split, policy, **options)
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return iterator


__all__ = [
    "APOLLO_ID_TO_TRAIN_ID",
    "APOLLO_TRAIN_ID_TO_ID",
    "DATASETS",
    "LABEL_FORMATS",
    "READERS",
    "DatasetInfo",
    "ErrorPolicy",
    "assign_slots_by_position",
    "get_info",
    "llamas_lanes",
    "parse_lines_file",
    "read_apollo_label_ids",
    "read_dataset",
    "read_label_map",
]
