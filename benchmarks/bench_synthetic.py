"""Benchmark: rendering synthetic road scenes (goal < ~20 ms per 590x1640 frame on one core).

Measures, with OpenCV limited to one thread, the CPU time (``time.process_time``, robust to other
processes on a shared machine) and the wall time per scene at 590x1640 and 288x800, and, as the
baseline measured in the same run, decoding one 590x1640 JPEG of the same frames with
``cv2.imdecode`` (what a reader of the real CULane files pays per frame before any augmentation).

    python benchmarks/bench_synthetic.py [--n 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from lanekd.data.synthetic import generate_samples, render_scene


def _time(fn, n: int) -> tuple[float, float]:
    """(cpu ms, wall ms) per call of ``fn(i)`` over ``i in range(n)``."""
    c, w = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.process_time() - c) / n * 1e3, (time.perf_counter() - w) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="scenes per measurement")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    render_scene(args.seed, 0, "test")  # warm-up: builds the cached grain bank
    jpegs = [
        cv2.imencode(".jpg", s.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
        for s in generate_samples(min(args.n, 20), args.seed, "test")
    ]
    base_cpu, base_wall = _time(lambda i: cv2.imdecode(jpegs[i % len(jpegs)], cv2.IMREAD_COLOR), args.n)
    print(f"baseline  cv2.imdecode 590x1640 JPEG: {base_cpu:6.2f} ms cpu  {base_wall:6.2f} ms wall")
    for size in ((590, 1640), (288, 800)):
        cpu, wall = _time(lambda i, size=size: render_scene(args.seed, i, "test", size), args.n)
        print(
            f"render_scene {size[0]}x{size[1]}: {cpu:6.2f} ms cpu  {wall:6.2f} ms wall"
            f"  ({cpu / base_cpu:4.1f}x the JPEG decode, {1e3 / cpu:5.0f} scenes/s/core)"
        )
    lanes = [len(s.lanes) for s in generate_samples(min(args.n, 50), args.seed, "test", (148, 410))]
    print(f"mean annotated lanes per scene: {np.mean(lanes):.2f}")


if __name__ == "__main__":
    main()
