"""The model registry: one plain factory function per network and :func:`build_model`.

Every factory takes ``(num_classes, num_lanes, input_size)`` plus keyword-only options; the options
a model accepts are exactly its factory's keyword-only parameters (``build_model`` rejects others
with a :class:`~lanekd.errors.ConfigError`). ``MODELS`` is the greppable name -> factory table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from lanekd.errors import ConfigError
from lanekd.models.common import LaneNet, check_input_size
from lanekd.models.enet import ENet, ENetSAD
from lanekd.models.erfnet import ERFNet
from lanekd.models.resnet import ResNetLane
from lanekd.models.scnn import SCNN

Size = tuple[int, int]


def enet(num_classes: int, num_lanes: int, input_size: Size, *, in_channels: int = 3,
         exist_conv: str = "1x1", exist_pool: str = "avg", bottleneck_width: str = "output") -> LaneNet:
    """Plain ENet (Paszke et al. 2016) with the P1 existence branch on stage 3."""
    return ENet(num_classes, num_lanes, input_size, in_channels, exist_conv, exist_pool, bottleneck_width)


def enet_sad(num_classes: int, num_lanes: int, input_size: Size, *, in_channels: int = 3, share: str = "none",
             exist_conv: str = "1x1", exist_pool: str = "avg", bottleneck_width: str = "output") -> LaneNet:
    """ENet-SAD: E1..E4, concat(E3, E4) decoder, P1 on E4 (choices documented in lanekd.models.enet)."""
    return ENetSAD(num_classes, num_lanes, input_size, in_channels, share, exist_conv, exist_pool,
                   bottleneck_width)


def erfnet(num_classes: int, num_lanes: int, input_size: Size, *, in_channels: int = 3,
           exist_pool: str = "max", dropout: float = 0.1) -> LaneNet:
    """ERFNet of the ERFNet-CULane code with its existence branch."""
    return ERFNet(num_classes, num_lanes, input_size, in_channels, exist_pool, dropout)


def _resnet(depth: int) -> Callable[..., LaneNet]:
    """The registry factory of the dilated ResNet of ``depth`` (the depth is its only difference)."""

    def factory(num_classes: int, num_lanes: int, input_size: Size, *, in_channels: int = 3,
                head: str = "fcn", scnn: bool = False, scnn_kernel: int = 9,
                psp_pool: str = "avg") -> LaneNet:
        return ResNetLane(depth, num_classes, num_lanes, input_size, in_channels, head, scnn, scnn_kernel,
                          psp_pool)

    factory.__name__ = factory.__qualname__ = f"resnet{depth}"
    factory.__doc__ = (f"Dilated ResNet-{depth}, output stride 8, plain (``fcn``) or ``psp`` head, "
                       "optional SCNN.")
    return factory


resnet18 = _resnet(18)
resnet34 = _resnet(34)
resnet50 = _resnet(50)
resnet101 = _resnet(101)


def scnn(num_classes: int, num_lanes: int, input_size: Size, *, in_channels: int = 3,
         scnn_kernel: int = 9) -> LaneNet:
    """VGG-16 SCNN (DeepLab-LargeFOV + message passing), the SAD paper's large baseline."""
    return SCNN(num_classes, num_lanes, input_size, in_channels, scnn_kernel)


MODELS: dict[str, Callable[..., LaneNet]] = {
    "enet": enet,
    "enet-sad": enet_sad,
    "erfnet": erfnet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "scnn": scnn,
}

#: Small, fast networks meant to be distilled (exported to ONNX/TorchScript in the tests).
STUDENTS = ("enet", "enet-sad", "erfnet")


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, in registry order."""
    return list(MODELS)


def model_options(name: str) -> dict[str, Any]:
    """The options (keyword-only parameters) a model accepts, with their defaults."""
    factory = _factory(name)
    return {p.name: p.default for p in inspect.signature(factory).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _factory(name: str) -> Callable[..., LaneNet]:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]


def _check_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def build_model(name: str, num_classes: int = 5, num_lanes: int = 4, input_size: Size = (288, 800), *,
                seed: int | None = None, exist_head: bool = True, **options: Any) -> LaneNet:
    """Build a lane network by name.

    Args:
        name: one of :func:`list_models` (``enet``, ``enet-sad``, ``erfnet``, ``resnet18/34/50/101``,
            ``scnn``).
        num_classes: segmentation classes C (background + lane slots: 5 for CULane, 7 for TuSimple,
            2 for BDD100K, 37 for ApolloScape).
        num_lanes: existence outputs L; 0 builds no existence branch (BDD100K, ApolloScape).
        input_size: ``(H, W)`` the model is built for, divisible by 8; the existence branch's flatten
            size is ``C * floor(H/16) * floor(W/16)`` (docs/models.md), so inputs of another size are
            rejected when the branch is present.
        seed: when given, parameters are initialised from ``torch.manual_seed(seed)`` inside a forked RNG
            (the global RNG state is left untouched); without it the current global RNG is used.
        exist_head: ``False`` is the same as ``num_lanes=0``.
        **options: model options, see :func:`model_options` (e.g. ``in_channels=5`` for a one-hot
            label-input LGAD teacher, ``share="e3e4"`` for ENet-SAD, ``head="psp"`` for ResNets).

    Returns:
        The network; ``model.build_args`` holds every argument so that ``build_model(**model.build_args)``
        rebuilds the same architecture (and, with ``seed``, the same initial weights).

    Raises:
        ConfigError: unknown name or option, or invalid sizes.
    """
    factory = _factory(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; valid options: "
                          f"{', '.join(['seed', 'exist_head', *valid])}")
    _check_int("num_classes", num_classes, 2)
    _check_int("num_lanes", num_lanes, 0)
    if "in_channels" in options:
        _check_int("in_channels", options["in_channels"], 1)
    if "scnn_kernel" in options and _check_int("scnn_kernel", options["scnn_kernel"], 1) % 2 == 0:
        raise ConfigError(f"scnn_kernel must be odd, got {options['scnn_kernel']}")
    size = check_input_size(input_size)
    lanes = num_lanes if exist_head else 0
    if seed is None:
        model = factory(num_classes, lanes, size, **options)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_check_int("seed", seed, 0))
            model = factory(num_classes, lanes, size, **options)
    model.build_args = {"name": name, "num_classes": num_classes, "num_lanes": num_lanes, "input_size": size,
                        "seed": seed, "exist_head": exist_head, **options}
    model.in_channels = int(options.get("in_channels", 3))
    return model
