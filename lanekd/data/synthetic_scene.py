"""Scene model of the synthetic road generator: camera, road layout, markings, actors.

Everything here is geometry in metres on a flat ground plane seen by a pinhole camera; the
pixels are produced by :mod:`lanekd.data.synthetic_draw`. Keeping the sampled scene separate
from the drawing lets the ground truth (lane centre lines) be computed from the exact same
numbers the painter uses, so the annotation lies under the paint by construction.

Road frame: ``X`` lateral (m, right positive) measured from the centre of the ego lane, ``Z``
forward distance (m). The road bends with curvature ``c0`` (1/m) and its rate ``c1`` (1/m^2):
a feature at road offset ``X`` sits at world lateral position ``X + c0 Z^2/2 + c1 Z^3/6``.
The camera (height ``h`` m, focal ``f`` px at 1640 px width, principal row ``yh`` = horizon,
vanishing column ``cx``, lateral offset ``off`` from the ego-lane centre) projects
``(X, Z, height)`` to ``x = cx + f (X_world - off) / Z`` and ``y = yh + f (h - height) / Z``
in the reference frame of its rig (:data:`GEOMETRIES`: CULane's 590x1640 by default), then
scales to the requested image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REF_H, REF_W = 590, 1640


@dataclass(frozen=True)
class CameraGeometry:
    """The frame and camera priors of one dataset's rig, in its native pixels.

    Attributes:
        name: the dataset whose frames the scenes imitate.
        size: native ``(H, W)``, the camera's reference frame.
        focal: range of the focal length ``f`` (px).
        height: range of the camera height above the road (m).
        cx_sd: spread of the vanishing column around the frame centre (px).
        horizon: range of the horizon row (px).
        slot_of: CULane-style slot of the line ``j`` lanes out on ``side`` (-1 left, 1 right);
            lines not listed are painted but not annotated.
        num_slots: slots of the dataset's lane order.
        urban: share of urban scenes (narrower lanes, short dashes, no guard rails).
        hood: share of frames showing the ego car's bonnet.
        dash, gap: ranges of the dash and gap lengths (m) of dashed lines outside towns.
        left_edge_yellow: share of left road edges painted yellow.
        divider: share of roads whose oncoming traffic is separated by a yellow line left of the
            ego lane (two-way roads; none on a divided highway).
    """

    name: str
    size: tuple[int, int]
    focal: tuple[float, float]
    height: tuple[float, float]
    cx_sd: float
    horizon: tuple[float, float]
    slot_of: dict[tuple[int, int], int]
    num_slots: int
    urban: float
    hood: float
    dash: tuple[float, float] = (5.0, 6.5)
    gap: tuple[float, float] = (8.0, 10.0)
    left_edge_yellow: float = 0.1
    divider: float = 0.35


#: The rigs the generator imitates. CULane: a dashcam behind the windscreen, 1640x590, four
#: slots (0 left-left, 1 left, 2 right, 3 right-right). TuSimple: a higher, centred camera on
#: highways, 1280x720, no bonnet in view, six slots (left lanes 2, 1, 0 from the centre outwards,
#: right lanes 3, 4, 5); its horizon row (median 239, 5-95 % 223-251) and ego-lane width at row
#: 710 (median 1047 px, 953-1125) were measured on TuSimple's training annotations, which give
#: the camera height 1.5-1.85 m for lanes 3.4-3.9 m wide. Its markings follow the US MUTCD
#: (TuSimple drives US highways): 10 ft (3 m) dashes with 30 ft (9 m) gaps, white lines between
#: lanes of one direction, and the left edge of a divided highway is yellow.
GEOMETRIES: dict[str, CameraGeometry] = {
    "culane": CameraGeometry(
        name="culane", size=(REF_H, REF_W), focal=(900, 1150), height=(1.2, 1.6), cx_sd=40,
        horizon=(262, 302), slot_of={(-1, 0): 1, (-1, 1): 0, (1, 0): 2, (1, 1): 3}, num_slots=4,
        urban=0.45, hood=0.35,
    ),
    "tusimple": CameraGeometry(
        name="tusimple", size=(720, 1280), focal=(950, 1250), height=(1.5, 1.85), cx_sd=25,
        horizon=(222, 252), slot_of={(-1, 2): 0, (-1, 1): 1, (-1, 0): 2, (1, 0): 3, (1, 1): 4, (1, 2): 5},
        num_slots=6, urban=0.0, hood=0.0, dash=(2.7, 3.4), gap=(8.5, 9.8), left_edge_yellow=0.85,
        divider=0.0,
    ),
}


@dataclass
class Camera:
    """Pinhole camera over a flat road; coordinates scale from the reference frame
    ``(ref_h, ref_w)`` (CULane's 590x1640 unless given) to ``(H, W)``."""

    H: int
    W: int
    f: float = 1000.0
    h: float = 1.35
    cx: float = 820.0
    yh: float = 285.0
    off: float = 0.0
    c0: float = 0.0
    c1: float = 0.0
    ref_h: int = REF_H
    ref_w: int = REF_W

    @property
    def sx(self) -> float:
        return self.W / self.ref_w

    @property
    def sy(self) -> float:
        return self.H / self.ref_h

    @property
    def scale(self) -> float:
        """Isotropic size factor for thicknesses and blob radii."""
        return float(np.sqrt(self.sx * self.sy))

    @property
    def horizon_px(self) -> float:
        return self.yh * self.sy

    def lateral(self, X: np.ndarray | float, Z: np.ndarray | float) -> np.ndarray:
        """World lateral position relative to the camera of road offset ``X`` at depth ``Z``."""
        Z = np.asarray(Z, np.float64)
        return np.asarray(X, np.float64) + Z * Z * (self.c0 / 2 + self.c1 * Z / 6) - self.off

    def project(
        self, X: np.ndarray | float, Z: np.ndarray | float, height: np.ndarray | float = 0.0
    ) -> np.ndarray:
        """``(N, 2)`` pixel ``(x, y)`` of road points ``(X, Z)`` at ``height`` metres above the road."""
        Z = np.maximum(np.asarray(Z, np.float64), 1e-3)
        x = (self.cx + self.f * self.lateral(X, Z) / Z) * self.sx
        y = (self.yh + self.f * (self.h - np.asarray(height, np.float64)) / Z) * self.sy
        if x.shape != y.shape:
            x, y = np.broadcast_arrays(x, y)
        return np.column_stack((x.ravel(), y.ravel()))

    def depth_of_row(self, y: np.ndarray | float) -> np.ndarray:
        """Road depth ``Z`` (m) seen at pixel row ``y`` (must be below the horizon)."""
        return self.f * self.h / (np.asarray(y, np.float64) / self.sy - self.yh)

    def row_of_depth(self, Z: np.ndarray | float) -> np.ndarray:
        return self.sy * (self.yh + self.f * self.h / np.asarray(Z, np.float64))

    @property
    def z_bottom(self) -> float:
        """Depth of the bottom image edge."""
        return float(self.depth_of_row(self.H))


#: Styles of a yellow line that separates oncoming traffic (a divider) and their shares.
DIVIDER_STYLES: tuple[tuple[str, ...], tuple[float, ...]] = (("double", "solid", "dashed"), (0.5, 0.35, 0.15))


def sample_yellow(rng: np.random.Generator) -> tuple[float, float, float]:
    """RGB of the generator's (saturated) yellow paint."""
    return (rng.uniform(205, 240), rng.uniform(160, 200), rng.uniform(25, 80))


@dataclass
class Marking:
    """One painted (or deliberately unpainted) longitudinal line.

    ``slot`` is the CULane slot it is annotated as (``None``: painted but not annotated, e.g. a
    fifth line or a ghost of an old marking). ``erased`` lists ``(z0, z1)`` stretches without paint.
    """

    X: float
    slot: int | None
    style: str  # solid | dashed | double | none
    color: tuple[int, int, int]
    alpha: float
    half_width: float
    dash: float = 4.0
    gap: float = 6.0
    phase: float = 0.0
    z_end: float = 120.0
    z_start: float = 0.0
    erased: list[tuple[float, float]] = field(default_factory=list)
    #: a double line's two lines lie this far (m) either side of their centre; ``None``: 1.8 half-widths
    double_offset: float | None = None
    #: a double line's centre lies at ``X + double_shift`` (the annotation stays at ``X``)
    double_shift: float = 0.0

    @property
    def half_spacing(self) -> float:
        """How far (m) a double line's two lines lie either side of their centre."""
        return self.half_width * 1.8 if self.double_offset is None else self.double_offset


@dataclass
class Vehicle:
    """A box-shaped vehicle standing on the road, ``X`` = centre offset, ``Z`` = rear distance."""

    X: float
    Z: float
    width: float
    height: float
    length: float
    color: tuple[int, int, int]
    kind: str  # car | suv | truck | bus
    facing: str = "rear"  # rear (same direction) | front (oncoming) | side (crossing)


@dataclass
class Scene:
    """Everything sampled for one frame; ``draw_scene`` turns it into pixels."""

    category: str
    cam: Camera
    lane_width: float
    road_left: float  # road-frame X of the left asphalt edge
    road_right: float
    markings: list[Marking]
    gt_z_end: float  # depth where annotated lanes stop (near the horizon)
    vehicles: list[Vehicle] = field(default_factory=list)
    arrows: list[tuple[float, float, str]] = field(default_factory=list)  # (X, Z, kind)
    crosswalks: list[tuple[float, float]] = field(default_factory=list)  # (z0, z1)
    stop_lines: list[float] = field(default_factory=list)
    cross_road: tuple[float, float] | None = None  # (z0, z1) of a crossing road
    light: str = "day"  # day | overcast | dusk | night
    asphalt: tuple[int, int, int] = (95, 95, 98)
    wear: float = 0.0  # 0 fresh .. 1 heavily worn paint, applied as a noise mask
    shadows: str = "none"  # none | light | heavy
    glare: str = "none"  # none | headlights | sun
    hood: float = 0.0  # hood height in reference pixels, 0 = no hood
    urban: bool = False
    guardrail: tuple[bool, bool] = (False, False)
    ghost: bool = False
    haze_color: tuple[float, float, float] = (200.0, 200.0, 200.0)  # set by the painter from the sky
