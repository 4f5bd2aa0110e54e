"""Pieces shared by every lane network: the base class, the existence branch ("P1") and init helpers.

Every network subclasses :class:`LaneNet` and implements :meth:`LaneNet._forward`, which returns the
segmentation logits (at any resolution; the base class upsamples them to the input size when they
are not already there), the 1/8-resolution map the existence branch consumes and the named encoder
features. The base class owns the shared contract: ``sad_blocks``, ``feature_channels``,
``build_args`` and the :class:`~lanekd.models.output.LaneOutput` it returns.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.errors import ConfigError
from lanekd.models.output import LaneOutput

FEATURE_NAMES = ("block1", "block2", "block3", "block4", "encoder")


def exist_flatten_size(num_classes: int, input_size: tuple[int, int]) -> int:
    """Flatten size of the existence branch: ``C * floor(H/16) * floor(W/16)`` (docs/models.md).

    The branch pools the 1/8-resolution class map by 2, so a 208x976 CULane model with 5 classes
    gets 5*13*61 = 3965 and a 288x800 one gets 5*18*50 = 4500.
    """
    h, w = input_size
    return num_classes * (h // 16) * (w // 16)


class ExistenceBranch(nn.Module):
    """Lane-existence branch P1 (SCNN/ENet-SAD code; docs/models.md): softmax over classes -> 2x2 pool ->
    FC128 -> ReLU -> FC L.

    Args:
        num_classes: channels ``C`` of the class map it reads.
        num_lanes: number of existence outputs ``L``.
        input_size: ``(H, W)`` network input size; fixes the flatten size.
        pool: ``"avg"`` (SCNN, TensorFlow port) or ``"max"`` (ERFNet PyTorch code).
        conv: optional module mapping encoder features to the ``C``-channel map (ENet/ERFNet P1
            convolutions); ``None`` when the input already is the 1/8 segmentation logits.
        hidden: width of the first fully connected layer (128 in every official model).

    Shape:
        - Input: ``(B, C_in, H/8, W/8)``.
        - Output: ``(B, L)`` logits (the sigmoid lives in the loss and at test time).
    """

    def __init__(self, num_classes: int, num_lanes: int, input_size: tuple[int, int], pool: str = "avg",
                 conv: nn.Module | None = None, hidden: int = 128) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ConfigError(f"exist_pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.conv = conv
        self.fc1 = nn.Linear(exist_flatten_size(num_classes, input_size), hidden)
        self.fc2 = nn.Linear(hidden, num_lanes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = F.softmax(x, dim=1)
        x = F.avg_pool2d(x, 2) if self.pool == "avg" else F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x), inplace=True))


def check_input_size(input_size: Any, multiple: int = 8) -> tuple[int, int]:
    """Validate ``(H, W)``: positive ints divisible by ``multiple`` (every network reaches 1/8)."""
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ConfigError(f"input_size must be (H, W), got {input_size!r}") from None
    if h <= 0 or w <= 0 or h % multiple or w % multiple:
        raise ConfigError(f"input_size must be positive and divisible by {multiple}, got {h}x{w}")
    if h < 16 or w < 16:
        raise ConfigError(f"input_size must be at least 16x16, got {h}x{w}")
    return h, w


class LaneNet(nn.Module):
    """Base class of every lanekd network.

    Subclasses set ``self.sad_blocks`` and ``self.feature_channels`` and implement :meth:`_forward`.
    ``build_args`` is filled by :func:`lanekd.models.build_model`.

    Args:
        num_classes: segmentation classes ``C`` (background + lane slots, or a dataset's ids).
        num_lanes: existence outputs ``L``; 0 builds no existence branch.
        input_size: ``(H, W)`` the network is built for (fixes the existence flatten size).
    """

    sad_blocks: tuple[str, ...]
    feature_channels: dict[str, int]
    in_channels: int = 3  # set by build_model from the ``in_channels`` option

    def __init__(self, num_classes: int, num_lanes: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_lanes = num_lanes
        self.input_size = input_size
        self.build_args: dict[str, Any] = {}
        self.exist: ExistenceBranch | None = None

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the network.

        Args:
            x: ``(B, in_channels, H, W)`` input.
            feats: dict to fill with the named features, or ``None`` when not requested.

        Returns:
            ``(seg, exist_in)``: class logits (any resolution) and the input of ``self.exist``
            (``None`` when the model has no existence branch).
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor, return_features: bool = False, resize_exist: bool = False
                ) -> LaneOutput:
        """Segment lanes.

        Args:
            x: ``(B, in_channels, H, W)`` normalised image (or one-hot label map for LGAD teachers).
            return_features: also return the named encoder features (``block1..block4``, ``encoder``).
            resize_exist: accept an input of another size than the model was built for by resizing
                the existence branch's input map (bilinear) to the built size's ``H/8 x W/8``;
                progressive-resize training uses it for its smaller early iterations. Without it
                such an input is a :class:`ConfigError`.

        Returns:
            :class:`LaneOutput` with ``seg`` ``(B, C, H, W)`` logits, ``exist`` ``(B, L)`` logits or
            ``None``, and ``features`` (empty unless requested).
        """
        size = (int(x.shape[-2]), int(x.shape[-1]))
        other_size = size != tuple(self.input_size)
        if (self.exist is not None and other_size and not resize_exist
                and not torch.jit.is_tracing()):
            raise ConfigError(f"model built for input size {self.input_size[0]}x{self.input_size[1]} "
                              f"(existence branch), got {size[0]}x{size[1]}")
        feats: dict[str, torch.Tensor] | None = {} if return_features else None
        seg, exist_in = self._forward(x, feats)
        if seg.shape[-2:] != x.shape[-2:]:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="bilinear", align_corners=False)
        exist = None
        if self.exist is not None and exist_in is not None:
            if other_size and resize_exist:
                built = (self.input_size[0] // 8, self.input_size[1] // 8)
                exist_in = F.interpolate(exist_in, size=built, mode="bilinear", align_corners=False)
            exist = self.exist(exist_in)
        return LaneOutput(seg, exist, feats if feats is not None else {})


def init_conv_bn(module: nn.Module) -> None:
    """torchvision-style init: Kaiming-normal (fan_out, ReLU) convs, BN weight 1 / bias 0.

    Skipped on the ``meta`` device (shape-only models for counting), where ``normal_`` would only
    pay a one-off import of torch's reference decompositions (seconds) for no values.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm)) and m.weight.is_meta:
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
