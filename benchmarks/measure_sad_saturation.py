"""How saturated SAD's spatial softmax is under each channel aggregation, in training mode.

Randomly initialised students (seed 0) run in training mode, so BatchNorm normalises with the
batch's statistics as it does while SAD trains, on a batch of synthetic validation scenes
(normalised like training data, no augmentation). For each model and SAD block it prints the range
of G = Σ_c A² over positions, the largest softmax value max Ψ (mean over the samples) under the
``sum`` (paper), ``mean`` (Σ/C) and ``zscore`` aggregations and under ``--sad-preset paper``
(the sum map upsampled to the input size first), the uniform value 1/(h·w), and for each the
SAD loss (γ = 1, from the start) and the norm of its gradient on the student's parameters. A
gradient norm of 0 with a positive loss is the saturation the training warning reports.

    python benchmarks/measure_sad_saturation.py [--size 128x256] [--batch 8] \
        [--models enet-sad,resnet18,erfnet]

The figures in docs/distill.md come from this command with its defaults.
"""

from __future__ import annotations

import argparse

import torch

from lanekd.data import LaneDataset, ensure_synthetic
from lanekd.distill import SADDistiller, aggregate_attention, spatial_softmax
from lanekd.distill.attention import resize_map
from lanekd.models import build_model

AGGS = ("sum", "mean", "zscore")


def parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(128, 256), help="network input HxW")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--models", default="enet-sad,resnet18,erfnet")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = LaneDataset(ensure_synthetic("val", args.batch, size=args.size, seed=args.seed), train=False)
    batch = {"image": torch.stack([data[i]["image"] for i in range(args.batch)]),
             "label": torch.stack([data[i]["label"] for i in range(args.batch)])}
    print(f"input {args.size[0]}x{args.size[1]}, batch {args.batch}, "
          "training mode (BatchNorm on batch statistics)")
    print(f"{'model':10} {'block':7} {'G range':>14} "
          + " ".join(f"{'maxPsi ' + a:>12}" for a in (*AGGS, "paper"))
          + f" {'uniform':>9}")
    grads: list[str] = []
    for name in args.models.split(","):
        torch.manual_seed(args.seed)
        model = build_model(name, input_size=args.size)
        model.train()
        blocks = tuple(model.sad_blocks)
        with torch.no_grad():
            out = model(batch["image"], return_features=True)
        for b in blocks:
            feat = out.features[b]
            g = aggregate_attention(feat, 2.0, "sum").flatten(1)
            peaks = [spatial_softmax(aggregate_attention(feat, 2.0, a)).flatten(1).amax(dim=1).mean().item()
                     for a in AGGS]
            # the paper preset: the sum map upsampled to the input size before the softmax
            up = spatial_softmax(resize_map(aggregate_attention(feat, 2.0, "sum"), args.size))
            peaks.append(up.flatten(1).amax(dim=1).mean().item())
            h, w = feat.shape[-2:]
            print(f"{name:10} {b:7} {g.min().item():6.0f}-{g.max().item():<7.0f} "
                  + " ".join(f"{p:12.4f}" for p in peaks) + f" {1 / (h * w):9.5f}")
        variants = {a: {"aggregation": a} for a in AGGS}
        # --sad-preset paper: sum, upsampled to the input size before the softmax, element-mean MSE
        variants["paper"] = {"aggregation": "sum", "upsample": True, "reduction": "mean"}
        for label, opts in variants.items():
            model.zero_grad(set_to_none=True)
            out = model(batch["image"], return_features=True)
            loss = SADDistiller(blocks, gamma=1.0, start=0, **opts)(out, batch, None, 0, 1)
            loss.backward()
            sq = [(p.grad.float() ** 2).sum() for p in model.parameters() if p.grad is not None]
            norm = torch.sqrt(torch.stack(sq).sum()).item()
            grads.append(f"{name:10} {label:7} loss {loss.item():.4g}  gradient norm {norm:.4g}")
    print("\nSAD term (gamma 1, on from the start) over the whole chain:")
    print("\n".join(grads))


if __name__ == "__main__":
    main()
