"""Train ENet-SAD with SAD on the built-in synthetic data through the library API, then score it.

python examples/train_sad.py --out runs/example-sad --iters 200
"""

from __future__ import annotations

import argparse

from lanekd.engine import TrainConfig, load_checkpoint_model, train
from lanekd.engine.validation import evaluate_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/example-sad")
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()
    res = train(
        TrainConfig(
            model="enet-sad",
            methods=["sad"],
            iters=args.iters,
            batch_size=8,
            out=args.out,
            val_every=max(1, args.iters // 4),
        )
    )
    print(f"trained {res.iterations} iterations, best val F1 {res.best_value}")
    model, meta = load_checkpoint_model(res.best_checkpoint or res.last_checkpoint)
    scores = evaluate_model(model, meta["config"]["val"])
    print(f"val F1 {scores['f1']:.4f} (precision {scores['precision']:.4f}, recall {scores['recall']:.4f})")


if __name__ == "__main__":
    main()
