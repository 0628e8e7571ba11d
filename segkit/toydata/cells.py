"""A toy "your own data" folder in an awkward layout: cells under a microscope.

What it writes under ``root`` (``n`` images, default 64 of 96 x 96 pixels)::

    scans/NNN_scan.tif          16-bit grey TIFF: dim, noisy cells on a textured background
    labels/NNN_cells.gif        GIF palette mask: 1 cell, 0 background (cells: about 10 %)
    labels/NNN_scan_roi.gif     a second mask per image: the region the microscope saw
                                (mostly 1): pairing by a loose suffix would pick it up

and one broken file: the TIFF of the last image is cut short (a download interrupted).
The names of images and masks differ (``_scan.tif`` / ``_cells.gif``), so the two
folders pair only by patterns: ``{id}_scan.tif`` and ``{id}_cells.gif``.
The pixel values of the scans use only the lower part of the 16-bit range (a 12-bit
camera), which a reader that converts to 8 bits by clipping turns all white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segkit.toydata.draw import blur, make_rng, smooth_noise

DEFAULT_N = 64
DEFAULT_SIZE = (96, 96)


def draw_cells(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One scan: (image (H, W) uint16 in 0..4095, mask (H, W) uint8 0/1)."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    mask = np.zeros((height, width), bool)
    scale = min(width, height) / 96  # cells keep their share of the picture at any size
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = rng.uniform(6, width - 6), rng.uniform(6, height - 6)
        rx, ry = rng.uniform(3.5, 8.0) * scale, rng.uniform(3.5, 8.0) * scale
        angle = rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
        mask |= u * u + v * v <= 1.0
    background = 0.35 + 0.12 * smooth_noise(rng, height, width, cell=24)
    cells = 0.22 * blur(mask.astype(np.float32), 1.0) * (1 + 0.3 * smooth_noise(rng, height,
                                                                                   width, cell=6))
    image = background + cells + rng.normal(0, 0.05, size=(height, width)).astype(np.float32)
    image = np.clip(image, 0, 1) * 4095  # a 12-bit camera, stored in 16 bits
    return image.astype(np.uint16), mask.astype(np.uint8)


def _gif(mask: np.ndarray, path: Path) -> None:
    im = Image.fromarray(mask, mode="P")
    im.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
    im.save(path)


def generate_cells(root: Path, n: int = DEFAULT_N, size: tuple[int, int] = DEFAULT_SIZE,
                   seed: int = 0) -> Path:
    """Write the toy cells folder (module docstring) under ``root``; returns root."""
    root = Path(root)
    scans, labels = root / "scans", root / "labels"
    scans.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    rng = make_rng(seed)
    height, width = size
    for i in range(n):
        image, mask = draw_cells(rng, size)
        Image.fromarray(image).save(scans / f"{i:03d}_scan.tif")
        _gif(mask, labels / f"{i:03d}_cells.gif")
        roi = np.zeros((height, width), np.uint8)
        roi[2:-2, 2:-2] = 1
        _gif(roi, labels / f"{i:03d}_scan_roi.gif")
    broken = scans / f"{n - 1:03d}_scan.tif"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # a download cut short
    return root
