"""Reading masks and turning them into class indices.

A segmentation mask is stored on disk in one of a few ways, and the network
wants one thing: an (H, W) int64 array of class indices. This module converts.

Conventions (the ``convention`` argument of ``mask_to_index``):

==========  ==================================================  =====================
convention  what the file holds                                  example
==========  ==================================================  =====================
"binary"    two values, {0, 1} or {0, 255}; 255 becomes 1       Carvana, sea/sky
"index"     the class index itself in every pixel               VOC palette PNGs
            (palette 'P' images: the palette index, not the
            colour you see; 255 = ignore)
"rgb"       a colour per class, mapped back through a           VOC masks re-saved
            colour map (default: the VOC map)                    as RGB
"trimap"    Oxford-IIIT Pet: 1 pet, 2 background, 3 border      Oxford-IIIT Pet
"auto"      decide from the image mode and the values
==========  ==================================================  =====================

The classic mistakes this module catches, with a message that names the file:

- a mask saved as JPEG, or resized with bilinear interpolation: the values
  are no longer a small set such as {0, 255} but {0, 1, 2, ..., 254, 255};
- a 0/255 mask fed to the loss as class indices (we map 255 -> 1);
- an RGB colour-coded mask read as colours instead of classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.errors import DataError
from segkit.imageio import open_image

__all__ = [
    "VOC_COLORMAP",
    "VOC_CLASSES",
    "voc_colormap",
    "mask_to_index",
    "read_mask",
    "mask_array",
    "is_gray",
    "show_values",
    "check_num_classes",
]

CONVENTIONS = ("auto", "binary", "index", "rgb", "trimap")

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
    "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
    "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_colormap(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: the colour of class index i is row i.

    Each bit of the index is spread over the high bits of red, green and blue
    (the "bitget" map of the VOC devkit). Class 1 (aeroplane) is (128, 0, 0),
    class 15 (person) is (192, 128, 128) and 255 (ignore, drawn on object
    borders) is (224, 224, 192).

    Returns: (n, 3) uint8 array.
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_COLORMAP: np.ndarray = voc_colormap(256)
"""(256, 3) uint8: the canonical VOC colour map of the course."""


# ---------------------------------------------------------------------------
# reading mask files
# ---------------------------------------------------------------------------


def read_mask(path: str | Path, **kwargs) -> np.ndarray:
    """Read a mask file and convert it to class indices.

    ``kwargs`` are those of ``mask_to_index`` (convention, num_classes,
    colormap, ignore_index). The file is opened in its own mode
    (``segkit.imageio.open_image``), so a palette PNG gives its indices, not its
    colours.

    Returns: (H, W) int64 array of class indices.
    """
    return mask_to_index(open_image(path), path=path, **kwargs)


# ---------------------------------------------------------------------------
# converting masks to class indices
# ---------------------------------------------------------------------------


def _where(path: str | Path | None) -> str:
    return f"mask {path}" if path is not None else "mask"


def show_values(values: np.ndarray, first: int = 8) -> str:
    """Distinct mask values as an error message shows them: '{0, 38, 75, ... 255} (12
    distinct values)' (the first ``first`` values, then the largest)."""
    shown = ", ".join(str(int(v)) for v in values[:first])
    if len(values) > first:
        shown += f", ... {int(values[-1])}"
    return f"{{{shown}}} ({len(values)} distinct values)"


def likely_cause(values) -> str:
    """The likely cause of mask values that do not fit what was asked, read from the values
    themselves: 16-bit levels, class indices, grey-coded classes, or the many neighbouring
    values a JPEG-compressed or smoothly resized mask has."""
    vals = sorted({int(v) for v in np.asarray(values).ravel().tolist()})
    if not vals:
        return ""
    top = vals[-1]
    if top > 255 and len(vals) <= 4:
        return (f"Values up to {top} in a few levels: a 16-bit mask. Give the object's "
                f"value (--foreground {top}) or every value's class (--mask-values "
                + ",".join(f"{v}:{i}" for i, v in enumerate(vals)) + ").")
    if len(vals) <= 32 and vals == list(range(vals[0], top + 1)):
        return (f"Values {vals[0]}..{top} in steps of 1 look like class indices: "
                f"--num-classes {top + 1} (or --num-classes {top} --ignore-index {top} when "
                f"{top} means 'not labelled'; in Python convention='index', "
                f"num_classes={top + 1}).")
    rest = [v for v in vals if v != 255]
    if 255 in vals and rest and rest == list(range(rest[-1] + 1)) and len(rest) <= 32:
        classes = "--ignore-index 255" if len(rest) <= 2 else \
            f"--num-classes {len(rest)} --ignore-index 255"
        return (f"Values 0..{rest[-1]} and 255 look like class indices with 255 meaning "
                f"'not labelled': {classes}.")
    if len(vals) > 16 or any(b - a <= 4 for a, b in zip(vals, vals[1:])):
        return ("Many neighbouring values: a JPEG-compressed mask (save masks as PNG) or a "
                "mask resized with bilinear interpolation (resize masks with nearest).")
    grey = ("classes coded as grey levels? Give each value's class with --mask-values "
            + ",".join(f"{v}:{i}" for i, v in enumerate(vals)))
    if vals[0] == 0 and top == 255:  # also what a 0/255 mask resized smoothly looks like
        return (f"A few distinct values: {grey}; or a 0/255 mask resized with bilinear "
                "interpolation (values between them along the edges: resize masks with "
                "nearest).")
    return f"A few distinct values: {grey}."


def mask_array(mask: Image.Image | np.ndarray, path=None) -> tuple[np.ndarray, str]:
    """The pixels of a mask image (or array) and their kind.

    Returns (array, kind): kind 'palette' (a 'P' image's indices, (H, W)), 'gray' (H, W)
    or 'rgb' (H, W, 3); alpha is dropped, a float array of whole numbers becomes int64.
    Raises DataError (naming ``path``) for a mode or shape a mask cannot have.
    """
    if isinstance(mask, Image.Image):
        mode = mask.mode
        if mode == "P":
            return np.asarray(mask), "palette"
        if mode == "1":
            return np.asarray(mask).astype(np.uint8), "gray"
        if mode in ("L", "I", "I;16", "I;16L", "I;16B"):
            return np.asarray(mask), "gray"
        if mode in ("LA", "PA"):
            kind = "palette" if mode == "PA" else "gray"
            return np.asarray(mask)[..., 0], kind
        if mode in ("RGB", "RGBA"):
            return np.asarray(mask)[..., :3], "rgb"
        raise DataError(
            f"{_where(path)} has PIL mode {mode!r}; expected 'P' (palette), "
            "'L' (grayscale) or 'RGB'."
        )
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return array[..., :3], "rgb"
    if array.ndim != 2:
        raise DataError(
            f"{_where(path)}: expected an (H, W) or (H, W, 3) array, got shape {array.shape}"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise DataError(
                f"{_where(path)}: a mask holds whole numbers (class indices), but this "
                f"{array.dtype} array has fractional values such as "
                f"{array[array != np.round(array)][:3].tolist()}. Likely cause: a mask "
                "resized with bilinear interpolation (resize masks with nearest)."
            )
        array = array.astype(np.int64)
    return array, "gray"


def is_gray(rgb: np.ndarray) -> bool:
    """True when the three channels of an (H, W, 3) array are equal."""
    return np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])


def _white_on_black_palette(mask, array: np.ndarray) -> bool:
    """True for a 'P' image holding indices 0 and 255 drawn black and white."""
    if not isinstance(mask, Image.Image) or set(np.unique(array).tolist()) != {0, 255}:
        return False
    palette = mask.getpalette() or []
    return palette[0:3] == [0, 0, 0] and palette[765:768] == [255, 255, 255]


def _binary(values_array: np.ndarray, path) -> np.ndarray:
    values = np.unique(values_array)
    if set(values.tolist()) <= {0, 1}:
        return values_array.astype(np.int64)
    if set(values.tolist()) <= {0, 255}:
        return (values_array == 255).astype(np.int64)
    raise DataError(
        f"{_where(path)}: a binary mask should hold {{0, 1}} or {{0, 255}}, "
        f"found {show_values(values)}. " + likely_cause(values)
    )


def _trimap(values_array: np.ndarray, ignore_index: int, path) -> np.ndarray:
    values = np.unique(values_array)
    if not set(values.tolist()) <= {1, 2, 3}:
        raise DataError(
            f"{_where(path)}: an Oxford-IIIT Pet trimap holds 1 (pet), 2 (background) "
            f"and 3 (border), found {show_values(values)}. Is this a trimap from "
            "annotations/trimaps/?"
        )
    out = np.zeros(values_array.shape, dtype=np.int64)  # 2 -> 0 background
    out[values_array == 1] = 1
    out[values_array == 3] = ignore_index
    return out


def _rgb_to_index(
    rgb: np.ndarray,
    colormap: np.ndarray | Mapping | None,
    num_classes: int | None,
    ignore_index: int,
    path,
) -> np.ndarray:
    """Map each (r, g, b) colour to its class index via ``colormap``."""
    if colormap is None:
        n = num_classes if num_classes is not None else len(VOC_CLASSES)
        lookup = {tuple(int(c) for c in VOC_COLORMAP[i]): i for i in range(n)}
        lookup[tuple(int(c) for c in VOC_COLORMAP[255])] = ignore_index
    elif isinstance(colormap, Mapping):
        lookup = {tuple(int(c) for c in colour): int(i) for colour, i in colormap.items()}
    else:
        table = np.asarray(colormap)
        if table.ndim != 2 or table.shape[1] != 3:
            raise DataError(f"colormap must be an (n, 3) array, got shape {table.shape}")
        lookup = {tuple(int(c) for c in table[i]): i for i in range(len(table))}

    # One integer per colour, so that np.unique can count them.
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    as_rgb = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in colours.tolist()]

    pixels_of = dict(zip(as_rgb, counts.tolist(), strict=True))  # {colour: pixel count}
    unknown = [(colour, n) for colour, n in pixels_of.items() if colour not in lookup]
    if unknown:
        unknown.sort(key=lambda item: -item[1])
        listed = ", ".join(f"{colour}: {n} px" for colour, n in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataError(
            f"{_where(path)}: {len(unknown)} colours are not in the colour map: "
            f"{listed}{more}. Expected only the class colours (e.g. the VOC map: "
            "background (0, 0, 0), aeroplane (128, 0, 0), ...). If your masks use other "
            "colours, give them in a labelmap file, one class a line as name:r,g,b "
            "(--class-names labelmap.txt); many colours close to each other are a "
            "JPEG-compressed or smoothly resized mask."
        )
    index_of_colour = np.array([lookup[colour] for colour in as_rgb], dtype=np.int64)
    return index_of_colour[inverse.reshape(codes.shape)]


def mask_to_index(
    mask: Image.Image | np.ndarray,
    *,
    convention: str = "auto",
    num_classes: int | None = None,
    colormap: np.ndarray | Mapping | None = None,
    ignore_index: int = 255,
    path: str | Path | None = None,
) -> np.ndarray:
    """Convert a mask image (or array) to an (H, W) int64 array of class indices.

    Args:
        mask: a PIL image ('P', 'L', '1', 'I', 'RGB', 'RGBA') or an array of
            shape (H, W) or (H, W, 3).
        convention: "auto", "binary", "index", "rgb" or "trimap" (see the
            module docstring). "auto" decides: palette 'P' -> "index"
            (except a black 0 / white 255 palette image -> "binary");
            grayscale with values in {0, 1} or {0, 255} -> "binary"; grayscale
            with values below ``num_classes`` (when given) -> "index"; RGB ->
            "rgb" with the VOC colour map (an RGB image whose three channels are
            equal is treated as grayscale). Anything else is an error.
        num_classes: when given, every value must be < num_classes (or be
            ``ignore_index``).
        colormap: for "rgb": an (n, 3) array (row i = colour of class i) or a
            dict {(r, g, b): class_index}. Default: the VOC colour map.
        ignore_index: the label of pixels the loss and metrics skip (VOC object
            borders, the trimap border).
        path: the file the mask came from, only used in error messages.

    Returns: (H, W) int64 array.

    Raises DataError naming the file and the values found when the mask fits
    no convention.
    """
    if convention not in CONVENTIONS:
        raise DataError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    array, kind = mask_array(mask, path)
    if convention == "auto":
        array, kind, convention = _resolve_auto(mask, array, kind, num_classes, ignore_index,
                                                path)
    index = _to_index(array, kind, convention, colormap, num_classes, ignore_index, path)
    if num_classes is not None:
        check_num_classes(index, num_classes, ignore_index, path)
    return index


def _resolve_auto(mask, array, kind, num_classes, ignore_index, path):
    """(array, kind, convention) with which "auto" reads ``mask`` (see mask_to_index)."""
    if kind == "rgb" and is_gray(array) and _fits_binary(np.unique(array[..., 0])):
        # a black-and-white mask saved as RGB: (0, 0, 0) and (255, 255, 255)
        return array[..., 0], "gray", "binary"
    if kind == "palette" and _white_on_black_palette(mask, array):
        # a 0/255 mask saved as a palette image: 255 is the white object, not
        # VOC's ignore border (VOC draws index 255 in (224, 224, 192))
        return array, kind, "binary"
    return array, kind, _guess_convention(array, kind, num_classes, ignore_index, path)


def _to_index(array, kind, convention, colormap, num_classes, ignore_index, path) -> np.ndarray:
    """The pixels read with ``convention`` (not "auto"): (H, W) int64 class indices."""
    if convention == "rgb":
        if kind != "rgb":
            raise DataError(
                f"{_where(path)}: convention='rgb' needs a colour (RGB) mask, this one "
                f"has one channel. Use convention='index' or 'binary'."
            )
        return _rgb_to_index(array, colormap, num_classes, ignore_index, path)
    if kind == "rgb":
        if not is_gray(array):
            raise DataError(
                f"{_where(path)} is a colour (RGB) image, so it cannot be read with "
                f"convention={convention!r}: its pixels are colours, not class numbers. "
                "Use convention='rgb' (with colormap= if the colours are not VOC's)."
            )
        array = array[..., 0]
    if convention == "binary":
        return _binary(array, path)
    if convention == "trimap":
        return _trimap(array, ignore_index, path)
    return array.astype(np.int64)  # "index"


def _guess_convention(array, kind, num_classes, ignore_index, path) -> str:
    """The convention "auto" picks for these pixels (see mask_to_index)."""
    if kind == "palette":
        return "index"
    if kind == "rgb":
        return "rgb"
    values = np.unique(array)
    if _fits_binary(values):
        return "binary"
    if num_classes is not None:
        allowed = ((values >= 0) & (values < num_classes)) | (values == ignore_index)
        if np.all(allowed):
            return "index"
    raise DataError(
        f"{_where(path)}: expected a binary mask with values {{0, 1}} or {{0, 255}} "
        f"or class indices, found {show_values(values)}. " + likely_cause(values)
    )


def _fits_binary(values: np.ndarray) -> bool:
    """True when the distinct values are a subset of {0, 1} or of {0, 255}."""
    found = set(values.tolist())
    return found <= {0, 1} or found <= {0, 255}


def check_num_classes(index: np.ndarray, num_classes: int, ignore_index: int = 255,
                      path: str | Path | None = None) -> None:
    """Raise DataError (naming ``path`` and the values) when ``index`` holds a class
    index outside 0..num_classes-1 that is not ``ignore_index``."""
    values = np.unique(index)
    bad = values[((values >= num_classes) | (values < 0)) & (values != ignore_index)]
    if len(bad):
        raise DataError(
            f"{_where(path)}: num_classes={num_classes}, so class indices must be "
            f"0..{num_classes - 1} (or {ignore_index} = ignore), but the mask holds "
            f"{show_values(bad)}. " + (
                "A 0/255 mask: leave --num-classes out (binary)." if set(values.tolist()) ==
                {0, 255} else f"Is --num-classes (or the class-names file) right? "
                + likely_cause(values))
        )
