"""Checks of lesson 00 (setup): ``float32_mib``, ``foreground_fraction``, ``list_pairs``.

Each check runs the lesson's worked example (the same on every run: a failure there reads
the same for every student) and cases drawn fresh from a seed; the ``reference_*``
functions are the versions ``checks.use`` falls back to when an exercise was skipped.

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

A wrong answer that no catalogued mistake explains gets the general hint.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segkit.checks import values
from segkit.checks.core import (GENERAL_HINT, Check, close, explained_by, fail, judge_each,
                                judging, write_tiny_carvana)

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


def _number(desc: dict[str, Any], name: str, expected: float) -> float:
    """The student's answer as a float, or a failure saying why it is not a float."""
    if desc["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none")
    if desc["kind"] == "int":
        if desc["value"] == math.floor(expected) and desc["value"] != expected:
            fail(f"{name} is {desc['value']}, a whole number; expected {expected:.6g}.",
                 mistake="integer-division")
        return float(desc["value"])  # a whole number that is not a rounding: judged by value
    if desc["kind"] == "numpy-scalar" and str(desc["dtype"]).startswith(("int", "uint")):
        return float(desc["value"])
    if desc["kind"] not in ("float", "numpy-scalar") or values.number(desc) is None:
        fail(f"{name} should be a Python float, but it is {values.shown(desc)} "
             f"(type {desc.get('type')}).", mistake="not-a-float")
    return float(values.number(desc))


def _unexplained(message: str) -> None:
    fail(message, hint=GENERAL_HINT)


# --------------------------------------------------------------------------- float32_mib


def _draw_mib(rng: np.random.Generator) -> dict[str, Any]:
    """One toy Carvana image (the worked example), a drawn batch, and a drawn full-size
    feature map (given as a torch.Size: a tensor's .shape works too)."""
    batch = [int(rng.integers(2, 33)), 3, int(rng.integers(17, 130)), int(rng.integers(17, 130))]
    big = [1, int(rng.choice([32, 64, 96])), int(rng.integers(900, 1400)),
           int(rng.integers(1300, 2000))]
    return {"cases": [
        {"shape": [1, 3, 160, 240], "what": "one toy Carvana image", "drawn": False,
         "size": False},
        {"shape": batch, "what": "a batch of small images", "drawn": True, "size": False},
        {"shape": big, "what": "one feature map of a full-size image", "drawn": True,
         "size": True}]}


def _ask_mib(float32_mib: Any, cases: dict[str, Any]) -> dict[str, Any]:
    import torch

    answers = []
    for case in cases["cases"]:
        shape = torch.Size(case["shape"]) if case["size"] else tuple(case["shape"])
        answers.append(values.describe(float32_mib(shape)))
    return {"cases": answers}


def _mib_forms(expected: float) -> dict[str, list[float]]:
    return {"forgot-bytes-per-value": [expected / 4],
            "megabytes-not-mib": [expected * 2**20 / 1e6],
            "bytes-not-mib": [expected * 2**20],
            "integer-division": [float(math.floor(expected))]}


def _judge_mib(cases: dict[str, Any], answers: dict[str, Any]) -> None:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    expected = [reference_float32_mib(c["shape"]) for c, _ in items]
    got = []
    for (case, desc), want in zip(items, expected):
        with judging(case["drawn"]):
            got.append(_number(desc, f"float32_mib({tuple(case['shape'])})", want))
    for (case, _), value, want in zip(items, got, expected):
        if close(value, want, abs_tol=1e-6 * max(1.0, want)):
            continue
        with judging(case["drawn"]):
            message = (f"float32_mib({tuple(case['shape'])}) is {value:.6g}, expected "
                       f"{want:.6g} ({case['what']})")
            mistake = explained_by(got, [_mib_forms(e) for e in expected], abs_tol=1e-6,
                                   rel_tol=1e-6)
            fail(message, mistake=mistake, hint=None if mistake else GENERAL_HINT)


check_float32_mib = Check(
    "00", "float32_mib", "float32_mib on 3 shapes",
    references=("segkit.checks.lesson00.reference_float32_mib",),
    draw_cases=_draw_mib, ask_student=_ask_mib, judge_answers=_judge_mib)


# --------------------------------------------------------------------------- foreground_fraction


def _example_mask() -> np.ndarray:
    """A 4x5 uint8 mask, 0 background and 1 object, 6 object pixels (fraction 0.3)."""
    return np.array([[0, 0, 0, 0, 0],
                     [0, 1, 1, 1, 0],
                     [0, 1, 1, 1, 0],
                     [0, 0, 0, 0, 0]], dtype=np.uint8)


def _draw_fraction(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (a 4x5 mask as 0/1 and as 0/255, an empty and a full 3x4 mask),
    then the same four kinds drawn: odd, unequal sizes, an object of drawn size."""
    mask = _example_mask()
    cases = [(mask, "a 4x5 mask with 6 object pixels (value 1)"),
             (mask * np.uint8(255), "the same mask stored with 255 for the object"),
             (np.zeros((3, 4), np.uint8), "a 3x4 mask of 0s"),
             (np.ones((3, 4), np.uint8), "a 3x4 mask of 1s")]
    out = [{"mask": m, "what": w, "drawn": False} for m, w in cases]
    h, w = (int(v) for v in rng.choice([5, 7, 9, 11, 13], size=2, replace=False))
    drawn = (rng.random((h, w)) < rng.uniform(0.15, 0.4)).astype(np.uint8)
    drawn.flat[rng.integers(h * w)] = 1
    count = int(drawn.sum())
    for m, what in [(drawn, f"a {h}x{w} mask with {count} object pixels (value 1)"),
                    (drawn * np.uint8(255), f"the same {h}x{w} mask stored with 255"),
                    (np.zeros((w, h), np.uint8), f"a {w}x{h} mask of 0s"),
                    (np.full((w, h), 1, np.uint8), f"a {w}x{h} mask of 1s")]:
        out.append({"mask": m, "what": what, "drawn": True})
    return {"cases": out}


def _ask_fraction(foreground_fraction: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(foreground_fraction(np.array(c["mask"], copy=True)))
                      for c in cases["cases"]]}


def _fraction_forms(mask: np.ndarray) -> dict[str, list[float]]:
    right = np.count_nonzero(mask) / mask.size
    return {"counting-0-as-object": [1 - right, 1.0],
            "count-not-fraction": [float(np.count_nonzero(mask)), float(mask.sum())],
            "mask-0-255-summed": [float(mask.mean())],
            "integer-division": [float(math.floor(right)), float(mask.sum() // mask.size)]}


_FRACTION_HINTS = {
    "mask-0-255-summed": "many masks store the object as 255, not 1 (the toy sea/sky masks "
                         "do): summing or averaging the values counts each object pixel 255 "
                         "times. Count the pixels that are not 0 instead.",
}


def _judge_fraction(cases: dict[str, Any], answers: dict[str, Any]) -> None:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    expected = [reference_foreground_fraction(c["mask"]) for c, _ in items]
    got = []
    for (case, desc), want in zip(items, expected):
        with judging(case["drawn"]):
            got.append(_number(desc, "foreground_fraction(mask)", want))
    for (case, _), value, want in zip(items, got, expected):
        if close(value, want, abs_tol=1e-6):
            continue
        with judging(case["drawn"]):
            message = f"foreground_fraction(mask) is {value:.6g} for {case['what']}; " \
                      f"expected {want:.6g}"
            mistake = explained_by(got, [_fraction_forms(c["mask"]) for c, _ in items],
                                   abs_tol=1e-6)
            if mistake is None and close(value, 1.0) and want < 1:  # every pixel counted
                mistake = "counting-0-as-object"
            fail(message, mistake=mistake,
                 hint=_FRACTION_HINTS.get(mistake) if mistake else GENERAL_HINT)


check_foreground_fraction = Check(
    "00", "foreground_fraction", "foreground_fraction on 0/1, 0/255, empty and full masks",
    references=("segkit.checks.lesson00.reference_foreground_fraction",),
    draw_cases=_draw_fraction, ask_student=_ask_fraction, judge_answers=_judge_fraction)


# --------------------------------------------------------------------------- list_pairs

# The worked example: one image (bbbb_01) has no mask, which is what breaks zipping two
# sorted lists. Written in a scrambled order: the check must not rely on the order the
# file system lists files in.
_IMAGES = ["cccc_01", "aaaa_02", "bbbb_02", "aaaa_01", "bbbb_01"]
_MASKS = ["bbbb_02", "aaaa_01", "cccc_01", "aaaa_02"]


def _draw_folders(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example's folder, then one of drawn car ids: 5 images, written in a
    drawn order, one of them (never the last by name) without a mask."""
    hexes = "0123456789abcdef"
    cars = sorted({"".join(rng.choice(list(hexes), 12)) for _ in range(3)})
    while len(cars) < 3:
        cars.append("f" * 12 + str(len(cars)))
    stems = sorted({f"{cars[int(rng.integers(3))]}_{int(rng.integers(1, 17)):02d}"
                    for _ in range(12)})[:5]
    while len(stems) < 5:
        stems.append(f"{cars[0]}_{17 + len(stems):02d}")
    stems = sorted(stems)
    missing = stems[int(rng.integers(0, 4))]  # not the last: the pairs after it shift
    images = [str(s) for s in rng.permutation(stems)]
    masks = [s for s in rng.permutation(stems) if s != missing]
    return {"cases": [
        {"images": _IMAGES, "masks": _MASKS, "drawn": False},
        {"images": images, "masks": [str(m) for m in masks], "drawn": True}]}


def _write_folder(root: Path, case: dict[str, Any]) -> None:
    """Flat grey 12 x 8 photos, empty masks: only the file names matter here."""
    write_tiny_carvana(root, {s: Image.new("RGB", (12, 8), (90, 90, 90)) for s in case["images"]},
                       {s: np.zeros((8, 12), dtype=np.uint8) for s in case["masks"]})


def _describe_pairs(result: Any, root: Path) -> dict[str, Any]:
    """The pairs the student returned, as names and facts about the paths."""
    if result is None:
        return {"kind": "none"}
    if isinstance(result, (str, bytes, Path)) or not hasattr(result, "__iter__"):
        return {"kind": "other", "shown": values.shown(values.describe(result))}
    pairs = []
    for item in list(result)[:100]:
        if isinstance(item, (str, bytes, Path)) or not hasattr(item, "__len__") or len(item) != 2:
            return {"kind": "items", "shown": values.shown(values.describe(item))}
        image, mask = (Path(str(p)) for p in item)
        pairs.append({"image": image.name, "mask": mask.name, "image_file": image.is_file(),
                      "mask_file": mask.is_file(), "mask_absolute": mask.is_absolute()})
    return {"kind": "pairs", "pairs": pairs}


def _ask_pairs(list_pairs: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        with tempfile.TemporaryDirectory(prefix="segkit-check-") as tmp:
            root = Path(tmp) / "carvana"
            _write_folder(root, case)
            answers.append(_describe_pairs(list_pairs(root), root))
    return {"cases": answers}


def _expected_pairs(case: dict[str, Any]) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="segkit-judge-") as tmp:
        root = Path(tmp) / "carvana"
        _write_folder(root, case)
        return [(i.name, m.name) for i, m in reference_list_pairs(root)]


def _judge_pairs_case(case: dict[str, Any], answer: dict[str, Any]) -> None:
    name = "list_pairs(root)"
    missing = sorted(set(case["images"]) - set(case["masks"]))[0]
    where = (f"a tiny Carvana folder with train/: {' '.join(sorted(case['images']))} (.jpg) "
             f"and train_masks/: the masks of all of them but {missing}")
    if answer["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none")
    if answer["kind"] != "pairs":
        fail(f"{name} should be a list of (image, mask) pairs, but it is {answer['shown']}.",
             hint="return a list of 2-tuples: [(image_path, mask_path), ...].")
    pairs = answer["pairs"]
    names = [(p["image"], p["mask"]) for p in pairs]
    if not pairs:
        fail(f"{name} found no pairs in {where}.", mistake="wrong-mask-suffix")
    for image, mask in names:
        stem = image.rsplit(".", 1)[0]
        if mask != f"{stem}_mask.gif":
            shifted = mask.endswith("_mask.gif") and mask[:-len("_mask.gif")] in case["masks"]
            fail(f"{name} paired {image} with {mask} in {where}.",
                 mistake="zip-sorted-lists" if shifted else "wrong-mask-suffix")
    for pair in pairs:
        if not pair["image_file"] or (not pair["mask_file"] and not pair["mask_absolute"]):
            fail(f"{name} returned the pair ({pair['image']!r}, {pair['mask']!r}), which does "
                 "not name files that can be opened.", mistake="names-not-paths")
        if not pair["mask_file"]:
            fail(f"{name} paired {pair['image']} with {pair['mask']}, which does not exist, "
                 f"in {where}.", mistake="missing-mask-kept")
    expected = _expected_pairs(case)
    if sorted(names) != expected:
        fail(f"{name} gave the pairs {sorted(n[0] for n in names)}; expected the "
             f"{len(expected)} images that have a mask: {[n[0] for n in expected]} ({where}).",
             hint="list every .jpg in root/'train', and keep each image whose mask exists in "
                  "root/'train_masks'. (A list of 2-tuples: [(image_path, mask_path), ...].)")
    if names != expected:
        fail(f"{name} gave the images in the order {[n[0] for n in names]}; expected them "
             "sorted by name.", mistake="pairs-not-sorted")


def _judge_pairs(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_pairs_case)
    return "4 pairs; the image without a mask left out"


check_list_pairs = Check(
    "00", "list_pairs", "list_pairs on a tiny Carvana folder",
    references=("segkit.checks.lesson00.reference_list_pairs",),
    draw_cases=_draw_folders, ask_student=_ask_pairs, judge_answers=_judge_pairs)
