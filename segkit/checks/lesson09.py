"""Checks of lesson 09 (your own data).

=========================  ==================================================================
check                      mistakes it names (``CheckFailed.mistake``)
=========================  ==================================================================
``check_to_unit_range``    ``not-float32``, ``clipped-to-8-bit`` (16-bit values clipped or cast
                           to 8 bits: a 12-bit scan turns white), ``divided-by-255`` (values
                           above 1), ``per-image-range`` (each image stretched by its own min
                           and max: a dim scan looks as bright as a bright one),
                           ``wrong-range``
``check_match_names``      ``not-a-list``, ``partial-match`` (a pattern found inside a longer
                           name, e.g. ``000_scan.tif.bak``), ``id-split`` (the id cut at the
                           first ``_``: ``a_1_scan.tif`` gets id ``a``), ``unmatched-kept``
                           (an image without a mask paired with something), ``silent-duplicate``
                           (two masks for one id: one kept without a word), ``pairs-mismatch``
=========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from segkit import folders, imageio
from segkit.checks.core import expect, fail, run_check

__all__ = ["check_to_unit_range", "check_match_names", "reference_to_unit_range",
           "reference_match_names"]

reference_to_unit_range = imageio.to_unit_range
reference_match_names = folders.match_names


# --------------------------------------------------------------------------- exercise 1


def _show(array: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.ravel(array)]


def check_to_unit_range(to_unit_range: Callable) -> Any:
    """uint8 and uint16 pixels scaled by their type's range, as float32."""
    def body() -> str:
        dim = np.array([[0, 1000, 4095]], np.uint16)   # a 12-bit camera, in 16 bits
        bright = np.array([[0, 30000, 65535]], np.uint16)
        got = np.asarray(to_unit_range(dim))
        expect(got.dtype == np.float32, f"to_unit_range(uint16 array) has dtype {got.dtype}",
               mistake="not-float32", hint="return float32: .astype(np.float32) before "
                                           "dividing (the network's input type).")
        want = dim.astype(np.float32) / 65535
        if got.max() > 1.0:
            fail(f"to_unit_range({dim.tolist()}) gave values up to {got.max():.4g}",
                 mistake="divided-by-255",
                 hint="a uint16 image holds 0..65535: divide by np.iinfo(array.dtype).max "
                      "(65535), not by 255.")
        if got.max() >= 1.0 - 1e-6 and got.min() == 0 and got.ravel()[1] > 0.2:
            bright_got = np.asarray(to_unit_range(bright))
            if np.allclose(bright_got.ravel(), [0, 30000 / 65535, 1], atol=1e-4):
                fail(f"to_unit_range({dim.tolist()}) gave {_show(got)}: the "
                     "dim image was stretched to reach 1", mistake="per-image-range",
                     hint="divide by the largest value of the TYPE (65535 for uint16, "
                          "np.iinfo(array.dtype).max), not by this image's own max: every "
                          "image of the dataset must be on the same scale, or a dim scan "
                          "looks as bright as a bright one.")
            fail(f"to_unit_range({dim.tolist()}) gave {_show(got)}; expected "
                 f"{_show(want)}", mistake="clipped-to-8-bit",
                 hint="values above 255 were clipped (or the image went through 8 bits, as "
                      "PIL's convert('L') does): a 12-bit scan turns white. Divide the "
                      "16-bit values by 65535 directly.")
        expect(np.allclose(got, want, atol=1e-6), f"to_unit_range({dim.tolist()}) gave "
               f"{_show(got)}; expected {_show(want)}",
               mistake="wrong-range", hint="divide by np.iinfo(array.dtype).max.")
        eight = np.array([[0, 128, 255]], np.uint8)
        got8 = np.asarray(to_unit_range(eight))
        expect(np.allclose(got8, eight / 255, atol=1e-6), f"to_unit_range({eight.tolist()}) "
               f"(uint8) gave {_show(got8)}; expected [0, 0.502, 1]",
               mistake="wrong-range",
               hint="use the range of the array's own type: 255 for uint8, 65535 for uint16 "
                    "(np.iinfo(array.dtype).max), not one number for both.")
        return "uint8 and uint16, dim and bright"
    return run_check("to_unit_range", "to_unit_range", body)


# --------------------------------------------------------------------------- exercise 2

IMAGES = ["000_scan.tif", "001_scan.tif", "a_7_scan.tif", "002_scan.tif", "000_scan.tif.bak",
          "notes.txt"]
MASKS = ["000_cells.gif", "000_scan_roi.gif", "001_cells.gif", "a_7_cells.gif",
         "a_8_cells.gif", "003_cells.gif"]
EXPECTED = [("000_scan.tif", "000_cells.gif"), ("001_scan.tif", "001_cells.gif"),
            ("a_7_scan.tif", "a_7_cells.gif")]


def _pairs(match_names, images, masks) -> list[tuple[str, str]]:
    got = match_names(list(images), list(masks), "{id}_scan.tif", "{id}_cells.gif")
    if not isinstance(got, (list, tuple)):
        fail(f"match_names(...) returned a {type(got).__name__}; expected a list of "
             "(image name, mask name) pairs", mistake="not-a-list",
             hint="collect the pairs in a list and return sorted(pairs).")
    return [tuple(p) for p in got]


def check_match_names(match_names: Callable) -> Any:
    """Whole-name matches, ids with separators, leftovers out, duplicates an error."""
    def body() -> str:
        got = _pairs(match_names, IMAGES, MASKS)
        names = [image for image, _ in got]
        if "000_scan.tif.bak" in names:
            fail("000_scan.tif.bak was paired: the pattern matched inside a longer name",
                 mistake="partial-match",
                 hint="the WHOLE name must match the pattern: use re.fullmatch (or anchor "
                      "the regex with ^...$), not re.search or `in`.")
        if ("a_7_scan.tif", "a_7_cells.gif") not in got:
            fail(f"a_7_scan.tif should pair with a_7_cells.gif (id 'a_7'); got {got}",
                 mistake="id-split",
                 hint="the id is everything the pattern's {id} stands for, separators "
                      "included: take the part before '_scan.tif', not the name cut at "
                      "the first '_'.")
        if "002_scan.tif" in names:
            fail(f"002_scan.tif has no mask but was paired: {got}", mistake="unmatched-kept",
                 hint="keep only the ids found on both sides.")
        expect(sorted(got) == EXPECTED, f"match_names gave {got}; expected {EXPECTED}",
               mistake="pairs-mismatch",
               hint="pair image and mask with the same id; leave out names that do not "
                    "match their pattern; return the pairs sorted by image name.")
        try:
            twice = match_names(["000_scan.tif"], ["000_cells.gif", "000_scan_roi.gif"],
                                "{id}_scan.tif", "{id}_*.gif")
        except ValueError:
            return f"{len(got)} pairs; leftovers out; two masks for one id refused"
        fail(f"two masks (000_cells.gif, 000_scan_roi.gif) fit 000_scan.tif with the "
             f"pattern '{{id}}_*.gif', and match_names returned {twice} without a word", mistake="silent-duplicate",
             hint="when a second name of one side has an id already seen, raise an error "
                  "(ValueError, or segkit's DataError) naming both files: a silent choice "
                  "can train on the wrong masks.")
    return run_check("match_names", "match_names", body)
