"""Lesson 09's checks pass the solution, meet the stubs, and name each catalogued mistake."""

from __future__ import annotations

import re

import numpy as np
import pytest

from check_helpers import NOT_DONE, expect_mistake, register
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


def unit_by_4095(array):  # a 12-bit camera assumed: the "clipped (8 bits)" misfire
    return array.astype(np.float32) / 4095


def unit_by_4095_for_16_bits(array):
    top = 4095 if array.dtype == np.uint16 else 255
    return (array / top).astype(np.float32)


def unit_via_8_bits(array):  # what PIL's convert('L') does to 16 bits: keep the high byte
    return (array >> 8 if array.dtype == np.uint16 else array).astype(np.float32) / 255


def unit_own_max(array):
    return (array / array.max()).astype(np.float32)


def unit_tensor(array):  # right: torch, returns a float32 tensor
    import torch
    return torch.from_numpy(array.astype(np.int64)).float() / float(np.iinfo(array.dtype).max)


def unit_table(array):  # right: a table of the two ranges
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}[array.dtype]
    return np.divide(array, top, dtype=np.float32)


def unit_iinfo_loop(array):  # right, elementwise
    out = np.empty(array.shape, np.float32)
    for index, value in np.ndenumerate(array):
        out[index] = value / np.iinfo(array.dtype).max
    return out


UNIT_MISTAKES = [
    (unit_clipped, "clipped-to-8-bit", ["8 bits", "white"]),
    (unit_via_8_bits, "clipped-to-8-bit", ["8 bits"]),
    (unit_by_255, "divided-by-255", ["65535"]),
    (unit_min_max, "per-image-range", ["np.iinfo", "same scale"]),
    (unit_own_max, "per-image-range", ["TYPE"]),
    (unit_float64, "not-float32", ["float32"]),
    (unit_always_65535, "wrong-range", ["255 for uint8"]),
    (unit_by_4095, "wrong-bit-depth", ["4095", "12-bit"]),
    (unit_by_4095_for_16_bits, "wrong-bit-depth", ["65535"]),
]


@pytest.mark.parametrize("student,mistake,words", UNIT_MISTAKES)
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


def names_in_the_order_found(image_names, mask_names, image_pattern, mask_pattern):
    pairs = match_names(image_names, mask_names, image_pattern, mask_pattern)
    order = {name: i for i, name in enumerate(image_names)}
    return sorted(pairs, key=lambda pair: order[pair[0]])


def names_unsorted_loop(image_names, mask_names, image_pattern, mask_pattern):
    masks = {}
    for name in mask_names:
        m = compile_pattern(mask_pattern).fullmatch(name)
        if m:
            if m["id"] in masks:
                raise ValueError(name)
            masks[m["id"]] = name
    out = []
    for name in image_names:
        m = compile_pattern(image_pattern).fullmatch(name)
        if m and m["id"] in masks:
            out.append((name, masks[m["id"]]))
    return out


def names_with_none(image_names, mask_names, image_pattern, mask_pattern):
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex, by_id = compile_pattern(pattern), {}
        for name in names:
            if (m := regex.fullmatch(name)):
                if m["id"] in by_id:
                    raise ValueError(name)
                by_id[m["id"]] = name
        found.append(by_id)
    return sorted((found[0][k], found[1].get(k, "")) for k in found[0])


def names_re_match(image_names, mask_names, image_pattern, mask_pattern):
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex, by_id = compile_pattern(pattern), {}
        for name in names:
            if (m := re.match(regex.pattern, name)):
                if m["id"] in by_id:
                    raise ValueError(name)
                by_id[m["id"]] = name
        found.append(by_id)
    return sorted((found[0][k], found[1][k]) for k in found[0] if k in found[1])


def names_generator(image_names, mask_names, image_pattern, mask_pattern):
    return (pair for pair in match_names(image_names, mask_names, image_pattern, mask_pattern))


def names_split_on_dash_too(image_names, mask_names, image_pattern, mask_pattern):
    def ids(names, pattern):
        regex, out = compile_pattern(pattern), {}
        for name in names:
            if (m := regex.fullmatch(name)):
                out[re.split(r"[_-]", m["id"])[0]] = name
        return out
    images, masks = ids(image_names, image_pattern), ids(mask_names, mask_pattern)
    return sorted((images[k], masks[k]) for k in images if k in masks)


def names_first_mask_wins(image_names, mask_names, image_pattern, mask_pattern):
    found = []
    for names, pattern in ((image_names, image_pattern), (mask_names, mask_pattern)):
        regex, by_id = compile_pattern(pattern), {}
        for name in names:
            if (m := regex.fullmatch(name)):
                by_id.setdefault(m["id"], name)
        found.append(by_id)
    return sorted((found[0][k], found[1][k]) for k in found[0] if k in found[1])


def names_raises_data_error(image_names, mask_names, image_pattern, mask_pattern):  # right
    from segkit.errors import DataError
    try:
        return match_names(image_names, mask_names, image_pattern, mask_pattern)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def names_tuple_of_lists(image_names, mask_names, image_pattern, mask_pattern):  # right
    return tuple([i, m] for i, m in match_names(image_names, mask_names, image_pattern,
                                                   mask_pattern))


NAMES_MISTAKES = [
    (names_search, "partial-match", ["fullmatch"]),
    (names_re_match, "partial-match", ["whole name"]),
    (names_split, "id-split", ["a_7"]),
    (names_split_on_dash_too, "id-split", ["separator"]),
    (names_overwrite, "silent-duplicate", ["raise"]),
    (names_first_mask_wins, "silent-duplicate", ["both files"]),
    (names_zip, "unmatched-kept", ["one side only"]),
    (names_with_none, "unmatched-kept", ["same id"]),
    (names_dict, "not-a-list", ["list"]),
    (names_generator, "not-a-list", ["list"]),
    (names_in_the_order_found, "pairs-not-sorted", ["sorted"]),
    (names_unsorted_loop, "pairs-not-sorted", ["file system"]),
]


@pytest.mark.parametrize("student,mistake,words", NAMES_MISTAKES)
def test_match_names_names_each_mistake(student, mistake, words):
    expect_mistake(lesson09.check_match_names, student, mistake, *words)


def test_the_reference_pattern_is_a_whole_name_regex():
    assert compile_pattern("{id}_scan.tif").fullmatch("a_7_scan.tif")["id"] == "a_7"
    assert compile_pattern("{id}_scan.tif").fullmatch("a_7_scan.tif.bak") is None
    with pytest.raises(Exception, match=re.escape("{id} exactly once")):
        compile_pattern("scan.tif")


def test_dividing_16_bits_by_4095_is_not_called_clipping():
    """The issue's misfire: 16-bit values divided by 4095 got "values were clipped (8 bits)"."""
    error = expect_mistake(lesson09.check_to_unit_range, unit_by_4095, "wrong-bit-depth")
    assert "clipped" not in error.hint and "8 bits" not in error.hint


# --------------------------------------------------------------------------- the corpus

for _fn in (to_unit_range, lesson09.reference_to_unit_range, unit_tensor, unit_table,
            unit_iinfo_loop):
    register(lesson09.check_to_unit_range, _fn, None)
register(lesson09.check_to_unit_range, unit_stub, NOT_DONE)
for _fn, _mistake, _ in UNIT_MISTAKES:
    register(lesson09.check_to_unit_range, _fn, _mistake)
for _fn in (match_names, lesson09.reference_match_names, names_raises_data_error,
            names_tuple_of_lists):
    register(lesson09.check_match_names, _fn, None)
register(lesson09.check_match_names, names_stub, NOT_DONE)
for _fn, _mistake, _ in NAMES_MISTAKES:
    register(lesson09.check_match_names, _fn, _mistake)
