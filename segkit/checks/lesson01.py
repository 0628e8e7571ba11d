"""Checks of lesson 01 (data): ``to_class_indices``, ``CarvanaPairs``,
``make_train_transform``, ``mean_std``.

Each check runs the lesson's worked example (the same on every run) and cases drawn fresh
from a seed (:class:`~segkit.checks.core.Check`): masks and folders of drawn sizes and
names, images of drawn brightness, a transform's input of drawn size and object place; it
raises :class:`~segkit.checks.core.CheckFailed` with a hint that names the mistake. The
``reference_*`` functions are what ``checks.use`` falls back to when an exercise was
skipped; they are thin wrappers around segkit (``segkit.masks``, ``segkit.transforms``);
the reference of ``CarvanaPairs`` is ``segkit.data.CarvanaDataset`` itself.

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
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from segkit import masks as segkit_masks
from segkit import transforms as segkit_transforms
from segkit.checks import core, values
from segkit.checks.core import (GENERAL_HINT, Check, close, explained_by, fail, judge_each,
                                judging, write_tiny_carvana)

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
    return segkit_masks.mask_to_index(np.asarray(mask_array), convention="binary")


def reference_make_train_transform(size: tuple[int, int]) -> v2.Compose:
    """segkit's training augmentation at ``size`` = (H, W), without normalisation.

    ``segkit.transforms.train_transforms`` with mean 0 and std 1 (so its Normalize
    changes nothing): Resize -> RandomHorizontalFlip -> RandomAffine -> ColorJitter ->
    ToDtype(float32, scale=True).
    """
    return segkit_transforms.train_transforms(size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


# --------------------------------------------------------------------------- helpers


def _values(desc: dict[str, Any]) -> list:
    """Sorted distinct values (as Python numbers) of a described tensor or array."""
    array = values.array(desc)
    return [] if array is None else np.unique(array).tolist()


def _is_float(desc: dict[str, Any]) -> bool:
    return desc["dtype"].startswith(("float", "bfloat"))


def _shape(desc: dict[str, Any]) -> tuple[int, ...] | None:
    return tuple(desc["shape"]) if desc.get("kind") in ("tensor", "ndarray") else None


# --------------------------------------------------------------------------- to_class_indices


def _example_mask01() -> np.ndarray:
    """A 4x6 uint8 mask of 0/1 (a GIF palette mask read as indices): 7 object pixels."""
    return np.array([[0, 0, 0, 0, 0, 0],
                     [0, 1, 1, 1, 0, 0],
                     [0, 1, 1, 1, 1, 0],
                     [0, 0, 0, 0, 0, 0]], dtype=np.uint8)


def _draw_indices(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (a 0/255 mask, the same as 0/1, an empty 3x5 mask), then a drawn
    mask of odd, unequal size as 0/255 and as 0/1, and an empty one."""
    mask01 = _example_mask01()
    cases = [(mask01 * np.uint8(255), "a 0/255 mask (a sea/sky PNG)", False),
             (mask01.copy(), "a 0/1 mask (a Carvana GIF read as palette indices)", False),
             (np.zeros((3, 5), np.uint8), "an all-background mask", False)]
    h, w = (int(v) for v in rng.choice([5, 7, 9, 11], size=2, replace=False))
    drawn = (rng.random((h, w)) < rng.uniform(0.2, 0.5)).astype(np.uint8)
    drawn.flat[rng.integers(h * w)] = 1
    drawn.flat[rng.integers(h * w)] = 0 if drawn.sum() > 1 else 1
    cases += [(drawn * np.uint8(255), f"a drawn {h}x{w} 0/255 mask", True),
              (drawn, f"the same {h}x{w} mask as 0/1", True),
              (np.zeros((w, h), np.uint8), f"an all-background {w}x{h} mask", True)]
    return {"cases": [{"mask": m, "what": what, "drawn": d} for m, what, d in cases]}


def _ask_indices(to_class_indices: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(to_class_indices(np.array(c["mask"], copy=True)))
                      for c in cases["cases"]]}


def _check_class_mask(out: dict[str, Any], expected: np.ndarray, name: str, what: str) -> None:
    """Fail unless ``out`` describes an (H, W) int64 array or tensor equal to ``expected``."""
    if out["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none",
             hint="your function computes the mask but does not give it back: end it "
                  "with `return ...`.")
    if out["kind"] not in ("ndarray", "tensor"):
        fail(f"{name} should be an array or a tensor, but it is {values.shown(out)}.",
             mistake="not-an-array")
    shape = _shape(out)
    if shape in ((1, *expected.shape), (*expected.shape, 1)):
        fail(f"{name} has shape {shape}, expected {expected.shape}: a channel axis was added.",
             mistake="mask-channel-axis")
    if shape != expected.shape:
        fail(f"{name} has shape {shape}, expected {expected.shape} (the input's shape).",
             hint="convert the values, keep the shape: one class index per pixel.")
    found = _values(out)
    if out["dtype"] == "bool":
        fail(f"{name} has dtype bool for {what}.", mistake="mask-bool-dtype")
    if 255 in found:
        fail(f"{name} still holds 255 for {what}: {found}.", mistake="mask-0-255-as-index")
    if _is_float(out):
        fail(f"{name} has dtype {out['dtype']} and values {found} for {what}.",
             mistake="mask-divided-to-float")
    if out["dtype"] != "int64":
        fail(f"{name} has dtype {out['dtype']} for {what}, expected int64.",
             mistake="mask-not-int64")
    got = values.array(out)
    if not np.array_equal(got, expected):
        fail(f"{name} differs from the expected 0/1 mask for {what} at "
             f"{int((got != expected).sum())} of {expected.size} pixels; it holds {found}.",
             hint=GENERAL_HINT)


def _judge_indices(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    for case, out in items:
        expected = reference_to_class_indices(case["mask"])
        with judging(case["drawn"]):
            if set(np.unique(case["mask"]).tolist()) == {0, 1} and _shape(out) == \
                    expected.shape and out["kind"] in ("ndarray", "tensor") \
                    and _values(out) == [0]:
                fail(f"to_class_indices(mask) is all 0 (background) for {case['what']} with "
                     f"{int(expected.sum())} object pixels.", mistake="assumes-0-255")
            _check_class_mask(out, expected, "to_class_indices(mask)", case["what"])
    return "0/255, 0/1 and empty masks"


check_to_class_indices = Check(
    "01", "to_class_indices", "to_class_indices",
    references=("segkit.checks.lesson01.reference_to_class_indices",
                "segkit.masks.mask_to_index"),
    draw_cases=_draw_indices, ask_student=_ask_indices, judge_answers=_judge_indices)


# --------------------------------------------------------------------------- CarvanaPairs

# A tiny Carvana folder, written in a scrambled order. Every image has a bright bar at
# its own place and its mask marks that bar, so the check can tell which file an item
# came from. One JPEG is grayscale (some real photos are).
_STEMS = ["a1b2c3d4e5f6_02", "0f0f0f0f0f0f_01", "9e9e9e9e9e9e_03", "a1b2c3d4e5f6_01",
          "5d5d5d5d5d5d_01"]


def _bar_mask(case: dict[str, Any], stem: str) -> np.ndarray:
    """(H, W) int64 0/1: the bar of image ``stem`` (its place depends on the sorted rank)."""
    k = sorted(case["stems"]).index(stem)
    h, w = case["size"]
    step = (w - 4) // 5
    mask = np.zeros((h, w), dtype=np.int64)
    mask[3:h - 3, 2 + step * k: 6 + step * k] = 1  # 4 px wide, never symmetric about the middle
    return mask


def _bar_image(case: dict[str, Any], stem: str) -> Image.Image:
    """The photo of ``stem``: a bright bar where its mask is 1 (grayscale for the gray one)."""
    mask = _bar_mask(case, stem)
    pixels = np.where(mask[..., None] == 1, np.uint8(230), np.uint8(40))
    pixels = np.repeat(pixels, 3, axis=2).astype(np.uint8)
    pixels[..., 0] = np.where(mask == 1, 230, 70)  # a little colour
    image = Image.fromarray(pixels, "RGB")
    return image.convert("L") if stem == case["gray"] else image


def _draw_carvana(rng: np.random.Generator) -> dict[str, Any]:
    """The worked folder (5 pairs of 30 x 16 photos, one grayscale), then one of drawn car
    ids and size, written in a drawn order, a drawn one of them grayscale."""
    worked = {"stems": _STEMS, "size": [16, 30], "gray": "9e9e9e9e9e9e_03", "drawn": False}
    hexes = list("0123456789abcdef")
    stems: list[str] = []
    while len(stems) < 5:
        stem = f"{''.join(rng.choice(hexes, 12))}_{int(rng.integers(1, 17)):02d}"
        if stem not in stems:
            stems.append(stem)
    size = [int(rng.integers(12, 21)), int(rng.integers(28, 41))]
    drawn = {"stems": stems, "size": size, "gray": stems[int(rng.integers(5))], "drawn": True}
    return {"cases": [worked, drawn]}


def _ask_carvana_folder(CarvanaPairs: Any, case: dict[str, Any], root: Path) -> dict:  # noqa: N803
    write_tiny_carvana(root, {s: _bar_image(case, s) for s in case["stems"]},
                       {s: _bar_mask(case, s) for s in case["stems"]})
    dataset = CarvanaPairs(root)
    answer: dict[str, Any] = {"length": values.describe(len(dataset))}
    paths = getattr(dataset, "image_paths", None)
    answer["paths"] = None if paths is None else [Path(str(p)).stem for p in list(paths)[:50]]
    answer["items"] = []
    for i in range(len(case["stems"])):  # an error is judged after len and image_paths
        item, error = values.call(dataset.__getitem__, i)
        answer["items"].append(error or values.describe(item))
    flipped, error = values.call(
        lambda: CarvanaPairs(root, transform=v2.RandomHorizontalFlip(p=1.0))[0])
    answer["flipped"] = error or values.describe(flipped)
    return answer


def _ask_carvana(CarvanaPairs: Any, cases: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
    answers = []
    for case in cases["cases"]:
        with tempfile.TemporaryDirectory(prefix="segkit-check-") as tmp:
            answers.append(_ask_carvana_folder(CarvanaPairs, case, Path(tmp) / "carvana"))
    return {"cases": answers}


def _image_bar(image: np.ndarray) -> np.ndarray:
    """(H, W) 0/1: where a (3, H, W) [0, 1] image is bright."""
    return (image.astype(np.float64).mean(axis=0) > 0.5).astype(np.int64)


def _which_stem(case: dict[str, Any], bar: np.ndarray) -> str | None:
    """The file whose bar is ``bar`` (matching at least 95 % of the pixels), or None."""
    for stem in sorted(case["stems"]):
        mask = _bar_mask(case, stem)
        if bar.shape == mask.shape and (bar == mask).mean() >= 0.95:
            return stem
    return None


def _check_image(image: dict[str, Any], name: str, gray: bool, size: tuple[int, int]) -> None:
    h, w = size
    if image.get("kind") != "tensor":
        fail(f"{name} should be a torch tensor, but it is {values.shown(image)}.",
             hint="turn the PIL image into a tensor (torchvision's functional "
                  "`pil_to_tensor`), then into float32 in [0, 1].")
    shape = _shape(image)
    if shape == (h, w, 3):
        fail(f"{name} has shape {shape}: (H, W, 3).", mistake="image-hwc-not-chw")
    if gray and shape in ((h, w), (1, h, w), (h, w, 1)):
        fail(f"{name} has shape {shape} for a grayscale JPEG.", mistake="image-not-rgb")
    if shape != (3, h, w):
        fail(f"{name} has shape {shape}, expected (3, {h}, {w}) for a {w} x {h} photo.",
             hint="an image item is (3, H, W): channels first, at the file's size.")
    if image["dtype"] == "uint8":
        fail(f"{name} has dtype uint8 (values 0..255).", mistake="image-uint8-not-float")
    if image["dtype"] != "float32":
        fail(f"{name} has dtype {image['dtype']}, expected float32.",
             hint="float64 doubles memory and mixes badly with float32 weights: the image "
                  "item is float32.")
    if float(values.array(image).max()) > 1.5:
        fail(f"{name} holds values up to {float(values.array(image).max()):.1f}.",
             mistake="image-not-scaled")


def _check_mask(mask: dict[str, Any], name: str, size: tuple[int, int]) -> None:
    h, w = size
    if mask.get("kind") == "ndarray":
        fail(f"{name} is a NumPy array (dtype {mask['dtype']}), not a torch tensor.",
             mistake="mask-not-tensor")
    if mask.get("kind") != "tensor":
        fail(f"{name} should be a torch tensor, but it is {values.shown(mask)}.",
             hint="a mask item is a tensor of class indices (a tv_tensors.Mask).")
    shape = _shape(mask)
    if shape in ((h, w, 3), (3, h, w), (h, w, 4)):
        fail(f"{name} has shape {shape}: colours, not class indices.", mistake="mask-read-as-rgb")
    if shape in ((1, h, w), (h, w, 1)):
        fail(f"{name} has shape {shape}, expected ({h}, {w}): a channel axis too many.",
             mistake="mask-channel-axis")
    if shape != (h, w):
        fail(f"{name} has shape {shape}, expected ({h}, {w}): one class index per pixel.",
             hint="a mask item is (H, W): no channel dimension.")
    if _is_float(mask):
        fail(f"{name} has dtype {mask['dtype']}.", mistake="mask-float-not-int64")
    if 255 in _values(mask):
        fail(f"{name} holds the values {_values(mask)}.", mistake="mask-0-255-as-index",
             hint="the mask was read as 0/255 (e.g. `.convert('L')`). Pass it through "
                  "`to_class_indices` so the car is class 1.")
    if mask["dtype"] != "int64":
        fail(f"{name} has dtype {mask['dtype']}, expected int64.", mistake="mask-not-int64",
             hint="cross-entropy and the metrics want class indices as int64.")


def _pair(desc: dict[str, Any], name: str) -> tuple[dict, dict]:
    if desc["kind"] not in ("tuple", "list") or desc["length"] != 2:
        fail(f"{name} should be a pair (image, mask), but it is {values.shown(desc)}.",
             hint="end __getitem__ with `return image, mask`.")
    return desc["items"][0], desc["items"][1]


def _judge_carvana_case(case: dict[str, Any], answer: dict[str, Any]) -> None:
    where = f"a tiny Carvana folder of {len(case['stems'])} pairs"
    ordered, size = sorted(case["stems"]), tuple(case["size"])
    if values.number(answer["length"]) != len(ordered):
        fail(f"len(dataset) is {values.shown(answer['length'])} for {where}.", mistake="len-wrong")
    stems = answer["paths"]
    if stems is None:
        fail(f"the dataset has no attribute `image_paths` ({where}).",
             hint="keep the sorted list of image files as `self.image_paths` (later cells "
                  "use it to split by car).")
    if sorted(stems) != ordered:
        fail(f"dataset.image_paths names {stems}; expected the {len(ordered)} .jpg files of "
             f"root/'train' ({where}).", hint="list the .jpg files of root/'train'.")
    if stems != ordered:
        fail(f"dataset.image_paths is in the order {stems}, not sorted.",
             mistake="pairs-not-sorted",
             hint="the order a folder lists its files in depends on the file system: sort the "
                  "image paths.")
    for i, (stem, item) in enumerate(zip(ordered, answer["items"], strict=True)):
        image, mask = _pair(core.value_of(item, "CarvanaPairs"), f"dataset[{i}]")
        _check_image(image, f"the image of dataset[{i}] ({stem}.jpg)", stem == case["gray"], size)
        _check_mask(mask, f"the mask of dataset[{i}] ({stem}_mask.gif)", size)
        from_image = _which_stem(case, _image_bar(values.array(image)))
        from_mask = _which_stem(case, values.array(mask))
        if from_image != stem or from_mask != stem:
            fail(f"dataset[{i}] should be the pair of {stem}.jpg (image_paths[{i}]), but its "
                 f"image is {from_image}.jpg and its mask {from_mask}_mask.gif.",
                 mistake="pairs-mismatched")
    image, mask = _pair(core.value_of(answer["flipped"], "CarvanaPairs"),
                        "dataset[0] with a transform")
    image_flipped = _which_stem(case, _image_bar(values.array(image))[:, ::-1]) \
        if _shape(image) == (3, *size) else None
    mask_array = values.array(mask) if mask.get("kind") in ("tensor", "ndarray") else None
    mask_flipped = _which_stem(case, np.asarray(mask_array)[:, ::-1]) \
        if mask_array is not None and mask_array.shape == size else None
    if image_flipped is None and mask_flipped is None:
        fail("with transform=RandomHorizontalFlip(p=1.0), neither the image nor the mask of "
             "dataset[0] is flipped.", mistake="transform-ignored")
    if image_flipped is not None and mask_flipped is None:
        fail("with transform=RandomHorizontalFlip(p=1.0), the image of dataset[0] is flipped "
             "but its mask is not.", mistake="mask-not-tv-tensor")
    if image_flipped is None:
        fail("with transform=RandomHorizontalFlip(p=1.0), the mask of dataset[0] is flipped "
             "but its image is not.",
             hint="call the transform once with both, image first, and keep both results.")


def _judge_carvana(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_carvana_case)
    return "5 pairs, a grayscale JPEG, and a flip applied to both"


check_carvana_pairs = Check(
    "01", "CarvanaPairs", "CarvanaPairs on a tiny Carvana folder",
    references=("segkit.data.CarvanaDataset",), name="check_carvana_pairs",
    draw_cases=_draw_carvana, ask_student=_ask_carvana, judge_answers=_judge_carvana)


# --------------------------------------------------------------------------- make_train_transform


def _transform_case(rng: np.random.Generator | None) -> dict[str, Any]:
    """A (3, H, W) float32 image with a bright object on the left, and its mask: 0
    background, 1 object, a 2-pixel border of 255 (ignore) around it as Pascal VOC draws
    it (an interpolated mask shows values such as 128 there, which are no class).
    ``rng`` None: the worked example (40 x 60 to (32, 48), seeds 0..15)."""
    if rng is None:
        h, w, out, seeds, top, left = 40, 60, [32, 48], list(range(16)), 8, 6
        drawn = False
    else:
        h, w = int(rng.integers(30, 51)), int(rng.integers(44, 71))
        out = [int(rng.integers(20, 37)), int(rng.integers(38, 60))]
        seeds = [int(s) for s in rng.integers(16, 10_000, size=8)]
        top, left, drawn = int(rng.integers(4, h // 3)), int(rng.integers(3, w // 8)), True
    mask = np.zeros((h, w), np.int64)
    bottom, right = top + (h * 3) // 5, left + w // 4
    mask[top:bottom, left:right] = 255
    mask[top:top + 6, right:right + 6] = 255  # an arm, so the shape is not a plain rectangle
    mask[top + 2:bottom - 2, left + 2:right - 2] = 1
    image = np.full((3, h, w), 0.2, np.float32)
    image[:, mask != 0] = 0.8
    image[0] += 0.05  # a little colour: ColorJitter has something to change
    return {"image": image, "mask": mask, "size": out, "seeds": seeds, "drawn": drawn}


def _draw_transform(rng: np.random.Generator) -> dict[str, Any]:
    return {"cases": [_transform_case(None), _transform_case(rng)]}


def _ask_transform(make_train_transform: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        transform = make_train_transform(tuple(case["size"]))
        answer: dict[str, Any] = {"transform": values.describe(transform),
                                  "callable": callable(transform), "outputs": []}
        if callable(transform):
            for seed in case["seeds"]:
                torch.manual_seed(seed)
                out = transform(tv_tensors.Image(values.tensor(case["image"])),
                                tv_tensors.Mask(values.tensor(case["mask"])))
                answer["outputs"].append(values.describe(out))
        answers.append(answer)
    return {"cases": answers}


def _expect_pair_shapes(out: dict[str, Any], call: str, case: dict[str, Any]) -> tuple:
    """``out`` of the transform is an (image, mask) pair of tensors of the right shapes."""
    h, w = case["size"]
    in_h, in_w = case["mask"].shape
    if out["kind"] not in ("tuple", "list") or out["length"] != 2:
        fail(f"{call} should give (image, mask), but it gave {values.shown(out)}.",
             hint="call the v2 pipeline with both, image and mask: it returns both.")
    image, mask = out["items"]
    if image["kind"] != "tensor" or mask["kind"] != "tensor":
        fail(f"{call} gave {values.shown(image)} and {values.shown(mask)}; expected two tensors.",
             hint="keep the pipeline in tensors: the v2 transforms all work on tv_tensors.")
    shape = tuple(image["shape"][-2:])
    if shape == (w, h):
        fail(f"{call}: the image is {shape}, expected size (H, W) = {(h, w)}.",
             mistake="size-w-h-swapped")
    if tuple(image["shape"]) != (3, h, w):
        fail(f"{call}: the image has shape {tuple(image['shape'])}, expected (3, {h}, {w}).",
             mistake="wrong-size")
    if tuple(mask["shape"]) == (in_h, in_w):
        fail(f"{call}: the image is resized to {(h, w)} but the mask is still {(in_h, in_w)}.",
             mistake="mask-not-transformed")
    if tuple(mask["shape"]) == (1, h, w):
        fail(f"{call}: the mask has shape {tuple(mask['shape'])}, expected ({h}, {w}).",
             mistake="mask-channel-axis")
    if tuple(mask["shape"]) != (h, w):
        fail(f"{call}: the mask has shape {tuple(mask['shape'])}, expected ({h}, {w}).",
             mistake="wrong-size",
             hint="the mask goes through the same pipeline as the image and comes out (H, W).")
    return image, mask


def _expect_pair_values(image: dict[str, Any], mask: dict[str, Any], call: str) -> None:
    """A float32 [0, 1] image and an int64 0/1/255 mask that still line up."""
    if image["dtype"] != "float32":
        fail(f"{call}: the image has dtype {image['dtype']}, expected float32.",
             mistake="image-not-float32")
    pixels, labels = values.array(image).astype(np.float64), values.array(mask)
    low, high = float(pixels.min()), float(pixels.max())
    if low < -0.05 or high > 1.05:
        fail(f"{call}: the image holds values from {low:.3f} to {high:.3f}, expected [0, 1].",
             mistake="normalized-too-early")
    if _is_float(mask):
        fail(f"{call}: the mask has dtype {mask['dtype']}, expected int64.",
             mistake="mask-float-not-int64",
             hint="keep the mask int64: a dtype conversion for images (scale=True) must not "
                  "touch the mask, and the mask needs no conversion of its own.")
    found = np.unique(labels).tolist()
    if not set(found) <= {0, 1, 255}:
        fail(f"{call}: the mask holds the values {found[:8]}{' ...' if len(found) > 8 else ''}, "
             "but the input mask holds only 0 (background), 1 (object) and 255 (ignore "
             "border).", mistake="mask-bilinear")
    if mask["dtype"] != "int64":
        fail(f"{call}: the mask has dtype {mask['dtype']}, expected int64.",
             mistake="mask-not-int64", hint="keep the mask int64.")
    if int((labels != 0).sum()) == 0:
        fail(f"{call}: the mask is empty (the object left the picture).",
             hint="keep the augmentation light: a flip, a little colour jitter; large shifts "
                  "or crops can push the object out.")
    gray = pixels.mean(axis=0)
    threshold = (float(gray.max()) + float(gray.min())) / 2
    agree = float(((gray > threshold) == (labels != 0)).mean())
    if agree < 0.9:
        fail(f"{call}: image and mask no longer line up: the bright object of the image and "
             f"the mask agree on only {agree:.0%} of the pixels.", mistake="separate-random-params")


def _judge_transform_case(case: dict[str, Any], answer: dict[str, Any]) -> int:
    size = tuple(case["size"])
    if answer["transform"]["kind"] == "none":
        fail(f"make_train_transform({size}) returned None.", mistake="returns-none",
             hint="end your function with `return v2.Compose([...])`.")
    if not answer["callable"]:
        fail(f"make_train_transform({size}) should return a transform (callable), but it "
             f"returned {values.shown(answer['transform'])}.", hint="return `v2.Compose([...])`.")
    flips = 0
    for seed, out in zip(case["seeds"], answer["outputs"], strict=True):
        call = f"t(image, mask) (seed {seed})"
        image, mask = _expect_pair_shapes(out, call, case)
        _expect_pair_values(image, mask, call)
        cols = np.nonzero(values.array(mask) != 0)[1]
        flips += int(float(cols.mean()) > case["size"][1] / 2)
    return flips


def _judge_transform(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    flips = []
    for case, answer in zip(cases["cases"], answers["cases"], strict=True):
        with judging(case["drawn"]):
            flips.append(_judge_transform_case(case, answer))
    n = sum(len(case["seeds"]) for case in cases["cases"])  # a fair flip: never all or none
    if sum(flips) == 0:
        fail(f"in {n} calls with different seeds the pair was never flipped.",
             mistake="flip-not-random")
    if sum(flips) == n:
        fail(f"in {n} calls with different seeds the pair was flipped every time.",
             mistake="flip-not-random",
             hint="a flip that always happens is no augmentation, just a mirrored dataset: "
                  "flip half of the time.")
    return (f"{len(cases['cases'][0]['seeds'])} random draws, {flips[0]} flipped, image and "
            "mask always aligned")


check_make_train_transform = Check(
    "01", "make_train_transform", "make_train_transform",
    references=("segkit.checks.lesson01.reference_make_train_transform",
                "segkit.transforms.train_transforms"),
    draw_cases=_draw_transform, ask_student=_ask_transform, judge_answers=_judge_transform)


# --------------------------------------------------------------------------- mean_std


class _Images(Dataset):
    """Items (image, mask): image (3, H, W) float32 in [0, 1], mask (H, W) int64."""

    def __init__(self, images: np.ndarray) -> None:
        self.items = [(torch.from_numpy(np.array(image)),
                       torch.zeros(image.shape[1:], dtype=torch.int64)) for image in images]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        image, mask = self.items[index]  # an IndexError past the end ends a for loop
        return image.clone(), mask.clone()


def _images(rng: np.random.Generator, levels: list[float], h: int, w: int) -> np.ndarray:
    tint = np.array([0.0, 0.05, -0.05], np.float32).reshape(3, 1, 1)
    out = [np.clip(level + tint + 0.15 * rng.standard_normal((3, h, w)), 0, 1)
           for level in levels]
    return np.stack(out).astype(np.float32)


def _draw_mean_std(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (5 images (3, 12, 16) of brightness 0.2 to 0.8), then 5 or 7
    images of a drawn odd, unequal size and drawn brightness: never a whole number of
    batches of 2, 3 or 4, so a last batch is always smaller."""
    torch_rng = torch.Generator().manual_seed(1)
    levels = [0.2, 0.35, 0.5, 0.65, 0.8]
    tint = torch.tensor([0.0, 0.05, -0.05]).view(3, 1, 1)
    worked = torch.stack([(level + tint + 0.15 * torch.randn(3, 12, 16, generator=torch_rng)
                           ).clamp(0, 1).float() for level in levels]).numpy()
    k = int(rng.choice([5, 7]))
    h, w = (int(v) for v in rng.choice([9, 11, 13, 15], size=2, replace=False))
    drawn = _images(rng, sorted(float(v) for v in rng.uniform(0.1, 0.9, k)), h, w)
    return {"cases": [
        {"images": worked, "what": "for 5 images (3, 12, 16) of different brightness",
         "drawn": False},
        {"images": drawn, "what": f"for {k} images (3, {h}, {w}) of drawn brightness",
         "drawn": True}]}


def _ask_mean_std(mean_std: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(mean_std(_Images(c["images"]))) for c in cases["cases"]]}


def _batch_stats(images: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-batch means and stds averaged over batches (the wrong way) for a batch size."""
    means, stds = [], []
    for start in range(0, len(images), batch):
        stack = images[start:start + batch].astype(np.float64)
        means.append(stack.mean(axis=(0, 2, 3)))
        stds.append(stack.std(axis=(0, 2, 3), ddof=1))
    return np.mean(means, axis=0), np.mean(stds, axis=0)


def _channel_values(desc: dict[str, Any], what: str, name: str) -> np.ndarray:
    array = values.array(desc)
    if array is None:
        fail(f"the {what} of {name} should be numbers, but it is {values.shown(desc)}.",
             hint="return tensors (or lists) of 3 numbers, one per channel.")
    array = array.astype(np.float64)
    if array.ndim == 0 or array.size == 1:
        fail(f"the {what} of {name} is one number, {float(array.reshape(-1)[0]):.6g}, for "
             "3-channel images.", mistake="not-per-channel")
    if array.shape != (3,):
        fail(f"the {what} of {name} has shape {array.shape}, expected (3,).",
             mistake="reduced-wrong-dims")
    return array


def _judge_mean_std_case(case: dict[str, Any], result: dict[str, Any]) -> None:
    images = case["images"].astype(np.float64)
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    name, where = "mean_std(dataset)", case["what"]
    if result["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none",
             hint="end your function with `return mean, std`.")
    if result["kind"] not in ("tuple", "list") or result["length"] != 2:
        fail(f"{name} should be a pair (mean, std), but it is {values.shown(result)}.",
             hint="return two things: `return mean, std`.")
    got_mean, got_std = (_channel_values(d, w, name) for d, w in zip(result["items"],
                                                                     ("mean", "std")))
    if not close(got_mean, mean, abs_tol=1e-4):
        batches = [_batch_stats(case["images"], b)[0] for b in (2, 3, 4)]
        mistake = "mean-of-batch-means" if any(close(got_mean, m, abs_tol=1e-4)
                                               for m in batches) else None
        fail(f"the mean of {name} is {np.round(got_mean, 4).tolist()}, expected "
             f"{np.round(mean, 4).tolist()} {where}.", mistake=mistake,
             hint=None if mistake else GENERAL_HINT)
    if not close(got_std, std, abs_tol=1e-3):
        image_means = images.mean(axis=(2, 3))
        forms = {"variance-not-std": [std ** 2],
                 "std-of-image-means": [image_means.std(axis=0), image_means.std(axis=0, ddof=1)],
                 "mean-of-image-stds": [images.std(axis=(2, 3), ddof=1).mean(axis=0),
                                        images.std(axis=(2, 3)).mean(axis=0)]
                 + [_batch_stats(case["images"], b)[1] for b in (2, 3, 4)]}
        mistake = explained_by([got_std], [forms], abs_tol=1e-3)
        fail(f"the std of {name} is {np.round(got_std, 4).tolist()}, expected "
             f"{np.round(std, 4).tolist()} {where}.", mistake=mistake,
             hint=None if mistake else GENERAL_HINT)


def _judge_mean_std(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_mean_std_case)
    return "5 images of different brightness"


check_mean_std = Check(
    "01", "mean_std", "mean_std",
    references=("segkit.transforms.compute_mean_std",),
    draw_cases=_draw_mean_std, ask_student=_ask_mean_std, judge_answers=_judge_mean_std)
