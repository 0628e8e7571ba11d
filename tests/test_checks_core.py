"""The check framework: what a student sees when a check passes, meets a stub, fails, crashes."""

from __future__ import annotations

import asyncio
import functools

import numpy as np
import pytest

from segkit import checks
from segkit.checks import core
from segkit.checks.core import (
    CheckFailed,
    CheckResult,
    ExerciseNotDone,
    expect_close,
    expect_shape,
    expect_type,
    key_figure,
    run_check,
    use,
)


@pytest.fixture(autouse=True)
def fresh_registry():
    core.reset()
    yield
    core.reset()


def check_add(add):
    """A lesson-style check of an exercise `add(a, b) -> a + b`."""
    def body():
        value = add(1, 2)
        expect_type(value, (int, float), name="add(1, 2)", mistake="returns-none",
                    hint="`return` the sum.")
        expect_close(value, 3, name="add(1, 2)", tol=1e-9, mistake="multiplies",
                     hint="this is a product: use + instead of *.")
    return run_check("add", "add(1, 2) is 3", body)


def good_add(a, b):
    return a + b


def stub_add(a, b):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise add: write your code here")


# --------------------------------------------------------------------------- pass


def test_pass_prints_one_line_and_records(capsys):
    result = check_add(good_add)
    assert capsys.readouterr().out == "✅ add(1, 2) is 3 — passed\n"
    assert result == CheckResult("add", "add(1, 2) is 3")
    assert core.passed("add") and checks.passed("add")


def test_detail_returned_by_the_body_joins_the_line(capsys):
    run_check("add", "add", lambda: "3 cases,\n all exact")
    assert capsys.readouterr().out == "✅ add — passed (3 cases, all exact)\n"


# --------------------------------------------------------------------------- stub


def test_stub_raises_exercise_not_done_with_the_original_chained(capsys):
    with pytest.raises(ExerciseNotDone) as info:
        check_add(stub_add)
    assert str(info.value) == (
        "Exercise `add` is not done yet: replace the `raise NotImplementedError` line with "
        "your code, then run this cell again.")
    assert info.value.exercise == "add"
    assert isinstance(info.value, NotImplementedError)  # nbclient/nbval see a NotImplementedError
    assert isinstance(info.value.__cause__, NotImplementedError)
    assert not core.passed("add")
    assert capsys.readouterr().out == ""


def test_a_bare_raise_not_implemented_counts_as_a_stub():
    def nbgrader_style(a, b):
        raise NotImplementedError()

    with pytest.raises(ExerciseNotDone):
        check_add(nbgrader_style)


def test_stub_of_another_exercise_is_named():
    def add_using_helper(a, b):
        raise NotImplementedError("Exercise helper: write your code here")

    with pytest.raises(ExerciseNotDone, match="uses exercise `helper`, which is not done yet"):
        check_add(add_using_helper)


def test_not_implemented_from_a_library_is_a_crash_not_a_stub():
    # torch raises NotImplementedError for operations a device lacks; that is not a stub.
    def add_with_library(a, b):
        return asyncio.AbstractEventLoop().run_forever()

    with pytest.raises(CheckFailed) as info:
        check_add(add_with_library)
    assert info.value.mistake == "crashed"
    assert "NotImplementedError" in info.value.hint


# --------------------------------------------------------------------------- fail


def test_failure_message_exact_format():
    with pytest.raises(CheckFailed) as info:
        check_add(lambda a, b: a * b)
    assert str(info.value) == ("❌ add: add(1, 2) is 2, expected 3 (within ±1e-09)\n"
                               "Hint: this is a product: use + instead of *.")
    assert (info.value.exercise, info.value.mistake) == ("add", "multiplies")
    assert isinstance(info.value, AssertionError)


def test_type_mistake_shows_what_arrived():
    with pytest.raises(CheckFailed) as info:
        check_add(lambda a, b: None)
    assert info.value.mistake == "returns-none"
    assert "add(1, 2) should be of type int or float, but it is of type NoneType: None" in str(info.value)


def test_a_failing_rerun_forgets_the_earlier_pass(capsys):
    check_add(good_add)
    with pytest.raises(CheckFailed):
        check_add(lambda a, b: a - b)
    assert not core.passed("add")


# --------------------------------------------------------------------------- crash


def test_crash_in_student_code_quotes_error_and_line():
    def add(a, b):
        ratio = a / (b - b)
        return ratio

    with pytest.raises(CheckFailed) as info:
        check_add(add)
    error = info.value
    assert error.mistake == "crashed"
    assert "ZeroDivisionError: division by zero" in error.hint
    assert "`ratio = a / (b - b)`" in error.hint
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert str(error).startswith("❌ add: your code raised ZeroDivisionError")


def test_error_inside_the_check_itself_is_reported_as_check_error():
    body = functools.partial(int, "not a number")  # raises from library code only
    with pytest.raises(CheckFailed) as info:
        run_check("add", "add", body)
    assert info.value.mistake == "check-error"
    assert "ValueError" in str(info.value)


def test_keyboard_interrupt_is_not_swallowed():
    def body():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_check("add", "add", body)


# --------------------------------------------------------------------------- use, key_figure


def test_use_falls_back_to_the_reference_and_says_so(capsys):
    chosen = use("add", stub_add, good_add)
    assert chosen is good_add
    assert capsys.readouterr().out == (
        "⚠️ `add` has not passed its check yet, so this cell uses segkit's reference "
        "version. Come back to it when you're ready.\n")


def test_use_keeps_the_students_version_after_a_pass(capsys):
    check_add(good_add)
    capsys.readouterr()
    assert use("add", good_add, stub_add) is good_add
    assert capsys.readouterr().out == ""


def test_key_figure_format(capsys):
    key_figure("val Dice", 0.81234567)
    key_figure("epochs", 3, digits=0)
    key_figure("loss", np.float32(0.5))
    key_figure("mIoU", np.array([0.25]), digits=2)
    assert capsys.readouterr().out == (
        "📌 val Dice: 0.8123\n📌 epochs: 3\n📌 loss: 0.5000\n📌 mIoU: 0.25\n")


# --------------------------------------------------------------------------- helpers


def test_expect_close_on_arrays_names_the_first_difference():
    with pytest.raises(CheckFailed, match=r"at 1 of 4 places; first at index \(1, 0\): "
                                          r"0\.5 instead of 0\.25"):
        expect_close(np.array([[0.0, 1.0], [0.5, 1.0]]), [[0.0, 1.0], [0.25, 1.0]], name="x")
    expect_close(np.array([np.nan, 1.0]), [np.nan, 1.0 + 1e-6], name="x", tol=1e-4)
    with pytest.raises(CheckFailed, match=r"should have shape \(3,\), but it has shape \(2,\)"):
        expect_close([1.0, 2.0], [1.0, 2.0, 3.0], name="x")
    with pytest.raises(CheckFailed, match="should be a number"):
        expect_close("high", 1.0, name="x")


def test_expect_type_rejects_bool_for_a_number_and_shows_tensors():
    with pytest.raises(CheckFailed, match="should be of type float, but it is of type bool: True"):
        expect_type(True, float, name="accuracy")
    torch = pytest.importorskip("torch")
    loss = torch.tensor(0.25, requires_grad=True) * 2
    with pytest.raises(CheckFailed, match=r"it is of type Tensor: tensor\(0\.5, dtype=float32, "
                                          r"requires_grad=True\)"):
        expect_type(loss, float, name="average loss", mistake="loss-tensor-accumulator")


def test_expect_shape_with_wildcards():
    expect_shape(np.zeros((2, 1, 8, 8)), (None, 1, 8, 8), name="logits")
    with pytest.raises(CheckFailed, match=r"should have shape \(any, 1, 8, 8\), but it has "
                                          r"shape \(2, 8, 8\)"):
        expect_shape(np.zeros((2, 8, 8)), (None, 1, 8, 8), name="logits")
    with pytest.raises(CheckFailed, match="should be a tensor of shape"):
        expect_shape([1, 2], (2,), name="logits")


def test_helpers_outside_run_check_have_no_exercise_yet():
    with pytest.raises(CheckFailed) as info:
        expect_close(1.0, 2.0, name="x", hint="h", mistake="m")
    assert info.value.exercise is None
    assert str(info.value) == "❌ check: x is 1, expected 2 (within ±0.0001)\nHint: h"


# --------------------------------------------------------------------------- lesson modules


def test_missing_lesson_module_is_a_clear_attribute_error():
    with pytest.raises(AttributeError, match="no file segkit/checks/lesson97.py"):
        checks.lesson97
    assert not hasattr(checks, "lesson98")
    with pytest.raises(AttributeError, match="has no attribute 'lessonX'"):
        checks.lessonX
