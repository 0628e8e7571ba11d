"""Draw, ask, judge: the one code path of the lesson checks and the grader.

``draw(seed)`` gives plain data, the same for the same seed; ``ask`` runs the student's
code and gives plain data, whatever the code does; ``judge`` reads only the answers; in a
lesson, a failure on drawn cases names the seed that repeats them.
"""

from __future__ import annotations

import importlib
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from segkit import checks
from segkit.checks import answers, core, lesson04
from segkit.checks.core import RAISED, CheckFailed, ExerciseNotDone
from segkit.checks.standin import check_device, host, moved, unmoved

LESSONS = sorted(p.stem[-2:] for p in
                 (Path(__file__).parents[1] / "segkit" / "checks").glob("lesson[0-9][0-9].py"))
ALL_CHECKS = [check for lesson in LESSONS for check in core.checks_of(lesson).values()]


def dice_right(logits, target, threshold=0.5):
    return lesson04.reference_dice_score(logits, target, threshold)


def dice_without_threshold(logits, target, threshold=0.5):
    p, t = torch.sigmoid(logits[:, 0]), target.float()
    return (2 * (p * t).sum((1, 2)) / (p.sum((1, 2)) + t.sum((1, 2)))).mean().item()


def dice_empty_nan(logits, target, threshold=0.5):
    p, t = (torch.sigmoid(logits[:, 0]) > threshold).float(), target.float()
    return (2 * (p * t).sum((1, 2)) / (p.sum((1, 2)) + t.sum((1, 2)))).mean().item()


# --------------------------------------------------------------------------- the registry


def test_checks_of_a_lesson_in_the_lessons_order():
    found = checks.checks_of("04")
    assert list(found) == ["pixel_accuracy", "dice_score", "iou_score"]
    assert found["dice_score"] is lesson04.check_dice_score
    assert core.checks_of(4) == core.checks_of("lesson04") == found
    check = found["dice_score"]
    assert (check.lesson, check.exercise, check.title, check.__name__) == (
        "04", "dice_score", "dice_score on 5 small batches", "check_dice_score")


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.name)
def test_every_check_names_references_that_exist(check):
    assert check.references
    for dotted in check.references:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.name)
def test_every_draw_is_plain_data_and_the_same_for_the_same_seed(check):
    first, again, other = check.draw(123), check.draw(123), check.draw(124)
    assert first["seed"] == 123
    blob = answers.dump(first)
    assert blob == answers.dump(again)
    assert blob != answers.dump(other)


# --------------------------------------------------------------------------- ask


def test_ask_gives_plain_data_and_records_what_the_student_raised():
    cases = lesson04.check_dice_score.draw(7)
    found = lesson04.check_dice_score.ask(dice_right, cases)
    answers.dump(found)  # plain data
    assert found["cases"][0]["value"]["kind"] == "float"

    def crashes(logits, target, threshold=0.5):
        return logits[:, 0] @ target  # a shape error, on the student's line

    record = core.raised(lesson04.check_dice_score.ask(crashes, cases)["cases"][0]["value"])
    assert record["type"] == "RuntimeError" and not record["stub"]
    assert "logits[:, 0] @ target" in record["where"]

    def stub(logits, target, threshold=0.5):
        raise NotImplementedError("Exercise dice_score: write your code here")

    record = core.raised(lesson04.check_dice_score.ask(stub, cases)["cases"][0]["value"])
    assert record["stub"] and record["stub_of"] == "dice_score"


def test_ask_never_raises_even_when_the_student_object_is_no_function():
    found = lesson04.check_dice_score.ask(42, lesson04.check_dice_score.draw(7))
    answers.dump(found)
    with pytest.raises(CheckFailed) as info:
        lesson04.check_dice_score.judge(lesson04.check_dice_score.draw(7), found)
    assert info.value.mistake == "crashed" or info.value.mistake == "check-error"


def test_ask_leaves_the_notebooks_random_numbers_alone():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)

    def uses_randomness(logits, target, threshold=0.5):
        torch.rand(100), np.random.rand(100), random.random()
        return dice_right(logits, target, threshold)

    lesson04.check_dice_score(uses_randomness, seed=5)
    got = torch.rand(3), np.random.rand(3), random.random()
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


# --------------------------------------------------------------------------- judge


def test_judge_reads_only_the_answers():
    calls = []

    def counted(logits, target, threshold=0.5):
        calls.append(1)
        return dice_right(logits, target, threshold)

    cases = lesson04.check_dice_score.draw(11)
    found = answers.load(answers.dump(lesson04.check_dice_score.ask(counted, cases)))
    asked = len(calls)
    assert lesson04.check_dice_score.judge(cases, found) == \
        "Dice 0.6786 on a big and a small object"
    assert len(calls) == asked


def test_judge_names_not_done_and_crashes_from_the_records():
    cases = lesson04.check_dice_score.draw(3)
    stub = {RAISED: {"type": "NotImplementedError", "message": "", "where": "line 2: `raise`",
                     "library_where": None, "stub": True, "stub_of": None}}
    with pytest.raises(ExerciseNotDone, match="`dice_score` is not done yet"):
        lesson04.check_dice_score.judge(cases, stub)
    crash = {RAISED: {"type": "ValueError", "message": "bad", "where": "line 4: `x = f()`",
                      "library_where": None, "stub": False, "stub_of": None}}
    with pytest.raises(CheckFailed) as info:
        lesson04.check_dice_score.judge(cases, crash)
    assert info.value.mistake == "crashed" and "line 4: `x = f()`" in info.value.hint


def _reference(check):
    module, _, name = check.references[0].rpartition(".")
    return getattr(importlib.import_module(module), name)


def _truncated(found):
    """The answers with one of their top-level parts missing or cut short, each way."""
    if not isinstance(found, dict):
        return
    yield {}
    for key, value in found.items():
        yield {k: v for k, v in found.items() if k != key}
        if isinstance(value, list) and value:
            yield {**found, key: value[:-1]}


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.name)
def test_answers_cut_short_never_pass(check):
    """A kernel that sends fewer answers than there were questions gets no pass."""
    cases = check.draw(99)
    found = answers.load(answers.dump(check.ask(_reference(check), cases)))
    check.judge(cases, found)  # the reference passes
    for forged in _truncated(found):
        with pytest.raises((CheckFailed, ExerciseNotDone)):
            check.judge(cases, forged)


@pytest.mark.parametrize("forged", [None, {}, {"cases": []}, {"cases": "x"},
                                    {"cases": [{"value": {"kind": "float", "value": "0.5"}}]},
                                    {"cases": [{"value": {"kind": "martian"}}] * 5}])
def test_forged_or_broken_answers_fail_cleanly(forged):
    with pytest.raises(CheckFailed) as info:
        lesson04.check_dice_score.judge(lesson04.check_dice_score.draw(3), forged)
    assert info.value.mistake in ("check-error", None)


# --------------------------------------------------------------------------- seeds


def test_a_failure_on_drawn_cases_names_its_seed_and_repeats():
    with pytest.raises(CheckFailed) as first:
        lesson04.check_dice_score(dice_empty_nan, seed=4321)
    error = first.value
    assert error.mistake == "empty-nan" and error.seed == 4321
    assert error.repeat == "checks.lesson04.check_dice_score(dice_score, seed=4321)"
    assert str(error).splitlines()[-1] == (
        "Seed: these cases were drawn with seed 4321: "
        "`checks.lesson04.check_dice_score(dice_score, seed=4321)` runs them again.")
    assert error._render_traceback_()[-1] == str(error).splitlines()[-1]
    with pytest.raises(CheckFailed) as again:
        lesson04.check_dice_score(dice_empty_nan, seed=4321)
    assert str(again.value) == str(error)


def test_a_failure_on_the_worked_example_is_the_same_on_every_run():
    texts = set()
    for _ in range(3):
        with pytest.raises(CheckFailed) as info:
            lesson04.check_dice_score(dice_without_threshold)  # a fresh seed each time
        assert info.value.seed is None and info.value.drawn is False
        texts.add(str(info.value))
    (text,) = texts
    assert "worked example" in text and "Seed" not in text


def test_fresh_seeds_differ():
    assert len({core.fresh_seed() for _ in range(20)}) > 10


# --------------------------------------------------------------------------- the stand-in device


def test_host_tensors_know_whether_they_were_moved():
    device, label = check_device()
    x = host(torch.randn(2, 3))
    assert unmoved(x) and unmoved(x * 2) and unmoved(x.float()) and unmoved(x[:, 0])
    assert unmoved(x.to(torch.float64)) and unmoved(x.cpu())
    for moved_x in (x.to(device), x.to(str(device)), x.to(device=device),
                    x.to(device, non_blocking=True), x.to(device, torch.float32)):
        assert not unmoved(moved_x) and type(moved_x) is torch.Tensor
    assert torch.equal(moved(x), x.to(device).cpu())
    if label == "stand-in":
        assert device == torch.device("cpu")
