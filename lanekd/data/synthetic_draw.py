"""Rasteriser of synthetic road scenes: numpy + OpenCV drawing, about 10-20 ms per 590x1640 frame.

The painter works in layers, cheapest first: sky and fields, roadside scenery, the asphalt with
its defects (patches, tyre polish, tar seams, cracks, curbs), the paint (premultiplied alpha
layer, worn by a noise mask), grain, vehicles and the ego hood, then a quarter-resolution light
map (shadows, night, headlight cone, street lamps, vignetting) multiplied in, additive glare, a
colour-grading lookup table and a slight camera blur. Polygons use OpenCV's fixed-point
coordinates (``shift=4``) so sub-pixel geometry survives at every output size.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from lanekd.data.synthetic_scene import Camera, Marking, Scene, Vehicle

SHIFT = 4
_ONE = 1 << SHIFT
_PAD = 64  # grain bank margin, crops start at a random offset inside it
_LIGHT_ONE = 100.0  # light map value meaning "unchanged" (uint8, so up to 2.55x)

Color = tuple[float, float, float]


# --------------------------------------------------------------------------- primitives
_LIM = 1.6e7  # fixed-point coordinate limit (int32 after the 4-bit shift)


def _pts(xy: np.ndarray) -> np.ndarray:
    """Pixel floats -> OpenCV fixed-point int32 ``(N, 1, 2)`` (ufuncs only: this is a hot path)."""
    a = np.asarray(xy, np.float64) * _ONE
    np.minimum(a, _LIM, out=a)
    np.maximum(a, -_LIM, out=a)
    return np.rint(a).astype(np.int32).reshape(-1, 1, 2)


def _ipt(p: np.ndarray) -> tuple[int, int]:
    """One pixel point -> fixed-point tuple for ``cv2.line``/``cv2.circle``."""
    return (int(min(max(p[0] * _ONE, -_LIM), _LIM)), int(min(max(p[1] * _ONE, -_LIM), _LIM)))


def fill(img: np.ndarray, poly: np.ndarray, color: Color | float) -> None:
    """Fill one polygon ``(N, 2)`` (pixel floats), anti-aliased, in place."""
    if len(poly) >= 3:
        cv2.fillPoly(img, [_pts(poly)], color, cv2.LINE_AA, SHIFT)


def z_range(cam: Camera, z0: float, z1: float, step_px: float = 8.0, max_n: int = 80) -> np.ndarray:
    """Depths from ``z0`` to ``z1`` spaced uniformly in image rows (uniform in 1/Z)."""
    z0 = max(z0, 0.5)
    z1 = max(z1, z0 + 1e-3)
    span = abs(float(cam.row_of_depth(z0) - cam.row_of_depth(z1)))
    n = int(np.clip(span / step_px, 2, max_n))
    return 1.0 / np.linspace(1.0 / z0, 1.0 / z1, n)


def strip(
    cam: Camera, X: np.ndarray | float, Z: np.ndarray, half_width: float, height: float = 0.0
) -> np.ndarray:
    """Polygon of a ground strip of ``half_width`` metres along the road-frame curve ``(X, Z)``."""
    X = np.asarray(X, np.float64)
    if X.ndim:
        Xs = np.concatenate([X - half_width, (X + half_width)[::-1]])
    else:
        Xs = np.repeat([float(X) - half_width, float(X) + half_width], len(Z))
    return cam.project(Xs, np.concatenate([Z, Z[::-1]]), height)


def _lowfreq(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth noise in [0, 1] of ``shape``: a coarse random grid upsampled bicubically."""
    g = rng.random((max(cells[0], 2), max(cells[1], 2))).astype(np.float32)
    return np.clip(cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


@functools.lru_cache(maxsize=4)
def _grain_bank(h: int, w: int) -> np.ndarray:
    """Fixed (process-independent) sensor/asphalt grain, uint8 centred on 128, cropped per scene."""
    rng = np.random.default_rng(0x1A4E)
    g = rng.standard_normal((h + _PAD, w + _PAD), dtype=np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.7)
    g *= 1.0 / float(g.std())
    g8 = np.clip(128.0 + 40.0 * g, 0, 255).astype(np.uint8)
    bank = cv2.merge([g8, g8, g8])
    bank.flags.writeable = False
    return bank


def _add_grain(img: np.ndarray, rng: np.random.Generator, amp: float, r0: int = 0) -> None:
    """Add the grain bank (random offset) times ``amp`` to rows ``r0:`` of ``img`` in place."""
    H, W = img.shape[:2]
    dy, dx = (int(v) for v in rng.integers(0, _PAD, 2))
    crop = _grain_bank(H, W)[dy + r0 : dy + H, dx : dx + W]
    roi = img[r0:]
    roi[:] = cv2.addWeighted(roi, 1.0, crop, amp, -128.0 * amp)


def _shade(c: Color, k: float) -> Color:
    return (min(255.0, max(0.0, c[0] * k)), min(255.0, max(0.0, c[1] * k)), min(255.0, max(0.0, c[2] * k)))


def _jitter(rng: np.random.Generator, c: Color, sd: float) -> Color:
    d = rng.normal(0, sd, 3)
    return (
        min(255.0, max(0.0, c[0] + d[0])),
        min(255.0, max(0.0, c[1] + d[1])),
        min(255.0, max(0.0, c[2] + d[2])),
    )


# --------------------------------------------------------------------------- background
_SKY = {  # (zenith, horizon) RGB
    "day": ((70, 125, 205), (185, 210, 235)),
    "overcast": ((160, 166, 175), (212, 214, 218)),
    "dusk": ((55, 60, 105), (235, 160, 100)),
    "night": ((40, 45, 70), (75, 70, 80)),
}
_FIELDS = ((70, 96, 52), (112, 106, 78), (96, 88, 74), (128, 126, 122), (84, 110, 60))


def _background(img: np.ndarray, sc: Scene, rng: np.random.Generator) -> None:
    """Sky and fields as one vertical gradient, a few clouds; records the horizon colour for the haze."""
    cam = sc.cam
    H = cam.H
    y0 = int(min(H, max(1, math.ceil(cam.horizon_px) + 2)))
    top, bot = (np.array(c, np.float32) for c in _SKY[sc.light])
    top = top + rng.normal(0, 8, 3)
    bot = bot + rng.normal(0, 8, 3)
    field = np.array(_FIELDS[int(rng.integers(len(_FIELDS)))], np.float32) + rng.normal(0, 8, 3)
    haze = bot * 0.8 + field * 0.2
    t_sky = np.linspace(0.0, 1.0, y0, dtype=np.float32)[:, None] ** 0.7
    t_gnd = np.linspace(0.0, 1.0, H - y0, dtype=np.float32)[:, None] ** 0.35
    column = np.concatenate([top * (1 - t_sky) + bot * t_sky, haze * (1 - t_gnd) + field * t_gnd])
    column = np.clip(column, 0, 255).astype(np.uint8)[:, None, :]
    cv2.resize(column, (cam.W, H), dst=img, interpolation=cv2.INTER_NEAREST)  # one row-constant gradient
    sc.haze_color = tuple(float(v) for v in bot)
    if sc.light in ("day", "overcast") and rng.random() < 0.6:  # soft clouds
        for _ in range(int(rng.integers(2, 7))):
            c = (int(rng.uniform(0, cam.W)), int(rng.uniform(0, y0 * 0.7)))
            ax = (int(rng.uniform(40, 160) * cam.scale), int(rng.uniform(10, 35) * cam.scale))
            cv2.ellipse(img, c, ax, 0, 0, 360, _jitter(rng, (232, 236, 240), 6), -1, cv2.LINE_AA)


def _scenery(img: np.ndarray, sc: Scene, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Trees, buildings and lamp posts beside the road; returns lamp head pixels (for night pools)."""
    cam = sc.cam
    s = cam.scale
    lamps: list[tuple[float, float]] = []
    for side in (-1.0, 1.0):
        edge = sc.road_left if side < 0 else sc.road_right
        kind = rng.choice(
            ["trees", "buildings", "open"], p=[0.3, 0.55, 0.15] if sc.urban else [0.6, 0.15, 0.25]
        )
        if kind == "buildings":
            z = rng.uniform(6, 30)
            while z < 260:
                length = rng.uniform(10, 45)
                X = edge + side * rng.uniform(2, 9)
                ht = rng.uniform(6, 35)
                col = _jitter(rng, (150, 140, 128) if rng.random() < 0.6 else (110, 115, 125), 25)
                if sc.light == "night":
                    col = _shade(col, 0.5)
                quad = np.concatenate(
                    [cam.project(X, [z, z + length], 0.0), cam.project(X, [z + length, z], ht)]
                )
                fill(img, quad, col)
                for k in range(1, int(ht // 3.2)):  # floor lines converge to the vanishing point
                    a, b = cam.project(X, [z, z + length], 3.2 * k)
                    cv2.line(
                        img, _ipt(a), _ipt(b), _shade(col, 0.7), max(1, round(1.5 * s)), cv2.LINE_AA, SHIFT
                    )
                z += length + rng.uniform(0, 15)
        elif kind == "trees":
            n = int(rng.integers(10, 30))
            Z = np.sort(rng.uniform(6, 260, n))[::-1]
            X = edge + side * rng.uniform(1.0, 14.0, n)
            ht = rng.uniform(4, 12, n)
            base, crown = cam.project(X, Z), cam.project(X, Z, ht * 0.75)
            radius = cam.f * cam.sx * rng.uniform(1.5, 3.5, n) / Z
            trunk = np.maximum(1, np.round(cam.f * cam.sx * 0.25 / Z)).astype(int)
            greens = rng.normal(0, 14, (n, 3)) + (52, 78, 40)
            blobs = rng.normal(0, 0.45, (n, 4, 2))
            sizes = rng.uniform(0.55, 1.0, (n, 4))
            dim = 0.4 if sc.light == "night" else 1.0
            for i in range(n):
                cv2.line(img, _ipt(base[i]), _ipt(crown[i]), (60, 48, 38), int(trunk[i]), cv2.LINE_AA, SHIFT)
                green = tuple(float(v) for v in np.clip(greens[i] * dim, 0, 255))
                for k in range(4):
                    cv2.circle(
                        img,
                        _ipt(crown[i] + blobs[i, k] * radius[i]),
                        int(radius[i] * sizes[i, k] * _ONE),
                        green,
                        -1,
                        cv2.LINE_AA,
                        SHIFT,
                    )
        if rng.random() < (0.8 if sc.urban else 0.45):  # lamp posts: vertical distractors
            Z = np.arange(rng.uniform(4, 25), 200, rng.uniform(25, 50))[::-1]
            ht = rng.uniform(8, 11)
            X = edge + side * 0.6
            base, top, head = cam.project(X, Z), cam.project(X, Z, ht), cam.project(X - side * 1.8, Z, ht)
            width = np.maximum(1, np.round(cam.f * cam.sx * 0.16 / Z)).astype(int)
            col = (95, 98, 104) if sc.light != "night" else (40, 40, 45)
            for i in range(len(Z)):
                t = _ipt(top[i])
                cv2.line(img, _ipt(base[i]), t, col, int(width[i]), cv2.LINE_AA, SHIFT)
                cv2.line(img, t, _ipt(head[i]), col, int(width[i]), cv2.LINE_AA, SHIFT)
                lamps.append((float(head[i, 0]), float(head[i, 1])))
    return lamps


# --------------------------------------------------------------------------- road surface
def _road(img: np.ndarray, sc: Scene, rng: np.random.Generator) -> None:
    cam = sc.cam
    s = cam.scale
    asphalt = sc.asphalt
    zb = cam.z_bottom * 0.8
    Z = z_range(cam, zb, 500.0, step_px=5.0)
    left, right = cam.project(sc.road_left, Z), cam.project(sc.road_right, Z)
    fill(img, np.concatenate([left, right[::-1]]), asphalt)
    if sc.cross_road is not None:
        z0, z1 = sc.cross_road
        Zc = z_range(cam, zb, z1)
        fill(img, strip(cam, 0.0, Zc, 40.0), asphalt)  # junction box and the crossing road
    # shoulder / curb: a bright edge that is not a lane
    for side, edge in ((-1, sc.road_left), (1, sc.road_right)):
        u = rng.random()
        if u < 0.35:
            Zs = z_range(cam, zb, 300.0)
            fill(img, strip(cam, edge + side * 0.09, Zs, 0.09, 0.0), _jitter(rng, (175, 172, 165), 15))
            fill(img, strip(cam, edge + side * 0.18, Zs, 0.04, 0.15), _jitter(rng, (200, 198, 192), 12))
        elif u < 0.6:
            Zs = z_range(cam, zb, 300.0)
            fill(
                img,
                strip(cam, edge + side * rng.uniform(0.3, 0.8), Zs, rng.uniform(0.2, 0.6)),
                _jitter(rng, (135, 130, 120), 15),
            )
    lanes_x = np.arange(sc.road_left + sc.lane_width / 2, sc.road_right, sc.lane_width)
    # repair patches (lighter or darker rectangles)
    for _ in range(int(rng.integers(0, 5))):
        x0 = rng.uniform(sc.road_left, sc.road_right - 1)
        z0 = rng.uniform(zb, 60)
        quad = strip(cam, x0 + 0.5, z_range(cam, z0, z0 + rng.uniform(2, 15)), rng.uniform(0.5, 3.0))
        fill(img, quad, _shade(asphalt, rng.uniform(0.85, 1.15)))  # grey, not tinted
    # tyre polish: darker bands in each lane's wheel paths
    if rng.random() < 0.55:
        k = rng.uniform(0.88, 0.97) if rng.random() < 0.7 else rng.uniform(1.03, 1.1)
        Zt = z_range(cam, zb, 120.0)
        for xc in lanes_x:
            for d in (-0.85, 0.85):
                fill(img, strip(cam, xc + d, Zt, 0.4), _shade(asphalt, k))
    # longitudinal seams: lane-like distractors, mostly dark tar, sometimes light sealant
    for _ in range(int(rng.integers(0, 6))):
        z0 = rng.uniform(zb, 40)
        Zt = z_range(cam, z0, z0 + rng.uniform(10, 70), step_px=4.0)
        amp, freq, phase = rng.uniform(0.02, 0.25), rng.uniform(0.1, 0.6), rng.uniform(0, 6.3)
        X = rng.uniform(sc.road_left, sc.road_right) + amp * np.sin(freq * Zt + phase)  # smooth meander
        X += rng.normal(0, 0.008, len(Zt))  # slight raggedness of a hand-poured seam
        tone = rng.uniform(0.3, 0.6) if rng.random() < 0.75 else rng.uniform(1.3, 1.7)  # tar or sealant
        fill(img, strip(cam, X, Zt, rng.uniform(0.02, 0.06)), _shade(asphalt, tone))
    # transverse joints on concrete-looking roads
    if asphalt[0] > 135 and rng.random() < 0.7:
        step = rng.uniform(4.5, 6.0)
        for z in np.arange(zb + rng.uniform(0, step), 80, step):
            a, b = cam.project([sc.road_left, sc.road_right], [z, z])
            cv2.line(
                img,
                _ipt(a),
                _ipt(b),
                _shade(asphalt, 0.7),
                max(1, round(2 * s * 8 / max(z, 8))),
                cv2.LINE_AA,
                SHIFT,
            )
    # cracks: short jagged dark polylines in image space, kept below the horizon
    y_top = float(cam.row_of_depth(60.0))
    for _ in range(int(rng.integers(0, 6))):
        p = np.array([rng.uniform(0, cam.W), rng.uniform(y_top, cam.H)])
        steps = (
            rng.normal(0, 1, (int(rng.integers(3, 9)), 2))
            * np.array([14, 6])
            * s
            * (p[1] - y_top + 20)
            / cam.H
        )
        poly = p + np.cumsum(steps, axis=0)
        poly[:, 1] = np.maximum(poly[:, 1], y_top)
        cv2.polylines(
            img,
            [_pts(poly)],
            False,
            _shade(asphalt, rng.uniform(0.5, 0.8)),
            max(1, round(1.2 * s)),
            cv2.LINE_AA,
            SHIFT,
        )


# --------------------------------------------------------------------------- paint
def _painted_intervals(mk: Marking, z_lo: float) -> list[tuple[float, float]]:
    z0, z1 = max(z_lo, mk.z_start), mk.z_end
    if z1 <= z0:
        return []
    if mk.style == "dashed":
        period = mk.dash + mk.gap
        k0 = math.floor((z0 - mk.phase) / period)
        iv = []
        for k in range(k0, k0 + int((z1 - z0) / period) + 2):
            a = mk.phase + k * period
            a, b = max(a, z0), min(a + mk.dash, z1)
            if b > a:
                iv.append((a, b))
    else:
        iv = [(z0, z1)]
    for e0, e1 in mk.erased:  # cut the erased stretches out
        out = []
        for a, b in iv:
            if e1 <= a or e0 >= b:
                out.append((a, b))
                continue
            if e0 > a:
                out.append((a, e0))
            if e1 < b:
                out.append((e1, b))
        iv = out
    return iv


_ARROWS = {  # (u lateral, v forward) metres, one polygon per part
    "straight": [[(-0.15, 0), (0.15, 0), (0.15, 5.2), (0.45, 5.2), (0, 9), (-0.45, 5.2), (-0.15, 5.2)]],
    "left": [
        [
            (0.15, 0),
            (0.15, 7.5),
            (-0.35, 7.5),
            (-0.35, 8.1),
            (-0.95, 7.2),
            (-0.35, 6.3),
            (-0.35, 6.9),
            (-0.15, 6.9),
            (-0.15, 0),
        ]
    ],
}
_ARROWS["right"] = [[(-u, v) for u, v in _ARROWS["left"][0]]]
_ARROWS["straight_left"] = [_ARROWS["straight"][0], [(0.0, 3.5), (0.0, 4.0)] + _ARROWS["left"][0][2:8]]
_ARROWS["straight_right"] = [_ARROWS["straight"][0], [(-u, v) for u, v in _ARROWS["straight_left"][1]]]


def strips(
    cam: Camera, X: np.ndarray, z0: np.ndarray, z1: np.ndarray, half_width: float, m: int = 4
) -> list[np.ndarray]:
    """Polygons of ``k`` short ground strips (dashes, zebra bars): ``X``, ``z0``, ``z1`` are ``(k,)``."""
    t = np.linspace(0.0, 1.0, m)
    inv0 = 1.0 / np.maximum(np.asarray(z0, np.float64), 0.5)[:, None]
    inv1 = 1.0 / np.maximum(np.asarray(z1, np.float64), 0.5)[:, None]
    Z = 1.0 / (inv0 + (inv1 - inv0) * t)
    X = np.asarray(X, np.float64)[:, None]
    Xs = np.concatenate(
        [np.broadcast_to(X - half_width, Z.shape), np.broadcast_to(X + half_width, Z.shape)], 1
    )
    return list(cam.project(Xs, np.concatenate([Z, Z[:, ::-1]], 1)).reshape(len(Z), 2 * m, 2))


def _paint(img: np.ndarray, sc: Scene, rng: np.random.Generator) -> None:
    """Composite every marking with premultiplied alpha, worn by a smooth noise mask."""
    cam = sc.cam
    H, W = cam.H, cam.W
    r0 = int(min(H - 1, max(0, math.floor(cam.horizon_px))))  # nothing is painted above the horizon
    alpha = np.zeros((H - r0, W), np.uint8)
    prem = np.zeros((H - r0, W, 3), np.uint8)
    origin = np.array([0.0, r0])
    zb = cam.z_bottom * 0.8

    def put(polys: list[np.ndarray], color: Color, a: float) -> None:
        # one fillPoly per call: the polygons must not overlap (OpenCV fills them even-odd)
        pts = [_pts(p - origin) for p in polys if len(p) >= 3]
        if pts:
            cv2.fillPoly(alpha, pts, 255.0 * a, cv2.LINE_AA, SHIFT)
            cv2.fillPoly(prem, pts, _shade(color, a), cv2.LINE_AA, SHIFT)

    for mk in sc.markings:
        if mk.style == "none" or mk.alpha <= 0.0:
            continue
        iv = _painted_intervals(mk, zb)
        if not iv:
            continue
        d2 = mk.half_spacing
        offsets = (mk.double_shift - d2, mk.double_shift + d2) if mk.style == "double" else (0.0,)
        if mk.style == "dashed":
            a = np.asarray(iv)
            polys = [
                p
                for d in offsets
                for p in strips(cam, np.full(len(a), mk.X + d), a[:, 0], a[:, 1], mk.half_width)
            ]
        else:
            polys = [
                strip(cam, mk.X + d, z_range(cam, z0, z1, step_px=6.0), mk.half_width)
                for z0, z1 in iv
                for d in offsets
            ]
        put(polys, mk.color, mk.alpha)
    white = _jitter(rng, (236, 236, 230), 8)
    a_sym = rng.uniform(0.6, 0.95)
    for X, Z0, kind in sc.arrows:
        for part in _ARROWS[kind]:
            uv = np.asarray(part, np.float64)
            put([cam.project(X + uv[:, 0], Z0 + uv[:, 1])], white, a_sym)
    for z0, z1 in sc.crosswalks:
        X = np.arange(sc.road_left - 8 + rng.uniform(0, 1.2), sc.road_right + 8, 1.2)
        put(strips(cam, X, np.full(len(X), z0), np.full(len(X), z1), 0.28), white, a_sym)
    for z in sc.stop_lines:
        quad = np.concatenate(
            [cam.project([sc.road_left, 0.0], [z, z]), cam.project([0.0, sc.road_left], [z + 0.4, z + 0.4])]
        )
        put([quad], white, a_sym)
    if sc.cross_road is not None:  # lateral centre line of the crossing road (not a lane of ours)
        zm = sum(sc.cross_road) / 2
        colour = (225, 190, 60) if rng.random() < 0.5 else white
        dashes = []
        for X in np.arange(-40, 40, 7.0):
            dashes.append(
                np.concatenate(
                    [cam.project([X, X + 3.5], [zm, zm]), cam.project([X + 3.5, X], [zm + 0.2, zm + 0.2])]
                )
            )
        put(dashes, colour, a_sym)
    if sc.wear > 0:
        h4, w4 = (H - r0 + 3) // 4, (W + 3) // 4
        n = _lowfreq(rng, (h4, w4), (12, 40))  # fixed grid: the same wear pattern at every size
        n = 0.65 * n + 0.35 * rng.random((h4, w4), dtype=np.float32)
        keep = np.clip((n - sc.wear * 0.75) * 3.5 + 0.5, 0.0, 1.0)
        keep8 = cv2.resize((keep * 255).astype(np.uint8), (W, H - r0), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.multiply(alpha, keep8, scale=1 / 255)
        prem = cv2.multiply(prem, cv2.cvtColor(keep8, cv2.COLOR_GRAY2RGB), scale=1 / 255)
    roi = img[r0:]
    inv3 = cv2.cvtColor(cv2.bitwise_not(alpha), cv2.COLOR_GRAY2RGB)
    roi[:] = cv2.add(cv2.multiply(roi, inv3, scale=1 / 255), prem)


# --------------------------------------------------------------------------- vehicles
def _vehicle(
    img: np.ndarray,
    cam: Camera,
    v: Vehicle,
    sc: Scene,
    rng: np.random.Generator,
    lights: list[tuple[float, float, float, Color, float]],
) -> None:
    hw = v.width / 2
    if v.facing == "side":
        hw = v.length / 2
    Z0, Z1 = v.Z, v.Z + (v.length if v.facing != "side" else v.width)
    # contact shadow on the road
    fill(img, strip(cam, v.X, z_range(cam, Z0 - 0.3, Z1 + 0.3), hw + 0.15), _shade(sc.asphalt, 0.3))
    clear, body_h = 0.3, v.height
    side_col, top_col = _shade(v.color, 0.72), _shade(v.color, 1.12)
    lat = float(cam.lateral(v.X, Z0))
    if lat - hw > 0.2:  # vehicle to the right: its left flank is visible
        Xs = v.X - hw
    elif lat + hw < -0.2:
        Xs = v.X + hw
    else:
        Xs = None
    if Xs is not None:
        side = np.concatenate([cam.project(Xs, [Z0, Z1], clear), cam.project(Xs, [Z1, Z0], body_h)])
        fill(img, side, side_col)
        if v.kind in ("car", "suv"):
            win = np.concatenate(
                [
                    cam.project(Xs, [Z0 + 0.8, Z1 - 1.0], body_h * 0.62),
                    cam.project(Xs, [Z1 - 1.3, Z0 + 1.1], body_h * 0.93),
                ]
            )
            fill(img, win, (38, 44, 52))
        for zw in (Z0 + 0.8, Z1 - 0.9):  # wheels
            fill(
                img,
                np.concatenate(
                    [
                        cam.project(Xs, [zw - 0.35, zw + 0.35], 0.0),
                        cam.project(Xs, [zw + 0.35, zw - 0.35], 0.6),
                    ]
                ),
                (22, 22, 24),
            )
    if body_h < cam.h:  # roof seen from above
        roof = np.concatenate(
            [
                cam.project([v.X - hw, v.X + hw], [Z0, Z0], body_h),
                cam.project([v.X + hw, v.X - hw], [Z1, Z1], body_h),
            ]
        )
        fill(img, roof, top_col)
    (xl, yb), (xr, _), (_, yt) = cam.project([v.X - hw, v.X + hw, v.X], [Z0, Z0, Z0], [clear, clear, body_h])
    wpx, hpx = xr - xl, yb - yt
    if wpx < 1.5:
        return

    def box(u0: float, u1: float, v0: float, v1: float, col: Color) -> None:
        fill(
            img,
            np.array(
                [
                    [xl + u0 * wpx, yb - v0 * hpx],
                    [xl + u1 * wpx, yb - v0 * hpx],
                    [xl + u1 * wpx, yb - v1 * hpx],
                    [xl + u0 * wpx, yb - v1 * hpx],
                ]
            ),
            col,
        )

    wheel_h = cam.project(v.X, Z0, 0.0)[0, 1] - yb
    for u0 in (0.04, 0.78):  # wheels under the body
        fill(
            img,
            np.array(
                [
                    [xl + u0 * wpx, yb],
                    [xl + (u0 + 0.18) * wpx, yb],
                    [xl + (u0 + 0.18) * wpx, yb + wheel_h],
                    [xl + u0 * wpx, yb + wheel_h],
                ]
            ),
            (20, 20, 22),
        )
    box(0, 1, 0, 1, v.color)
    if v.facing == "side":
        box(0.15, 0.85, 0.55, 0.9, (40, 46, 55))
        return
    night = sc.light in ("night", "dusk")
    if v.kind == "truck":
        box(0.49, 0.51, 0.1, 0.95, _shade(v.color, 0.6))  # door seam
        box(0, 1, 0, 0.07, (35, 35, 35))
        lamp_v, lamp_h = 0.1, 0.06
    else:
        box(0.1, 0.9, 0.58 if v.kind != "bus" else 0.5, 0.93, (36, 42, 50))  # window
        box(0, 1, 0, 0.16, _shade(v.color, 0.55))  # bumper
        box(0.4, 0.6, 0.2, 0.3, (210, 210, 200) if rng.random() < 0.5 else (40, 80, 190))  # plate
        lamp_v, lamp_h = 0.4, 0.1
    lamp_col: Color = (255, 40, 30) if v.facing == "rear" else (255, 250, 225)
    for u0 in (0.02, 0.84):
        box(u0, u0 + 0.14, lamp_v, lamp_v + lamp_h, _shade(lamp_col, 0.85 if night else 0.7))
        if night:
            cx = xl + (u0 + 0.07) * wpx
            cy = yb - (lamp_v + lamp_h / 2) * hpx
            big = v.facing == "front"
            lights.append((cx, cy, max(2.0, wpx * (0.25 if big else 0.09)), lamp_col, 1.0 if big else 0.7))


def _hood(img: np.ndarray, sc: Scene, rng: np.random.Generator) -> None:
    cam = sc.cam
    H, W = cam.H, cam.W
    hgt = sc.hood * cam.sy
    x = np.linspace(-0.05 * W, 1.05 * W, 40)
    u = (x - W * rng.uniform(0.45, 0.55)) / (0.75 * W)
    y = H - hgt * (1 - 0.7 * u * u)
    poly = np.concatenate([np.stack([x, y], 1), [[1.05 * W, H + 5], [-0.05 * W, H + 5]]])
    col = _jitter(rng, (35, 42, 40) if rng.random() < 0.6 else (90, 88, 92), 12)
    fill(img, poly, col)
    band = np.concatenate([np.stack([x, y + 0.12 * hgt], 1), np.stack([x, y + 0.22 * hgt], 1)[::-1]])
    fill(img, band, _shade(col, 1.6))


# --------------------------------------------------------------------------- light
def _ground_blob(
    cam: Camera, X: float, Z: float, rx: float, rz: float, rng: np.random.Generator, n: int = 14
) -> np.ndarray:
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    j = rng.uniform(0.6, 1.2, n)
    return cam.project(X + rx * j * np.cos(th), np.maximum(Z + rz * j * np.sin(th), 0.5))


def _light_map(sc: Scene, rng: np.random.Generator, lamps: list[tuple[float, float]]) -> np.ndarray:
    """Quarter-resolution illumination factor (1.0 = unchanged) of shadows, night and lamps."""
    cam = sc.cam
    H, W = cam.H, cam.W
    h4, w4 = (H + 3) // 4, (W + 3) // 4
    ambient = {"day": 1.0, "overcast": 0.9, "dusk": 0.55, "night": rng.uniform(0.16, 0.3)}[sc.light]
    L = np.full((h4, w4), ambient, np.float32)
    if sc.shadows != "none":
        S = np.zeros((H // 4 + 1, W // 4 + 1), np.uint8)
        quarter = np.array([0.25, 0.25])
        zb = cam.z_bottom * 0.8
        heavy = sc.shadows == "heavy"
        kinds = rng.choice(
            ["trees", "building", "bridge", "poles"],
            size=int(rng.integers(1, 4) if heavy else 1),
            p=[0.4, 0.3, 0.12, 0.18],
        )
        for kind in kinds:
            if kind == "trees":
                side = rng.choice([sc.road_left, sc.road_right])
                for _ in range(int(rng.integers(3, 14))):
                    X = side + rng.uniform(-3, 5) * (1 if side < 0 else -1)  # mostly over the road
                    fill(
                        S,
                        _ground_blob(cam, X, rng.uniform(zb, 70), rng.uniform(1, 4), rng.uniform(2, 7), rng)
                        * quarter,
                        255,
                    )
            elif kind == "building":
                side = rng.choice([-1.0, 1.0])
                far = (sc.road_left - 30) if side < 0 else (sc.road_right + 30)
                z = zb
                while z < 90:
                    z1 = z + rng.uniform(6, 30)
                    xa, xb = rng.uniform(sc.road_left, sc.road_right, 2)
                    quad = np.concatenate([cam.project([far, xa], [z, z]), cam.project([xb, far], [z1, z1])])
                    fill(S, quad * quarter, 255)
                    z = z1 + rng.uniform(3, 25)
            elif kind == "bridge":
                z0 = rng.uniform(zb, 35)
                fill(S, strip(cam, 0.0, z_range(cam, z0, z0 + rng.uniform(6, 18)), 60.0) * quarter, 255)
            else:
                for z in np.arange(rng.uniform(zb, 15), 80, rng.uniform(12, 30)):
                    dz = rng.uniform(-4, 8)
                    quad = np.concatenate(
                        [
                            cam.project([sc.road_left - 1, sc.road_right + 1], [z, z + dz]),
                            cam.project([sc.road_right + 1, sc.road_left - 1], [z + dz + 0.4, z + 0.4]),
                        ]
                    )
                    fill(S, quad * quarter, 255)
        S = cv2.GaussianBlur(S, (3, 3), 0)[:h4, :w4]
        depth = rng.uniform(0.3, 0.5) if heavy else rng.uniform(0.5, 0.75)
        if sc.light == "overcast":
            depth = 1 - (1 - depth) * 0.4
        L *= 1.0 - (1.0 - depth) * (S.astype(np.float32) / 255.0)
    L *= 0.88 + 0.24 * _lowfreq(rng, (h4, w4), (6, 14))  # mottling: uneven wear and clouds
    ys = (np.arange(h4, dtype=np.float32) + 0.5) * 4
    xs = (np.arange(w4, dtype=np.float32) + 0.5) * 4
    below = ys > cam.horizon_px + 2
    if sc.light in ("night", "dusk") and below.any():
        Z = cam.depth_of_row(ys[below])[:, None]
        Xc = (xs[None, :] / cam.sx - cam.cx) * Z / cam.f
        spread = 1.0 + 0.22 * Z
        gain = rng.uniform(1.0, 1.6) if sc.light == "night" else 0.4
        L[below] += (gain * np.exp(-((Xc / spread) ** 2)) / (1.0 + (Z / rng.uniform(18, 35)) ** 2)).astype(
            np.float32
        )
        for lx, ly in lamps:
            if sc.light == "night" and rng.random() < 0.6:  # pool of light under a street lamp
                px, py = lx / 4, (ly + (cam.H - ly) * 0.55) / 4
                rx, ry = 15 * cam.scale, 6 * cam.scale
                x0, x1 = int(max(0, px - 3 * rx)), int(min(w4, px + 3 * rx + 1))
                y0, y1 = int(max(0, py - 3 * ry, cam.horizon_px / 4)), int(min(h4, py + 3 * ry + 1))
                if x1 > x0 and y1 > y0:
                    gy, gx = np.ogrid[y0:y1, x0:x1]
                    L[y0:y1, x0:x1] += (
                        0.5 * np.exp(-(((gx - px) / rx) ** 2 + ((gy - py) / ry) ** 2))
                    ).astype(np.float32)
    gy, gx = np.ogrid[-1 : 1 : h4 * 1j, -1 : 1 : w4 * 1j]
    L *= (1.0 - 0.22 * (gx * gx + gy * gy) / 2).astype(np.float32)  # vignetting
    return L


def _glare(
    sc: Scene,
    rng: np.random.Generator,
    lights: list[tuple[float, float, float, Color, float]],
    lamps: list[tuple[float, float]],
) -> np.ndarray | None:
    """Quarter-resolution additive light (0..255 per channel) of lamps, headlights and the sun."""
    cam = sc.cam
    H, W = cam.H, cam.W
    srcs = list(lights)
    if sc.light == "night":
        srcs += [(x, y, 6 * cam.scale, (255, 225, 170), 0.8) for x, y in lamps]
    if sc.glare == "headlights":
        for _ in range(int(rng.integers(1, 4))):
            x = rng.uniform(0.15, 0.6) * W
            y = cam.horizon_px + rng.uniform(-5, 40) * cam.sy
            srcs.append((x, y, rng.uniform(25, 90) * cam.scale, (255, 248, 230), rng.uniform(1.5, 3.0)))
    elif sc.glare == "sun":
        srcs.append(
            (
                rng.uniform(0.2, 0.8) * W,
                cam.horizon_px - rng.uniform(10, 90) * cam.sy,
                rng.uniform(90, 220) * cam.scale,
                (255, 240, 205),
                rng.uniform(2.0, 3.5),
            )
        )
    if not srcs:
        return None
    h4, w4 = (H + 3) // 4, (W + 3) // 4
    G = np.zeros((h4, w4, 3), np.float32)
    streak = sc.glare != "none" or sc.light == "night"
    for x, y, r, col, k in srcs:
        x4, y4, r4 = x / 4, y / 4, max(r / 4, 0.8)
        x0, x1 = int(max(0, x4 - 4 * r4)), int(min(w4, x4 + 4 * r4 + 1))
        y0, y1 = int(max(0, y4 - 4 * r4)), int(min(h4, y4 + 4 * r4 + 1))
        if x1 > x0 and y1 > y0:
            gy, gx = np.ogrid[y0:y1, x0:x1]
            b = k * np.exp(-((gx - x4) ** 2 + (gy - y4) ** 2) / (2 * r4 * r4))
            G[y0:y1, x0:x1] += b[..., None] * np.asarray(col, np.float32)
        if streak and r > 8 * cam.scale and y < H * 0.8:  # reflection streak on the road below the light
            rw = max(r4 * 0.35, 1.0)
            x0, x1 = int(max(0, x4 - 3 * rw)), int(min(w4, x4 + 3 * rw + 1))
            ys0 = int(max(0, y4))
            if x1 > x0 and ys0 < h4:
                gy, gx = np.ogrid[ys0:h4, x0:x1]
                b = 0.35 * k * np.exp(-((gx - x4) ** 2) / (2 * rw * rw)) * np.exp(-(gy - y4) / (h4 * 0.5))
                G[ys0:h4, x0:x1] += b[..., None] * np.asarray(col, np.float32)
    if sc.glare == "sun":
        G += np.float32(rng.uniform(20, 55))  # veiling glare lifts everything
    return np.clip(G, 0, 255).astype(np.uint8)


def _haze_rows(sc: Scene, rng: np.random.Generator, h4: int) -> np.ndarray:
    """Per quarter-row haze weight: aerial perspective fading the far road into the horizon colour."""
    cam = sc.cam
    strength = {
        "day": rng.uniform(0.15, 0.55),
        "overcast": rng.uniform(0.35, 0.7),
        "dusk": rng.uniform(0.2, 0.5),
        "night": rng.uniform(0.0, 0.15),
    }[sc.light]
    k = rng.uniform(12, 40) * cam.sy
    d = (np.arange(h4, dtype=np.float32) + 0.5) * 4 - cam.horizon_px
    return (strength * np.exp(-np.abs(d) / np.where(d > 0, k, 3 * k))).astype(np.float32)


def _grading(sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Per-channel gain (white balance, exposure, contrast) and the additive lift that goes with it."""
    gain = (1.0 + rng.normal(0, 0.04, 3)) * rng.uniform(0.85, 1.15)
    contrast = {"night": rng.uniform(0.75, 0.95), "dusk": 0.9}.get(sc.light, rng.uniform(0.9, 1.05))
    lift = (1 - contrast) * 60 + rng.uniform(0, 6)
    return (gain * contrast).astype(np.float32), float(lift)


# --------------------------------------------------------------------------- entry point
def draw_scene(sc: Scene, rng: np.random.Generator) -> np.ndarray:
    """Render ``sc`` to an ``(H, W, 3)`` uint8 RGB image (deterministic given ``rng``'s state).

    Each layer draws from its own child generator, so a layer whose random draws depend on the
    frame size (noise maps) cannot shift the next one: the same scene rendered at two sizes
    differs only in its fine noise.
    """
    cam = sc.cam
    H, W = cam.H, cam.W
    r_bg, r_scenery, r_road, r_paint, r_grain, r_actors, r_light, rng = rng.spawn(8)
    img = np.empty((H, W, 3), np.uint8)
    _background(img, sc, r_bg)
    lamps = _scenery(img, sc, r_scenery)
    _road(img, sc, r_road)
    _paint(img, sc, r_paint)
    _add_grain(img, r_grain, r_grain.uniform(0.1, 0.2), max(0, int(cam.horizon_px)))
    if any(sc.guardrail):
        for side, on in zip((sc.road_left - 0.4, sc.road_right + 0.4), sc.guardrail, strict=True):
            if on:
                Z = z_range(cam, cam.z_bottom * 0.6, 250.0)
                rail = np.concatenate([cam.project(side, Z, 0.55), cam.project(side, Z[::-1], 0.8)])
                fill(img, rail, (178, 180, 182) if sc.light != "night" else (70, 70, 72))
    lights: list[tuple[float, float, float, Color, float]] = []
    for v in sorted(sc.vehicles, key=lambda v: -v.Z):
        _vehicle(img, cam, v, sc, r_actors, lights)
    if sc.hood > 0:
        _hood(img, sc, r_actors)
    L = _light_map(sc, r_light, lamps)
    hz = _haze_rows(sc, rng, L.shape[0])
    L *= (1.0 - hz)[:, None]
    gain, lift = _grading(sc, rng)
    L3 = np.clip(L[..., None] * (gain * _LIGHT_ONE), 0, 255).astype(np.uint8)
    img = cv2.multiply(img, cv2.resize(L3, (W, H), interpolation=cv2.INTER_LINEAR), scale=1 / _LIGHT_ONE)
    G = _glare(sc, rng, lights, lamps)
    if G is not None:
        haze = np.broadcast_to(hz[:, None, None] * np.asarray(sc.haze_color, np.float32), G.shape)
        G = cv2.add(G, haze.astype(np.uint8))
        img = cv2.add(img, cv2.resize(G, (W, H), interpolation=cv2.INTER_LINEAR))
    else:  # haze only touches a band of rows around the horizon
        rows = np.flatnonzero(hz > 0.01)
        if len(rows):
            a, b = int(rows[0]), int(rows[-1]) + 1
            band = (hz[a:b, None, None] * np.asarray(sc.haze_color, np.float32)).astype(np.uint8)
            y0, y1 = a * 4, min(H, b * 4)
            band = cv2.resize(np.repeat(band, 2, axis=1), (W, y1 - y0), interpolation=cv2.INTER_LINEAR)
            img[y0:y1] = cv2.add(img[y0:y1], band)
    if lift >= 0.5:
        img = cv2.add(img, (lift, lift, lift, 0.0))
    if sc.light == "night":
        _add_grain(img, rng, rng.uniform(0.06, 0.12), int(cam.horizon_px))
    sigma = rng.uniform(0.5, 1.0) * cam.scale
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (3, 3), sigma)
    return img
