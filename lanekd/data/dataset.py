"""The torch ``Dataset`` over a lanekd HDF5 file: decode, augment (training), normalise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lanekd.data.augment import AugmentConfig, augment_pair, normalize
from lanekd.data.h5 import LaneH5


class LaneDataset(Dataset):
    """Training/evaluation samples from a lanekd HDF5 file.

    Works with any number of DataLoader workers: the underlying :class:`LaneH5` opens one h5py
    handle per process on first access. Augmentation draws from torch's RNG (seeded per worker by
    the DataLoader), so a fixed ``torch.manual_seed`` / DataLoader generator reproduces the stream.

    Args:
        path: the ``.h5`` file written by ``lanekd prepare``.
        train: apply the training augmentation (:class:`AugmentConfig`); ``False`` = evaluation.
        augment: augmentation parameters (default: the SCNN 288x800 recipe).
        mean, std: override the file's RGB normalisation (``[0, 1]`` units).

    Items (dict):
        image: ``(3, H, W)`` float32, normalised.
        label: ``(H, W)`` int64, 0 background, ``k`` slot ``k``, 255 ignore.
        exist: ``(L,)`` float32 existence flags.
        index: int64 sample index in the file (names: ``dataset.h5.names[index]``).
    """

    def __init__(self, path: str | Path, train: bool = True, augment: AugmentConfig | None = None,
                 mean: tuple[float, float, float] | None = None,
                 std: tuple[float, float, float] | None = None) -> None:
        self.h5 = LaneH5(path)
        self.train = train
        self.augment = augment if augment is not None else AugmentConfig()
        self.mean: tuple[float, float, float] = tuple(mean or self.h5.attrs["mean"])  # type: ignore[assignment]
        self.std: tuple[float, float, float] = tuple(std or self.h5.attrs["std"])  # type: ignore[assignment]
        self.attrs: dict[str, Any] = self.h5.attrs
        self.size = self.h5.size
        self.num_slots = self.h5.num_slots

    def __len__(self) -> int:
        return len(self.h5)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        image = self.h5.image(index, alpha=self.train)
        label = self.h5.label(index)
        if self.train:
            image, label = augment_pair(image, label, self.augment, self.mean)
        return {
            "image": normalize(image, self.mean, self.std),
            "label": torch.from_numpy(label.astype(np.int64)),
            "exist": torch.from_numpy(self.h5.exist[index].astype(np.float32)),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return f"LaneDataset({str(self.h5.path)!r}, train={self.train}, n={len(self)})"
