"""Reading a photo faithfully: one function every reader uses (datasets, predict, evaluate).

``load_image(path, mode)`` returns a float32 tensor (C, H, W) with values in [0, 1],
C = 3 for ``mode="RGB"`` and 1 for ``mode="L"``, whatever the file holds:

============================  =====================================================
what the file holds           how it becomes [0, 1]
============================  =====================================================
8-bit grey, RGB ('L', 'RGB')  value / 255
palette ('P', GIF photos)     the palette's colours, / 255
black and white ('1')         0 or 1
16-bit grey ('I;16', 'I')     value / 65535 (PIL's own convert("L") would clip every
                              value above 255 to white)
32-bit float ('F')            kept when already in [0, 1], else scaled by the image's
                              own range (min -> 0, max -> 1)
with alpha ('RGBA', 'LA')     alpha dropped, with a one-line note (once per folder)
============================  =====================================================

What cannot be read faithfully is a ``DataError`` naming the file and its mode, never a
silent conversion: CMYK and other colour spaces, 32-bit integers beyond 16 bits, and
files with several frames (a TIFF stack, an animated GIF).

Masks are not read here: they keep their values (``segkit.masks.read_mask``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from segkit.errors import DataError
from segkit.masks import read_image

__all__ = ["load_image", "image_array", "to_unit_range", "to_uint8", "frame_count"]

_GREY = ("L", "1", "I;16", "I;16L", "I;16B", "I;16N", "I", "F", "LA")
_COLOUR = ("RGB", "RGBA", "RGBX", "P", "PA", "YCbCr")
_noted: set[tuple[str, str]] = set()


def _note_once(kind: str, path: Path, text: str) -> None:
    """Print ``text`` once per (kind, folder): a note, not an error."""
    key = (kind, str(path.parent))
    if key not in _noted:
        _noted.add(key)
        print(f"note: {text} (shown once for {path.parent})", file=sys.stderr)


def _from_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], bit for bit as torchvision's ``to_dtype(scale=True)``."""
    return TF.to_dtype(torch.from_numpy(np.array(array, copy=True)), torch.float32,
                       scale=True).numpy()


def frame_count(path: Path) -> int:
    """How many pictures the file holds (a TIFF stack, an animated GIF: more than 1)."""
    with Image.open(path) as im:
        return int(getattr(im, "n_frames", 1) or 1)


def _grey_array(im: Image.Image, path: Path) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a one-channel image of any bit depth."""
    mode = im.mode
    if mode == "LA":
        _note_once("alpha", path, f"{path.name} has an alpha channel (mode LA): it is dropped")
        im, mode = im.getchannel("L"), "L"
    array = np.asarray(im)
    if mode == "1":
        return array.astype(np.float32)
    if mode == "L":
        return _from_uint8(array)
    if mode.startswith("I;16") or (mode == "I" and array.min() >= 0 and array.max() <= 65535):
        return array.astype(np.float32) / 65535.0
    if mode == "F":
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise DataError(f"{path}: a float image (mode F) with NaN or infinite pixels; "
                            "fix the file (e.g. replace them with 0) before training on it")
        low, high = float(array.min()), float(array.max())
        if low >= 0.0 and high <= 1.0:
            return array
        _note_once("float", path, f"{path.name} is a float image with values {low:g}..{high:g}: "
                   "each such image is scaled by its own range to [0, 1]")
        return (array - low) / (high - low) if high > low else np.zeros_like(array)
    raise DataError(f"{path}: PIL mode {mode!r} holds 32-bit integers from {array.min()} to "
                    f"{array.max()}, beyond 16 bits; segkit cannot scale them faithfully. "
                    "Save the image as 8- or 16-bit (PNG or TIFF).")


def _colour_array(im: Image.Image, path: Path, grey: bool = False) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from an 8-bit colour or palette image; with ``grey``
    (H, W), its luminance as PIL computes it (0.299 R + 0.587 G + 0.114 B, 8-bit)."""
    if im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
        _note_once("alpha", path, f"{path.name} has an alpha channel (mode {im.mode}): "
                   "it is dropped")
    return _from_uint8(np.asarray(im.convert("L" if grey else "RGB")))


def image_array(path: str | Path, grey: bool = False) -> np.ndarray:
    """The pixels of an image file, faithfully scaled: float32 (H, W) grey or (H, W, 3)
    colour, values in [0, 1]; ``grey=True`` turns a colour image into its luminance.
    Raises DataError naming the file and mode when it cannot."""
    path = Path(path)
    im = read_image(path, mode=None)  # missing, not an image, cut short: DataError
    frames = frame_count(path)
    if frames > 1:
        raise DataError(f"{path} holds {frames} frames (a stack or an animation; mode "
                        f"{im.mode}): segkit reads one picture per file. Save the frame you "
                        "want as its own file.")
    if im.mode in _GREY:
        return _grey_array(im, path)
    if im.mode in _COLOUR:
        return _colour_array(im, path, grey)
    raise DataError(f"{path}: PIL mode {im.mode!r} (e.g. CMYK print colours) cannot be turned "
                    "into RGB faithfully without the file's colour profile. Convert it to RGB "
                    "in an image editor (or with Pillow and ImageCms) and save as PNG.")


def load_image(path: str | Path, mode: str = "RGB") -> torch.Tensor:
    """Read an image file as a float32 tensor (C, H, W) with values in [0, 1].

    Args:
        path: the file (PNG, JPEG, GIF, TIFF, BMP; 8- or 16-bit; grey, RGB or palette).
        mode: "RGB" (C = 3; a grey image is repeated on the three channels) or "L"
            (C = 1; a colour image becomes its luminance, 0.299 R + 0.587 G + 0.114 B).

    Raises DataError naming the file (and its mode) when it cannot be read faithfully.
    """
    if mode not in ("RGB", "L"):
        raise DataError(f"image mode must be 'RGB' or 'L', got {mode!r}")
    array = image_array(path, grey=mode == "L")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3 if mode == "RGB" else 1, axis=2)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_unit_range(array: np.ndarray) -> np.ndarray:
    """Integer pixels -> float32 in [0, 1], divided by the largest value of their type
    (255 for uint8, 65535 for uint16): the same scale for every image of a dataset, so a
    dim scan stays dimmer than a bright one. Bool -> 0.0 / 1.0. Other dtypes: DataError."""
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.unsignedinteger):
        raise DataError(f"to_unit_range expects unsigned integer pixels (uint8, uint16), "
                        f"got {array.dtype}")
    return (array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)).astype(np.float32)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8 RGB, for figures and overlays."""
    array = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array
