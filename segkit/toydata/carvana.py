"""Toy Carvana: photos of cars on a studio turntable, in Kaggle's Carvana layout.

The real dataset (Kaggle "Carvana Image Masking Challenge") has 16 photos of
each car, one every 22.5 degrees of a turntable, 1918x1280 JPEGs, and a GIF mask
per photo (palette image, 0 = background, 1 = car). This module draws small
look-alikes::

    <root>/train/<id>_<NN>.jpg                 RGB photo, NN = view 01..16
    <root>/train_masks/<id>_<NN>_mask.gif      palette ('P') GIF, 0 background, 1 car
    <root>/train_masks.csv                     img,rle_mask (Kaggle run-length encoding)
    <root>/metadata.csv                        id,year,make,model (made up)

``<id>`` is 12 lowercase hex characters, like the real ids.

How a picture is made (see :func:`draw_car_photo`):

1. a car is built from flat 3-D faces: a body and a cabin (two extruded side
   profiles: sedan, hatch, van or coupe), windows, lights, grille and four
   wheels (cylinders);
2. it is turned on the turntable (view NN -> 22.5 * (NN - 1) degrees), seen
   from slightly above, and drawn with a depth buffer at 2x the image size,
   then averaged down (anti-aliased edges);
3. it is pasted on a studio background (wall, floor, soft shadow under the
   car, uneven lighting), with sensor noise and JPEG compression.

The mask is the car's silhouette: body, windows and wheels, never the shadow.
Body colours include white, silver and grey close to the studio's, and dark
cars, so no colour threshold separates car from background.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segkit.toydata import draw

DEFAULT_SIZE = (160, 240)   # (height, width); real Carvana: 1280 x 1918, the same 3:2
DEFAULT_N = 192             # 48 cars x 4 views
VIEWS_PER_CAR = 4
SUPERSAMPLE = 2             # the car is drawn at 2x and averaged down

MASK_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)  # 0 black, 1 white

_MAKES = {
    "Acmotor": ["Strada", "Pico", "Transit"],
    "Velora": ["GT", "Avena", "Cruze X"],
    "Kestrel": ["Hawk", "Talon", "Glide"],
    "Norda": ["Fjord", "Polar", "Skerry"],
    "Tamsin": ["City", "Family", "Voyager"],
    "Orbis": ["One", "Two", "Nova"],
}

# body colours (RGB in [0, 1]); "light" ones sit close to the studio background
_LIGHT = [(0.93, 0.93, 0.92), (0.88, 0.87, 0.84), (0.78, 0.79, 0.80), (0.70, 0.71, 0.72),
          (0.82, 0.78, 0.68)]
_DARK = [(0.05, 0.05, 0.06), (0.17, 0.18, 0.19), (0.06, 0.09, 0.20), (0.07, 0.15, 0.09),
         (0.28, 0.05, 0.07), (0.30, 0.30, 0.31)]
_SATURATED = [(0.75, 0.08, 0.07), (0.12, 0.28, 0.66), (0.90, 0.74, 0.10), (0.90, 0.45, 0.10),
              (0.20, 0.50, 0.26), (0.45, 0.65, 0.86)]


# ----------------------------------------------------------------------------- the 3-D car


@dataclass
class Face:
    """A flat convex polygon of the car. points: (k, 3) metres, in the car's frame
    (x to the front, y to the left, z up, ground at z = 0); normal: (3,) outward."""

    points: np.ndarray
    normal: np.ndarray
    material: str  # paint, glass, wheel (a whole wheel's outline), tyre, rim, hub, trim, light, ...


def _profile_faces(profile: list[tuple[float, float]], half_width: float, material: str) -> list[Face]:
    """Extrude a convex side profile [(x, z), ...] (counter-clockwise) to +-half_width."""
    faces = []
    for sign in (+1.0, -1.0):
        pts = np.array([(x, sign * half_width, z) for x, z in profile])
        faces.append(Face(pts, np.array([0.0, sign, 0.0]), material))
    n = len(profile)
    for i in range(n):
        (x0, z0), (x1, z1) = profile[i], profile[(i + 1) % n]
        length = np.hypot(x1 - x0, z1 - z0)
        normal = np.array([(z1 - z0) / length, 0.0, -(x1 - x0) / length])
        pts = np.array([(x0, -half_width, z0), (x1, -half_width, z1),
                        (x1, half_width, z1), (x0, half_width, z0)])
        faces.append(Face(pts, normal, material))
    return faces


def _side_decal(poly_xz, half_width: float, material: str, offset: float = 0.012) -> list[Face]:
    """The same (x, z) polygon painted on both sides of the car, just outside them."""
    faces = []
    if len(poly_xz) < 3:
        return faces
    for sign in (+1.0, -1.0):
        pts = np.array([(x, sign * (half_width + offset), z) for x, z in poly_xz])
        faces.append(Face(pts, np.array([0.0, sign, 0.0]), material))
    return faces


def _strip_decal(p0, p1, normal, rect, material: str, offset: float = 0.012) -> Face:
    """A rectangle on the strip face between profile points p0 and p1 (both (x, z)).
    rect = (t0, t1, y0, y1): t runs 0..1 from p0 to p1, y across the car."""
    t0, t1, y0, y1 = rect
    (x0, z0), (x1, z1) = p0, p1
    pts = []
    for t, y in ((t0, y0), (t1, y0), (t1, y1), (t0, y1)):
        pts.append((x0 + t * (x1 - x0), y, z0 + t * (z1 - z0)))
    return Face(np.array(pts) + offset * normal, normal, material)


def _wheel_faces(x: float, radius: float, y_out: float, width: float, segments: int = 20) -> list[Face]:
    """A wheel on one side: its outline, the tyre's outer face, the rim and the hub.

    The wheel is a cylinder; it is drawn as one polygon, the outline of the
    cylinder on the screen, at the depth of the wheel's centre (material
    "wheel", see :func:`render_car`); its outer face, rim and hub go on top."""
    sign = 1.0 if y_out > 0 else -1.0
    y_in = y_out - sign * width
    a = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = [(x + radius * np.cos(t), radius + radius * np.sin(t)) for t in a]
    cylinder = np.array([(px, y, pz) for y in (y_in, y_out) for px, pz in ring])
    faces = [Face(cylinder, np.zeros(3), "wheel"),
             Face(np.array([(px, y_out, pz) for px, pz in ring]), np.array([0, sign, 0.0]), "tyre")]
    for material, frac, off in (("rim", 0.62, 0.01), ("hub", 0.18, 0.02)):
        pts = [(x + frac * radius * np.cos(t), y_out + sign * off, radius + frac * radius * np.sin(t))
               for t in a]
        faces.append(Face(np.array(pts), np.array([0, sign, 0.0]), material))
    return faces


# Body styles: (low, high) ranges in metres. L, W: length and width; zc: ground
# clearance; zbelt: height of the window line; zroof: height of the roof; hood,
# trunk: how far the body reaches in front of and behind the cabin; wind, rear:
# how far the windscreen and the rear window lean; wheel: wheel radius.
CAR_STYLES = {
    "sedan": dict(L=(4.4, 4.9), W=(1.72, 1.86), zc=(0.15, 0.2), zbelt=(0.88, 0.98), zroof=(1.38, 1.48),
                  hood=(1.1, 1.35), trunk=(0.85, 1.1), wind=(0.7, 0.85), rear=(0.5, 0.7), wheel=(0.3, 0.35)),
    "hatch": dict(L=(3.8, 4.3), W=(1.66, 1.8), zc=(0.14, 0.18), zbelt=(0.88, 0.98), zroof=(1.42, 1.52),
                  hood=(0.9, 1.1), trunk=(0.12, 0.2), wind=(0.7, 0.85), rear=(0.3, 0.45), wheel=(0.3, 0.35)),
    "van": dict(L=(4.6, 5.1), W=(1.84, 1.96), zc=(0.19, 0.25), zbelt=(1.0, 1.12), zroof=(1.78, 1.98),
                hood=(0.65, 0.85), trunk=(0.08, 0.14), wind=(0.45, 0.6), rear=(0.06, 0.12),
                wheel=(0.34, 0.39)),
    "coupe": dict(L=(4.3, 4.6), W=(1.76, 1.86), zc=(0.12, 0.15), zbelt=(0.82, 0.9), zroof=(1.25, 1.33),
                  hood=(1.3, 1.5), trunk=(0.8, 0.95), wind=(0.85, 1.0), rear=(0.75, 0.95), wheel=(0.3, 0.35)),
}


def build_car(rng: np.random.Generator, kind: str) -> list[Face]:
    """The faces of one car of body style ``kind`` (a key of CAR_STYLES), in metres."""
    if kind not in CAR_STYLES:
        raise ValueError(f"unknown car style {kind!r}; known: {', '.join(CAR_STYLES)}")
    dims = {name: float(rng.uniform(lo, hi)) for name, (lo, hi) in CAR_STYLES[kind].items()}
    L, W, zc, zbelt, zroof = dims["L"], dims["W"], dims["zc"], dims["zbelt"], dims["zroof"]
    hood, trunk, wind, rear = dims["hood"], dims["trunk"], dims["wind"], dims["rear"]

    hw = W / 2 - 0.05                      # body sides; the wheels stand 3 cm proud of them
    hood_drop = rng.uniform(0.05, 0.14)
    xcf, xcr = L / 2 - hood, -L / 2 + trunk  # where the cabin meets the body
    body = [(-L / 2 + 0.25, zc), (L / 2 - 0.3, zc), (L / 2, zc + 0.22), (L / 2 - 0.07, zbelt - hood_drop),
            (xcf + 0.1, zbelt), (xcr - 0.1, zbelt), (-L / 2 + 0.04, zbelt - 0.04), (-L / 2, zc + 0.25)]
    if trunk < 0.3:  # hatch and van: the cabin starts at the very back
        body[5] = (-L / 2 + 0.04, zbelt)
        body[6] = (-L / 2 + 0.02, zbelt - 0.02)
        xcr = -L / 2 + 0.04
    hwc = hw * rng.uniform(0.8, 0.9)
    cabin = [(xcr, zbelt), (xcf, zbelt), (xcf - wind, zroof), (xcr + rear, zroof)]

    faces = _profile_faces(body, hw, "paint") + _profile_faces(cabin, hwc, "paint")
    faces += _windows(cabin, hwc)
    faces += _lights_and_plates(body, hw)
    # dark sills along the bottom and wheel arches on the sides
    faces += _side_decal([(-L / 2 + 0.3, zc), (L / 2 - 0.35, zc), (L / 2 - 0.38, zc + 0.1),
                          (-L / 2 + 0.33, zc + 0.1)], hw, "trim", offset=0.008)
    faces += _wheels(rng, body, L, W, hw, dims["wheel"])
    # a door line on each side
    door = xcr + 0.55 * (xcf - xcr)
    faces += _side_decal([(door - 0.012, zc + 0.12), (door + 0.012, zc + 0.12),
                          (door + 0.012, zbelt - 0.05), (door - 0.012, zbelt - 0.05)], hw, "trim",
                         offset=0.006)
    return faces


def _edge_normal(p0, p1) -> np.ndarray:
    """(3,) outward unit normal of the profile edge p0 -> p1 (x, z in the side view)."""
    length = np.hypot(p1[0] - p0[0], p1[1] - p0[1])
    return np.array([(p1[1] - p0[1]) / length, 0.0, -(p1[0] - p0[0]) / length])


def _windows(cabin: list, hwc: float) -> list[Face]:
    """Side windows (the cabin side shrunk, split by the B pillar), then the windscreen and
    the rear window on the cabin's sloped faces."""
    faces: list[Face] = []
    xcr, xcf = cabin[0][0], cabin[1][0]
    cx = float(np.mean([x for x, _ in cabin]))
    cz = float(np.mean([z for _, z in cabin]))
    inset = [(cx + (x - cx) * 0.9, cz + (z - cz) * 0.78) for x, z in cabin]
    pillar = xcr + 0.55 * (xcf - xcr)
    far = 10.0
    for lo, hi in ((-far, pillar - 0.05), (pillar + 0.05, far)):
        box = [(lo, -far), (hi, -far), (hi, far), (lo, far)]
        faces += _side_decal(draw.clip_polygon(inset, box), hwc, "glass")
    for i in (1, 3):
        p0, p1 = cabin[i], cabin[(i + 1) % 4]
        faces.append(_strip_decal(p0, p1, _edge_normal(p0, p1),
                                  (0.08, 0.92, -0.9 * hwc, 0.9 * hwc), "glass"))
    return faces


def _lights_and_plates(body: list, hw: float) -> list[Face]:
    """Lights, grille, plates on the front (edge 2 of the profile) and the back (edge 6)."""
    faces: list[Face] = []
    front = (body[2], body[3])
    back = (body[6], body[7])
    for (p0, p1), lamp in ((front, "light"), (back, "taillight")):
        normal = _edge_normal(p0, p1)
        # t runs from p0 to p1; on the back edge p0 is the top
        top = (0.6, 0.95) if lamp == "light" else (0.05, 0.4)
        low = (0.08, 0.42) if lamp == "light" else (0.55, 0.85)
        for s in (+1, -1):
            y0, y1 = sorted((s * (hw - 0.06), s * (hw - 0.42)))
            faces.append(_strip_decal(p0, p1, normal, (top[0], top[1], y0, y1), lamp))
        if lamp == "light":
            faces.append(_strip_decal(p0, p1, normal, (0.5, 0.88, -0.35, 0.35), "trim"))
        faces.append(_strip_decal(p0, p1, normal, (low[0], low[1], -0.26, 0.26), "plate"))
    return faces


def _wheels(rng: np.random.Generator, body: list, L: float, W: float, hw: float,
            radius: float) -> list[Face]:
    """The two axles (drawn from ``rng``): a dark arch on each side, then the wheels."""
    faces: list[Face] = []
    axle_f = L / 2 - rng.uniform(0.8, 0.98)
    axle_r = -L / 2 + rng.uniform(0.75, 0.95)
    for ax in (axle_f, axle_r):
        a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        arch = [(ax + 1.13 * radius * np.cos(t), radius + 1.13 * radius * np.sin(t)) for t in a]
        arch = draw.clip_polygon(arch, body)
        faces += _side_decal(arch, hw, "trim", offset=0.01)
        for s in (+1, -1):
            faces += _wheel_faces(ax, radius, s * (W / 2 - 0.02), 0.22)
    return faces


# ----------------------------------------------------------------------------- drawing a view


def _camera_matrix(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """3x3 matrix from the car's frame to the camera's (u right, v up, w depth).

    The turntable turns the car by ``yaw_deg``; the camera looks down by ``pitch_deg``."""
    c, s = np.cos(np.deg2rad(yaw_deg)), np.sin(np.deg2rad(yaw_deg))
    sp, cp = np.sin(np.deg2rad(pitch_deg)), np.cos(np.deg2rad(pitch_deg))
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    look = np.array([[1.0, 0.0, 0.0], [0.0, sp, cp], [0.0, cp, -sp]])
    return look @ turn


def _material_colours(rng: np.random.Generator, paint: np.ndarray) -> dict[str, np.ndarray]:
    """RGB colour (3,) in [0, 1] of each material of one car, given its body colour."""
    glass = np.array([0.07, 0.09, 0.12]) + rng.uniform(0.0, 0.08)
    rim = np.full(3, rng.choice([0.12, 0.55, 0.7]))
    return {
        "paint": paint,
        "glass": glass,
        "tyre": np.array([0.07, 0.07, 0.075]),
        "wheel": np.array([0.05, 0.05, 0.055]),
        "rim": rim,
        "hub": rim * 0.6,
        "trim": np.array([0.1, 0.1, 0.11]),
        "light": np.array([0.86, 0.88, 0.9]),
        "taillight": np.array([0.65, 0.06, 0.05]),
        "plate": np.array([0.9, 0.9, 0.86]),
    }


def _project(cam: np.ndarray, roll: float, scale: float, origin: tuple[float, float]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Canvas coordinates (px, py) of camera-space points cam (k, 3): the picture is
    turned by ``roll`` degrees, ``scale`` pixels per metre, v = 0 at ``origin``."""
    cr, sr = np.cos(np.deg2rad(roll)), np.sin(np.deg2rad(roll))
    u = cam[:, 0] * cr - cam[:, 1] * sr
    v = cam[:, 0] * sr + cam[:, 1] * cr
    return origin[0] + scale * u, origin[1] - scale * v


def render_car(faces: list[Face], colours: dict[str, np.ndarray], gloss: float, yaw: float,
               pitch: float, roll: float, scale: float, origin: tuple[float, float],
               canvas_hw: tuple[int, int], light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw the car with a depth buffer.

    Args:
        scale: pixels per metre on the canvas; origin: canvas (x, y) of the car's
            centre on the ground; canvas_hw: (H, W) of the canvas.
        light: (3,) unit vector towards the key light in camera axes (u, v, w).

    Returns:
        rgb (H, W, 3) float32 and covered (H, W) bool.
    """
    H, W = canvas_hw
    R = _camera_matrix(yaw, pitch)
    cr, sr = np.cos(np.deg2rad(roll)), np.sin(np.deg2rad(roll))
    depth = np.full((H, W), np.inf, np.float32)
    rgb = np.zeros((H, W, 3), np.float32)
    for face in faces:
        n = R @ face.normal
        cam = face.points @ R.T                     # (k, 3): u, v, w
        px, py = _project(cam, roll, scale, origin)
        if face.material == "wheel":    # a whole wheel: its outline, at the depth of its centre
            outline = draw.convex_hull(list(zip(px, py)))
            px, py = np.array([p[0] for p in outline]), np.array([p[1] for p in outline])
        elif n[2] > -1e-3:              # facing away from the camera (or edge-on): hidden
            continue
        x0, x1 = max(int(np.floor(px.min())), 0), min(int(np.ceil(px.max())) + 1, W)
        y0, y1 = max(int(np.floor(py.min())), 0), min(int(np.ceil(py.max())) + 1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        patch = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(patch).polygon([(a - x0, b - y0) for a, b in zip(px, py)], fill=1)
        inside = np.asarray(patch, dtype=bool)
        if not inside.any():
            continue
        # depth over the patch from the face's plane n . (q - q0) = 0: w = a*x + b*y + c
        if face.material == "wheel":
            a, b, c = 0.0, 0.0, float(cam[:, 2].mean())
        else:
            nu, nv = n[0] * cr - n[1] * sr, n[0] * sr + n[1] * cr
            a, b = -nu / (scale * n[2]), nv / (scale * n[2])
            c = cam[0, 2] - a * px[0] - b * py[0]
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        w = a * xs + b * ys + c
        win = inside & (w < depth[y0:y1, x0:x1])
        if not win.any():
            continue
        np.copyto(depth[y0:y1, x0:x1], w, where=win)
        colour = _shade(face.material, colours[face.material], n, light, gloss, ys, py)
        np.copyto(rgb[y0:y1, x0:x1], colour.astype(np.float32), where=win[..., None])
    return rgb, np.isfinite(depth)


def _shade(material: str, base: np.ndarray, n: np.ndarray, light: np.ndarray, gloss: float,
           ys: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The colour of a face's pixels (rows ``ys``; the face spans rows ``py``): key light,
    a bright ceiling reflected by upward faces, darker low down."""
    diffuse = max(0.0, float(n @ light))
    up = max(0.0, float(n[1]))
    if material not in ("paint", "glass"):
        return base * (0.45 + 0.55 * diffuse)
    # a vertical gradient over the face: the studio reflected, lighter at the top
    t = ((ys - py.min()) / max(py.max() - py.min(), 1.0))[..., None]  # (h, 1, 1): 0 top, 1 bottom
    if material == "paint":
        return (base * (0.32 + 0.68 * diffuse) * (1.12 - 0.3 * t)
                + gloss * (0.5 * up**2 + 0.12 * (t < 0.3)))
    return base + 0.3 * up**2 + 0.14 * (1.0 - t)


def _silhouette_fraction(faces: list[Face], yaw: float, pitch: float) -> tuple[np.ndarray, float]:
    """Screen-space bounding box (umin, umax, vmin, vmax) in metres of the car seen at
    (yaw, pitch), and the fraction of that box its silhouette fills."""
    R = _camera_matrix(yaw, pitch)
    pts = np.concatenate([f.points for f in faces]) @ R.T
    umin, umax = pts[:, 0].min(), pts[:, 0].max()
    vmin, vmax = pts[:, 1].min(), pts[:, 1].max()
    size = 64
    sx, sy = size / (umax - umin), size / (vmax - vmin)
    canvas = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(canvas)
    for f in faces:
        c = f.points @ R.T
        outline = [((a - umin) * sx, (vmax - b) * sy) for a, b in zip(c[:, 0], c[:, 1])]
        d.polygon(draw.convex_hull(outline) if f.material == "wheel" else outline, fill=1)
    frac = float(np.asarray(canvas, dtype=np.float32).mean())
    return np.array([umin, umax, vmin, vmax]), frac


def studio_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(wall, floor) RGB colours of a photo studio: a light wall, a greyer floor."""
    wall = rng.uniform(0.74, 0.95) + rng.normal(0.0, 0.015, size=3)
    floor = wall * rng.uniform(0.68, 0.95) + rng.normal(0.0, 0.01, size=3)
    return np.clip(wall, 0, 1), np.clip(floor, 0, 1)


def studio_background(rng: np.random.Generator, width: int, height: int, wall: np.ndarray,
                      floor: np.ndarray) -> tuple[np.ndarray, float]:
    """A photo studio: a wall that curves into the floor. Returns ((H, W, 3) float32, horizon y)."""
    exposure = rng.uniform(0.96, 1.04)
    wall, floor = wall * exposure, floor * exposure
    horizon = height * rng.uniform(0.3, 0.55)
    soft = height * rng.uniform(0.05, 0.15)
    yy = np.arange(height, dtype=np.float32)[:, None]
    t = np.clip((yy - horizon) / soft + 0.5, 0.0, 1.0)
    t = t * t * (3 - 2 * t)  # smoothstep: the cove of the studio wall
    img = (wall[None, None, :] * (1 - t[..., None]) + floor[None, None, :] * t[..., None])
    img = np.broadcast_to(img, (height, width, 3)).astype(np.float32).copy()
    # a turntable: a slightly different ellipse on the floor
    if rng.random() < 0.6:
        cx = width * rng.uniform(0.4, 0.6)
        cy = height * rng.uniform(0.75, 0.9)
        cov = draw.polygon_coverage(height, width, draw.ellipse_points(
            cx, cy, width * rng.uniform(0.4, 0.55), height * rng.uniform(0.12, 0.2)), scale=2)
        img *= 1.0 - cov[..., None] * rng.uniform(-0.06, 0.1)
    # uneven lighting: smooth blotches
    img *= (1.0 + 0.05 * draw.smooth_noise(rng, height, width, cell=width / 3, octaves=2))[..., None]
    return img, float(horizon)


def draw_car_photo(rng: np.random.Generator, faces: list[Face], colours: dict[str, np.ndarray],
                   gloss: float, studio: tuple[np.ndarray, np.ndarray], view: int,
                   size: tuple[int, int], area: float) -> tuple[np.ndarray, np.ndarray]:
    """One photo of a car from turntable position ``view`` (1..16).

    Args:
        studio: (wall, floor) colours, see :func:`studio_colours`.
        size: (height, width) of the photo.
        area: wanted fraction of the photo the car covers (kept inside the frame).

    Returns:
        image (H, W, 3) uint8 and mask (H, W) uint8 with 0 background, 1 car.
    """
    height, width = size
    S = SUPERSAMPLE
    yaw = -90.0 + 22.5 * (view - 1) + rng.uniform(-4.0, 4.0)   # view 01 faces the camera
    pitch = rng.uniform(7.0, 18.0)
    roll = rng.uniform(-2.5, 2.5)
    box, fill = _silhouette_fraction(faces, yaw, pitch)
    bw, bh = box[1] - box[0], box[3] - box[2]
    scale = np.sqrt(area * width * height / (bw * bh * fill))   # pixels per metre
    scale = min(scale, 0.94 * width / bw, 0.86 * height / bh)
    # place the car: centred across, standing in the lower part of the frame
    cx = width / 2 + rng.uniform(-0.03, 0.03) * width - scale * (box[0] + box[1]) / 2
    bottom = min(height * rng.uniform(0.86, 0.95), height - 2.0)
    top = bottom - scale * bh
    if top < 0.03 * height:
        bottom += 0.03 * height - top
    cy = bottom + scale * box[2]          # canvas y of v = 0 (the car's ground centre)

    light = np.array([rng.uniform(-0.45, 0.45), 0.75, -0.6])
    light /= np.linalg.norm(light)
    rgb_hi, covered_hi = render_car(faces, colours, gloss, yaw, pitch, roll, scale * S,
                                    (cx * S, cy * S), (height * S, width * S), light)
    coverage = draw.downsample(covered_hi.astype(np.float32), S)
    car = draw.downsample(rgb_hi * covered_hi[..., None], S)

    img, _ = studio_background(rng, width, height, *studio)
    # soft shadow on the floor: the car's footprint, blurred
    R = _camera_matrix(yaw, pitch)
    all_pts = np.concatenate([f.points for f in faces])
    half_l, half_w = all_pts[:, 0].max() + 0.15, all_pts[:, 1].max() + 0.15
    foot = np.array([(-half_l, -half_w, 0), (half_l, -half_w, 0), (half_l, half_w, 0), (-half_l, half_w, 0)])
    shadow = np.zeros((height // 2, width // 2), np.float32)   # smooth: half resolution is plenty
    for grow, strength, soft in ((1.05, rng.uniform(0.2, 0.4), 0.25), (0.85, rng.uniform(0.3, 0.5), 0.08)):
        px, py = _project((foot * [grow, grow, 1]) @ R.T, roll, scale / 2, (cx / 2, cy / 2))
        cov = draw.polygon_coverage(height // 2, width // 2, list(zip(px, py)), scale=2)
        shadow = np.maximum(shadow, strength * draw.blur(cov, soft * scale / 2))
    img *= (1.0 - draw.resize(shadow, width, height))[..., None]

    img = img * (1.0 - coverage[..., None]) + car
    # light falling off across the studio, lens vignetting, sensor noise
    falloff = draw.linear_gradient(height, width, rng.uniform(0, 360), 1.0 - rng.uniform(0.0, 0.15), 1.0)
    img *= falloff[..., None]
    img *= draw.vignette(height, width, rng.uniform(0.05, 0.25))[..., None]
    img = draw.sensor_noise(rng, img, sigma=rng.uniform(0.004, 0.012))
    mask = (coverage >= 0.5).astype(np.uint8)
    return draw.to_uint8(img), mask


# ----------------------------------------------------------------------------- files


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle Carvana run-length encoding of a 0/1 mask (H, W).

    Pixels are numbered from 1, row by row (row-major, as ``mask.flatten()``);
    the string lists "start length" pairs of the runs of 1s."""
    pixels = np.concatenate([[0], mask.flatten().astype(np.int64), [0]])
    runs = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(int(r)) for r in runs)


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rle_encode`: (H, W) uint8 mask with 0 and 1."""
    s = np.array(rle.split(), dtype=np.int64)
    flat = np.zeros(shape[0] * shape[1], np.uint8)
    for start, length in zip(s[0::2] - 1, s[1::2]):
        flat[start:start + length] = 1
    return flat.reshape(shape)


def save_mask_gif(mask: np.ndarray, path: Path) -> None:
    """Save a 0/1 mask as a Carvana-style GIF: palette image, index 0 black, 1 white."""
    draw.palette_image(mask, MASK_PALETTE).save(path, format="GIF")


def generate_carvana(root: Path, n: int = DEFAULT_N, size: tuple[int, int] = DEFAULT_SIZE,
                     seed: int = 0) -> Path:
    """Write ``n`` toy Carvana photos (rounded to whole cars of 4 views) under ``root``.

    size: (height, width). Returns ``root``."""
    root = Path(root)
    rng = draw.make_rng(seed)
    n_cars = max(1, int(round(n / VIEWS_PER_CAR)))
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train_masks").mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    rle_rows, meta_rows = [], []
    styles = list(CAR_STYLES)   # sedan, hatch, van, coupe
    for _ in range(n_cars):
        car_id = rng.bytes(6).hex()
        while car_id in ids:
            car_id = rng.bytes(6).hex()
        ids.add(car_id)
        kind = styles[int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))]
        studio = studio_colours(rng)
        group = rng.choice(3, p=[0.45, 0.3, 0.25])
        palette = (_LIGHT, _DARK, _SATURATED)[group]
        paint = np.array(palette[int(rng.integers(len(palette)))]) + rng.normal(0, 0.02, 3)
        if group == 0 and rng.random() < 0.4:   # the very colour of the studio wall
            paint = studio[0] * rng.uniform(1.0, 1.1)
        paint = np.clip(paint, 0.0, 1.0)
        gloss = rng.uniform(0.15, 0.5)
        faces = build_car(rng, kind)
        colours = _material_colours(rng, paint)
        area = rng.uniform(0.27, 0.42)
        make = sorted(_MAKES)[int(rng.integers(len(_MAKES)))]
        meta_rows.append((car_id, int(rng.integers(2005, 2018)), make,
                          _MAKES[make][int(rng.integers(3))]))
        # one view from each quarter turn: front-ish, side, back-ish, other side
        views = [4 * q + 1 + int(rng.integers(4)) for q in range(VIEWS_PER_CAR)]
        for view in views:
            image, mask = draw_car_photo(rng, faces, colours, gloss, studio, view, size,
                                         area * rng.uniform(0.9, 1.1))
            stem = f"{car_id}_{view:02d}"
            Image.fromarray(image).save(root / "train" / f"{stem}.jpg", format="JPEG",
                                        quality=int(rng.integers(75, 89)))
            save_mask_gif(mask, root / "train_masks" / f"{stem}_mask.gif")
            rle_rows.append((f"{stem}.jpg", rle_encode(mask)))
    with open(root / "train_masks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img", "rle_mask"])
        writer.writerows(sorted(rle_rows))
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "year", "make", "model"])
        writer.writerows(sorted(meta_rows))
    return root
