"""``lanekd bench``: model-only and end-to-end latency, measured the way the SAD paper reports it.

Warm-up runs are discarded, CUDA is synchronised around every timed run, and we report the
median and 90th percentile (not the best run, which flatters; docs/models.md, Speed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lanekd.errors import ConfigError
from lanekd.inference.backends import Backend, TorchBackend, load_backend
from lanekd.inference.meta import ModelMeta


def _timed(fn: Callable[[], object], runs: int, warmup: int, sync: Callable[[], None]) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _stats(times_ms: list[float], batch: int) -> dict[str, float]:
    med = float(np.median(times_ms))
    return {"median_ms": round(med, 3), "p90_ms": round(float(np.percentile(times_ms, 90)), 3),
            "ms_per_frame": round(med / batch, 3), "fps": round(1000 * batch / med, 2)}


def open_for_bench(model: str, input_size: tuple[int, int] | None, device: str) -> Backend:
    """A model file (checkpoint, ONNX, TorchScript) or a registry name (random weights)."""
    if Path(model).exists():
        backend = load_backend(model, device)
        if input_size is not None and tuple(input_size) != tuple(backend.meta.input_size):
            if not isinstance(backend, TorchBackend):
                raise ConfigError(f"{model}: exported for input {backend.meta.input_size[0]}x"
                                  f"{backend.meta.input_size[1]}; --input-size cannot change it")
            raise ConfigError(f"{model}: the checkpoint's existence branch is built for "
                              f"{backend.meta.input_size[0]}x{backend.meta.input_size[1]}")
        return backend
    from lanekd.models import build_model, list_models

    if model not in list_models():
        raise ConfigError(f"{model}: neither a model file nor a registered model "
                          f"({', '.join(list_models())})")
    # a registry model with random weights: times the architecture without training it
    size = input_size or (288, 800)
    meta = ModelMeta(model=model, input_size=size, source_size=(590, 1640))
    return TorchBackend(build_model(model, input_size=size), meta, device)


def bench(model: str, input_size: tuple[int, int] | None = None, batch: int = 1, device: str = "cpu",
          runs: int = 20, warmup: int = 3) -> dict[str, object]:
    """Time the network alone and the whole pipeline (pre-process + network + decode).

    Returns:
        JSON-ready dict: ``model_only`` and ``end_to_end`` statistics, params, GFLOPs where known.
    """
    if batch < 1 or runs < 1 or warmup < 0:
        raise ConfigError("--batch and --runs must be >= 1 and --warmup >= 0")
    backend = open_for_bench(model, input_size, device)
    meta = backend.meta
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if device.startswith("cuda"):
        import torch

        sync = torch.cuda.synchronize
    rng = np.random.default_rng(0)
    h, w = meta.input_size
    x = rng.standard_normal((batch, 3, h, w)).astype(np.float32)
    frames = [rng.integers(0, 256, (*meta.source_size, 3), dtype=np.uint8) for _ in range(batch)]

    from lanekd.predict.run import decode_batch

    model_ms = _timed(lambda: backend.run(x), runs, warmup, sync)
    e2e_ms = _timed(lambda: decode_batch(backend, frames), runs, warmup, sync)
    result: dict[str, object] = {
        "model": meta.model, "backend": backend.name, "device": device, "batch": batch,
        "input_size": list(meta.input_size), "runs": runs, "warmup": warmup,
        "model_only": _stats(model_ms, batch), "end_to_end": _stats(e2e_ms, batch),
    }
    if isinstance(backend, TorchBackend):  # exported graphs carry no module to count
        from lanekd.models import count_flops, count_parameters

        result["params"] = count_parameters(backend.head.model)
        result["gflops"] = round(count_flops(backend.head.model, (h, w)) / 1e9, 3)
    return result
