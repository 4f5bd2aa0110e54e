"""Prediction writers for the benchmark evaluators (CULane, TuSimple, LLAMAS), all atomic.

* CULane/LLAMAS ``.lines.txt``: one lane per text line, ``x y`` pairs separated by spaces with a trailing
  space (the layout of SCNN's ``prob2lines``). Absent lanes (no points) are not written: the CULane tool
  counts every text line as a lane, even an empty one. Integral coordinates are written as integers
  (byte-identical to ``prob2lines`` for raw points), others with up to 3 decimals (the evaluators parse
  floats; 1e-3 px is far below their pixel rounding).
* TuSimple: JSON lines ``{"raw_file", "lanes", "run_time", "h_samples"}`` with one x per ``h_samples``
  row and -2 where the lane has no point; ``run_time`` in milliseconds (lane.py zeroes frames > 200 ms).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from lanekd.utils.io import atomic_path, write_text_atomic


def _fmt(v: float) -> str:
    r = round(float(v), 3)
    if r == int(r):
        return str(int(r))
    return f"{r:.3f}".rstrip("0")


def format_culane_lines(lanes: Sequence[np.ndarray]) -> str:
    """Text of a CULane ``.lines.txt`` file: one line per non-empty ``(N, 2)`` lane, ``"x y x y \\n"``."""
    out = []
    for lane in lanes:
        a = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
        if len(a) == 0:
            continue
        out.append("".join(f"{_fmt(x)} {_fmt(y)} " for x, y in a) + "\n")
    return "".join(out)


def write_culane_lines(path: str | Path, lanes: Sequence[np.ndarray]) -> Path:
    """Write one CULane-format ``.lines.txt`` file atomically; returns its path."""
    write_text_atomic(path, format_culane_lines(lanes))
    return Path(path)


def culane_lines_path(out_dir: str | Path, name: str) -> Path:
    """Where the CULane tool looks for the prediction of list entry ``name``.

    The tool replaces everything after the last ``.`` by ``lines.txt`` and concatenates the result to the
    prediction directory; a leading ``/`` (``test.txt`` style) is dropped so both list styles map to the
    same file.
    """
    stem = name.strip().lstrip("/")
    if not stem:
        raise ValueError("empty image name")
    dot = stem.rfind(".")
    if dot > stem.rfind("/"):
        stem = stem[:dot]
    return Path(out_dir) / f"{stem}.lines.txt"


def write_culane_tree(
    out_dir: str | Path, names: Sequence[str], lanes_per_image: Sequence[Sequence[np.ndarray]]
) -> list[Path]:
    """Write ``<out_dir>/<name without extension>.lines.txt`` for every image; returns the paths."""
    return _write_tree(out_dir, names, lanes_per_image, culane_lines_path)


def _write_tree(out_dir: str | Path, names: Sequence[str], lanes_per_image: Sequence[Sequence[np.ndarray]],
                where: Callable[[str | Path, str], Path]) -> list[Path]:
    if len(names) != len(lanes_per_image):
        raise ValueError(f"{len(names)} names but {len(lanes_per_image)} lane lists")
    pairs = zip(names, lanes_per_image, strict=True)
    return [write_culane_lines(where(out_dir, n), lanes) for n, lanes in pairs]


def llamas_lines_path(out_dir: str | Path, name: str) -> Path:
    """``<out_dir>/<recording>/<stem>.lines.txt`` for a LLAMAS image or label path.

    The LLAMAS F1 script keys an image by the last two parts of its label path
    (``<recording>/<timestamp>.json``); image names carry a ``_color_rect``/``_gray_rect`` suffix that the
    label name lacks, so it is removed.
    """
    parts = PurePosixPath(name.strip().replace("\\", "/")).parts
    if len(parts) < 2:
        raise ValueError(f"LLAMAS name {name!r} needs a recording folder and a file name")
    stem = PurePosixPath(parts[-1]).stem
    for suffix in ("_color_rect", "_gray_rect"):
        stem = stem.removesuffix(suffix)
    return Path(out_dir) / parts[-2] / f"{stem}.lines.txt"


def write_llamas_tree(
    out_dir: str | Path, names: Sequence[str], lanes_per_image: Sequence[Sequence[np.ndarray]]
) -> list[Path]:
    """Write LLAMAS predictions (CULane line format) as ``<out_dir>/<recording>/<stem>.lines.txt``."""
    return _write_tree(out_dir, names, lanes_per_image, llamas_lines_path)


def lanes_to_h_samples(lanes: Sequence[np.ndarray], h_samples: Sequence[float]) -> list[list[float]]:
    """TuSimple lane rows: one x per ``h_samples`` entry for every non-empty lane, -2 outside its span.

    Points are linearly interpolated in y (exact for lanes decoded with the ``tusimple`` profile, whose
    points lie on ``h_samples``). Lanes without any point inside ``h_samples`` are omitted: lane.py counts
    an all -2 lane as a prediction (a false positive).
    """
    hs = np.asarray(h_samples, dtype=np.float64)
    out = []
    for lane in lanes:
        a = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
        if len(a) == 0:
            continue
        order = np.argsort(a[:, 1], kind="stable")
        y, x = a[order, 1], a[order, 0]
        inside = (hs >= y[0]) & (hs <= y[-1])
        if not inside.any():
            continue
        xs = np.where(inside, np.interp(hs, y, x), -2.0)
        out.append([-2 if v == -2.0 else round(float(v), 3) for v in xs])
    return out


def write_tusimple_json(
    path: str | Path,
    raw_files: Sequence[str],
    lanes_per_image: Sequence[Sequence[np.ndarray]],
    h_samples: Sequence[float] | Sequence[Sequence[float]],
    run_times_ms: float | Sequence[float],
) -> Path:
    """Write a TuSimple prediction file (JSON lines) atomically.

    Args:
        path: output file.
        raw_files: the ``raw_file`` of each image, as in the ground truth (``clips/.../20.jpg``).
        lanes_per_image: per image, lanes as ``(N, 2)`` ``(x, y)`` arrays (decoder output).
        h_samples: the rows to report, shared by all images or one list per image.
        run_times_ms: per-image (or one shared) run time in milliseconds.
    """
    n = len(raw_files)
    if len(lanes_per_image) != n:
        raise ValueError(f"{n} raw_files but {len(lanes_per_image)} lane lists")
    per_image_h = len(h_samples) > 0 and isinstance(h_samples[0], (list, tuple, np.ndarray))
    if per_image_h and len(h_samples) != n:
        raise ValueError(f"{n} raw_files but {len(h_samples)} h_samples lists")
    times = [float(run_times_ms)] * n if np.isscalar(run_times_ms) else [float(t) for t in run_times_ms]  # type: ignore[union-attr]
    if len(times) != n:
        raise ValueError(f"{n} raw_files but {len(times)} run times")
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for i in range(n):
            rows = h_samples[i] if per_image_h else h_samples
            hs = [int(v) if float(v).is_integer() else float(v) for v in rows]  # type: ignore[union-attr]
            rec = {"raw_file": raw_files[i], "lanes": lanes_to_h_samples(lanes_per_image[i], hs),
                   "run_time": times[i], "h_samples": hs}
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return Path(path)
