"""Segmentation metrics: pixel accuracy, Dice, IoU (lesson 04), confusion matrices and
mean IoU (lesson 05).

Lesson 04's answers come first. ``pixel_accuracy``, ``dice_score`` and ``iou_score`` take
what a binary model gives and what the loader gives::

    logits: (N, 1, H, W) float32, the model's raw output (logit > 0 <=> probability > 0.5)
    target: (N, H, W) of 0/1 (int64 from the loader; (N, 1, H, W) and floats are fine too)

and return one Python ``float`` for the batch, computed with true division (an accuracy
never prints as ``0.00`` because of integer arithmetic). ``dice_score`` and ``iou_score``
score each image on its own and average the images.

They are built from pieces that answer the other questions a tool asks, one function each:

- ``binarize(logits, threshold)``: logits -> labels 0/1 (N, H, W) int64. The threshold is
  a probability (a pixel is foreground when ``sigmoid(logit) > threshold``), compared on
  the logit scale, so it is exact even where the sigmoid rounds to 0.5. Dice and IoU are
  computed on labels, never on raw logits (a catalogued mistake: the "Dice" of raw logits
  is not a Dice and can exceed 1).
- ``dice_per_image(pred, target)`` / ``iou_per_image``: labels -> one score per image,
  float64 (N,). Dice = 2|P and T| / (|P| + |T|), IoU = |P and T| / |P or T|, exact (no
  smoothing constant). An empty target with a non-empty prediction scores 0, and so does
  a missed object.
- ``both_empty(pred, target)``: which images have neither an object nor a prediction.
  Their Dice and IoU are 1.0 here: the prediction is perfect. Tools that disagree can
  leave them out (``scores[~both_empty(p, t)].mean()``: torchmetrics' ``DiceScore``
  gives them NaN and skips them) or count them as 0
  (``torch.where(both_empty(p, t), 0.0, scores)``: torchmetrics' ``BinaryJaccardIndex``).
- ``dice_pooled(pred, target)`` / ``iou_pooled``: one score of all pixels of the batch, as
  if it were one big image: large objects dominate. Pooling where the per-image mean was
  meant is a catalogued mistake; the two differ whenever objects differ in size.
- :class:`RunningScores`: the sums behind the scores of a whole loader, added batch by
  batch (:func:`segkit.training.validate`), with the pixels labelled 255 left out.

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
- ``BinaryJaccardIndex`` of a both-empty batch is 0.0; segkit's IoU is 1.0.
- ``torchmetrics.segmentation.DiceScore`` (samplewise) gives NaN to a both-empty image
  and leaves it out of the mean; segkit counts it as a perfect 1.0 (see ``both_empty``).
- ``BinaryAccuracy(ignore_index=...)`` of pixels that are all ignored is 0.0; segkit's
  accuracy is NaN (nothing was scored).
"""

from __future__ import annotations

import math

import torch

from segkit.errors import DataError


# ---------------------------------------------------------------- lesson 04's answers

def pixel_accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of pixels predicted right.

    Defined in lesson 04. logits: (N, 1, H, W) float32, target: (N, H, W) of 0/1 ->
    a Python float in [0, 1].
    """
    preds = binarize(logits)                  # (N, H, W) int64 labels
    target = binary_labels(target, "target")
    check_same_pixels(preds, target)
    correct = (preds == target).sum().item()  # a Python int
    return correct / target.numel()           # true division: a float


def dice_score(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Mean over the images of Dice = 2|P and T| / (|P| + |T|), P = sigmoid(logits) > threshold.

    Defined in lesson 04. logits: (N, 1, H, W) float32, target: (N, H, W) of 0/1 ->
    a Python float. An image whose prediction and target are both empty scores 1.0.
    """
    pred = binarize(logits, threshold)         # (N, H, W) 0/1
    return dice_per_image(pred, target).mean().item()


def iou_score(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Mean over the images of IoU = |P and T| / |P or T|, P = sigmoid(logits) > threshold.

    Defined in lesson 04. logits: (N, 1, H, W) float32, target: (N, H, W) of 0/1 ->
    a Python float. An image whose prediction and target are both empty scores 1.0.
    """
    pred = binarize(logits, threshold)         # (N, H, W) 0/1
    return iou_per_image(pred, target).mean().item()


# ---------------------------------------------------------------- the pieces

def without_channel(x: torch.Tensor, what: str) -> torch.Tensor:
    """(N, 1, H, W) -> (N, H, W); (N, H, W) unchanged; any other shape is a DataError."""
    x = torch.as_tensor(x)
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
    raise DataError(f"{what} should be (N, H, W) or (N, 1, H, W) but has shape "
                    f"{tuple(x.shape)}.{hint}")


def binarize(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Logits (N, 1, H, W) or (N, H, W) float -> labels 0/1 (N, H, W) int64.

    A pixel is 1 where ``sigmoid(logit) > threshold``; the cut is made on the logit,
    at ``log(threshold / (1 - threshold))`` (0 for 0.5).
    """
    logits = without_channel(logits, "logits")
    if not logits.is_floating_point():
        raise DataError(f"binarize takes a model's logits (float), not {logits.dtype} "
                        "labels: labels 0/1 need no threshold.")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is a probability strictly between 0 and 1, got {threshold}")
    cut = math.log(threshold / (1.0 - threshold))  # logit(0.5) == 0
    return (logits > cut).long()


def binary_labels(x: torch.Tensor, what: str) -> torch.Tensor:
    """(N, H, W) or (N, 1, H, W) of 0/1, any dtype -> (N, H, W) int64; other values are a
    DataError that says what to do (``binarize`` logits first; divide 0/255 masks by 255)."""
    x = without_channel(x, what)
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        values = torch.unique(x)[:8].tolist()
        if x.is_floating_point():
            hint = " Logits or probabilities? Make labels first: binarize(logits, threshold)."
        elif x.max() == 255:
            hint = " The mask looks stored as 0/255: divide it by 255 (or use segkit.masks)."
        else:
            hint = ""
        raise DataError(f"{what} must hold only 0 and 1 but has values {values}.{hint}")
    return x.long()


def check_same_pixels(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a DataError when (N, H, W) ``pred`` and ``target`` cover different pixels."""
    if pred.shape != target.shape:
        raise DataError(f"pred and target cover different pixels: pred is {tuple(pred.shape)} "
                        f"but target is {tuple(target.shape)} (after dropping a channel axis "
                        "of 1).")


def overlap_counts(pred: torch.Tensor, target: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """|P and T|, |P| and |T| of each image of 0/1 labels: three float64 tensors (N,)."""
    p, t = binary_labels(pred, "pred"), binary_labels(target, "target")
    check_same_pixels(p, t)
    t = t.to(p.device)
    inter = (p * t).flatten(1).sum(1).double()
    return inter, p.flatten(1).sum(1).double(), t.flatten(1).sum(1).double()


def both_empty(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """bool (N,): the images of 0/1 labels with neither an object nor a predicted pixel."""
    _, size_p, size_t = overlap_counts(pred, target)
    return (size_p + size_t) == 0


def dice_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice = 2|P and T| / (|P| + |T|) of each image: float64 (N,); both-empty images 1.0.

    pred, target: (N, H, W) or (N, 1, H, W) labels 0/1 (``binarize`` logits first).
    """
    inter, size_p, size_t = overlap_counts(pred, target)
    return ratio_or_one(2 * inter, size_p + size_t)


def iou_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU = |P and T| / |P or T| of each image: float64 (N,); both-empty images 1.0.

    pred, target: (N, H, W) or (N, 1, H, W) labels 0/1 (``binarize`` logits first).
    """
    inter, size_p, size_t = overlap_counts(pred, target)
    return ratio_or_one(inter, size_p + size_t - inter)


def dice_pooled(pred: torch.Tensor, target: torch.Tensor) -> float:
    """One Dice of all the pixels of the batch, as if it were one image (labels 0/1)."""
    inter, size_p, size_t = (c.sum(0, keepdim=True) for c in overlap_counts(pred, target))
    return ratio_or_one(2 * inter, size_p + size_t).item()


def iou_pooled(pred: torch.Tensor, target: torch.Tensor) -> float:
    """One IoU of all the pixels of the batch, as if it were one image (labels 0/1)."""
    inter, size_p, size_t = (c.sum(0, keepdim=True) for c in overlap_counts(pred, target))
    return ratio_or_one(inter, size_p + size_t - inter).item()


def ratio_or_one(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 1.0 where den == 0 (nothing to find and nothing found: perfect)."""
    return torch.where(den > 0, num / den.clamp(min=1), torch.ones_like(num))


class RunningScores:
    """The sums behind a loader's scores, added batch by batch (:func:`segkit.training.validate`).

    ``add(logits, masks)`` for every batch: logits (N, C, H, W) float32, masks (N, H, W)
    int64. One channel (binary): the per-image Dice and IoU (labels from ``binarize`` at
    0.5) and the correct and counted pixels; C channels (multiclass, argmax): a confusion
    matrix, and for C == 2 the per-image Dice of class 1. Pixels whose mask is
    ``ignore_index`` are left out: not counted, and set to 0 in both prediction and mask
    before the per-image scores.

    ``figures()`` -> binary: ``dice``, ``iou``, ``accuracy``; multiclass: ``miou``,
    ``accuracy`` (and ``dice`` for C == 2). ``num_classes`` fixes C of the matrix
    (default: the logits' channels).
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.images, self.dice_sum, self.iou_sum = 0, 0.0, 0.0
        self.correct, self.counted = 0, 0
        self.cm: torch.Tensor | None = None

    def add(self, logits: torch.Tensor, masks: torch.Tensor) -> None:
        valid = masks != self.ignore_index
        if logits.shape[1] == 1:
            preds, masks = binarize(logits) * valid, masks * valid
            self.add_overlap(preds, masks, with_iou=True)
            self.correct += ((preds == masks) & valid).sum().item()
            self.counted += valid.sum().item()
            return
        classes = self.num_classes or logits.shape[1]
        preds = logits.argmax(1)
        cm = confusion_matrix(preds, masks, classes, ignore_index=self.ignore_index)
        self.cm = cm if self.cm is None else self.cm + cm
        if classes == 2:
            self.add_overlap(preds * valid, masks * valid, with_iou=False)

    def add_overlap(self, preds: torch.Tensor, masks: torch.Tensor, with_iou: bool) -> None:
        """Add the per-image Dice (and IoU) of labels 0/1."""
        self.dice_sum += dice_per_image(preds, masks).sum().item()
        if with_iou:
            self.iou_sum += iou_per_image(preds, masks).sum().item()
        self.images += preds.shape[0]

    def figures(self) -> dict[str, float]:
        """The scores so far (NaN where nothing was counted)."""
        if self.cm is not None:
            out = {"miou": mean_iou(self.cm), "accuracy": pixel_accuracy_from_cm(self.cm)}
        else:
            out = {"accuracy": self.correct / self.counted if self.counted else math.nan,
                   "iou": self.iou_sum / self.images if self.images else math.nan}
        if self.images:
            out["dice"] = self.dice_sum / self.images
        return out


def as_labels(x: torch.Tensor, what: str) -> torch.Tensor:
    """Integer class labels; float tensors that hold whole numbers too. Fractional values
    (logits or probabilities) are a DataError: compare labels with labels."""
    x = torch.as_tensor(x)
    if x.is_floating_point() and x.numel() and not bool((x == x.round()).all()):
        raise DataError(
            f"{what} must be class labels (whole numbers) but is a float tensor with "
            "fractional values: logits or probabilities? Compare labels with labels: "
            "binarize(logits) for one output channel, logits.argmax(1) for several.")
    return x.long()


# ------------------------------------------------------------ multiclass

def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = 255) -> torch.Tensor:
    """Pixel counts (C, C) int64: ``cm[true_class, predicted_class]`` (rows = target).

    pred: (N, H, W) labels, or (N, C, H, W) scores (argmax over dim 1).
    target: (N, H, W) labels in [0, C), or ``ignore_index`` for pixels not to count.
    Add the matrices of several batches to get the matrix of a whole loader.
    """
    pred = torch.as_tensor(pred)
    target = as_labels(target, "target")
    if pred.ndim == target.ndim + 1:
        if pred.shape[1] != num_classes:
            raise DataError(f"pred has {pred.shape[1]} channels (shape {tuple(pred.shape)}) "
                            f"but num_classes={num_classes}")
        pred = pred.argmax(dim=1)
    pred = as_labels(pred, "pred")
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
    """Mean of the per-class IoUs that are defined (NaN-mean). Defined in lesson 05 (the
    exercise ``miou_from_confusion``, which takes the matrix and ``include_background``).

    include_background=False drops class ``background_index`` from the mean (its pixels
    still count as errors of the other classes). NaN if no class has a defined IoU.
    """
    iou = iou_per_class(cm)
    if not include_background:
        keep = torch.ones_like(iou, dtype=torch.bool)
        keep[background_index] = False
        iou = iou[keep]
    return float(iou.nanmean()) if iou.numel() else float("nan")
