"""Export a lane network to ONNX or TorchScript and check the result against PyTorch."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from lanekd.errors import ConfigError, LaneKDError
from lanekd.inference.backends import load_backend
from lanekd.inference.head import ProbabilityHead
from lanekd.inference.meta import META_KEY, ModelMeta
from lanekd.inference.preprocess import preprocess_batch
from lanekd.utils.io import atomic_path, check_output_file

ExportFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: Largest max-abs difference to PyTorch tolerated in float32.
DEFAULT_TOLERANCE = 1e-4


@dataclass
class ExportReport:
    """What ``export_model`` wrote and how closely the file matches PyTorch."""

    path: Path
    format: str
    max_abs_diff: float
    checks: dict[str, float]
    tolerance: float

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "format": self.format, "max_abs_diff": self.max_abs_diff,
                "checks": self.checks, "tolerance": self.tolerance, "ok": self.max_abs_diff <= self.tolerance}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx's dynamo exporter prints progress and warnings; keep CLI output clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_onnx(head: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic_batch: bool,
                 meta: ModelMeta) -> None:
    try:
        import onnx
    except ImportError:
        raise LaneKDError("ONNX export needs the 'onnx', 'onnxscript' and 'onnxruntime' packages: "
                          "pip install 'lanekd[export]'") from None
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    with _quiet_exporter():
        try:
            program = torch.onnx.export(head, (example,), None, opset_version=opset, dynamo=True,
                                        input_names=["image"], output_names=["seg_prob", "exist_prob"],
                                        dynamic_shapes=dynamic_shapes, external_data=False)
        except ModuleNotFoundError as e:
            raise LaneKDError(f"ONNX export needs {e.name}: pip install 'lanekd[export]'") from None
    assert program is not None
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # torch.onnx falls back to its own opset when it cannot convert: say so
        raise ConfigError(f"--opset {opset}: this torch.onnx exporter can write opset {written}, not {opset}")
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def _export_torchscript(head: nn.Module, example: torch.Tensor, path: Path, meta: ModelMeta) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(head, (example,), check_trace=False)
    with atomic_path(path) as tmp:
        torch.jit.save(traced, str(tmp), _extra_files={f"{META_KEY}.json": meta.to_json()})


def export_model(model: nn.Module, meta: ModelMeta, out: str | Path, fmt: str = "onnx", opset: int = 18,
                 dynamic_batch: bool = False, check_images: list[np.ndarray] | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> ExportReport:
    """Export ``model`` and verify the exported file against PyTorch.

    Args:
        model: a lanekd lane network (returns :class:`LaneOutput`).
        meta: metadata stored in the file (input size, normalisation, decoder profile...).
        out: output path; written atomically.
        fmt: ``"onnx"`` or ``"torchscript"``.
        opset: ONNX opset version.
        dynamic_batch: export with a symbolic batch dimension.
        check_images: extra real inputs, ``(H, W, 3)`` uint8 RGB source frames; they are
            pre-processed like ``predict`` does and compared too.
        tolerance: maximum absolute difference allowed (float32); above it a :class:`LaneKDError`
            is raised and no file is left behind.

    Returns:
        An :class:`ExportReport` with the max-abs difference of every check.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = check_output_file(out)  # an unusable --out fails now, not after the whole export
    head = ProbabilityHead(model).eval().float()
    h, w = meta.input_size
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2 if dynamic_batch else 1, 3, h, w, generator=gen)
    if fmt == "onnx":
        _export_onnx(head, example, out, opset, dynamic_batch, meta)
    else:
        _export_torchscript(head, example, out, meta)

    inputs: dict[str, torch.Tensor] = {"random": torch.randn(1, 3, h, w, generator=gen)}
    if dynamic_batch:
        inputs["random_batch3"] = torch.randn(3, 3, h, w, generator=gen)
    for i, img in enumerate(check_images or []):
        inputs[f"image{i}"] = torch.from_numpy(preprocess_batch([img], meta))
    backend = load_backend(out)
    checks: dict[str, float] = {}
    with torch.no_grad():
        for name, x in inputs.items():
            ref = head(x)
            got = backend.run(x.numpy())
            checks[name] = max(float(np.abs(r.numpy() - g).max()) if r.numel() else 0.0
                               for r, g in zip(ref, got, strict=True))
    worst = max(checks.values())
    if worst > tolerance:
        out.unlink(missing_ok=True)
        raise LaneKDError(f"{out}: exported {fmt} model differs from PyTorch by {worst:.3g} "
                          f"(> {tolerance:g}); file removed")
    return ExportReport(out, fmt, worst, checks, tolerance)
