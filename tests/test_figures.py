"""Comparing trained figures within a declared tolerance (segkit_course.figures)."""

from __future__ import annotations

import nbformat
import pytest

from segkit_course.figures import (
    CellTolerance,
    Tolerance,
    cell_tolerance,
    compare_outputs,
    compare_text,
    split_numbers,
)


def tolerance(**kwargs) -> CellTolerance:
    return CellTolerance(Tolerance(**kwargs))


def test_numbers_are_taken_out_of_the_text_and_words_with_digits_are_not():
    skeleton, numbers = split_numbers(
        "epoch 3/5  val Dice 0.9147, lr 1.00e-03, AdamW 3e-3, 31,037,698 parameters at 96x64, "
        "loss -222.007 (8, 16, 64, 96) id 01048fb7b9d4_03")
    assert skeleton == ("epoch #/#  val Dice #, lr #, AdamW #, # parameters at 96x64, "
                        "loss # (#, #, #, #) id 01048fb7b9d4_03")
    assert numbers == ["3", "5", "0.9147", "1.00e-03", "3e-3", "31,037,698", "-222.007",
                       "8", "16", "64", "96"]


def test_decimals_move_within_the_tolerance_and_integers_stay_exact():
    stored = "epoch 5/5  val Dice 0.9458\n"
    assert compare_text(stored, "epoch 5/5  val Dice 0.9608\n", tolerance(abs=0.02)) == []
    assert compare_text(stored, "epoch 5/5  val Dice 0.9700\n", tolerance(abs=0.02)) == [
        "'epoch 5/5  val Dice 0.9458': 0.9458 stored, 0.9700 now (tolerance ±0.02)"]
    assert compare_text(stored, "epoch 4/5  val Dice 0.9458\n", tolerance(abs=0.02)) == [
        "'epoch 5/5  val Dice 0.9458': 5 stored, 4 now (tolerance ±0)"]
    assert compare_text(stored, "epoch 4/5  val Dice 0.9458\n",
                        tolerance(abs=0.02, integers=1)) == []


def test_relative_tolerance_and_zero_stays_zero():
    rel = tolerance(rel=0.5)
    assert compare_text("val loss 18599.4996", "val loss 18995.3906", rel) == []
    assert compare_text("differ by up to 0.0000", "differ by up to 0.0001", rel) != []


def test_a_changed_line_or_line_count_is_reported_whatever_the_tolerance():
    loose = tolerance(abs=100.0, rel=10.0, integers=100)
    assert compare_text("best Dice 0.97 at 0.55", "best IoU 0.97 at 0.55", loose) == [
        "line changed: stored 'best Dice 0.97 at 0.55', now 'best IoU 0.97 at 0.55'"]
    assert compare_text("a 1.0\nb 2.0", "a 1.0", loose)[0] == "1 lines instead of the stored 2"


def test_a_labelled_line_gets_its_own_tolerance():
    cell = nbformat.v4.new_code_cell("", metadata={"segkit": {"tolerance": {
        "abs": 0.02, "lines": {"chosen threshold": {"abs": 0.05}}}}})
    declared = cell_tolerance(cell)
    stored = "val Dice 0.9717\nchosen threshold: 0.55\n"
    assert compare_text(stored, "val Dice 0.9655\nchosen threshold: 0.60\n", declared) == []
    assert compare_text(stored, "val Dice 0.9655\nchosen threshold: 0.65\n", declared) != []
    assert compare_text(stored, "val Dice 0.9400\nchosen threshold: 0.55\n", declared) != []


def test_the_longest_label_in_a_line_wins():
    cell = nbformat.v4.new_code_cell("", metadata={"segkit": {"tolerance": {
        "abs": 0.01, "lines": {"mIoU no bg": {"abs": 0.1}, "mIoU": {"abs": 0.05}}}}})
    declared = cell_tolerance(cell)
    assert compare_text("mIoU no bg 0.25", "mIoU no bg 0.33", declared) == []
    assert compare_text("mIoU 0.35", "mIoU 0.43", declared) != []


@pytest.mark.parametrize("declared, message", [
    (0.03, "a tolerance is a mapping"),
    ({"absolute": 0.03}, "unknown tolerance key(s) ['absolute']"),
    ({"abs": -1}, "tolerance abs must be a number >= 0, not -1"),
    ({"abs": "0.1"}, "tolerance abs must be a number >= 0, not '0.1'"),
    ({"abs": 0.1, "lines": ["val"]}, "tolerance lines must map a label to a tolerance"),
    ({"abs": 0.1, "lines": {"val": {"abs": 0.1, "lines": {}}}}, "unknown tolerance key(s)"),
])
def test_a_malformed_tolerance_is_refused_naming_the_cell(declared, message):
    cell = nbformat.v4.new_code_cell("", metadata={"segkit": {"tolerance": declared}})
    cell.id = "train-log"
    with pytest.raises(ValueError, match="cell train-log") as info:
        cell_tolerance(cell)
    assert message in str(info.value)


def test_a_cell_without_a_tolerance_has_none():
    assert cell_tolerance(nbformat.v4.new_code_cell("print(1)")) is None


def test_outputs_are_compared_stream_by_stream_and_images_are_not():
    stream = nbformat.v4.new_output("stream", name="stdout", text="Dice 0.95\n")
    figure = nbformat.v4.new_output("display_data", data={
        "image/png": "AAAA", "text/plain": "<Figure size 650x350 with 1 Axes>"})
    fresh_figure = nbformat.v4.new_output("display_data", data={
        "image/png": "BBBB", "text/plain": "<Figure size 650x350 with 1 Axes>"})
    split = [nbformat.v4.new_output("stream", name="stdout", text="Dice "),
             nbformat.v4.new_output("stream", name="stdout", text="0.96\n")]
    loose = tolerance(abs=0.02)
    assert compare_outputs([stream, figure], split + [fresh_figure], loose) == []
    assert compare_outputs([stream, figure], [stream], loose) == [
        "outputs ['stdout'] instead of the stored ['stdout', 'text/plain']"]
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="bad 0.5", traceback=[])
    assert compare_outputs([stream], [error], loose) == [
        "outputs ['error'] instead of the stored ['stdout']"]
