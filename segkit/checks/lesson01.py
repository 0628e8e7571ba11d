"""Checks of lesson 01 (data): ``to_class_indices``, ``CarvanaPairs``,
``make_train_transform``, ``mean_std``.

Each ``check_*`` function takes the student's function (or class), runs it on small
fixed inputs and raises :class:`~segkit.checks.core.CheckFailed` with a hint that names
the mistake. The ``reference_*`` functions are what ``checks.use`` falls back to when an
exercise was skipped; they are thin wrappers around segkit (``segkit.masks``,
``segkit.transforms``); the reference of ``CarvanaPairs`` is
``segkit.data.CarvanaDataset`` itself.

Mistake ids used here:

- ``returns-none``: the function has no ``return``;
- ``mask-0-255-as-index``: a 0/255 mask kept as it is, so the object is class 255
  (cross-entropy with 2 classes then fails: "Target 255 is out of bounds");
- ``mask-divided-to-float``: ``mask / 255`` gives 0.0/1.0 floats, not class indices;
- ``mask-bool-dtype``: ``mask > 0`` is a bool array; the loss wants int64;
- ``mask-not-int64``: another integer dtype (uint8, int32) where int64 is needed;
- ``assumes-0-255``: ``mask // 255`` or ``mask == 255`` turns a 0/1 mask (Carvana's
  GIFs) into all background;
- ``not-an-array``: a list or other object where an array or tensor was asked for;
- ``len-wrong``: ``__len__`` does not give the number of images;
- ``pairs-not-sorted``: the images are not in sorted file-name order;
- ``pairs-mismatched``: image i and mask i come from different files;
- ``image-uint8-not-float``: the image is left as uint8 0..255;
- ``image-not-scaled``: a float image with values 0..255 (not divided by 255);
- ``image-hwc-not-chw``: the image is (H, W, 3) (PIL/NumPy order), not (3, H, W);
- ``image-not-rgb``: a grayscale JPEG kept with one channel (no ``.convert("RGB")``);
- ``mask-read-as-rgb``: the palette mask converted to colours: 3 channels;
- ``mask-float-not-int64``: the mask is a float tensor;
- ``mask-not-tensor``: the mask is a NumPy array, not a torch tensor;
- ``transform-ignored``: the dataset does not apply its ``transform``;
- ``mask-not-tv-tensor``: the transform flipped the image but not the mask (a plain
  tensor next to a ``tv_tensors.Image`` is passed through untouched, or the transform
  was called on the image alone);
- ``wrong-size`` / ``size-w-h-swapped``: the output is not ``size`` = (H, W);
- ``mask-not-transformed``: the mask comes back at its input size;
- ``image-not-float32`` / ``normalized-too-early``: the train transform's image is not
  float32 in [0, 1];
- ``mask-bilinear``: the mask holds values that are no class (interpolated);
- ``separate-random-params``: image and mask got different random flips (two
  pipelines, or a reseeded global RNG that drifted);
- ``flip-not-random``: never flipped, or always flipped;
- ``not-per-channel`` / ``reduced-wrong-dims``: ``mean_std`` did not return one
  value per channel;
- ``mean-of-batch-means``: batch means averaged although the last batch is smaller;
- ``std-of-image-means``: the spread of the image means, not of the pixels;
- ``mean-of-image-stds``: per-image (or per-batch) stds averaged: the differences
  between images are lost;
- ``variance-not-std``: the variance returned as the std (no square root).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from segkit.checks.core import check, close, expect_close, fail, show, write_tiny_carvana
from segkit.masks import mask_to_index
from segkit.transforms import train_transforms

__all__ = [
    "check_to_class_indices",
    "check_carvana_pairs",
    "check_make_train_transform",
    "check_mean_std",
    "reference_to_class_indices",
    "reference_make_train_transform",
]


# --------------------------------------------------------------------------- references


def reference_to_class_indices(mask_array) -> np.ndarray:
    """(H, W) array of {0, 1} or {0, 255} -> (H, W) int64 array of 0/1.

    segkit's ``mask_to_index(..., convention="binary")``, which also refuses masks
    with other values (e.g. a JPEG-compressed mask).
    """
    return mask_to_index(np.asarray(mask_array), convention="binary")


def reference_make_train_transform(size: tuple[int, int]) -> v2.Compose:
    """segkit's training augmentation at ``size`` = (H, W), without normalisation.

    ``segkit.transforms.train_transforms`` with mean 0 and std 1 (so its Normalize
    changes nothing): Resize -> RandomHorizontalFlip -> RandomAffine -> ColorJitter ->
    ToDtype(float32, scale=True).
    """
    return train_transforms(size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


# --------------------------------------------------------------------------- helpers


def _dtype_name(value) -> str:
    return str(value.dtype).replace("torch.", "")


def _is_float(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    return np.issubdtype(value.dtype, np.floating)


def _is_bool(value) -> bool:
    return value.dtype in (torch.bool, np.bool_)


def _is_int64(value) -> bool:
    return value.dtype in (torch.int64, np.int64)


def _values(value) -> list:
    """Sorted distinct values (as Python numbers) of a tensor or array."""
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return np.unique(array).tolist()


# --------------------------------------------------------------------------- to_class_indices


def _example_mask01() -> np.ndarray:
    """A 4x6 uint8 mask of 0/1 (a GIF palette mask read as indices): 7 object pixels."""
    return np.array([[0, 0, 0, 0, 0, 0],
                     [0, 1, 1, 1, 0, 0],
                     [0, 1, 1, 1, 1, 0],
                     [0, 0, 0, 0, 0, 0]], dtype=np.uint8)


def _check_class_mask(out, expected: np.ndarray, name: str, what: str) -> None:
    """Fail unless ``out`` is an (H, W) int64 array or tensor equal to ``expected``."""
    __tracebackhide__ = True
    if out is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="your function computes the mask but does not give it back: end it "
                  "with `return ...`.")
    if not isinstance(out, (np.ndarray, torch.Tensor)):
        fail(f"{name} should be an array or a tensor, but it is {show(out)}.",
             mistake="not-an-array")
    if tuple(out.shape) in ((1, *expected.shape), (*expected.shape, 1)):
        fail(f"{name} has shape {tuple(out.shape)}, expected {expected.shape}: a channel "
             "axis was added.", mistake="mask-channel-axis")
    if tuple(out.shape) != expected.shape:
        fail(f"{name} has shape {tuple(out.shape)}, expected {expected.shape} (the input's "
             "shape).", hint="convert the values, keep the shape: one class index per pixel.")
    values = _values(out)
    if _is_bool(out):
        fail(f"{name} has dtype bool for {what}.", mistake="mask-bool-dtype")
    if 255 in values:
        fail(f"{name} still holds 255 for {what}: {values}.", mistake="mask-0-255-as-index")
    if _is_float(out):
        fail(f"{name} has dtype {_dtype_name(out)} and values {values} for {what}.",
             mistake="mask-divided-to-float")
    if not _is_int64(out):
        fail(f"{name} has dtype {_dtype_name(out)} for {what}, expected int64.",
             mistake="mask-not-int64")
    got = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    if not np.array_equal(got, expected):
        fail(f"{name} differs from the expected 0/1 mask for {what} at "
             f"{int((got != expected).sum())} of {expected.size} pixels; it holds {values}.",
             hint="background (0) stays 0 and the object (1 or 255) becomes 1: "
                  "`(mask > 0).astype(np.int64)`.")


@check("to_class_indices", "to_class_indices")
def check_to_class_indices(to_class_indices):
    """to_class_indices(mask_array) -> (H, W) int64 of 0/1, from a 0/255 or a 0/1 mask."""
    mask01 = _example_mask01()
    expected = mask01.astype(np.int64)
    out = to_class_indices(mask01 * np.uint8(255))
    _check_class_mask(out, expected, "to_class_indices(mask_0_255)",
                      "a 0/255 mask (a sea/sky PNG)")
    out = to_class_indices(mask01.copy())
    if isinstance(out, (np.ndarray, torch.Tensor)) \
            and tuple(out.shape) == expected.shape and _values(out) == [0]:
        fail("to_class_indices(mask_0_1) is all 0 (background) for a 0/1 mask (a "
             "Carvana GIF read as palette indices) with 7 object pixels.",
             mistake="assumes-0-255")
    _check_class_mask(out, expected, "to_class_indices(mask_0_1)",
                      "a 0/1 mask (a Carvana GIF read as palette indices)")
    empty = np.zeros((3, 5), dtype=np.uint8)
    _check_class_mask(to_class_indices(empty), empty.astype(np.int64),
                      "to_class_indices(empty_mask)", "an all-background mask")
    return "0/255, 0/1 and empty masks"


# --------------------------------------------------------------------------- CarvanaPairs

# A tiny Carvana folder, written in a scrambled order. Every image has a bright bar at
# its own place and its mask marks that bar, so the check can tell which file an item
# came from. One JPEG is grayscale (some real photos are).
_W, _H = 30, 16
_STEMS = ["a1b2c3d4e5f6_02", "0f0f0f0f0f0f_01", "9e9e9e9e9e9e_03", "a1b2c3d4e5f6_01",
          "5d5d5d5d5d5d_01"]
_SORTED = sorted(_STEMS)
_GRAY_STEM = "9e9e9e9e9e9e_03"


def _bar_mask(stem: str) -> np.ndarray:
    """(H, W) int64 0/1: the bar of image ``stem`` (its place depends on the sorted rank)."""
    k = _SORTED.index(stem)
    mask = np.zeros((_H, _W), dtype=np.int64)
    mask[3:13, 2 + 5 * k: 6 + 5 * k] = 1  # 4 px wide, never symmetric about the middle
    return mask


def _bar_image(stem: str) -> Image.Image:
    """The photo of ``stem``: a bright bar where its mask is 1 (grayscale for _GRAY_STEM)."""
    mask = _bar_mask(stem)
    pixels = np.where(mask[..., None] == 1, np.uint8(230), np.uint8(40))
    pixels = np.repeat(pixels, 3, axis=2).astype(np.uint8)
    pixels[..., 0] = np.where(mask == 1, 230, 70)  # a little colour
    image = Image.fromarray(pixels, "RGB")
    return image.convert("L") if stem == _GRAY_STEM else image


def _write_tiny_carvana(root: Path) -> None:
    write_tiny_carvana(root, {stem: _bar_image(stem) for stem in _STEMS},
                       {stem: _bar_mask(stem) for stem in _STEMS})


def _image_bar(image) -> np.ndarray:
    """(H, W) 0/1: where a (3, H, W) [0, 1] image is bright."""
    gray = image.detach().float().mean(dim=0).cpu().numpy()
    return (gray > 0.5).astype(np.int64)


def _which_stem(bar: np.ndarray) -> str | None:
    """The file whose bar is ``bar`` (matching at least 95 % of the pixels), or None."""
    for stem in _SORTED:
        if (bar == _bar_mask(stem)).mean() >= 0.95:
            return stem
    return None


def _check_image(image, name: str, gray: bool) -> None:
    __tracebackhide__ = True
    if not isinstance(image, torch.Tensor):
        fail(f"{name} should be a torch tensor, but it is {show(image)}.",
             hint="turn the PIL image into a tensor: `TF.pil_to_tensor(pil)` gives (3, H, W) "
                  "uint8; then `TF.to_dtype(t, torch.float32, scale=True)`.")
    shape = tuple(image.shape)
    if shape == (_H, _W, 3):
        fail(f"{name} has shape {shape}: (H, W, 3).", mistake="image-hwc-not-chw")
    if gray and shape in ((_H, _W), (1, _H, _W), (_H, _W, 1)):
        fail(f"{name} has shape {shape} for a grayscale JPEG.", mistake="image-not-rgb")
    if shape != (3, _H, _W):
        fail(f"{name} has shape {shape}, expected (3, {_H}, {_W}) for a {_W} x {_H} photo.",
             hint="an image item is (3, H, W): channels first, at the file's size.")
    if image.dtype == torch.uint8:
        fail(f"{name} has dtype uint8 (values 0..255).", mistake="image-uint8-not-float")
    if image.dtype != torch.float32:
        fail(f"{name} has dtype {_dtype_name(image)}, expected float32.",
             hint="convert with `.float()` (float32); float64 doubles memory and mixes "
                  "badly with float32 weights.")
    if float(image.max()) > 1.5:
        fail(f"{name} holds values up to {float(image.max()):.1f}.",
             mistake="image-not-scaled")


def _check_mask(mask, name: str) -> None:
    __tracebackhide__ = True
    if isinstance(mask, np.ndarray):
        fail(f"{name} is a NumPy array (dtype {mask.dtype}), not a torch tensor.",
             mistake="mask-not-tensor")
    if not isinstance(mask, torch.Tensor):
        fail(f"{name} should be a torch tensor, but it is {show(mask)}.",
             hint="wrap it: `tv_tensors.Mask(torch.as_tensor(indices))`.")
    shape = tuple(mask.shape)
    if shape in ((_H, _W, 3), (3, _H, _W), (_H, _W, 4)):
        fail(f"{name} has shape {shape}: colours, not class indices.",
             mistake="mask-read-as-rgb")
    if shape in ((1, _H, _W), (_H, _W, 1)):
        fail(f"{name} has shape {shape}, expected ({_H}, {_W}): a channel axis too many.",
             mistake="mask-channel-axis")
    if shape != (_H, _W):
        fail(f"{name} has shape {shape}, expected ({_H}, {_W}): one class index per pixel.",
             hint="a mask item is (H, W): no channel dimension.")
    if mask.is_floating_point():
        fail(f"{name} has dtype {_dtype_name(mask)}.", mistake="mask-float-not-int64")
    values = _values(mask)
    if 255 in values:
        fail(f"{name} holds the values {values}.", mistake="mask-0-255-as-index",
             hint="the mask was read as 0/255 (e.g. `.convert('L')`). Pass it through "
                  "`to_class_indices` so the car is class 1.")
    if mask.dtype != torch.int64:
        fail(f"{name} has dtype {_dtype_name(mask)}, expected int64.", mistake="mask-not-int64",
             hint="convert the class indices to int64: `.long()`.")


@check("CarvanaPairs", "CarvanaPairs on a tiny Carvana folder")
def check_carvana_pairs(CarvanaPairs):  # noqa: N803 - the student's class
    """CarvanaPairs(root, transform=None): a Dataset of (image, mask) read from a Carvana folder."""
    with tempfile.TemporaryDirectory(prefix="segkit-check-") as tmp:
        root = Path(tmp) / "carvana"
        _write_tiny_carvana(root)
        where = "a tiny Carvana folder of 5 pairs"
        dataset = CarvanaPairs(root)
        n = len(dataset)
        if n != len(_STEMS):
            fail(f"len(dataset) is {show(n)} for {where}.", mistake="len-wrong")
        paths = getattr(dataset, "image_paths", None)
        if paths is None:
            fail(f"the dataset has no attribute `image_paths` ({where}).",
                 hint="keep the sorted list of image files as `self.image_paths` "
                      "(later cells use it to split by car).")
        stems = [Path(p).stem for p in paths]
        if sorted(stems) != _SORTED:
            fail(f"dataset.image_paths names {show(stems)}; expected the 5 .jpg files "
                 f"of root/'train' ({where}).",
                 hint="list the images with `sorted((root / 'train').glob('*.jpg'))`.")
        if stems != _SORTED:
            fail(f"dataset.image_paths is in the order {show(stems)}, not sorted.",
                 mistake="pairs-not-sorted",
                 hint="the order a folder lists its files in depends on the file system: "
                      "sort the image paths (`sorted(...)`).")
        for i, stem in enumerate(_SORTED):
            item = dataset[i]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                fail(f"dataset[{i}] should be a pair (image, mask), but it is "
                     f"{show(item)}.", hint="end __getitem__ with `return image, mask`.")
            image, mask = item
            _check_image(image, f"the image of dataset[{i}] ({stem}.jpg)",
                         gray=stem == _GRAY_STEM)
            _check_mask(mask, f"the mask of dataset[{i}] ({stem}_mask.gif)")
            from_image = _which_stem(_image_bar(image))
            from_mask = _which_stem(mask.detach().cpu().numpy())
            if from_image != stem or from_mask != stem:
                fail(f"dataset[{i}] should be the pair of {stem}.jpg (image_paths[{i}]), "
                     f"but its image is {from_image}.jpg and its mask "
                     f"{from_mask}_mask.gif.", mistake="pairs-mismatched")

        flip = v2.RandomHorizontalFlip(p=1.0)
        flipped = CarvanaPairs(root, transform=flip)
        image, mask = flipped[0]
        image_flipped = _which_stem(_image_bar(image)[:, ::-1])
        mask_np = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else mask
        mask_flipped = _which_stem(np.asarray(mask_np)[:, ::-1])
        if image_flipped is None and mask_flipped is None:
            fail("with transform=RandomHorizontalFlip(p=1.0), neither the image nor the "
                 "mask of dataset[0] is flipped.", mistake="transform-ignored")
        if image_flipped is not None and mask_flipped is None:
            fail("with transform=RandomHorizontalFlip(p=1.0), the image of dataset[0] is "
                 "flipped but its mask is not.", mistake="mask-not-tv-tensor")
        if image_flipped is None:
            fail("with transform=RandomHorizontalFlip(p=1.0), the mask of dataset[0] is "
                 "flipped but its image is not.",
                 hint="call `self.transform(image, mask)` once with both, image first, "
                      "and keep both results.")
    return "5 pairs, a grayscale JPEG, and a flip applied to both"


# --------------------------------------------------------------------------- make_train_transform

_IN_H, _IN_W = 40, 60
_OUT = (32, 48)


def _transform_example() -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """A (3, 40, 60) float32 image with a bright object on the left, and its mask.

    The mask is 0 (background) and 1 (object) with a 2-pixel border of 255 (ignore)
    around the object, as Pascal VOC draws it: an interpolated mask shows values such
    as 128 there, which are no class.
    """
    mask = torch.zeros(_IN_H, _IN_W, dtype=torch.int64)
    mask[8:32, 6:20] = 255
    mask[8:14, 20:26] = 255  # an arm, so the shape is not a plain rectangle
    mask[10:30, 8:18] = 1
    image = torch.full((3, _IN_H, _IN_W), 0.2)
    image[:, mask != 0] = 0.8
    image[0] += 0.05  # a little colour: ColorJitter has something to change
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def _expect_pair_shapes(out, call: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``out`` of the transform is an (image, mask) pair of tensors of the right shapes."""
    h, w = _OUT
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"{call} should give (image, mask), but it gave {show(out)}.",
             hint="call the v2 pipeline with both: `image, mask = t(image, mask)` "
                  "returns both.")
    image, mask = out
    if not isinstance(image, torch.Tensor) or not isinstance(mask, torch.Tensor):
        fail(f"{call} gave {show(image)} and {show(mask)}; expected two tensors.",
             hint="keep the pipeline in tensors: v2.Resize, RandomHorizontalFlip, "
                  "ColorJitter and ToDtype all work on tv_tensors.")
    shape = tuple(image.shape[-2:])
    if shape == (w, h):
        fail(f"{call}: the image is {shape}, expected size (H, W) = {_OUT}.",
             mistake="size-w-h-swapped")
    if tuple(image.shape) != (3, h, w):
        fail(f"{call}: the image has shape {tuple(image.shape)}, expected "
             f"(3, {h}, {w}).", mistake="wrong-size")
    if tuple(mask.shape) == (_IN_H, _IN_W):
        fail(f"{call}: the image is resized to {_OUT} but the mask is still "
             f"{(_IN_H, _IN_W)}.", mistake="mask-not-transformed")
    if tuple(mask.shape) == (1, h, w):
        fail(f"{call}: the mask has shape {tuple(mask.shape)}, expected ({h}, {w}).",
             mistake="mask-channel-axis")
    if tuple(mask.shape) != (h, w):
        fail(f"{call}: the mask has shape {tuple(mask.shape)}, expected ({h}, {w}).",
             mistake="wrong-size",
             hint="the mask goes through the same pipeline as the image and comes "
                  "out (H, W).")
    return image, mask


def _expect_pair_values(image: torch.Tensor, mask: torch.Tensor, call: str) -> None:
    """A float32 [0, 1] image and an int64 0/1/255 mask that still line up."""
    if image.dtype != torch.float32:
        fail(f"{call}: the image has dtype {_dtype_name(image)}, expected float32.",
             mistake="image-not-float32")
    low, high = float(image.min()), float(image.max())
    if low < -0.05 or high > 1.05:
        fail(f"{call}: the image holds values from {low:.3f} to {high:.3f}, "
             "expected [0, 1].", mistake="normalized-too-early")
    if mask.is_floating_point():
        fail(f"{call}: the mask has dtype {_dtype_name(mask)}, expected int64.",
             mistake="mask-float-not-int64",
             hint="keep the mask int64: `v2.ToDtype(torch.float32, scale=True)` "
                  "converts only images; do not convert the mask yourself.")
    values = _values(mask)
    if not set(values) <= {0, 1, 255}:
        fail(f"{call}: the mask holds the values {values[:8]}"
             f"{' ...' if len(values) > 8 else ''}, but the input mask holds only "
             "0 (background), 1 (object) and 255 (ignore border).",
             mistake="mask-bilinear")
    if mask.dtype != torch.int64:
        fail(f"{call}: the mask has dtype {_dtype_name(mask)}, expected int64.",
             mistake="mask-not-int64", hint="keep the mask int64.")
    if int((mask != 0).sum()) == 0:
        fail(f"{call}: the mask is empty (the object left the picture).",
             hint="keep the augmentation light: a flip, a little colour jitter; "
                  "large shifts or crops can push the object out.")
    gray = image.float().mean(dim=0)
    threshold = (float(gray.max()) + float(gray.min())) / 2
    agree = float(((gray > threshold) == (mask != 0)).float().mean())
    if agree < 0.9:
        fail(f"{call}: image and mask no longer line up: the bright object of the "
             f"image and the mask agree on only {agree:.0%} of the pixels.",
             mistake="separate-random-params")


@check("make_train_transform", "make_train_transform")
def check_make_train_transform(make_train_transform):
    """make_train_transform(size) -> t with ``image, mask = t(image, mask)`` (paired, random)."""
    transform = make_train_transform(_OUT)
    if transform is None:
        fail("make_train_transform((32, 48)) returned None.", mistake="returns-none",
             hint="end your function with `return v2.Compose([...])`.")
    if not callable(transform):
        fail(f"make_train_transform((32, 48)) should return a transform (callable), but "
             f"it returned {show(transform)}.", hint="return `v2.Compose([...])`.")
    w = _OUT[1]
    flips = 0
    seeds = range(16)
    with torch.random.fork_rng(devices=[]):  # the notebook's random state is left alone
        for seed in seeds:
            torch.manual_seed(seed)
            image_in, mask_in = _transform_example()
            out = transform(image_in, mask_in)
            call = f"t(image, mask) (seed {seed})"
            image, mask = _expect_pair_shapes(out, call)
            _expect_pair_values(image, mask, call)
            cols = torch.nonzero(mask != 0)[:, 1].float()
            flips += int(float(cols.mean()) > w / 2)
    if flips == 0:
        fail(f"in {len(seeds)} calls with different seeds the pair was never flipped.",
             mistake="flip-not-random")
    if flips == len(seeds):
        fail(f"in {len(seeds)} calls with different seeds the pair was flipped every time.",
             mistake="flip-not-random",
             hint="a flip that always happens is no augmentation, just a mirrored "
                  "dataset: use `v2.RandomHorizontalFlip(p=0.5)`.")
    return f"{len(seeds)} random draws, {flips} flipped, image and mask always aligned"


# --------------------------------------------------------------------------- mean_std


class _Images(Dataset):
    """5 items (image, mask): image (3, 12, 16) float32 in [0, 1], mask (12, 16) int64."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        levels = [0.2, 0.35, 0.5, 0.65, 0.8]
        tint = torch.tensor([0.0, 0.05, -0.05]).view(3, 1, 1)
        self.items = []
        for level in levels:
            noise = 0.15 * torch.randn(3, 12, 16, generator=generator)
            image = (level + tint + noise).clamp(0, 1).float()
            self.items.append((image, torch.zeros(12, 16, dtype=torch.int64)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        image, mask = self.items[index]  # an IndexError past the end ends a for loop
        return image.clone(), mask.clone()


def _batch_stats(images: list[torch.Tensor], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-batch means and stds averaged over batches (the wrong way) for a batch size."""
    means, stds = [], []
    for start in range(0, len(images), batch):
        stack = torch.stack(images[start:start + batch]).double()
        means.append(stack.mean(dim=(0, 2, 3)))
        stds.append(stack.std(dim=(0, 2, 3)))
    return torch.stack(means).mean(0), torch.stack(stds).mean(0)


@check("mean_std", "mean_std")
def check_mean_std(mean_std):
    """mean_std(dataset) -> (mean, std): per channel, over every pixel of every image."""
    dataset = _Images()
    images = [image for image, _ in dataset.items]
    stack = torch.stack(images).double()                       # (5, 3, 12, 16)
    mean = stack.mean(dim=(0, 2, 3)).numpy()
    std = stack.std(dim=(0, 2, 3), unbiased=False).numpy()
    result = mean_std(dataset)
    name = "mean_std(dataset)"
    where = "for 5 images (3, 12, 16) of different brightness"
    if result is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="end your function with `return mean, std`.")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{name} should be a pair (mean, std), but it is {show(result)}.",
             hint="return two things: `return mean, std`.")
    got = []
    for what, value in zip(("mean", "std"), result):
        try:
            array = (value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor)
                     else np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            fail(f"the {what} of {name} should be numbers, but it is {show(value)}.",
                 hint="return tensors (or lists) of 3 numbers, one per channel.")
        if array.ndim == 0 or array.size == 1:
            fail(f"the {what} of {name} is one number, {show(float(array.reshape(-1)[0]))}, "
                 "for 3-channel images.", mistake="not-per-channel")
        if array.shape != (3,):
            fail(f"the {what} of {name} has shape {array.shape}, expected (3,).",
                 mistake="reduced-wrong-dims")
        got.append(array)
    got_mean, got_std = got
    if not close(got_mean, mean, abs_tol=1e-4):
        for batch in (2, 3, 4):
            if close(got_mean, _batch_stats(images, batch)[0].numpy(), abs_tol=1e-4):
                fail(f"the mean of {name} is {np.round(got_mean, 4).tolist()}, expected "
                     f"{np.round(mean, 4).tolist()} {where}.", mistake="mean-of-batch-means")
    expect_close(got_mean, mean, name=f"the mean of {name}", tol=1e-4,
                 hint="the mean of every pixel of every image, per channel.")
    if not close(got_std, std, abs_tol=1e-3):
        image_means = stack.mean(dim=(2, 3))                   # (5, 3)
        image_stds = stack.std(dim=(2, 3))
        got_text = (f"the std of {name} is {np.round(got_std, 4).tolist()}, expected "
                    f"{np.round(std, 4).tolist()} {where}")
        if close(got_std, std**2, abs_tol=1e-3):
            fail(got_text + ".", mistake="variance-not-std")
        if close(got_std, image_means.std(dim=0, unbiased=False).numpy(), abs_tol=1e-3) or \
                close(got_std, image_means.std(dim=0).numpy(), abs_tol=1e-3):
            fail(got_text + ".", mistake="std-of-image-means")
        candidates = [image_stds.mean(dim=0).numpy()]
        candidates += [_batch_stats(images, batch)[1].numpy() for batch in (2, 3, 4)]
        if any(close(got_std, c, abs_tol=1e-3) for c in candidates):
            fail(got_text + ".", mistake="mean-of-image-stds")
    expect_close(got_std, std, name=f"the std of {name}", tol=1e-3,
                 hint="the standard deviation of every pixel of every image, per "
                      "channel: sqrt(E[x²] - E[x]²).")
    return "5 images of different brightness"
