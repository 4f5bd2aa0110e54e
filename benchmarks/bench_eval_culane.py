"""CULane evaluation speed by case family: the whole ``lanekd evaluate`` command vs a full-canvas baseline.

Generates images in families like real annotations - ``clean``, ``off-image`` (outer lanes leave the
image through its sides, as CULane lanes do near the bottom rows), ``steep``, ``near-horizontal``,
``many-lanes`` (5-8) and ``duplicates`` (a repeated GT point) - plus a ``mix`` drawn from all of them,
writes each as a CULane tree and times, in the same run:

* baseline - what the official tool does per image: every lane pair drawn on full 590x1640 canvases
  with ``cv2.line`` segment by segment, pixels counted (one process, a subset of the mix);
* the whole ``lanekd evaluate --benchmark culane`` command per family (fresh interpreter: start-up,
  imports, file reading and workers included), default ``--workers auto``.

Images/s, the ratio to the baseline and CPU ms per image (this process and its children) are printed;
per-image counts of the command, one in-process worker and image-by-image ``score_image`` are compared.

Usage: ``python benchmarks/bench_eval_culane.py [--images 3000] [--baseline-images 60] [--workers auto]
[--families many-lanes mix]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanekd.evaluate import culane as C

# case families like real annotations; "duplicates" repeats a GT point (a NaN spline in the C++ tool)
FAMILIES = ("clean", "off-image", "steep", "near-horizontal", "many-lanes", "duplicates")

def _lane(rng: np.random.Generator, vx: float, xb: float, ytop: float, curve: float) -> np.ndarray:
    ys = np.arange(589, ytop, -10.0)
    xs = vx + (xb - vx) * (ys - 240) / 350 + curve * (589 - ys) ** 2
    return np.stack([xs, ys], axis=1)

def make_cases(n: int, seed: int = 0, family: str = "clean"
               ) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """``n`` images of one family: GT lanes (every 10 rows from the bottom, as CULane) and perturbed
    predictions (shifted, jittered, truncated, dropped, one extra)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        vx = rng.uniform(700, 940)
        ytop = rng.uniform(250, 330)
        if family == "many-lanes":
            k = int(rng.integers(5, 9))
        else:
            k = int(rng.integers(2, 5))
        gts = []
        for j in range(k):
            curve = rng.uniform(-3e-4, 3e-4)
            if family == "off-image":
                # outer lanes cross the left/right image edges well above the bottom row
                xb = (-rng.uniform(400, 1500) if j == 0 else 1640 + rng.uniform(400, 1500) if j == k - 1
                      else -200 + j * 2000 / k + rng.uniform(-80, 80))
                g = _lane(rng, vx, xb, ytop, curve)
            elif family == "steep":
                xb = vx + rng.uniform(-150, 150)
                g = _lane(rng, vx, xb, ytop, curve * 0.2)
            elif family == "near-horizontal":
                if j == 0:
                    y0 = rng.uniform(300, 560)
                    xs = np.arange(rng.uniform(-200, 100), rng.uniform(1500, 1850), rng.uniform(10, 60))
                    g = np.stack([xs, y0 + rng.uniform(-0.08, 0.08) * (xs - xs[0])], axis=1)
                else:
                    g = _lane(rng, vx, -200 + j * 2000 / k + rng.uniform(-80, 80), ytop, curve)
            else:
                xb = -200 + j * 2000 / k + rng.uniform(-80, 80)
                g = _lane(rng, vx, xb, ytop, curve)
            if family == "duplicates" and j == 0:
                i = int(rng.integers(0, len(g) - 1))
                g = np.insert(g, i, g[i], axis=0)
            gts.append(g.astype(np.float32))
        preds = []
        for g in gts:
            if rng.random() < 0.1:
                continue
            p = g + np.array([rng.normal(0, 12), 0]) + np.c_[rng.normal(0, 2, len(g)), np.zeros(len(g))]
            preds.append(p[int(rng.integers(0, 4)):].astype(np.float32))
        if rng.random() < 0.2:
            preds.append(gts[0] + np.array([rng.uniform(60, 200), 0], np.float32))
        cases.append((gts, preds))
    return cases


def baseline_image(gts: list[np.ndarray], preds: list[np.ndarray]) -> tuple[int, int, int]:
    """Per pair: two full canvases, cv2.line per segment, pixel counts (the official tool's approach)."""
    from scipy.optimize import linear_sum_assignment

    def draw(lane: np.ndarray) -> np.ndarray:
        pts = C.spline_points(lane) if len(lane) > 2 else lane
        m = np.zeros(C.CULANE_SIZE, np.uint8)
        p = np.stack([C._raster.cv_round(pts[:, 0]), C._raster.cv_round(pts[:, 1])], axis=1)  # NaN: INT_MIN
        for a, b in zip(p[:-1], p[1:], strict=True):
            cv2.line(m, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, 30)
        return m

    if not gts or not preds:
        return 0, len(preds), len(gts)
    iou = np.zeros((len(gts), len(preds)))
    for i, g in enumerate(gts):
        for j, p in enumerate(preds):
            a, b = draw(g), draw(p)
            inter = int(np.count_nonzero(a & b))
            union = int(np.count_nonzero(a | b))
            iou[i, j] = inter / union if union else 0.0
    r, c = linear_sum_assignment(iou, maximize=True)
    tp = int(np.sum(iou[r, c] > 0.5))
    return tp, len(preds) - tp, len(gts) - tp


def write_tree(cases: list, root: Path) -> None:
    lst = []
    for i, (gts, preds) in enumerate(cases):
        rel = f"drv/c{i // 100:03d}/{i:05d}"
        for sub, lanes in (("gt", gts), ("pred", preds)):
            f = root / sub / f"{rel}.lines.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(" ".join(f"{x:.3f} {y:.0f}" for x, y in lane) + " \n" for lane in lanes))
        lst.append(f"/{rel}.jpg")
    (root / "gt" / "list").mkdir(parents=True, exist_ok=True)
    (root / "gt" / "list" / "test.txt").write_text("\n".join(lst) + "\n")


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process and its finished children)."""
    t0, c0 = time.perf_counter(), os.times()
    out = fn()
    t1, c1 = time.perf_counter(), os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system)
    return out, t1 - t0, cpu


def run_cli(root: Path, workers: str) -> tuple[dict, float]:
    """Whole ``lanekd evaluate`` command (a fresh interpreter, imports included): result, wall seconds."""
    cmd = [sys.executable, "-m", "lanekd", "evaluate", "-b", "culane", "--gt", str(root / "gt"),
           "--pred", str(root / "pred"), "--json", "--per-image", "--workers", workers]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out), time.perf_counter() - t0


def counts(result: dict) -> list[tuple[int, int, int]]:
    return [(v["tp"], v["fp"], v["fn"]) for v in result["images"].values()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000, help="images per family and in the mix")
    ap.add_argument("--baseline-images", type=int, default=60, help="baseline is slow: time a subset")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--families", nargs="+", choices=[*FAMILIES, "mix"], default=None,
                    help="time only these rows (default: every family and the mix)")
    args = ap.parse_args()
    n = args.images
    fams = {f: make_cases(n, seed=i, family=f) for i, f in enumerate(FAMILIES)}
    rng = np.random.default_rng(99)
    mix = [fams[f][i] for i in range(n) for f in [FAMILIES[int(rng.integers(len(FAMILIES)))]]]
    C.score_image(*fams["clean"][0])

    base_cases = [c for i, c in enumerate(mix) if i < args.baseline_images]
    base, wall, cpu = timed(lambda: [baseline_image(g, p) for g, p in base_cases])
    base_ips = len(base_cases) / wall
    start = min(timed(lambda: subprocess.run([sys.executable, "-c", "import lanekd.cli_fast"], check=True))[1]
                for _ in range(3))
    print(f"{n} images per row; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"python start-up + entry-point imports: {start * 1e3:.0f} ms")
    print(f"{'':<50}{'images/s':>10}{'x baseline':>12}{'CPU ms/image':>14}")
    print(f"{'baseline: full-canvas cv2.line per pair (mix)':<50}{base_ips:>10.1f}{1:>12.1f}"
          f"{cpu / len(base_cases) * 1e3:>14.2f}")
    for name, cases in [*fams.items(), ("mix", mix)]:
        if args.families is not None and name not in args.families:
            continue
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            write_tree(cases, root)
            (res, wall), _, cpu = timed(lambda root=root: run_cli(root, args.workers))
            label = f"lanekd evaluate, {name}, --workers {args.workers}"
            print(f"{label:<50}{n / wall:>10.1f}{n / wall / base_ips:>12.1f}{cpu / n * 1e3:>14.2f}")
            if name == "mix":
                one = C.evaluate_culane(root / "gt", root / "pred", workers=1, per_image=True)
                mem = [C.score_image(g, p) for g, p in cases]
                print(f"mix: per-image counts equal for the command, 1 worker in-process and image by "
                      f"image: {counts(res) == counts(one) == mem}; F1 {res['overall']['f1']:.4f}; "
                      f"baseline (installed cv2) agrees on "
                      f"{sum(a == b for a, b in zip(base, mem, strict=False))}/{len(base)}")
    print("goal: >= 1800 images/s per row (whole command, 2 cores)")


if __name__ == "__main__":
    main()
