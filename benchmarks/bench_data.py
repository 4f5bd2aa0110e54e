"""Training-sample throughput at 288x800: lanekd HDF5 (encoded and raw) vs the CULane JPEG+PNG layout.

All three pipelines run in the same process (num_workers=0, i.e. per worker) and do the same
training work per sample: SCNN augmentation (random resize, +-1 degree, crop), normalisation,
tensor conversion. They differ only in where the pixels come from:

* ``files``: what a typical CULane loader does: ``cv2.imread`` the 1640x590 JPEG and its
  ``laneseg_label_w16`` PNG, resize both to 288x800 (bilinear / nearest), then augment;
* ``h5 encoded``: :class:`lanekd.data.LaneDataset` on the JPEG-bytes file (decode a 288x800 JPEG);
* ``h5 raw``: the same on the raw-uint8 file (no decode at all).

Usage: ``python benchmarks/bench_data.py [--n 48] [--passes 3]``. Goal: HDF5 >= 3x the files loader.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from lanekd.data import LaneDataset, prepare_dataset
from lanekd.data.augment import AugmentConfig, augment_pair, normalize
from lanekd.data.h5 import DEFAULT_MEAN, DEFAULT_STD
from lanekd.data.synthetic import write_culane_layout

SIZE = (288, 800)


class CULaneFilesDataset:
    """Decode-from-files baseline: the same augmentation as LaneDataset, pixels from JPEG + PNG."""

    def __init__(self, root: Path, list_file: Path, train: bool = True) -> None:
        self.root = root
        self.items = []
        for line in list_file.read_text().splitlines():
            tok = line.split()
            self.items.append((root / tok[0].lstrip("/"), root / tok[1].lstrip("/"),
                               np.array([int(t) for t in tok[2:6]], np.float32)))
        self.train = train
        self.cfg = AugmentConfig()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img_path, mask_path, exist = self.items[i]
        img = cv2.cvtColor(cv2.imread(str(img_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lab = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        h, w = SIZE
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
        if self.train:
            img, lab = augment_pair(img, lab, self.cfg, DEFAULT_MEAN)
        return {"image": normalize(img, DEFAULT_MEAN, DEFAULT_STD),
                "label": torch.from_numpy(lab.astype(np.int64)), "exist": torch.from_numpy(exist),
                "index": torch.tensor(i)}


def throughput(ds, passes: int) -> float:
    """Samples per second over ``passes`` epochs after one warm-up epoch (page cache warm for all)."""
    for i in range(len(ds)):
        ds[i]
    torch.manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(passes):
        for i in range(len(ds)):
            ds[i]
    return passes * len(ds) / (time.perf_counter() - t0)


def dir_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="samples (synthetic CULane-layout frames)")
    ap.add_argument("--passes", type=int, default=3, help="timed epochs per pipeline")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one worker = one core
    with tempfile.TemporaryDirectory() as tmp:
        root = write_culane_layout(Path(tmp) / "culane", args.n, seed=0, split="train")
        list_file = root / "list" / "train_gt.txt"
        files = CULaneFilesDataset(root, list_file)
        paths = [p for it in files.items for p in it[:2]]
        enc = prepare_dataset("culane", Path(tmp) / "enc.h5", root=root, split="train", size=SIZE)
        raw = prepare_dataset("culane", Path(tmp) / "raw.h5", root=root, split="train", size=SIZE,
                              storage="raw")
        results = {}
        for name, ds in (("files (JPEG+PNG)", files),
                         ("h5 encoded", LaneDataset(enc.out, train=True)),
                         ("h5 raw", LaneDataset(raw.out, train=True))):
            results[name] = throughput(ds, args.passes)
        base = results["files (JPEG+PNG)"]
        print(f"training samples at {SIZE[0]}x{SIZE[1]}, num_workers=0 (one core), n={args.n}, "
              f"passes={args.passes}")
        print(f"{'pipeline':<18} {'samples/s':>10} {'vs files':>9} {'MB/sample':>10}")
        sizes = {"files (JPEG+PNG)": dir_bytes(paths), "h5 encoded": enc.bytes, "h5 raw": raw.bytes}
        for name, sps in results.items():
            print(f"{name:<18} {sps:>10.1f} {sps / base:>8.2f}x {sizes[name] / args.n / 1e6:>10.3f}")
        # Loading alone (no augmentation): where the storage choice shows most.
        e, r = LaneDataset(enc.out, train=False), LaneDataset(raw.out, train=False)
        print(f"eval-mode load only: h5 encoded {throughput(e, args.passes):.1f} samples/s, "
              f"h5 raw {throughput(r, args.passes):.1f} samples/s")


if __name__ == "__main__":
    main()
