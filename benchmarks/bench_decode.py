"""Benchmark: lane decoder throughput at 288x800 with 4 lanes (goal >= 500 images/s on 2 CPU cores).

Compares, in the same run, ``lanekd.decode.decode`` (numpy, torch CPU, and CUDA when available; batched,
spline on) against a naive per-image baseline that smooths every full lane map with ``cv2.blur`` (zero
border) and fits one scipy spline per lane. Inputs: softmax probabilities of random logits with four
curved lane bands; every lane exists (the worst case: all four are decoded and fitted).

    python benchmarks/bench_decode.py [--batch 32] [--images 256]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from scipy.interpolate import CubicSpline

from lanekd.decode import decode, get_profile


def make_batch(n: int, h: int = 288, w: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 5, h, w)).astype(np.float32)
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    for k in range(4):
        centre = w * (0.2 + 0.2 * k) + (k - 1.5) * 1.2 * (h - rows) + 20 * np.sin(rows / 40)
        logits[:, k + 1] += 6.0 * (np.abs(cols - centre) < 6) * (rows > h * 0.35)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32), np.full((n, 4), 0.9)


def naive_decode(prob: np.ndarray, exist: np.ndarray) -> list[list[np.ndarray]]:
    """Per image, per lane: full-map cv2.blur, then getLane's 18 rows, then a scipy spline."""
    prof = get_profile("culane")
    B, C, h, w = prob.shape
    rows = prof.net_rows(h)
    ys = prof.sample_ys()
    out = []
    for b in range(B):
        lanes = []
        for k in range(C - 1):
            if exist[b, k] <= 0.5:
                lanes.append(np.zeros((0, 2)))
                continue
            smooth = cv2.blur(prob[b, k + 1], (9, 9), borderType=cv2.BORDER_CONSTANT)
            pts = []
            for i, r in enumerate(rows):
                c = int(np.argmax(smooth[r]))
                if smooth[r, c] > 0.3:
                    pts.append((np.floor((c + 1) * 1640 / w + 0.5) - 1, ys[i]))
            if len(pts) < 2:
                lanes.append(np.zeros((0, 2)))
                continue
            a = np.array(pts)[::-1]
            cs = CubicSpline(a[:, 1], a[:, 0], bc_type="natural")
            grid = np.arange(a[-1, 1], a[0, 1] - 1e-9, -10.0)
            lanes.append(np.stack([cs(grid), grid], 1))
        out.append(lanes)
    return out


def throughput(fn, prob, exist, batch: int, repeat: int = 3) -> tuple[float, float]:
    """Images per wall-clock second and per CPU second of this process (best of ``repeat`` passes).

    The CPU figure is what the code costs; on a shared machine the wall figure also carries the
    waiting for a core.
    """
    n = len(prob)
    wall = cpu = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, n, batch):
            fn(prob[i : i + batch], exist[i : i + batch])
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return n / wall, n / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    prob, exist = make_batch(args.images)
    lanes = decode(prob[:4], exist[:4])
    print(f"{args.images} images 288x800, 4 lanes, batch {args.batch}; lanes per image: "
          f"{sum(len(x) > 0 for x in lanes[0])}, points per lane: {[len(x) for x in lanes[0]]}")
    results = {}
    results["naive cv2.blur per image"] = throughput(naive_decode, prob, exist, args.batch, repeat=1)
    results["lanekd numpy"] = throughput(decode, prob, exist, args.batch)
    try:
        import torch

        tp, te = torch.from_numpy(prob), torch.from_numpy(exist)
        results["lanekd torch cpu tensors (auto: numpy view)"] = throughput(decode, tp, te, args.batch)

        def torch_kernel(p, e):
            return decode(p, e, backend="torch")

        threads = torch.get_num_threads()
        results[f"lanekd torch cpu kernel ({threads} threads)"] = throughput(torch_kernel, tp, te, args.batch)
        if threads != 1:  # intra-op threads only add synchronisation for these small ops
            torch.set_num_threads(1)
            results["lanekd torch cpu kernel (1 thread)"] = throughput(torch_kernel, tp, te, args.batch)
            torch.set_num_threads(threads)
        if torch.cuda.is_available():
            tpc, tec = tp.cuda(), te.cuda()

            def cuda_decode(p, e):
                out = decode(p, e)
                torch.cuda.synchronize()
                return out

            cuda_decode(tpc[: args.batch], tec[: args.batch])  # warm-up
            results[f"lanekd torch cuda ({torch.cuda.get_device_name()})"] = throughput(
                cuda_decode, tpc, tec, args.batch)
    except ImportError:
        pass
    base = results["naive cv2.blur per image"][0]
    print(f"{'':<48} {'images/s':>10} {'vs base':>8} {'images/CPU-s':>13}")
    for name, (ips, ipc) in results.items():
        print(f"{name:<48} {ips:10.1f} {ips / base:7.1f}x {ipc:13.1f}")
    print("goal: >= 500 images/s on 2 CPU cores (numpy / torch cpu rows); CUDA rows: CPU-s is host time")


if __name__ == "__main__":
    main()
