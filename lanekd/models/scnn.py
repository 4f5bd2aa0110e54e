"""SCNN message passing (Pan et al. 2018) and the VGG-16 SCNN of the SAD paper (docs/models.md).

:class:`MessagePassing` propagates information slice by slice in four directions (down, up, right,
left): slice i becomes ``slice_i + ReLU(conv(slice_{i-1}'))`` where ``slice_{i-1}'`` is the already
updated previous slice and ``conv`` a C->C convolution of width ``kernel`` (9) along the slice, no bias.
It is sequential by nature (H/8 + H/8 + W/8 + W/8 small convolutions), hence SCNN's run time.

:class:`SCNN`: VGG-16 conv1-conv4 with pool1-pool3 (no pool4, output stride 8), conv5_1-5_3 with
dilation 2, 3x3 dilated-4 conv to 1024, 1x1 conv to 128, message passing, Dropout2d(0.1), 1x1 conv
to C, bilinear x8. Every conv is followed by BN + ReLU (the Torch original used BN on the layers
above VGG; we also use it in the VGG layers since no ImageNet VGG is available to start from). The
existence branch reads the 1/8 logits (softmax, avg-pool 2x2, FC 128, ReLU, FC L).

Features: ``block1`` = pool2 output (128 @ 1/4), ``block2`` = conv4_3 (512 @ 1/8), ``block3`` =
conv5_3 (512 @ 1/8), ``block4`` = after message passing (128 @ 1/8), ``encoder`` = ``block4``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.models.common import ExistenceBranch, LaneNet, init_conv_bn


class MessagePassing(nn.Module):
    """Spatial message passing down, up, right, left (SCNN_DURL).

    Args:
        channels: feature channels C; kernel: width of each slice convolution (9 in SCNN).

    Shape: ``(B, C, h, w)`` -> ``(B, C, h, w)``.
    """

    def __init__(self, channels: int, kernel: int = 9) -> None:
        super().__init__()
        p = kernel // 2
        self.down = nn.Conv2d(channels, channels, (1, kernel), padding=(0, p), bias=False)
        self.up = nn.Conv2d(channels, channels, (1, kernel), padding=(0, p), bias=False)
        self.right = nn.Conv2d(channels, channels, (kernel, 1), padding=(p, 0), bias=False)
        self.left = nn.Conv2d(channels, channels, (kernel, 1), padding=(p, 0), bias=False)

    @staticmethod
    def _propagate(x: torch.Tensor, conv: nn.Module, dim: int, reverse: bool) -> torch.Tensor:
        slices = list(x.split(1, dim))
        if reverse:
            slices.reverse()
        out = [slices[0]]
        for s in slices[1:]:
            out.append(s + F.relu(conv(out[-1])))
        if reverse:
            out.reverse()
        return torch.cat(out, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._propagate(x, self.down, 2, False)
        x = self._propagate(x, self.up, 2, True)
        x = self._propagate(x, self.right, 3, False)
        return self._propagate(x, self.left, 3, True)


def _conv_bn(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class SCNN(LaneNet):
    """VGG-16 (DeepLab-LargeFOV) SCNN, the SAD paper's large baseline.

    Args:
        num_classes, num_lanes, input_size, in_channels: as every lanekd model;
        scnn_kernel: message-passing kernel width (9).

    Shape: ``(B, in_channels, H, W)`` -> seg ``(B, C, H, W)``, exist ``(B, L)``.
    """

    def __init__(self, num_classes: int = 5, num_lanes: int = 4, input_size: tuple[int, int] = (288, 800),
                 in_channels: int = 3, scnn_kernel: int = 9) -> None:
        super().__init__(num_classes, num_lanes, input_size)
        pool = nn.MaxPool2d(2, 2)
        self.stage12 = nn.Sequential(*_conv_bn(in_channels, 64), *_conv_bn(64, 64), pool,
                                     *_conv_bn(64, 128), *_conv_bn(128, 128), nn.MaxPool2d(2, 2))
        self.stage34 = nn.Sequential(*_conv_bn(128, 256), *_conv_bn(256, 256), *_conv_bn(256, 256),
                                     nn.MaxPool2d(2, 2), *_conv_bn(256, 512), *_conv_bn(512, 512),
                                     *_conv_bn(512, 512))
        self.stage5 = nn.Sequential(*_conv_bn(512, 512, dilation=2), *_conv_bn(512, 512, dilation=2),
                                    *_conv_bn(512, 512, dilation=2))
        self.fc67 = nn.Sequential(*_conv_bn(512, 1024, dilation=4), *_conv_bn(1024, 128, kernel=1))
        self.message = MessagePassing(128, scnn_kernel)
        self.dropout = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(128, num_classes, 1)
        if num_lanes:
            self.exist = ExistenceBranch(num_classes, num_lanes, input_size, "avg")
        init_conv_bn(self)
        self.sad_blocks = ("block2", "block3", "block4")
        self.feature_channels = {"block1": 128, "block2": 512, "block3": 512, "block4": 128, "encoder": 128}

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b1 = self.stage12(x)
        b2 = self.stage34(b1)
        b3 = self.stage5(b2)
        b4 = self.message(self.fc67(b3))
        if feats is not None:
            feats.update(block1=b1, block2=b2, block3=b3, block4=b4, encoder=b4)
        logits = self.cls(self.dropout(b4))
        return logits, logits
