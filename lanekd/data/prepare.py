"""The ``lanekd prepare`` pipeline: dataset samples -> one lanekd HDF5 file per split.

Per sample (in worker processes, results written in input order): read and check the image,
crop ``crop_top`` rows, resize to the training size, build the label map (the dataset's label
image through its lookup table, or the polylines drawn as thick lines), encode, checksum.

The output is written to ``.<name>.tmp`` beside the target and renamed when complete. The writer
commits (updates ``count`` and flushes) every ``flush_every`` samples, so a conversion killed even
with SIGKILL can be continued with ``resume=True``: the temporary file's parameters must match,
it is truncated to its last committed sample and the input is skipped up to that point. The result
has the same content as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanekd.data.h5 import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    FORMAT_VERSION,
    STORAGES,
    H5Writer,
    PreparedSample,
    read_attrs,
    sample_checksum,
)
from lanekd.data.policy import ErrorPolicy
from lanekd.data.render import render_label, resize_image, resize_label, scaled_line_width
from lanekd.data.sample import LaneSample
from lanekd.errors import ConfigError, DataError
from lanekd.utils.io import check_output_file, tmp_path_for, write_json_atomic

#: Largest training height and width ``prepare`` accepts: 2.5x CULane's 1640 source width, so every
#: dataset's native size fits; larger sizes are typos that would exhaust memory (3 x 4096^2 bytes
#: per raw image already).
MAX_SIDE = 4096


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` as ints, each in ``1..MAX_SIDE``; else a :class:`ConfigError` naming the limit."""
    h, w = (int(v) for v in size)
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise ConfigError(f"size {h}x{w} is outside 1..{MAX_SIDE} per side")
    return h, w


@dataclass(frozen=True)
class _Geometry:
    """Everything a worker needs to turn a sample into a :class:`PreparedSample` (picklable)."""

    dataset: str
    size: tuple[int, int]
    crop_top: int
    num_slots: int
    num_classes: int
    line_width_at_source: float
    label_format: str | None
    storage: str
    jpeg_quality: int
    synthetic_seed: int = 0
    synthetic_split: str = "train"
    synthetic_source_size: tuple[int, int] = (590, 1640)
    line_width: int | None = None  # training-size label width; None = the dataset's, scaled
    randomize: str = ""  # synthetic only: DomainRandomization spec


@dataclass
class PrepareResult:
    """Summary of one conversion."""

    out: Path
    dataset: str
    split: str
    count: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_file: Path | None = None
    size: tuple[int, int] = (0, 0)
    storage: str = "encoded"
    bytes: int = 0
    seconds: float = 0.0
    resumed_from: int = 0

    def summary(self) -> str:
        h, w = self.size
        mb = self.bytes / 1e6
        text = (f"prepared {self.count} {self.dataset}/{self.split} samples -> {self.out} "
                f"({h}x{w}, {self.storage}, {mb:.1f} MB, {self.seconds:.1f} s)")
        if self.resumed_from:
            text += f", resumed after {self.resumed_from}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} bad samples (see {self.skipped_file})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "dataset": self.dataset, "split": self.split, "count": self.count,
                "skipped": len(self.skipped), "skipped_samples": self.skipped,
                "skipped_file": str(self.skipped_file) if self.skipped_file else None,
                "size": list(self.size), "storage": self.storage, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "resumed_from": self.resumed_from}


# --- per-sample work (runs in workers) ---------------------------------------------------------
def _read_image(sample: LaneSample) -> np.ndarray:
    """Decode ``sample``'s image as (H, W, 3) uint8 RGB, rejecting missing, truncated and corrupt files."""
    if sample.image is not None:
        return np.ascontiguousarray(sample.image)
    path = Path(sample.image_path)
    try:
        data = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise DataError(path, "image not found") from None
    except OSError as e:
        raise DataError(path, f"cannot read image ({e.strerror or e})") from None
    if data.size == 0:
        raise DataError(path, "image file is empty")
    head = data[:8].tobytes()
    if head[:2] == b"\xff\xd8":
        # libjpeg decodes a truncated JPEG with only a warning (grey bottom); require the end marker.
        tail = data[-64:].tobytes().rstrip(b"\x00\r\n ")
        if not tail.endswith(b"\xff\xd9"):
            raise DataError(path, "truncated JPEG (no end-of-image marker)")
    elif head == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-16:].tobytes():
        raise DataError(path, "truncated PNG (no IEND chunk)")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(path, "cannot decode image (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def prepare_sample(sample: LaneSample, geo: _Geometry) -> PreparedSample:
    """Turn one :class:`LaneSample` into the arrays stored in the HDF5 file.

    Raises:
        DataError: missing/corrupt/truncated image or label image, size mismatch.
    """
    rgb = _read_image(sample)
    hs, ws = rgb.shape[:2]
    where = sample.image_path
    if sample.size not in ((0, 0), (hs, ws)):
        raise DataError(where, f"image is {ws}x{hs} but its annotation expects "
                               f"{sample.size[1]}x{sample.size[0]}")
    if geo.crop_top >= hs:
        raise DataError(where, f"crop_top {geo.crop_top} removes the whole {hs}-row image")
    image = resize_image(rgb, geo.size, geo.crop_top)
    if sample.label_path is not None and (geo.line_width is None or not sample.lanes):
        from lanekd.data.formats import read_label_map

        fmt = sample.label_format or geo.label_format
        if fmt is None:
            raise DataError(sample.label_path, "label image without a label format")
        ids = read_label_map(sample.label_path, fmt, geo.num_classes)
        if ids.shape != (hs, ws):
            raise DataError(sample.label_path, f"label image is {ids.shape[1]}x{ids.shape[0]} but its image "
                                               f"is {ws}x{hs}")
        label = resize_label(ids, geo.size, geo.crop_top)
    else:
        # an explicit width draws the polylines even where the dataset ships label images
        width = geo.line_width or scaled_line_width(geo.line_width_at_source, (hs, ws), geo.size,
                                                    geo.crop_top)
        label = render_label(sample.lanes, sample.slots, (hs, ws), geo.size, geo.crop_top, width)
    if geo.storage == "raw":
        stored = image
    else:
        # 4:4:4 chroma: thin yellow/white markings keep their colour at full resolution (~15% larger files)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, geo.jpeg_quality,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
            raise RuntimeError("JPEG encoding failed")
        stored = buf.reshape(-1)
    exist = np.asarray(sample.exist, np.uint8).reshape(-1)
    if exist.shape[0] != geo.num_slots:
        raise DataError(where, f"{exist.shape[0]} existence flags, dataset has {geo.num_slots} slots")
    return PreparedSample(
        image=stored, label=label, exist=exist, source_size=(hs, ws),
        lanes=[np.asarray(lane, np.float32).reshape(-1, 2) for lane in sample.lanes],
        slots=[int(s) for s in sample.slots], name=sample.name, category=sample.category or "",
        checksum=sample_checksum(stored, label),
    )


_WORKER_GEO: _Geometry | None = None


def _init_worker(geo: _Geometry) -> None:
    global _WORKER_GEO
    _WORKER_GEO = geo
    cv2.setNumThreads(1)  # parallelism comes from processes; OpenCV threads would oversubscribe


def _work(item: LaneSample | int,
          geo: _Geometry | None = None) -> PreparedSample | tuple[str, str, str, int | None]:
    """Worker entry: a prepared sample, or ``("error", path, message, line)`` (DataError is not picklable)."""
    geo = geo or _WORKER_GEO
    assert geo is not None
    try:
        if isinstance(item, int):
            from lanekd.data.synthetic import render_scene
            from lanekd.data.synthetic_domain import DomainRandomization

            sample = render_scene(geo.synthetic_seed, item, geo.synthetic_split, geo.synthetic_source_size,
                                  DomainRandomization.parse(geo.randomize))
        else:
            sample = item
        return prepare_sample(sample, geo)
    except DataError as e:
        message = e.message
        if isinstance(item, LaneSample) and item.source is not None and e.path != item.source[0]:
            src, line = item.source
            message += f" (listed at {src}:{line})" if line is not None else f" (listed in {src})"
        return ("error", e.path, message, e.line)


# --- the pipeline ------------------------------------------------------------------------------
def _ordered_map(items: Iterable[Any], geo: _Geometry, workers: int) -> Iterator[tuple[Any, Any]]:
    """Yield ``(item, result)`` in input order, processing up to ``workers`` items in parallel."""
    if workers <= 1:
        for item in items:
            yield item, _work(item, geo)
        return
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with h5py/OpenCV threads in the parent
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(geo,))
    try:
        window: deque[tuple[Any, Any]] = deque()
        for item in items:
            window.append((item, pool.apply_async(_work, (item,))))
            if len(window) >= 4 * workers:
                it, res = window.popleft()
                yield it, res.get()
        while window:
            it, res = window.popleft()
            yield it, res.get()
    finally:
        pool.terminate()
        pool.join()


def skipped_path_for(out: str | Path) -> Path:
    """``<out>.skipped.json``: the list of samples skipped with ``on_error="skip"``."""
    out = Path(out)
    return out.with_name(out.name + ".skipped.json")


def prepare_dataset(
    dataset: str,
    out: str | Path,
    root: str | Path | None = None,
    split: str = "train",
    size: tuple[int, int] | None = None,
    crop_top: int | None = None,
    workers: int = 1,
    resume: bool = False,
    on_error: str = "fail",
    storage: str = "encoded",
    n: int | None = None,
    seed: int = 0,
    samples: Iterable[LaneSample] | None = None,
    jpeg_quality: int = 95,
    mean: tuple[float, float, float] = DEFAULT_MEAN,
    std: tuple[float, float, float] = DEFAULT_STD,
    flush_every: int = 64,
    flush_seconds: float = 2.0,
    quiet: bool = True,
    line_width: int | None = None,
    randomize: str = "",
) -> PrepareResult:
    """Convert a dataset split into a lanekd HDF5 file.

    Args:
        dataset: a key of ``lanekd.data.formats.info.DATASETS``, where its geometry defaults come from.
        out: the ``.h5`` file to write.
        root: dataset root folder (not used for ``synthetic`` or when ``samples`` is given).
        split: ``train``, ``val`` or ``test`` (or what the reader accepts).
        size: training size ``(H, W)``; default the dataset's ``default_size``.
        crop_top: source rows dropped before resizing; default the dataset's.
        workers: worker processes (1 = in-process).
        resume: continue an interrupted conversion of the same invocation.
        on_error: ``"fail"`` (first bad sample aborts, nothing left behind) or ``"skip"``.
        storage: ``"encoded"`` (JPEG bytes) or ``"raw"`` (uint8 arrays).
        n, seed: number of scenes and seed for ``synthetic``.
        samples: explicit samples to convert instead of reading ``root`` (library use, tests).
        jpeg_quality: JPEG quality of encoded storage.
        line_width: label line width in training-size pixels, drawn from the polylines (default: the
            dataset's official width scaled to ``size``, e.g. CULane's 16 px at 1640 -> 4 px at 400).
            Only the training labels change; evaluation always scores source-frame polylines.
        randomize: ``synthetic`` only: dashcam-look randomisations of the scenes
            (:class:`~lanekd.data.synthetic_domain.DomainRandomization` spec, e.g. ``"all"`` or
            ``"hood,lens"``), stored in the ``randomize`` attribute.
        mean, std: RGB normalisation stored in the attributes (used by :class:`LaneDataset`).
        flush_every, flush_seconds: commit at least every this many samples / seconds (resume granularity).
        quiet: no progress bar.

    Raises:
        DataError: a bad sample in ``fail`` mode (the temporary file is removed).
        ConfigError: bad options, or a resume whose parameters differ from the partial file's.
    """
    t0 = time.perf_counter()
    if storage not in STORAGES:
        raise ConfigError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    policy = ErrorPolicy(on_error)  # type: ignore[arg-type]
    from lanekd.data.formats.info import get_info

    info = get_info(dataset)
    size = check_size(size) if size is not None else tuple(info.default_size)  # type: ignore[assignment]
    crop_top = int(info.crop_top if crop_top is None else crop_top)
    if line_width is not None and not 1 <= line_width <= 64:
        raise ConfigError(f"line width must be in 1..64 px, got {line_width}")
    if crop_top < 0:
        raise ConfigError(f"crop_top must be >= 0, got {crop_top}")
    out = Path(out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"output must end in .h5 or .hdf5: {out}")
    check_output_file(out)  # an unusable --out fails now, not after the whole conversion
    synthetic = dataset == "synthetic" and samples is None
    from lanekd.data.synthetic_domain import DomainRandomization

    randomize = DomainRandomization.parse(randomize).spec()  # an unknown option fails here, before any work
    if randomize and not synthetic:
        raise ConfigError("randomisation applies to the synthetic dataset only")
    if synthetic:
        n = 2000 if n is None else int(n)
        if n < 0:
            raise ConfigError(f"--n must be >= 0, got {n}")
    elif samples is None and root is None:
        raise ConfigError(f"--root is required for dataset {dataset!r}")
    source_size = tuple(info.source_size)
    geo = _Geometry(dataset=dataset, size=size, crop_top=crop_top, num_slots=info.num_slots,  # type: ignore[arg-type]
                    num_classes=info.num_classes,
                    line_width_at_source=float(info.line_width_at_source),
                    label_format=getattr(info, "label_format", None), storage=storage,
                    jpeg_quality=int(jpeg_quality), synthetic_seed=int(seed), synthetic_split=split,
                    synthetic_source_size=source_size, line_width=line_width,  # type: ignore[arg-type]
                    randomize=randomize)
    params = {"dataset": dataset, "split": split, "size": list(size), "crop_top": crop_top,
              "storage": storage,
              "root": str(Path(root).resolve()) if root is not None else None,
              "n": n if synthetic else None, "seed": seed if synthetic else None, "on_error": on_error,
              "jpeg_quality": int(jpeg_quality), "mean": list(mean), "std": list(std),
              "format_version": FORMAT_VERSION, "line_width": line_width, "randomize": randomize}
    from lanekd import __version__

    attrs = {
        "dataset": dataset, "split": split, "size": size, "source_size": source_size, "crop_top": crop_top,
        "mean": mean, "std": std, "num_slots": info.num_slots, "num_classes": info.num_classes,
        "line_width": line_width or (scaled_line_width(info.line_width_at_source, source_size, size, crop_top)
                                     if source_size[0] else -1),
        "decode_profile": info.decode_profile, "randomize": randomize,
        "image_format": "rgb" if storage == "raw" else "jpeg", "jpeg_quality": int(jpeg_quality),
        "root": params["root"] or "", "created_by": f"lanekd {__version__}",
        "params": json.dumps(params, sort_keys=True),
    }

    source: Iterable[Any]
    if synthetic:
        source = range(n)  # type: ignore[arg-type]
    elif samples is None:
        from lanekd.data.formats import read_dataset

        source = read_dataset(dataset, root, split, policy)  # raises now if the split's list is missing
    else:
        source = samples

    tmp = tmp_path_for(out)
    start = 0
    worker_skipped: list[dict[str, Any]] = []
    writer: H5Writer | None = None
    if resume and tmp.exists():
        try:
            old = read_attrs(tmp)
        except OSError:
            old = None  # unreadable partial file (killed while creating it): start again
        if old is not None:
            if old.get("params") != attrs["params"]:
                raise ConfigError(f"cannot resume {tmp}: it was written with different options "
                                  f"({_param_diff(old.get('params'), attrs['params'])}); "
                                  "rerun without --resume to start again")
            writer = H5Writer(tmp, attrs, storage, resume=True)
            start = int(old.get("next_input", 0))
            worker_skipped = json.loads(old.get("skipped", "[]"))
    if writer is None:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = H5Writer(tmp, attrs, storage)
        except BaseException:  # e.g. disk full while creating it: leave no partial file behind
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
    resumed_from = writer.count
    if synthetic:
        items: Iterable[Any] = range(start, n)  # type: ignore[arg-type]
        total: int | None = n - start  # type: ignore[operator]
    else:
        items = itertools.islice(source, start, None)
        total = None

    if synthetic and total is not None:
        workers = max(1, min(workers, -(-total // 16)))  # tiny jobs are not worth starting processes
    from lanekd.utils.progress import track

    batch: list[PreparedSample] = []
    index = start
    last_flush = time.monotonic()
    results = _ordered_map(items, geo, workers)
    progress = track(results, total=total, description=f"prepare {dataset}/{split}", quiet=quiet)
    try:
        for item, result in progress:
            if isinstance(result, tuple):
                _, path, message, line = result
                if policy.mode == "fail":
                    raise DataError(path, message, line)
                # recorded here (with its input index) rather than in policy.skipped, which holds the
                # reader's errors and is rebuilt on every run
                name = item.name if isinstance(item, LaneSample) else f"synthetic/{split}/{item}"
                worker_skipped.append({"index": index, "name": name, "file": path, "line": line,
                                       "error": message})
            else:
                batch.append(result)
            index += 1
            if len(batch) >= flush_every or (batch and time.monotonic() - last_flush > flush_seconds):
                writer.append(batch)
                writer.commit(index, worker_skipped)
                batch = []
                last_flush = time.monotonic()
        writer.append(batch)
        writer.commit(index, worker_skipped)
        writer.finalize()
    except (KeyboardInterrupt, SystemExit):
        _close(progress, results)
        writer.close()  # keep the partial file (committed part) for --resume
        raise
    except BaseException:
        _close(progress, results)  # stops the worker pool before the file goes away
        writer.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, out)

    # Reader-level problems (bad list lines, annotations) are re-detected on every run, so resumed
    # and uninterrupted runs report the same list.
    skipped = [{"index": None, "name": None, "file": e.path, "line": e.line, "error": e.message}
               for e in policy.skipped] + worker_skipped
    skipped_file = skipped_path_for(out)
    if skipped:
        write_json_atomic(skipped_file, {"output": str(out), "count": len(skipped), "skipped": skipped})
    else:
        with contextlib.suppress(FileNotFoundError):
            skipped_file.unlink()
    return PrepareResult(out=out, dataset=dataset, split=split, count=writer.count, skipped=skipped,
                         skipped_file=skipped_file if skipped else None, size=size,  # type: ignore[arg-type]
                         storage=storage, bytes=out.stat().st_size, seconds=time.perf_counter() - t0,
                         resumed_from=resumed_from)


def _close(*generators: Any) -> None:
    for g in generators:
        with contextlib.suppress(Exception):
            g.close()


def _param_diff(old: str | None, new: str) -> str:
    try:
        a, b = json.loads(old or "{}"), json.loads(new)
    except json.JSONDecodeError:
        return "unreadable parameters"
    diff = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(diff) or "none"
