"""Toy VOC: scenes of simple objects of 4 classes, in Pascal VOC 2012's layout.

Pascal VOC 2012 segmentation labels 20 object classes plus background in
palette PNGs, and draws a "void" border (index 255, shown cream) a few pixels
wide around every object, where annotators were not sure. Losses and metrics
skip those pixels (``ignore_index=255``). This module draws look-alikes with
4 classes::

    <root>/VOCdevkit/VOC2012/JPEGImages/2007_000123.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/2007_000123.png   palette PNG, values 0..4 and 255
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt     one name per line
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/trainval.txt

so ``torchvision.datasets.VOCSegmentation(root, year="2012", image_set="train")``
reads it as it reads the real thing.

Classes (:data:`VOC_TOY_CLASSES`): 0 background, 1 disc, 2 box, 3 triangle,
4 ring. Objects are textured (plain with shading, stripes, checks), overlap,
leave the frame, and stand on cluttered backgrounds whose blobs and lines use
the same colours, so colour says nothing about the class: shape does. The
classes are imbalanced on purpose: background covers most pixels and
triangles are rare and small (lesson 05 uses class weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segkit.masks import voc_colormap  # the one VOC colour map (re-exported here)
from segkit.toydata import draw

VOC_TOY_CLASSES = ("background", "disc", "box", "triangle", "ring")
IGNORE_INDEX = 255
DEFAULT_SIZE = (120, 160)    # (height, width)
DEFAULT_N = 160              # 120 train + 40 val
VAL_FRACTION = 0.25
SUPERSAMPLE = 2              # the picture is drawn at 2x and averaged down
BORDER_RADIUS = 1            # void band: 1 pixel on each side of every object edge

# how often each class is drawn, and its size (radius as a fraction of the shorter side)
_CLASS_P = {1: 0.33, 2: 0.31, 3: 0.12, 4: 0.24}
_CLASS_SIZE = {1: (0.12, 0.3), 2: (0.12, 0.3), 3: (0.12, 0.2), 4: (0.14, 0.3)}


# ----------------------------------------------------------------------------- colours and textures


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 1], from anywhere in the cube (objects and clutter share it)."""
    return rng.uniform(0.05, 0.95, size=3)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An object's surface: plain, stripes or checks in two colours, with a lighting gradient.

    Returns (height, width, 3) float32."""
    c1, c2 = _random_colour(rng), _random_colour(rng)
    kind = rng.choice(["plain", "stripes", "checks"], p=[0.4, 0.4, 0.2])
    if kind == "stripes":
        t = draw.stripes(height, width, rng.uniform(5, 14), rng.uniform(0, 180), rng.uniform(0, 1))
    elif kind == "checks":
        t = draw.checks(height, width, rng.uniform(5, 12), rng.uniform(0, 90))
    else:
        t = np.zeros((height, width), np.float32)
    tex = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    shade = draw.linear_gradient(height, width, rng.uniform(0, 360), rng.uniform(0.6, 0.85), 1.1)
    return (tex * shade[..., None]).astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered background: a blotchy colour field, soft blobs and lines. (H, W, 3) float32."""
    a, b = _random_colour(rng), _random_colour(rng)
    field = draw.smooth_noise(rng, height, width, cell=width / rng.uniform(1.5, 4), octaves=3)
    t = np.clip(field + 0.5, 0, 1)
    img = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    # soft irregular blobs, textured with a fine grain
    grain = (1.0 + 0.15 * draw.smooth_noise(rng, height, width, cell=3.0, octaves=2))[..., None]
    for _ in range(int(rng.integers(2, 6))):
        field = draw.smooth_noise(rng, height, width, cell=width / rng.uniform(3, 7), octaves=2)
        blob = np.clip((field - rng.uniform(0.25, 0.45)) * rng.uniform(3, 10), 0, 1)
        draw.paint(img, blob, _random_colour(rng)[None, None, :] * grain)
    # straight lines and sticks (anti-aliased)
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    for _ in range(int(rng.integers(2, 7))):
        canvas.paste(0, (0, 0, canvas.width, canvas.height))
        x0, y0 = rng.uniform(-0.2, 1.2) * width, rng.uniform(-0.2, 1.2) * height
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.2, 1.0) * width
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        S = SUPERSAMPLE
        ImageDraw.Draw(canvas).line([(x0 * S, y0 * S), (x1 * S, y1 * S)], fill=255,
                                    width=int(rng.integers(1, 8)))
        cov = draw.downsample(np.asarray(canvas, np.float32) / 255.0, SUPERSAMPLE)
        draw.paint(img, cov, _random_colour(rng))
    return img.astype(np.float32)


# ----------------------------------------------------------------------------- objects


def _object_polygons(rng: np.random.Generator, cls: int, cx: float, cy: float, r: float
                     ) -> tuple[list[tuple[float, float]], list[tuple[float, float]] | None]:
    """(outline, hole) polygons of one object in pixel coordinates; hole is None except for rings."""
    angle = rng.uniform(0, 360)
    if cls == 1:     # disc: a circle or a slightly squashed ellipse
        return draw.ellipse_points(cx, cy, r, r * rng.uniform(0.75, 1.0), angle, n=64), None
    if cls == 2:     # box: a rotated rectangle
        w, h = r * rng.uniform(1.0, 1.5), r * rng.uniform(0.6, 1.0)
        pts = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)]
        return draw.rotate_points(pts, angle, (cx, cy)), None
    if cls == 3:     # triangle: corners spread around a circle, no sliver
        base = rng.uniform(0, 2 * np.pi)
        t = base + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.35, 0.35, 3)
        return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in t], None
    if cls == 4:     # ring: a circle with a round hole
        squash = rng.uniform(0.8, 1.0)
        outer = draw.ellipse_points(cx, cy, r, r * squash, angle, n=64)
        k = rng.uniform(0.45, 0.65)
        return outer, draw.ellipse_points(cx, cy, r * k, r * k * squash, angle, n=64)
    raise ValueError(f"unknown class index {cls}")


def _coverage(width: int, height: int, outline, hole, scale: int) -> np.ndarray:
    """(height*scale, width*scale) bool: the object's pixels on a ``scale``-times canvas."""
    canvas = Image.new("L", (width * scale, height * scale), 0)
    d = ImageDraw.Draw(canvas)
    d.polygon([(x * scale, y * scale) for x, y in outline], fill=1)
    if hole is not None:
        d.polygon([(x * scale, y * scale) for x, y in hole], fill=0)
    return np.asarray(canvas, dtype=bool)


def void_border(instances: np.ndarray, radius: int = BORDER_RADIUS) -> np.ndarray:
    """Pixels near an edge between two different instances (or an instance and the background).

    instances: (H, W) int, 0 = background, k = the k-th object.

    Returns:
        (H, W) bool: every pixel within ``radius`` pixels (a square window) of a pixel
        of another instance, i.e. a band about ``2 * radius`` pixels wide along each
        edge, which VOC marks 255. The frame edge is not an object edge.
    """
    void = np.zeros(instances.shape, bool)
    for k in np.unique(instances):
        region = instances == k
        void |= region & draw.dilate(~region, radius)
    return void


def draw_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One toy VOC scene.

    Args:
        size: (height, width).

    Returns:
        image (H, W, 3) uint8 and label (H, W) uint8 with class indices 0..4 and 255 on
        the void borders.
    """
    height, width = size
    S = SUPERSAMPLE
    img = _background(rng, height, width)
    hi = np.zeros((height * S, width * S, 3), np.float32)
    hi[:] = np.repeat(np.repeat(img, S, axis=0), S, axis=1)
    instances = np.zeros((height, width), np.int32)
    labels = np.zeros((height, width), np.uint8)
    n_objects = int(rng.integers(2, 6))
    for k in range(1, n_objects + 1):
        drawn = _draw_object(rng, hi, width, height)
        if drawn is None:
            continue
        cov, cls = drawn
        instances[cov] = k
        labels[cov] = cls
    # sometimes a thin stick lies across everything: it is background, like a VOC occluder
    if rng.random() < 0.3:
        line_lo = _draw_stick(rng, hi, width, height)
        instances[line_lo] = 0
        labels[line_lo] = 0
    img = draw.downsample(hi, S)
    img = draw.sensor_noise(rng, img, sigma=rng.uniform(0.003, 0.012))
    border = void_border(instances)
    labels[border] = IGNORE_INDEX
    return draw.to_uint8(img), labels


def _draw_object(rng: np.random.Generator, hi: np.ndarray, width: int, height: int):
    """Draw one object of a random class onto ``hi`` (the supersampled image, in place),
    with a soft shadow and a dark rim. Returns (coverage (H, W) bool, class), or None when
    the object fell outside the picture."""
    S = SUPERSAMPLE
    classes = list(_CLASS_P)
    probs = np.array([_CLASS_P[c] for c in classes])
    cls = int(classes[int(rng.choice(len(classes), p=probs / probs.sum()))])
    lo, hi_r = _CLASS_SIZE[cls]
    r = min(width, height) * rng.uniform(lo, hi_r)
    cx, cy = rng.uniform(-0.05, 1.05) * width, rng.uniform(-0.05, 1.05) * height
    outline, hole = _object_polygons(rng, cls, cx, cy, r)
    cov = _coverage(width, height, outline, hole, 1)
    cov_hi = _coverage(width, height, outline, hole, S)
    rows, cols = np.flatnonzero(cov_hi.any(axis=1)), np.flatnonzero(cov_hi.any(axis=0))
    if len(rows) == 0:
        return None
    # work inside the object's box (in low-res pixels, with a margin for shadow and rim)
    y0, y1 = max(rows[0] // S - 6, 0), min(rows[-1] // S + 7, height)
    x0, x1 = max(cols[0] // S - 6, 0), min(cols[-1] // S + 7, width)
    box_hi = (slice(y0 * S, y1 * S), slice(x0 * S, x1 * S))
    # a soft drop shadow, a little down and to the right
    shadow = draw.blur(cov[y0:y1, x0:x1].astype(np.float32), 1.5)
    shadow = np.roll(np.roll(shadow, 2, axis=0), 1, axis=1)
    hi[box_hi] *= 1.0 - 0.35 * np.repeat(np.repeat(shadow, S, axis=0), S, axis=1)[..., None]
    # the object: a texture with a thin dark rim
    region = cov_hi[box_hi]
    texture = _texture(rng, region.shape[0], region.shape[1])
    texture[region & ~draw.erode(region, 1)] *= 0.55
    np.copyto(hi[box_hi], texture, where=region[..., None])
    return cov, cls


def _draw_stick(rng: np.random.Generator, hi: np.ndarray, width: int, height: int) -> np.ndarray:
    """Draw a thin stick of a random colour across ``hi`` (in place); returns where it
    covers the low-resolution picture, (H, W) bool."""
    S = SUPERSAMPLE
    line = Image.new("L", (width * S, height * S), 0)
    x0, y0, x1, y1 = rng.uniform(0, 1, 4) * [width, height, width, height]
    ImageDraw.Draw(line).line([(x0 * S, y0 * S), (x1 * S, y1 * S)], fill=1,
                              width=int(rng.integers(2, 5)) * S)
    line_hi = np.asarray(line, dtype=bool)
    np.copyto(hi, _random_colour(rng).astype(np.float32), where=line_hi[..., None])
    return draw.downsample(line_hi.astype(np.float32), S) >= 0.5


def _voc_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct VOC-style names like 2007_000123, sorted."""
    names: set[str] = set()
    while len(names) < n:
        names.add(f"{int(rng.integers(2007, 2012))}_{int(rng.integers(0, 10000)):06d}")
    return sorted(names)


def generate_voc(root: Path, n: int = DEFAULT_N, size: tuple[int, int] = DEFAULT_SIZE,
                 seed: int = 0) -> Path:
    """Write ``n`` toy VOC scenes under ``root``/VOCdevkit/VOC2012 (a quarter of them in val).

    size: (height, width). Returns ``root``."""
    root = Path(root)
    rng = draw.make_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    names = _voc_names(rng, n)
    n_val = int(round(n * VAL_FRACTION)) if n > 1 else 0
    val = set(rng.choice(names, size=n_val, replace=False).tolist()) if n_val else set()
    palette = voc_colormap(256)
    for name in names:
        image, labels = draw_scene(rng, size)
        Image.fromarray(image).save(voc / "JPEGImages" / f"{name}.jpg", format="JPEG",
                                    quality=int(rng.integers(75, 90)))
        draw.palette_image(labels, palette).save(voc / "SegmentationClass" / f"{name}.png")
    lists = {"train": [m for m in names if m not in val], "val": sorted(val), "trainval": names}
    for split, members in lists.items():
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(m + "\n" for m in members))
    return root
