"""Tiled (sliding-window) inference: a large image in overlapping windows, with bounded memory.

A U-Net is fully convolutional, so it could take a 4000 x 3000 photo whole, but the
activations of that pass need gigabytes. Instead the image is cut into windows of the
training size that overlap (by ``overlap`` of a window), the model runs on a few windows
at a time, and the logits are blended back: each window's logits are weighted by a
bump that is 1 in the middle and small at the edges (where a window sees least context),
summed, and divided by the summed weights. This is how MONAI's sliding-window inference
works (there with a Gaussian bump).

Memory: the model sees ``batch_size`` windows at once; the output holds one float per
class and pixel of the image. The final resize to the photo's own size is done in bands
of rows (``upsample_in_bands``), so that too stays bounded.

When the image fits in one window the result is exactly that of one whole-image pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["window_starts", "blend_weights", "sliding_window_logits", "upsample_in_bands"]


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``window`` pixels covering ``length`` with ``overlap``.

    The last window ends exactly at ``length``: e.g. (200, 64, 0.25) -> [0, 48, 96, 136].
    """
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    starts = list(range(0, length - window, stride))
    return starts + [length - window]


def blend_weights(height: int, width: int, sigma_scale: float = 0.125) -> torch.Tensor:
    """(height, width) float32 Gaussian bump, 1 at the centre, sigma = sigma_scale * side;
    floored at 1e-3 so that every pixel keeps some weight."""
    def bump(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        return torch.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)

    return (bump(height)[:, None] * bump(width)[None, :]).clamp_min(1e-3)


@torch.no_grad()
def sliding_window_logits(model: torch.nn.Module, x: torch.Tensor, window: tuple[int, int],
                          *, overlap: float = 0.25, batch_size: int = 4) -> torch.Tensor:
    """Logits (1, K, H, W) of ``model`` on x (1, C, H, W) computed window by window.

    ``window`` is (h, w), usually the training size. The blended logits are kept on the
    CPU in float32; the windows go to x's device ``batch_size`` at a time.
    """
    _, _, height, width = x.shape
    wh, ww = min(window[0], height), min(window[1], width)
    if (wh, ww) == (height, width):
        return model(x).float().cpu()
    boxes = [(top, left) for top in window_starts(height, wh, overlap)
             for left in window_starts(width, ww, overlap)]
    weights = blend_weights(wh, ww)
    total = weight_sum = None
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first:first + batch_size]
        tiles = torch.cat([x[:, :, t:t + wh, l:l + ww] for t, l in chunk])
        logits = model(tiles).float().cpu()
        if total is None:
            total = torch.zeros(logits.shape[1], height, width)
            weight_sum = torch.zeros(height, width)
        for (t, l), tile_logits in zip(chunk, logits):
            total[:, t:t + wh, l:l + ww] += tile_logits * weights
            weight_sum[t:t + wh, l:l + ww] += weights
    return (total / weight_sum).unsqueeze(0)


def upsample_in_bands(logits: torch.Tensor, size: tuple[int, int], *, threshold: float = 0.5,
                      band_pixels: int = 4_000_000) -> torch.Tensor:
    """Class map (H, W) int64 of logits (1, K, h, w) resized (bilinear) to ``size`` = (H, W),
    a band of output rows at a time (about ``band_pixels`` pixels of K floats each).

    Bilinear with align_corners=False, as ``F.interpolate``: output row y samples input
    row (y + 0.5) * h / H - 0.5. Binary (K = 1): sigmoid > threshold; else argmax.
    """
    _, k, h, w = logits.shape
    out_h, out_w = size
    columns = F.interpolate(logits, size=(h, out_w), mode="bilinear", align_corners=False)[0]
    band = max(1, band_pixels // max(out_w * k, 1))
    out = torch.empty(out_h, out_w, dtype=torch.int64)
    for y0 in range(0, out_h, band):
        ys = torch.arange(y0, min(out_h, y0 + band), dtype=torch.float32)
        src = ((ys + 0.5) * h / out_h - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=h - 1)
        high = (low + 1).clamp(max=h - 1)
        frac = (src - low.float())[None, :, None]
        rows = columns[:, low] * (1 - frac) + columns[:, high] * frac  # (K, band, W)
        if k == 1:
            out[y0:y0 + len(ys)] = (torch.sigmoid(rows[0]) > threshold).long()
        else:
            out[y0:y0 + len(ys)] = rows.argmax(0)
    return out


def scaled_size(size: tuple[int, int], scale: tuple[float, float]) -> tuple[int, int]:
    """(H, W) times (sy, sx), rounded, at least 1."""
    return max(1, math.floor(size[0] * scale[0] + 0.5)), max(1, math.floor(size[1] * scale[1] + 0.5))
