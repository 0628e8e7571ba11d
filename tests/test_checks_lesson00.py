"""Lesson 00's checks pass the solutions, meet the stubs, and name each mistake."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from check_helpers import NOT_DONE, exercise_of, failure, register, register_wrong
from segkit import toydata
from segkit.checks import core, lesson00
from segkit.checks.core import ExerciseNotDone


# --------------------------------------------------------------------------- float32_mib


def float32_mib(shape):
    return math.prod(shape) * 4 / 2**20


def test_float32_mib_passes_the_solution_and_the_reference(capsys):
    lesson00.check_float32_mib(float32_mib)
    assert capsys.readouterr().out == "✅ float32_mib on 3 shapes — passed\n"
    assert core.passed("float32_mib")
    lesson00.check_float32_mib(lesson00.reference_float32_mib)
    # a tensor's shape (torch.Size) works as well as a tuple
    assert lesson00.reference_float32_mib(torch.zeros(2, 3, 4).shape) == 24 * 4 / 2**20


def test_float32_mib_stub_is_not_done():
    def float32_mib(shape):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise float32_mib: write your code here")

    with pytest.raises(ExerciseNotDone, match="`float32_mib` is not done yet"):
        lesson00.check_float32_mib(float32_mib)
    assert not core.passed("float32_mib")


MIB_MISTAKES = [
    (lambda shape: math.prod(shape) / 2**20, "forgot-bytes-per-value", ["4 bytes"]),
    (lambda shape: math.prod(shape) * 4 // 2**20, "integer-division", ["`//`", "`/`"]),
    (lambda shape: math.prod(shape) * 4 / 1e6, "megabytes-not-mib", ["1,000,000", "2**20"]),
    (lambda shape: math.prod(shape) * 4, "bytes-not-mib", ["bytes", "2**20"]),
    (lambda shape: None, "returns-none", ["return"]),
    (lambda shape: torch.tensor(math.prod(shape) * 4 / 2**20), "not-a-float", ["float("]),
    (lambda shape: sum(shape) * 4 / 2**20, None, ["no mistake the course knows"]),
]


@pytest.mark.parametrize("wrong, mistake, words", MIB_MISTAKES)
def test_float32_mib_names_each_mistake(wrong, mistake, words):
    error = failure(lesson00.check_float32_mib, wrong)
    assert error.mistake == mistake
    assert error.exercise == "float32_mib"
    for word in words:
        assert word in error.hint
    assert "expected" in error.message or mistake in ("returns-none", "not-a-float")
    assert not core.passed("float32_mib")


def test_float32_mib_failure_reads_well():
    error = failure(lesson00.check_float32_mib, lambda shape: math.prod(shape) / 2**20)
    assert str(error) == (
        "❌ float32_mib: float32_mib((1, 3, 160, 240)) is 0.109863, expected 0.439453 "
        "(one toy Carvana image)\nHint: you counted the numbers, not the bytes: each "
        "float32 value takes 4 bytes. Multiply the number of values by 4.")


# --------------------------------------------------------------------------- foreground_fraction


def foreground_fraction(mask):
    return float(np.count_nonzero(mask) / mask.size)


def test_foreground_fraction_passes_solutions(capsys):
    lesson00.check_foreground_fraction(foreground_fraction)
    assert "✅ foreground_fraction on 0/1, 0/255, empty and full masks — passed" in \
        capsys.readouterr().out
    lesson00.check_foreground_fraction(lambda mask: float((mask != 0).mean()))
    lesson00.check_foreground_fraction(lambda mask: (mask > 0).mean())  # np.float64 is a float
    lesson00.check_foreground_fraction(lesson00.reference_foreground_fraction)


def test_foreground_fraction_does_not_change_the_callers_mask():
    seen = []

    def meddling(mask):
        seen.append(mask)
        value = float(np.count_nonzero(mask) / mask.size)
        mask[:] = 7
        return value

    lesson00.check_foreground_fraction(meddling)
    assert len(seen) == 8  # the worked example's 4 masks and 4 drawn ones


def test_foreground_fraction_stub_is_not_done():
    def foreground_fraction(mask):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise foreground_fraction: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson00.check_foreground_fraction(foreground_fraction)


FRACTION_MISTAKES = [
    # integer arithmetic: 6 // 20 == 0
    (lambda mask: int(np.count_nonzero(mask)) // mask.size, "integer-division", ["`//`", "`/`"]),
    (lambda mask: np.count_nonzero(mask) // mask.size, "integer-division", ["`//`"]),
    (lambda mask: mask.sum() // mask.size, "integer-division", ["`//`"]),
    # counting 0 as the object
    (lambda mask: float((mask == 0).mean()), "counting-0-as-object", ["background", "not 0"]),
    (lambda mask: float((mask >= 0).mean()), "counting-0-as-object", ["background", "not 0"]),
    (lambda mask: mask.size / mask.size, "counting-0-as-object", ["not 0"]),
    # a count, not a fraction
    (lambda mask: np.count_nonzero(mask), "count-not-fraction", ["mask.size"]),
    (lambda mask: float(mask.sum()), "count-not-fraction", ["mask.size"]),
    # 0/255 masks: summing values counts each object pixel 255 times
    (lambda mask: float(mask.mean()), "mask-0-255-summed", ["255", "not 0"]),
    (lambda mask: float(mask.sum() / mask.size), "mask-0-255-summed", ["255"]),
    # the value is right but not a Python number
    (lambda mask: torch.from_numpy(mask != 0).float().mean(), "not-a-float", [".item()"]),
    (lambda mask: None, "returns-none", ["return"]),
]


@pytest.mark.parametrize("wrong, mistake, words", FRACTION_MISTAKES)
def test_foreground_fraction_names_each_mistake(wrong, mistake, words):
    error = failure(lesson00.check_foreground_fraction, wrong)
    assert error.mistake == mistake, str(error)
    for word in words:
        assert word in error.hint
    assert not core.passed("foreground_fraction")


def test_foreground_fraction_reports_a_crash_with_the_line():
    def foreground_fraction(mask):
        return float(mask.count_nonzero() / mask.size)  # not a NumPy method

    error = failure(lesson00.check_foreground_fraction, foreground_fraction)
    assert error.mistake == "crashed"
    assert "AttributeError" in error.hint and "mask.count_nonzero()" in error.hint


# --------------------------------------------------------------------------- list_pairs


def list_pairs(root):
    root = Path(root)
    pairs = []
    for image in sorted((root / "train").glob("*.jpg")):
        mask = root / "train_masks" / (image.stem + "_mask.gif")
        if mask.exists():
            pairs.append((image, mask))
    return pairs


def test_list_pairs_passes_solutions(capsys):
    lesson00.check_list_pairs(list_pairs)
    assert capsys.readouterr().out == ("✅ list_pairs on a tiny Carvana folder — passed "
                                       "(4 pairs; the image without a mask left out)\n")

    def with_strings(root):  # os.path style, returning str paths: fine too
        images = sorted(os.listdir(os.path.join(root, "train")))
        out = []
        for name in images:
            mask = os.path.join(root, "train_masks", name.replace(".jpg", "_mask.gif"))
            if os.path.isfile(mask):
                out.append((os.path.join(root, "train", name), mask))
        return out

    lesson00.check_list_pairs(with_strings)
    lesson00.check_list_pairs(lesson00.reference_list_pairs)


def test_list_pairs_reference_on_the_embedded_carvana():
    root = toydata.embedded_root("carvana")
    pairs = lesson00.reference_list_pairs(root)
    assert len(pairs) == len(list((root / "train").glob("*.jpg"))) > 0
    image, mask = pairs[0]
    assert mask.name == image.stem + "_mask.gif" and mask.parent.name == "train_masks"


def test_list_pairs_stub_is_not_done():
    def list_pairs(root):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise list_pairs: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson00.check_list_pairs(list_pairs)


def zipped_blindly(root):
    root = Path(root)
    return list(zip(sorted((root / "train").glob("*.jpg")),
                    sorted((root / "train_masks").glob("*.gif"))))


def gif_without_mask_suffix(root):
    root = Path(root)
    return [(p, root / "train_masks" / (p.stem + ".gif"))
            for p in sorted((root / "train").glob("*.jpg"))
            if (root / "train_masks" / (p.stem + ".gif")).exists()]


def png_instead_of_gif_unchecked(root):
    root = Path(root)
    return [(p, root / "train_masks" / (p.stem + "_mask.png"))
            for p in sorted((root / "train").glob("*.jpg"))]


def no_existence_check(root):
    root = Path(root)
    return [(p, root / "train_masks" / (p.stem + "_mask.gif"))
            for p in sorted((root / "train").glob("*.jpg"))]


def bare_names(root):
    return [(image.name, mask.name) for image, mask in list_pairs(root)]


def reversed_order(root):
    return list_pairs(root)[::-1]


def unsorted_listing(root):
    # directory order is whatever the file system gives; here it is made explicit
    pairs = list_pairs(root)
    return pairs[1:] + pairs[:1]


PAIRS_MISTAKES = [
    (zipped_blindly, "zip-sorted-lists", ["zipped", "image.stem", "exists"]),
    (gif_without_mask_suffix, "wrong-mask-suffix", ["_mask.gif", ".stem"]),
    (png_instead_of_gif_unchecked, "wrong-mask-suffix", ["_mask", ".gif"]),
    (no_existence_check, "missing-mask-kept", ["is_file()", "leave the image out"]),
    (bare_names, "names-not-paths", ["root / 'train'"]),
    (reversed_order, "pairs-not-sorted", ["sorted("]),
    (unsorted_listing, "pairs-not-sorted", ["sorted("]),
    (lambda root: None, "returns-none", ["return"]),
]


@pytest.mark.parametrize("wrong, mistake, words", PAIRS_MISTAKES)
def test_list_pairs_names_each_mistake(wrong, mistake, words):
    error = failure(lesson00.check_list_pairs, wrong)
    assert error.mistake == mistake, str(error)
    for word in words:
        assert word in error.hint, error.hint
    assert "segkit-check-" not in str(error)  # no temporary paths in what nbval compares
    assert not core.passed("list_pairs")


def test_list_pairs_zip_message_shows_the_shifted_pair():
    error = failure(lesson00.check_list_pairs, zipped_blindly)
    assert "paired bbbb_01.jpg with bbbb_02_mask.gif" in error.message


def test_list_pairs_wrong_items_are_explained():
    error = failure(lesson00.check_list_pairs, lambda root: ["a.jpg", "b.jpg"])
    assert "(image, mask) pairs" in error.message and "2-tuples" in error.hint
    error = failure(lesson00.check_list_pairs,
                    lambda root: [pair for pair in list_pairs(root) if "cccc" not in str(pair[0])])
    assert "expected the 4 images that have a mask" in error.message


# --------------------------------------------------------------------------- more forms


def mib_numpy_int(shape):  # `//` through NumPy: a NumPy integer
    return np.prod(shape) * 4 // 2**20


def mib_megabytes_loop(shape):
    n = 1
    for size in shape:
        n *= size
    return n * 4 / 1000 / 1000


def mib_bytes_float(shape):
    return float(np.prod(shape, dtype=np.int64) * 4)


def mib_values_only(shape):
    return float(np.prod(shape, dtype=np.int64)) / 1024 / 1024


def mib_item_tensor(shape):
    return torch.tensor(shape).prod() * 4 / 2**20


def fraction_background(mask):
    return 1 - np.count_nonzero(mask) / mask.size


def fraction_count_loop(mask):
    return sum(1 for v in np.asarray(mask).ravel() if v)


def fraction_numpy_mean_255(mask):
    return float(np.mean(mask))


def pairs_zip_glob(root):
    images = sorted(Path(root, "train").glob("*.jpg"))
    masks = sorted(Path(root, "train_masks").glob("*_mask.gif"))
    return [(i, m) for i, m in zip(images, masks)]


def pairs_names_only(root):
    names = sorted(p.name for p in Path(root, "train").iterdir())
    return [(n, n[:-4] + "_mask.gif") for n in names
            if Path(root, "train_masks", n[:-4] + "_mask.gif").exists()]


def pairs_by_listdir(root):  # the order the file system gives
    out = []
    for name in os.listdir(Path(root, "train")):
        mask = Path(root, "train_masks", name[:-4] + "_mask.gif")
        if mask.exists():
            out.append((Path(root, "train", name), mask))
    return out if [p[0].name for p in out] != sorted(p[0].name for p in out) else out[::-1]


MORE_FORMS = [
    (lesson00.check_float32_mib, mib_numpy_int, "integer-division"),
    (lesson00.check_float32_mib, mib_megabytes_loop, "megabytes-not-mib"),
    (lesson00.check_float32_mib, mib_bytes_float, "bytes-not-mib"),
    (lesson00.check_float32_mib, mib_values_only, "forgot-bytes-per-value"),
    (lesson00.check_float32_mib, mib_item_tensor, "not-a-float"),
    (lesson00.check_foreground_fraction, fraction_background, "counting-0-as-object"),
    (lesson00.check_foreground_fraction, fraction_count_loop, "count-not-fraction"),
    (lesson00.check_foreground_fraction, fraction_numpy_mean_255, "mask-0-255-summed"),
    (lesson00.check_list_pairs, pairs_zip_glob, "zip-sorted-lists"),
    (lesson00.check_list_pairs, pairs_names_only, "names-not-paths"),
    (lesson00.check_list_pairs, pairs_by_listdir, "pairs-not-sorted"),
]


@pytest.mark.parametrize("check, wrong, mistake", MORE_FORMS,
                         ids=[w.__name__ for _, w, _ in MORE_FORMS])
def test_more_forms_of_each_mistake(check, wrong, mistake):
    assert failure(check, wrong).mistake == mistake


# --------------------------------------------------------------------------- the corpus


def _stub(name):
    def stub(*args):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return stub


for _check, _rights in [
        (lesson00.check_float32_mib, [float32_mib, lesson00.reference_float32_mib]),
        (lesson00.check_foreground_fraction, [foreground_fraction,
                                              lesson00.reference_foreground_fraction]),
        (lesson00.check_list_pairs, [list_pairs, lesson00.reference_list_pairs])]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub(exercise_of(_check)), NOT_DONE, f"stub_{exercise_of(_check)}")
for _check, _list in [(lesson00.check_float32_mib, MIB_MISTAKES),
                      (lesson00.check_foreground_fraction, FRACTION_MISTAKES),
                      (lesson00.check_list_pairs, PAIRS_MISTAKES)]:
    for _i, (_fn, _mistake, _) in enumerate(_list):
        register_wrong(_check, _fn, _mistake, f"{exercise_of(_check)}_{_i}")
for _check, _fn, _mistake in MORE_FORMS:
    register(_check, _fn, _mistake)
