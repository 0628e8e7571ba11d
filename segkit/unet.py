"""The U-Net (Ronneberger et al., 2015) in a few small blocks (lesson 02).

The blocks follow milesial/Pytorch-UNet ``unet_parts.py``:

- ``DoubleConv``: (3x3 conv -> BatchNorm -> ReLU) twice. The conv is padded
  (``padding = kernel_size // 2``), so it keeps H and W, and has no bias
  because the BatchNorm right after it has its own shift.
- ``Down``: 2x2 max pooling (halves H and W, rounding down), then DoubleConv.
- ``Up``: upsample the deeper map (transposed conv or bilinear), pad it to the
  skip map's size, concatenate ``[skip, upsampled]`` on the channel axis, DoubleConv.
- ``OutConv``: a 1x1 conv from the features to one score (logit) per class.

Skip-channel arithmetic (transposed up, ``base=64``, ``depth=4``)::

    deep map 1024 ch --ConvTranspose2d--> 512 ch     (the up-conv halves the channels)
    concat with the 512-ch skip           1024 ch     (the concatenation doubles them)
    DoubleConv(1024, 512)                  512 ch     (the conv brings them back)

so the conv after the concatenation must take skip + upsampled channels.
With ``bilinear=True`` the upsampling keeps the channels, so the deepest
layers are halved instead (milesial's ``factor = 2``) to make the sums agree.

Input sizes: any H and W work, not only multiples of ``2**depth``. Each Down
rounds down (a 101-pixel side becomes 50), and each Up pads the upsampled map
back to the skip's exact size (100 -> 101). The one limit: every Down must
leave at least one pixel, so H and W must both be at least ``2**depth``
(16 for the default ``depth=4``, 8 for ``depth=3``). In train mode BatchNorm
also needs more than one value per channel, so a batch of one image must
keep the deepest map bigger than 1x1 (H, W >= ``2**(depth+1)``, or N >= 2).

How many outputs? ``num_classes`` is the number of output channels:

- binary masks (object / background): either ``num_classes=1`` (one logit per
  pixel, train with ``BCEWithLogitsLoss`` / ``segkit.losses.bce_loss``,
  predict ``logit > 0``) or ``num_classes=2`` (two logits, train with
  ``CrossEntropyLoss``, predict ``argmax``). They are equally good; one
  output is the usual choice and what ``segkit.losses.BCEDiceLoss`` expects.
- C > 2 classes: ``num_classes=C`` and cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import DataError, SegkitError


class ChannelMismatchError(SegkitError, RuntimeError):
    """The maps reaching an Up block do not have the channels its conv was built for."""


class DoubleConv(nn.Module):
    """(conv -> BatchNorm -> ReLU) x 2; keeps H and W. Defined in lesson 02 (the exercise
    ``DoubleConv``).

    x: (N, in_ch, H, W) float32 -> (N, out_ch, H, W) float32.
    ``mid_ch`` is the channels between the two convs (default ``out_ch``).
    """

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None,
                 kernel_size: int = 3) -> None:
        super().__init__()
        if mid_ch is None:
            mid_ch = out_ch
        pad = kernel_size // 2  # an odd kernel with this padding keeps H and W
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, kernel_size, padding=pad, bias=False),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, kernel_size, padding=pad, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """MaxPool2d(2) then DoubleConv. Defined in lesson 02 (the exercise ``Down``).

    x: (N, in_ch, H, W) -> (N, out_ch, H // 2, W // 2).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(
            nn.MaxPool2d(2),
            DoubleConv(in_ch, out_ch, kernel_size=kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


def pad_or_crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad (or centre-crop) ``x`` (N, C, h, w) to (N, C, height, width).

    Where the size must grow, the extra rows/columns are split between the two
    sides (the odd one goes to the bottom/right), as in milesial's U-Net.
    """
    dy = height - x.shape[2]
    dx = width - x.shape[3]
    if dy > 0 or dx > 0:
        x = F.pad(x, [max(dx, 0) // 2, max(dx, 0) - max(dx, 0) // 2,
                      max(dy, 0) // 2, max(dy, 0) - max(dy, 0) // 2])
    if dy < 0 or dx < 0:
        top = (x.shape[2] - height) // 2
        left = (x.shape[3] - width) // 2
        x = x[:, :, top:top + height, left:left + width]
    return x


class Up(nn.Module):
    """Upsample the deeper map, join it with the skip map, DoubleConv. Defined in lesson 02
    (the exercise ``Up``).

    x1: the deeper map, (N, in_ch, h, w) for the transposed conv,
        (N, in_ch // 2, h, w) for bilinear upsampling.
    x2: the skip map from the encoder, (N, in_ch // 2, H, W) with H, W about 2h, 2w.
    returns (N, out_ch, H, W): the skip map's size, always.

    Transposed (default): ConvTranspose2d(in_ch, in_ch // 2, 2, stride 2),
    then in_ch // 2 (up) + in_ch // 2 (skip) = in_ch channels -> DoubleConv(in_ch, out_ch).
    Bilinear: Upsample keeps the channels, so x1 must arrive with in_ch // 2;
    the DoubleConv has in_ch // 2 mid channels, as in milesial.
    """

    def __init__(self, in_ch: int, out_ch: int, bilinear: bool = False,
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.bilinear = bilinear
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_ch, out_ch, in_ch // 2, kernel_size=kernel_size)
        else:
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_ch, out_ch, kernel_size=kernel_size)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if not self.bilinear and x1.shape[1] != self.in_ch:
            raise ChannelMismatchError(
                f"Up block expected the deeper map to have {self.in_ch} channels (its "
                f"ConvTranspose2d was built with in_ch={self.in_ch}) but got {x1.shape[1]}; "
                "check that in_ch of this Up block equals the out_ch of the block below it")
        up = self.up(x1)
        up = pad_or_crop_to(up, x2.shape[2], x2.shape[3])
        skip_c, up_c = x2.shape[1], up.shape[1]
        if skip_c + up_c != self.in_ch:
            raise ChannelMismatchError(
                f"Up block expected {self.in_ch} channels after concatenating skip ({skip_c}) "
                f"and upsampled ({up_c}) maps but got {skip_c + up_c}; the conv after the "
                "concatenation must take skip + upsampled channels")
        x = torch.cat([x2, up], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    """1x1 conv: (N, in_ch, H, W) features -> (N, out_ch, H, W) logits."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """U-Net: (N, in_channels, H, W) float32 images -> (N, num_classes, H, W) logits.
    Defined in lesson 02 (the exercise ``UNet``).

    Args:
        in_channels: 3 for RGB, 1 for grayscale.
        num_classes: output channels; 1 for binary masks with BCE, C for C classes
            with cross-entropy (see the module docstring for 1 vs 2).
        base: channels of the first DoubleConv; level i has ``base * 2**i``.
            base=64 is the paper's width (31,037,698 parameters with the defaults),
            base=32 has about a quarter of that (7.76M).
        depth: number of Down (and Up) blocks; H and W must be at least ``2**depth``.
        kernel_size: odd conv kernel size of every DoubleConv (3 or 5 ...).
        bilinear: bilinear upsampling instead of transposed convs (fewer parameters).

    ``self.config`` holds these arguments as a plain dict, so ``UNet(**config)``
    rebuilds the same architecture (checkpoints store it).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 64,
                 depth: int = 4, kernel_size: int = 3, bilinear: bool = False) -> None:
        super().__init__()
        for name, value in [("in_channels", in_channels), ("num_classes", num_classes),
                            ("base", base), ("depth", depth)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"UNet: {name} must be a positive integer, got {value!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"UNet: kernel_size must be an odd positive integer (3, 5, 7 ...) so that "
                f"padding=kernel_size//2 keeps H and W; got {kernel_size!r}")
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "base": base,
                       "depth": depth, "kernel_size": kernel_size, "bilinear": bool(bilinear)}
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = depth

        factor = 2 if bilinear else 1  # bilinear upsampling keeps channels: halve the deepest
        ch = [base * 2 ** i for i in range(depth + 1)]  # e.g. 64, 128, 256, 512, 1024

        self.inc = DoubleConv(in_channels, ch[0], kernel_size=kernel_size)
        self.downs = nn.ModuleList()
        for i in range(1, depth + 1):
            out = ch[i] // factor if i == depth else ch[i]
            self.downs.append(Down(ch[i - 1], out, kernel_size=kernel_size))
        self.ups = nn.ModuleList()
        for i in range(depth, 0, -1):
            out = ch[i - 1] // factor if i > 1 else ch[0]
            self.ups.append(Up(ch[i], out, bilinear, kernel_size=kernel_size))
        self.outc = OutConv(ch[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript cannot compile the friendly messages
            self._check_input(x)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()  # the bottleneck
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)

    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise DataError(
                f"UNet expects a batch of images (N, C, H, W) but got shape {tuple(x.shape)}; "
                "for a single image add the batch axis with x.unsqueeze(0)")
        if x.shape[1] != self.in_channels:
            raise DataError(
                f"UNet was built with in_channels={self.in_channels} but the images have "
                f"{x.shape[1]} channels (shape {tuple(x.shape)}); grayscale vs RGB? "
                "or channels last (N, H, W, C) instead of (N, C, H, W)?")
        smallest = 2 ** self.depth
        if x.shape[2] < smallest or x.shape[3] < smallest:
            raise DataError(
                f"UNet with depth={self.depth} halves the image {self.depth} times, so H and W "
                f"must be at least {smallest}; got {x.shape[2]}x{x.shape[3]} (shape "
                f"{tuple(x.shape)}). Use larger images or a smaller depth.")
        deepest = x.shape[0] * (x.shape[2] // smallest) * (x.shape[3] // smallest)
        if self.training and deepest < 2:
            raise DataError(
                f"UNet in train mode got one {x.shape[2]}x{x.shape[3]} image: after {self.depth} "
                "halvings the deepest map is 1x1, and BatchNorm needs more than one value per "
                "channel to compute its statistics. Train with a batch of 2 or more, larger "
                "images, or call model.eval() if you only want a prediction.")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` by default)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
