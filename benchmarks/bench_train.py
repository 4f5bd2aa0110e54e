"""Training step time of each distillation method against ``--method none`` in the same run,
IntRA-KD with cached teacher targets against the online teacher, and ENet-SAD training images/s.

    python benchmarks/bench_train.py [--size 288x800] [--batch 4] [--steps 5] [--device cpu|cuda]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="288x800")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--teacher", default="resnet18", help="RGB teacher architecture for intra-kd/kd/at")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = {
        "image": torch.randn(args.batch, 3, h, w, device=device),
        "label": torch.randint(0, 5, (args.batch, h, w), device=device),
        "exist": torch.ones(args.batch, 4, device=device),
    }
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
