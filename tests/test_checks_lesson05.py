"""The checks of lesson 05 pass the solutions, stop at the stubs, and name each mistake."""

from __future__ import annotations

import pytest
import torch

from check_helpers import NOT_DONE, exercise_of, expect_mistake, register
from segkit.checks import ExerciseNotDone, lesson05, passed, reset


# =========================================================================== class_weights


def class_weights(masks, num_classes, ignore_index=255):
    ### the solution of the notebook
    labels = masks[masks != ignore_index]
    counts = torch.bincount(labels.flatten(), minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    inverse = counts.sum() / counts[present]
    weights[present] = inverse / inverse.mean()
    return weights.float()


def test_class_weights_passes_the_solution_and_the_reference(capsys):
    lesson05.check_class_weights(class_weights)
    assert capsys.readouterr().out == (
        "✅ class_weights on two masks with ignore borders — passed "
        "(24/12/6/0 pixels and 6 ignored, weights 0.571/1.143/2.286/0)\n")
    assert passed("class_weights")
    with pytest.warns(UserWarning):  # segkit warns about the class without pixels
        lesson05.check_class_weights(lesson05.reference_class_weights)


def test_class_weights_stub_is_not_done():
    def stub(masks, num_classes, ignore_index=255):
        raise NotImplementedError("Exercise class_weights: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson05.check_class_weights(stub)
    assert not passed("class_weights")


def _counts(masks, num_classes, ignore_index=255):
    return torch.bincount(masks[masks != ignore_index], minlength=num_classes).double()


def backwards(masks, num_classes, ignore_index=255):
    freq = _counts(masks, num_classes) / _counts(masks, num_classes).sum()
    return (freq / freq[freq > 0].mean()).float()


def infinite(masks, num_classes, ignore_index=255):
    counts = _counts(masks, num_classes)
    inverse = counts.sum() / counts
    return (inverse / inverse.mean()).float()


def not_normalised(masks, num_classes, ignore_index=255):
    counts = _counts(masks, num_classes)
    return torch.where(counts > 0, counts.sum() / counts, torch.zeros_like(counts)).float()


def all_256_values(masks, num_classes, ignore_index=255):
    counts = torch.bincount(masks.flatten(), minlength=num_classes).double()
    return torch.where(counts > 0, counts.sum() / counts, torch.zeros_like(counts)).float()


def ignore_as_background(masks, num_classes, ignore_index=255):
    masks = torch.where(masks == ignore_index, torch.zeros_like(masks), masks)
    return class_weights(masks, num_classes, ignore_index)


def float64(masks, num_classes, ignore_index=255):
    return class_weights(masks, num_classes, ignore_index).double()


def no_minlength(masks, num_classes, ignore_index=255):
    counts = torch.bincount(masks[masks != ignore_index]).double()
    return (counts.sum() / counts / (counts.sum() / counts).mean()).float()


WEIGHTS_MISTAKES = [
    (backwards, "weights-backwards", ("inversely", "rare")),
    (infinite, "zero-count-inf", ("inf", "weight 0")),
    (not_normalised, "weights-not-normalised", ("mean",)),
    (all_256_values, "ignore-counted-as-class", ("255", "ignore_index")),
    (ignore_as_background, "ignore-counted-as-class", ("255", "ignore_index")),
    (float64, "weights-wrong-dtype", ("float32", "device")),
    (no_minlength, "weights-wrong-shape", ("minlength",)),
    (lambda masks, num_classes, ignore_index=255: None, "returns-none", ("return",)),
    (lambda masks, num_classes, ignore_index=255: [1.0] * num_classes, "weights-not-tensor",
     ("tensor",)),
]


@pytest.mark.parametrize("student, mistake, words", WEIGHTS_MISTAKES)
def test_class_weights_mistakes(student, mistake, words):
    expect_mistake(lesson05.check_class_weights, student, mistake, *words)
    assert not passed("class_weights")


def test_class_weights_leaves_the_masks_alone():
    def in_place(masks, num_classes, ignore_index=255):
        masks[masks == ignore_index] = 0
        return class_weights(masks, num_classes, ignore_index)

    # the check hands the student a copy: changing it in place only changes the answer
    expect_mistake(lesson05.check_class_weights, in_place, "ignore-counted-as-class")


# =========================================================================== miou_from_confusion


def miou_from_confusion(cm, include_background=True):
    ### the solution of the notebook
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = tp / union
    if not include_background:
        iou = iou[1:]
    return float(iou.nanmean())


def test_miou_passes_the_solution_and_the_reference(capsys):
    lesson05.check_miou_from_confusion(miou_from_confusion)
    assert capsys.readouterr().out == (
        "✅ miou_from_confusion — passed "
        "(mIoU 0.4694 with background, 0.3481 without, on a 5-class matrix)\n")
    assert passed("miou_from_confusion")
    lesson05.check_miou_from_confusion(lesson05.reference_miou_from_confusion)


def test_miou_stub_is_not_done():
    def stub(cm, include_background=True):
        raise NotImplementedError("Exercise miou_from_confusion: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson05.check_miou_from_confusion(stub)


def _iou_with(cm, denominator, include_background, nan_as_zero=False):
    cm = cm.double()
    iou = cm.diag() / denominator(cm)
    if not include_background:
        iou = iou[1:]
    if nan_as_zero:
        return float(torch.nan_to_num(iou, nan=0.0).mean())
    return float(iou.nanmean())


def union(cm):
    return cm.sum(0) + cm.sum(1) - cm.diag()


def nan_as_zero(cm, include_background=True):
    return _iou_with(cm, union, include_background, nan_as_zero=True)


def plain_mean(cm, include_background=True):
    cm = cm.double()
    iou = cm.diag() / union(cm)
    return float((iou if include_background else iou[1:]).mean())


def precision(cm, include_background=True):
    return _iou_with(cm, lambda m: m.sum(0), include_background)


def recall(cm, include_background=True):
    return _iou_with(cm, lambda m: m.sum(1), include_background)


def double_diagonal(cm, include_background=True):
    return _iou_with(cm, lambda m: m.sum(0) + m.sum(1), include_background)


def background_kept(cm, include_background=True):
    return _iou_with(cm, union, True)


def background_cut_out(cm, include_background=True):
    if not include_background:
        cm = cm[1:, 1:]
    return _iou_with(cm, union, True)


MIOU_MISTAKES = [
    (nan_as_zero, "nan-class-as-zero", ("0/0", "nanmean")),
    (plain_mean, "nan-class-as-zero", ("NaN", "nanmean")),
    (precision, "precision-not-iou", ("precision", "TP + FP + FN")),
    (recall, "recall-not-iou", ("recall", "TP + FP + FN")),
    (double_diagonal, "union-double-counts-diagonal", ("twice", "- TP")),
    (background_kept, "background-not-excluded", ("iou[1:]",)),
    (background_cut_out, "background-pixels-dropped", ("row and column",)),
    (lambda cm, include_background=True: None, "returns-none", ("return",)),
    (lambda cm, include_background=True: cm.diag() / cm.sum(1), "miou-not-number",
     ("number", "per-class")),
]


@pytest.mark.parametrize("student, mistake, words", MIOU_MISTAKES)
def test_miou_mistakes(student, mistake, words):
    expect_mistake(lesson05.check_miou_from_confusion, student, mistake, *words)
    assert not passed("miou_from_confusion")


def test_miou_accepts_a_one_element_tensor():
    def as_tensor(cm, include_background=True):
        return torch.tensor(miou_from_confusion(cm, include_background))

    lesson05.check_miou_from_confusion(as_tensor)


# =========================================================================== the corpus


def _stub(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return stub


for _check, _rights in [
        (lesson05.check_class_weights, [class_weights]),
        (lesson05.check_miou_from_confusion, [miou_from_confusion,
                                              lesson05.reference_miou_from_confusion]),
        (lesson05.check_multiclass_loss, [lesson05.reference_multiclass_loss]),
        (lesson05.check_predict_labels, [lesson05.reference_predict_labels])]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub(exercise_of(_check)), NOT_DONE, f"stub_{exercise_of(_check)}")
for _check, _list in [(lesson05.check_class_weights, WEIGHTS_MISTAKES),
                      (lesson05.check_miou_from_confusion, MIOU_MISTAKES)]:
    for _i, (_fn, _mistake, _) in enumerate(_list):
        register(_check, _fn, _mistake, f"{exercise_of(_check)}_{_i}")
