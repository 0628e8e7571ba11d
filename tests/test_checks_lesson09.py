"""Lesson 09's checks pass the solution, meet the stubs, and name each catalogued mistake."""

from __future__ import annotations

import re

import numpy as np
import pytest

from check_helpers import expect_mistake
from segkit.checks import lesson09
from segkit.checks.core import ExerciseNotDone
from segkit.folders import compile_pattern

# --------------------------------------------------------------------------- to_unit_range


def to_unit_range(array):  # the solution
    return array.astype(np.float32) / np.iinfo(array.dtype).max


def unit_stub(array):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise to_unit_range: write your code here")


def unit_clipped(array):
    return np.clip(array, 0, 255).astype(np.float32) / 255


def unit_by_255(array):
    return array.astype(np.float32) / 255


def unit_min_max(array):
    a = array.astype(np.float32)
    return (a - a.min()) / (a.max() - a.min())


def unit_float64(array):
    return array / np.iinfo(array.dtype).max


def unit_always_65535(array):
    return array.astype(np.float32) / 65535


def test_to_unit_range_passes_the_solution_and_the_reference():
    assert lesson09.check_to_unit_range(to_unit_range).passed
    assert lesson09.check_to_unit_range(lesson09.reference_to_unit_range).passed


def test_to_unit_range_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson09.check_to_unit_range(unit_stub)


@pytest.mark.parametrize("student,mistake,words", [
    (unit_clipped, "clipped-to-8-bit", ["65535", "white"]),
    (unit_by_255, "divided-by-255", ["65535"]),
    (unit_min_max, "per-image-range", ["np.iinfo", "same scale"]),
    (unit_float64, "not-float32", ["float32"]),
    (unit_always_65535, "wrong-range", ["255 for uint8"]),
])
def test_to_unit_range_names_each_mistake(student, mistake, words):
    expect_mistake(lesson09.check_to_unit_range, student, mistake, *words)


# --------------------------------------------------------------------------- match_names


def match_names(image_names, mask_names, image_pattern, mask_pattern):  # the solution
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex, by_id = compile_pattern(pattern), {}
        for name in names:
            m = regex.fullmatch(name)
            if m:
                if m["id"] in by_id:
                    raise ValueError(f"two files with id {m['id']}: {by_id[m['id']]}, {name}")
                by_id[m["id"]] = name
        found.append(by_id)
    images, masks = found
    return sorted((images[k], masks[k]) for k in images if k in masks)


def names_stub(image_names, mask_names, image_pattern, mask_pattern):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise match_names: write your code here")


def names_search(image_names, mask_names, image_pattern, mask_pattern):
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex, by_id = compile_pattern(pattern), {}
        for name in names:
            m = regex.search(name)
            if m:
                by_id[m["id"]] = name
        found.append(by_id)
    return sorted((found[0][k], found[1][k]) for k in found[0] if k in found[1])


def names_split(image_names, mask_names, image_pattern, mask_pattern):
    tails = [image_pattern.replace("{id}", ""), mask_pattern.replace("{id}", "")]
    found = [{n.split("_")[0]: n for n in names if n.endswith(tail)}
             for names, tail in zip((image_names, mask_names), tails)]
    return sorted((found[0][k], found[1][k]) for k in found[0] if k in found[1])


def names_overwrite(image_names, mask_names, image_pattern, mask_pattern):
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex = compile_pattern(pattern)
        found.append({m["id"]: n for n in names if (m := regex.fullmatch(n))})
    return sorted((found[0][k], found[1][k]) for k in found[0] if k in found[1])


def names_zip(image_names, mask_names, image_pattern, mask_pattern):
    ri, rm = compile_pattern(image_pattern), compile_pattern(mask_pattern)
    images = sorted(n for n in image_names if ri.fullmatch(n))
    masks = sorted(n for n in mask_names if rm.fullmatch(n))
    return list(zip(images, masks))


def names_dict(image_names, mask_names, image_pattern, mask_pattern):
    return dict(match_names(image_names, mask_names, image_pattern, mask_pattern))


def test_match_names_passes_the_solution_and_the_reference():
    assert lesson09.check_match_names(match_names).passed
    assert lesson09.check_match_names(lesson09.reference_match_names).passed


def test_match_names_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson09.check_match_names(names_stub)


@pytest.mark.parametrize("student,mistake,words", [
    (names_search, "partial-match", ["fullmatch"]),
    (names_split, "id-split", ["a_7"]),
    (names_overwrite, "silent-duplicate", ["raise"]),
    (names_zip, "unmatched-kept", ["both sides"]),
    (names_dict, "not-a-list", ["list"]),
])
def test_match_names_names_each_mistake(student, mistake, words):
    expect_mistake(lesson09.check_match_names, student, mistake, *words)


def test_the_reference_pattern_is_a_whole_name_regex():
    assert compile_pattern("{id}_scan.tif").fullmatch("a_7_scan.tif")["id"] == "a_7"
    assert compile_pattern("{id}_scan.tif").fullmatch("a_7_scan.tif.bak") is None
    with pytest.raises(Exception, match=re.escape("{id} exactly once")):
        compile_pattern("scan.tif")
