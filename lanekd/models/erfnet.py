"""ERFNet (Romera et al. 2017) as used for CULane in the SAD code base (docs/models.md).

Encoder: down 3->16 (1/2); down 16->64 (1/4); 5 non-bottleneck-1D(64, dropout 0.1); down 64->128
(1/8); twice non-bottleneck-1D(128, dropout 0.1) with dilations 2, 4, 8, 16. Decoder: up 128->64, 2
non-bt-1D(64), up 64->16, 2 non-bt-1D(16), 2x2 stride-2 transposed conv to C classes. BN eps 1e-3,
convolutions with bias (as in the ERFNet code).

Existence branch (ERFNet-CULane code of the SAD repository): on the 128-channel 1/8 encoder output,
3x3 dilated-4 conv 128->32 (no bias), BN, ReLU, Dropout2d(0.1), 1x1 32->C, softmax, **max**-pool 2x2,
FC 128, ReLU, FC L.
``exist_pool="avg"`` switches the pooling.

Feature mapping (``block1..block4`` are the encoder stages, shallow to deep):

* ``block1``: the first downsampler (16 channels, 1/2);
* ``block2``: stage 2, the 64-channel 1/4 stage (downsampler + 5 non-bt-1D);
* ``block3``: first half of the 1/8 dilated stack (downsampler + dilations 2, 4, 8, 16), 128 channels;
* ``block4``: second half (dilations 2, 4, 8, 16 again), 128 channels; ``encoder`` = ``block4``.

Default SAD chain (``sad_blocks``) = ``("block2", "block4")``: the author's "stage 2 mimics stage 3"
(SAD paper; 64 channels at 1/4 against the full 128-channel 1/8 stack; the attention map of block 4 is
resized to 1/4 by the SAD loss). ``("block2", "block3", "block4")`` is the finer alternative the
distillation config can select.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.models.common import ExistenceBranch, LaneNet
from lanekd.models.enet import p1_conv


class DownsamplerBlock(nn.Module):
    """3x3 stride-2 conv (out - in channels) concatenated with a 2x2 max-pool; BN, ReLU.

    When ``in_channels >= out_channels`` (label input with many classes) the conv gives all channels.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pool_input = cin < cout
        self.conv = nn.Conv2d(cin, cout - cin if self.pool_input else cout, 3, stride=2, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.pool_input:
            y = torch.cat([y, F.max_pool2d(x, 2)], dim=1)
        return F.relu(self.bn(y))


class NonBottleneck1D(nn.Module):
    """Factorised residual block: (3x1, ReLU, 1x3, BN, ReLU) then the dilated pair, BN, dropout; residual."""

    def __init__(self, channels: int, dropout: float, dilation: int = 1) -> None:
        super().__init__()
        c, d = channels, dilation
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(c, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d), bias=True)
        self.bn2 = nn.BatchNorm2d(c, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv3x1_1(x))
        y = F.relu(self.bn1(self.conv1x3_1(y)))
        y = F.relu(self.conv3x1_2(y))
        y = self.dropout(self.bn2(self.conv1x3_2(y)))
        return F.relu(y + x)


def _upsampler(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(inplace=True))


class ERFNet(LaneNet):
    """ERFNet with the ERFNet-code existence branch.

    Args:
        num_classes: output classes; num_lanes: existence outputs (0: no branch);
        input_size: ``(H, W)``, divisible by 8; in_channels: 3 (RGB) or C (one-hot label input);
        exist_pool: ``"max"`` (ERFNet code, default) or ``"avg"``; dropout: encoder dropout (0.1).

    Shape: ``(B, in_channels, H, W)`` -> seg ``(B, C, H, W)``, exist ``(B, L)``.
    """

    def __init__(self, num_classes: int = 5, num_lanes: int = 4, input_size: tuple[int, int] = (288, 800),
                 in_channels: int = 3, exist_pool: str = "max", dropout: float = 0.1) -> None:
        super().__init__(num_classes, num_lanes, input_size)
        self.block1 = DownsamplerBlock(in_channels, 16)
        self.block2 = nn.Sequential(DownsamplerBlock(16, 64),
                                    *[NonBottleneck1D(64, dropout) for _ in range(5)])
        self.block3 = nn.Sequential(DownsamplerBlock(64, 128),
                                    *[NonBottleneck1D(128, dropout, d) for d in (2, 4, 8, 16)])
        self.block4 = nn.Sequential(*[NonBottleneck1D(128, dropout, d) for d in (2, 4, 8, 16)])
        self.decoder = nn.Sequential(_upsampler(128, 64), NonBottleneck1D(64, 0.0), NonBottleneck1D(64, 0.0),
                                     _upsampler(64, 16), NonBottleneck1D(16, 0.0), NonBottleneck1D(16, 0.0),
                                     nn.ConvTranspose2d(16, num_classes, 2, stride=2, bias=True))
        if num_lanes:
            self.exist = ExistenceBranch(num_classes, num_lanes, input_size, exist_pool,
                                         p1_conv("erfnet", 128, num_classes))
        self.sad_blocks = ("block2", "block4")
        self.feature_channels = {"block1": 16, "block2": 64, "block3": 128, "block4": 128, "encoder": 128}

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b1 = self.block1(x)
        b2 = self.block2(b1)
        b3 = self.block3(b2)
        b4 = self.block4(b3)
        if feats is not None:
            feats.update(block1=b1, block2=b2, block3=b3, block4=b4, encoder=b4)
        return self.decoder(b4), b4
