"""Training step time of each distillation method against ``--method none`` in the same run,
IntRA-KD with cached teacher targets against the online teacher, and ENet-SAD training images/s.

    python benchmarks/bench_train.py [--size 288x800] [--batch 4] [--steps 5] [--device cpu|cuda]
    python benchmarks/bench_train.py --hardware [--size 144x400] [--batch 8] [--model enet-sad]

``--hardware`` times the plain student's step (forward, loss, backward, SGD) under each CPU/GPU
configuration, fp32 / channels_last / bf16 autocast / both, at 1 and all threads, and
``torch.compile`` where it works, and prints images/s with the ratio to fp32 (same thread count)
measured in the same run.

"cached" feeds the distiller the targets a TeacherCache returns (precomputed once, so the teacher
is not run); the HDF5 read of those few numbers per sample is not included.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lanekd.distill import DistillConfig, build_distillers
from lanekd.engine import LaneLoss, freeze, onehot_label
from lanekd.models import LaneOutput, build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(student, distillers, teacher, batch, device, steps: int, cached: bool, kind: str) -> float:
    """Median seconds per optimisation step (forward, losses, backward, SGD)."""
    opt = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = LaneLoss()
    targets = None
    if cached and teacher is not None:
        with torch.no_grad():
            x_t = batch["image"] if kind == "image" else onehot_label(batch["label"], 5)
            t_out = teacher(x_t, return_features=True)
        feats = {k: v for d in distillers for k, v in d.teacher_targets(t_out, batch).items()}
        targets = LaneOutput(torch.empty(0, device=device), None, feats)
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        out = student(batch["image"], return_features=True)
        t_out = targets
        if teacher is not None and targets is None:
            with torch.no_grad():
                x_t = batch["image"] if kind == "image" else onehot_label(batch["label"], 5)
                t_out = teacher(x_t, return_features=True)
        losses = loss_fn(out.seg, out.exist, batch["label"], batch["exist"])
        total = sum(losses.values())
        for d in distillers:  # max_iter 1, iteration 1: every term (SAD included) active
            total = total + d(out, batch, t_out if d.needs_teacher else None, 1, 1)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        _sync(device)
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_hardware(model_name: str, batch: dict, device: torch.device, steps: int, channels_last: bool,
                  amp: str | None, compile_: bool = False) -> float:
    """Median seconds per plain supervised step of ``model_name`` under one configuration."""
    torch.manual_seed(0)
    h, w = batch["image"].shape[-2:]
    model = build_model(model_name, input_size=(h, w)).to(device).train()
    x = batch["image"]
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fwd = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = LaneLoss()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    times = []
    for i in range(steps + (3 if compile_ else 2)):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp is not None):
            out = fwd(x)
            losses = loss_fn(out.seg.float(), out.exist.float(), batch["label"], batch["exist"])
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        _sync(device)
        if i >= (3 if compile_ else 2):
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def hardware(args: argparse.Namespace, batch: dict, device: torch.device) -> None:
    threads = sorted({1, torch.get_num_threads()}) if device.type == "cpu" else [torch.get_num_threads()]
    configs = [("fp32", False, None, False), ("channels_last", True, None, False),
               ("bf16", False, "bf16", False), ("bf16+channels_last", True, "bf16", False)]
    if args.compile:
        configs.append(("compile fp32", False, None, True))
    print(f"{args.model}, device {device}, input {tuple(batch['image'].shape[-2:])}, batch {args.batch}, "
          f"{args.steps} timed steps (median)")
    for n in threads:
        torch.set_num_threads(n)
        base = None
        for name, cl, amp, comp in configs:
            try:
                t = time_hardware(args.model, batch, device, args.steps, cl, amp, comp)
            except Exception as e:  # torch.compile needs a C++ toolchain; report, don't abort
                print(f"{n} thread(s) {name:22s} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
                continue
            base = base or t
            print(f"{n} thread(s) {name:22s} {1000 * t:8.1f} ms/step {args.batch / t:7.2f} img/s "
                  f"x{base / t:.2f} vs fp32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="288x800")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--teacher", default="resnet18", help="RGB teacher architecture for intra-kd/kd/at")
    ap.add_argument("--hardware", action="store_true", help="time hardware configurations of the plain step")
    ap.add_argument("--model", default="enet-sad", help="--hardware: model to time")
    ap.add_argument("--compile", action="store_true", help="--hardware: also time torch.compile")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = {
        "image": torch.randn(args.batch, 3, h, w, device=device),
        "label": torch.randint(0, 5, (args.batch, h, w), device=device),
        "exist": torch.ones(args.batch, 4, device=device),
    }
    if args.hardware:
        hardware(args, batch, device)
        return
    cfg = DistillConfig(sad_start=0)
    rgb_t = freeze(build_model(args.teacher, input_size=(h, w)).to(device))
    lab_t = freeze(build_model("enet-sad", input_size=(h, w), in_channels=5).to(device))
    print(f"device {device}, input {h}x{w}, batch {args.batch}, {args.steps} timed steps (median)")
    base = None
    rows = [
        ("none", None, False),
        ("sad", None, False),
        ("intra-kd", rgb_t, False),
        ("intra-kd", rgb_t, True),
        ("lgad", lab_t, False),
        ("kd", rgb_t, False),
        ("at", rgb_t, False),
    ]
    for method, teacher, cached in rows:
        torch.manual_seed(0)
        student = build_model("enet-sad", input_size=(h, w)).to(device).train()
        ds = [] if method == "none" else build_distillers([method], cfg, student, teacher)
        kind = ds[0].teacher_input if ds and ds[0].needs_teacher else "image"
        t = time_steps(
            student,
            ds,
            teacher if ds and ds[0].needs_teacher else None,
            batch,
            device,
            args.steps,
            cached,
            kind,
        )
        base = base or t
        label = method + (
            " (cached teacher)" if cached else " (online teacher)" if teacher is not None else ""
        )
        print(f"{label:28s} {1000 * t:9.1f} ms/step  {args.batch / t:7.2f} img/s  x{t / base:.3f} vs none")


if __name__ == "__main__":
    main()
