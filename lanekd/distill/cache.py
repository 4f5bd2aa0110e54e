"""Teacher-target cache (``--cache-teacher``): run the frozen teacher once, train from an HDF5 file.

What is cached is not the teacher's raw output but each distiller's *targets*
(:meth:`lanekd.distill.base.Distiller.teacher_targets`): IntRA-KD's ``(3, n, n)`` region graphs
(75 numbers per CULane image instead of a 2048×36×100 ResNet-101 feature map), LGAD's attention
maps, AT's unit attention maps, KD's class logits. They are stored per sample index in float16
(``dtype="float32"`` for bit-exact reuse; a distiller's ``float32_targets``, IntRA-KD's graphs,
always in float32: their loss is a squared difference of nearly equal graphs, which float16
rounding would dominate) and read back with :meth:`TeacherCache.targets`, which
returns a ``LaneOutput`` whose ``features`` hold those targets; every distiller's ``forward``
recognises them and skips the teacher computation.

**Trade-off (augmentation).** The targets depend on the input and, for IntRA-KD, on the label
(its AOIs). With random training augmentation both change every step, so targets computed once
would be wrong for the augmented batch. The cache is therefore built on the *un-augmented*
samples (``LaneDataset(path, train=False)``) and is only valid for runs that also train without
random augmentation: the engine must turn augmentation off with ``--cache-teacher`` (it records
``augmented = False`` in the file). Caching K augmented epochs would need the augmentation to be
a deterministic function of (epoch, index) and K times the storage; we do not do it. So the
cache trades augmentation for speed: worth it when the teacher dominates the step time
(a ResNet-101 teacher with an ENet student) or for quick experiments.

Size per sample (float16): IntRA-KD 12·n² bytes (float32); LGAD/AT 2·h·w per block (7 KB at 36×100);
KD 2·C·H·W (2.3 MB at 5×288×800 — 200 GB for CULane's 88K training images; prefer the online
teacher for KD on full datasets). :meth:`TeacherCache.estimate_bytes` reports it before building.

The file records a fingerprint of the teacher weights, the dataset file (path, size, mtime,
length) and each distiller's target options; :meth:`TeacherCache.check` refuses a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lanekd.distill.base import Distiller
from lanekd.distill.registry import teacher_forward, teacher_input_kind
from lanekd.errors import ConfigError, DataError
from lanekd.models.output import LaneOutput
from lanekd.utils.io import atomic_path
from lanekd.utils.progress import track

CACHE_VERSION = 1
_DTYPES = {"float16": np.float16, "float32": np.float32}


def teacher_fingerprint(teacher: nn.Module) -> str:
    """SHA-256 over the teacher's build arguments and every parameter/buffer (name, shape, bytes)."""
    h = hashlib.sha256()
    args = getattr(teacher, "build_args", None)
    h.update(json.dumps(args, sort_keys=True, default=str).encode())
    for name, tensor in teacher.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dataset_fingerprint(dataset: str | Path | Dataset, length: int) -> dict[str, Any]:
    """Identity of the source data: resolved path, size and mtime of an HDF5 file, and the sample count."""
    if isinstance(dataset, str | Path):
        p = Path(dataset).resolve()
        st = p.stat()
        return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "length": length}
    return {"path": None, "type": type(dataset).__name__, "length": length}


def _signature(distillers: Sequence[Distiller]) -> dict[str, Any]:
    return {d.name: d.target_signature() for d in distillers if d.needs_teacher}


def _open_dataset(dataset: str | Path | Dataset) -> Dataset:
    if isinstance(dataset, str | Path):
        if not Path(dataset).is_file():
            raise DataError(dataset, "no such HDF5 dataset file")
        from lanekd.data import LaneDataset  # the training data's reader, augmentation off

        return LaneDataset(dataset, train=False)
    return dataset


class TeacherCache:
    """Read access to a teacher-target cache file (see module docstring).

    Args:
        path: the ``.h5`` file written by :meth:`build`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "no such teacher cache file")
        self._file: h5py.File | None = None
        self._pid = -1
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                self.keys: tuple[str, ...] = tuple(json.loads(attrs["keys"]))
                self.length = int(attrs["length"])
                self.signature: dict[str, Any] = json.loads(attrs["signature"])
                self.teacher_fingerprint = str(attrs["teacher_fingerprint"])
                self.dataset: dict[str, Any] = json.loads(attrs["dataset"])
                self.teacher_input = str(attrs["teacher_input"])
                self.augmented = bool(attrs["augmented"])
                self.dtype = str(attrs["dtype"])
                version = int(attrs["version"])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(self.path, f"not a lanekd teacher cache ({exc})") from None
        if version != CACHE_VERSION:
            raise DataError(self.path, f"teacher cache version {version}, expected {CACHE_VERSION}; "
                                       "rebuild it")

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (f"TeacherCache({str(self.path)!r}, length={self.length}, keys={list(self.keys)}, "
                f"dtype={self.dtype})")

    # -- building ------------------------------------------------------------------------------
    @staticmethod
    def estimate_bytes(teacher_out: LaneOutput, batch: dict[str, torch.Tensor],
                       distillers: Sequence[Distiller], length: int, dtype: str = "float16") -> int:
        """Bytes the cache will take for ``length`` samples, from one teacher output on ``batch``."""
        per = 0
        for d in distillers:
            if d.needs_teacher:
                for key, t in d.teacher_targets(teacher_out, batch).items():
                    itemsize = 4 if key in d.float32_targets else np.dtype(_DTYPES[dtype]).itemsize
                    per += int(np.prod(t.shape[1:])) * itemsize
        return per * length

    @classmethod
    def build(cls, teacher: nn.Module, dataset: str | Path | Dataset, distillers: Sequence[Distiller],
              out_path: str | Path, batch_size: int = 8, device: str | torch.device = "cpu",
              dtype: str = "float16", num_classes: int | None = None, workers: int = 0,
              quiet: bool = True) -> TeacherCache:
        """Run ``teacher`` once over ``dataset`` and write every distiller's targets to ``out_path``.

        Args:
            teacher: the frozen teacher (put in eval mode; its weights are fingerprinted).
            dataset: an HDF5 file from ``lanekd prepare`` (read with augmentation off) or a map-style
                dataset of dicts with ``image``, ``label`` and ``index`` (un-augmented).
            distillers: the run's distillers; those with ``needs_teacher`` define what is stored.
            out_path: the cache file (written atomically).
            batch_size: teacher batch size.
            device: where the teacher runs.
            dtype: ``"float16"`` (default, half the size) or ``"float32"`` (exact).
            num_classes: class count for a one-hot teacher input (default: from the teacher).
            workers: DataLoader workers.
            quiet: no progress bar.
        """
        if dtype not in _DTYPES:
            raise ConfigError(f"teacher cache dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        used = [d for d in distillers if d.needs_teacher]
        if not used:
            raise ConfigError("--cache-teacher: none of the selected methods uses a teacher")
        kind = teacher_input_kind(used)
        ds = _open_dataset(dataset)
        length = len(ds)  # type: ignore[arg-type]
        if length == 0:
            raise ConfigError("--cache-teacher: the dataset is empty")
        teacher = teacher.to(device).eval()
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
        np_dtype = _DTYPES[dtype]
        filled = np.zeros(length, dtype=bool)
        position = 0
        with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as f:
            created: dict[str, h5py.Dataset] = {}
            total = (length + batch_size - 1) // batch_size
            for batch in track(loader, total=total, description="caching teacher", quiet=quiet):
                n = int(batch["label"].shape[0])
                if "index" in batch:
                    index = batch["index"].long().numpy()
                else:
                    index = np.arange(position, position + n)
                position += n
                if index.min() < 0 or index.max() >= length:
                    raise ConfigError(f"--cache-teacher: sample index {int(index.max())} "
                                      f"outside [0, {length})")
                dev_batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                out = teacher_forward(teacher, dev_batch, used, num_classes=num_classes, device=device)
                assert out is not None
                order = np.argsort(index)  # h5py writes need increasing indices
                for d in used:
                    for key, value in d.teacher_targets(out, dev_batch).items():
                        arr = value.detach().float().cpu().numpy()
                        key_dtype = np.float32 if key in d.float32_targets else np_dtype
                        arr = arr.astype(key_dtype)
                        if key not in created:
                            shape = arr.shape[1:]
                            created[key] = f.create_dataset(key, shape=(length, *shape), dtype=key_dtype,
                                                            chunks=(1, *shape))
                        created[key][index[order]] = arr[order]
                filled[index] = True
            if not filled.all():
                missing = int((~filled).sum())
                raise ConfigError(f"--cache-teacher: {missing} sample(s) were never produced by the dataset")
            f.attrs["version"] = CACHE_VERSION
            f.attrs["keys"] = json.dumps(sorted(created))
            f.attrs["length"] = length
            f.attrs["signature"] = json.dumps(_signature(used), sort_keys=True)
            f.attrs["teacher_fingerprint"] = teacher_fingerprint(teacher)
            f.attrs["dataset"] = json.dumps(dataset_fingerprint(dataset, length), sort_keys=True)
            f.attrs["teacher_input"] = str(kind)
            f.attrs["augmented"] = False
            f.attrs["dtype"] = dtype
        return cls(out_path)

    # -- validation ------------------------------------------------------------------------------
    def check(self, distillers: Sequence[Distiller], teacher: nn.Module | None = None,
              dataset: str | Path | Dataset | None = None, length: int | None = None) -> None:
        """Raise :class:`ConfigError` unless the cache serves ``distillers`` for this teacher and data."""
        used = [d for d in distillers if d.needs_teacher]
        for d in used:
            missing = [k for k in d.target_keys() if k not in self.keys]
            if missing:
                raise ConfigError(f"{self.path}: teacher cache lacks {', '.join(missing)} for {d.name}; "
                                  "rebuild it")
            want = json.loads(json.dumps(d.target_signature(), sort_keys=True))
            have = self.signature.get(d.name)
            if have != want:
                raise ConfigError(f"{self.path}: teacher cache was built with {d.name} options {have}, "
                                  f"the run uses {want}; rebuild it")
        if teacher is not None and teacher_fingerprint(teacher) != self.teacher_fingerprint:
            raise ConfigError(f"{self.path}: teacher cache was built from other teacher weights; rebuild it")
        if length is not None and length != self.length:
            raise ConfigError(f"{self.path}: teacher cache holds {self.length} samples, the dataset {length}")
        if isinstance(dataset, str | Path):
            now = dataset_fingerprint(dataset, self.length)
            if now != self.dataset:
                raise ConfigError(f"{self.path}: teacher cache was built from {self.dataset.get('path')} "
                                  "(other file or modified since); rebuild it")

    # -- reading ---------------------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        # One handle per process: h5py handles must not cross a fork (DataLoader workers).
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def targets(self, indices: torch.Tensor | Sequence[int] | np.ndarray,
                device: torch.device | str | None = None) -> LaneOutput:
        """Cached targets of the samples ``indices`` (the batch's ``index`` entries).

        Returns:
            ``LaneOutput(seg=empty, exist=None, features={key: (B, ...) tensor})`` in the stored
            dtype; pass it as the ``teacher`` argument of the distillers.
        """
        if torch.is_tensor(indices):
            idx = indices.detach().cpu().long().numpy().reshape(-1)
        else:
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.length):
            raise IndexError(f"{self.path}: sample index outside [0, {self.length})")
        uniq, inverse = np.unique(idx, return_inverse=True)  # h5py reads need increasing indices
        f = self._handle()
        feats = {}
        for key in self.keys:
            arr = f[key][uniq][inverse]
            t = torch.from_numpy(np.ascontiguousarray(arr))
            feats[key] = t.to(device) if device is not None else t
        seg = torch.empty(0, device=device) if device is not None else torch.empty(0)
        return LaneOutput(seg=seg, exist=None, features=feats)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = -1
        return state
