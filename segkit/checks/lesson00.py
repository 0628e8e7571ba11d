"""Checks of lesson 00 (setup): ``float32_mib``, ``foreground_fraction``, ``list_pairs``.

Each ``check_*`` function takes the student's function, runs it on small fixed inputs
and raises :class:`~segkit.checks.core.CheckFailed` with a hint that names the mistake.
The ``reference_*`` functions are the versions ``checks.use`` falls back to when an
exercise was skipped.

Mistake ids used here:

- ``returns-none``: the function has no ``return``;
- ``not-a-float``: a tensor, string, ... where a Python float was asked for;
- ``integer-division``: ``//`` (or integer arithmetic) rounded the answer down to a
  whole number, often 0 (the "accuracy always 0.00" bug of the sea/sky project, lesson 04);
- ``forgot-bytes-per-value``: counted values, not bytes (a float32 takes 4 bytes);
- ``megabytes-not-mib``: divided by 1e6 (megabytes) instead of 2**20 (mebibytes);
- ``bytes-not-mib``: returned bytes, never divided;
- ``counting-0-as-object``: the background (value 0) was counted as the object;
- ``count-not-fraction``: returned the number of object pixels, not a fraction;
- ``mask-0-255-summed``: summed (or averaged) the values of a 0/255 mask, so every
  object pixel counted 255 times;
- ``wrong-mask-suffix``: no pairs found: the mask of ``train/<id>_NN.jpg`` is
  ``train_masks/<id>_NN_mask.gif``;
- ``zip-sorted-lists``: two sorted lists zipped blindly: one missing mask shifts
  every later pair;
- ``missing-mask-kept``: an image without a mask was paired with a file that does
  not exist;
- ``names-not-paths``: file names were returned where paths were asked for;
- ``pairs-not-sorted``: the pairs are not sorted by image name.
"""

from __future__ import annotations

import math
import numbers
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.checks.core import check, close, expect_close, fail, show, write_tiny_carvana

__all__ = [
    "check_float32_mib",
    "check_foreground_fraction",
    "check_list_pairs",
    "reference_float32_mib",
    "reference_foreground_fraction",
    "reference_list_pairs",
]


# --------------------------------------------------------------------------- references


def reference_float32_mib(shape) -> float:
    """Memory of a float32 tensor of ``shape`` (a tuple or ``torch.Size``) in MiB."""
    return math.prod(int(n) for n in shape) * 4 / 2**20


def reference_foreground_fraction(mask) -> float:
    """Fraction of the pixels of ``mask`` ((H, W) array, 0 = background) that are not 0."""
    mask = np.asarray(mask)
    return float(np.count_nonzero(mask) / mask.size)


def reference_list_pairs(root) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a Carvana folder, sorted by image name.

    ``root/train/<id>_NN.jpg`` pairs with ``root/train_masks/<id>_NN_mask.gif``;
    images without a mask are left out.
    """
    root = Path(root)
    pairs = []
    for image in sorted((root / "train").glob("*.jpg")):
        mask = root / "train_masks" / f"{image.stem}_mask.gif"
        if mask.is_file():
            pairs.append((image, mask))
    return pairs


# --------------------------------------------------------------------------- helpers


def _expect_number(value, name: str, expected: float) -> float:
    """The student's value as a float, or a CheckFailed saying why it is not a float."""
    __tracebackhide__ = True
    if value is None:
        fail(f"{name} returned None.", mistake="returns-none")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value == math.floor(expected) and value != expected:
            fail(f"{name} is {show(value)}, a whole number; expected {show(expected)}.",
                 mistake="integer-division")
        return float(value)  # a whole number that is not a rounding: judged by its value
    if not isinstance(value, (float, np.floating)):
        fail(f"{name} should be a Python float, but it is {show(value)} "
             f"(type {type(value).__name__}).", mistake="not-a-float")
    return float(value)


# --------------------------------------------------------------------------- float32_mib


@check("float32_mib", "float32_mib on 3 shapes")
def check_float32_mib(float32_mib):
    """float32_mib(shape) -> MiB of a float32 tensor of that shape (1 MiB = 2**20 bytes)."""
    cases = [((1, 3, 160, 240), "one toy Carvana image"),
             ((16, 3, 64, 96), "a batch of 16 small images"),
             ((1, 64, 1280, 1918), "one 64-channel feature map of a full-size Carvana image")]
    for shape, what in cases:
        expected = reference_float32_mib(shape)
        name = f"float32_mib({shape})"
        value = _expect_number(float32_mib(shape), name, expected)
        if close(value, expected, abs_tol=1e-6 * max(1.0, expected)):
            continue
        got = f"{name} is {show(value)}, expected {show(expected)} ({what})"
        if close(value, expected / 4, abs_tol=1e-6 * max(1.0, expected)):
            fail(got, mistake="forgot-bytes-per-value")
        if close(value, expected * 2**20 / 1e6, abs_tol=1e-6 * max(1.0, expected)):
            fail(got, mistake="megabytes-not-mib")
        if close(value, expected * 2**20, abs_tol=1e-3 * max(1.0, expected)):
            fail(got, mistake="bytes-not-mib")
        fail(got, hint="values = the product of all the sizes in the shape "
                       "(math.prod(shape)); bytes = values * 4; MiB = bytes / 2**20.")


# --------------------------------------------------------------------------- foreground_fraction


def _example_mask() -> np.ndarray:
    """A 4x5 uint8 mask, 0 background and 1 object, 6 object pixels (fraction 0.3)."""
    return np.array([[0, 0, 0, 0, 0],
                     [0, 1, 1, 1, 0],
                     [0, 1, 1, 1, 0],
                     [0, 0, 0, 0, 0]], dtype=np.uint8)


@check("foreground_fraction", "foreground_fraction on 0/1, 0/255, empty and full masks")
def check_foreground_fraction(foreground_fraction):
    """foreground_fraction(mask) -> the fraction of pixels that are not 0, a float."""
    mask01 = _example_mask()
    name = "foreground_fraction(mask)"
    raw = foreground_fraction(mask01.copy())
    if isinstance(raw, numbers.Integral) and not isinstance(raw, bool) and raw == 6:
        fail(f"{name} is 6 for a 4x5 mask with 6 object pixels; expected 0.3.",
             mistake="count-not-fraction")
    value = _expect_number(raw, name, 0.3)
    got = (f"{name} is {show(value)} for a 4x5 mask with 6 object pixels (value 1) "
           "and 14 background pixels (value 0); expected 0.3")
    if close(value, 0.7):
        fail(got, mistake="counting-0-as-object")
    if close(value, 1.0):
        fail(got, mistake="counting-0-as-object",
             hint="every pixel was counted, background (0) included. Count only the "
                  "object pixels: `mask != 0` (or `mask > 0`).")
    if close(value, 6.0):
        fail(got, mistake="count-not-fraction")
    expect_close(value, 0.3, name=name, tol=1e-6,
                 hint="fraction = (number of pixels that are not 0) / (number of "
                      "pixels), e.g. `np.count_nonzero(mask) / mask.size`.")

    mask255 = mask01 * np.uint8(255)
    value = _expect_number(foreground_fraction(mask255.copy()),
                           "foreground_fraction(mask_0_255)", 0.3)
    if close(value, 0.3 * 255, abs_tol=1e-3):
        fail(f"foreground_fraction(mask_0_255) is {show(value)} for the same mask "
             "stored with 255 for the object; expected 0.3",
             mistake="mask-0-255-summed",
             hint="many masks store the object as 255, not 1 (the toy sea/sky masks "
                  "do): summing or averaging the values counts each object pixel 255 "
                  "times. Count the pixels that are not 0 instead: "
                  "`np.count_nonzero(mask)` or `(mask != 0).mean()`.")
    expect_close(value, 0.3, name="foreground_fraction(mask_0_255)", tol=1e-6,
                 mistake="mask-0-255-summed")

    for fill, expected in [(0, 0.0), (1, 1.0)]:
        mask = np.full((3, 4), fill, dtype=np.uint8)
        label = f"foreground_fraction(a 3x4 mask of {fill}s)"
        value = _expect_number(foreground_fraction(mask), label, expected)
        expect_close(value, expected, name=label, tol=1e-6,
                     hint="an empty mask has fraction 0.0 and a full one 1.0.")


# --------------------------------------------------------------------------- list_pairs

# A tiny Carvana folder: one image (bbbb_01) has no mask, which is what breaks
# zipping two sorted lists. Written in a scrambled order: the check must not rely on
# the order the file system lists files in.
_IMAGES = ["cccc_01", "aaaa_02", "bbbb_02", "aaaa_01", "bbbb_01"]
_MASKS = ["bbbb_02", "aaaa_01", "cccc_01", "aaaa_02"]
_EXPECTED = [(f"{s}.jpg", f"{s}_mask.gif") for s in sorted(_MASKS)]


def _write_tiny_carvana(root: Path) -> None:
    """Flat grey 12 x 8 photos, empty masks: only the file names matter here."""
    write_tiny_carvana(root, {stem: Image.new("RGB", (12, 8), (90, 90, 90)) for stem in _IMAGES},
                       {stem: np.zeros((8, 12), dtype=np.uint8) for stem in _MASKS})


def _as_pairs(result, name: str) -> list[tuple[Path, Path]]:
    __tracebackhide__ = True
    if result is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="end your function with `return pairs`.")
    if isinstance(result, (str, bytes, Path)) or not hasattr(result, "__iter__"):
        fail(f"{name} should be a list of (image, mask) pairs, but it is {show(result)}.",
             hint="return a list of 2-tuples: [(image_path, mask_path), ...].")
    pairs = list(result)
    for item in pairs:
        if isinstance(item, (str, bytes, Path)) or not hasattr(item, "__len__") \
                or len(item) != 2:
            fail(f"{name} should hold (image, mask) pairs, but one item is {show(item)}.",
                 hint="return a list of 2-tuples: [(image_path, mask_path), ...].")
    return [(Path(image), Path(mask)) for image, mask in pairs]


@check("list_pairs", "list_pairs on a tiny Carvana folder")
def check_list_pairs(list_pairs):
    """list_pairs(root) -> [(image path, mask path), ...] sorted by image name."""
    with tempfile.TemporaryDirectory(prefix="segkit-check-") as tmp:
        root = Path(tmp) / "carvana"
        _write_tiny_carvana(root)
        name = "list_pairs(root)"
        where = ("a tiny Carvana folder with train/: aaaa_01 aaaa_02 bbbb_01 bbbb_02 "
                 "cccc_01 (.jpg) and train_masks/: the masks of all of them but bbbb_01")
        pairs = _as_pairs(list_pairs(root), name)
        names = [(image.name, mask.name) for image, mask in pairs]
        if not pairs:
            fail(f"{name} found no pairs in {where}.", mistake="wrong-mask-suffix")
        for image, mask in names:
            stem = image.rsplit(".", 1)[0]
            if mask != f"{stem}_mask.gif":
                mistake, hint = "wrong-mask-suffix", (
                    f"the mask of train/{stem}.jpg is train_masks/{stem}_mask.gif: the "
                    "image's stem + '_mask' + '.gif'.")
                if mask.endswith("_mask.gif") and mask[:-len("_mask.gif")] in _MASKS:
                    mistake, hint = "zip-sorted-lists", (
                        "two sorted lists zipped blindly: one image has no mask, so "
                        "from there on every image gets the next image's mask. Build "
                        "each mask's name from its image's name instead "
                        "(f\"{image.stem}_mask.gif\") and keep the pair only if that "
                        "file exists.")
                fail(f"{name} paired {image} with {mask} in {where}.",
                     mistake=mistake, hint=hint)
        for image, mask in pairs:
            if not image.is_file() or (not mask.is_file() and not mask.is_absolute()):
                fail(f"{name} returned the pair {show((str(image), str(mask)))}, which "
                     "does not name files that can be opened.",
                     mistake="names-not-paths")
            if not mask.is_file():
                fail(f"{name} paired {image.name} with {mask.name}, which does not "
                     f"exist, in {where}.", mistake="missing-mask-kept")
        expected_names = sorted(_EXPECTED)
        if sorted(names) != expected_names:
            fail(f"{name} gave the pairs {show(sorted(n[0] for n in names))}; expected "
                 f"the 4 images that have a mask: "
                 f"{show([n[0] for n in expected_names])} ({where}).",
                 hint="list every .jpg in root/'train', and keep each image whose "
                      "mask exists in root/'train_masks'.")
        if names != expected_names:
            fail(f"{name} gave the images in the order {show([n[0] for n in names])}; "
                 f"expected them sorted by name.", mistake="pairs-not-sorted")
    return "4 pairs; the image without a mask left out"
