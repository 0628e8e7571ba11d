"""Segmentation metrics: pixel accuracy, Dice, IoU, confusion matrices (lessons 04 and 05).

Every function returns a Python ``float`` (or a float64 tensor per image / per
class), computed with true division, so an accuracy never prints as ``0.00``
because of integer arithmetic.

Binary masks
------------
``pred`` may be

- labels: an integer or bool tensor of 0/1, (N, H, W) or (N, 1, H, W);
- probabilities: float in [0, 1], (N, H, W) or (N, 1, H, W), cut at ``threshold`` (0.5);
- logits: float, (N, H, W) or (N, 1, H, W), cut at 0 (the same as sigmoid(logit) > 0.5);
- two-channel scores: float (N, 2, H, W) logits or probabilities, argmax over dim 1.

``binarize`` turns all of these into (N, H, W) int64 labels; the Dice and IoU
functions call it first, so a Dice is never computed on raw logits (a
catalogued mistake: the "Dice" of raw logits is not a Dice and can exceed 1).
With ``from_logits=None`` a float single-channel ``pred`` is taken to be
logits when any value lies outside [0, 1], else probabilities. Logits that all
happen to lie in [0, 1] would be misread as probabilities, so pass
``from_logits=True`` when you know what you have.

``target`` is (N, H, W) or (N, 1, H, W) of 0/1 values (any dtype). Masks stored
as 0/255 are refused with a hint: divide them by 255 (or use segkit.masks).

Edge cases of Dice and IoU (|P| predicted pixels, |T| target pixels):

- both empty (|P| = |T| = 0): the prediction is perfect, so 1.0 by default;
  ``empty="zero"`` gives 0.0 and ``empty="nan"`` gives NaN. With
  ``reduction="per_image"`` and ``empty="nan"`` such images are left out of the
  mean (NaN-mean); if every image is both-empty the result is NaN.
  ``empty`` decides this case whatever ``eps`` is.
- empty target, non-empty prediction: 0.0 (every predicted pixel is wrong).
- non-empty target, empty prediction: 0.0.
- ``eps`` (default 0) is added to numerator and denominator of every other image
  (smoothing); keep it 0 to get the exact Dice.

``reduction="per_image"`` (the default) is the mean over images of each image's
score: every image counts the same, small objects as much as big ones.
``reduction="pooled"`` counts all pixels of the batch as one big image: large
objects dominate. Pooling when per-image was meant is a catalogued mistake; the
two differ whenever objects differ in size.

``pixel_accuracy`` ignores pixels whose target equals ``ignore_index`` (when
given). If no pixel is left the accuracy is NaN.

Multiclass masks
----------------
``confusion_matrix(pred, target, num_classes)`` counts pixels: ``cm[t, p]`` is the
number of pixels of **true class t (row)** that were **predicted as p (column)**.
Row sums are the target's class sizes, column sums the prediction's. Pixels whose
target is ``ignore_index`` (255, the VOC object borders) are not counted at all.
``pred`` may be labels (N, H, W) or scores (N, C, H, W) (argmax over dim 1).

From the matrix: ``iou_per_class`` (TP / (TP + FP + FN)), ``dice_per_class``
(2TP / (2TP + FP + FN)), ``class_accuracy`` (TP / row sum, the recall),
``pixel_accuracy_from_cm`` (trace / total) and ``mean_iou``.
A class absent from both target and prediction has IoU and Dice NaN (0/0: there is
nothing to score), and ``mean_iou`` averages only the classes with a defined IoU
(NaN-mean). A class absent from the target but predicted somewhere has IoU 0.

"Ignoring the background" means two different things:

1. ``mean_iou(cm, include_background=False)``: the background pixels are still
   scored (they are in the matrix and make false positives/negatives of the other
   classes), but class 0's own IoU is dropped from the average, because a large,
   easy background pushes mIoU up and hides poor objects.
2. ``ignore_index=255``: pixels labelled 255 are not counted at all, for any class;
   whatever the model predicts there does not matter. This is for pixels whose
   label is unknown (object borders), not for the background.

Differences from torchmetrics 1.x (each one is tested in tests/test_metrics.py):

- ``MulticlassJaccardIndex(average=None)`` gives 0.0 (its ``zero_division``) to a class
  absent from target and prediction; segkit's ``iou_per_class`` gives NaN. Their
  ``average="macro"`` skips such classes, like ``mean_iou``, so the means agree.
- ``BinaryJaccardIndex`` of a both-empty batch is 0.0; segkit's IoU is 1.0 (``empty="one"``).
- ``torchmetrics.segmentation.DiceScore`` (samplewise) gives NaN to a both-empty image
  and leaves it out of the mean: that is segkit's ``empty="nan"``; segkit's default
  ``empty="one"`` counts it as a perfect 1.0.
- ``BinaryAccuracy(ignore_index=...)`` of pixels that are all ignored is 0.0; segkit's
  ``pixel_accuracy`` is NaN (nothing was scored).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from segkit.errors import DataError

Reduction = Literal["per_image", "pooled"]
Empty = Literal["one", "zero", "nan"]
_EMPTY_VALUES = {"one": 1.0, "zero": 0.0, "nan": float("nan")}


# ---------------------------------------------------------------- binary inputs

def _drop_channel(x: torch.Tensor, what: str) -> torch.Tensor:
    """(N, 1, H, W) -> (N, H, W); (N, H, W) unchanged; anything else is an error."""
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    hint = ""
    if x.ndim == 2:
        hint = " A single (H, W) mask? Add the batch axis with .unsqueeze(0)."
    elif x.ndim == 4:
        hint = (f" It has {x.shape[1]} channels: for multiclass scores use "
                "confusion_matrix(pred, target, num_classes).")
    raise DataError(f"{what} should be (N, H, W) or (N, 1, H, W) but has shape {tuple(x.shape)}.{hint}")


def _binary_target(target: torch.Tensor) -> torch.Tensor:
    """Target (N, H, W) or (N, 1, H, W) of 0/1 -> (N, H, W) int64."""
    target = _drop_channel(torch.as_tensor(target), "target")
    if target.numel() and not bool(((target == 0) | (target == 1)).all()):
        values = torch.unique(target)[:8].tolist()
        hint = ""
        if target.max() == 255:
            hint = " The mask looks stored as 0/255: divide it by 255 (or use segkit.masks)."
        raise DataError(f"a binary target must hold only 0 and 1 but has values {values}.{hint}")
    return target.long()


def binarize(pred: torch.Tensor, *, from_logits: bool | None = None,
             threshold: float = 0.5) -> torch.Tensor:
    """Binary predictions -> (N, H, W) int64 labels 0/1.

    pred: (N, H, W) or (N, 1, H, W) labels (int/bool), probabilities or logits (float),
          or (N, 2, H, W) two-class scores (argmax over dim 1).
    from_logits: True for logits, False for probabilities, None to guess: logits if any
          value is outside [0, 1] (see the module docstring for the caveat).
    threshold: the probability above which a pixel is foreground; for logits the cut
          is the logit of ``threshold`` (0 for 0.5), i.e. sigmoid(pred) > threshold.
    """
    pred = torch.as_tensor(pred)
    if pred.ndim == 4 and pred.shape[1] == 2:
        return pred.argmax(dim=1)
    pred = _drop_channel(pred, "pred")
    if not pred.is_floating_point():
        if pred.numel() and not bool(((pred == 0) | (pred == 1)).all()):
            raise DataError(f"integer predictions must be labels 0/1 but have values "
                            f"{torch.unique(pred)[:8].tolist()}")
        return pred.long()
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is a probability strictly between 0 and 1, got {threshold}")
    if from_logits is None:
        from_logits = bool(((pred < 0) | (pred > 1)).any())
    if from_logits:
        cut = math.log(threshold / (1.0 - threshold))  # logit(0.5) == 0
        return (pred > cut).long()
    return (pred > threshold).long()


def _binary_pair(pred: torch.Tensor, target: torch.Tensor, from_logits: bool | None,
                 threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    p = binarize(pred, from_logits=from_logits, threshold=threshold)
    t = _binary_target(target).to(p.device)
    if p.shape != t.shape:
        raise DataError(f"pred and target cover different pixels: pred gives {tuple(p.shape)} "
                        f"(from {tuple(pred.shape)}) but target gives {tuple(t.shape)} "
                        f"(from {tuple(target.shape)}).")
    return p, t


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# ------------------------------------------------------------ pixel accuracy

def _as_labels(x: torch.Tensor, what: str) -> torch.Tensor:
    """Integer labels, or float tensors that hold whole numbers; refuse logits/probabilities."""
    x = torch.as_tensor(x)
    if x.is_floating_point():
        if x.numel() and not bool((x == x.round()).all()):
            raise DataError(
                f"{what} must be class labels (whole numbers) but is a float tensor with "
                "fractional values: logits or probabilities? Compare labels with labels: "
                "binarize(logits) for one output channel, logits.argmax(1) for several.")
        return x.long()
    return x.long()


def pixel_accuracy(pred_labels: torch.Tensor, target: torch.Tensor,
                   ignore_index: int | None = None) -> float:
    """Fraction of pixels whose predicted label equals the target label.

    pred_labels: (N, H, W) or (N, 1, H, W) labels (integers, binary or multiclass).
    target: the same shape (a channel axis of 1 on either side is dropped).
    ignore_index: target value of pixels not to count (e.g. 255).
    Returns a float in [0, 1]; NaN if no pixel is left to count.
    """
    pred = _as_labels(pred_labels, "pred_labels")
    target = _as_labels(target, "target")
    if pred.ndim == target.ndim + 1 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if target.ndim == pred.ndim + 1 and target.shape[1] == 1:
        target = target[:, 0]
    if pred.shape != target.shape:
        raise DataError(f"pred_labels has shape {tuple(pred.shape)} but target has "
                        f"{tuple(target.shape)}; for scores (N, C, H, W) take .argmax(1) first.")
    target = target.to(pred.device)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    counted = int(valid.sum())
    if counted == 0:
        return float("nan")
    correct = int(((pred == target) & valid).sum())
    return correct / counted  # Python int / int is true division: never 0 for 3 of 4 right


# ------------------------------------------------------------ Dice and IoU

def _counts(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: |P and T|, |P|, |T| as float64 tensors (N,)."""
    inter = (p * t).flatten(1).sum(1).double()
    return inter, p.flatten(1).sum(1).double(), t.flatten(1).sum(1).double()


def _score(inter: torch.Tensor, size_p: torch.Tensor, size_t: torch.Tensor, kind: str,
           empty: str, eps: float) -> torch.Tensor:
    if kind == "dice":
        num, den = 2 * inter, size_p + size_t
    else:
        num, den = inter, size_p + size_t - inter
    both_empty = (size_p + size_t) == 0
    score = (num + eps) / (den + eps)  # 0/0 = NaN for both-empty images, replaced next
    return torch.where(both_empty, torch.full_like(score, _EMPTY_VALUES[empty]), score)


def dice_per_image(pred: torch.Tensor, target: torch.Tensor, *, empty: Empty = "one",
                   eps: float = 0.0, from_logits: bool | None = None,
                   threshold: float = 0.5) -> torch.Tensor:
    """Dice = 2|P and T| / (|P| + |T|) of each image: float64 tensor (N,).

    pred: labels, probabilities or logits, binarized with ``binarize``.
    target: (N, H, W) or (N, 1, H, W) of 0/1. See the module docstring for ``empty``/``eps``.
    """
    _check_choice("empty", empty, tuple(_EMPTY_VALUES))
    p, t = _binary_pair(pred, target, from_logits, threshold)
    return _score(*_counts(p, t), "dice", empty, eps)


def iou_per_image(pred: torch.Tensor, target: torch.Tensor, *, empty: Empty = "one",
                  eps: float = 0.0, from_logits: bool | None = None,
                  threshold: float = 0.5) -> torch.Tensor:
    """IoU = |P and T| / |P or T| of each image: float64 tensor (N,). Arguments as dice_per_image."""
    _check_choice("empty", empty, tuple(_EMPTY_VALUES))
    p, t = _binary_pair(pred, target, from_logits, threshold)
    return _score(*_counts(p, t), "iou", empty, eps)


def _reduced(kind: str, pred, target, reduction, empty, eps, from_logits, threshold) -> float:
    _check_choice("reduction", reduction, ("per_image", "pooled"))
    _check_choice("empty", empty, tuple(_EMPTY_VALUES))
    p, t = _binary_pair(pred, target, from_logits, threshold)
    inter, size_p, size_t = _counts(p, t)
    if reduction == "pooled":
        return float(_score(inter.sum(0, keepdim=True), size_p.sum(0, keepdim=True),
                            size_t.sum(0, keepdim=True), kind, empty, eps)[0])
    scores = _score(inter, size_p, size_t, kind, empty, eps)
    return float(scores.nanmean()) if scores.numel() else float("nan")


def dice_score(pred: torch.Tensor, target: torch.Tensor, *, reduction: Reduction = "per_image",
               empty: Empty = "one", eps: float = 0.0, from_logits: bool | None = None,
               threshold: float = 0.5) -> float:
    """Dice of binary masks as a float.

    pred: (N, H, W) / (N, 1, H, W) labels, probabilities or logits, or (N, 2, H, W) scores.
    target: (N, H, W) or (N, 1, H, W) of 0/1.
    reduction: "per_image" = mean of each image's Dice; "pooled" = one Dice of all pixels.
    empty: value of a both-empty image ("one" 1.0, "zero" 0.0, "nan" = leave it out).
    eps: smoothing added to numerator and denominator (0 = exact Dice).
    """
    return _reduced("dice", pred, target, reduction, empty, eps, from_logits, threshold)


def iou_score(pred: torch.Tensor, target: torch.Tensor, *, reduction: Reduction = "per_image",
              empty: Empty = "one", eps: float = 0.0, from_logits: bool | None = None,
              threshold: float = 0.5) -> float:
    """IoU (Jaccard) of binary masks as a float; arguments as ``dice_score``."""
    return _reduced("iou", pred, target, reduction, empty, eps, from_logits, threshold)


# ------------------------------------------------------------ multiclass

def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = 255) -> torch.Tensor:
    """Pixel counts (C, C) int64: ``cm[true_class, predicted_class]`` (rows = target).

    pred: (N, H, W) labels, or (N, C, H, W) scores (argmax over dim 1).
    target: (N, H, W) labels in [0, C), or ``ignore_index`` for pixels not to count.
    Add the matrices of several batches to get the matrix of a whole loader.
    """
    pred = torch.as_tensor(pred)
    target = _as_labels(target, "target")
    if pred.ndim == target.ndim + 1:
        if pred.shape[1] != num_classes:
            raise DataError(f"pred has {pred.shape[1]} channels (shape {tuple(pred.shape)}) "
                            f"but num_classes={num_classes}")
        pred = pred.argmax(dim=1)
    pred = _as_labels(pred, "pred")
    if pred.shape != target.shape:
        raise DataError(f"pred labels have shape {tuple(pred.shape)} but target has "
                        f"{tuple(target.shape)}")
    target = target.to(pred.device)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    t, p = target[valid], pred[valid]
    if t.numel() and (t.min() < 0 or t.max() >= num_classes):
        bad = torch.unique(t[(t < 0) | (t >= num_classes)])[:8].tolist()
        hint = (" 255 is the usual ignore label: pass ignore_index=255." if 255 in bad else
                " Masks stored as 0/255 must be converted to class indices first.")
        raise DataError(f"target has labels {bad} outside 0..{num_classes - 1} "
                        f"(num_classes={num_classes}, ignore_index={ignore_index}).{hint}")
    if p.numel() and (p.min() < 0 or p.max() >= num_classes):
        bad = torch.unique(p[(p < 0) | (p >= num_classes)])[:8].tolist()
        raise DataError(f"pred has labels {bad} outside 0..{num_classes - 1}")
    cm = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).cpu()


def _tp_fp_fn(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cm = torch.as_tensor(cm).double()
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise DataError(f"a confusion matrix is square (C, C) but this one has shape {tuple(cm.shape)}")
    tp = cm.diag()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, NaN where den == 0."""
    return torch.where(den > 0, num / den, torch.full_like(num, float("nan")))


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """IoU = TP / (TP + FP + FN) of each class: float64 (C,), NaN for classes absent from both."""
    tp, fp, fn = _tp_fp_fn(cm)
    return _safe_div(tp, tp + fp + fn)


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Dice = 2TP / (2TP + FP + FN) of each class: float64 (C,), NaN for classes absent from both."""
    tp, fp, fn = _tp_fp_fn(cm)
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Per-class accuracy (recall) = TP / pixels of that class: float64 (C,), NaN if the class is absent."""
    tp, _, fn = _tp_fp_fn(cm)
    return _safe_div(tp, tp + fn)


def pixel_accuracy_from_cm(cm: torch.Tensor) -> float:
    """Correct pixels / counted pixels = trace / sum; NaN for an empty matrix."""
    cm = torch.as_tensor(cm).double()
    total = float(cm.sum())
    return float(cm.trace()) / total if total > 0 else float("nan")


def mean_iou(cm: torch.Tensor, *, include_background: bool = True,
             background_index: int = 0) -> float:
    """Mean of the per-class IoUs that are defined (NaN-mean).

    include_background=False drops class ``background_index`` from the mean (its pixels
    still count as errors of the other classes). NaN if no class has a defined IoU.
    """
    iou = iou_per_class(cm)
    if not include_background:
        keep = torch.ones_like(iou, dtype=torch.bool)
        keep[background_index] = False
        iou = iou[keep]
    return float(iou.nanmean()) if iou.numel() else float("nan")
