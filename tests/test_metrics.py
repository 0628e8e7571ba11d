"""Tests of segkit.metrics, cross-checked against torchmetrics (a test-only dependency)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from segkit.errors import DataError
from segkit.metrics import (
    binarize,
    class_accuracy,
    confusion_matrix,
    dice_per_class,
    dice_per_image,
    dice_score,
    iou_per_class,
    iou_per_image,
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


# ------------------------------------------------------------------ binarize

def test_binarize_logits_probabilities_and_labels():
    logits = torch.tensor([[[-2.0, -0.1, 0.1, 3.0]]])  # (N, H, W) = (1, 1, 4), outside [0, 1] -> logits
    assert binarize(logits).tolist() == [[[0, 0, 1, 1]]]
    probs = torch.tensor([[[0.2, 0.5, 0.51, 0.9]]])  # inside [0, 1] -> probabilities
    assert binarize(probs).tolist() == [[[0, 0, 1, 1]]]
    assert binarize(probs, threshold=0.8).tolist() == [[[0, 0, 0, 1]]]
    labels = torch.tensor([[[0, 1, 1, 0]]], dtype=torch.uint8)
    assert binarize(labels).tolist() == [[[0, 1, 1, 0]]]
    assert binarize(labels).dtype == torch.int64


def test_binarize_guess_can_be_overridden():
    # logits that happen to lie in [0, 1] look like probabilities: say what they are
    x = torch.tensor([[[0.1, 0.3, 0.7]]])
    assert binarize(x).tolist() == [[[0, 0, 1]]]
    assert binarize(x, from_logits=True).tolist() == [[[1, 1, 1]]]  # all logits > 0


def test_binarize_logits_is_sigmoid_above_threshold():
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 4
    for t in (0.3, 0.5, 0.7):
        expected = (torch.sigmoid(x.double()) > t).long()[:, 0]
        assert torch.equal(binarize(x, from_logits=True, threshold=t), expected)
    tiny = torch.tensor([[[1e-9, -1e-9]]])  # sigmoid rounds both to 0.5 in float32
    assert binarize(tiny, from_logits=True).tolist() == [[[1, 0]]]


def test_binarize_two_channel_scores_take_argmax():
    scores = torch.tensor([[[[2.0, 0.0]], [[1.0, 5.0]]]])  # (1, 2, 1, 2)
    assert binarize(scores).tolist() == [[[0, 1]]]


def test_binarize_refuses_other_shapes():
    with pytest.raises(DataError, match="confusion_matrix"):
        binarize(torch.zeros(1, 3, 4, 4))
    with pytest.raises(DataError, match=r"unsqueeze\(0\)"):
        binarize(torch.zeros(4, 4))
    with pytest.raises(DataError, match="labels 0/1"):
        binarize(torch.tensor([[[0, 2]]]))


# ------------------------------------------------------------------ pixel accuracy

def test_pixel_accuracy_of_integer_tensors_is_not_zero():
    # the "accuracy always 0.00" bug: integer division of correct by total pixels
    pred = torch.tensor([[[1, 0], [1, 1]]], dtype=torch.uint8)
    target = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.int64)
    acc = pixel_accuracy(pred, target)
    assert isinstance(acc, float)
    assert acc == 0.75
    assert (pred == target).sum() // target.numel() == 0  # what integer division would print


def test_pixel_accuracy_refuses_logits_with_a_hint():
    # the other road to 0.00: comparing float logits with integer labels
    logits = torch.tensor([[[2.3, -1.2], [0.4, 1.7]]])
    with pytest.raises(DataError, match="logits or probabilities"):
        pixel_accuracy(logits, torch.tensor([[[1, 0], [1, 1]]]))
    # whole-number floats are labels and are fine
    assert pixel_accuracy(torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[1, 1]]])) == 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_accuracy_matches_torchmetrics_with_ignored_pixels(seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, 2, (3, 10, 10), generator=g)
    target = torch.randint(0, 2, (3, 10, 10), generator=g)
    target[torch.rand(3, 10, 10, generator=g) < 0.2] = 255
    ours = pixel_accuracy(pred, target, ignore_index=255)
    theirs = tm_cls.BinaryAccuracy(ignore_index=255)(pred, target)
    assert ours == pytest.approx(float(theirs), abs=1e-6)
    # (N, 1, H, W) predictions against an (N, H, W) target
    assert pixel_accuracy(pred[:, None], target, ignore_index=255) == ours


def test_pixel_accuracy_of_ignored_only_pixels_is_nan_unlike_torchmetrics():
    pred = torch.tensor([[[1, 0]]])
    target = torch.tensor([[[255, 255]]])
    assert math.isnan(pixel_accuracy(pred, target, ignore_index=255))
    assert float(tm_cls.BinaryAccuracy(ignore_index=255)(pred, target)) == 0.0  # torchmetrics: 0


def test_pixel_accuracy_shape_mismatch():
    with pytest.raises(DataError, match=r"argmax\(1\)"):
        pixel_accuracy(torch.zeros(2, 3, 4, 4, dtype=torch.long), torch.zeros(2, 4, 4))


# ------------------------------------------------------------------ Dice and IoU

@pytest.mark.parametrize("seed", SEEDS)
def test_dice_matches_torchmetrics_per_image_and_pooled(seed):
    logits, target = random_binary(seed)
    pred = binarize(logits)
    assert dice_score(logits, target) == pytest.approx(tm_dice(pred, target, "samplewise"), abs=1e-6)
    assert dice_score(logits, target, reduction="pooled") == pytest.approx(
        tm_dice(pred, target, "global"), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_iou_matches_torchmetrics(seed):
    logits, target = random_binary(seed)
    pred = binarize(logits)
    pooled = tm_cls.BinaryJaccardIndex()(pred, target)
    assert iou_score(logits, target, reduction="pooled") == pytest.approx(float(pooled), abs=1e-6)
    per_image = [float(tm_cls.BinaryJaccardIndex()(pred[i], target[i])) for i in range(len(pred))]
    assert iou_score(logits, target) == pytest.approx(sum(per_image) / len(per_image), abs=1e-6)


def test_iou_and_dice_of_each_image_are_related():
    logits, target = random_binary(5)
    dice = dice_per_image(logits, target)
    iou = iou_per_image(logits, target)
    assert dice.shape == (4,)
    torch.testing.assert_close(iou, dice / (2 - dice))


def test_per_image_and_pooled_differ_when_objects_differ_in_size():
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[0, :8, :8] = 1   # a big object, found exactly
    target[1, 0, 0] = 1     # a one-pixel object, missed
    pred = target.clone()
    pred[1, 0, 0] = 0
    assert dice_score(pred, target) == pytest.approx(0.5)  # mean of 1.0 and 0.0
    assert dice_score(pred, target, reduction="pooled") == pytest.approx(2 * 64 / (64 + 65))


def test_both_empty_is_one_by_default_and_differs_from_torchmetrics():
    empty = torch.zeros(2, 6, 6, dtype=torch.long)
    assert dice_score(empty, empty) == 1.0
    assert iou_score(empty, empty) == 1.0
    assert dice_score(empty, empty, reduction="pooled") == 1.0
    assert dice_score(empty, empty, empty="zero") == 0.0
    assert math.isnan(dice_score(empty, empty, empty="nan"))
    assert dice_score(empty, empty, empty="zero", eps=1.0) == 0.0  # `empty` wins over eps
    # torchmetrics: NaN per image for Dice, 0.0 for IoU
    assert math.isnan(tm_dice(empty, empty, "samplewise"))
    assert float(tm_cls.BinaryJaccardIndex()(empty, empty)) == 0.0


def test_empty_nan_leaves_both_empty_images_out_like_torchmetrics():
    target = torch.zeros(2, 6, 6, dtype=torch.long)
    target[1, :3, :3] = 1  # image 0 is both-empty, image 1 has Dice 2*4/(4+9)
    pred = torch.zeros_like(target)
    pred[1, :2, :2] = 1
    image1 = 2 * 4 / (4 + 9)
    assert dice_score(pred, target, empty="nan") == pytest.approx(image1)
    assert tm_dice(pred, target, "samplewise") == pytest.approx(image1, abs=1e-6)
    assert dice_score(pred, target) == pytest.approx((1.0 + image1) / 2)  # segkit default
    per_image = dice_per_image(pred, target, empty="nan")
    assert math.isnan(per_image[0]) and per_image[1] == pytest.approx(image1)


def test_empty_target_with_a_prediction_scores_zero():
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    pred = torch.zeros_like(target)
    pred[0, 2, 2] = 1
    assert dice_score(pred, target) == 0.0
    assert iou_score(pred, target) == 0.0
    assert dice_score(target, pred) == 0.0  # a missed object: also 0
    assert dice_score(pred, target, eps=1.0) == pytest.approx(1 / 2)  # smoothing: (0+1)/(1+1)


def test_all_correct_and_all_wrong():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :2] = 1
    assert dice_score(target, target) == 1.0 and iou_score(target, target) == 1.0
    assert pixel_accuracy(target, target) == 1.0
    wrong = 1 - target
    assert dice_score(wrong, target) == 0.0 and iou_score(wrong, target) == 0.0
    assert pixel_accuracy(wrong, target) == 0.0
    assert tm_dice(wrong, target, "samplewise") == 0.0


def test_dice_on_raw_logits_differs_from_dice_on_binarized_predictions():
    logits, target = random_binary(0)
    t = target[:, None].float()
    # the catalogued mistake: plugging raw logits into the Dice formula
    naive = float(2 * (logits * t).sum() / (logits.sum() + t.sum()))
    # or probabilities without a threshold (a soft Dice)
    probs = torch.sigmoid(logits)
    soft = float(2 * (probs * t).sum() / (probs.sum() + t.sum()))
    hard = dice_score(logits, target, reduction="pooled")
    assert naive != pytest.approx(hard, abs=0.01)
    assert soft != pytest.approx(hard, abs=0.01)
    assert not 0.0 <= naive <= 1.0  # here the logits' "Dice" is even negative
    # dice_score binarizes first, so logits and their labels give the same Dice
    assert dice_score(logits, target) == dice_score(binarize(logits), target)
    assert dice_score(torch.sigmoid(logits), target) == dice_score(logits, target)


def test_channel_axis_and_float_targets_are_accepted():
    logits, target = random_binary(1)
    expected = dice_score(logits, target)
    assert dice_score(logits[:, 0], target[:, None].float()) == expected


def test_masks_stored_as_0_255_get_a_hint():
    target = torch.zeros(1, 4, 4, dtype=torch.uint8)
    target[0, 0, 0] = 255
    with pytest.raises(DataError, match="divide it by 255"):
        dice_score(torch.zeros(1, 4, 4, dtype=torch.long), target)


def test_binary_shape_mismatch():
    with pytest.raises(DataError, match="different pixels"):
        dice_score(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))


def test_bad_reduction_and_empty_names():
    x = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="reduction"):
        dice_score(x, x, reduction="mean")
    with pytest.raises(ValueError, match="empty"):
        iou_score(x, x, empty="1")


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
    assert pixel_accuracy_from_cm(cm) == pytest.approx(pixel_accuracy(pred, target, ignore_index=255))
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
