"""The inference layer below ``export``, ``predict`` and the engine's validation.

Imports run one way: ``cli``/``predict``/``export``/``engine`` -> ``inference`` -> ``models``/
``decode``/``data``. Public API:

* :class:`ModelMeta`, :func:`meta_from_checkpoint` (:mod:`.meta`): what pre-processing and
  decoding need, stored in exported files;
* :func:`read_checkpoint`, :func:`load_checkpoint_model` (:mod:`.checkpoint`);
* :class:`ProbabilityHead`, :func:`lane_probabilities`, :func:`slot_presence` (:mod:`.head`);
* :func:`preprocess_batch`, :func:`crop_rows` (:mod:`.preprocess`);
* :class:`Backend`, :class:`TorchBackend`, :class:`OnnxBackend`, :class:`TorchScriptBackend`,
  :func:`load_backend` (:mod:`.backends`);
* :func:`infer_lanes`, :func:`module_probabilities` (:mod:`.lanes`).

Names load on first access, so ``import lanekd.inference`` alone does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lanekd.utils.lazy import lazy_export

_EXPORTS = {
    "Backend": "backends",
    "OnnxBackend": "backends",
    "TorchBackend": "backends",
    "TorchScriptBackend": "backends",
    "load_backend": "backends",
    "load_checkpoint_model": "checkpoint",
    "read_checkpoint": "checkpoint",
    "ProbabilityHead": "head",
    "lane_probabilities": "head",
    "slot_presence": "head",
    "infer_lanes": "lanes",
    "module_probabilities": "lanes",
    "META_KEY": "meta",
    "ModelMeta": "meta",
    "meta_from_checkpoint": "meta",
    "crop_rows": "preprocess",
    "preprocess_batch": "preprocess",
}

if TYPE_CHECKING:
    from lanekd.inference.backends import Backend, OnnxBackend, TorchBackend, TorchScriptBackend, load_backend
    from lanekd.inference.checkpoint import load_checkpoint_model, read_checkpoint
    from lanekd.inference.head import ProbabilityHead, lane_probabilities, slot_presence
    from lanekd.inference.lanes import infer_lanes, module_probabilities
    from lanekd.inference.meta import META_KEY, ModelMeta, meta_from_checkpoint
    from lanekd.inference.preprocess import crop_rows, preprocess_batch

__all__ = [
    "Backend",
    "META_KEY",
    "ModelMeta",
    "OnnxBackend",
    "ProbabilityHead",
    "TorchBackend",
    "TorchScriptBackend",
    "crop_rows",
    "infer_lanes",
    "lane_probabilities",
    "load_backend",
    "load_checkpoint_model",
    "meta_from_checkpoint",
    "module_probabilities",
    "preprocess_batch",
    "read_checkpoint",
    "slot_presence",
]


def __getattr__(name: str) -> Any:
    return lazy_export("lanekd.inference", _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
