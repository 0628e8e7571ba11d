"""Lesson 04's checks pass the solutions, refuse the stubs and name each catalogued mistake.

Every wrong implementation below is a mistake students make with metrics (the sea/sky
project's "accuracy always 0.00", Dice on logits, pooled Dice, NaN for empty images, ...).
"""

from __future__ import annotations

import pytest
import torch

from check_helpers import NOT_DONE, expect_mistake, register
from segkit import metrics
from segkit.checks import CheckFailed, ExerciseNotDone, passed, reset
from segkit.checks import lesson04


# --------------------------------------------------------------------------- pixel accuracy


def accuracy_solution(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).sum().item() / target.numel()


def accuracy_stub(logits, target):
    raise NotImplementedError("Exercise pixel_accuracy: write your code here")


def accuracy_floor_division(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).sum().item() // target.numel()


def accuracy_floor_division_tensor(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).sum() // target.numel()


def accuracy_floor_division_then_float(logits, target):
    preds = (logits[:, 0] > 0).long()
    return float((preds == target).sum().item() // target.numel())


def accuracy_compares_logits(logits, target):
    return (logits[:, 0] == target).sum().item() / target.numel()


def accuracy_compares_probabilities(logits, target):
    return (torch.sigmoid(logits[:, 0]) == target).float().mean().item()


def accuracy_wrong_count(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).sum().item() / len(target)


def accuracy_per_image_pixels(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).sum().item() / (target.shape[1] * target.shape[2])


def accuracy_wrong_dim(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).float().mean(dim=0)


def accuracy_returns_tensor(logits, target):
    preds = (logits[:, 0] > 0).long()
    return (preds == target).float().mean()


def accuracy_threshold_on_logits(logits, target):
    preds = (logits[:, 0] > 0.5).long()
    return (preds == target).sum().item() / target.numel()


def accuracy_broadcast(logits, target):
    preds = (logits > 0).long()  # (N, 1, H, W) against (N, H, W)
    return (preds == target).float().mean().item()


def accuracy_ground_truth(logits, target):
    return (target == target).float().mean().item()


def test_pixel_accuracy_passes_the_solution_and_segkit(capsys):
    lesson04.check_pixel_accuracy(accuracy_solution)
    assert passed("pixel_accuracy")
    out = capsys.readouterr().out
    assert out == "✅ pixel_accuracy on a batch of 2 images — passed (0.8333 on 2 images of 3 x 4 pixels)\n"
    lesson04.check_pixel_accuracy(lesson04.reference_pixel_accuracy)


def test_pixel_accuracy_refuses_the_stub():
    with pytest.raises(ExerciseNotDone):
        lesson04.check_pixel_accuracy(accuracy_stub)
    assert not passed("pixel_accuracy")


@pytest.mark.parametrize("fn", [accuracy_floor_division, accuracy_floor_division_tensor,
                                accuracy_floor_division_then_float])
def test_pixel_accuracy_integer_division(fn):
    expect_mistake(lesson04.check_pixel_accuracy, fn, "accuracy-integer-division",
                   "integer division", "0.00", "/")


@pytest.mark.parametrize("fn", [accuracy_compares_logits, accuracy_compares_probabilities])
def test_pixel_accuracy_compares_scores_with_labels(fn):
    expect_mistake(lesson04.check_pixel_accuracy, fn, "accuracy-compares-scores",
                   "compared the logits", "labels", "logits > 0")


@pytest.mark.parametrize("fn", [accuracy_wrong_count, accuracy_per_image_pixels])
def test_pixel_accuracy_wrong_count(fn):
    expect_mistake(lesson04.check_pixel_accuracy, fn, "accuracy-wrong-count",
                   "between 0 and 1", "numel()")


def test_pixel_accuracy_wrong_dim():
    expect_mistake(lesson04.check_pixel_accuracy, accuracy_wrong_dim, "accuracy-wrong-dim",
                   "shape (3, 4)", "every image", "numel()")


def test_pixel_accuracy_returns_tensor():
    expect_mistake(lesson04.check_pixel_accuracy, accuracy_returns_tensor, "returns-tensor",
                   ".item()", "float")


def test_pixel_accuracy_threshold_on_logits():
    expect_mistake(lesson04.check_pixel_accuracy, accuracy_threshold_on_logits,
                   "threshold-on-logits", "logits at 0.5", "logits > 0")


def test_pixel_accuracy_broadcast():
    expect_mistake(lesson04.check_pixel_accuracy, accuracy_broadcast, "channel-broadcast",
                   "(N, N, H, W)", "logits[:, 0]")


def test_pixel_accuracy_ground_truth_as_prediction():
    expect_mistake(lesson04.check_pixel_accuracy, accuracy_ground_truth, "target-as-prediction",
                   "ground truth", "sea/sky project")


def test_a_failing_rerun_forgets_the_pass():
    lesson04.check_pixel_accuracy(accuracy_solution)
    with pytest.raises(CheckFailed):
        lesson04.check_pixel_accuracy(accuracy_floor_division)
    assert not passed("pixel_accuracy")


# --------------------------------------------------------------------------- Dice / IoU


def _labels(logits, threshold):
    return (torch.sigmoid(logits[:, 0]) > threshold).float()


def _per_image(pred, target, kind):
    target = target.float()
    inter = (pred * target).sum(dim=(1, 2))
    total = pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
    if kind == "dice":
        score = 2 * inter / total
    else:
        score = inter / (total - inter)
    return torch.where(total == 0, torch.ones_like(score), score)


def dice_solution(logits, target, threshold=0.5):
    return _per_image(_labels(logits, threshold), target, "dice").mean().item()


def iou_solution(logits, target, threshold=0.5):
    return _per_image(_labels(logits, threshold), target, "iou").mean().item()


def dice_loop_solution(logits, target, threshold=0.5):
    """Another right answer: a loop over images, the target and prediction swapped."""
    scores = []
    for p, t in zip(logits, target):
        pred = torch.sigmoid(p[0]) > threshold
        t = t.bool()
        size = int(t.sum()) + int(pred.sum())
        scores.append(1.0 if size == 0 else 2 * int((t & pred).sum()) / size)
    return sum(scores) / len(scores)


def iou_from_dice(logits, target, threshold=0.5):
    """Another right answer: IoU = Dice / (2 - Dice) per image."""
    d = _per_image(_labels(logits, threshold), target, "dice")
    return (d / (2 - d)).mean().item()


def stub(name):
    def fn(logits, target, threshold=0.5):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return fn


def on_logits(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(logits[:, 0], target, kind).mean().item()
    return fn


def on_probabilities(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(torch.sigmoid(logits[:, 0]), target, kind).mean().item()
    return fn


def threshold_on_logits(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image((logits[:, 0] > threshold).float(), target, kind).mean().item()
    return fn


def pooled(kind):
    def fn(logits, target, threshold=0.5):
        pred = _labels(logits, threshold).reshape(1, -1, 1)
        return _per_image(pred, target.reshape(1, -1, 1), kind).mean().item()
    return fn


def empty_nan(kind):
    def fn(logits, target, threshold=0.5):
        pred, t = _labels(logits, threshold), target.float()
        inter = (pred * t).sum(dim=(1, 2))
        total = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return score.mean().item()
    return fn


def empty_zero(kind):
    def fn(logits, target, threshold=0.5):
        pred, t = _labels(logits, threshold), target.float()
        inter = (pred * t).sum(dim=(1, 2))
        total = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return torch.nan_to_num(score, nan=0.0).mean().item()
    return fn


def empty_skipped(kind):
    def fn(logits, target, threshold=0.5):
        pred, t = _labels(logits, threshold), target.float()
        inter = (pred * t).sum(dim=(1, 2))
        total = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return score.nanmean().item()
    return fn


def empty_target_one(kind):
    def fn(logits, target, threshold=0.5):
        scores = _per_image(_labels(logits, threshold), target, kind)
        no_target = target.flatten(1).sum(1) == 0
        return torch.where(no_target, torch.ones_like(scores), scores).mean().item()
    return fn


def ground_truth(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(target.float(), target, kind).mean().item()
    return fn


def smoothed(kind):
    def fn(logits, target, threshold=0.5):
        pred, t = _labels(logits, threshold), target.float()
        inter = (pred * t).sum(dim=(1, 2))
        total = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
        if kind == "dice":
            return ((2 * inter + 1) / (total + 1)).mean().item()
        return ((inter + 1) / (total - inter + 1)).mean().item()
    return fn


def ignores_threshold(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(_labels(logits, 0.5), target, kind).mean().item()
    return fn


def squeezes(kind):
    def fn(logits, target, threshold=0.5):
        pred = (torch.sigmoid(logits.squeeze()) > threshold).float()  # (H, W) when N = 1
        t = target.float()
        inter = (pred * t).sum(dim=(1, 2))
        total = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))  # IndexError when N = 1
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return torch.where(total == 0, torch.ones_like(score), score).mean().item()
    return fn


def squeezes_and_flattens(kind):
    def fn(logits, target, threshold=0.5):
        pred = (torch.sigmoid(logits.squeeze()) > threshold).float().flatten(1)
        t = target.float().flatten(1)
        inter = (pred * t).sum(1)
        total = pred.sum(1) + t.sum(1)  # N = 1: sums over the rows of one image
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return torch.where(total == 0, torch.ones_like(score), score).mean().item()
    return fn


def broadcast(kind):
    def fn(logits, target, threshold=0.5):
        pred = (torch.sigmoid(logits) > threshold).float()  # (N, 1, H, W)
        t = target.float()                                   # (N, H, W)
        inter = (pred * t).sum(dim=(1, 2, 3))                # (N, N, H, W) summed
        total = pred.sum(dim=(1, 2, 3)) + t.sum(dim=(1, 2))
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return torch.where(total == 0, torch.ones_like(score), score).mean().item()
    return fn


def returns_tensor(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(_labels(logits, threshold), target, kind).mean()
    return fn


def per_image_tensor(kind):
    def fn(logits, target, threshold=0.5):
        return _per_image(_labels(logits, threshold), target, kind)
    return fn


CHECKS = {"dice": lesson04.check_dice_score, "iou": lesson04.check_iou_score}
EXERCISE = {"dice": "dice_score", "iou": "iou_score"}


@pytest.mark.parametrize("fn", [dice_solution, dice_loop_solution, lesson04.reference_dice_score])
def test_dice_passes_right_answers(fn, capsys):
    lesson04.check_dice_score(fn)
    assert passed("dice_score")
    assert capsys.readouterr().out == (
        "✅ dice_score on 5 small batches — passed (Dice 0.6786 on a big and a small object)\n")


@pytest.mark.parametrize("fn", [iou_solution, iou_from_dice, lesson04.reference_iou_score])
def test_iou_passes_right_answers(fn, capsys):
    lesson04.check_iou_score(fn)
    assert passed("iou_score")
    assert capsys.readouterr().out == (
        "✅ iou_score on 5 small batches — passed (IoU 0.5417 on a big and a small object)\n")


def test_the_fixed_batch_values():
    """The numbers the hints quote: computed with segkit.metrics (independently of the check)."""
    case = lesson04._worked_example()
    logits, target = torch.from_numpy(case["logits"]), torch.from_numpy(case["target"])
    pred = metrics.binarize(logits)
    assert metrics.dice_per_image(pred, target).tolist() == pytest.approx([12 / 14, 2 / 4])
    assert metrics.iou_per_image(pred, target).tolist() == pytest.approx([6 / 8, 1 / 3])
    assert metrics.dice_pooled(pred, target) == pytest.approx(14 / 18)


@pytest.mark.parametrize("kind", ["dice", "iou"])
def test_overlap_checks_refuse_the_stub(kind):
    with pytest.raises(ExerciseNotDone):
        CHECKS[kind](stub(EXERCISE[kind]))
    assert not passed(EXERCISE[kind])


MISTAKES = [
    (on_logits, "{kind}-on-logits", ("raw logits", "sigmoid")),
    (on_probabilities, "{kind}-without-threshold", ("without a threshold", "threshold")),
    (threshold_on_logits, "threshold-on-logits", ("cut the logits", "torch.sigmoid")),
    (pooled, "{kind}-pooled", ("pooled", "each image", "dims your sums run over")),
    (empty_nan, "empty-nan", ("NaN", "1.0")),
    (empty_zero, "empty-zero", ("perfect", "1.0, not 0")),
    (empty_skipped, "empty-skipped", ("left the both-empty image out", "1.0")),
    (empty_target_one, "empty-target-one", ("false positive", "|P| + |T| == 0")),
    (ground_truth, "target-as-prediction", ("ground truth", "sea/sky project")),
    (smoothed, "{kind}-smoothing", ("smoothing", "both-empty")),
    (ignores_threshold, "threshold-ignored", ("with threshold=", "`threshold` argument")),
    (squeezes, "squeeze-batch", ("batch of one image", "raised", "squeeze(1)")),
    (squeezes_and_flattens, "squeeze-batch", ("batch of one image", "squeeze(1)")),
    (broadcast, "channel-broadcast", ("(N, N, H, W)", "logits[:, 0]")),
    (returns_tensor, "returns-tensor", (".item()",)),
    (per_image_tensor, "per-image-tensor", ("each image", "mean")),
]


@pytest.mark.parametrize("kind", ["dice", "iou"])
@pytest.mark.parametrize("make, mistake, words", MISTAKES,
                         ids=[m[0].__name__ for m in MISTAKES])
def test_overlap_checks_name_each_mistake(kind, make, mistake, words):
    expect_mistake(CHECKS[kind], make(kind), mistake.format(kind=kind), *words)
    assert not passed(EXERCISE[kind])


def dice_without_2(logits, target, threshold=0.5):
    return _per_image(_labels(logits, threshold), target, "dice").mean().item() / 2


def dice_gives_iou(logits, target, threshold=0.5):
    return _per_image(_labels(logits, threshold), target, "iou").mean().item()


def iou_gives_dice(logits, target, threshold=0.5):
    return _per_image(_labels(logits, threshold), target, "dice").mean().item()


def iou_union_double_counts(logits, target, threshold=0.5):
    pred, t = _labels(logits, threshold), target.float()
    inter = (pred * t).sum(dim=(1, 2))
    union = pred.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
    return torch.where(union == 0, torch.ones_like(inter), inter / union).mean().item()


def test_dice_formula_mistakes():
    expect_mistake(lesson04.check_dice_score, dice_without_2, "dice-no-factor-2", "factor 2")
    expect_mistake(lesson04.check_dice_score, dice_gives_iou, "dice-is-iou", "that is the iou")


def test_iou_formula_mistakes():
    expect_mistake(lesson04.check_iou_score, iou_gives_dice, "iou-is-dice",
                   "that is the dice", "|P| + |T| - |P ∩ T|")
    expect_mistake(lesson04.check_iou_score, iou_union_double_counts, "iou-union-double-counts",
                   "overlap twice", "|P| + |T| - |P ∩ T|")


def test_crash_in_student_code_is_reported_with_its_line():
    def crashes(logits, target, threshold=0.5):
        return (logits[:, 0] > 0).float() @ target  # a shape error
    error = expect_mistake(lesson04.check_dice_score, crashes, "crashed", "RuntimeError")
    assert "@ target" in str(error)


def test_checks_do_not_change_what_they_are_given():
    """The check's batches are fresh each call: a function that edits its inputs in place
    does not change what the next probe sees."""
    def edits_inputs(logits, target, threshold=0.5):
        value = dice_solution(logits, target, threshold)
        logits.fill_(5.0)
        target.zero_()
        return value
    lesson04.check_dice_score(edits_inputs)
    lesson04.check_dice_score(dice_solution)


# --------------------------------------------------------------------------- the corpus
# Every form above, for tests/test_checks_draws.py (each on fresh draws).

for _fn in (accuracy_solution, lesson04.reference_pixel_accuracy):
    register(lesson04.check_pixel_accuracy, _fn, None)
register(lesson04.check_pixel_accuracy, accuracy_stub, NOT_DONE)
for _fn, _mistake in [
        (accuracy_floor_division, "accuracy-integer-division"),
        (accuracy_floor_division_tensor, "accuracy-integer-division"),
        (accuracy_floor_division_then_float, "accuracy-integer-division"),
        (accuracy_compares_logits, "accuracy-compares-scores"),
        (accuracy_compares_probabilities, "accuracy-compares-scores"),
        (accuracy_wrong_count, "accuracy-wrong-count"),
        (accuracy_per_image_pixels, "accuracy-wrong-count"),
        (accuracy_wrong_dim, "accuracy-wrong-dim"),
        (accuracy_returns_tensor, "returns-tensor"),
        (accuracy_threshold_on_logits, "threshold-on-logits"),
        (accuracy_broadcast, "channel-broadcast"),
        (accuracy_ground_truth, "target-as-prediction")]:
    register(lesson04.check_pixel_accuracy, _fn, _mistake)

for _fn in (dice_solution, dice_loop_solution, lesson04.reference_dice_score):
    register(lesson04.check_dice_score, _fn, None)
for _fn in (iou_solution, iou_from_dice, lesson04.reference_iou_score):
    register(lesson04.check_iou_score, _fn, None)
for _kind in ("dice", "iou"):
    register(CHECKS[_kind], stub(EXERCISE[_kind]), NOT_DONE, f"stub_{_kind}")
    for _make, _mistake, _ in MISTAKES:
        register(CHECKS[_kind], _make(_kind), _mistake.format(kind=_kind),
                 f"{_make.__name__}_{_kind}")
register(lesson04.check_dice_score, dice_without_2, "dice-no-factor-2")
register(lesson04.check_dice_score, dice_gives_iou, "dice-is-iou")
register(lesson04.check_iou_score, iou_gives_dice, "iou-is-dice")
register(lesson04.check_iou_score, iou_union_double_counts, "iou-union-double-counts")
