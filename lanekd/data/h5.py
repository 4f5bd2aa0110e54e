"""lanekd's HDF5 training-data format: writer, lazy reader (:class:`LaneH5`) and integrity check.

One file holds one split, already at the training size. The layout is documented in
``docs/hdf5.md`` (readable with h5py alone). Summary, ``N`` samples, ``L`` slots, ``(H, W)`` size:

* ``images`` (N, H, W, 3) uint8 RGB when ``attrs["storage"] == "raw"``; otherwise the encoded
  image files (``attrs["image_format"]``, JPEG by default) concatenated in ``image_bytes`` (B,) uint8
  with ``image_offsets`` (N+1,) int64 (sample ``i`` is ``image_bytes[o[i]:o[i+1]]``, BGR when decoded
  by OpenCV as usual);
* ``labels`` (N, H, W) uint8, gzip-compressed, one chunk per sample;
* ``exist`` (N, L) uint8; ``source_sizes`` (N, 2) int32 ``(Hs, Ws)``;
* source polylines: ``lane_points`` (P, 2) float32, ``lane_offsets`` (K+1,) int64 (points of lane
  ``k``), ``lane_slots`` (K,) uint8, ``sample_lanes`` (N+1,) int64 (lanes of sample ``i``);
* ``names``, ``categories`` (N,) UTF-8 strings; ``checksums`` (N,) uint32 (CRC-32 of the stored image
  bytes followed by the label bytes).

Every array grows along axis 0 while a conversion runs; ``attrs["count"]`` is the number of fully
written samples and is updated at each flush, which is what makes ``prepare --resume`` possible
after a SIGKILL.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from lanekd.errors import DataError

FORMAT_NAME = "lanekd-h5"
FORMAT_VERSION = 1
STORAGES = ("encoded", "raw")

# Torch-code normalisation of the SCNN lineage (RGB in [0, 1]), XingangPan/SCNN datasets/lane.lua.
DEFAULT_MEAN = (0.3598, 0.3653, 0.3662)
DEFAULT_STD = (0.2573, 0.2663, 0.2756)

_IMAGE_BYTES_CHUNK = 1 << 16
_STAGING = "_staging"  # names/categories are kept as flat bytes until the file is complete


@dataclass
class PreparedSample:
    """One sample ready to be written: image at the training size (encoded bytes or raw RGB array),
    label map, flags, source polylines and identity."""

    image: np.ndarray  # encoded: (B,) uint8 bytes; raw: (H, W, 3) uint8 RGB
    label: np.ndarray  # (H, W) uint8
    exist: np.ndarray  # (L,) uint8
    source_size: tuple[int, int]
    lanes: list[np.ndarray] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    name: str = ""
    category: str = ""
    checksum: int = 0


def sample_checksum(image: np.ndarray, label: np.ndarray) -> int:
    """CRC-32 of the stored image bytes followed by the label bytes (C order)."""
    crc = zlib.crc32(np.ascontiguousarray(image).data)
    return zlib.crc32(np.ascontiguousarray(label).data, crc) & 0xFFFFFFFF


def _ragged_append(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    if len(values):
        ds[n:] = values


class H5Writer:
    """Appends :class:`PreparedSample` batches to a (new or resumed) lanekd HDF5 file.

    Args:
        path: the file to write (the caller passes the temporary name).
        attrs: file attributes (dataset, split, size, ...); ``size`` and ``num_slots`` are required.
        storage: ``"encoded"`` or ``"raw"``.
        resume: open an existing partial file and truncate it to its committed ``count``.
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any], storage: str = "encoded",
                 resume: bool = False) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        self.storage = storage
        h, w = (int(v) for v in attrs["size"])
        num_slots = int(attrs["num_slots"])
        if resume:
            self.f = h5py.File(self.path, "a")
            self._n = int(self.f.attrs["count"])
            self._truncate_to(self._n)
            return
        self._n = 0
        # Default (earliest) format on purpose: libver="latest" marks the file "open for writing" in its
        # superblock, and a file left so by a SIGKILL could not be reopened for --resume without h5clear.
        self.f = f = h5py.File(self.path, "w")
        for key, value in attrs.items():
            f.attrs[key] = _attr_value(value)
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["storage"] = storage
        f.attrs["count"] = 0
        f.attrs["complete"] = False
        f.attrs["next_input"] = 0
        f.attrs["skipped"] = "[]"
        if storage == "raw":
            f.create_dataset("images", (0, h, w, 3), np.uint8, maxshape=(None, h, w, 3), chunks=(1, h, w, 3))
        else:
            f.create_dataset("image_bytes", (0,), np.uint8, maxshape=(None,), chunks=(_IMAGE_BYTES_CHUNK,))
            f.create_dataset("image_offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        f.create_dataset("labels", (0, h, w), np.uint8, maxshape=(None, h, w), chunks=(1, h, w),
                         compression="gzip", compression_opts=1)
        # maxshape None on both axes: HDF5 rejects a chunk wider than a fixed 0-slot dimension (ApolloScape)
        f.create_dataset("exist", (0, num_slots), np.uint8, maxshape=(None, None),
                         chunks=(4096, max(1, num_slots)))
        f.create_dataset("source_sizes", (0, 2), np.int32, maxshape=(None, 2), chunks=(4096, 2))
        f.create_dataset("checksums", (0,), np.uint32, maxshape=(None,), chunks=(4096,))
        f.create_dataset("lane_points", (0, 2), np.float32, maxshape=(None, 2), chunks=(8192, 2))
        f.create_dataset("lane_offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        f.create_dataset("lane_slots", (0,), np.uint8, maxshape=(None,), chunks=(4096,))
        f.create_dataset("sample_lanes", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        g = f.create_group(_STAGING)
        for key in ("name", "category"):
            g.create_dataset(f"{key}_bytes", (0,), np.uint8, maxshape=(None,), chunks=(1 << 14,))
            g.create_dataset(f"{key}_offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        f.flush()

    @property
    def count(self) -> int:
        """Samples appended so far (committed or not)."""
        return self._n

    def _truncate_to(self, n: int) -> None:
        """Drop anything written after the last commit (a SIGKILL may leave partial tails)."""
        f = self.f
        if "images" in f:
            f["images"].resize(n, axis=0)
        else:
            offs = f["image_offsets"]
            offs.resize(n + 1, axis=0)
            f["image_bytes"].resize(int(offs[n]), axis=0)
        for key in ("labels", "exist", "source_sizes", "checksums"):
            f[key].resize(n, axis=0)
        sl = f["sample_lanes"]
        sl.resize(n + 1, axis=0)
        k = int(sl[n])
        f["lane_slots"].resize(k, axis=0)
        lo = f["lane_offsets"]
        lo.resize(k + 1, axis=0)
        f["lane_points"].resize(int(lo[k]), axis=0)
        g = f[_STAGING]
        for key in ("name", "category"):
            o = g[f"{key}_offsets"]
            o.resize(n + 1, axis=0)
            g[f"{key}_bytes"].resize(int(o[n]), axis=0)

    def append(self, batch: Sequence[PreparedSample]) -> None:
        """Write a batch of samples after the current ones (not committed until :meth:`commit`)."""
        if not batch:
            return
        f = self.f
        n0 = self.count
        n1 = n0 + len(batch)
        if self.storage == "raw":
            ds = f["images"]
            ds.resize(n1, axis=0)
            ds[n0:n1] = np.stack([s.image for s in batch])
        else:
            offs = f["image_offsets"]
            base = int(offs[n0])
            lengths = np.array([s.image.size for s in batch], np.int64)
            _ragged_append(f["image_bytes"], np.concatenate([s.image.reshape(-1) for s in batch]))
            offs.resize(n0 + 1, axis=0)
            _ragged_append(offs, base + np.cumsum(lengths))
        for key, values in (("labels", np.stack([s.label for s in batch])),
                            ("exist", np.stack([s.exist for s in batch]).astype(np.uint8)),
                            ("source_sizes", np.array([s.source_size for s in batch], np.int32)),
                            ("checksums", np.array([s.checksum for s in batch], np.uint32))):
            ds = f[key]
            ds.resize(n0, axis=0)
            _ragged_append(ds, values)
        # polylines
        sl = f["sample_lanes"]
        sl.resize(n0 + 1, axis=0)
        k0 = int(sl[n0])
        lo = f["lane_offsets"]
        lo.resize(k0 + 1, axis=0)
        p0 = int(lo[k0])
        lanes = [np.asarray(lane, np.float32).reshape(-1, 2) for s in batch for lane in s.lanes]
        slots = np.array([slot for s in batch for slot in s.slots], np.uint8)
        f["lane_slots"].resize(k0, axis=0)
        _ragged_append(f["lane_slots"], slots)
        f["lane_points"].resize(p0, axis=0)
        _ragged_append(f["lane_points"], np.concatenate(lanes) if lanes else np.zeros((0, 2), np.float32))
        _ragged_append(lo, p0 + np.cumsum([len(lane) for lane in lanes], dtype=np.int64))
        _ragged_append(sl, k0 + np.cumsum([len(s.lanes) for s in batch], dtype=np.int64))
        g = f[_STAGING]
        for key in ("name", "category"):
            encoded = [getattr(s, key).encode("utf-8") for s in batch]
            o = g[f"{key}_offsets"]
            o.resize(n0 + 1, axis=0)
            base = int(o[n0])
            g[f"{key}_bytes"].resize(base, axis=0)
            _ragged_append(g[f"{key}_bytes"], np.frombuffer(b"".join(encoded), np.uint8))
            _ragged_append(o, base + np.cumsum([len(e) for e in encoded], dtype=np.int64))
        self._n = n1

    def commit(self, next_input: int, skipped: list[dict[str, Any]]) -> None:
        """Mark everything appended so far as complete and flush it to disk."""
        self.f.attrs["count"] = self._n
        self.f.attrs["next_input"] = int(next_input)
        self.f.attrs["skipped"] = json.dumps(skipped)
        self.f.flush()

    def finalize(self) -> None:
        """Turn staged names/categories into string datasets, mark the file complete, close it."""
        f = self.f
        g = f[_STAGING]
        str_dt = h5py.string_dtype("utf-8")
        for key, target in (("name", "names"), ("category", "categories")):
            data = g[f"{key}_bytes"][()].tobytes()
            offs = g[f"{key}_offsets"][()]
            values = [data[offs[i]:offs[i + 1]].decode("utf-8") for i in range(len(offs) - 1)]
            f.create_dataset(target, data=np.array(values, dtype=object), dtype=str_dt)
        del f[_STAGING]
        f.attrs["complete"] = True
        f.attrs["num_samples"] = self.count
        f.flush()
        f.close()

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


def _attr_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return np.asarray(value)
    if value is None:
        return ""
    return value


def _py(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(v.item() for v in value.reshape(-1))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The file attributes as plain Python values (tuples for arrays)."""
    with h5py.File(path, "r") as f:
        return {k: _py(v) for k, v in f.attrs.items()}


class LaneH5:
    """Lazy, fork-safe reader of a lanekd HDF5 file.

    The h5py handle is opened on first access in each process (a DataLoader worker forked or spawned
    after the dataset was built opens its own), so one ``LaneH5`` can be shared with workers.

    ``ds[i]`` returns a dict: ``image`` (H, W, 3) uint8 RGB, ``label`` (H, W) uint8, ``exist`` (L,)
    uint8, ``name`` str (verbatim from the list file), ``lanes`` list of (N, 2) float32 arrays of
    source-pixel ``(x, y)`` (present lanes only, in slot order), ``slots`` list of their 0-based slots,
    ``category`` str (``""`` if none), ``source_size`` ``(Hs, Ws)``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "no such HDF5 file")
        self._file: h5py.File | None = None
        self._pid = -1
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs: dict[str, Any] = {k: _py(v) for k, v in f.attrs.items()}
                if self.attrs.get("format") != FORMAT_NAME:
                    raise DataError(self.path, "not a lanekd HDF5 file (missing format attribute)")
                if int(self.attrs.get("format_version", -1)) > FORMAT_VERSION:
                    raise DataError(self.path, f"format version {self.attrs['format_version']} is newer than "
                                               f"this lanekd supports ({FORMAT_VERSION})")
                if not self.attrs.get("complete", False):
                    raise DataError(self.path, "incomplete file (conversion did not finish)")
                self._len = int(self.attrs["count"])
                # Small per-sample index arrays are kept in memory; pixels are read on demand.
                self._encoded = "image_offsets" in f
                self._image_offsets = f["image_offsets"][()] if self._encoded else None
                self.names: list[str] = [s.decode("utf-8") if isinstance(s, bytes) else s
                                         for s in f["names"][()]]
                self.categories: list[str] = [s.decode("utf-8") if isinstance(s, bytes) else s
                                              for s in f["categories"][()]]
                self.exist: np.ndarray = f["exist"][()]
                self._source_sizes = f["source_sizes"][()]
                self._sample_lanes = f["sample_lanes"][()]
                self._lane_offsets = f["lane_offsets"][()]
                self._lane_slots = f["lane_slots"][()]
        except OSError as e:
            raise DataError(self.path, f"cannot read HDF5 file ({e})") from None
        except KeyError as e:
            raise DataError(self.path, f"malformed lanekd HDF5 file (missing {e})") from None
        self.size: tuple[int, int] = tuple(int(v) for v in self.attrs["size"])  # type: ignore[assignment]
        self.num_slots = int(self.attrs["num_slots"])

    # -- handle management -------------------------------------------------------------------
    def _h5(self) -> h5py.File:
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            # A handle inherited through fork must not be used (HDF5 is not fork safe): open anew.
            self._file = h5py.File(self.path, "r")
            self._pid = pid
            # Dataset objects are looked up once: a name lookup costs as much as a small read.
            self._dsets = {k: self._file[k] for k in ("image_bytes", "images", "labels", "lane_points")
                           if k in self._file}
        return self._file

    def _ds(self, name: str) -> h5py.Dataset:
        self._h5()
        return self._dsets[name]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = -1
        state.pop("_dsets", None)
        return state

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __enter__(self) -> LaneH5:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._len

    # -- access ------------------------------------------------------------------------------
    def _check_index(self, i: int) -> int:
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"index {i} out of range for {self._len} samples")
        return i

    def stored_image(self, i: int) -> np.ndarray:
        """The image exactly as stored: encoded bytes (B,) uint8 or a raw (H, W, 3) RGB array."""
        i = self._check_index(i)
        if self._encoded:
            o = self._image_offsets
            return self._ds("image_bytes")[o[i]:o[i + 1]]
        return self._ds("images")[i]

    def image(self, i: int, alpha: bool = False) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB image of sample ``i`` (``(H, W, 4)`` RGBA, alpha 255, with ``alpha``:
        the layout the fast augmentation path wants, produced by the same colour conversion)."""
        data = self.stored_image(i)
        if not self._encoded:
            return cv2.cvtColor(data, cv2.COLOR_RGB2RGBA) if alpha else data
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(self.path, f"sample {i} ({self.names[i]}): stored image cannot be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA if alpha else cv2.COLOR_BGR2RGB)

    def label(self, i: int) -> np.ndarray:
        """``(H, W)`` uint8 label map of sample ``i``."""
        return self._ds("labels")[self._check_index(i)]

    def lanes(self, i: int) -> tuple[list[np.ndarray], list[int]]:
        """Source-pixel polylines of sample ``i`` and their 0-based slots."""
        i = self._check_index(i)
        k0, k1 = int(self._sample_lanes[i]), int(self._sample_lanes[i + 1])
        if k1 == k0:
            return [], []
        lo = self._lane_offsets
        pts = self._ds("lane_points")[int(lo[k0]):int(lo[k1])]
        lanes = [pts[lo[k] - lo[k0]:lo[k + 1] - lo[k0]] for k in range(k0, k1)]
        return lanes, [int(s) for s in self._lane_slots[k0:k1]]

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = self._check_index(int(i))
        lanes, slots = self.lanes(i)
        return {
            "image": self.image(i),
            "label": self.label(i),
            "exist": self.exist[i].copy(),
            "name": self.names[i],
            "lanes": lanes,
            "slots": slots,
            "category": self.categories[i],
            "source_size": (int(self._source_sizes[i, 0]), int(self._source_sizes[i, 1])),
            "index": i,
        }

    def __repr__(self) -> str:
        a = self.attrs
        return (f"LaneH5({str(self.path)!r}, n={self._len}, dataset={a.get('dataset')!r}, "
                f"split={a.get('split')!r}, size={self.size}, storage={a.get('storage')!r})")


#: HDF5 attributes copied into every checkpoint (``data_attrs``): what export and predict need
#: to pre-process frames and decode lanes without the data.
DATA_ATTR_KEYS = ("dataset", "split", "size", "source_size", "crop_top", "num_slots", "num_classes",
                  "mean", "std")


def data_attrs_from_h5(path: str | Path) -> dict[str, Any]:
    """The :data:`DATA_ATTR_KEYS` attributes of a prepared file as plain JSON values, plus
    ``profile``: its decoder profile (:func:`lanekd.data.formats.info.decode_profile_name`).

    Raises:
        DataError: not a complete lanekd HDF5 file.
    """
    from lanekd.data.formats.info import decode_profile_name
    from lanekd.utils.io import jsonable

    with LaneH5(path) as h5:
        attrs = dict(h5.attrs)
    out = {k: jsonable(attrs[k]) for k in DATA_ATTR_KEYS if k in attrs}
    if "num_classes" not in out and "num_slots" in out:
        out["num_classes"] = int(out["num_slots"]) + 1
    out["profile"] = decode_profile_name(attrs)
    return out


def verify_h5(path: str | Path) -> dict[str, Any]:
    """Check a file's integrity: attributes, array shapes and counts, offsets, per-sample checksums,
    decodability and label values.

    Returns:
        A summary dict (``path``, ``count``, ``ok``).

    Raises:
        DataError: naming the first problem (and the first bad sample, by index and name).
    """
    ds = LaneH5(path)  # checks format, version, completeness
    p = ds.path
    n = len(ds)
    h, w = ds.size
    num_slots = ds.num_slots
    num_classes = int(ds.attrs.get("num_classes", num_slots + 1))
    f = ds._h5()
    try:
        expect = {"labels": (n, h, w), "exist": (n, num_slots), "source_sizes": (n, 2), "checksums": (n,),
                  "names": (n,), "categories": (n,), "sample_lanes": (n + 1,)}
        if ds._encoded:
            expect["image_offsets"] = (n + 1,)
        else:
            expect["images"] = (n, h, w, 3)
        for key, shape in expect.items():
            if f[key].shape != shape:
                raise DataError(p, f"dataset {key!r} has shape {f[key].shape}, expected {shape}")
        k = int(ds._sample_lanes[-1])
        if f["lane_slots"].shape != (k,) or f["lane_offsets"].shape != (k + 1,):
            raise DataError(p, "lane index arrays are inconsistent")
        if f["lane_points"].shape != (int(ds._lane_offsets[-1]), 2):
            raise DataError(p, "lane_points length does not match lane_offsets")
        for key, arr in (("sample_lanes", ds._sample_lanes), ("lane_offsets", ds._lane_offsets)) + (
                (("image_offsets", ds._image_offsets),) if ds._encoded else ()):
            if arr[0] != 0 or np.any(np.diff(arr) < 0):
                raise DataError(p, f"dataset {key!r} is not a valid offset array")
        if ds._encoded and int(ds._image_offsets[-1]) != f["image_bytes"].shape[0]:
            raise DataError(p, "image_bytes length does not match image_offsets")
        if np.any(ds._lane_slots >= num_slots):
            raise DataError(p, "a lane slot is out of range")
    except KeyError as e:
        ds.close()
        raise DataError(p, f"malformed lanekd HDF5 file (missing {e})") from None
    checksums = f["checksums"][()]
    valid = np.zeros(256, bool)
    valid[:num_classes] = True
    valid[255] = True
    try:
        for i in range(n):
            name = ds.names[i]
            stored = ds.stored_image(i)
            label = ds.label(i)
            if sample_checksum(stored, label) != int(checksums[i]):
                raise DataError(p, f"sample {i} ({name}): checksum mismatch")
            if ds._encoded:
                img = cv2.imdecode(stored, cv2.IMREAD_COLOR)
                if img is None or img.shape != (h, w, 3):
                    raise DataError(p, f"sample {i} ({name}): stored image does not decode to {h}x{w}x3")
            if not valid[label].all():
                raise DataError(p, f"sample {i} ({name}): label values outside 0..{num_classes - 1} and 255")
            if np.any(ds.exist[i] > 1):
                raise DataError(p, f"sample {i} ({name}): existence flags must be 0 or 1")
    finally:
        ds.close()
    return {"path": str(p), "count": n, "ok": True}


def describe_h5(path: str | Path) -> dict[str, Any]:
    """Attributes and sample count of a lanekd file, as plain JSON-ready values (``lanekd info``).

    Raises:
        DataError: the file is missing, not HDF5, or not a lanekd file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "no such HDF5 file")
    try:
        attrs = read_attrs(p)
    except OSError as e:
        raise DataError(p, f"not a readable HDF5 file ({e})") from None
    if attrs.get("format") != FORMAT_NAME:
        raise DataError(p, "not a lanekd HDF5 file (missing format attribute)")
    order = ("format", "format_version", "dataset", "split", "count", "complete", "size", "source_size",
             "crop_top", "storage", "image_format", "jpeg_quality", "num_slots", "num_classes", "line_width",
             "decode_profile", "mean", "std", "root", "created_by")
    out: dict[str, Any] = {k: attrs[k] for k in order if k in attrs}
    out["samples"] = out.pop("count", 0)
    out["skipped"] = len(json.loads(attrs.get("skipped", "[]")))
    out["file_bytes"] = p.stat().st_size
    for key in ("size", "source_size", "mean", "std"):
        if key in out:
            out[key] = list(out[key])
    return out
