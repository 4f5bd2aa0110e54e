"""Benchmark: TuSimple evaluation of the 2782 test images (goal < 0.3 s; official lane.py: 6.3 s here).

GT = the official ``test_label.json`` (from ``../shared/realdata/tusimple/_full_annotations`` or ``--gt``);
predictions = the GT perturbed with a fixed seed (jitter, shifted lanes, dropped lanes, extra lanes, a few
slow frames). Baseline, measured in the same run: a straightforward per-image, per-lane Python loop
re-implementation of lane.py (the structure of the official script, with numpy per lane).

    python benchmarks/bench_eval_tusimple.py [--gt test_label.json] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lanekd.evaluate.tusimple import evaluate_tusimple

DEFAULT_GT = (Path(__file__).resolve().parents[2]
              / "shared/realdata/tusimple/_full_annotations/test_label.json")


def perturb(gt_lines: list[dict], seed: int = 0) -> list[dict]:
    """Deterministic perturbed predictions for every GT line."""
    rng = np.random.default_rng(seed)
    preds = []
    for g in gt_lines:
        lanes = []
        for lane in g["lanes"]:
            x = np.asarray(lane, dtype=np.float64)
            if rng.random() < 0.05:
                continue  # missed lane
            valid = x >= 0
            shift = rng.choice([0.0, 0.0, 0.0, 25.0, -40.0])
            x = np.where(valid, np.round(x + shift + rng.normal(0, 6, x.shape), 2), -2)
            lanes.append(x.tolist())
        if rng.random() < 0.1:  # a spurious lane
            lanes.append(np.where(np.arange(len(g["h_samples"])) > 20,
                                  rng.uniform(0, 1280) + rng.normal(0, 3, len(g["h_samples"])), -2).tolist())
        run_time = 250.0 if rng.random() < 0.02 else float(rng.uniform(5, 20))
        preds.append({"raw_file": g["raw_file"], "lanes": lanes, "run_time": run_time})
    return preds


# ----------------------------------------------------------------------------- baseline: per-lane loops
def _baseline_bench(pred: list, gt: list, ys: np.ndarray, run_time: float) -> tuple[float, float, float]:
    if run_time > 200 or len(pred) > len(gt) + 2:
        return 0.0, 0.0, 1.0
    threshs = []
    for lane in gt:
        x = np.asarray(lane, dtype=np.float64)
        ok = x >= 0
        k = np.polyfit(ys[ok], x[ok], 1)[0] if ok.sum() > 1 else 0.0
        threshs.append(20.0 / np.cos(np.arctan(k)))
    best, matched, miss = [], 0, 0
    for lane, t in zip(gt, threshs, strict=True):
        g = np.asarray(lane, dtype=np.float64)
        g = np.where(g >= 0, g, -100.0)
        scores = []
        for p_lane in pred:
            p = np.asarray(p_lane, dtype=np.float64)
            p = np.where(p >= 0, p, -100.0)
            scores.append(float(np.sum(np.abs(p - g) < t)) / len(g))
        m = max(scores) if scores else 0.0
        if m < 0.85:
            miss += 1
        else:
            matched += 1
        best.append(m)
    fp = len(pred) - matched
    if len(gt) > 4 and miss > 0:
        miss -= 1
    s = sum(best) - (min(best) if len(gt) > 4 else 0.0)
    denom = max(min(4, len(gt)), 1)
    return s / denom, (fp / len(pred) if pred else 0.0), miss / denom


def baseline_evaluate(gt_file: Path, pred_file: Path) -> dict:
    gts = {}
    for line in open(gt_file):
        r = json.loads(line)
        gts[r["raw_file"]] = r
    acc = fp = fn = 0.0
    for line in open(pred_file):
        p = json.loads(line)
        g = gts[p["raw_file"]]
        a, b, c = _baseline_bench(p["lanes"], g["lanes"], np.asarray(g["h_samples"], dtype=np.float64),
                                  p["run_time"])
        acc, fp, fn = acc + a, fp + b, fn + c
    n = len(gts)
    return {"accuracy": acc / n, "fp": fp / n, "fn": fn / n}


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall-clock and CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", type=Path, default=DEFAULT_GT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not args.gt.is_file():
        print(f"GT file {args.gt} not found (pass --gt test_label.json)", file=sys.stderr)
        return 1
    gt_lines = [json.loads(ln) for ln in open(args.gt)]
    with tempfile.TemporaryDirectory() as d:
        pred_file = Path(d) / "pred.json"
        pred_file.write_text("".join(json.dumps(p) + "\n" for p in perturb(gt_lines)))
        t_ours, c_ours, ours = timed(lambda: evaluate_tusimple(args.gt, pred_file), args.repeat)
        t_base, c_base, base = timed(lambda: baseline_evaluate(args.gt, pred_file), max(1, args.repeat // 3))
        cmd = [sys.executable, "-m", "lanekd", "evaluate", "-b", "tusimple", "--gt", str(args.gt),
               "--pred", str(pred_file), "--quiet"]
        t_cmd = timed(lambda: subprocess.run(cmd, check=True, capture_output=True), args.repeat)[0]
        t_start = timed(lambda: subprocess.run([sys.executable, "-c", "import lanekd.cli_fast"], check=True),
                        args.repeat)[0]
    assert isinstance(ours, dict) and isinstance(base, dict)
    diff = max(abs(ours[k] - base[k]) for k in ("accuracy", "fp", "fn"))
    print(f"images: {len(gt_lines)} (wall-clock and CPU seconds of this process, medians)")
    print(f"lanekd evaluate_tusimple : {t_ours:.3f} s wall, {c_ours:.3f} s CPU  (goal < 0.3 s)")
    print(f"whole `lanekd evaluate`  : {t_cmd:.3f} s wall (goal <= 0.3 s), of which python start-up and the "
          f"entry point's imports {t_start:.3f} s")
    print(f"per-lane loop baseline   : {t_base:.3f} s wall, {c_base:.3f} s CPU")
    print(f"speed-up                 : {t_base / t_ours:.1f}x wall, {c_base / c_ours:.1f}x CPU")
    print(f"accuracy {ours['accuracy']:.6f}  FP {ours['fp']:.6f}  FN {ours['fn']:.6f}  F1 {ours['f1']:.6f}")
    print(f"max |ours - baseline| over accuracy/FP/FN: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
