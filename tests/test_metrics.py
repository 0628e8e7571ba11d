"""Tests of segkit.metrics, cross-checked against torchmetrics (a test-only dependency)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from segkit.errors import DataError
from segkit.metrics import (
    RunningScores,
    binarize,
    both_empty,
    class_accuracy,
    confusion_matrix,
    dice_per_class,
    dice_per_image,
    dice_pooled,
    dice_score,
    iou_per_class,
    iou_per_image,
    iou_pooled,
    iou_score,
    mean_iou,
    pixel_accuracy,
    pixel_accuracy_from_cm,
)

tm_cls = pytest.importorskip("torchmetrics.classification")
tm_seg = pytest.importorskip("torchmetrics.segmentation")

SEEDS = [0, 1, 2, 3]


@pytest.fixture(autouse=True)
def quiet_torchmetrics():
    # torchmetrics warns about absent classes and NaN scores: that is what the edge cases test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def tm_dice(pred: torch.Tensor, target: torch.Tensor, aggregation: str) -> float:
    """torchmetrics' Dice of the foreground of (N, H, W) 0/1 labels."""
    metric = tm_seg.DiceScore(num_classes=2, include_background=False, average="micro",
                              input_format="index", aggregation_level=aggregation)
    return float(metric(pred, target))


def random_binary(seed: int, n: int = 4, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, 1, H, W) and a 0/1 target (N, H, W) whose objects differ in size."""
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        h = int(torch.randint(2, size, (1,), generator=g))
        target[i, :h, : h // 2 + 1] = 1
    logits = 2.0 * torch.randn(n, 1, size, size, generator=g) + 3.0 * (2 * target[:, None] - 1)
    return logits, target


# ------------------------------------------------------------------ lesson 04's answers

def lesson04_dice(logits, target, threshold=0.5):
    """The solution of lesson 04's exercise, as the notebook has it."""
    pred = (torch.sigmoid(logits[:, 0]) > threshold).float()
    target = target.float()
    inter = (pred * target).sum(dim=(1, 2))
    sizes = pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
    dice = torch.where(sizes > 0, 2 * inter / sizes.clamp(min=1), torch.ones_like(inter))
    return dice.mean().item()


@pytest.mark.parametrize("seed", SEEDS)
def test_segkit_answers_as_the_lesson_does(seed):
    logits, target = random_binary(seed)
    for threshold in (0.3, 0.5, 0.7):
        assert dice_score(logits, target, threshold) == pytest.approx(
            lesson04_dice(logits, target, threshold), abs=1e-6)
    preds = (logits[:, 0] > 0).long()
    assert pixel_accuracy(logits, target) == (preds == target).sum().item() / target.numel()
    assert isinstance(dice_score(logits, target), float)
    assert isinstance(iou_score(logits, target), float)


def test_the_answers_read_like_the_lesson():
    """Lesson 04's answers are a few lines: segkit's stay that short, with the lesson's
    arguments (the options the tools need are other functions)."""
    import inspect

    for fn, args in [(pixel_accuracy, ["logits", "target"]),
                     (dice_score, ["logits", "target", "threshold"]),
                     (iou_score, ["logits", "target", "threshold"])]:
        assert list(inspect.signature(fn).parameters) == args
        assert len(inspect.getsource(fn).splitlines()) <= 15, fn.__name__
        assert "Defined in lesson 04" in fn.__doc__


# ------------------------------------------------------------------ binarize

def test_binarize_logits_is_sigmoid_above_threshold():
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 4
    for t in (0.3, 0.5, 0.7):
        expected = (torch.sigmoid(x.double()) > t).long()[:, 0]
        assert torch.equal(binarize(x, t), expected)
    tiny = torch.tensor([[[1e-9, -1e-9]]])  # sigmoid rounds both to 0.5 in float32
    assert binarize(tiny).tolist() == [[[1, 0]]]
    assert binarize(x).dtype == torch.int64 and binarize(x).shape == (2, 16, 16)


def test_binarize_refuses_other_shapes_and_labels():
    with pytest.raises(DataError, match="confusion_matrix"):
        binarize(torch.zeros(1, 3, 4, 4))
    with pytest.raises(DataError, match=r"unsqueeze\(0\)"):
        binarize(torch.zeros(4, 4))
    with pytest.raises(DataError, match="labels 0/1 need no threshold"):
        binarize(torch.tensor([[[0, 1]]]))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        binarize(torch.zeros(1, 2, 2), threshold=1.0)


# ------------------------------------------------------------------ pixel accuracy

def test_pixel_accuracy_is_a_true_division():
    # the "accuracy always 0.00" bug: integer division of correct by total pixels
    logits = torch.tensor([[[[2.0, -1.0], [3.0, 0.5]]]])   # predicts 1 0 / 1 1
    target = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.int64)
    acc = pixel_accuracy(logits, target)
    assert isinstance(acc, float)
    assert acc == 0.75
    assert (binarize(logits) == target).sum() // target.numel() == 0  # integer division


def test_pixel_accuracy_refuses_0_255_masks_and_other_shapes():
    with pytest.raises(DataError, match="divide it by 255"):
        pixel_accuracy(torch.zeros(1, 1, 2, 2), torch.tensor([[[0, 255], [0, 0]]]))
    with pytest.raises(DataError, match="different pixels"):
        pixel_accuracy(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_with_ignored_pixels_matches_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, 2, (3, 10, 10), generator=g)
    target = torch.randint(0, 2, (3, 10, 10), generator=g)
    target[torch.rand(3, 10, 10, generator=g) < 0.2] = 255
    scores = RunningScores()
    scores.add((4.0 * pred - 2.0)[:, None], target)   # logits whose labels are pred
    theirs = tm_cls.BinaryAccuracy(ignore_index=255)(pred, target)
    assert scores.figures()["accuracy"] == pytest.approx(float(theirs), abs=1e-6)


def test_accuracy_of_ignored_only_pixels_is_nan_unlike_torchmetrics():
    pred = torch.tensor([[[1, 0]]])
    target = torch.tensor([[[255, 255]]])
    scores = RunningScores()
    scores.add((4.0 * pred - 2.0)[:, None], target)
    assert math.isnan(scores.figures()["accuracy"])
    assert float(tm_cls.BinaryAccuracy(ignore_index=255)(pred, target)) == 0.0  # torchmetrics: 0


# ------------------------------------------------------------------ Dice and IoU

@pytest.mark.parametrize("seed", SEEDS)
def test_dice_matches_torchmetrics_per_image_and_pooled(seed):
    logits, target = random_binary(seed)
    pred = binarize(logits)
    assert dice_score(logits, target) == pytest.approx(tm_dice(pred, target, "samplewise"), abs=1e-6)
    assert dice_pooled(pred, target) == pytest.approx(tm_dice(pred, target, "global"), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_iou_matches_torchmetrics(seed):
    logits, target = random_binary(seed)
    pred = binarize(logits)
    pooled = tm_cls.BinaryJaccardIndex()(pred, target)
    assert iou_pooled(pred, target) == pytest.approx(float(pooled), abs=1e-6)
    per_image = [float(tm_cls.BinaryJaccardIndex()(pred[i], target[i])) for i in range(len(pred))]
    assert iou_score(logits, target) == pytest.approx(sum(per_image) / len(per_image), abs=1e-6)


def test_iou_and_dice_of_each_image_are_related():
    logits, target = random_binary(5)
    pred = binarize(logits)
    dice = dice_per_image(pred, target)
    iou = iou_per_image(pred, target)
    assert dice.shape == (4,) and dice.dtype == torch.float64
    torch.testing.assert_close(iou, dice / (2 - dice))


def test_per_image_and_pooled_differ_when_objects_differ_in_size():
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[0, :8, :8] = 1   # a big object, found exactly
    target[1, 0, 0] = 1     # a one-pixel object, missed
    pred = target.clone()
    pred[1, 0, 0] = 0
    assert dice_per_image(pred, target).mean().item() == pytest.approx(0.5)  # 1.0 and 0.0
    assert dice_pooled(pred, target) == pytest.approx(2 * 64 / (64 + 65))


def test_both_empty_is_one_and_the_other_conventions_are_one_line_away():
    empty = torch.zeros(2, 6, 6, dtype=torch.long)
    assert dice_per_image(empty, empty).tolist() == [1.0, 1.0]
    assert iou_per_image(empty, empty).tolist() == [1.0, 1.0]
    assert dice_pooled(empty, empty) == 1.0 and iou_pooled(empty, empty) == 1.0
    assert both_empty(empty, empty).tolist() == [True, True]
    assert dice_score(torch.full((2, 1, 6, 6), -3.0), empty) == 1.0
    # torchmetrics: NaN per image for Dice, 0.0 for IoU
    assert math.isnan(tm_dice(empty, empty, "samplewise"))
    assert float(tm_cls.BinaryJaccardIndex()(empty, empty)) == 0.0
    as_zero = torch.where(both_empty(empty, empty), 0.0, iou_per_image(empty, empty))
    assert as_zero.mean().item() == 0.0


def test_leaving_both_empty_images_out_is_torchmetrics_samplewise_dice():
    target = torch.zeros(2, 6, 6, dtype=torch.long)
    target[1, :3, :3] = 1  # image 0 is both-empty, image 1 has Dice 2*4/(4+9)
    pred = torch.zeros_like(target)
    pred[1, :2, :2] = 1
    image1 = 2 * 4 / (4 + 9)
    scores = dice_per_image(pred, target)
    assert scores[~both_empty(pred, target)].mean().item() == pytest.approx(image1)
    assert tm_dice(pred, target, "samplewise") == pytest.approx(image1, abs=1e-6)
    assert scores.mean().item() == pytest.approx((1.0 + image1) / 2)  # segkit's convention


def test_empty_target_with_a_prediction_scores_zero():
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    pred = torch.zeros_like(target)
    pred[0, 2, 2] = 1
    assert dice_per_image(pred, target).item() == 0.0
    assert iou_per_image(pred, target).item() == 0.0
    assert dice_per_image(target, pred).item() == 0.0  # a missed object: also 0


def test_all_correct_and_all_wrong():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :2] = 1
    right = (6.0 * target - 3.0)[:, None]  # logits that predict the target
    assert dice_score(right, target) == 1.0 and iou_score(right, target) == 1.0
    assert pixel_accuracy(right, target) == 1.0
    assert dice_score(-right, target) == 0.0 and iou_score(-right, target) == 0.0
    assert pixel_accuracy(-right, target) == 0.0
    assert tm_dice(1 - target, target, "samplewise") == 0.0


def test_dice_of_raw_logits_is_refused_and_differs_from_the_real_dice():
    logits, target = random_binary(0)
    t = target[:, None].float()
    # the catalogued mistake: plugging raw logits into the Dice formula
    naive = float(2 * (logits * t).sum() / (logits.sum() + t.sum()))
    # or probabilities without a threshold (a soft Dice)
    probs = torch.sigmoid(logits)
    soft = float(2 * (probs * t).sum() / (probs.sum() + t.sum()))
    hard = dice_pooled(binarize(logits), target)
    assert naive != pytest.approx(hard, abs=0.01)
    assert soft != pytest.approx(hard, abs=0.01)
    assert not 0.0 <= naive <= 1.0  # here the logits' "Dice" is even negative
    with pytest.raises(DataError, match=r"binarize\(logits, threshold\)"):
        dice_per_image(logits, target)  # the pieces take labels, never raw scores


def test_channel_axis_and_float_targets_are_accepted():
    logits, target = random_binary(1)
    expected = dice_score(logits, target)
    assert dice_score(logits[:, 0], target[:, None].float()) == expected


def test_masks_stored_as_0_255_get_a_hint():
    target = torch.zeros(1, 4, 4, dtype=torch.uint8)
    target[0, 0, 0] = 255
    with pytest.raises(DataError, match="divide it by 255"):
        dice_score(torch.zeros(1, 1, 4, 4), target)


def test_binary_shape_mismatch():
    with pytest.raises(DataError, match="different pixels"):
        dice_per_image(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))


def test_running_scores_of_batches_equal_the_scores_of_the_whole():
    logits, target = random_binary(3, n=6)
    target[0, 0] = 255  # a row nobody labelled: left out, in the prediction too
    whole, parts = RunningScores(), RunningScores()
    whole.add(logits, target)
    for i in range(0, 6, 4):
        parts.add(logits[i:i + 4], target[i:i + 4])
    assert parts.figures() == pytest.approx(whole.figures())
    valid = target != 255
    pred = binarize(logits) * valid
    assert whole.figures()["dice"] == pytest.approx(
        dice_per_image(pred, target * valid).mean().item())
    multi = RunningScores(num_classes=3)
    multi.add(torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4)))
    assert set(multi.figures()) == {"miou", "accuracy"}


# ------------------------------------------------------------------ multiclass

def random_multiclass(seed: int, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (3, C, 10, 10) and a target with ~15% pixels labelled 255."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (3, 10, 10), generator=g)
    logits = torch.randn(3, c, 10, 10, generator=g)
    logits += 1.5 * torch.nn.functional.one_hot(target, c).permute(0, 3, 1, 2)
    target[torch.rand(3, 10, 10, generator=g) < 0.15] = 255
    return logits, target


def test_confusion_matrix_rows_are_true_classes():
    target = torch.tensor([[0, 0, 1, 2]])
    pred = torch.tensor([[0, 1, 1, 1]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.dtype == torch.int64
    assert cm.tolist() == [[1, 1, 0],   # two pixels of class 0: one right, one predicted 1
                           [0, 1, 0],
                           [0, 1, 0]]   # the class-2 pixel was predicted as 1


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_torchmetrics(seed):
    logits, target = random_multiclass(seed)
    ours = confusion_matrix(logits, target, 4, ignore_index=255)
    theirs = tm_cls.MulticlassConfusionMatrix(4, ignore_index=255)(logits.argmax(1), target)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours, confusion_matrix(logits.argmax(1), target, 4))  # logits == labels
    assert int(ours.sum()) == int((target != 255).sum())  # ignored pixels are not counted


@pytest.mark.parametrize("seed", SEEDS)
def test_per_class_scores_match_torchmetrics(seed):
    logits, target = random_multiclass(seed)
    pred = logits.argmax(1)
    cm = confusion_matrix(pred, target, 4)
    iou = tm_cls.MulticlassJaccardIndex(4, average="none", ignore_index=255)(pred, target)
    torch.testing.assert_close(iou_per_class(cm), iou.double(), atol=1e-6, rtol=0)
    miou = tm_cls.MulticlassJaccardIndex(4, average="macro", ignore_index=255)(pred, target)
    assert mean_iou(cm) == pytest.approx(float(miou), abs=1e-6)
    acc = tm_cls.MulticlassAccuracy(4, average="micro", ignore_index=255)(pred, target)
    assert pixel_accuracy_from_cm(cm) == pytest.approx(float(acc), abs=1e-6)
    recall = tm_cls.MulticlassAccuracy(4, average="none", ignore_index=255)(pred, target)
    torch.testing.assert_close(class_accuracy(cm), recall.double(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_dice_per_class_matches_torchmetrics(seed):
    logits, target = random_multiclass(seed)
    target[target == 255] = 0  # DiceScore has no ignore_index
    pred = logits.argmax(1)
    theirs = tm_seg.DiceScore(num_classes=4, average="none", input_format="index",
                              aggregation_level="global")(pred, target)
    torch.testing.assert_close(dice_per_class(confusion_matrix(pred, target, 4)), theirs.double(),
                               atol=1e-6, rtol=0)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    cm = confusion_matrix(pred, target, 3)  # class 2: not in target, not predicted
    iou = iou_per_class(cm)
    assert iou[0] == pytest.approx(1 / 2) and iou[1] == pytest.approx(2 / 3)
    assert math.isnan(iou[2]) and math.isnan(dice_per_class(cm)[2])
    assert math.isnan(class_accuracy(cm)[2])
    assert mean_iou(cm) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # torchmetrics: 0.0 for the absent class, but its macro mean skips it as well
    per_class = tm_cls.MulticlassJaccardIndex(3, average="none")(pred, target)
    assert float(per_class[2]) == 0.0
    macro = tm_cls.MulticlassJaccardIndex(3, average="macro")(pred, target)
    assert float(macro) == pytest.approx(mean_iou(cm), abs=1e-6)


def test_class_predicted_but_absent_from_target_has_iou_zero():
    cm = confusion_matrix(torch.tensor([[0, 2]]), torch.tensor([[0, 0]]), 3)
    assert iou_per_class(cm)[2] == 0.0
    assert mean_iou(cm) == pytest.approx((1 / 2 + 0.0) / 2)


def test_the_two_meanings_of_ignoring_the_background():
    target = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1, 255, 255]])
    pred = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 0, 1, 0]])
    cm = confusion_matrix(pred, target, 2, ignore_index=255)
    # 1. ignore_index: the two 255 pixels are not counted, whatever was predicted there
    assert int(cm.sum()) == 8
    other = pred.clone()
    other[0, 8:] = torch.tensor([0, 1])
    assert torch.equal(confusion_matrix(other, target, 2, ignore_index=255), cm)
    # 2. include_background=False: class 0 is dropped from the mean, but its pixels
    #    predicted as 1 still lower class 1's IoU
    iou = iou_per_class(cm)
    assert iou.tolist() == pytest.approx([5 / 7, 1 / 3])
    assert mean_iou(cm) == pytest.approx((5 / 7 + 1 / 3) / 2)
    assert mean_iou(cm, include_background=False) == pytest.approx(1 / 3)
    assert mean_iou(cm, include_background=False, background_index=1) == pytest.approx(5 / 7)


def test_ignored_only_image_gives_an_empty_matrix():
    target = torch.full((1, 4, 4), 255)
    cm = confusion_matrix(torch.zeros(1, 4, 4, dtype=torch.long), target, 3)
    assert cm.sum() == 0
    assert math.isnan(pixel_accuracy_from_cm(cm))
    assert math.isnan(mean_iou(cm))
    assert torch.isnan(iou_per_class(cm)).all()


def test_confusion_matrices_of_batches_add_up():
    logits, target = random_multiclass(7)
    whole = confusion_matrix(logits, target, 4)
    parts = confusion_matrix(logits[:1], target[:1], 4) + confusion_matrix(logits[1:], target[1:], 4)
    assert torch.equal(whole, parts)


def test_out_of_range_labels_are_explained():
    target = torch.tensor([[0, 1, 255]])
    with pytest.raises(DataError, match="ignore_index=255"):
        confusion_matrix(torch.tensor([[0, 1, 1]]), target, 2, ignore_index=None)
    with pytest.raises(DataError, match=r"labels \[3\]"):
        confusion_matrix(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 3, 1]]), 2)
    with pytest.raises(DataError, match="channels"):
        confusion_matrix(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), 2)
