"""Expand predict's INPUT arguments (images, folders, globs, videos) into frames."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanekd.errors import DataError, LaneKDError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MEDIA_EXTS = IMAGE_EXTS | VIDEO_EXTS


@dataclass(frozen=True)
class Source:
    """One input file. ``rel`` is the path outputs mirror (relative to the folder given)."""

    path: Path
    rel: Path
    is_video: bool


def _classify(path: Path, rel: Path) -> Source:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return Source(path, rel, True)
    if ext in IMAGE_EXTS:
        return Source(path, rel, False)
    raise DataError(path, f"not an image or video file (extensions: {', '.join(sorted(MEDIA_EXTS))})")


def expand_inputs(inputs: list[str]) -> list[Source]:
    """Resolve INPUT arguments: a file, a folder (recursive) or a glob pattern.

    Folders contribute every image and video below them, sorted, with paths relative to the
    folder's parent (``DIR/a/b.jpg`` -> ``DIR_NAME/a/b.jpg``); files and glob matches keep their
    file name.
    """
    sources: list[Source] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_EXTS)
            # keep the folder's own name, so predicting DATA/driver_100_30frame writes
            # OUT/driver_100_30frame/... and the tree lines up with the dataset for `evaluate`
            sources += [_classify(f, Path(p.resolve().name) / f.relative_to(p)) for f in found]
        elif p.is_file():
            sources.append(_classify(p, Path(p.name)))
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise LaneKDError(f"{text}: the pattern matches no file")
            sources += [_classify(m, Path(m.name)) for m in matches]
        else:
            raise DataError(p, "no such file or folder")
    if not sources:
        raise LaneKDError(f"no image or video found in: {' '.join(inputs)}")
    return sources


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB (content sniffed, not the extension)."""
    data = np.fromfile(str(path), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DataError(path, "cannot decode image (corrupt, truncated or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class VideoReader:
    """Stream frames of a video file as RGB arrays (bounded memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cap = cv2.VideoCapture(str(path))
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok or first is None:
            self.cap.release()
            raise DataError(path, "cannot read video (not a video file or unsupported codec)")
        self._first: np.ndarray | None = first
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 25.0
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.size = (first.shape[0], first.shape[1])

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            if self._first is not None:
                frame, self._first = self._first, None
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            while True:
                ok, frame = self.cap.read()
                if not ok:
                    break
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            self.cap.release()
