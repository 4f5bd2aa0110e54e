"""Dilated ResNet-18/34/50/101 (output stride 8) with a plain or PSP head (docs/models.md).

Backbone: the torchvision layout (``conv1``, ``bn1``, ``layer1..layer4``; same parameter names, so a
torchvision checkpoint loads with ``strict=False`` minus ``fc``), layer3 with stride 1 and dilation 2,
layer4 with stride 1 and dilation 4 (as torchvision's ``replace_stride_with_dilation=[False, True,
True]``: the first block of a dilated layer keeps the previous dilation). Normal PyTorch BN momentum
(0.1); the official code's 0.95 is a Torch-convention slip (docs/models.md).

Heads (``head`` option):

* ``"fcn"`` (default, plain): 3x3 conv C_in -> C_in/4, BN, ReLU, [SCNN], Dropout2d(0.1), 1x1 to C.
  With C_in/4 = 128 (ResNet-18/34) or 512 (ResNet-50/101) this reproduces the SAD paper's parameter
  counts (docs/models.md).
* ``"psp"``: pyramid pooling of the IntRA-KD code with bin sizes of 10, 20, 30 and 60 feature
  pixels: zero-pad to a multiple of s (pad tuple in the correct (left, right, top, bottom) order, the
  official code swaps height and width), pool to ``size/s`` (``psp_pool="avg"``: s x s bin averages,
  the PSPNet definition, default; ``"bilinear"``: the official bilinear resize), 1x1 conv to C_in/4, BN,
  ReLU, bilinear upsample by s, crop; concatenated with the input; 3x3 conv to C_in/4, BN, ReLU, [SCNN],
  Dropout2d(0.1), 1x1 classifier.

``scnn=True`` inserts SCNN message passing (:class:`lanekd.models.scnn.MessagePassing`) on the
C_in/4-channel head features. The existence branch reads the 1/8 logits (softmax, avg-pool, FC).

Features: ``block1..block4`` = layer1..layer4, ``encoder`` = layer4 (the 1/8 backbone output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.errors import ConfigError
from lanekd.models.common import ExistenceBranch, LaneNet, init_conv_bn
from lanekd.models.scnn import MessagePassing


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_LAYERS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


class DilatedResNet(nn.Module):
    """torchvision-layout ResNet trunk with output stride 8 (layer3 dilation 2, layer4 dilation 4).

    Shape: ``(B, in_channels, H, W)`` -> layer1 ``(B, 64e, H/4, W/4)``, layer2 ``(B, 128e, H/8, W/8)``,
    layer3 ``(B, 256e, H/8, W/8)``, layer4 ``(B, 512e, H/8, W/8)`` with e = block expansion.
    """

    def __init__(self, depth: int, in_channels: int = 3) -> None:
        super().__init__()
        block, layers = RESNET_LAYERS[depth]
        self.inplanes, self.dilation = 64, 1
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], dilate=True)
        self.layer4 = self._make_layer(block, 512, layers[3], dilate=True)
        self.channels = tuple(c * block.expansion for c in (64, 128, 256, 512))

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous = self.dilation
        if dilate:  # trade the stride for dilation (output stride stays at 8)
            self.dilation *= 2
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            cout = planes * block.expansion
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))
        layers = [block(self.inplanes, planes, stride, downsample, previous)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return l1, l2, l3, self.layer4(l3)


class PyramidPooling(nn.Module):
    """IntRA-KD PSP pooling with bin sizes in feature pixels (module doc), concatenated with the input.

    Shape: ``(B, C, h, w)`` -> ``(B, C + len(bins) * mid, h, w)``.
    """

    def __init__(self, cin: int, mid: int, bins: tuple[int, ...] = (10, 20, 30, 60),
                 pool: str = "avg") -> None:
        super().__init__()
        if pool not in ("avg", "bilinear"):
            raise ConfigError(f"psp_pool must be 'avg' or 'bilinear', got {pool!r}")
        self.bins, self.pool = bins, pool
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
            for _ in bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        outs = [x]
        for s, stage in zip(self.bins, self.stages, strict=True):
            ph, pw = (s - h % s) % s, (s - w % s) % s
            y = F.pad(x, (0, pw, 0, ph))  # (left, right, top, bottom): width first, then height
            size = ((h + ph) // s, (w + pw) // s)
            if self.pool == "avg":
                y = F.avg_pool2d(y, s)
            else:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            y = stage(y)
            y = F.interpolate(y, scale_factor=s, mode="bilinear", align_corners=False)
            outs.append(y[:, :, :h, :w])
        return torch.cat(outs, dim=1)


class SegHead(nn.Module):
    """Plain (``fcn``) or ``psp`` head producing 1/8 logits; optional SCNN on its mid features."""

    def __init__(self, cin: int, num_classes: int, kind: str = "fcn", scnn: bool = False,
                 scnn_kernel: int = 9, psp_pool: str = "avg") -> None:
        super().__init__()
        mid = cin // 4
        if kind == "fcn":
            self.context: nn.Module = nn.Identity()
            conv_in = cin
        elif kind == "psp":
            self.context = PyramidPooling(cin, mid, pool=psp_pool)
            conv_in = cin + 4 * mid
        else:
            raise ConfigError(f"head must be 'fcn' or 'psp', got {kind!r}")
        self.conv = nn.Sequential(nn.Conv2d(conv_in, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
                                  nn.ReLU(inplace=True))
        self.scnn = MessagePassing(mid, scnn_kernel) if scnn else None
        self.dropout = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.context(x))
        if self.scnn is not None:
            y = self.scnn(y)
        return self.cls(self.dropout(y))


class ResNetLane(LaneNet):
    """Dilated ResNet lane network (teacher or ResNet-SAD student).

    Args:
        depth: 18, 34, 50 or 101.
        num_classes, num_lanes, input_size, in_channels: as every lanekd model.
        head: ``"fcn"`` | ``"psp"``; psp_pool: ``"avg"`` | ``"bilinear"``;
        scnn: add SCNN message passing in the head; scnn_kernel: its kernel width (9).

    Shape: ``(B, in_channels, H, W)`` -> seg ``(B, C, H, W)``, exist ``(B, L)``.
    """

    def __init__(self, depth: int, num_classes: int = 5, num_lanes: int = 4,
                 input_size: tuple[int, int] = (288, 800), in_channels: int = 3, head: str = "fcn",
                 scnn: bool = False, scnn_kernel: int = 9, psp_pool: str = "avg") -> None:
        super().__init__(num_classes, num_lanes, input_size)
        self.backbone = DilatedResNet(depth, in_channels)
        c = self.backbone.channels
        self.head = SegHead(c[3], num_classes, head, scnn, scnn_kernel, psp_pool)
        if num_lanes:
            self.exist = ExistenceBranch(num_classes, num_lanes, input_size, "avg")
        init_conv_bn(self)
        self.sad_blocks = ("block2", "block3", "block4")
        self.feature_channels = {"block1": c[0], "block2": c[1], "block3": c[2], "block4": c[3],
                                 "encoder": c[3]}

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        l1, l2, l3, l4 = self.backbone(x)
        if feats is not None:
            feats.update(block1=l1, block2=l2, block3=l3, block4=l4, encoder=l4)
        logits = self.head(l4)
        return logits, logits
