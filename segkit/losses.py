"""Losses for segmentation: BCE, soft Dice, BCE + Dice, weighted cross-entropy (lessons 03-05).

Binary masks, one output channel (``UNet(num_classes=1)``):

- ``bce_loss`` / ``BCELoss``: binary cross-entropy on logits (``BCEWithLogitsLoss``), with
  the target cast to float and its channel axis matched to the logits.
- ``SoftDiceLoss``: 1 - Dice computed on probabilities ``sigmoid(logits)`` instead of
  0/1 labels, so it has a gradient. ``smooth`` is added to numerator and denominator:
  an image with an empty target and an empty prediction then scores Dice 1 (loss 0)
  instead of 0/0.
- ``BCEDiceLoss``: ``bce_weight * BCE + (1 - bce_weight) * soft Dice``.

Several classes, C output channels (``UNet(num_classes=C)``), target (N, H, W) int64 labels:

- ``SoftDiceLoss`` uses ``softmax(logits, dim=1)`` and one-hot targets, averages the
  Dice of every class, and leaves out pixels labelled ``ignore_index``.
- ``weighted_cross_entropy(weights)``: ``nn.CrossEntropyLoss`` with class weights and
  ``ignore_index=255``. Weights from pixel counts: ``pixel_counts`` and
  ``class_weights_from_frequencies``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import DataError

# ---------------------------------------------------------------- binary

def _match_binary(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and target of the same shape: (N, 1, H, W) or (N, H, W), target float."""
    if not logits.is_floating_point():
        raise DataError(f"the loss needs float logits from the model, got dtype {logits.dtype}")
    if logits.ndim == 4 and logits.shape[1] != 1:
        raise DataError(
            f"a binary loss needs one logit channel but the logits have shape {tuple(logits.shape)} "
            f"({logits.shape[1]} channels); for {logits.shape[1]} classes use cross-entropy "
            "(weighted_cross_entropy) with (N, H, W) integer labels")
    if logits.ndim == 4 and target.ndim == 3:
        target = target.unsqueeze(1)
    elif logits.ndim == 3 and target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if logits.shape != target.shape:
        raise DataError(
            f"logits have shape {tuple(logits.shape)} but the target has shape "
            f"{tuple(target.shape)}; they must cover the same pixels: (N, 1, H, W) logits "
            "with an (N, H, W) or (N, 1, H, W) target. Were the masks resized differently "
            "from the images, or the batch axes swapped?")
    return logits, target.to(device=logits.device, dtype=logits.dtype)


def _check_binary_target(target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
    values = target if valid is None else target[valid]
    if values.numel() and (values.min() < 0 or values.max() > 1):
        hint = ""
        if values.max() == 255:
            hint = " The masks look stored as 0/255: divide them by 255 (or use segkit.masks)."
        raise DataError(f"a binary target must lie in [0, 1] but has values from "
                        f"{values.min().item()} to {values.max().item()}.{hint}")


def bce_loss(logits: torch.Tensor, target: torch.Tensor, *,
             pos_weight: torch.Tensor | float | None = None,
             ignore_index: int | None = None) -> torch.Tensor:
    """Binary cross-entropy of logits, averaged over pixels: a scalar tensor.

    logits: (N, 1, H, W) or (N, H, W) float, raw model outputs (no sigmoid).
    target: the same pixels, (N, H, W) or (N, 1, H, W), values 0/1 (any dtype; cast to float).
    pos_weight: weight of the foreground pixels (e.g. background count / foreground count).
    ignore_index: target value of pixels to leave out (None: count every pixel).
    """
    logits, target = _match_binary(logits, torch.as_tensor(target))
    valid = None if ignore_index is None else target != ignore_index
    _check_binary_target(target, valid)
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    if valid is None:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
    target = torch.where(valid, target, torch.zeros_like(target))
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight,
                                                   reduction="none")
    return (per_pixel * valid).sum() / valid.sum()  # NaN if every pixel is ignored


class BCELoss(nn.Module):
    """``bce_loss`` as a module: ``BCELoss()(logits, target)``."""

    def __init__(self, pos_weight: float | None = None, ignore_index: int | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bce_loss(logits, target, pos_weight=self.pos_weight, ignore_index=self.ignore_index)


# ---------------------------------------------------------------- soft Dice

class SoftDiceLoss(nn.Module):
    """1 - soft Dice, computed on probabilities so that it has a gradient.

    Binary: logits (N, 1, H, W) or (N, H, W), target 0/1 of the same pixels; p = sigmoid(logits).
    Multiclass: logits (N, C, H, W) with C >= 2, target (N, H, W) int64 labels; p = softmax over
    dim 1 against one-hot targets; the Dice of each class is averaged. Pixels whose target
    is ``ignore_index`` are left out in both cases.

    Dice = (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth), the sums running over the
    pixels of each image (``per_image=True``, then the mean over images) or over the whole
    batch at once (``per_image=False``). Returns a scalar tensor in [0, 1].
    """

    def __init__(self, smooth: float = 1.0, per_image: bool = True,
                 ignore_index: int | None = 255) -> None:
        super().__init__()
        self.smooth = smooth
        self.per_image = per_image
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = torch.as_tensor(target)
        if logits.ndim == 4 and logits.shape[1] > 1:
            probs, onehot = self._multiclass(logits, target)
        else:
            logits, target = _match_binary(logits, target)
            if logits.ndim == 3:
                logits, target = logits.unsqueeze(1), target.unsqueeze(1)
            valid = torch.ones_like(target, dtype=torch.bool) if self.ignore_index is None \
                else target != self.ignore_index
            _check_binary_target(target, valid)
            probs = torch.sigmoid(logits.float()) * valid
            onehot = torch.where(valid, target.float(), torch.zeros_like(target, dtype=torch.float))
        # probs, onehot: (N, C, H, W) float32, zero at ignored pixels
        dims = (2, 3) if self.per_image else (0, 2, 3)
        inter = (probs * onehot).sum(dims)
        sizes = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (sizes + self.smooth)
        return 1 - dice.mean()

    def _multiclass(self, logits: torch.Tensor,
                    target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        num_classes = logits.shape[1]
        if target.ndim == 4 and target.shape[1] == 1:
            target = target[:, 0]
        if target.shape != (logits.shape[0],) + tuple(logits.shape[2:]):
            raise DataError(f"logits of shape {tuple(logits.shape)} need an (N, H, W) label "
                            f"target of shape {(logits.shape[0],) + tuple(logits.shape[2:])}, "
                            f"got {tuple(target.shape)}")
        target = target.to(logits.device).long()
        valid = torch.ones_like(target, dtype=torch.bool) if self.ignore_index is None \
            else target != self.ignore_index
        labels = torch.where(valid, target, torch.zeros_like(target))
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(f"target labels must lie in 0..{num_classes - 1} (or be "
                            f"ignore_index={self.ignore_index}) but range from "
                            f"{labels.min().item()} to {labels.max().item()}")
        valid = valid.unsqueeze(1)
        onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float() * valid
        probs = torch.softmax(logits.float(), dim=1) * valid
        return probs, onehot


class BCEDiceLoss(nn.Module):
    """``bce_weight * bce_loss + (1 - bce_weight) * SoftDiceLoss`` for one-channel binary logits.

    BCE gives every pixel a gradient; soft Dice looks at the overlap of each mask as a
    whole and is not swamped by a large background.
    """

    def __init__(self, bce_weight: float = 0.5, smooth: float = 1.0, per_image: bool = True) -> None:
        super().__init__()
        if not 0.0 <= bce_weight <= 1.0:
            raise ValueError(f"bce_weight must lie in [0, 1], got {bce_weight}")
        self.bce_weight = bce_weight
        self.dice = SoftDiceLoss(smooth=smooth, per_image=per_image, ignore_index=None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = bce_loss(logits, target)
        return self.bce_weight * bce + (1 - self.bce_weight) * self.dice(logits, target)


# ---------------------------------------------------------------- class weights

def _mask_tensor(item: Any) -> torch.Tensor:
    """A mask from a tensor, numpy array, PIL image, or an (image, mask) pair."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        item = item[1]
    if isinstance(item, dict) and "mask" in item:
        item = item["mask"]
    mask = item if isinstance(item, torch.Tensor) else torch.as_tensor(np.asarray(item))
    if mask.is_floating_point() and mask.numel() and not bool((mask == mask.round()).all()):
        raise DataError("a mask must hold whole-number class labels, but this float mask has "
                        "fractional values (a mask resized with bilinear interpolation?)")
    return mask.long()


def pixel_counts(masks: Iterable[Any] | torch.Tensor, num_classes: int,
                 ignore_index: int | None = 255) -> torch.Tensor:
    """Number of pixels of each class over all masks: int64 (C,).

    masks: an iterable of masks (tensors, numpy arrays or PIL images of class labels),
        or of (image, mask) pairs as a Dataset returns them, or one tensor of masks.
    Pixels labelled ``ignore_index`` are not counted.
    """
    if isinstance(masks, torch.Tensor):
        masks = [masks]
    counts = torch.zeros(num_classes, dtype=torch.long)
    for item in masks:
        labels = _mask_tensor(item).flatten().cpu()
        if ignore_index is not None:
            labels = labels[labels != ignore_index]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            bad = torch.unique(labels[(labels < 0) | (labels >= num_classes)])[:8].tolist()
            hint = (" Masks stored as 0/255 must become 0/1 first." if 255 in bad else "")
            raise DataError(f"a mask has labels {bad} outside 0..{num_classes - 1} "
                            f"(num_classes={num_classes}, ignore_index={ignore_index}).{hint}")
        counts += torch.bincount(labels, minlength=num_classes)
    return counts


def _is_counts(x: Any) -> bool:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim == 1
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(
        isinstance(v, (int, float, np.integer, np.floating)) for v in x)


def class_weights_from_frequencies(
        counts_or_masks: torch.Tensor | Iterable[Any], num_classes: int,
        ignore_index: int | None = 255,
        method: Literal["inverse", "median", "inverse_sqrt"] = "inverse") -> torch.Tensor:
    """Class weights for cross-entropy from how often each class occurs: float32 (C,).
    Defined in lesson 05 (the exercise ``class_weights``: the "inverse" method).

    counts_or_masks: pixel counts (C,) (a 1-D tensor, array or list of numbers), or
        masks / (image, mask) pairs, which are counted with ``pixel_counts``.
    method, with f_c = pixels of class c / all counted pixels:

    - ``"inverse"``: w_c proportional to 1 / f_c, scaled so that the weights of the classes
      that occur have mean 1.0 (they sum to the number of such classes);
    - ``"inverse_sqrt"``: w_c proportional to 1 / sqrt(f_c), scaled the same way (milder);
    - ``"median"``: median frequency balancing, w_c = median(f) / f_c (the median over the
      classes that occur): a class of median frequency gets 1.0, rarer classes more.
      It is "inverse" times a constant.

    With ``CrossEntropyLoss(weight=w, reduction="mean")`` PyTorch divides by the summed weights
    of the pixels, so only the ratios between the weights change the loss, not their scale.
    A class with no pixels gets weight 0 (and a warning): it cannot be learned from these masks.
    """
    if method not in ("inverse", "median", "inverse_sqrt"):
        raise ValueError(f"method must be 'inverse', 'median' or 'inverse_sqrt', got {method!r}")
    if _is_counts(counts_or_masks):
        counts = torch.as_tensor(np.asarray(counts_or_masks), dtype=torch.float64).flatten()
        if counts.numel() != num_classes:
            raise DataError(f"got {counts.numel()} counts for num_classes={num_classes}")
        if (counts < 0).any():
            raise DataError(f"pixel counts cannot be negative: {counts.tolist()}")
    else:
        counts = pixel_counts(counts_or_masks, num_classes, ignore_index).double()
    present = counts > 0
    if not present.any():
        raise DataError("no pixel of any class was counted: are the masks empty or all ignore_index?")
    if not present.all():
        missing = torch.nonzero(~present).flatten().tolist()
        warnings.warn(f"classes {missing} have no pixels in the masks; their weight is set to 0 "
                      "(is num_classes right? are those classes in the training split?)",
                      UserWarning, stacklevel=2)
    freq = counts / counts.sum()
    weights = torch.zeros(num_classes, dtype=torch.float64)
    if method == "median":
        median = torch.quantile(freq[present], 0.5)  # the middle value (mean of the two middle ones)
        weights[present] = median / freq[present]
    else:
        power = 1.0 if method == "inverse" else 0.5
        raw = freq[present] ** -power
        weights[present] = raw / raw.mean()
    return weights.float()


class WeightedCrossEntropyLoss(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` that follows the logits to their device and accepts (N, 1, H, W) targets.

    logits: (N, C, H, W) float; target: (N, H, W) (or (N, 1, H, W)) integer labels.
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.weight is not None and self.weight.device != input.device:
            self.weight = self.weight.to(input.device)  # the weights live where the logits are
        if target.ndim == input.ndim and target.shape[1] == 1:
            target = target[:, 0]
        return super().forward(input, target.long())


def weighted_cross_entropy(weights: torch.Tensor | Iterable[float] | None,
                           ignore_index: int | None = 255) -> nn.CrossEntropyLoss:
    """Cross-entropy with class ``weights`` (C,) that skips pixels labelled ``ignore_index``.
    Defined in lesson 05 (the exercise ``multiclass_loss``).

    Returns an ``nn.CrossEntropyLoss`` (a small subclass that moves the weights to the
    logits' device). ``ignore_index=None`` counts every pixel. A batch whose pixels are
    all ignored gives NaN.
    """
    if weights is not None:
        if not isinstance(weights, torch.Tensor):
            weights = torch.tensor(list(weights))
        weights = weights.float()
        if weights.ndim != 1 or (weights < 0).any():
            raise DataError(f"class weights must be a 1-D tensor of non-negative numbers, got {weights}")
    return WeightedCrossEntropyLoss(weight=weights,
                                    ignore_index=-100 if ignore_index is None else ignore_index)
