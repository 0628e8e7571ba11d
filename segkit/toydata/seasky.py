"""Toy sea/sky: single-channel "infrared" horizon scenes with a sea mask.

A thermal camera on a ship looks at the horizon: sky above, sea below. The task
is to label every pixel sea (1) or sky (0). The scenes are made so that
brightness alone does not decide it:

- the horizon is tilted (the ship rolls) and slightly wavy, anywhere from the
  top third to the bottom third of the frame;
- the sky has a gradient and clouds, some brighter and some darker than the sea;
- the sea has waves whose size grows towards the camera and bright sun glints;
- a thin haze band along the horizon;
- the camera's automatic gain differs from scene to scene, and some scenes use
  the "black-hot" palette (inverted);
- sensor noise with column stripes (fixed-pattern noise) and vignetting.

Layout (a generic paired folder, like many small segmentation datasets)::

    <root>/images/<name>.png          mode 'L' (8-bit grey)
    <root>/masks/<name>_mask.png      mode 'L', 0 = sky, 255 = sea

The masks store 255 for sea, not 1, on purpose: lesson 01 shows how to turn
them into class indices 0/1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segkit.toydata import draw

DEFAULT_SIZE = (120, 160)   # (height, width)
DEFAULT_N = 160


def horizon_line(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """y of the horizon (in pixels, may be fractional) for every column x: (width,) float64.

    A tilted straight line plus two gentle waves (swell), about a pixel high."""
    x = np.arange(width, dtype=np.float64) + 0.5
    y0 = height * rng.uniform(0.28, 0.72)
    slope = np.tan(np.deg2rad(rng.uniform(-12.0, 12.0)))
    y = y0 + slope * (x - width / 2)
    for _ in range(2):
        period = width * rng.uniform(0.2, 0.6)
        y += rng.uniform(0.15, 0.6) * np.sin(2 * np.pi * x / period + rng.uniform(0, 2 * np.pi))
    return y


def sea_coverage(horizon: np.ndarray, height: int) -> np.ndarray:
    """Fraction of each pixel below the horizon: (height, width) float32 in [0, 1].

    Pixel row r spans y in [r, r + 1); a pixel is sea when its centre is below the line."""
    rows = np.arange(height, dtype=np.float64)[:, None]
    return np.clip(rows + 1.0 - horizon[None, :], 0.0, 1.0).astype(np.float32)


def draw_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One infrared horizon scene.

    Args:
        size: (height, width).

    Returns:
        image (H, W) uint8 and mask (H, W) uint8 with 0 = sky, 255 = sea.
    """
    height, width = size
    horizon = horizon_line(rng, width, height)
    sea = sea_coverage(horizon, height)
    mask = np.where(np.arange(height)[:, None] + 0.5 >= horizon[None, :], 255, 0).astype(np.uint8)
    rows = np.arange(height, dtype=np.float32)[:, None]
    below = np.clip((rows - horizon[None, :]) / height, 0.0, 1.0)   # 0 at the horizon .. ~0.7
    above = np.clip((horizon[None, :] - rows) / height, 0.0, 1.0)

    # --- sky: colder (darker, in white-hot) towards the zenith, clouds
    horizon_level = rng.uniform(0.4, 0.6)              # the sky just above the horizon
    sky = horizon_level - rng.uniform(0.05, 0.35) * above / 0.5
    clouds = draw.smooth_noise(rng, height, width, cell=rng.uniform(25, 60), octaves=4,
                               stretch=(rng.uniform(1.5, 3.5), 1.0))
    cover = rng.uniform(0.0, 0.8)                      # how cloudy
    cloud_mask = np.clip((clouds - (0.35 - 0.5 * cover)) * 5.0, 0.0, 1.0)
    cloud_level = rng.uniform(-0.3, 0.35)              # warm (bright) or cold (dark) clouds
    sky = sky + cloud_mask * (cloud_level + 0.1 * clouds)

    # --- sea: a step up (usually) or down from the sky at the horizon, waves, glints
    contrast = rng.choice([-1.0, 1.0], p=[0.2, 0.8]) * rng.uniform(0.07, 0.25)
    sea_img = horizon_level + contrast + rng.uniform(-0.2, 0.2) * below   # brighter or darker near the ship
    wave_amp = rng.uniform(0.03, 0.09)
    fine = draw.smooth_noise(rng, height, width, cell=rng.uniform(2.0, 4.0), octaves=2,
                             stretch=(rng.uniform(2.5, 5.0), 1.0))
    coarse = draw.smooth_noise(rng, height, width, cell=rng.uniform(6.0, 12.0), octaves=2,
                               stretch=(rng.uniform(2.5, 5.0), 1.0))
    near = np.clip(below / 0.4, 0.0, 1.0)                             # small waves far, big waves near
    sea_img = sea_img + wave_amp * ((1 - near) * fine + near * coarse) / 0.5
    if rng.random() < 0.6:                                             # sun glitter: bright specks
        band_x = width * rng.uniform(0.1, 0.9)
        band = np.exp(-0.5 * ((np.arange(width) - band_x) / (width * rng.uniform(0.08, 0.25))) ** 2)
        density = rng.uniform(0.03, 0.15)
        specks = (rng.random((height, width)) < density * band[None, :] * np.clip(below / 0.05, 0, 1))
        specks = specks.astype(np.float32)
        specks = np.maximum(specks, 0.5 * (np.roll(specks, 1, axis=1) + np.roll(specks, -1, axis=1)))
        sea_img = sea_img + specks * rng.uniform(0.25, 0.6)

    img = sky * (1 - sea) + sea_img * sea
    # --- haze: a thin band along the horizon, a little brighter or darker
    dist = np.abs(rows + 0.5 - horizon[None, :])
    img = img + rng.uniform(-0.06, 0.06) * np.exp(-dist / rng.uniform(1.0, 3.0))

    # --- camera: automatic gain, palette, optics, sensor
    if rng.random() < 0.25:                            # black-hot palette
        img = 1.0 - img
    img = (img - 0.5) * rng.uniform(0.7, 1.4) + 0.5 + rng.uniform(-0.15, 0.15)
    img = draw.blur(img, rng.uniform(0.0, 0.7))
    img = img * draw.vignette(height, width, rng.uniform(0.05, 0.35))
    img = draw.sensor_noise(rng, img, sigma=rng.uniform(0.003, 0.01), column_sigma=rng.uniform(0.0, 0.012))
    return draw.to_uint8(img), mask


def generate_seasky(root: Path, n: int = DEFAULT_N, size: tuple[int, int] = DEFAULT_SIZE,
                    seed: int = 0) -> Path:
    """Write ``n`` toy sea/sky scenes under ``root`` (images/ and masks/). size: (height, width)."""
    root = Path(root)
    rng = draw.make_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = draw_scene(rng, size)
        name = f"scene_{i:04d}"
        Image.fromarray(image).save(root / "images" / f"{name}.png", optimize=True)
        Image.fromarray(mask).save(root / "masks" / f"{name}_mask.png")
    return root
