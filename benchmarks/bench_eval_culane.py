"""CULane evaluation throughput: lanekd's evaluator vs a straightforward full-canvas implementation.

Generates N perturbed image cases (perspective lanes, 2-4 GT lanes, predictions jittered, shifted,
dropped or added), then times in the same run:

* baseline - what the official tool does per image: draw every lane pair on full 590x1640 canvases
  with ``cv2.line`` segment by segment and count pixels (one process);
* lanekd - :func:`lanekd.evaluate.culane.score_image` image by image (OpenCV-4.6-exact rasteriser,
  run-length IoU), then ``evaluate_culane`` on a written tree (files parsed, images batched) with 1 and
  ``--workers`` processes.

Wall-clock images/s and CPU milliseconds per image (process + worker CPU time) are printed for each, with
the ratio to the baseline; the machine may be shared, so CPU time per image is the steadier figure.

Usage: ``python benchmarks/bench_eval_culane.py [--images 3000] [--baseline-images 100] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanekd.evaluate import culane as C


def make_cases(n: int, seed: int = 0) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        k = int(rng.integers(2, 5))
        vx = rng.uniform(700, 940)
        ys = np.arange(589, int(rng.uniform(250, 330)), -10.0)
        gts = []
        for j in range(k):
            xb = rng.uniform(-300, 1900) if k == 1 else -200 + j * 2000 / k + rng.uniform(-80, 80)
            curve = rng.uniform(-3e-4, 3e-4)
            xs = vx + (xb - vx) * (ys - 240) / 350 + curve * (589 - ys) ** 2
            gts.append(np.stack([xs, ys], axis=1).astype(np.float32))
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
        p = np.rint(pts).astype(np.int64)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--baseline-images", type=int, default=100, help="baseline is slow: time a subset")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cases = make_cases(args.images)
    C.score_image(*cases[0])  # build the stamp tables once (forked workers inherit them)
    n = len(cases)

    base, wall, cpu = timed(lambda: [baseline_image(g, p) for g, p in cases[:args.baseline_images]])
    base_ips = args.baseline_images / wall
    rows = [("baseline: full canvas, cv2.line per pair, 1 process", base_ips, cpu / len(base))]
    ours, wall, cpu = timed(lambda: [C.score_image(g, p) for g, p in cases])
    rows.append(("score_image, image by image, 1 process", n / wall, cpu / n))
    agree = sum(a == b for a, b in zip(base, ours, strict=False))

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_tree(cases, root)
        results = {}
        for w in sorted({1, args.workers}):
            res, wall, cpu = timed(lambda w=w: C.evaluate_culane(root / "gt", root / "pred", workers=w,
                                                                 per_image=True))
            results[w] = res
            rows.append((f"evaluate_culane on files, {w} worker{'s' * (w > 1)}", n / wall, cpu / n))
    same = all(tuple(results[w]["images"][k][f] for f in ("tp", "fp", "fn"))
               == tuple(results[1]["images"][k][f] for f in ("tp", "fp", "fn"))
               for w in results for k in results[1]["images"])
    tree_counts = [tuple(v[f] for f in ("tp", "fp", "fn")) for v in results[1]["images"].values()]

    print(f"cases: {n} images, {sum(len(g) + len(p) for g, p in cases)} lanes; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'':<52}{'images/s':>10}{'x baseline':>12}{'CPU ms/image':>14}")
    for name, ips, cpu_s in rows:
        print(f"{name:<52}{ips:>10.1f}{ips / base_ips:>12.1f}{cpu_s * 1e3:>14.3f}")
    print(f"goal: 1800 images/s with 2 workers; reached {rows[-1][1] / 1800:.0%} of it; "
          f"F1 {results[1]['overall']['f1']:.4f}")
    files_same = sum(a == b for a, b in zip(tree_counts, ours, strict=True))
    print(f"per-image (tp, fp, fn): files == in-memory on {files_same}/{n}, "
          f"1 == {args.workers} workers: {same}; equal to the baseline on {agree}/{len(base)} images "
          "(differences = OpenCV 4.6 vs installed cv2 rasterisation)")


if __name__ == "__main__":
    main()
