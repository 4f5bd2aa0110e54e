"""Lane data: the sample type, readers, the HDF5 format, the prepare pipeline and the torch Dataset.

``LaneDataset`` and ``AugmentConfig`` need torch; they are imported on first use (PEP 562) so that
``lanekd prepare``, its worker processes and ``lanekd info`` do not pay torch's import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lanekd.data.cache import ensure_synthetic
from lanekd.data.h5 import LaneH5, verify_h5
from lanekd.data.prepare import prepare_dataset
from lanekd.data.sample import LaneSample

if TYPE_CHECKING:
    from lanekd.data.augment import AugmentConfig
    from lanekd.data.dataset import LaneDataset

__all__ = ["AugmentConfig", "LaneDataset", "LaneH5", "LaneSample", "ensure_synthetic", "prepare_dataset",
           "verify_h5"]


def __getattr__(name: str) -> Any:
    if name == "LaneDataset":
        from lanekd.data.dataset import LaneDataset

        return LaneDataset
    if name == "AugmentConfig":
        from lanekd.data.augment import AugmentConfig

        return AugmentConfig
    raise AttributeError(f"module 'lanekd.data' has no attribute {name!r}")
