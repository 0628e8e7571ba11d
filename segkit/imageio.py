"""Reading image files: the one place where segkit opens them (datasets, masks, predict, audit).

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

Every file segkit reads is opened here, by ``open_image(path)``: a missing file, a folder,
a file that is not an image (an HTML error page saved as .jpg) or one cut short (an
interrupted download) is a ``DataError`` naming the file and the likely cause. Masks are
opened by it too, then keep their values (``segkit.masks.read_mask``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

from segkit.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "open_image", "faithful_image", "load_image", "image_array",
           "guess_image_mode", "is_8_bit", "to_unit_range", "to_uint8"]

#: The file endings segkit reads as images (in folders, ``segkit predict``, the cache).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff")

_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16-bit, 32-bit integer, float
_GREY = ("L", "1", "LA") + _WIDE
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


def open_image(path: str | Path) -> Image.Image:
    """Open an image file as it is stored and load all of its pixels.

    The image keeps the file's own mode: a palette ('P') mask stays 'P' so that its
    indices can be read, a 16-bit scan stays 'I;16'. Photos become tensors through
    ``load_image``, which scales every mode faithfully.

    Returns: a fully loaded ``PIL.Image.Image`` (the file is closed).

    Raises DataError naming the file when it is missing, is not an image, or is cut short
    (truncated). We never set ``ImageFile.LOAD_TRUNCATED_IMAGES``: a half-written image
    must fail here, not train silently on grey pixels.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"image file not found: {path}")
    if not path.is_file():
        raise DataError(f"expected an image file but {path} is a folder")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except Image.DecompressionBombError as err:
        raise DataError(
            f"{path} is too large to open safely: {err} A file that small on disk and that "
            "large in pixels may be a decompression bomb; a genuine one must be cut into "
            "tiles first (or PIL.Image.MAX_IMAGE_PIXELS raised in your own code)."
        ) from None
    except UnidentifiedImageError:
        raise DataError(
            f"{path} is not an image PIL can read ({path.stat().st_size} bytes). "
            "Is it an HTML error page or a partial download? Open it in a text "
            "editor, delete it and download it again."
        ) from None
    except (OSError, SyntaxError, EOFError, ValueError) as err:
        text = str(err)
        if "truncated" in text or "end of file" in text.lower() or isinstance(err, EOFError):
            raise DataError(
                f"{path}: the file is cut short: was the download or unzip "
                f"interrupted? (PIL said: {text})"
            ) from None
        raise DataError(f"{path}: could not read the image: {text}") from None


def _frame_count(path: Path) -> int:
    """How many pictures the file holds (a TIFF stack, an animated GIF: more than 1)."""
    with Image.open(path) as im:
        return int(getattr(im, "n_frames", 1) or 1)


def faithful_image(path: str | Path) -> Image.Image:
    """``open_image``, for a photo: one picture in a mode ``load_image`` scales faithfully.

    Returns the loaded ``PIL.Image.Image`` in the file's own mode (its ``size`` and
    ``mode`` are what ``segkit.audit`` reports). Raises DataError naming the file (and its
    mode) for CMYK and other colour spaces and for files with several frames.
    """
    path = Path(path)
    im = open_image(path)  # missing, not an image, cut short: DataError
    frames = _frame_count(path)
    if frames > 1:
        raise DataError(f"{path} holds {frames} frames (a stack or an animation; mode "
                        f"{im.mode}): segkit reads one picture per file. Save the frame you "
                        "want as its own file.")
    if im.mode not in _GREY + _COLOUR:
        raise DataError(f"{path}: PIL mode {im.mode!r} (e.g. CMYK print colours) cannot be "
                        "turned into RGB faithfully without the file's colour profile. Convert "
                        "it to RGB in an image editor (or with Pillow and ImageCms) and save "
                        "as PNG.")
    return im


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
    im = faithful_image(path)
    if im.mode in _GREY:
        return _grey_array(im, path)
    return _colour_array(im, path, grey)


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


def guess_image_mode(paths: list[Path]) -> str:
    """'L' when the first readable image file is grey (8- or 16-bit, float), 'RGB' otherwise."""
    for path in paths[:10]:
        try:
            return "L" if faithful_image(path).mode in _GREY else "RGB"
        except DataError:
            continue  # a broken file: the audit lists it
    return "RGB"


def is_8_bit(mode: str) -> bool:
    """True for a PIL mode of 8-bit pixels that PIL's own ``convert("RGB")`` / ``"L"``
    turns into 8-bit pixels faithfully ('L', 'RGB', 'P', ...); False for 16-bit and float
    images (read them with ``load_image``) and for modes segkit cannot read (CMYK)."""
    return mode in _COLOUR or mode in ("L", "1", "LA")


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
