"""Decoder profiles: the per-dataset geometry and thresholds of the lane decoder.

A :class:`DecodeProfile` says where the network input came from in the source image (source size,
rows cropped off the top) and how lanes are read off the probability maps (sampled rows, smoothing,
thresholds, resampling). The network resolution is *not* part of the profile: the decoder reads it
from the probability tensor, so one profile serves every input size of a dataset.

Conventions and their sources are documented in ``docs/decoder.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lanekd.errors import ConfigError

BORDER_MODES = ("zero", "reflect101", "replicate")

TUSIMPLE_H_SAMPLES: tuple[int, ...] = tuple(range(160, 720, 10))
"""TuSimple's 56 evaluation rows (``h_samples`` of ``test_label.json``): 160, 170, ..., 710."""


@dataclass(frozen=True)
class DecodeProfile:
    """Geometry and thresholds of the SCNN/SAD ``getLane`` decoder for one dataset.

    Attributes:
        name: profile name.
        source_size: ``(H, W)`` of the source image in pixels.
        crop_top: rows removed from the top of the source image before resizing to the network
            input (the network sees rows ``crop_top .. H-1``).
        net_size: the usual network input ``(h, w)`` (informative; the decoder uses the tensor's).
        y_start: source row of the first (bottom) sample.
        y_step: source pixels between consecutive sample rows (going up).
        num_rows: number of sample rows.
        kernel: side of the square mean filter applied to each lane channel.
        border: border handling of the mean filter: ``zero`` (Torch zero padding), ``reflect101``
            (OpenCV ``cv2.blur`` default) or ``replicate``.
        threshold: a sampled column is kept when its smoothed probability is > ``threshold``.
        exist_threshold: a lane is decoded when its existence probability is > ``exist_threshold``.
        min_points: lanes with fewer kept sample points are dropped.
        resample_step: with ``spline=True``, resample the spline every ``resample_step`` source
            pixels of y within the points' span (ignored when ``h_samples`` is set).
        h_samples: with ``spline=True``, resample at exactly these source rows (TuSimple) instead.
    """

    name: str
    source_size: tuple[int, int]
    crop_top: int
    net_size: tuple[int, int]
    y_start: float
    y_step: float = 20.0
    num_rows: int = 18
    kernel: int = 9
    border: str = "zero"
    threshold: float = 0.3
    exist_threshold: float = 0.5
    min_points: int = 2
    resample_step: float = 10.0
    h_samples: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        H, W = self.source_size
        if H <= 0 or W <= 0:
            raise ConfigError(f"profile {self.name}: source_size must be positive, got {self.source_size}")
        if not 0 <= self.crop_top < H:
            raise ConfigError(f"profile {self.name}: crop_top {self.crop_top} outside 0..{H - 1}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"profile {self.name}: kernel must be a positive odd number, got {self.kernel}")
        if self.border not in BORDER_MODES:
            raise ConfigError(f"profile {self.name}: border must be one of {', '.join(BORDER_MODES)}, "
                              f"got {self.border!r}")
        if self.num_rows < 1 or self.y_step <= 0:
            raise ConfigError(f"profile {self.name}: need num_rows >= 1 and y_step > 0")
        if self.min_points < 1:
            raise ConfigError(f"profile {self.name}: min_points must be >= 1")
        if self.resample_step <= 0:
            raise ConfigError(f"profile {self.name}: resample_step must be > 0")
        ys = self.sample_ys()
        if ys.max() > H - 1 or ys.min() < self.crop_top:
            raise ConfigError(f"profile {self.name}: sample rows {ys.min():g}..{ys.max():g} leave the "
                              f"visible region {self.crop_top}..{H - 1}")

    @property
    def roi_height(self) -> int:
        """Height of the source region the network sees (``H_roi`` of getLane)."""
        return self.source_size[0] - self.crop_top

    def sample_ys(self) -> np.ndarray:
        """Source y of every sample row, bottom first: ``(num_rows,)`` float64."""
        return self.y_start - self.y_step * np.arange(self.num_rows, dtype=np.float64)

    def net_rows(self, net_h: int) -> np.ndarray:
        """0-based network row of each sample row for a map of height ``net_h``: ``(num_rows,)`` int64.

        getLane (MATLAB, 1-based) reads row ``r_i = round(H_net - (i-1)*20*H_net/H_roi)`` for the
        source row ``y_i = H_src - 1 - (i-1)*20``. Written for any sample row ``y`` this is
        ``r = round(H_net - (H_src - 1 - y)*H_net/H_roi)``; MATLAB's ``round`` is half away from zero,
        and the 0-based row is ``r - 1``.
        """
        dist = (self.source_size[0] - 1) - self.sample_ys()
        r = np.floor(net_h - dist * net_h / self.roi_height + 0.5).astype(np.int64)
        return np.clip(r, 1, net_h) - 1

    def columns_to_x(self, cols: np.ndarray, net_w: int) -> np.ndarray:
        """Source x of 0-based network columns: getLane's ``x = round(c*W_src/W_net) - 1``, ``c = col+1``."""
        c = np.asarray(cols, dtype=np.float64) + 1.0
        return np.floor(c * self.source_size[1] / net_w + 0.5) - 1.0


_CULANE = DecodeProfile(
    name="culane", source_size=(590, 1640), crop_top=0, net_size=(288, 800), y_start=589.0
)

PROFILES: dict[str, DecodeProfile] = {
    # Full frame at 288x800: original SCNN test pipeline (XingangPan/SCNN datasets/lane.lua, getLane.m).
    "culane": _CULANE,
    # ENet-SAD release: 240-row top crop, 976x208 input (ENet-Label-Torch testLane.lua, H_roi = 350).
    "culane-crop": dataclasses.replace(_CULANE, name="culane-crop", crop_top=240, net_size=(208, 976)),
    # TuSimple 1280x720 at 640x368; getLane-style rows from the last h_sample (710) up to 170, 5x5 smoothing
    # as in ENet-TuSimple-Torch testLaneE.lua, spline resampled at the 56 evaluation rows.
    "tusimple": DecodeProfile(
        name="tusimple", source_size=(720, 1280), crop_top=0, net_size=(368, 640), y_start=710.0,
        num_rows=28, kernel=5, h_samples=TUSIMPLE_H_SAMPLES,
    ),
    # LLAMAS 1276x717, top 333 rows cropped, 960x288 input (unsupervised_llamas ENet-SAD-Simple); rows
    # 716..336 cover the visible region.
    "llamas": DecodeProfile(
        name="llamas", source_size=(717, 1276), crop_top=333, net_size=(288, 960), y_start=716.0, num_rows=20,
    ),
    # The built-in synthetic scenes use CULane's frame geometry.
    "synthetic": dataclasses.replace(_CULANE, name="synthetic"),
}


def list_profiles() -> list[str]:
    """Names accepted by :func:`get_profile`."""
    return sorted(PROFILES)


def get_profile(name: str | DecodeProfile, **overrides: object) -> DecodeProfile:
    """The decoder profile for a profile or dataset name, with optional field overrides.

    Args:
        name: a profile name (``culane``, ``culane-crop``, ``tusimple``, ``llamas``, ``synthetic``),
            a dataset name with the same spelling, or a :class:`DecodeProfile` (returned as is).
        overrides: :class:`DecodeProfile` fields to replace, e.g. ``threshold=0.4, border="reflect101"``.

    Raises:
        ConfigError: unknown profile name or unknown/invalid override.
    """
    if isinstance(name, DecodeProfile):
        prof = name
    else:
        key = str(name).lower()
        if key not in PROFILES:
            raise ConfigError(f"unknown decoder profile {name!r}; choose one of {', '.join(list_profiles())}")
        prof = PROFILES[key]
    if not overrides:
        return prof
    fields = {f.name for f in dataclasses.fields(DecodeProfile)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown decoder option(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(fields))}")
    if "h_samples" in overrides and overrides["h_samples"] is not None:
        overrides["h_samples"] = tuple(int(v) for v in overrides["h_samples"])  # type: ignore[union-attr]
    return dataclasses.replace(prof, **overrides)  # type: ignore[arg-type]
