"""Small drawing helpers shared by the toy dataset generators.

Everything here is plain numpy and Pillow: no torch, no network. Images are
numpy arrays with values in [0, 1] while they are being drawn:

- a grey image is ``(H, W) float32``, a colour image ``(H, W, 3) float32``;
- a mask being drawn is ``(H, W) bool`` or a coverage map ``(H, W) float32``
  in [0, 1] (the fraction of each pixel an object covers).

Randomness always comes from a ``numpy.random.Generator`` passed in by the
caller (see :func:`make_rng`), so the same seed draws the same picture.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]


def make_rng(seed: int) -> np.random.Generator:
    """The random generator every toy dataset uses: PCG64 seeded with ``seed``."""
    return np.random.Generator(np.random.PCG64(seed))


# ----------------------------------------------------------------------------- noise and gradients


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float,
                 octaves: int = 3, persistence: float = 0.5,
                 stretch: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Smooth random texture ("value noise"), roughly zero mean, values in about [-1, 1].

    A coarse grid of random values, one every ``cell`` pixels, is enlarged with
    bicubic interpolation; ``octaves`` such layers at halving cell sizes are
    added with weights ``persistence ** k``.

    Args:
        cell: size in pixels of the coarsest blobs.
        stretch: (sx, sy) multiplies the cell size along x and y; (4, 1) gives
            long horizontal streaks (waves, clouds).

    Returns:
        (height, width) float32.
    """
    out = np.zeros((height, width), np.float32)
    total = 0.0
    for k in range(octaves):
        cx = max(cell * stretch[0] / 2**k, 1.0)
        cy = max(cell * stretch[1] / 2**k, 1.0)
        gw = int(np.ceil(width / cx)) + 2
        gh = int(np.ceil(height / cy)) + 2
        grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
        big = Image.fromarray(grid).resize(
            (int(round(gw * cx)), int(round(gh * cy))), Image.Resampling.BICUBIC)
        layer = np.asarray(big, dtype=np.float32)
        oy = int(rng.integers(0, max(layer.shape[0] - height, 0) + 1))
        ox = int(rng.integers(0, max(layer.shape[1] - width, 0) + 1))
        layer = layer[oy:oy + height, ox:ox + width]
        if layer.shape != (height, width):  # tiny sizes: pad by repeating the edge
            layer = np.pad(layer, ((0, height - layer.shape[0]), (0, width - layer.shape[1])),
                           mode="edge")
        weight = persistence**k
        out += weight * layer
        total += weight
    return out / total


def linear_gradient(height: int, width: int, angle_deg: float, low: float = 0.0,
                    high: float = 1.0) -> np.ndarray:
    """A ramp from ``low`` to ``high`` along the direction ``angle_deg`` (0 = left to right,
    90 = top to bottom). Returns (height, width) float32."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.deg2rad(angle_deg)
    t = xx * np.cos(a) + yy * np.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (low + (high - low) * t).astype(np.float32)


def vignette(height: int, width: int, strength: float, center: Point | None = None) -> np.ndarray:
    """Multiplicative lens fall-off: 1 at ``center`` (default: the image centre),
    ``1 - strength`` in the corners. Returns (height, width) float32."""
    cx, cy = center if center is not None else ((width - 1) / 2, (height - 1) / 2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - cx) / (width / 2)) ** 2 + ((yy - cy) / (height / 2)) ** 2
    return (1.0 - strength * np.clip(r2 / 2.0, 0.0, 1.0)).astype(np.float32)


def sensor_noise(rng: np.random.Generator, image: np.ndarray, sigma: float,
                 column_sigma: float = 0.0) -> np.ndarray:
    """Add Gaussian pixel noise (``sigma``) and, optionally, a fixed pattern of
    per-column offsets (``column_sigma``, the stripes of cheap infrared sensors).
    Works on (H, W) and (H, W, 3) float images; returns a new float32 array."""
    noise = rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    out = image.astype(np.float32) + noise
    if column_sigma > 0:
        cols = rng.normal(0.0, column_sigma, size=image.shape[1]).astype(np.float32)
        out += cols[None, :, None] if image.ndim == 3 else cols[None, :]
    return out


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur with standard deviation ``sigma`` pixels.

    Three passes of a box filter (running sums) along each axis: close to a
    Gaussian and fast at any ``sigma``. Edges are extended.
    image: (H, W) or (H, W, C) float; returns float32 of the same shape."""
    out = image.astype(np.float32)
    if sigma <= 0.3:
        return out
    r = max(1, int(round((np.sqrt(4.0 * sigma * sigma + 1.0) - 1.0) / 2.0)))  # 3 boxes of 2r+1
    for axis in (0, 1):
        for _ in range(3):
            pad = [(0, 0)] * out.ndim
            pad[axis] = (r + 1, r)
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            n = out.shape[axis]
            hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
            lo = np.take(c, np.arange(0, n), axis=axis)
            out = ((hi - lo) / (2 * r + 1)).astype(np.float32)
    return out


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float (H, W) image to (height, width); returns float32."""
    im = Image.fromarray(image.astype(np.float32))
    return np.asarray(im.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def stripes(height: int, width: int, period: float, angle_deg: float, phase: float = 0.0,
            duty: float = 0.5) -> np.ndarray:
    """Straight stripes: 1 on the stripes, 0 between them. Returns (height, width) float32."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.deg2rad(angle_deg)
    t = (xx * np.cos(a) + yy * np.sin(a)) / period + phase
    return ((t - np.floor(t)) < duty).astype(np.float32)


def checks(height: int, width: int, period: float, angle_deg: float) -> np.ndarray:
    """A (rotated) checkerboard of 0 and 1. Returns (height, width) float32."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.deg2rad(angle_deg)
    u = (xx * np.cos(a) + yy * np.sin(a)) / period
    v = (-xx * np.sin(a) + yy * np.cos(a)) / period
    return ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)


# ----------------------------------------------------------------------------- shapes


def polygon_coverage(height: int, width: int, points: Sequence[Point], scale: int = 1) -> np.ndarray:
    """Fill a polygon with Pillow and return its mask.

    Args:
        points: (x, y) vertices in pixel units of the ``(height, width)`` image.
        scale: the polygon is drawn on a canvas ``scale`` times larger and
            averaged back down, which gives anti-aliased coverage in [0, 1].

    Returns:
        (height, width) float32 coverage (0 or 1 when scale == 1).
    """
    canvas = Image.new("L", (width * scale, height * scale), 0)
    pts = [(float(x) * scale, float(y) * scale) for x, y in points]
    if len(pts) >= 3:
        ImageDraw.Draw(canvas).polygon(pts, fill=255)
    cov = np.asarray(canvas, dtype=np.float32) / 255.0
    return downsample(cov, scale)


def ellipse_points(cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0,
                   n: int = 48) -> list[Point]:
    """``n`` points around a (rotated) ellipse, for :func:`polygon_coverage`."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    a = np.deg2rad(angle_deg)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return [(float(cx + xi * np.cos(a) - yi * np.sin(a)), float(cy + xi * np.sin(a) + yi * np.cos(a)))
            for xi, yi in zip(x, y)]


def rotate_points(points: Sequence[Point], angle_deg: float, center: Point) -> list[Point]:
    """Rotate (x, y) points by ``angle_deg`` (counter-clockwise on screen) about ``center``."""
    a = np.deg2rad(-angle_deg)  # screen y points down
    c, s = np.cos(a), np.sin(a)
    cx, cy = center
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks: (H*f, W*f[, C]) -> (H, W[, C]) float32."""
    image = image.astype(np.float32, copy=False)
    if factor == 1:
        return image.copy()
    h, w = image.shape[0] // factor, image.shape[1] // factor
    out = np.zeros((h, w) + image.shape[2:], np.float32)
    for dy in range(factor):
        for dx in range(factor):
            out += image[dy:h * factor:factor, dx:w * factor:factor]
    return out / (factor * factor)


def paint(canvas: np.ndarray, coverage: np.ndarray, colour: np.ndarray | float) -> None:
    """Alpha-blend ``colour`` into ``canvas`` (in place) where ``coverage`` > 0.

    canvas: (H, W) or (H, W, 3) float; coverage: (H, W) float in [0, 1];
    colour: a scalar, an RGB triple, or an image shaped like ``canvas``.
    """
    a = coverage[..., None] if canvas.ndim == 3 else coverage
    canvas *= 1.0 - a
    canvas += a * colour


# ----------------------------------------------------------------------------- binary morphology


def _shifted_stack(mask: np.ndarray, radius: int) -> np.ndarray:
    """All shifts of ``mask`` by up to ``radius`` pixels (a square window);
    the image edge is extended, so the frame edge is never an object edge."""
    padded = np.pad(mask, radius, mode="edge")
    h, w = mask.shape
    size = 2 * radius + 1
    return np.stack([padded[dy:dy + h, dx:dx + w] for dy in range(size) for dx in range(size)])


def dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Binary dilation with a (2r+1) x (2r+1) square. mask: (H, W) bool -> (H, W) bool."""
    return _shifted_stack(mask.astype(bool), radius).any(axis=0)


def erode(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Binary erosion with a (2r+1) x (2r+1) square. mask: (H, W) bool -> (H, W) bool."""
    return _shifted_stack(mask.astype(bool), radius).all(axis=0)


# ----------------------------------------------------------------------------- saving


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 in [0, 255] (clipped and rounded)."""
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def palette_image(labels: np.ndarray, palette: np.ndarray) -> Image.Image:
    """A palette ('P') image whose pixel values are ``labels``.

    labels: (H, W) uint8 class indices; palette: (K, 3) uint8 colours for indices 0..K-1.
    """
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(palette)] = palette
    im.putpalette(flat.flatten().tolist())
    return im


# ----------------------------------------------------------------------------- 2-D geometry


def convex_hull(points: Sequence[Point]) -> list[Point]:
    """Convex hull of 2-D points (Andrew's monotone chain), counter-clockwise in x-right/y-up axes."""
    pts = sorted(set((float(x), float(y)) for x, y in points))
    if len(pts) <= 2:
        return pts

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def clip_polygon(subject: Sequence[Point], clip: Sequence[Point]) -> list[Point]:
    """The part of polygon ``subject`` inside the convex polygon ``clip``
    (Sutherland-Hodgman; ``clip`` counter-clockwise in x-right/y-up axes)."""
    out = [tuple(p) for p in subject]
    n = len(clip)
    for i in range(n):
        a, b = clip[i], clip[(i + 1) % n]
        if not out:
            break

        def inside(p, a=a, b=b) -> bool:
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

        def cut(p, q, a=a, b=b):
            # intersection of segment p-q with the line a-b
            dx, dy = q[0] - p[0], q[1] - p[1]
            ex, ey = b[0] - a[0], b[1] - a[1]
            den = dx * ey - dy * ex
            t = ((a[0] - p[0]) * ey - (a[1] - p[1]) * ex) / den
            return (p[0] + t * dx, p[1] + t * dy)

        inp, out = out, []
        for j in range(len(inp)):
            p, q = inp[j], inp[(j + 1) % len(inp)]
            if inside(q):
                if not inside(p):
                    out.append(cut(p, q))
                out.append(q)
            elif inside(p):
                out.append(cut(p, q))
    return out
