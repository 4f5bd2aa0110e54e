"""ENet (Paszke et al. 2016) and ENet-SAD (Hou et al. 2019); choices in docs/models.md.

ENet layout (as in the common PyTorch port): initial block (3x3 stride-2 conv concatenated with a
max-pool, 16 channels at 1/2) -> stage 1 (downsampling bottleneck to 64 at 1/4 + 4 bottlenecks)
-> stage 2 (downsampling to 128 at 1/8 + regular, dilated 2, asymmetric 5, dilated 4, regular,
dilated 8, asymmetric 5, dilated 16) -> stage 3 (the same 8 bottlenecks) -> upsampling to 64 + 2
bottlenecks -> upsampling to 16 + 1 bottleneck -> 3x3 stride-2 transposed conv to C classes.
PReLU (one parameter, as in the port) in the encoder, ReLU in the decoder, no conv biases.

ENet-SAD blocks: E1 = stage 1, E2 = stage 2 (with downsampling), E3 and E4 = stage-2-like 8-bottleneck
sequences at 1/8; the decoder reads ``concat(E3, E4)`` (256 channels); P1 (existence) hangs off E4.

Choices the ENet-SAD paper leaves open, decided here and exposed as options of
``build_model("enet-sad", ...)``:

* ``share`` - weight sharing between the 1/8 blocks. ``"none"`` (default): E2, E3 and E4 have their
  own weights; ``"e3e4"``: E4 reuses E3's bottlenecks; ``"all"``: E3 and E4 reuse E2's 8 bottlenecks
  (the unofficial port's ``weight_share=True``). Only the defaults (with ``bottleneck_width="output"``)
  match the released 0.98M parameters within 5%; the counts of every variant are in docs/models.md.
* ``exist_conv`` - the P1 convolution producing the C-channel map the branch pools. ``"1x1"``
  (default): one 1x1 conv 128->C with bias, the SCNN-lineage classifier; ``"erfnet"``: 3x3 dilated-4
  conv 128->32, BN, ReLU, Dropout2d(0.1), 1x1 32->C, as in the ERFNet code.
* ``exist_pool`` - ``"avg"`` (default, as in the SCNN branch ENet-SAD was derived from) or ``"max"``.
* ``bottleneck_width`` (ENet too) - internal width of the down/upsampling bottlenecks. ``"output"``
  (default): a quarter of the output channels, as in the original Torch ENet the released ENet-SAD
  Torch code builds on; ``"input"``: a quarter of the input channels, as in the common PyTorch port
  (the ENet paper's 0.35M count). Regular bottlenecks (in = out) are unaffected.

Feature names: ENet-SAD ``block1..block4`` = E1..E4, ``encoder`` = concat(E3, E4) (what the decoder
reads). Plain ENet: ``block1`` = initial block (16 @ 1/2), ``block2`` = stage 1 (64 @ 1/4),
``block3`` = stage 2, ``block4`` = stage 3 (128 @ 1/8), ``encoder`` = stage 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lanekd.errors import ConfigError
from lanekd.models.common import ExistenceBranch, LaneNet


def _act(relu: bool) -> nn.Module:
    return nn.ReLU(inplace=True) if relu else nn.PReLU()


def _cbr(cin: int, cout: int, kernel: int | tuple[int, int], relu: bool, stride: int = 1,
         padding: int | tuple[int, int] = 0, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False),
                         nn.BatchNorm2d(cout), _act(relu))


def _mid(cin: int, cout: int, width: str) -> int:
    """Internal width of a down/upsampling bottleneck: a quarter of its output or of its input."""
    if width not in ("output", "input"):
        raise ConfigError(f"bottleneck_width must be 'output' or 'input', got {width!r}")
    return (cout if width == "output" else cin) // 4


def max_unpool2x2(x: torch.Tensor, indices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of a 2x2 max-pool with indices, written with ``scatter``.

    Same result as ``F.max_unpool2d`` but exports to ONNX (``ScatterElements``) and traces cleanly.

    Args:
        x: ``(B, C, h, w)`` values; indices: ``(B, C, h, w)`` flat positions in the ``H*W`` plane.
        size: ``(H, W)`` of the output.

    Returns:
        ``(B, C, H, W)``, zero except at the stored positions.
    """
    b, c = x.shape[0], x.shape[1]
    out = x.new_zeros((b, c, size[0] * size[1]))
    out = out.scatter(2, indices.flatten(2), x.flatten(2))
    return out.view(b, c, size[0], size[1])


class InitialBlock(nn.Module):
    """3x3 stride-2 conv (16 - in channels) concatenated with a 2x2 max-pool of the input; BN, PReLU.

    With ``in_channels >= 16`` (label-input teachers with many classes) the pooled branch is dropped
    and the conv alone gives the 16 channels.
    """

    def __init__(self, in_channels: int, out_channels: int = 16) -> None:
        super().__init__()
        self.pool_input = in_channels < out_channels
        conv_out = out_channels - in_channels if self.pool_input else out_channels
        self.conv = nn.Conv2d(in_channels, conv_out, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.pool_input:
            y = torch.cat([y, F.max_pool2d(x, 2)], dim=1)
        return self.act(self.bn(y))


class RegularBottleneck(nn.Module):
    """ENet bottleneck: 1x1 down (channels/4), 3x3 / dilated / asymmetric k, 1x1 up, dropout; residual."""

    def __init__(self, channels: int, dilation: int = 1, asymmetric: int = 0, dropout: float = 0.0,
                 relu: bool = False) -> None:
        super().__init__()
        mid = channels // 4
        if asymmetric:
            k, p = asymmetric, asymmetric // 2
            main: nn.Module = nn.Sequential(_cbr(mid, mid, (k, 1), relu, padding=(p, 0)),
                                            _cbr(mid, mid, (1, k), relu, padding=(0, p)))
        else:
            main = _cbr(mid, mid, 3, relu, padding=dilation, dilation=dilation)
        self.ext = nn.Sequential(_cbr(channels, mid, 1, relu), main, _cbr(mid, channels, 1, relu),
                                 nn.Dropout2d(dropout))
        self.act = _act(relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.ext(x))


class DownsamplingBottleneck(nn.Module):
    """Main: 2x2 max-pool (indices kept) zero-padded in channels; extension: 2x2/2 conv, 3x3, 1x1."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0, width: str = "output") -> None:
        super().__init__()
        mid = _mid(cin, cout, width)
        self.cout = cout
        self.ext = nn.Sequential(_cbr(cin, mid, 2, False, stride=2), _cbr(mid, mid, 3, False, padding=1),
                                 _cbr(mid, cout, 1, False), nn.Dropout2d(dropout))
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = F.max_pool2d(x, 2, return_indices=True)
        ext = self.ext(x)
        main = F.pad(main, (0, 0, 0, 0, 0, self.cout - x.shape[1]))
        return self.act(main + ext), indices


class UpsamplingBottleneck(nn.Module):
    """Main: 1x1 conv + BN, then max-unpooling with stored indices; extension: 1x1, 2x2/2 deconv, 1x1."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0, width: str = "output") -> None:
        super().__init__()
        mid = _mid(cin, cout, width)
        self.main = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.ext = nn.Sequential(
            _cbr(cin, mid, 1, True),
            nn.ConvTranspose2d(mid, mid, 2, stride=2, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.Dropout2d(dropout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        ext = self.ext(x)
        main = max_unpool2x2(self.main(x), indices, (int(ext.shape[-2]), int(ext.shape[-1])))
        return self.act(main + ext)


def stage2_bottlenecks(dropout: float = 0.1) -> nn.Sequential:
    """The 8 bottlenecks of ENet stages 2/3 (128 ch): regular, d2, asym5, d4, regular, d8, asym5, d16."""
    spec = [(1, 0), (2, 0), (1, 5), (4, 0), (1, 0), (8, 0), (1, 5), (16, 0)]
    return nn.Sequential(*[RegularBottleneck(128, d, a, dropout) for d, a in spec])


class Stage1(nn.Module):
    """ENet stage 1: downsampling 16->64 (1/4) + 4 regular bottlenecks, dropout 0.01."""

    def __init__(self, width: str = "output") -> None:
        super().__init__()
        self.down = DownsamplingBottleneck(16, 64, dropout=0.01, width=width)
        self.blocks = nn.Sequential(*[RegularBottleneck(64, dropout=0.01) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, idx = self.down(x)
        return self.blocks(y), idx


class Decoder(nn.Module):
    """ENet decoder: up cin->64 (+2 bottlenecks), up 64->16 (+1 bottleneck), 3x3/2 deconv to classes."""

    def __init__(self, cin: int, num_classes: int, width: str = "output") -> None:
        super().__init__()
        self.up1 = UpsamplingBottleneck(cin, 64, dropout=0.1, width=width)
        self.blocks1 = nn.Sequential(RegularBottleneck(64, dropout=0.1, relu=True),
                                     RegularBottleneck(64, dropout=0.1, relu=True))
        self.up2 = UpsamplingBottleneck(64, 16, dropout=0.1, width=width)
        self.blocks2 = RegularBottleneck(16, dropout=0.1, relu=True)
        self.full = nn.ConvTranspose2d(16, num_classes, 3, stride=2, padding=1, output_padding=1, bias=False)

    def forward(self, x: torch.Tensor, idx2: torch.Tensor, idx1: torch.Tensor) -> torch.Tensor:
        x = self.blocks1(self.up1(x, idx2))
        x = self.blocks2(self.up2(x, idx1))
        return self.full(x)


def p1_conv(form: str, cin: int, num_classes: int) -> nn.Module:
    """The P1 convolution giving the C-channel 1/8 map the existence branch pools (see module doc)."""
    if form == "1x1":
        return nn.Conv2d(cin, num_classes, 1)
    if form == "erfnet":
        return nn.Sequential(nn.Conv2d(cin, 32, 3, padding=4, dilation=4, bias=False),
                             nn.BatchNorm2d(32, eps=1e-3), nn.ReLU(inplace=True), nn.Dropout2d(0.1),
                             nn.Conv2d(32, num_classes, 1))
    raise ConfigError(f"exist_conv must be '1x1' or 'erfnet', got {form!r}")


class ENet(LaneNet):
    """Plain ENet with the P1 existence branch on the stage-3 output.

    Args:
        num_classes: output classes; num_lanes: existence outputs (0: no branch);
        input_size: ``(H, W)``, divisible by 8; in_channels: 3 (RGB) or C (one-hot label input);
        exist_conv, exist_pool: P1 form; bottleneck_width: ``"output"`` | ``"input"`` (module doc).

    Shape: ``(B, in_channels, H, W)`` -> seg ``(B, C, H, W)``, exist ``(B, L)``.
    """

    def __init__(self, num_classes: int = 5, num_lanes: int = 4, input_size: tuple[int, int] = (288, 800),
                 in_channels: int = 3, exist_conv: str = "1x1", exist_pool: str = "avg",
                 bottleneck_width: str = "output") -> None:
        super().__init__(num_classes, num_lanes, input_size)
        self.initial = InitialBlock(in_channels)
        self.stage1 = Stage1(bottleneck_width)
        self.down2 = DownsamplingBottleneck(64, 128, dropout=0.1, width=bottleneck_width)
        self.stage2 = stage2_bottlenecks()
        self.stage3 = stage2_bottlenecks()
        self.decoder = Decoder(128, num_classes, bottleneck_width)
        if num_lanes:
            self.exist = ExistenceBranch(num_classes, num_lanes, input_size, exist_pool,
                                         p1_conv(exist_conv, 128, num_classes))
        self.sad_blocks = ("block3", "block4")
        self.feature_channels = {"block1": 16, "block2": 64, "block3": 128, "block4": 128, "encoder": 128}

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x0 = self.initial(x)
        x1, idx1 = self.stage1(x0)
        x2, idx2 = self.down2(x1)
        x2 = self.stage2(x2)
        x3 = self.stage3(x2)
        if feats is not None:
            feats.update(block1=x0, block2=x1, block3=x2, block4=x3, encoder=x3)
        return self.decoder(x3, idx2, idx1), x3


class ENetSAD(LaneNet):
    """ENet-SAD: E1..E4 encoder, concat(E3, E4) decoder input, P1 on E4 (SAD paper, ENet-SAD figure).

    Args:
        num_classes, num_lanes, input_size, in_channels: as :class:`ENet`.
        share: ``"none"`` | ``"e3e4"`` | ``"all"`` weight sharing of the 1/8 blocks (module doc).
        exist_conv: ``"1x1"`` | ``"erfnet"``; exist_pool: ``"avg"`` | ``"max"``;
        bottleneck_width: ``"output"`` | ``"input"`` (module doc).

    Shape: ``(B, in_channels, H, W)`` -> seg ``(B, C, H, W)``, exist ``(B, L)``; features E1 ``(B, 64,
    H/4, W/4)``, E2..E4 ``(B, 128, H/8, W/8)``, encoder ``(B, 256, H/8, W/8)``.
    """

    def __init__(self, num_classes: int = 5, num_lanes: int = 4, input_size: tuple[int, int] = (288, 800),
                 in_channels: int = 3, share: str = "none", exist_conv: str = "1x1",
                 exist_pool: str = "avg", bottleneck_width: str = "output") -> None:
        super().__init__(num_classes, num_lanes, input_size)
        if share not in ("none", "e3e4", "all"):
            raise ConfigError(f"share must be 'none', 'e3e4' or 'all', got {share!r}")
        self.initial = InitialBlock(in_channels)
        self.e1 = Stage1(bottleneck_width)
        self.down2 = DownsamplingBottleneck(64, 128, dropout=0.1, width=bottleneck_width)
        self.e2 = stage2_bottlenecks()
        # Shared blocks are the same module object: parameters() deduplicates them, so the parameter
        # count and the optimiser see one copy, and state_dict stores both names (harmless).
        self.e3 = self.e2 if share == "all" else stage2_bottlenecks()
        self.e4 = self.e3 if share in ("all", "e3e4") else stage2_bottlenecks()
        self.decoder = Decoder(256, num_classes, bottleneck_width)
        if num_lanes:
            self.exist = ExistenceBranch(num_classes, num_lanes, input_size, exist_pool,
                                         p1_conv(exist_conv, 128, num_classes))
        self.sad_blocks = ("block2", "block3", "block4")
        self.feature_channels = {"block1": 64, "block2": 128, "block3": 128, "block4": 128, "encoder": 256}

    def _forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        e1, idx1 = self.e1(self.initial(x))
        e2, idx2 = self.down2(e1)
        e2 = self.e2(e2)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        enc = torch.cat([e3, e4], dim=1)
        if feats is not None:
            feats.update(block1=e1, block2=e2, block3=e3, block4=e4, encoder=enc)
        return self.decoder(enc, idx2, idx1), e4
