"""Checks of lesson 09 (your own data).

=========================  ==================================================================
check                      mistakes it names (``CheckFailed.mistake``)
=========================  ==================================================================
``check_to_unit_range``    ``not-float32``, ``clipped-to-8-bit`` (16-bit values clipped or cast
                           to 8 bits: a 12-bit scan turns white), ``divided-by-255`` (values
                           above 1), ``wrong-bit-depth`` (divided by 4095 or another fixed
                           camera range, not the type's), ``per-image-range`` (each image
                           stretched by its own min and max: a dim scan looks as bright as a
                           bright one), ``wrong-range`` (one divisor for every type)
``check_match_names``      ``not-a-list``, ``partial-match`` (a pattern found inside a longer
                           name, e.g. ``000_scan.tif.bak``), ``id-split`` (the id cut at the
                           first ``_``: ``a_1_scan.tif`` gets id ``a``), ``unmatched-kept``
                           (an image without a mask paired with something),
                           ``pairs-not-sorted``, ``silent-duplicate`` (two masks for one id:
                           one kept without a word)
=========================  ==================================================================

Both checks draw their cases fresh each run: the lesson's worked example (the same on
every run) and drawn ones. ``to_unit_range`` meets 8-bit and 16-bit arrays of drawn sizes,
dim (a 12-bit camera's values) and bright ones, grey and RGB; ``match_names`` meets drawn
ids (some with the separator inside them), drawn name patterns, a leftover on each side,
a longer name the pattern fits inside, and a second mask for one id. A wrong answer no
catalogued mistake explains gets the general hint.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from segkit import folders, imageio
from segkit.checks import core, values
from segkit.checks.core import GENERAL_HINT, Check, close, explained_by, fail, judge_each, judging

__all__ = ["check_to_unit_range", "check_match_names", "reference_to_unit_range",
           "reference_match_names"]

reference_to_unit_range = imageio.to_unit_range
reference_match_names = folders.match_names


# --------------------------------------------------------------------------- to_unit_range


def _draw_unit(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (a dim and a bright 16-bit row, an 8-bit row), then drawn arrays:
    a dim 16-bit scan (a 12-bit camera), a bright one, an 8-bit grey one and an RGB one."""
    cases = [{"array": np.array([[0, 1000, 4095]], np.uint16), "what": "a dim 16-bit scan"},
             {"array": np.array([[0, 30000, 65535]], np.uint16), "what": "a bright 16-bit scan"},
             {"array": np.array([[0, 128, 255]], np.uint8), "what": "an 8-bit image"}]
    for case in cases:
        case["drawn"] = False
    h, w = (int(v) for v in rng.integers(2, 7, size=2))
    drawn = [(np.uint16, 300, 4000, (h, w), "a dim 16-bit scan"),
             (np.uint16, 40000, 65535, (w, h), "a bright 16-bit scan"),
             (np.uint8, 60, 250, (h, w + 1), "an 8-bit image"),
             (np.uint8, 60, 254, (h, w, 3), "an 8-bit RGB image")]
    for dtype, low, high, shape, what in drawn:
        top = int(rng.integers(low, high + 1))
        array = rng.integers(0, top + 1, size=shape).astype(dtype)
        array.flat[rng.integers(array.size)] = top  # its own largest value, below the type's
        array.flat[rng.integers(array.size)] = int(rng.integers(1, 30))
        cases.append({"array": array, "what": f"{what} {shape} of values up to {top}",
                      "drawn": True})
    return {"cases": cases}


def _ask_unit(to_unit_range: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(to_unit_range(np.array(c["array"], copy=True)))
                      for c in cases["cases"]]}


def _unit_forms(array: np.ndarray) -> dict[str, list[np.ndarray]]:
    """What the catalogued mistakes give for ``array`` (float64). Each form is one way of
    writing the mistake, applied alike to 8-bit and 16-bit arrays."""
    a = array.astype(np.float64)
    sixteen = array.dtype == np.uint16
    top = a.max() if a.max() > 0 else 1.0
    spread = a.max() - a.min() if a.max() > a.min() else 1.0
    return {
        "divided-by-255": [a / 255],
        "clipped-to-8-bit": [np.clip(a, 0, 255) / 255,
                             (np.floor(a / 256) if sixteen else a) / 255],
        "wrong-bit-depth": [a / d for d in (4095, 4096, 1023, 16383)] + [
            a / d if sixteen else a / 255 for d in (4095, 4096, 1023, 16383)],
        "per-image-range": [a / top, (a - a.min()) / spread],
        "wrong-range": [a / 65535],
    }


_UNIT_HINTS = {
    "divided-by-255": "a uint16 image holds values up to 65535, so dividing by 255 leaves "
                      "values far above 1: the type of the array says its range.",
}


def _judge_unit(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    got = []
    for case, desc in items:
        with judging(case["drawn"]):
            array = values.array(desc) if desc["kind"] in ("ndarray", "tensor") else None
            if desc["kind"] == "none":
                fail(f"to_unit_range({case['what']}) returned None", mistake="returns-none")
            if array is None or array.shape != case["array"].shape:
                fail(f"to_unit_range({case['what']}) should be an array of shape "
                     f"{case['array'].shape}, but it is {values.shown(desc)}",
                     mistake="check-error")
        got.append(array.astype(np.float64))
    right = [reference_to_unit_range(c["array"]).astype(np.float64) for c, _ in items]
    wrong = [i for i, (g, r) in enumerate(zip(got, right)) if not close(g, r, abs_tol=1e-6)]
    if wrong:
        case, index = items[wrong[0]][0], wrong[0]
        with judging(case["drawn"]):
            mistake = explained_by(got, [_unit_forms(c["array"]) for c, _ in items],
                                   abs_tol=1e-5)
            shown = np.round(got[index].ravel()[:4], 4).tolist()
            want = np.round(right[index].ravel()[:4], 4).tolist()
            fail(f"to_unit_range({case['what']}) gave values starting {shown}; expected "
                 f"{want} (max {got[index].max():.4g}, expected {right[index].max():.4g})",
                 mistake=mistake,
                 hint=_UNIT_HINTS.get(mistake) if mistake else GENERAL_HINT)
    for (case, desc), _ in zip(items, got):
        if desc["dtype"] != "float32":
            with judging(case["drawn"]):
                fail(f"to_unit_range({case['what']}) has dtype {desc['dtype']}: the right "
                     "values, but not float32", mistake="not-float32")
    return "uint8 and uint16, dim and bright"


check_to_unit_range = Check(
    "09", "to_unit_range", "to_unit_range",
    references=("segkit.checks.lesson09.reference_to_unit_range",
                "segkit.imageio.to_unit_range"),
    draw_cases=_draw_unit, ask_student=_ask_unit, judge_answers=_judge_unit)


# --------------------------------------------------------------------------- match_names

IMAGES = ["000_scan.tif", "001_scan.tif", "a_7_scan.tif", "002_scan.tif", "000_scan.tif.bak",
          "notes.txt"]
MASKS = ["000_cells.gif", "000_scan_roi.gif", "001_cells.gif", "a_7_cells.gif",
         "a_8_cells.gif", "003_cells.gif"]

_SHAPES = [("{id}_scan.tif", "{id}_cells.gif"), ("img_{id}.png", "img_{id}_mask.png"),
           ("{id}.jpg", "{id}_label.png"), ("scan-{id}.tiff", "{id}-roi.png")]


def _draw_names(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example, then drawn names: ids with the pattern's separator inside them,
    an image without a mask, a mask without an image, a longer name the image pattern fits
    inside, shuffled; and a second mask for one id (with a wildcard mask pattern)."""
    worked = {"images": IMAGES, "masks": MASKS, "patterns": ["{id}_scan.tif", "{id}_cells.gif"],
              "twice": [["000_scan.tif"], ["000_cells.gif", "000_scan_roi.gif"],
                        "{id}_scan.tif", "{id}_*.gif"], "drawn": False}
    image_pattern, mask_pattern = _SHAPES[int(rng.integers(len(_SHAPES)))]
    sep = "_" if "_" in image_pattern else "-"
    letters = "abcdefgh"
    ids = [f"{int(rng.integers(100, 999))}" for _ in range(3)]
    ids += [f"{letters[int(rng.integers(8))]}{sep}{int(rng.integers(1, 99))}" for _ in range(2)]
    ids = list(dict.fromkeys(ids))
    image_only, mask_only = f"{int(rng.integers(1000, 9999))}", f"z{int(rng.integers(10, 99))}"
    images = [image_pattern.replace("{id}", i) for i in ids + [image_only]]
    images += [image_pattern.replace("{id}", ids[0]) + ".bak", "notes.txt"]
    masks = [mask_pattern.replace("{id}", i) for i in ids + [mask_only]]
    rng.shuffle(images)
    rng.shuffle(masks)
    paired = [i for i in images if i in {image_pattern.replace("{id}", k) for k in ids}]
    if paired == sorted(paired):  # never in sorted order: an unsorted answer must show
        first, last = images.index(paired[0]), images.index(paired[-1])
        images[first], images[last] = images[last], images[first]
    one = ids[int(rng.integers(len(ids)))]
    stem, ext = mask_pattern.rsplit(".", 1)
    twice = [[image_pattern.replace("{id}", one)],
             [mask_pattern.replace("{id}", one), f"{stem.replace('{id}', one)}_v2.{ext}"],
             image_pattern, f"{stem}*.{ext}"]
    drawn = {"images": images, "masks": masks, "patterns": [image_pattern, mask_pattern],
             "twice": twice, "drawn": True}
    return {"cases": [worked, drawn]}


def _ask_names(match_names: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        got, error = values.call(match_names, list(case["images"]), list(case["masks"]),
                                 *case["patterns"])
        result, twice_error = values.call(match_names, list(case["twice"][0]),
                                          list(case["twice"][1]), *case["twice"][2:])
        answers.append({"pairs": error or values.describe(got),
                        "twice": twice_error or values.describe(result)})
    return {"cases": answers}


def _pairs(desc: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The student's pairs as (str, str) tuples, or None when they are not pairs."""
    if desc["kind"] not in ("list", "tuple"):
        return None
    found = values.python(desc, None)
    if found is None or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in found):
        return None
    return [(str(a), str(b)) for a, b in found]


def _id_split_pairs(case: dict[str, Any]) -> list[tuple[str, str]]:
    """What cutting each id at the first separator gives."""
    image_pattern, mask_pattern = case["patterns"]
    def first(name: str, pattern: str) -> str | None:
        match = folders.compile_pattern(pattern).fullmatch(name)
        return re.split(r"[_\-]", match["id"])[0] if match else None
    masks = {first(m, mask_pattern): m for m in case["masks"] if first(m, mask_pattern)}
    return sorted((i, masks[first(i, image_pattern)]) for i in case["images"]
                  if first(i, image_pattern) in masks)


def _id(image: str, case: dict[str, Any]) -> str:
    """The id the image pattern gives ``image`` ('' when it does not fit)."""
    match = folders.compile_pattern(case["patterns"][0]).fullmatch(image)
    return match["id"] if match else ""


def _judge_names_case(case: dict[str, Any], answer: dict[str, Any]) -> None:
    name = "match_names(image_names, mask_names, image_pattern, mask_pattern)"
    record = core.raised(answer["pairs"])
    decoys = [i for i in case["images"] if i.endswith(".bak")]
    if record and not record.get("stub") and "ValueError" in record.get("types", []) \
            and any(d in record["message"] for d in decoys):
        fail(f"{name} refused the names as two images of one id (`{record['message']}`): "
             f"the pattern matched inside the longer name {decoys[0]}", mistake="partial-match")
    core.value_of(answer["pairs"], "match_names")
    got = _pairs(answer["pairs"])
    if got is None:
        fail(f"{name} returned {values.shown(answer['pairs'])}; expected a list of (image "
             "name, mask name) pairs", mistake="not-a-list",
             hint="collect the (image name, mask name) pairs in a list and return it, sorted "
                  "by image name.")
    want = reference_match_names(case["images"], case["masks"], *case["patterns"])
    if got != want:
        shown = f"{name} gave {got}; expected {want}"
        wanted_images = {i for i, _ in want}
        if sorted(got) == want:
            fail(f"{name} gave the right pairs in the order {[i for i, _ in got]}",
                 mistake="pairs-not-sorted",
                 hint="return the pairs sorted by image name: the order names come in depends "
                      "on the file system.")
        if any(i.endswith(".bak") for i, _ in got):
            fail(f"{shown}: a name was paired because the pattern matched inside it",
                 mistake="partial-match")
        missing = sorted(i for i, _ in set(want) - set(got))
        if sorted(got) == _id_split_pairs(case) or (
                set(got) < set(want) and all(re.search(r"[_\-]", _id(i, case)) for i in missing)):
            fail(f"{shown}: the images whose id has a separator inside it ({', '.join(missing)}) "
                 "found no mask", mistake="id-split")
        if any(i not in wanted_images and i in case["images"] for i, _ in got):
            fail(f"{shown}: an image without a mask was paired", mistake="unmatched-kept")
        fail(shown, hint=GENERAL_HINT)
    record = core.raised(answer["twice"])
    if record and record.get("stub"):
        core.fail_for(record, "match_names")
    if record is None or "ValueError" not in record.get("types", [record["type"]]):
        if record and record.get("where"):
            core.fail_for(record, "match_names")
        images, masks, image_pattern, mask_pattern = case["twice"]
        fail(f"two masks ({', '.join(masks)}) fit {images[0]} with the pattern "
             f"{mask_pattern!r}, and match_names returned {values.shown(answer['twice'])} "
             "without a word", mistake="silent-duplicate")


def _judge_names(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_names_case)
    return "3 pairs; leftovers out; two masks for one id refused"


check_match_names = Check(
    "09", "match_names", "match_names",
    references=("segkit.checks.lesson09.reference_match_names", "segkit.folders.match_names"),
    draw_cases=_draw_names, ask_student=_ask_names, judge_answers=_judge_names)
