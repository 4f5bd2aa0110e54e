"""The one lane-sample type every dataset reader produces.

Coordinates are in *source image pixels* (x to the right, y down, 0-based), before any resize
or crop. A lane is an ``(N, 2)`` float32 array of ``(x, y)`` points ordered bottom to top as in
the source annotation. ``slots[i]`` is the 0-based ego-relative slot of ``lanes[i]`` (CULane:
0 = left-left, 1 = left, 2 = right, 3 = right-right); the per-pixel label value of slot ``k``
is ``k + 1`` (0 = background, 255 = ignore).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class LaneSample:
    """One annotated image.

    Attributes:
        name: the image path exactly as written in the dataset's list/label file (kept verbatim,
            leading ``/`` included, so prediction trees can mirror it).
        image_path: absolute path of the image file on disk.
        size: ``(H, W)`` of the source image; ``(0, 0)`` when not known without decoding.
        lanes: list of ``(N, 2)`` float32 arrays of ``(x, y)`` source-pixel points.
        slots: 0-based slot index of each lane (same length as ``lanes``).
        num_slots: number of lane slots of the dataset (4 CULane/LLAMAS, 6 TuSimple).
        exist: ``(num_slots,)`` uint8 existence flags.
        category: optional scene category (CULane test split name, synthetic tag, ...).
        label_path: optional per-pixel label image shipped by the dataset (CULane
            ``laneseg_label_w16``, BDD100K masks, ApolloScape label ids).
        label_format: how to read ``label_path`` into class ids (``None`` when there is no
            label image): see ``lanekd.data.formats.labels.LABEL_FORMATS`` and ``read_label_map``.
        source: ``(file, line)`` of the annotation this sample came from, for error messages.
        image: the decoded ``(H, W, 3)`` uint8 RGB image when the sample is generated in memory
            (synthetic scenes); ``None`` for samples read from disk.
    """

    name: str
    image_path: Path
    size: tuple[int, int]
    lanes: list[np.ndarray] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    num_slots: int = 4
    exist: np.ndarray = field(default_factory=lambda: np.zeros(4, np.uint8))
    category: str | None = None
    label_path: Path | None = None
    source: tuple[str, int | None] | None = None
    image: np.ndarray | None = None
    label_format: str | None = None

    def __post_init__(self) -> None:
        if len(self.lanes) != len(self.slots):
            raise ValueError(f"{self.name}: {len(self.lanes)} lanes but {len(self.slots)} slots")
        self.exist = np.asarray(self.exist, dtype=np.uint8).reshape(-1)
        if self.exist.shape[0] != self.num_slots:
            raise ValueError(f"{self.name}: exist has {self.exist.shape[0]} flags, expected {self.num_slots}")

    def lanes_by_slot(self) -> list[np.ndarray]:
        """Lanes indexed by slot: a list of ``num_slots`` arrays, empty ``(0, 2)`` where absent."""
        out = [np.zeros((0, 2), np.float32) for _ in range(self.num_slots)]
        for lane, slot in zip(self.lanes, self.slots, strict=True):
            out[slot] = np.asarray(lane, np.float32)
        return out
