"""``lanekd predict``: batched inference over images and videos with the shared decoder."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Literal

import cv2
import numpy as np

from lanekd.data.policy import ErrorPolicy
from lanekd.errors import ConfigError, DataError
from lanekd.inference.backends import Backend
from lanekd.inference.lanes import infer_lanes
from lanekd.inference.preprocess import preprocess_batch
from lanekd.predict.draw import draw_lanes
from lanekd.predict.inputs import Source, VideoReader, expand_inputs, read_image
from lanekd.utils.io import atomic_path, tmp_path_for
from lanekd.utils.progress import use_progress_bar

OutputFormat = Literal["culane", "tusimple", "overlay", "json"]
FORMATS: tuple[str, ...] = ("culane", "tusimple", "overlay", "json")


@dataclass
class Frame:
    """One frame to predict: the RGB image and where its outputs go."""

    source: Source
    index: int  # frame number within a video, 0 for images
    image: np.ndarray


@dataclass
class PredictSummary:
    images: int = 0
    videos: int = 0
    frames: int = 0
    lanes: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, object]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        return {"images": self.images, "videos": self.videos, "frames": self.frames, "lanes": self.lanes,
                "seconds": round(self.seconds, 3), "fps": round(fps, 2), "skipped": self.skipped,
                "outputs": self.outputs}


#: formats that record each frame's inference time (TuSimple's evaluator scores it)
TIMED_FORMATS = ("tusimple", "json")


def decode_batch(backend: Backend, images: list[np.ndarray], spline: bool = True,
                 **decode_options: float) -> list[list[np.ndarray]]:
    """Run the model on RGB frames and decode lanes in each frame's own pixel coordinates.

    The decoder works in the profile's source geometry (e.g. 590x1640 for CULane); frames of
    another size were resized to the same network input, so their lanes are scaled back.
    ``decode_options`` override profile fields (``threshold``, ``exist_threshold``...). Lanes
    come from :func:`lanekd.inference.infer_lanes`, as in validation (same slot-presence rule for
    a network without an existence branch).
    """
    from lanekd.decode import get_profile

    meta = backend.meta
    prof = get_profile(meta.profile, **decode_options)
    decoded, _, _ = infer_lanes(backend, preprocess_batch(images, meta), prof, spline=spline)
    src_h, src_w = prof.source_size
    for img, lanes in zip(images, decoded, strict=True):
        h, w = img.shape[:2]
        if (h, w) != (src_h, src_w):
            scale = np.array([w / src_w, h / src_h])
            lanes[:] = [lane * scale for lane in lanes]
    return decoded


class _Sink:
    """Writes one output format; ``close`` finalises files atomically."""

    def __init__(self, fmt: str, out: str, meta_profile: str) -> None:
        self.fmt = fmt
        self.to_stdout = out == "-"
        if self.to_stdout and fmt != "json":
            raise ConfigError("--out - (stdout) is only available with --format json")
        self.out = Path(out) if not self.to_stdout else None
        self.profile = meta_profile
        self.written: list[str] = []
        self._json: IO[str] | None = None
        self._video: cv2.VideoWriter | None = None
        self._video_paths: tuple[Path, Path] | None = None  # (temporary, final)
        self._tusimple: list[dict[str, object]] = []
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            if self.to_stdout:
                self._json = sys.stdout
            else:
                assert self.out is not None
                self._json = open(tmp_path_for(self.out / "predictions.jsonl"), "w")  # noqa: SIM115

    def start_video(self, source: Source, fps: float, size: tuple[int, int]) -> None:
        if self.fmt != "overlay" or self.out is None:
            return
        target = self.out / source.rel.with_suffix(".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        # OpenCV picks the container from the extension, so the temporary name keeps ".mp4".
        tmp = target.with_name(f".{target.stem}.tmp.mp4")
        self._video = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
        self._video_paths = (tmp, target)

    def end_video(self) -> None:
        if self._video is None or self._video_paths is None:
            return
        self._video.release()
        tmp, target = self._video_paths
        os.replace(tmp, target)
        self.written.append(str(target))
        self._video, self._video_paths = None, None

    def write(self, frame: Frame, lanes: list[np.ndarray], run_time_ms: float) -> None:
        from lanekd.decode import write_culane_lines

        rel = frame.source.rel
        if frame.source.is_video:
            rel = rel.with_suffix("") / f"{frame.index:06d}.jpg"
        if self.fmt == "culane":
            assert self.out is not None
            target = self.out / rel.with_suffix(".lines.txt")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_culane_lines(target, lanes)
            self.written.append(str(target))
        elif self.fmt == "overlay":
            drawn = draw_lanes(frame.image, lanes)
            if self._video is not None:
                self._video.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            else:
                assert self.out is not None
                target = self.out / rel.with_suffix(".jpg")
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:
                    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                    tmp.write_bytes(buf.tobytes())
                self.written.append(str(target))
        elif self.fmt == "json":
            assert self._json is not None
            record = {"input": str(frame.source.path), "frame": frame.index, "name": rel.as_posix(),
                      "size": [int(frame.image.shape[0]), int(frame.image.shape[1])],
                      "lanes": [np.round(lane, 2).tolist() for lane in lanes],
                      "run_time_ms": round(run_time_ms, 3)}
            self._json.write(json.dumps(record) + "\n")
            if self.to_stdout:
                self._json.flush()
        elif self.fmt == "tusimple":
            self._tusimple.append({"raw_file": rel.as_posix(), "lanes": lanes, "run_time": run_time_ms,
                                   "h_samples": self._h_samples(frame.image.shape[0])})

    def _h_samples(self, height: int) -> list[int]:
        """TuSimple rows: the benchmark's own for 720-row frames, else every 10 px from the top."""
        from lanekd.decode import TUSIMPLE_H_SAMPLES

        return list(TUSIMPLE_H_SAMPLES) if height == 720 else list(range(0, height, 10))

    def close(self) -> None:
        self.end_video()
        if self._json is not None and not self.to_stdout:
            self._json.close()
            assert self.out is not None
            final = self.out / "predictions.jsonl"
            os.replace(tmp_path_for(final), final)
            self.written.append(str(final))
        if self.fmt == "tusimple" and self.out is not None:
            from lanekd.decode import write_tusimple_json

            target = self.out / "predictions.json"
            write_tusimple_json(target, [r["raw_file"] for r in self._tusimple],
                                [r["lanes"] for r in self._tusimple],
                                [r["h_samples"] for r in self._tusimple],
                                [r["run_time"] for r in self._tusimple])
            self.written.append(str(target))


def _frames(sources: list[Source], policy: ErrorPolicy, sink: _Sink,
            summary: PredictSummary) -> Iterator[Frame | None]:
    """Yield frames; ``None`` marks the end of a video so the sink can close it."""
    for src in sources:
        try:
            if src.is_video:
                reader = VideoReader(src.path)
                summary.videos += 1
                sink.start_video(src, reader.fps, reader.size)
                for i, image in enumerate(reader):
                    yield Frame(src, i, image)
                yield None
            else:
                image = read_image(src.path)
                summary.images += 1
                yield Frame(src, 0, image)
        except DataError as e:
            policy(e)


def _relative_to_root(sources: list[Source], root: Path) -> list[Source]:
    if not root.is_dir():
        raise DataError(root, "--root: no such folder")
    base = root.resolve()
    out = []
    for src in sources:
        try:
            rel = src.path.resolve().relative_to(base)
        except ValueError:
            raise DataError(src.path, f"is not inside --root {root}") from None
        out.append(replace(src, rel=rel))
    return out


def _refuse_colliding_outputs(sources: list[Source]) -> None:
    """Two different inputs whose outputs would share a name (``a/20.jpg`` and ``b/20.jpg``, as in
    TuSimple's clips) are refused before any work, instead of the second overwriting the first."""
    seen: dict[Path, Path] = {}
    for src in sources:
        key = src.rel.with_suffix("")
        first = seen.setdefault(key, src.path)
        if first != src.path:
            raise DataError(src.path, f"would write the same output name as {first} ({key}.*); pass --root "
                            "with a folder above both to mirror their paths")


def predict(backend: Backend, inputs: list[str], out: str, fmt: str = "culane", batch: int = 8,
            on_error: str = "fail", spline: bool = True, quiet: bool = False,
            root: str | Path | None = None, **decode_options: float) -> PredictSummary:
    """Predict lanes for every frame of ``inputs`` and write them in ``fmt`` under ``out``.

    Frames are processed ``batch`` at a time, so a long video is streamed in bounded memory.
    ``root``: outputs mirror each input's path relative to this folder (a dataset root), so predicting
    ``DATA/driver_x/test/`` writes ``OUT/driver_x/test/...`` as ``evaluate --gt DATA`` expects; every
    input must lie under it. ``decode_options`` override decoder profile fields (e.g. ``threshold=0.3``).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    if batch < 1:
        raise ConfigError("--batch must be at least 1")
    sources = expand_inputs(inputs)
    if root is not None:
        sources = _relative_to_root(sources, Path(root))
    if out != "-":
        _refuse_colliding_outputs(sources)
    policy = ErrorPolicy(on_error)  # type: ignore[arg-type]
    sink = _Sink(fmt, out, backend.meta.profile)
    summary = PredictSummary()
    start = time.perf_counter()
    progress = None
    if use_progress_bar(quiet):
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("predict", total=None)

    pending: list[Frame] = []
    warm = fmt not in TIMED_FORMATS

    def flush() -> None:
        nonlocal warm
        if not pending:
            return
        if not warm:
            # the first forward pays one-off set-up (kernel selection, allocation): on a 2-core CPU it
            # doubled the per-frame time of a 368x640 ENet-SAD to over the 200 ms at which TuSimple's
            # evaluator zeroes a frame, so the recorded time is the steady-state one (a forward
            # pass warms the runtime; decoding is numpy and needs no warming)
            backend.run(preprocess_batch([f.image for f in pending], backend.meta))
            warm = True
        t0 = time.perf_counter()
        lanes = decode_batch(backend, [f.image for f in pending], spline=spline, **decode_options)
        per_frame_ms = (time.perf_counter() - t0) * 1000 / len(pending)
        for frame, frame_lanes in zip(pending, lanes, strict=True):
            sink.write(frame, frame_lanes, per_frame_ms)
            summary.lanes += sum(1 for lane in frame_lanes if len(lane))
        summary.frames += len(pending)
        if progress is not None:
            progress.advance(task, len(pending))
        pending.clear()

    try:
        for frame in _frames(sources, policy, sink, summary):
            if frame is None:  # end of a video
                flush()
                sink.end_video()
                continue
            pending.append(frame)
            if len(pending) >= batch:
                flush()
        flush()
        sink.close()
    finally:
        if progress is not None:
            progress.stop()
    summary.seconds = time.perf_counter() - start
    summary.skipped = policy.report()
    summary.outputs = sink.written
    return summary
