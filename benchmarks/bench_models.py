"""Inference speed of lanekd's networks, compared in one run.

For each model and batch size: eval mode, ``torch.inference_mode``, ``--warmup`` untimed runs, then the
median of ``--runs`` timed forwards (CUDA: synchronised before and after each). Prints ms/frame and
frames/s, parameters and GFLOPs, and ratios against ENet-SAD measured in the same run, including the
SAD paper's claim (ENet-SAD 10x faster than SCNN with 20x fewer parameters).

    python benchmarks/bench_models.py                       # enet-sad, erfnet, resnet18, scnn on CPU
    python benchmarks/bench_models.py --models all --runs 5 --batch 1,8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from lanekd.models import build_model, count_flops, count_parameters, list_models

DEFAULT_MODELS = "enet-sad,erfnet,resnet18,scnn"
BASELINE = "enet-sad"


def time_model(model: torch.nn.Module, x: torch.Tensor, runs: int, warmup: int) -> list[float]:
    """Seconds of each of ``runs`` timed forwards after ``warmup`` untimed ones."""
    cuda = x.device.type == "cuda"
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=DEFAULT_MODELS,
                    help=f"comma list or 'all' (default {DEFAULT_MODELS})")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per model and batch (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--batch", default="1,8", help="comma list of batch sizes")
    ap.add_argument("--input-size", default="288x800", help="HxW")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    ap.add_argument("--channels-last", action="store_true", help="run in channels_last memory format")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)

    names = list_models() if args.models == "all" else [m for m in args.models.split(",") if m]
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}",
              file=sys.stderr)
        return 1
    h, w = (int(v) for v in args.input_size.lower().split("x"))
    batches = [int(b) for b in args.batch.split(",")]
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    rows = []
    for name in names:
        model = build_model(name, input_size=(h, w), seed=0)
        params, gflops = count_parameters(model), count_flops(model) / 1e9
        model = model.eval().to(device, memory_format=fmt)
        for b in batches:
            x = torch.randn(b, 3, h, w, device=device).contiguous(memory_format=fmt)
            med = statistics.median(time_model(model, x, args.runs, args.warmup))
            rows.append({"model": name, "batch": b, "ms_per_batch": 1e3 * med, "ms_per_frame": 1e3 * med / b,
                         "fps": b / med, "params": params, "gflops": gflops})
            print(f"  measured {name} batch {b}: {1e3 * med / b:.1f} ms/frame", file=sys.stderr, flush=True)
        del model

    base = {r["batch"]: r for r in rows if r["model"] == BASELINE}
    for r in rows:
        if r["batch"] in base:
            r["time_vs_enet_sad"] = r["ms_per_frame"] / base[r["batch"]]["ms_per_frame"]
            r["params_vs_enet_sad"] = r["params"] / base[r["batch"]]["params"]
    meta = {"device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(), "input_size": [h, w], "runs": args.runs,
            "warmup": args.warmup, "torch": torch.__version__, "channels_last": args.channels_last}
    if args.json:
        print(json.dumps({"meta": meta, "results": rows}, indent=2))
        return 0
    print(f"device {meta['gpu'] or 'cpu'} ({meta['threads']} threads), input {h}x{w}, median of {args.runs} "
          f"after {args.warmup} warm-up")
    print(f"{'model':<10} {'batch':>5} {'ms/frame':>9} {'FPS':>8} {'params M':>9} {'GFLOPs':>8} "
          f"{'time/ENet-SAD':>14} {'params/ENet-SAD':>16}")
    for r in rows:
        tr = f"{r['time_vs_enet_sad']:.2f}x" if "time_vs_enet_sad" in r else "-"
        pr = f"{r['params_vs_enet_sad']:.1f}x" if "params_vs_enet_sad" in r else "-"
        print(f"{r['model']:<10} {r['batch']:>5} {r['ms_per_frame']:>9.1f} {r['fps']:>8.1f} "
              f"{r['params'] / 1e6:>9.2f} {r['gflops']:>8.1f} {tr:>14} {pr:>16}")
    for r in rows:
        if r["model"] == "scnn" and "time_vs_enet_sad" in r:
            print(f"SCNN vs ENet-SAD, batch {r['batch']}: {r['time_vs_enet_sad']:.1f}x slower, "
                  f"{r['params_vs_enet_sad']:.1f}x more parameters (SAD paper: 10x, 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
