"""ENet-SAD from scratch at 144x400: the fast recipe with and without progressive resizing.

    python benchmarks/bench_recipe.py [--iters 800] [--seeds 0,1] [--work DIR] [--threads 2]
    [--n-train 800] [--n-val 100]

Writes 800 synthetic scenes (seed 100) and 100 held-out ones (seed 200) in the CULane on-disk
layout and reads them back with ``prepare culane`` (training labels 10 px wide, validation at the
official width): the path a user's data takes. Then, for each seed, trains ENet-SAD without
distillation for ``--iters`` iterations of batch 8 twice, at full size throughout
(``progressive_width=0``) and with the fast recipe's default (the first 3/4 at 96x256), validating
every ``iters/8`` iterations with the official CULane F1. Prints the F1 curves, each run's wall
time (validation included) and the ratios of the progressive run to the full-size one, measured in
the same process. About 15 minutes per seed on 2 CPU cores. The data is kept in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lanekd.engine import TrainConfig, train
from lanekd.zoo import RECIPES
from lanekd.zoo.train import prepared_split

#: the zoo's from-scratch entry writes exactly this data (CULane layout, 144x400, seeds 100 / 200)
DATA = RECIPES["enet-sad-synthetic"]


def run(work: Path, name: str, train_h5: Path, val_h5: Path, iters: int, seed: int, width: int) -> dict:
    out = work / "runs" / name
    t0 = time.perf_counter()
    res = train(TrainConfig(model="enet-sad", data=str(train_h5), val=str(val_h5), iters=iters, seed=seed,
                            workers=0, val_every=max(1, iters // 8), ckpt_every=0, out=str(out), quiet=True,
                            progressive_width=width))
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["iter"], round(r["f1"], 3)) for r in rows if r.get("type") == "val"]
    return {"name": name, "wall_s": wall, "final_f1": res.final_value, "curve": curve}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=800)
    ap.add_argument("--n-train", type=int, default=800)
    ap.add_argument("--n-val", type=int, default=100)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--work", type=Path, default=Path("bench-recipe"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    train_h5 = prepared_split(DATA, args.work, "train", args.n_train, DATA.train_seed, DATA.line_width, 1)
    val_h5 = prepared_split(DATA, args.work, "val", args.n_val, DATA.val_seed, None, 1)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        full = run(args.work, f"full-s{seed}", train_h5, val_h5, args.iters, seed, 0)
        prog = run(args.work, f"progressive-s{seed}", train_h5, val_h5, args.iters, seed, 256)
        for r in (full, prog):
            print(f"{r['name']:>16}: F1 {r['final_f1']:.3f} in {r['wall_s']:.0f} s; curve {r['curve']}")
        print(f"seed {seed}: progressive / full-size: wall x{prog['wall_s'] / full['wall_s']:.2f}, "
              f"F1 {prog['final_f1']:.3f} vs {full['final_f1']:.3f}", flush=True)
        results += [full, prog]
    return results


if __name__ == "__main__":
    main()
