"""Checks of lesson 04 (metrics): pixel accuracy, Dice and IoU of a binary model.

The three exercises take what a binary U-Net gives and what the loader gives::

    logits: (N, 1, H, W) float32, the model's raw output (logit > 0 <=> probability > 0.5)
    target: (N, H, W) int64 of 0/1, the ground-truth masks

and return one Python ``float`` for the batch. ``dice_score`` and ``iou_score`` take a
``threshold`` on the *probability* ``sigmoid(logit)``, score each image on its own and
average the images (an image whose target and prediction are both empty scores 1.0).

Each check runs the student's function on a few small fixed batches (2 images of 3 x 4
pixels), compares with the right value and, when it differs, with the values that the
catalogued mistakes give, so the hint can name the mistake. Mistake ids:

================================  ==========================================================
``accuracy-integer-division``     ``correct // total`` (or int arithmetic): 0 for anything < 1
``accuracy-compares-scores``      logits or probabilities compared with 0/1 labels: ~never equal
``accuracy-wrong-count``          divided by the wrong number (images, pixels of one image)
``accuracy-wrong-dim``            averaged over some dims only: a tensor of many values
``channel-broadcast``             (N, 1, H, W) against (N, H, W) broadcasts to (N, N, H, W)
``squeeze-batch``                 ``squeeze()`` also drops the batch axis of a batch of one
``threshold-on-logits``           the 0.5 (or ``threshold``) cut applied to logits, not probabilities
``threshold-ignored``             the ``threshold`` argument is not used
``target-as-prediction``          ground truth scored against itself (the sea/sky project's mix-up)
``sigmoid-on-target``             the sigmoid applied to the 0/1 target as well as the logits
``dice-on-logits`` / ``iou-on-logits``            the formula fed raw logits
``dice-without-threshold`` / ``iou-without-threshold``  fed probabilities (a soft score)
``dice-pooled`` / ``iou-pooled``  one score for all pixels of the batch, not per image
``dice-no-factor-2``              |P and T| / (|P| + |T|): the 2 is missing
``dice-is-iou``                   the IoU formula in ``dice_score``
``dice-smoothing`` / ``iou-smoothing``   a smoothing constant (+1) changes small masks
``iou-is-dice``                   the Dice formula in ``iou_score``
``iou-union-double-counts``       union = |P| + |T|, counting the intersection twice
``empty-nan`` / ``empty-zero`` / ``empty-skipped``  both-empty image: NaN, 0, or left out
``empty-target-one``              an empty target scored 1 although something was predicted
``returns-tensor``                a 1-element tensor instead of a Python float
``per-image-tensor``              the per-image scores returned, not their mean
================================  ==========================================================

``reference_pixel_accuracy``, ``reference_dice_score`` and ``reference_iou_score`` are
segkit's versions with the exercises' signatures (for ``checks.use``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from segkit import metrics
from segkit.checks.core import check, close, expect_type, fail, show

__all__ = [
    "check_pixel_accuracy",
    "check_dice_score",
    "check_iou_score",
    "reference_pixel_accuracy",
    "reference_dice_score",
    "reference_iou_score",
]


# --------------------------------------------------------------------------- references


def reference_pixel_accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """segkit's pixel accuracy with the exercise's signature: logits (N, 1, H, W), target (N, H, W)."""
    return metrics.pixel_accuracy(logits, target)


def reference_dice_score(logits: torch.Tensor, target: torch.Tensor,
                         threshold: float = 0.5) -> float:
    """segkit's per-image Dice (both-empty = 1) with the exercise's signature."""
    return metrics.dice_score(logits, target, threshold)


def reference_iou_score(logits: torch.Tensor, target: torch.Tensor,
                        threshold: float = 0.5) -> float:
    """segkit's per-image IoU (both-empty = 1) with the exercise's signature."""
    return metrics.iou_score(logits, target, threshold)


# --------------------------------------------------------------------------- fixed batches
# No logit is a whole number, so a logit never equals a 0/1 label by chance; some positive
# logits lie below 0.5 and some negative ones above logit(0.3) = -0.847, so cutting the
# logits at 0.5 or ignoring the threshold changes the answer.

_IMAGE_BIG = (  # a large object (8 pixels); the prediction misses 2 of them
    [[3.1, 2.5, 0.3, -2.2],
     [2.2, 0.4, -0.5, -3.1],
     [1.5, -0.6, -0.4, -0.2]],
    [[1, 1, 1, 0],
     [1, 1, 1, 0],
     [1, 1, 0, 0]],
)
_IMAGE_SMALL = (  # a small object (2 pixels); the prediction finds 1 and adds 1 wrong pixel
    [[-3.1, -2.5, -2.2, -3.1],
     [-2.2, 1.1, -0.3, -2.5],
     [-2.5, 0.1, -3.1, -2.2]],
    [[0, 0, 0, 0],
     [0, 1, 1, 0],
     [0, 0, 0, 0]],
)
_IMAGE_BOTH_EMPTY = (  # nothing to find, nothing predicted
    [[-3.1, -2.5, -2.2, -3.1],
     [-2.2, -1.7, -2.3, -2.5],
     [-2.5, -1.9, -3.1, -2.2]],
    [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
)
_IMAGE_EMPTY_TARGET = (  # nothing to find, but 2 pixels predicted
    [[-3.1, -2.5, -2.2, -3.1],
     [-2.2, 1.7, 2.3, -2.5],
     [-2.5, -1.9, -3.1, -2.2]],
    [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
)
_IMAGE_ALL_RIGHT = (  # every pixel predicted right (pixel accuracy 1)
    [[2.1, 1.3, -0.7, -2.2],
     [1.6, 0.8, -1.4, -2.6],
     [-1.2, -0.9, -3.1, -2.2]],
    [[1, 1, 0, 0],
     [1, 1, 0, 0],
     [0, 0, 0, 0]],
)


def _batch(*images) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh (logits (N, 1, 3, 4) float32, target (N, 3, 4) int64) for the given images."""
    logits = torch.tensor([image[0] for image in images], dtype=torch.float32).unsqueeze(1)
    target = torch.tensor([image[1] for image in images], dtype=torch.int64)
    return logits, target


# --------------------------------------------------------------------------- what mistakes give


def _labels(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N, 1, H, W) logits -> (N, H, W) float 0/1: sigmoid(logit) > threshold."""
    return (torch.sigmoid(logits[:, 0].double()) > threshold).double()


def _overlap(pred: torch.Tensor, target: torch.Tensor, kind: str, *, pooled: bool = False,
             empty: str = "one", smooth: float = 0.0, variant: str = "right") -> float:
    """Dice/IoU of float (N, H, W) ``pred`` (0/1 or soft) against ``target``, many ways."""
    t = target.double()
    dims = (0, 1, 2) if pooled else (1, 2)
    inter, size_p, size_t = (pred * t).sum(dims), pred.sum(dims), t.sum(dims)
    if variant == "no-factor-2" or variant == "double-union":
        num, den = inter, size_p + size_t
    elif (kind == "dice") != (variant == "swapped"):  # Dice, or IoU's formula swapped for Dice's
        num, den = 2 * inter, size_p + size_t
    else:
        num, den = inter, size_p + size_t - inter
    scores = torch.atleast_1d((num + smooth) / (den + smooth))
    both_empty = torch.atleast_1d((size_p + size_t) == 0)
    if smooth == 0.0:
        fill = {"one": 1.0, "zero": 0.0, "nan": math.nan, "skip": math.nan}[empty]
        scores = torch.where(both_empty, torch.full_like(scores, fill), scores)
    if empty == "skip":
        return float(scores.nanmean())
    return float(scores.mean())


def _same(a: float, b: float, tol: float = 1e-5) -> bool:
    return close(a, b, abs_tol=tol)


def _number(value, name: str, *, many_mistake: str, **fields) -> tuple[float, bool, bool]:
    """(the value as a float, it was a tensor/array, it was integer-typed)."""
    if value is None:
        fail(f"{name} returned None", mistake="returns-none",
             hint="your function computes the value but does not `return` it.")
    shape = getattr(value, "shape", None)
    if shape is not None:
        size = math.prod(int(n) for n in shape)
        if size != 1:
            fail(f"{name} should be one number for the whole batch, but it is {show(value)}",
                 mistake=many_mistake, **fields)
        dtype = getattr(value, "dtype", None)
        is_int = dtype is not None and not (getattr(dtype, "is_floating_point", False)
                                            or "float" in str(dtype))
        number = value.item() if hasattr(value, "item") else float(value)
        return float(number), True, is_int
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{name} should be a number (a Python float), but it is {show(value)}",
             mistake="returns-tensor" if hasattr(value, "detach") else None,
             hint="return a Python float, e.g. `float(correct) / total` or `score.item()`.")
    return float(value), False, isinstance(value, int)


def _expect_float(value, name: str) -> None:
    expect_type(value, float, name=name, mistake="returns-tensor")


# --------------------------------------------------------------------------- pixel accuracy


@check("pixel_accuracy", "pixel_accuracy on a batch of 2 images")
def check_pixel_accuracy(pixel_accuracy: Callable) -> str:
    """``pixel_accuracy(logits, target)`` -> float: the fraction of pixels predicted right."""
    logits, target = _batch(_IMAGE_BIG, _IMAGE_SMALL)
    name = "pixel_accuracy(logits, target)"
    raw = pixel_accuracy(logits.clone(), target.clone())
    value, _, is_int = _number(raw, name, many_mistake="accuracy-wrong-dim")
    right = float((_labels(logits) == target).double().mean())
    if _same(value, right, 1e-6):
        _expect_float(raw, name)
        return f"{value:.4f} on 2 images of 3 x 4 pixels"
    expected = f"expected {right:.4f}"
    # The broadcast comes first: with `.sum() / target.numel()` it also gives values > 1.
    broadcast = ((logits.double() > 0).double() == target.double()).double()
    n_images = logits.shape[0]
    if any(_same(value, v) for v in (float(broadcast.mean()),
                                     float(broadcast.sum()) / target.numel(),
                                     float(broadcast.mean()) * n_images)):
        fail(f"{name} is {show(value)}, {expected}", mistake="channel-broadcast")
    if value == 0.0:
        _fail_accuracy_zero(pixel_accuracy, name, right, is_int)
    if value > 1.0:
        fail(f"{name} is {show(value)}, but an accuracy lies between 0 and 1 ({expected})",
             mistake="accuracy-wrong-count")
    if _same(value, 1.0):
        fail(f"{name} is 1.0, {expected}", mistake="target-as-prediction")
    half = float(((logits[:, 0].double() > 0.5).double() == target).double().mean())
    if _same(value, half):
        fail(f"{name} is {show(value)}, {expected}", mistake="threshold-on-logits",
             threshold="0.5")
    fail(f"{name} is {show(value)}, {expected} ({round(right * 24)} of 24 pixels right)",
         mistake=None,
         hint="predicted labels are `logits[:, 0] > 0`; accuracy = (number of pixels where "
              "the label equals the target) / (number of pixels).")


def _fail_accuracy_zero(pixel_accuracy: Callable, name: str, right: float,
                        is_int: bool) -> None:
    """An accuracy of 0: integer division, or scores compared with labels?"""
    all_right = pixel_accuracy(*_batch(_IMAGE_ALL_RIGHT, _IMAGE_ALL_RIGHT))
    all_right = float(all_right.item() if hasattr(all_right, "item") else all_right)
    if is_int or all_right == 1.0:
        fail(f"{name} is 0 although {round(right * 24)} of 24 pixels are right "
             f"({right:.4f}); with every pixel right it gives {show(all_right)}",
             mistake="accuracy-integer-division")
    fail(f"{name} is 0 although {round(right * 24)} of 24 pixels are right "
         f"({right:.4f}); even with every pixel right it gives {show(all_right)}",
         mistake="accuracy-compares-scores")


# --------------------------------------------------------------------------- Dice and IoU


_TITLE = {"dice": "Dice", "iou": "IoU"}
_FORMULA = {"dice": "Dice = 2|P ∩ T| / (|P| + |T|)", "iou": "IoU = |P ∩ T| / |P ∪ T|"}


def _overlap_mistakes(kind: str, logits: torch.Tensor, target: torch.Tensor,
                      threshold: float) -> list[tuple[float, str]]:
    """(value, mistake id) of each catalogued mistake on this batch, first match wins."""
    probs = torch.sigmoid(logits[:, 0].double())
    labels = _labels(logits, threshold)
    raw = logits[:, 0].double()
    soft_target = torch.sigmoid(target.double())  # 0 -> 0.5, 1 -> 0.73: not labels any more
    mistakes = [(1.0, "target-as-prediction")]
    for pooled in (False, True):
        mistakes += [(_overlap(raw, target, kind, pooled=pooled), f"{kind}-on-logits"),
                     (_overlap(probs, target, kind, pooled=pooled), f"{kind}-without-threshold")]
    mistakes += [
        (_overlap(labels, soft_target, kind), "sigmoid-on-target"),
        (_overlap(probs, soft_target, kind), "sigmoid-on-target"),
        (_overlap((raw > threshold).double(), target, kind), "threshold-on-logits"),
        (_overlap(labels, target, kind, pooled=True), f"{kind}-pooled"),
        (_overlap(labels, target, kind, smooth=1.0), f"{kind}-smoothing"),
    ]
    if kind == "dice":
        return mistakes + [
            (_overlap(labels, target, kind, variant="no-factor-2"), "dice-no-factor-2"),
            (_overlap(labels, target, kind, variant="swapped"), "dice-is-iou")]
    return mistakes + [
        (_overlap(labels, target, kind, variant="swapped"), "iou-is-dice"),
        (_overlap(labels, target, kind, variant="double-union"), "iou-union-double-counts")]


def _call(fn: Callable, images: tuple, threshold: float | None = None):
    """The student's ``fn`` on a fresh batch of ``images`` (threshold left out when None)."""
    logits, target = _batch(*images)
    if threshold is None:
        return fn(logits, target)
    return fn(logits, target, threshold=threshold)


def _score(kind: str, raw, name: str) -> float:
    """The student's Dice/IoU as a float (one number for the batch, or a failure)."""
    return _number(raw, name, many_mistake="per-image-tensor", title=_TITLE[kind])[0]


def _judge_overlap(kind: str, fn: Callable, exercise: str) -> str:
    """Five small batches, each aimed at some of the catalogued mistakes."""
    name = f"{exercise}(logits, target)"
    value = _overlap_two_objects(kind, fn, name)
    _overlap_batch_of_one(kind, fn, f"{exercise} on a batch of one image")
    _overlap_threshold(kind, fn, f"{exercise}(logits, target, threshold=0.3)")
    _overlap_empty(kind, fn, name)
    return f"{_TITLE[kind]} {value:.4f} on a big and a small object"


def _overlap_two_objects(kind: str, fn: Callable, name: str) -> float:
    """A big and a small object, threshold 0.5: the value, or which formula went wrong."""
    logits, target = _batch(_IMAGE_BIG, _IMAGE_SMALL)
    raw = _call(fn, (_IMAGE_BIG, _IMAGE_SMALL))
    value = _score(kind, raw, name)
    right = _overlap(_labels(logits), target, kind)
    if _same(value, right):
        _expect_float(raw, name)
        return value
    for wrong, mistake in _overlap_mistakes(kind, logits, target, 0.5):
        if _same(value, wrong):
            fail(f"{name} is {show(value)} on a batch of a big and a small object, "
                 f"expected {right:.4f}", mistake=mistake, title=_TITLE[kind],
                 formula=_FORMULA[kind], threshold="0.5")
    if _each_image_alone_right(kind, fn, name):
        fail(f"{name} is {show(value)} on a batch of 2 images, expected {right:.4f}, "
             "although each image alone gets its right score", mistake="channel-broadcast",
             hint="the images of the batch get mixed: (N, 1, H, W) logits against an "
                  "(N, H, W) target broadcast to (N, N, H, W). Drop the channel axis "
                  "(`logits[:, 0]` or `logits.squeeze(1)`) and sum over (H, W) only.")
    fail(f"{name} is {show(value)}, expected {right:.4f}", mistake=None,
         hint=f"{_FORMULA[kind]} of each image with P = sigmoid(logits) > threshold, "
              "then the mean over the images.")


def _each_image_alone_right(kind: str, fn: Callable, name: str) -> bool:
    """Does ``fn`` score each image right on its own (so it is the batch that goes wrong)?"""
    try:
        return all(_same(_score(kind, _call(fn, (image,)), name),
                         _overlap(_labels(_batch(image)[0]), _batch(image)[1], kind))
                   for image in (_IMAGE_BIG, _IMAGE_SMALL))
    except Exception:  # noqa: BLE001 - a crash on one image is no answer to this question
        return False


def _overlap_batch_of_one(kind: str, fn: Callable, name: str) -> None:
    """A batch of one image: ``squeeze()`` would also drop the batch axis."""
    logits, target = _batch(_IMAGE_BIG)
    right = _overlap(_labels(logits), target, kind)
    try:
        single = _score(kind, _call(fn, (_IMAGE_BIG,)), name)
    except Exception as exc:  # noqa: BLE001 - say which case broke, and the likely cause
        fail(f"{name} raised {type(exc).__name__}: {exc}", mistake="squeeze-batch")
    if not _same(single, right):
        fail(f"{name} is {show(single)}, expected {right:.4f}", mistake="squeeze-batch")


def _overlap_threshold(kind: str, fn: Callable, name: str) -> None:
    """The ``threshold`` argument, at 0.3: used, and on probabilities?"""
    logits, target = _batch(_IMAGE_BIG, _IMAGE_SMALL)
    value = _score(kind, _call(fn, (_IMAGE_BIG, _IMAGE_SMALL), threshold=0.3), name)
    right = _overlap(_labels(logits, 0.3), target, kind)
    if _same(value, right):
        return
    if _same(value, _overlap(_labels(logits), target, kind)):
        fail(f"{name} is {show(value)}, the same as with 0.5; expected {right:.4f}",
             mistake="threshold-ignored")
    if _same(value, _overlap((logits[:, 0].double() > 0.3).double(), target, kind)):
        fail(f"{name} is {show(value)}, expected {right:.4f}", mistake="threshold-on-logits",
             threshold="0.3")
    fail(f"{name} is {show(value)}, expected {right:.4f}", mistake=None,
         hint="P = torch.sigmoid(logits) > threshold.")


def _overlap_empty(kind: str, fn: Callable, name: str) -> None:
    """An image with nothing to find: 1.0 when nothing is predicted, else 0."""
    title = _TITLE[kind]
    logits, target = _batch(_IMAGE_BIG)
    first = _overlap(_labels(logits), target, kind)
    both = _score(kind, _call(fn, (_IMAGE_BIG, _IMAGE_BOTH_EMPTY)), name)
    if not _same(both, (first + 1.0) / 2):
        where = (f"on a batch whose 2nd image has an empty target and an empty prediction, "
                 f"{name} is {show(both)}, expected {(first + 1.0) / 2:.4f} "
                 f"(({first:.4f} + 1) / 2)")
        if math.isnan(both):
            fail(where, mistake="empty-nan", title=title)
        if _same(both, first / 2):
            fail(where, mistake="empty-zero", title=title)
        if _same(both, first):
            fail(where, mistake="empty-skipped")
        fail(where, mistake=None, hint=f"an image with empty P and T has {title} 1.0.")
    empty_target = _score(kind, _call(fn, (_IMAGE_BIG, _IMAGE_EMPTY_TARGET)), name)
    if not _same(empty_target, first / 2):
        where = (f"on a batch whose 2nd image has an empty target but 2 predicted pixels, "
                 f"{name} is {show(empty_target)}, expected {first / 2:.4f} "
                 f"(({first:.4f} + 0) / 2)")
        if _same(empty_target, (first + 1.0) / 2):
            fail(where, mistake="empty-target-one", title=title)
        fail(where, mistake=None,
             hint="an empty target with a non-empty prediction scores 0 (no overlap).")


@check("dice_score", "dice_score on 5 small batches")
def check_dice_score(dice_score: Callable) -> str:
    """``dice_score(logits, target, threshold=0.5)`` -> float: mean per-image Dice."""
    return _judge_overlap("dice", dice_score, "dice_score")


@check("iou_score", "iou_score on 5 small batches")
def check_iou_score(iou_score: Callable) -> str:
    """``iou_score(logits, target, threshold=0.5)`` -> float: mean per-image IoU."""
    return _judge_overlap("iou", iou_score, "iou_score")
