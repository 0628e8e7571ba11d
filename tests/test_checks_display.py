"""A failed check shows a student a few clean lines, in a real kernel and as plain text.

In JupyterLab, Colab and headless runs IPython asks an exception for
``_render_traceback_`` before it formats a traceback: a failed check shows its ❌ line and
hint, a not-done exercise one line, and neither shows segkit's source (whose hints for other
mistakes would be spoilers). A crash in the student's own code still names their line.
"""

from __future__ import annotations

import nbformat
import pytest

from check_helpers import failure
from segkit.checks import lesson04
from segkit.checks.core import CheckFailed, ExerciseNotDone
from segkit_course.build import RAISES_TAG
from segkit_course.run import execute_notebook

WRONG = """\
import torch
from segkit import checks

def pixel_accuracy(logits, target):
    preds = (logits > 0).long()                      # (N, 1, H, W): the channel axis stays
    return (preds == target).sum().item() / target.numel()
"""
FAILS = "checks.lesson04.check_pixel_accuracy(pixel_accuracy)"
NOT_DONE = """\
def dice_score(logits, target, threshold=0.5):
    raise NotImplementedError("Exercise dice_score: write your code here")

checks.lesson04.check_dice_score(dice_score)
"""
CRASHES = """\
def iou_score(logits, target, threshold=0.5):
    preds = torch.sigmoid(logits[:, 0]) > threshold
    return (preds & target).sum() / preds.unionn(target)

checks.lesson04.check_iou_score(iou_score)
"""


def _error_lines(cell) -> list[str]:
    (output,) = [o for o in cell.outputs if o.output_type == "error"]
    return "\n".join(output.traceback).splitlines()


def test_a_kernel_shows_a_few_clean_lines(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(WRONG)] + [
        nbformat.v4.new_code_cell(source, metadata={"tags": [RAISES_TAG]})
        for source in (FAILS, NOT_DONE, CRASHES)]
    run = execute_notebook(nb, cwd=tmp_path, timeout=120)
    assert run.ok, run.error
    failed, not_done, crashed = (_error_lines(cell) for cell in run.nb.cells[1:])

    assert len(failed) <= 5, failed
    assert failed[0].startswith("❌ pixel_accuracy:")
    assert failed[1].startswith("Hint: the predictions are (N, 1, H, W)")
    for lines in (failed, not_done, crashed):
        text = "\n".join(lines)
        assert "Traceback" not in text and "segkit/checks" not in text, text
        assert "def " not in text and "fail(" not in text, text  # no check source

    assert len(not_done) == 1, not_done
    assert "Exercise `dice_score` is not done yet" in not_done[0]

    assert len(crashed) <= 5, crashed
    assert crashed[0].startswith("❌ iou_score: your code raised AttributeError")
    assert "preds.unionn(target)" in crashed[1]  # the student's own line


def _channel_broadcast(logits, target):
    return ((logits > 0).float() == target).float().mean().item()


def test_plain_text_is_the_same_lines():
    error = failure(lesson04.check_pixel_accuracy, _channel_broadcast)
    lines = error._render_traceback_()
    assert lines == str(error).splitlines()
    assert len(lines) == 2 and lines[0].startswith("❌ pixel_accuracy:")


def test_a_long_message_still_fits_in_two_lines():
    error = CheckFailed("x", "first\nsecond\n\nthird", mistake=None, hint="a\nb")
    assert error._render_traceback_() == ["❌ x: first second third", "Hint: a b"]
    assert ExerciseNotDone("not\ndone", exercise="x")._render_traceback_() == ["⏳ not done"]


def test_not_done_in_plain_python_is_one_line():
    def dice_score(logits, target, threshold=0.5):
        raise NotImplementedError("Exercise dice_score: write your code here")

    with pytest.raises(ExerciseNotDone) as info:
        lesson04.check_dice_score(dice_score)
    assert len(info.value._render_traceback_()) == 1
