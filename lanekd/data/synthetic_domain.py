"""Domain randomisation of synthetic frames: the dashcam look of real CULane frames, as options.

A rendered scene is clean: a flat, sharp pinhole view with a thin hood strip. Real CULane frames
(a dashcam behind the windscreen) have a tall, curved, reflective bonnet across the bottom fifth,
a wide-angle lens with barrel distortion whose housing blacks out the frame's sides, a camera that
is rolled and pitched a little differently in every car, strongly saturated daylight colours,
motion blur, sensor noise, JPEG artefacts and a burnt-in timestamp. Each of these is one option of
:class:`DomainRandomization`, applied after rendering by :func:`randomize_frame`, which moves the
lane annotations with the image wherever the geometry changes.

The options draw from their own random stream (``[seed, split, index, salt]``), so a scene's
geometry, paint and lighting are the same with and without randomisation, and a dataset written
without any option is bit-identical to one written before the options existed.

Four options change the scene before it is drawn instead of the frame (:func:`randomize_scene`):
``mount``, a lower camera, ``paint``, the weathered yellow and wide double lines of real roads,
``inner``, CULane's way of annotating a double line on its inner line, and ``centre``, a yellow
centre line on the ego lane's left.

Lanes stay annotated through the bonnet, as CULane annotates them through occlusions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import cv2
import numpy as np

from lanekd.data.synthetic_scene import Marking, Scene, sample_yellow
from lanekd.errors import ConfigError

DOMAIN_SALT = 0xD0A1  # separates the randomisation stream from the scene stream
SCENE_SALT = 0x5CE0  # and, below it, the stream of the options that change the scene


@dataclass(frozen=True)
class DomainRandomization:
    """Which randomisations to apply to a synthetic frame (all off by default).

    Attributes:
        hood: a tall curved bonnet (14-26 % of the frame height) that mirrors the scene above it,
            with a burnt-in timestamp in half of the frames.
        lens: wide-angle barrel distortion (k1 up to 0.22 on the half-diagonal), in half of the
            frames with the black lens-housing edges a real dashcam shows at the frame's sides.
        camera: camera roll (up to 2 degrees), pitch (horizon moved by up to 4 % of the height)
            and focal length (zoom 0.9-1.15), applied as the equivalent image warp.
        photo: exposure, gamma, white balance, saturation (up to 1.6x) and contrast.
        blur: motion blur along a random direction (3-11 px at 1640 wide) or sharpening.
        noise: Gaussian sensor noise (sigma up to 7 grey levels).
        jpeg: re-encoding at JPEG quality 30-90.
        mount: a lower-mounted camera, 0.95-1.35 m above the road instead of the generator's
            1.2-1.6 m. On a flat road the ego lane's width at the bottom row is
            ``lane width * (H - horizon row) / camera height``, so this widens the fan of the lanes:
            on the generator's scenes the ego lane spans 630-890 px of a 1640-wide frame at the
            bottom row (5th-95th percentile), on real CULane frames 810-910 px. Unlike the other
            options it changes the scene before it is drawn (vehicles and paint move with the camera)
            and is applied by :func:`randomize_scene`.
        paint: the paint of real roads: most yellow lines pale and weathered (RGB about
            (205-248, 170-235, 100-155) in daylight on genuine CULane frames, where the generator's
            own yellow is saturated, blue 25-80) and the two lines of a double line 0.25-0.6 m
            apart centre to centre (about 0.5 m on CULane's double yellow centre lines; the
            generator's own are 0.23-0.36 m, nearly touching). A scene option like ``mount``.
        inner: a double line annotated on its line nearest the ego lane, as CULane annotates
            them (on the genuine frames the annotation of the double yellow centre line lies on
            its inner line, within 2 px at rows 360-430), instead of midway between its two lines.
            It moves the paint, not the annotation, and draws nothing at random. A scene option.
        centre: the ego lane's left line made a yellow centre line (double in 70 % of them, solid
            otherwise) on 60 % of the roads that have a lane left of the ego lane and no yellow
            line yet, as on the two-way urban roads CULane was recorded on, where the ego car
            often drives in the lane next to the oncoming traffic. The generator's own share of a
            double yellow ego-left line is 11 %; with this option about 30 %. Only the paint
            changes (vehicles in that lane keep their direction). A scene option, applied before
            ``paint`` and ``inner``, which treat the new line like any other yellow line.
    """

    hood: bool = False
    lens: bool = False
    camera: bool = False
    photo: bool = False
    blur: bool = False
    noise: bool = False
    jpeg: bool = False
    mount: bool = False
    paint: bool = False
    inner: bool = False
    centre: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Option names (the frame options are applied in this order, after `mount`)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, spec: str | None) -> DomainRandomization:
        """``"hood,lens"`` -> those options; ``"all"`` -> every option; ``""``/``None``/``"none"`` -> none.

        Raises:
            ConfigError: an unknown option name.
        """
        if spec is None or spec.strip() in ("", "none"):
            return cls()
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if parts == ["all"]:
            return cls(**{n: True for n in cls.names()})
        unknown = [p for p in parts if p not in cls.names()]
        if unknown:
            choices = ", ".join(cls.names())
            raise ConfigError(f"unknown randomisation {unknown[0]!r}; choose from all, {choices}")
        return cls(**{p: True for p in parts})

    def spec(self) -> str:
        """The inverse of :meth:`parse` (``""`` when nothing is on)."""
        on = [n for n in self.names() if getattr(self, n)]
        return "all" if len(on) == len(self.names()) else ",".join(on)

    def __bool__(self) -> bool:
        return any(getattr(self, n) for n in self.names())


MOUNT_HEIGHT = (0.95, 1.35)  # metres; the generator's own range is 1.2-1.6
PALE_YELLOW_SHARE = 0.7  # of the yellow lines repainted pale by `paint`
DOUBLE_SPACING = (0.25, 0.6)  # metres, centre to centre of a double line's two lines, with `paint`
CENTRE_SHARE = 0.6  # of the roads where `centre` can apply
#: `centre`'s line styles and their shares: a centre line next to the ego lane is rarely dashed
#: (crossing it is mostly forbidden in towns), so double and solid only
CENTRE_STYLES: tuple[tuple[str, ...], tuple[float, ...]] = (("double", "solid"), (0.7, 0.3))


def _is_yellow(color: tuple[float, float, float]) -> bool:
    return color[0] - color[2] > 60  # the generator's white differs by at most 12, its yellow by 125+


def _lane_line(scene: Scene, j: int) -> Marking | None:
    """The generator's lane line ``j`` lanes left of the ego lane (0: its left line), if drawn."""
    X = -scene.lane_width * (0.5 + j)
    return next((mk for mk in scene.markings if math.isclose(mk.X, X, abs_tol=1e-9)), None)


def _centre_line(scene: Scene, r: np.random.Generator) -> None:
    ego, beyond = _lane_line(scene, 0), _lane_line(scene, 1)
    applies = ego is not None and beyond is not None and not any(
        _is_yellow(mk.color) for mk in scene.markings if mk.X < 0
    )
    if r.random() < CENTRE_SHARE and applies:
        styles, shares = CENTRE_STYLES
        ego.style = styles[int(r.choice(len(styles), p=shares))]
        ego.color = sample_yellow(r)


def randomize_scene(scene: Scene, opts: DomainRandomization, rng: np.random.Generator) -> None:
    """Apply the options that change the scene itself (``mount``, ``paint``, ``inner``,
    ``centre``) to ``scene``, in place.

    Called between sampling a scene and drawing it, with a stream of its own, so that the scene's
    other draws (layout, lighting, vehicles) stay the same.
    """
    if opts.mount:
        scene.cam.h = float(rng.uniform(*MOUNT_HEIGHT))
    # child streams: `mount`'s draw above is the same with and without the others, and `paint`'s
    # with and without `centre` (its child is the first, as before `centre` existed)
    paint_rng, centre_rng = rng.spawn(2) if (opts.paint or opts.centre) else (None, None)
    if opts.centre:  # first: `paint` and `inner` treat the new centre line like any other
        _centre_line(scene, centre_rng)
    if opts.paint:
        r = paint_rng
        for mk in scene.markings:
            if _is_yellow(mk.color) and r.random() < PALE_YELLOW_SHARE:
                red = r.uniform(205, 248)
                mk.color = (red, red - r.uniform(12, 40), r.uniform(100, 155))
            if mk.style == "double":
                mk.double_offset = r.uniform(*DOUBLE_SPACING) / 2
    if opts.inner:  # after `paint`, which sets the spacing
        for mk in scene.markings:
            if mk.style == "double":
                # the pair moves away from the camera until its inner line lies on the annotation
                mk.double_shift = mk.half_spacing if mk.X > scene.cam.off else -mk.half_spacing


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Warp:
    """Output pixel -> source pixel: ``src = A^-1 (c + R * s * q (1 + k |q|^2))``, ``q = (out - c) / R``."""

    k: float
    s: float
    roll: float  # radians
    zoom: float
    ty: float  # pixels, applied after rotation and zoom
    c: tuple[float, float]
    R: float

    def out_to_src(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.c
        qx, qy = (x - cx) / self.R, (y - cy) / self.R
        f = self.s * (1.0 + self.k * (qx * qx + qy * qy))
        mx, my = qx * f * self.R, (qy * f * self.R) - self.ty  # centred "mid" coordinates, shift undone
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        sx = (cos * mx + sin * my) / self.zoom
        sy = (-sin * mx + cos * my) / self.zoom
        return sx + cx, sy + cy

    def src_to_out(self, pts: np.ndarray) -> np.ndarray:
        cx, cy = self.c
        px, py = pts[:, 0] - cx, pts[:, 1] - cy
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        mx = self.zoom * (cos * px - sin * py)
        my = self.zoom * (sin * px + cos * py) + self.ty
        rm = np.hypot(mx, my) / self.R / self.s
        r = rm.copy()
        for _ in range(30):  # r (1 + k r^2) = rm: a contraction for the small k used here
            r = rm / (1.0 + self.k * r * r)
        scale = np.where(rm > 0, r / np.maximum(rm, 1e-12), 1.0) / self.s
        return np.stack([cx + mx * scale, cy + my * scale], axis=1)


def _sample_warp(r_lens: np.random.Generator, r_cam: np.random.Generator, opts: DomainRandomization,
                 H: int, W: int) -> _Warp | None:
    if not (opts.lens or opts.camera):
        return None
    c, R = ((W - 1) / 2.0, (H - 1) / 2.0), math.hypot(W, H) / 2.0
    k, s, housing = 0.0, 1.0, False
    if opts.lens:
        k = float(r_lens.uniform(0.05, 0.22))
        housing = bool(r_lens.random() < 0.5)
        # Zoom so that the frame stays filled: with the housing only top and bottom edges must map
        # inside (the sides turn black, as in CULane); without it the corners must.
        r_edge = (H / 2.0) / R if housing else 1.0
        s = 1.0 / (1.0 + k * r_edge * r_edge)
    roll, zoom, ty = 0.0, 1.0, 0.0
    if opts.camera:
        roll = math.radians(float(r_cam.uniform(-2.0, 2.0)))
        zoom = float(r_cam.uniform(0.9, 1.15))
        ty = float(r_cam.uniform(-0.04, 0.04)) * H
        # a zoom-out, roll or shift uncovers the source's border: zoom in just enough to cover it
        need = math.cos(abs(roll)) + (W / H) * math.sin(abs(roll))
        zoom = max(zoom, need * (1.0 + 2.0 * abs(ty) / H))
    return _Warp(k=k, s=s, roll=roll, zoom=zoom, ty=ty, c=c, R=R)


def _warp_lanes(lanes: list[np.ndarray], slots: list[int], warp: _Warp, H: int, W: int
                ) -> tuple[list[np.ndarray], list[int]]:
    """Move the annotations with the image; keep each lane's first in-image run from the bottom
    while its rows keep rising (a lane must stay one x per row)."""
    out_l, out_s = [], []
    for lane, slot in zip(lanes, slots, strict=True):
        p = warp.src_to_out(np.asarray(lane, np.float64))
        inside = (p[:, 0] >= 0) & (p[:, 0] <= W - 1) & (p[:, 1] >= 0) & (p[:, 1] <= H - 1)
        if not inside.any():
            continue
        a = int(np.argmax(inside))
        b = a
        while b + 1 < len(p) and inside[b + 1] and p[b + 1, 1] < p[b, 1]:
            b += 1
        if b - a + 1 >= 2:
            out_l.append(np.round(p[a : b + 1], 3).astype(np.float32))
            out_s.append(slot)
    return out_l, out_s


# --------------------------------------------------------------------------- appearance
def _hood(img: np.ndarray, rng: np.random.Generator) -> None:
    """A tall, curved, dark bonnet mirroring the (blurred, darkened) scene above its edge."""
    H, W = img.shape[:2]
    hgt = float(rng.uniform(0.14, 0.26)) * H
    bend = float(rng.uniform(0.3, 0.8))
    x0 = W * float(rng.uniform(0.42, 0.58))
    xs = np.arange(W, dtype=np.float64)
    top = H - hgt * (1.0 - bend * ((xs - x0) / (0.7 * W)) ** 2)  # edge row per column
    rows = np.arange(H, dtype=np.float64)[:, None]
    inside = rows >= top[None, :]
    y_top = int(max(0, math.floor(top.min())))
    tint = (1.0 + rng.normal(0, 0.15, 3)).astype(np.float32)
    body = np.float32(rng.uniform(14, 60)) * tint
    # mirror: row y under the edge shows the scene at row 2*edge - y, blurred and dimmed
    src_rows = np.clip(2.0 * top[None, :] - rows[y_top:], 0, H - 1).astype(np.intp)
    mirror = img[src_rows, np.broadcast_to(xs.astype(np.intp), src_rows.shape)].astype(np.float32)
    mirror = cv2.GaussianBlur(mirror, (0, 0), max(1.0, W / 300.0))
    depth = np.clip((rows[y_top:] - top[None, :]) / hgt, 0, 1)[..., None]
    refl = float(rng.uniform(0.15, 0.4)) * (1.0 - 0.7 * depth)
    hood = body * (0.8 + 0.4 * (1.0 - depth)) + refl * mirror
    region = img[y_top:]
    m = inside[y_top:]
    region[m] = np.clip(hood[m], 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # burnt-in timestamp, bottom left as in CULane
        text = f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
        scale = W / 1640.0
        org = (int(W * rng.uniform(0.1, 0.16)), int(H - 8 * scale))
        thick = max(1, int(round(2 * scale)))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, (200,) * 3, thick, cv2.LINE_AA)


def _photo(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    f = img.astype(np.float32) / 255.0
    gray = f.mean(axis=2, keepdims=True)
    f = gray + (f - gray) * float(rng.uniform(0.8, 1.6))  # saturation
    f = np.clip(f, 0, 1) ** float(rng.uniform(0.75, 1.3))  # gamma
    wb = (1.0 + rng.normal(0, 0.05, 3)).astype(np.float32)
    gain = float(rng.uniform(0.75, 1.35))
    contrast = float(rng.uniform(0.85, 1.25))
    f = (f - 0.5) * contrast + 0.5
    return np.clip(f * wb * gain * 255.0, 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    W = img.shape[1]
    if rng.random() < 0.35:  # a sharp camera: unsharp mask
        soft = cv2.GaussianBlur(img, (0, 0), max(0.8, W / 1640.0))
        return cv2.addWeighted(img, 1.6, soft, -0.6, 0)
    n = max(3, int(round(float(rng.uniform(3, 11)) * W / 1640.0)) | 1)
    k = np.zeros((n, n), np.float32)
    ang = float(rng.uniform(0, math.pi))
    c = (n - 1) / 2.0
    cv2.line(k, (int(round(c - c * math.cos(ang))), int(round(c - c * math.sin(ang)))),
             (int(round(c + c * math.cos(ang))), int(round(c + c * math.sin(ang)))), 1.0, 1)
    return cv2.filter2D(img, -1, k / max(k.sum(), 1.0))


def randomize_frame(image: np.ndarray, lanes: list[np.ndarray], slots: list[int], opts: DomainRandomization,
                    rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """Apply the options that are on to one rendered frame and its annotations.

    Args:
        image: ``(H, W, 3)`` uint8 RGB frame.
        lanes: ``(N_i, 2)`` float32 ``(x, y)`` lane points, bottom to top.
        slots: the slot of each lane.
        opts: which randomisations to apply.
        rng: the frame's randomisation stream.

    Returns:
        The new frame ``(H, W, 3)`` uint8, the moved lanes (a lane that leaves the frame or keeps
        fewer than 2 points is dropped) and their slots.
    """
    if not isinstance(opts, DomainRandomization):
        raise ConfigError(f"randomisation must be a DomainRandomization, got {type(opts).__name__}")
    H, W = image.shape[:2]
    # one child stream per option, so switching one option on or off leaves the others' draws alone
    r = dict(zip(DomainRandomization.names(), rng.spawn(len(DomainRandomization.names())), strict=True))
    img = image
    warp = _sample_warp(r["lens"], r["camera"], opts, H, W)
    if warp is not None:
        gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
        sx, sy = warp.out_to_src(gx, gy)
        img = cv2.remap(img, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        lanes, slots = _warp_lanes(lanes, slots, warp, H, W)
    if opts.hood:  # after the warp, so that the bonnet keeps its sampled height in the frame
        img = img.copy() if img is image else img
        _hood(img, r["hood"])
    if opts.photo:
        img = _photo(img, r["photo"])
    if opts.blur:
        img = _blur(img, r["blur"])
    if opts.noise:
        sigma = float(r["noise"].uniform(1.0, 7.0))
        noise = r["noise"].normal(0, sigma, img.shape).astype(np.float32)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    if opts.jpeg:
        q = int(r["jpeg"].integers(30, 91))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(img), list(lanes), list(slots)


__all__ = [
    "CENTRE_SHARE", "CENTRE_STYLES", "DOMAIN_SALT", "MOUNT_HEIGHT", "SCENE_SALT", "DomainRandomization",
    "randomize_frame", "randomize_scene",
]
