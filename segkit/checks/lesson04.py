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
from segkit.checks.core import expect_type, fail, run_check, show

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
    return metrics.pixel_accuracy(metrics.binarize(logits, from_logits=True), target)


def reference_dice_score(logits: torch.Tensor, target: torch.Tensor,
                         threshold: float = 0.5) -> float:
    """segkit's per-image Dice (both-empty = 1) with the exercise's signature."""
    return metrics.dice_score(logits, target, from_logits=True, threshold=threshold)


def reference_iou_score(logits: torch.Tensor, target: torch.Tensor,
                        threshold: float = 0.5) -> float:
    """segkit's per-image IoU (both-empty = 1) with the exercise's signature."""
    return metrics.iou_score(logits, target, from_logits=True, threshold=threshold)


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
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def _number(value, name: str, *, many_mistake: str, many_hint: str) -> tuple[float, bool, bool]:
    """(the value as a float, it was a tensor/array, it was integer-typed)."""
    if value is None:
        fail(f"{name} returned None", mistake="returns-none",
             hint="your function computes the value but does not `return` it.")
    shape = getattr(value, "shape", None)
    if shape is not None:
        size = math.prod(int(n) for n in shape)
        if size != 1:
            fail(f"{name} should be one number for the whole batch, but it is {show(value)}",
                 mistake=many_mistake, hint=many_hint)
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
    expect_type(value, float, name=name, mistake="returns-tensor",
                hint="the value is right, but return a Python float: `.item()` turns a "
                     "1-element tensor into one (so it prints as a number and does not keep "
                     "a tensor, or its graph, alive).")


# --------------------------------------------------------------------------- pixel accuracy


def check_pixel_accuracy(pixel_accuracy: Callable) -> object:
    """``pixel_accuracy(logits, target)`` -> float: the fraction of pixels predicted right."""
    return run_check("pixel_accuracy", "pixel_accuracy on a batch of 2 images",
                     lambda: _judge_pixel_accuracy(pixel_accuracy))


def _judge_pixel_accuracy(pixel_accuracy: Callable) -> str:
    logits, target = _batch(_IMAGE_BIG, _IMAGE_SMALL)
    name = "pixel_accuracy(logits, target)"
    raw = pixel_accuracy(logits.clone(), target.clone())
    value, _, is_int = _number(
        raw, name, many_mistake="accuracy-wrong-dim",
        many_hint="you counted over some dims only (e.g. `.mean(dim=0)` or a sum over "
                  "(H, W) per image). Pixel accuracy is one number for the batch: count the "
                  "right pixels over every image and every pixel, and divide by the number "
                  "of all pixels, `target.numel()`.")
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
        fail(f"{name} is {show(value)}, {expected}", mistake="channel-broadcast",
             hint="the predictions are (N, 1, H, W) and the target (N, H, W): comparing them "
                  "broadcasts to (N, N, H, W) and compares every prediction with every "
                  "target. Drop the channel axis first: `logits[:, 0]` or `logits.squeeze(1)`.")
    if value == 0.0:
        _fail_accuracy_zero(pixel_accuracy, name, right, is_int)
    if value > 1.0:
        fail(f"{name} is {show(value)}, but an accuracy lies between 0 and 1 ({expected})",
             mistake="accuracy-wrong-count",
             hint="you divided by the wrong number: `len(target)` is the number of images "
                  "N and H * W the pixels of one image. Divide the right pixels by all the "
                  "pixels of the batch, `target.numel()` (N * H * W).")
    if _same(value, 1.0):
        fail(f"{name} is 1.0, {expected}", mistake="target-as-prediction",
             hint="the ground truth was compared with itself. The loader gives the "
                  "ground truth; the prediction comes from the model's logits (the sea/sky "
                  "project mixed the two up). Compare `(logits > 0)` with `target`.")
    half = float(((logits[:, 0].double() > 0.5).double() == target).double().mean())
    if _same(value, half):
        fail(f"{name} is {show(value)}, {expected}", mistake="threshold-on-logits",
             hint="you cut the logits at 0.5. A probability of 0.5 is a logit of 0: use "
                  "`logits > 0`, or `torch.sigmoid(logits) > 0.5`.")
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
             mistake="accuracy-integer-division",
             hint="integer division: `correct // total` (or an int tensor divided with "
                  "rounding) is 0 for anything below 100 %: this is the 'accuracy "
                  "always 0.00' of the sea/sky project. Divide with `/` and "
                  "return `float(correct) / total`.")
    fail(f"{name} is 0 although {round(right * 24)} of 24 pixels are right "
         f"({right:.4f}); even with every pixel right it gives {show(all_right)}",
         mistake="accuracy-compares-scores",
         hint="you compared the logits (or the probabilities) with the 0/1 labels: a "
              "logit like 2.5 is never equal to 1, so no pixel counts as right. Turn "
              "the logits into labels first, `(logits > 0)` (probability > 0.5), then "
              "compare labels with labels.")


# --------------------------------------------------------------------------- Dice and IoU


_TITLE = {"dice": "Dice", "iou": "IoU"}
_FORMULA = {"dice": "Dice = 2|P ∩ T| / (|P| + |T|)", "iou": "IoU = |P ∩ T| / |P ∪ T|"}


def _overlap_mistakes(kind: str, logits: torch.Tensor, target: torch.Tensor,
                      threshold: float) -> list[tuple[float, str, str]]:
    """(value, mistake id, hint) of each catalogued mistake on this batch, first match wins."""
    title = _TITLE[kind]
    probs = torch.sigmoid(logits[:, 0].double())
    labels = _labels(logits, threshold)
    raw = logits[:, 0].double()
    at_logits = (raw > threshold).double()
    mistakes = [
        (1.0, "target-as-prediction",
         "you scored the ground truth against itself, which is always perfect. The loader "
         "gives the ground truth; the prediction comes from the model's logits (the sea/sky "
         "project mixed the two up in its check code). Compare `sigmoid(logits) > threshold` with "
         "`target`."),
    ]
    for pooled in (False, True):
        mistakes += [
            (_overlap(raw, target, kind, pooled=pooled), f"{kind}-on-logits",
             f"you fed the raw logits into the {title} formula. Logits are not 0/1 labels (they "
             f"can be negative, and this '{title}' can even exceed 1): turn them into labels "
             "first, `torch.sigmoid(logits) > threshold`."),
            (_overlap(probs, target, kind, pooled=pooled), f"{kind}-without-threshold",
             f"you used the probabilities without a threshold: that is the 'soft' {title} of "
             "the loss, not the metric. Cut them first: `torch.sigmoid(logits) > threshold`."),
        ]
    soft_target = torch.sigmoid(target.double())  # 0 -> 0.5, 1 -> 0.73: not labels any more
    target_hint = (
        "you applied the sigmoid to the target too. The target is already 0/1 labels; "
        "the sigmoid turns them into 0.5 and 0.73, so even a perfect prediction loses. "
        "Only the logits go through `torch.sigmoid`: `P = torch.sigmoid(logits) > "
        f"threshold`, `T = target`, then {_FORMULA[kind]}.")
    mistakes += [
        (_overlap(labels, soft_target, kind), "sigmoid-on-target", target_hint),
        (_overlap(probs, soft_target, kind), "sigmoid-on-target", target_hint),
        (_overlap(at_logits, target, kind), "threshold-on-logits",
         f"you cut the logits at {threshold:g}, but the threshold is a probability. Apply "
         "`torch.sigmoid` first (`torch.sigmoid(logits) > threshold`); a probability of 0.5 "
         "is a logit of 0."),
        (_overlap(labels, target, kind, pooled=True), f"{kind}-pooled",
         f"you computed one {title} over all the pixels of the batch (pooled), but the exercise "
         f"asks for the {title} of each image, then their mean: sum over (H, W) only "
         "(`.sum(dim=(1, 2))`), so a small object counts as much as a big one."),
        (_overlap(labels, target, kind, smooth=1.0), f"{kind}-smoothing",
         "you added a smoothing constant (+1) to numerator and denominator. On small masks it "
         f"changes the {title} a lot; handle the both-empty case explicitly instead and keep "
         "the exact formula."),
    ]
    if kind == "dice":
        mistakes += [
            (_overlap(labels, target, kind, variant="no-factor-2"), "dice-no-factor-2",
             "Dice = 2|P ∩ T| / (|P| + |T|): the factor 2 is missing (without it a perfect "
             "prediction scores 0.5)."),
            (_overlap(labels, target, kind, variant="swapped"), "dice-is-iou",
             "that is the IoU, |P ∩ T| / (|P| + |T| - |P ∩ T|). Dice = 2|P ∩ T| / (|P| + |T|)."),
        ]
    else:
        mistakes += [
            (_overlap(labels, target, kind, variant="swapped"), "iou-is-dice",
             "that is the Dice score, 2|P ∩ T| / (|P| + |T|). IoU = |P ∩ T| / |P ∪ T| with "
             "|P ∪ T| = |P| + |T| - |P ∩ T|."),
            (_overlap(labels, target, kind, variant="double-union"), "iou-union-double-counts",
             "|P| + |T| counts the overlap twice, so it is not the union: "
             "|P ∪ T| = |P| + |T| - |P ∩ T| (or `(pred | target).sum()`)."),
        ]
    return mistakes


def _check_overlap(kind: str, fn: Callable, exercise: str) -> object:
    title = _TITLE[kind]

    def call(images, threshold: float | None = None):
        logits, target = _batch(*images)
        if threshold is None:
            return fn(logits, target)
        return fn(logits, target, threshold=threshold)

    def value_of(raw, name: str) -> float:
        return _number(raw, name, many_mistake="per-image-tensor",
                       many_hint=f"you returned the {title} of each image; return their mean "
                                 "as a Python float: `scores.mean().item()`.")[0]

    def body():
        # 1. a big and a small object, threshold 0.5
        logits, target = _batch(_IMAGE_BIG, _IMAGE_SMALL)
        name = f"{exercise}(logits, target)"
        raw = call([_IMAGE_BIG, _IMAGE_SMALL])
        value = value_of(raw, name)
        right = _overlap(_labels(logits), target, kind)
        if not _same(value, right):
            for wrong, mistake, hint in _overlap_mistakes(kind, logits, target, 0.5):
                if _same(value, wrong):
                    fail(f"{name} is {show(value)} on a batch of a big and a small object, "
                         f"expected {right:.4f}", mistake=mistake, hint=hint)
            try:  # the same function on each image alone: is it the batch that goes wrong?
                alone = [value_of(call([image]), name)
                         for image in (_IMAGE_BIG, _IMAGE_SMALL)]
                per_image_right = all(_same(a, _overlap(_labels(lo), t, kind))
                                      for a, (lo, t) in zip(alone, [_batch(_IMAGE_BIG),
                                                                    _batch(_IMAGE_SMALL)]))
            except Exception:
                per_image_right = False
            if per_image_right:
                fail(f"{name} is {show(value)} on a batch of 2 images, expected {right:.4f}, "
                     "although each image alone gets its right score",
                     mistake="channel-broadcast",
                     hint="the images of the batch get mixed: (N, 1, H, W) logits against an "
                          "(N, H, W) target broadcast to (N, N, H, W). Drop the channel axis "
                          "(`logits[:, 0]` or `logits.squeeze(1)`) and sum over (H, W) only.")
            fail(f"{name} is {show(value)}, expected {right:.4f}", mistake=None,
                 hint=f"{_FORMULA[kind]} of each image with P = sigmoid(logits) > threshold, "
                      "then the mean over the images.")
        _expect_float(raw, name)

        # 2. a batch of one image: squeeze() would also drop the batch axis
        one_name = f"{exercise} on a batch of one image"
        single_right = _overlap(_labels(_batch(_IMAGE_BIG)[0]), _batch(_IMAGE_BIG)[1], kind)
        squeeze_hint = ("with N = 1, `logits.squeeze()` drops the batch axis too (1, 1, H, W) -> "
                        "(H, W), and the sums per image go wrong. Drop only the channel axis: "
                        "`logits[:, 0]` or `logits.squeeze(1)`.")
        try:
            single = value_of(call([_IMAGE_BIG]), one_name)
        except Exception as exc:  # noqa: BLE001 - say which case broke, and the likely cause
            fail(f"{one_name} raised {type(exc).__name__}: {exc}", mistake="squeeze-batch",
                 hint=squeeze_hint)
        if not _same(single, single_right):
            fail(f"{one_name} is {show(single)}, expected {single_right:.4f}",
                 mistake="squeeze-batch", hint=squeeze_hint)

        # 3. the threshold argument
        lo, t = _batch(_IMAGE_BIG, _IMAGE_SMALL)
        at_03 = value_of(call([_IMAGE_BIG, _IMAGE_SMALL], threshold=0.3), name)
        right_03 = _overlap(_labels(lo, 0.3), t, kind)
        if not _same(at_03, right_03):
            name_03 = f"{exercise}(logits, target, threshold=0.3)"
            if _same(at_03, right):
                fail(f"{name_03} is {show(at_03)}, the same as with 0.5; expected "
                     f"{right_03:.4f}", mistake="threshold-ignored",
                     hint="use the `threshold` argument instead of a fixed 0.5 "
                          "(`torch.sigmoid(logits) > threshold`).")
            if _same(at_03, _overlap((lo[:, 0].double() > 0.3).double(), t, kind)):
                fail(f"{name_03} is {show(at_03)}, expected {right_03:.4f}",
                     mistake="threshold-on-logits",
                     hint="the threshold is a probability: compare `torch.sigmoid(logits)` with "
                          "it, not the logits.")
            fail(f"{name_03} is {show(at_03)}, expected {right_03:.4f}", mistake=None,
                 hint="P = torch.sigmoid(logits) > threshold.")

        # 4. an image with nothing to find and nothing predicted
        lo, t = _batch(_IMAGE_BIG, _IMAGE_BOTH_EMPTY)
        first = _overlap(_labels(lo[:1]), t[:1], kind)
        both = value_of(call([_IMAGE_BIG, _IMAGE_BOTH_EMPTY]), name)
        both_right = (first + 1.0) / 2
        if not _same(both, both_right):
            where = (f"on a batch whose 2nd image has an empty target and an empty prediction, "
                     f"{name} is {show(both)}, expected {both_right:.4f} "
                     f"(({first:.4f} + 1) / 2)")
            if math.isnan(both):
                fail(where, mistake="empty-nan",
                     hint=f"{title} of an image with empty P and T is 0/0 = NaN, and the NaN "
                          "spoils the mean. Nothing to find and nothing found is a perfect "
                          f"answer: give such an image {title} 1.0 "
                          "(e.g. `torch.where(denominator == 0, 1.0, score)`).")
            if _same(both, first / 2):
                fail(where, mistake="empty-zero",
                     hint="nothing to find and nothing found is a perfect answer: give an image "
                          f"with empty P and T the {title} 1.0, not 0.")
            if _same(both, first):
                fail(where, mistake="empty-skipped",
                     hint="you left the both-empty image out of the mean (torchmetrics does "
                          "that, with NaN). This exercise counts it as a perfect 1.0.")
            fail(where, mistake=None,
                 hint=f"an image with empty P and T has {title} 1.0.")

        # 5. an image with nothing to find, but something predicted
        empty_target = value_of(call([_IMAGE_BIG, _IMAGE_EMPTY_TARGET]), name)
        if not _same(empty_target, first / 2):
            where = (f"on a batch whose 2nd image has an empty target but 2 predicted pixels, "
                     f"{name} is {show(empty_target)}, expected {first / 2:.4f} "
                     f"(({first:.4f} + 0) / 2)")
            if _same(empty_target, (first + 1.0) / 2):
                fail(where, mistake="empty-target-one",
                     hint="only when the target AND the prediction are empty is the answer "
                          "perfect. Here every predicted pixel is a false positive, so the "
                          f"{title} is 0: test `|P| + |T| == 0`, not `|T| == 0`.")
            fail(where, mistake=None,
                 hint="an empty target with a non-empty prediction scores 0 (no overlap).")
        return f"{title} {value:.4f} on a big and a small object"

    return run_check(exercise, f"{exercise} on 5 small batches", body)


def check_dice_score(dice_score: Callable) -> object:
    """``dice_score(logits, target, threshold=0.5)`` -> float: mean per-image Dice."""
    return _check_overlap("dice", dice_score, "dice_score")


def check_iou_score(iou_score: Callable) -> object:
    """``iou_score(logits, target, threshold=0.5)`` -> float: mean per-image IoU."""
    return _check_overlap("iou", iou_score, "iou_score")
