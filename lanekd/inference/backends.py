"""One interface over PyTorch checkpoints, ONNX files (onnxruntime) and TorchScript files."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from lanekd.errors import LaneKDError
from lanekd.inference.head import ProbabilityHead
from lanekd.inference.meta import META_KEY, ModelMeta, meta_from_checkpoint


class Backend(Protocol):
    """A loaded model: ``run`` maps a normalised batch to class and existence probabilities (the
    outputs of :class:`~lanekd.inference.head.ProbabilityHead`, whatever the runtime)."""

    meta: ModelMeta
    name: str

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (B, 3, H, W) float32 -> ``(seg_prob (B, C, H, W), exist_prob (B, L))``."""
        ...


class TorchBackend:
    """A lanekd network in PyTorch (from a training checkpoint, or any built model)."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, meta: ModelMeta, device: str = "cpu") -> None:
        self.meta = meta
        self.device = torch.device(device)
        self.head = ProbabilityHead(model).to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu") -> TorchBackend:
        """A lanekd training checkpoint (``last.pt`` / ``best.pt``)."""
        from lanekd.inference.checkpoint import load_checkpoint_model

        model, ckpt_meta = load_checkpoint_model(path, device=device)
        return cls(model, meta_from_checkpoint(ckpt_meta, path), device)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            seg, exist = self.head(torch.from_numpy(x).to(self.device))
        return seg.float().cpu().numpy(), exist.float().cpu().numpy()


class OnnxBackend:
    """An ``.onnx`` file run with onnxruntime (CUDA provider when asked for and available)."""

    name = "onnx"

    def __init__(self, path: Path, device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise LaneKDError(f"{path}: running ONNX models needs onnxruntime: "
                              "pip install 'lanekd[export]'") from None
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise LaneKDError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        custom = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in custom:
            raise LaneKDError(f"{path}: ONNX model has no lanekd metadata (export it with `lanekd export`)")
        self.meta = ModelMeta.from_json(custom[META_KEY], str(path))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.path = path

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.shape[2:] != tuple(self.meta.input_size):
            raise LaneKDError(f"{self.path}: model expects input {self.meta.input_size[0]}x"
                              f"{self.meta.input_size[1]}, got {x.shape[2]}x{x.shape[3]}")
        if self.fixed_batch is None or x.shape[0] == self.fixed_batch:
            seg, exist = self.session.run(None, {self.input_name: x})
            return seg, exist
        # fixed-batch graph: run in chunks of its batch size
        step = self.fixed_batch
        parts = [self.run(x[i:i + step]) for i in range(0, x.shape[0], step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class TorchScriptBackend:
    """A TorchScript file written by ``lanekd export --format torchscript``."""

    name = "torchscript"

    def __init__(self, path: Path, device: str = "cpu") -> None:
        extra = {f"{META_KEY}.json": ""}
        try:
            self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except (RuntimeError, ValueError) as e:
            raise LaneKDError(f"{path}: not a TorchScript file ({str(e).splitlines()[0][:200]})") from None
        if not extra[f"{META_KEY}.json"]:
            raise LaneKDError(f"{path}: TorchScript file has no lanekd metadata "
                              "(export it with `lanekd export`)")
        self.meta = ModelMeta.from_json(extra[f"{META_KEY}.json"], str(path))
        self.device = torch.device(device)
        self.path = path

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.shape[2:] != tuple(self.meta.input_size):
            raise LaneKDError(f"{self.path}: model expects input {self.meta.input_size[0]}x"
                              f"{self.meta.input_size[1]}, got {x.shape[2]}x{x.shape[3]}")
        with torch.inference_mode():
            seg, exist = self.module(torch.from_numpy(x).to(self.device))
        return seg.float().cpu().numpy(), exist.float().cpu().numpy()


def load_backend(path: str | Path, device: str = "cpu") -> Backend:
    """Open a model file by its content type: ``.onnx``, TorchScript, or a lanekd checkpoint (a
    zoo entry's name stands for its weights)."""
    from lanekd.zoo import resolve

    p = resolve(path)
    if not p.is_file():
        raise LaneKDError(f"{p}: no such model file")
    if p.suffix.lower() == ".onnx":
        return OnnxBackend(p, device)
    import zipfile

    # TorchScript archives contain a 'code/' folder; torch.save checkpoints do not.
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            if any("/code/" in n or n.startswith("code/") for n in zf.namelist()):
                return TorchScriptBackend(p, device)
    return TorchBackend.from_checkpoint(p, device)
