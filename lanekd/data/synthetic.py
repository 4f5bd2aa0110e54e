"""Seeded synthetic road scenes in CULane geometry: the default dataset of the demo, tests and benchmarks.

Each scene is a perspective view of a flat road (:mod:`lanekd.data.synthetic_scene`) rendered by
:mod:`lanekd.data.synthetic_draw`: up to four annotated lanes in CULane's slots (0 left-left,
1 left, 2 right, 3 right-right; the ego vehicle drives between slots 1 and 2), solid, dashed or
double, white or yellow, straight or curved, with occluding vehicles, shadows, glare, night
lighting, worn paint, road arrows, crossroads, textured asphalt and roadside scenery. Lane-like
distractors (tar seams, tyre polish, curbs, guard rails, shadow edges, ghost markings, a fifth
unannotated line, floor lines of buildings) keep the colour of a pixel from giving the answer away.

Ground truth follows CULane's ``.lines.txt`` convention: the painted lane *centre line* in source
pixels, sampled every 10 reference rows (``y = H-1, H-1-10 H/590, ...``) from the bottom up to
where the lane ends near the horizon, clipped to the image (the first in-image run from the
bottom is kept), including the parts hidden by vehicles or the ego hood. ``noline`` scenes
annotate lanes whose paint is missing, faint or fragmentary; ``cross`` scenes (inside a junction)
annotate nothing. A lane with fewer than two in-image points is not annotated.

Category mix: categories are dealt in blocks of 50 consecutive indices, each block holding exactly
``CATEGORY_MIX`` (normal 10, crowd 8, hlight 4, shadow 5, noline 5, arrow 4, curve 5, cross 3,
night 6) in a seeded order, so every aligned block of 50 covers all nine categories. This is
flatter than CULane's test split (27.7% normal, 1.2% curve) so that every category is measurable
on a few hundred test scenes.

Determinism: scene ``index`` of ``split`` is drawn from ``np.random.default_rng([seed, split_id,
index])`` (train 0, val 1, test 2), so it does not depend on ``n`` or on the generation order and
the splits never share a scene.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from lanekd.data.sample import LaneSample
from lanekd.data.synthetic_domain import (
    DOMAIN_SALT,
    SCENE_SALT,
    DomainRandomization,
    randomize_frame,
    randomize_scene,
)
from lanekd.data.synthetic_draw import draw_scene
from lanekd.data.synthetic_scene import (
    DIVIDER_STYLES,
    GEOMETRIES,
    Camera,
    CameraGeometry,
    Marking,
    Scene,
    Vehicle,
    sample_yellow,
)
from lanekd.errors import ConfigError
from lanekd.utils.io import atomic_path, check_output_dir, write_text_atomic

SYNTHETIC_CATEGORIES: tuple[str, ...] = (
    "normal",
    "crowd",
    "hlight",
    "shadow",
    "noline",
    "arrow",
    "curve",
    "cross",
    "night",
)
CATEGORY_MIX: dict[str, int] = {
    "normal": 10,
    "crowd": 8,
    "hlight": 4,
    "shadow": 5,
    "noline": 5,
    "arrow": 4,
    "curve": 5,
    "cross": 3,
    "night": 6,
}
CATEGORY_BLOCK = sum(CATEGORY_MIX.values())  # 50
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
SOURCE_SIZE: tuple[int, int] = (590, 1640)
NUM_SLOTS = 4
ROW_STEP_AT_590 = 10.0  # annotation row spacing in reference pixels, as in CULane's files
LINE_WIDTH_AT_1640 = 16  # laneseg mask line width, CULane's laneseg_label_w16
T = TypeVar("T")
_BLOCK_SALT = 0xCA7  # separates the category-order stream from the scene streams


# --------------------------------------------------------------------------- validation
def _check(seed: int, split: str, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    if split not in SPLIT_IDS:
        raise ConfigError(f"synthetic split must be one of {', '.join(SPLIT_IDS)}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"synthetic size must be (height, width), got {size!r}") from None
    if h < 32 or w < 32:
        raise ConfigError(f"synthetic size must be at least 32x32, got {h}x{w}")
    return int(seed), (h, w)


def scene_category(seed: int, split: str, index: int) -> str:
    """Category of scene ``index``: a seeded permutation of ``CATEGORY_MIX`` per block of 50."""
    block, pos = divmod(int(index), CATEGORY_BLOCK)
    deck = [c for c in SYNTHETIC_CATEGORIES for _ in range(CATEGORY_MIX[c])]
    order = np.random.default_rng([seed, SPLIT_IDS[split], block, _BLOCK_SALT]).permutation(CATEGORY_BLOCK)
    return deck[int(order[pos])]


# --------------------------------------------------------------------------- scene sampling
def _choice(rng: np.random.Generator, options: list[T], p: list[float]) -> T:
    return options[int(rng.choice(len(options), p=p))]


def _white(rng: np.random.Generator) -> tuple[float, float, float]:
    v = rng.uniform(212, 250)
    return (v, v - rng.uniform(0, 6), v - rng.uniform(0, 12))


def sample_scene(rng: np.random.Generator, category: str, size: tuple[int, int] = SOURCE_SIZE,
                 geometry: CameraGeometry = GEOMETRIES["culane"]) -> Scene:
    """Draw every geometric and photometric choice of one scene of ``category`` from ``rng``,
    seen by a camera of ``geometry``'s rig."""
    H, W = size
    geo = geometry
    urban = bool(rng.random() < geo.urban)
    cam = Camera(
        H,
        W,
        f=rng.uniform(*geo.focal),
        h=rng.uniform(*geo.height),
        cx=geo.size[1] / 2 + rng.normal(0, geo.cx_sd),
        yh=rng.uniform(*geo.horizon),
        ref_h=geo.size[0],
        ref_w=geo.size[1],
    )
    w = rng.uniform(3.0, 3.5) if urban else rng.uniform(3.4, 3.9)
    cam.off = rng.uniform(-0.22, 0.22) * w
    if category == "curve":
        cam.c0 = float(rng.choice([-1.0, 1.0])) / rng.uniform(110, 400)
        cam.c1 = rng.normal(0, 1.5e-5)
    else:
        cam.c0 = float(np.clip(rng.normal(0, 2.5e-4), -7e-4, 7e-4))
        cam.c1 = rng.normal(0, 2e-6)

    n_left = int(rng.choice(3, p=[0.25, 0.5, 0.25]))
    n_right = int(rng.choice(3, p=[0.25, 0.5, 0.25]))
    road_left = -w / 2 - n_left * w - rng.uniform(0.2, 2.5)
    road_right = w / 2 + n_right * w + rng.uniform(0.2, 2.5)
    divider = int(rng.integers(0, n_left)) if n_left >= 1 and rng.random() < geo.divider else None
    gt_z_end = rng.uniform(45, 140)
    paint_end = gt_z_end * rng.uniform(1.0, 1.35)
    if urban:
        dash, gap = rng.uniform(2, 4), rng.uniform(4, 6)
    else:
        dash, gap = rng.uniform(*geo.dash), rng.uniform(*geo.gap)
    white, yellow = _white(rng), sample_yellow(rng)

    markings: list[Marking] = []
    slot_of = geo.slot_of
    for side, count in ((-1, n_left), (1, n_right)):
        for j in range(count + 1):
            X = side * (w / 2 + j * w)
            outer = j == count
            color = white
            if side < 0 and j == divider:
                style, color = _choice(rng, list(DIVIDER_STYLES[0]), list(DIVIDER_STYLES[1])), yellow
            elif outer:
                style = _choice(rng, ["solid", "none", "dashed"], [0.7, 0.2, 0.1])
                if side < 0 and rng.random() < geo.left_edge_yellow:
                    color = yellow
            else:
                style = _choice(rng, ["dashed", "solid"], [0.85, 0.15])
            alpha = rng.uniform(0.75, 1.0) if rng.random() > 0.15 else rng.uniform(0.35, 0.6)
            mk = Marking(
                X=X,
                slot=slot_of.get((side, j)),
                style=style,
                color=color,
                alpha=alpha,
                half_width=rng.uniform(0.065, 0.1),
                dash=dash,
                gap=gap,
                phase=rng.uniform(0, dash + gap),
                z_end=paint_end * rng.uniform(0.9, 1.0),
            )
            if rng.random() < 0.15:  # a few worn-off stretches even on good roads
                for _ in range(int(rng.integers(1, 3))):
                    z0 = rng.uniform(5, 60)
                    mk.erased.append((z0, z0 + rng.uniform(3, 15)))
            markings.append(mk)

    if category == "noline":
        annotated = [m for m in markings if m.slot is not None]
        modes = [_choice(rng, ["gone", "faint", "fragments"], [0.35, 0.3, 0.35]) for _ in annotated]
        if modes and all(m == "fragments" for m in modes):
            modes[int(rng.integers(len(modes)))] = "faint"
        for mk, mode in zip(annotated, modes, strict=True):
            if mode == "gone":
                mk.alpha = 0.0
            elif mode == "faint":
                mk.alpha = rng.uniform(0.06, 0.2)
            else:
                z, mk.erased = 0.0, []
                while z < mk.z_end:
                    run = rng.uniform(5, 25)
                    mk.erased.append((z, z + run))
                    z += run + rng.uniform(2, 8)
    elif category not in ("cross",) and rng.random() < 0.15:  # ghost of an old marking, never annotated
        base = markings[int(rng.integers(len(markings)))]
        markings.append(
            Marking(
                X=base.X + rng.choice([-1, 1]) * rng.uniform(0.6, 1.4),
                slot=None,
                style=_choice(rng, ["dashed", "solid"], [0.6, 0.4]),
                color=white,
                alpha=rng.uniform(0.12, 0.3),
                half_width=0.08,
                dash=dash,
                gap=gap,
                phase=rng.uniform(0, 10),
                z_end=paint_end,
            )
        )

    cross_road = None
    crosswalks: list[tuple[float, float]] = []
    stop_lines: list[float] = []
    if category == "cross":
        z0 = rng.uniform(9, 22)
        cross_road = (z0, z0 + rng.uniform(12, 24))
        crosswalks.append((z0 - 4.5, z0 - 0.5))
        if rng.random() < 0.5:
            crosswalks.append((cross_road[1] + 0.5, cross_road[1] + 4.5))
        keep_far = rng.random() < 0.5
        for mk in markings:  # inside the junction: no lanes; beyond it lanes may resume, unannotated
            mk.slot = None
            mk.z_start = cross_road[1] + 5.0
            if not keep_far:
                mk.style = "none"

    vehicles = _sample_vehicles(rng, category, w, n_left, n_right, divider, cross_road)
    arrows: list[tuple[float, float, str]] = []
    if category == "arrow" or (category in ("normal", "crowd") and rng.random() < 0.05):
        centres = [0.0] + [-w * j for j in range(1, n_left + 1)] + [w * j for j in range(1, n_right + 1)]
        for _ in range(int(rng.integers(1, 4))):
            xc = centres[0] if rng.random() < 0.5 else centres[int(rng.integers(len(centres)))]
            arrows.append(
                (
                    xc,
                    rng.uniform(7, 30),
                    _choice(
                        rng,
                        ["straight", "left", "right", "straight_left", "straight_right"],
                        [0.4, 0.15, 0.15, 0.15, 0.15],
                    ),
                )
            )
        if rng.random() < 0.3:
            stop_lines.append(rng.uniform(35, 45))

    if category == "night":
        light = "night"
    elif category == "hlight":
        light = _choice(rng, ["night", "dusk", "day"], [0.55, 0.2, 0.25])
    elif category == "shadow":
        light = _choice(rng, ["day", "dusk"], [0.85, 0.15])
    else:
        light = _choice(rng, ["day", "overcast", "dusk"], [0.6, 0.35, 0.05])
    glare = "none"
    if category == "hlight":
        glare = "sun" if light == "day" else "headlights"
    shadows = (
        "heavy" if category == "shadow" else ("light" if light == "day" and rng.random() < 0.3 else "none")
    )
    tone = _choice(rng, ["dark", "medium", "concrete"], [0.45, 0.4, 0.15])
    g = {"dark": rng.uniform(55, 90), "medium": rng.uniform(90, 130), "concrete": rng.uniform(140, 175)}[tone]
    asphalt = (g + rng.normal(0, 3), g + rng.normal(0, 3), g + rng.uniform(0, 6))
    wear = (
        rng.uniform(0.5, 0.85)
        if category == "noline"
        else (rng.uniform(0, 0.35) if rng.random() < 0.5 else 0.0)
    )
    return Scene(
        category=category,
        cam=cam,
        lane_width=w,
        road_left=road_left,
        road_right=road_right,
        markings=markings,
        gt_z_end=gt_z_end,
        vehicles=vehicles,
        arrows=arrows,
        crosswalks=crosswalks,
        stop_lines=stop_lines,
        cross_road=cross_road,
        light=light,
        asphalt=asphalt,
        wear=wear,
        shadows=shadows,
        glare=glare,
        hood=rng.uniform(40, 110) if rng.random() < geo.hood else 0.0,
        urban=urban,
        guardrail=(bool(not urban and rng.random() < 0.45), bool(not urban and rng.random() < 0.45)),
    )


_VEHICLE_COUNT = {
    "normal": (0, 3),
    "crowd": (4, 11),
    "hlight": (1, 5),
    "shadow": (0, 4),
    "noline": (0, 4),
    "arrow": (0, 3),
    "curve": (0, 4),
    "cross": (1, 5),
    "night": (1, 6),
}
_KINDS = {  # width, height range, length
    "car": (1.8, (1.4, 1.55), 4.5),
    "suv": (1.9, (1.65, 1.85), 4.8),
    "truck": (2.45, (2.8, 3.8), 9.0),
    "bus": (2.5, (3.0, 3.3), 11.0),
}
_PALETTE = (
    (230, 230, 228),
    (190, 192, 196),
    (30, 30, 34),
    (70, 72, 78),
    (160, 30, 30),
    (40, 60, 130),
    (120, 120, 110),
    (200, 170, 60),
    (60, 90, 70),
)


def _sample_vehicles(
    rng: np.random.Generator,
    category: str,
    w: float,
    n_left: int,
    n_right: int,
    divider: int | None,
    cross_road: tuple[float, float] | None,
) -> list[Vehicle]:
    lo, hi = _VEHICLE_COUNT[category]
    count = int(rng.integers(lo, hi))
    centres = [0.0] + [-w * j for j in range(1, n_left + 1)] + [w * j for j in range(1, n_right + 1)]
    oncoming_edge = -w / 2 - divider * w if divider is not None else -1e9
    out: list[Vehicle] = []
    z_min = 6.0 if category == "crowd" else 10.0
    for _ in range(count * 3):  # rejection sampling with a bounded number of tries
        if len(out) >= count:
            break
        kind = _choice(rng, list(_KINDS), [0.6, 0.2, 0.12, 0.08])
        width, (h0, h1), length = _KINDS[kind]
        color = tuple(
            float(np.clip(c + rng.normal(0, 10), 0, 255)) for c in _PALETTE[int(rng.integers(len(_PALETTE)))]
        )
        if cross_road is not None and rng.random() < 0.7:
            X = rng.uniform(-18, 18)
            Z = rng.uniform(cross_road[0] + 1, cross_road[1] - width - 1)
            v = Vehicle(X, Z, width, rng.uniform(h0, h1), length, color, kind, "side")
            if all(abs(o.Z - Z) > 3 or abs(o.X - X) > length + 1 for o in out):
                out.append(v)
            continue
        X = centres[int(rng.integers(len(centres)))] + rng.normal(0, 0.25)
        Z = rng.uniform(z_min, 90) if category == "crowd" else rng.uniform(z_min, 110)
        if cross_road is not None:
            Z = cross_road[1] + rng.uniform(6, 60)
        if all(abs(o.X - X) > 1.5 or abs(o.Z - Z) > o.length + 4 for o in out):
            out.append(
                Vehicle(
                    X,
                    Z,
                    width,
                    rng.uniform(h0, h1),
                    length,
                    color,
                    kind,
                    "front" if X < oncoming_edge else "rear",
                )
            )
    return out


# --------------------------------------------------------------------------- ground truth
def lane_points(cam: Camera, X: float, z_end: float, z_start: float = 0.0) -> np.ndarray:
    """CULane-style polyline of the road line at offset ``X``: ``(N, 2)`` float32, bottom to top.

    Rows ``H-1, H-1-step, ...`` (``step`` = 10 reference rows) strictly below the row of ``z_end``;
    only the first contiguous in-image run from the bottom is kept; fewer than 2 points -> ``(0, 2)``.
    """
    H, W = cam.H, cam.W
    step = ROW_STEP_AT_590 * cam.sy
    ys = (H - 1) - step * np.arange(int(math.ceil(H / step)) + 1)
    y_top = float(cam.row_of_depth(z_end))
    keep = (ys > y_top) & (ys >= 0)
    if z_start > 0:
        keep &= ys <= float(cam.row_of_depth(z_start))
    ys = ys[keep]
    if len(ys) < 2:
        return np.zeros((0, 2), np.float32)
    x = cam.project(X, cam.depth_of_row(ys))[:, 0]
    inside = (x >= 0) & (x <= W - 1)
    if not inside.any():
        return np.zeros((0, 2), np.float32)
    first = int(np.argmax(inside))
    stop = first + (int(np.argmin(inside[first:])) if not inside[first:].all() else len(inside) - first)
    pts = np.stack([x[first:stop], ys[first:stop]], axis=1)
    if len(pts) < 2:
        return np.zeros((0, 2), np.float32)
    return np.round(pts, 3).astype(np.float32)


def scene_lanes(sc: Scene) -> tuple[list[np.ndarray], list[int]]:
    """Annotated lanes of a scene in slot order (left to right) and their slots."""
    by_slot: dict[int, np.ndarray] = {}
    for mk in sc.markings:
        if mk.slot is None:
            continue
        if mk.style == "none" and sc.category != "noline":
            continue  # an unpainted road edge is not a lane, except where CULane annotates missing paint
        z_end = sc.gt_z_end if sc.category == "noline" else min(sc.gt_z_end, mk.z_end)
        pts = lane_points(sc.cam, mk.X, z_end)
        if len(pts) >= 2:
            by_slot[mk.slot] = pts
    slots = sorted(by_slot)
    return [by_slot[s] for s in slots], slots


# --------------------------------------------------------------------------- public API
def render_scene(
    seed: int, index: int, split: str = "train", size: tuple[int, int] | None = None,
    randomize: DomainRandomization | None = None, geometry: str = "culane",
) -> LaneSample:
    """Render scene ``index`` of ``split``: a :class:`LaneSample` with the in-memory RGB ``image``.

    Args:
        seed: dataset seed (non-negative integer).
        index: scene index inside the split (non-negative).
        split: ``train``, ``val`` or ``test`` (disjoint random streams).
        size: ``(H, W)`` of the frame (default: the rig's native size, 590x1640 for CULane);
            geometry scales from the rig's reference frame.
        randomize: dashcam-look randomisations (:mod:`lanekd.data.synthetic_domain`): ``mount``
            changes the camera before drawing, the others are applied to the rendered frame.
        geometry: the camera rig imitated, a key of
            :data:`~lanekd.data.synthetic_scene.GEOMETRIES` (``culane`` or ``tusimple``).

    Returns:
        sample with ``image`` (H, W, 3) uint8 RGB, ``lanes`` (N, 2) float32 source pixels bottom to top,
        ``slots``, ``exist`` (4 for CULane, 6 for TuSimple), ``category`` and ``name``
        ``synthetic/<split>/<index:06d>.jpg``.
    """
    geo = camera_geometry(geometry)
    seed, (H, W) = _check(seed, split, geo.size if size is None else size)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ConfigError(f"synthetic index must be a non-negative integer, got {index!r}")
    index = int(index)
    category = scene_category(seed, split, index)
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    sc = sample_scene(rng, category, (H, W), geo)
    if randomize:
        scene_rng = np.random.default_rng([seed, SPLIT_IDS[split], index, DOMAIN_SALT, SCENE_SALT])
        randomize_scene(sc, randomize, scene_rng)
    image = draw_scene(sc, rng)
    lanes, slots = scene_lanes(sc)
    if randomize:
        dr_rng = np.random.default_rng([seed, SPLIT_IDS[split], index, DOMAIN_SALT])
        image, lanes, slots = randomize_frame(image, lanes, slots, randomize, dr_rng)
    exist = np.zeros(geo.num_slots, np.uint8)
    exist[slots] = 1
    name = f"synthetic/{split}/{index:06d}.jpg"
    return LaneSample(
        name=name,
        image_path=Path(name),
        size=(H, W),
        lanes=lanes,
        slots=slots,
        num_slots=geo.num_slots,
        exist=exist,
        category=category,
        image=image,
    )


def generate_samples(
    n: int, seed: int = 0, split: str = "train", size: tuple[int, int] | None = None,
    randomize: DomainRandomization | None = None, geometry: str = "culane",
) -> Iterator[LaneSample]:
    """Scenes ``0 .. n-1`` of ``split``, each identical to
    ``render_scene(seed, i, split, size, randomize, geometry)``.

    Arguments are checked here, before the first scene is drawn (bad ones raise :class:`ConfigError`).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"synthetic sample count must be a non-negative integer, got {n!r}")
    _check(seed, split, camera_geometry(geometry).size if size is None else size)
    return (render_scene(seed, i, split, size, randomize, geometry) for i in range(int(n)))


def camera_geometry(name: str) -> CameraGeometry:
    """The rig ``name`` of :data:`~lanekd.data.synthetic_scene.GEOMETRIES`."""
    if name not in GEOMETRIES:
        raise ConfigError(f"unknown synthetic camera geometry {name!r}; choose from {', '.join(GEOMETRIES)}")
    return GEOMETRIES[name]


# --------------------------------------------------------------------------- CULane layout
def format_culane_lines(lanes: list[np.ndarray]) -> str:
    """CULane ``.lines.txt`` text: one lane per line, ``x y x y ...`` with a trailing space."""
    out = []
    for lane in lanes:
        vals = (f"{v:.3f}".rstrip("0").rstrip(".") for v in np.asarray(lane, np.float64).ravel())
        out.append(" ".join(vals) + " \n")
    return "".join(out)


def render_laneseg_mask(sample: LaneSample) -> np.ndarray:
    """CULane-style ``laneseg_label_w16`` mask ``(H, W)`` uint8: slot ``k`` drawn as value ``k+1``.

    Consecutive annotation points joined by 8-connected lines ``16 * W / 1640`` px wide (no
    anti-aliasing), lanes drawn in slot order, as CULane's seg_label_generate does at 1640x590.
    """
    H, W = sample.size
    mask = np.zeros((H, W), np.uint8)
    thick = max(1, round(LINE_WIDTH_AT_1640 * W / 1640))
    for lane, slot in sorted(zip(sample.lanes, sample.slots, strict=True), key=lambda t: t[1]):
        pts = np.round(np.asarray(lane, np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [pts], False, slot + 1, thick, cv2.LINE_8)
    return mask


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Encode the RGB ``image`` as a JPEG of ``quality`` and write it atomically to ``path``."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ConfigError(f"could not encode {path} as JPEG")
    _write_bytes_atomic(path, buf.tobytes())


def write_culane_layout(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    split: str = "test",
    size: tuple[int, int] = SOURCE_SIZE,
    quality: int = 95,
    randomize: DomainRandomization | None = None,
) -> Path:
    """Write ``n`` scenes of ``split`` in CULane's on-disk layout under ``out_dir``; returns ``out_dir``.

    Layout: ``driver_synth/<split>/<index:06d>.jpg`` with ``.lines.txt`` beside it; for train/val also
    ``laneseg_label_w16/driver_synth/<split>/<index:06d>.png`` (:func:`render_laneseg_mask`),
    ``list/<split>.txt`` and ``list/<split>_gt.txt`` (``/img /mask e1 e2 e3 e4``); for test
    ``list/test.txt`` (leading ``/``) and the nine ``list/test_split/test{k}_<category>.txt`` (no
    leading ``/``, empty when a category has no scene). Every file is written atomically and the
    list files last, so a list never names a missing file. ``randomize``: as in :func:`render_scene`.
    """
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"JPEG quality must be in 1..100, got {quality}")
    root = check_output_dir(out_dir)
    images: list[str] = []
    gt_lines: list[str] = []
    by_category: dict[str, list[str]] = {c: [] for c in SYNTHETIC_CATEGORIES}
    for sample in generate_samples(n, seed, split, size, randomize):
        stem = Path(sample.name).stem
        rel = f"driver_synth/{split}/{stem}.jpg"
        _write_jpeg(root / rel, sample.image, quality)
        write_text_atomic((root / rel).with_suffix(".lines.txt"), format_culane_lines(sample.lanes))
        if split != "test":
            mask_rel = f"laneseg_label_w16/driver_synth/{split}/{stem}.png"
            ok, png = cv2.imencode(".png", render_laneseg_mask(sample))
            _write_bytes_atomic(root / mask_rel, png.tobytes())
            gt_lines.append(f"/{rel} /{mask_rel} " + " ".join(str(int(e)) for e in sample.exist) + "\n")
        images.append(rel)
        by_category[str(sample.category)].append(rel)
    lists = root / "list"
    write_text_atomic(lists / f"{split}.txt", "".join(f"/{r}\n" for r in images))
    if split == "test":
        for k, cat in enumerate(SYNTHETIC_CATEGORIES):
            write_text_atomic(
                lists / "test_split" / f"test{k}_{cat}.txt", "".join(f"{r}\n" for r in by_category[cat])
            )
    else:
        write_text_atomic(lists / f"{split}_gt.txt", "".join(gt_lines))
    return root


# --------------------------------------------------------------------------- TuSimple layout
TUSIMPLE_H_SAMPLES: tuple[int, ...] = tuple(range(160, 720, 10))  # the rows of TuSimple's 0601 and test files
#: The label file a split's scenes are written to: the official name that split reads.
TUSIMPLE_LABEL_FILES: dict[str, str] = {"train": "label_data_0313.json", "val": "label_data_0531.json",
                                        "test": "test_label.json"}


def tusimple_lanes(
    lanes: list[np.ndarray], h_samples: tuple[int, ...] = TUSIMPLE_H_SAMPLES
) -> list[list[int]]:
    """TuSimple ``lanes`` entries of polylines: per lane the x (rounded) at every ``h_samples`` row
    the polyline spans, ``-2`` elsewhere; lanes spanning no row are left out."""
    ys = np.asarray(h_samples, np.float64)
    out = []
    for lane in lanes:
        pts = np.asarray(lane, np.float64)
        order = np.argsort(pts[:, 1])
        y, x = pts[order, 1], pts[order, 0]
        inside = (ys >= y[0]) & (ys <= y[-1])
        if not inside.any():
            continue
        xs = np.where(inside, np.round(np.interp(ys, y, x)), -2).astype(int)
        out.append(xs.tolist())
    return out


def write_tusimple_layout(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    split: str = "test",
    quality: int = 95,
    randomize: DomainRandomization | None = None,
) -> Path:
    """Write ``n`` scenes of ``split`` seen by the TuSimple rig (1280x720, six slots) in TuSimple's
    on-disk layout under ``out_dir``; returns ``out_dir``.

    Layout: ``clips/synth_<split>/<index:06d>/20.jpg`` and one JSON line per frame (``raw_file``,
    ``h_samples`` 160..710 every 10 rows, ``lanes`` with ``-2`` for no point, ``run_time`` 0) in
    the official label file that split reads (:data:`TUSIMPLE_LABEL_FILES`: ``train`` ->
    ``label_data_0313.json``, ``val`` -> ``label_data_0531.json``, ``test`` -> ``test_label.json``),
    written last and atomically. ``randomize``: as in :func:`render_scene`.
    """
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"JPEG quality must be in 1..100, got {quality}")
    if split not in TUSIMPLE_LABEL_FILES:
        raise ConfigError(f"synthetic split must be one of {', '.join(TUSIMPLE_LABEL_FILES)}, got {split!r}")
    root = check_output_dir(out_dir)
    lines: list[str] = []
    for sample in generate_samples(n, seed, split, randomize=randomize, geometry="tusimple"):
        rel = f"clips/synth_{split}/{Path(sample.name).stem}/20.jpg"
        _write_jpeg(root / rel, sample.image, quality)
        entry = {"lanes": tusimple_lanes(sample.lanes), "h_samples": list(TUSIMPLE_H_SAMPLES),
                 "raw_file": rel, "run_time": 0}
        lines.append(json.dumps(entry) + "\n")
    write_text_atomic(root / TUSIMPLE_LABEL_FILES[split], "".join(lines))
    return root


def written_scenes(layout: str, root: str | Path, split: str) -> int:
    """How many scenes of ``split`` a complete earlier write left under ``root`` (0: none; the
    list or label file is written last, so a count means every file it names exists)."""
    if layout == "culane":
        name = "list/test.txt" if split == "test" else f"list/{split}_gt.txt"
    else:
        name = TUSIMPLE_LABEL_FILES.get(split, "")
    path = Path(root) / name
    try:
        return len(path.read_text().splitlines()) if name else 0
    except OSError:
        return 0


#: Writers of the on-disk layouts the generator imitates, by dataset (``prepare`` reads them back).
SYNTHETIC_LAYOUT_WRITERS = {"culane": write_culane_layout, "tusimple": write_tusimple_layout}
