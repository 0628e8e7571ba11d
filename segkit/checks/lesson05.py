"""Checks of lesson 05 (multiclass): ``class_weights``, ``miou_from_confusion``.

Each ``check_*`` function runs the student's function on small fixed inputs and raises
:class:`~segkit.checks.core.CheckFailed` with a hint that names the mistake. The
``reference_*`` functions are what ``checks.use`` falls back to when an exercise was
skipped; they are thin wrappers around ``segkit.losses`` and ``segkit.metrics``.

Mistake ids used here:

- ``returns-none``: the function has no ``return``;
- ``ignore-counted-as-class``: pixels labelled 255 were counted (a bincount of 256
  values, or 255 folded into a class), so the weights do not describe the real classes;
- ``weights-not-tensor`` / ``weights-wrong-shape`` / ``weights-wrong-dtype``: not a
  float32 tensor of shape (C,), which ``nn.CrossEntropyLoss(weight=...)`` needs;
- ``weights-backwards``: weights proportional to the frequency (the common class gets
  the largest weight: the opposite of what we want);
- ``zero-count-inf``: a class with no pixels gets an infinite (or NaN) weight (1 / 0);
- ``weights-not-normalised``: the ratios are right but the weights are not scaled so that
  the classes present have mean weight 1;
- ``miou-not-number``: the mIoU is not a number;
- ``nan-class-as-zero``: a class absent from both target and prediction (IoU 0/0) counted
  as IoU 0 instead of being left out of the mean;
- ``precision-not-iou`` / ``recall-not-iou``: TP divided by a column sum (precision) or a
  row sum (recall) instead of the union TP + FP + FN;
- ``union-double-counts-diagonal``: the union taken as row sum + column sum, which counts
  the diagonal (TP) twice;
- ``background-not-excluded``: ``include_background=False`` still averages class 0;
- ``background-pixels-dropped``: with ``include_background=False`` the background row and
  column were cut out of the matrix, so objects predicted as background (and background
  predicted as objects) no longer count as errors;
- ``multiclass_loss``: ``softmax-before-cross-entropy``, ``bce-for-multiclass``,
  ``mask-channel-axis`` (a target of shape (N, 1, H, W)), ``ignore-index-missing``,
  ``ignore-as-background``, ``class-weights-ignored``, ``loss-summed``,
  ``loss-not-differentiable``;
- ``predict_labels``: ``argmax-wrong-dim``, ``mask-channel-axis`` (``keepdim=True``),
  ``max-values-not-indices``, ``mask-not-int64``.

The catalogue (``segkit/checks/catalogue.py``) holds each mistake's hint.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from segkit.checks.core import check, close, expect, expect_close, fail, show
from segkit.losses import class_weights_from_frequencies, pixel_counts
from segkit.metrics import mean_iou

__all__ = [
    "check_class_weights",
    "check_miou_from_confusion",
    "reference_class_weights",
    "reference_miou_from_confusion",
    "check_multiclass_loss",
    "reference_multiclass_loss",
    "check_predict_labels",
    "reference_predict_labels",
]


# --------------------------------------------------------------------------- references


def reference_class_weights(masks: torch.Tensor, num_classes: int,
                            ignore_index: int = 255) -> torch.Tensor:
    """Inverse-frequency class weights, mean 1 over the classes present: float32 (C,).

    segkit's ``pixel_counts`` + ``class_weights_from_frequencies(method="inverse")``.
    """
    counts = pixel_counts(masks, num_classes, ignore_index)
    return class_weights_from_frequencies(counts, num_classes, ignore_index)


def reference_miou_from_confusion(cm: torch.Tensor, include_background: bool = True) -> float:
    """Mean of the defined per-class IoUs of a (C, C) confusion matrix (rows = target).

    segkit's ``metrics.mean_iou``; class 0 is the background.
    """
    return mean_iou(cm, include_background=include_background)


# --------------------------------------------------------------------------- class_weights


def _weights_masks() -> tuple[torch.Tensor, int]:
    """Two 4x6 masks with classes 0, 1, 2 (3 absent) and ignore borders (255).

    Counts: class 0 = 24, class 1 = 12, class 2 = 6, class 3 = 0, and 6 pixels of 255.
    """
    a = torch.tensor([[0, 0, 0, 0, 0, 0],
                      [0, 255, 1, 1, 255, 0],
                      [0, 255, 1, 1, 255, 0],
                      [0, 0, 0, 0, 0, 0]])
    b = torch.tensor([[1, 1, 1, 1, 255, 2],
                      [1, 1, 1, 1, 255, 2],
                      [0, 0, 0, 0, 0, 2],
                      [0, 0, 0, 2, 2, 2]])
    return torch.stack([a, b]), 4


def _as_weights(value) -> torch.Tensor:
    return torch.as_tensor(value).detach().cpu().double().flatten()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return close(a, b, abs_tol=1e-4, rel_tol=1e-4)


def _inverse(counts: torch.Tensor) -> torch.Tensor:
    """Inverse frequency with mean 1 over present classes, 0 for absent ones (float64)."""
    counts = counts.double()
    present = counts > 0
    out = torch.zeros_like(counts)
    raw = counts.sum() / counts[present]
    out[present] = raw / raw.mean()
    return out


@check("class_weights", "class_weights on two masks with ignore borders")
def check_class_weights(class_weights):
    """``class_weights(masks, num_classes, ignore_index=255)`` -> float32 (C,) weights."""
    masks, num_classes = _weights_masks()
    counts = torch.tensor([24, 12, 6, 0])
    expected = _inverse(counts)          # 4/7 * (1, 2, 4) = 0.571, 1.143, 2.286, 0
    out = class_weights(masks.clone(), num_classes)
    if out is None:
        fail("class_weights(masks, 4) returned None.", mistake="returns-none",
             hint="finish the function with `return weights`.")
    if not isinstance(out, torch.Tensor):
        fail(f"class_weights(masks, 4) returned {show(out)}, not a torch tensor.",
             mistake="weights-not-tensor")
    if out.ndim == 1 and out.shape[0] > num_classes:
        fail(f"class_weights(masks, 4) has shape {tuple(out.shape)}, expected (4,): one "
             "weight per class.", mistake="ignore-counted-as-class")
    if tuple(out.shape) != (num_classes,):
        fail(f"class_weights(masks, 4) has shape {tuple(out.shape)}, expected (4,).",
             mistake="weights-wrong-shape")
    got = _as_weights(out)
    if not bool(torch.isfinite(got).all()):
        fail(f"class_weights(masks, 4) is {[round(v, 4) for v in got.tolist()]}: class 3 "
             "has no pixels and its weight is not a finite number.", mistake="zero-count-inf")
    # the 255 pixels folded into background, or counted in the total without being dropped
    folded = _inverse(torch.tensor([30, 12, 6, 0]))
    if _same(got, folded):
        fail("the weights are those of masks whose 255 pixels were counted as background.",
             mistake="ignore-counted-as-class",
             hint="the ignore label 255 marks pixels nobody labelled: leave them out of the "
                  "counts (`masks[masks != ignore_index]`), do not clamp or map them to 0.")
    present = counts > 0
    freq = counts.double() / counts.sum()
    backwards = torch.zeros(4, dtype=torch.float64)
    backwards[present] = freq[present] / freq[present].mean()
    if _same(got, backwards) or (got[0] > got[2] and got[2] > 0):
        fail(f"class_weights(masks, 4) is {[round(v, 4) for v in got.tolist()]}: the most "
             "frequent class (0, 24 pixels) gets more weight than the rarest (2, 6 pixels).",
             mistake="weights-backwards")
    ratios_ok = got[0] > 0 and _same(got / got[0], expected / expected[0])
    if ratios_ok and not _same(got, expected):
        fail(f"class_weights(masks, 4) is {[round(v, 4) for v in got.tolist()]}; the ratios "
             f"are right but the mean over the present classes is "
             f"{got[present].mean().item():.4f}, not 1.", mistake="weights-not-normalised")
    expect_close(got, expected, name="class_weights(masks, 4)", tol=1e-4,
                 hint="w_c = (1 / f_c) / mean over present classes of (1 / f_c), f_c = pixels "
                      "of class c / all counted pixels (255 left out), and 0 for a class "
                      "with no pixels.")
    expect(out.dtype == torch.float32,
           f"class_weights(masks, 4) has dtype {str(out.dtype).replace('torch.', '')}, "
           "expected float32.", mistake="weights-wrong-dtype")
    return "24/12/6/0 pixels and 6 ignored, weights 0.571/1.143/2.286/0"


# --------------------------------------------------------------------------- miou_from_confusion


def _cm() -> torch.Tensor:
    """A (5, 5) confusion matrix, rows = target, columns = prediction; class 4 absent.

    IoU per class: 0: 50/60, 1: 8/18, 2: 6/10, 3: 0/4, 4: NaN (0/0).
    """
    return torch.tensor([[50, 4, 2, 0, 0],
                         [2, 8, 2, 0, 0],
                         [0, 0, 6, 0, 0],
                         [2, 2, 0, 0, 0],
                         [0, 0, 0, 0, 0]])


def _miou_variants(cm: torch.Tensor) -> dict[str, tuple[float, float]]:
    """The mistaken versions: name -> (mIoU with background, mIoU without)."""
    cm = cm.double()
    tp, rows, cols = cm.diag(), cm.sum(1), cm.sum(0)

    def mean(values: torch.Tensor, background: bool, nan_as_zero: bool = False) -> float:
        values = values if background else values[1:]
        if nan_as_zero:
            return float(torch.nan_to_num(values, nan=0.0).mean())
        return float(values.nanmean())

    def div(a, b):
        return torch.where(b > 0, a / b, torch.full_like(a, float("nan")))

    iou = div(tp, rows + cols - tp)
    inner = cm[1:, 1:]
    iou_inner = div(inner.diag(), inner.sum(1) + inner.sum(0) - inner.diag())
    return {
        "nan-class-as-zero": (mean(iou, True, True), mean(iou, False, True)),
        "precision-not-iou": (mean(div(tp, cols), True), mean(div(tp, cols), False)),
        "recall-not-iou": (mean(div(tp, rows), True), mean(div(tp, rows), False)),
        "union-double-counts-diagonal": (mean(div(tp, rows + cols), True),
                                         mean(div(tp, rows + cols), False)),
        "background-pixels-dropped": (mean(iou, True), float(iou_inner.nanmean())),
    }


@check("miou_from_confusion", "miou_from_confusion")
def check_miou_from_confusion(miou_from_confusion):
    """``miou_from_confusion(cm, include_background=True)`` -> float mIoU."""
    cm = _cm()
    iou = torch.tensor([50 / 60, 8 / 18, 6 / 10, 0 / 4], dtype=torch.float64)
    want_all = float(iou.mean())            # 0.4694
    want_objects = float(iou[1:].mean())    # 0.3481
    variants = _miou_variants(cm)
    results = []
    for include, want, index in [(True, want_all, 0), (False, want_objects, 1)]:
        call = f"miou_from_confusion(cm, include_background={include})"
        value = miou_from_confusion(cm.clone(), include_background=include)
        if value is None:
            fail(f"{call} returned None.", mistake="returns-none",
                 hint="finish the function with `return` and the mean IoU.")
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):
            fail(f"{call} returned {show(value)}, not a number.", mistake="miou-not-number")
        if math.isnan(number):
            fail(f"{call} is nan.", mistake="nan-class-as-zero",
                 hint="class 4 has IoU 0/0 = NaN; `.mean()` of values with a NaN is NaN. "
                      "Leave undefined classes out of the mean with `torch.nanmean` "
                      "(or `iou[~iou.isnan()].mean()`).")
        if abs(number - want) > 1e-4:
            if not include and abs(number - want_all) < 1e-4:
                fail(f"{call} is {number:.4f}, the same as with the background "
                     f"({want_all:.4f}); expected {want:.4f}.",
                     mistake="background-not-excluded")
            for mistake, values in variants.items():
                if abs(number - values[index]) < 1e-4:
                    fail(f"{call} is {number:.4f}, expected {want:.4f}.", mistake=mistake)
            expect_close(number, want, name=call, tol=1e-4,
                         hint="IoU_c = TP / (TP + FP + FN) with TP = cm[c, c], "
                              "TP + FN = row c's sum, TP + FP = column c's sum; average the "
                              "defined ones (`nanmean`), without class 0 when "
                              "include_background=False.")
        results.append(f"{number:.4f}")
    return f"mIoU {results[0]} with background, {results[1]} without, on a 5-class matrix"


# --------------------------------------------------------------------------- multiclass_loss

_IGNORE = 255


def reference_multiclass_loss(logits: torch.Tensor, target: torch.Tensor,
                              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of (N, C, H, W) logits against (N, H, W) int64 labels, 255 ignored:
    a 0-dim float tensor (with its graph, ready for ``backward``)."""
    return F.cross_entropy(logits, target, weight=weights, ignore_index=_IGNORE)


def _loss_inputs(with_ignore: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (2, 4, 3, 5) float32, labels (2, 3, 5) int64 of classes 0..3 (and two 255s),
    and float32 class weights (4,). Fixed numbers: the same on every run."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 5, generator=g) * 2
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    if with_ignore:
        target[0, 0, 0] = target[1, 2, 4] = _IGNORE
    return logits, target, torch.tensor([0.5, 1.0, 2.0, 4.0])


def _call_loss(multiclass_loss: Callable, logits, target, weights, name: str) -> float:
    """The student's loss as a float; errors that a catalogued mistake causes are named."""
    try:
        value = multiclass_loss(logits.clone().requires_grad_(), target.clone(), weights.clone())
    except (RuntimeError, ValueError, IndexError) as exc:
        text = str(exc)
        if "spatial targets" in text or "dimension: 4" in text:
            fail(f"{name} raised `{type(exc).__name__}: {text}`", mistake="mask-channel-axis")
        if "Target size" in text and "same as input size" in text:
            fail(f"{name} raised `{type(exc).__name__}: {text}`", mistake="bce-for-multiclass")
        if "out of bounds" in text:
            fail(f"{name} raised `{type(exc).__name__}: {text}`", mistake="ignore-index-missing")
        raise
    if value is None:
        fail(f"{name} returned None.", mistake="returns-none")
    expect(isinstance(value, torch.Tensor) and value.numel() == 1 and value.requires_grad,
           f"{name} is {show(value)}; expected a 1-element tensor that keeps its graph",
           mistake="loss-not-differentiable")
    return float(value.detach())


def _loss_variants(logits, target, weights) -> dict[str, float]:
    """The values the catalogued mistakes give on these inputs."""
    keep = target != _IGNORE
    one_hot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1])
    one_hot = one_hot.permute(0, 3, 1, 2).float()
    return {
        "softmax-before-cross-entropy": float(F.cross_entropy(
            logits.softmax(1), target, weight=weights, ignore_index=_IGNORE)),
        "bce-for-multiclass": float(F.binary_cross_entropy_with_logits(logits, one_hot)),
        "class-weights-ignored": float(F.cross_entropy(logits, target, ignore_index=_IGNORE)),
        "loss-summed": float(F.cross_entropy(logits, target, weight=weights,
                                             ignore_index=_IGNORE, reduction="sum")),
        "ignore-as-background": float(F.cross_entropy(
            logits, torch.where(keep, target, 0), weight=weights)),
    }


@check("multiclass_loss", "multiclass_loss on 2 small batches")
def check_multiclass_loss(multiclass_loss: Callable) -> str:
    """``multiclass_loss(logits, target, weights)``: weighted cross-entropy, 255 ignored."""
    for with_ignore in (False, True):
        logits, target, weights = _loss_inputs(with_ignore)
        name = "multiclass_loss(logits, target, weights)" + (
            " with two pixels labelled 255" if with_ignore else "")
        value = _call_loss(multiclass_loss, logits, target, weights, name)
        want = float(reference_multiclass_loss(logits, target, weights))
        if abs(value - want) <= 1e-4:
            continue
        for mistake, wrong in _loss_variants(logits, target, weights).items():
            if abs(value - wrong) <= 1e-4:
                fail(f"{name} is {value:.4f}, expected {want:.4f}", mistake=mistake)
        fail(f"{name} is {value:.4f}, expected {want:.4f}",
             hint="`F.cross_entropy(logits, target, weight=weights, ignore_index=255)` on "
                  "the raw logits (N, C, H, W) and the labels (N, H, W).")
    return f"{want:.4f} on logits (2, 4, 3, 5) with two pixels ignored"


# --------------------------------------------------------------------------- predict_labels


def reference_predict_labels(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) logits -> (N, H, W) int64 labels: the class with the largest logit."""
    return logits.argmax(dim=1)


@check("predict_labels", "predict_labels on logits (2, 3, 4, 5)")
def check_predict_labels(predict_labels: Callable) -> str:
    """``predict_labels(logits)`` -> (N, H, W) int64: argmax over the class axis."""
    # N, C, H and W all differ, so every wrong axis gives its own shape
    logits = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(7))
    name = "predict_labels(logits) for logits (2, 3, 4, 5)"
    labels = predict_labels(logits.clone())
    if labels is None:
        fail(f"{name} returned None.", mistake="returns-none")
    if isinstance(labels, tuple) and hasattr(labels, "indices"):  # torch.max(..., dim)
        labels = labels.values
    expect(isinstance(labels, torch.Tensor), f"{name} is {show(labels)}, not a tensor",
           mistake="not-an-array")
    shape = tuple(labels.shape)
    if shape == (2, 1, 4, 5):
        fail(f"{name} has shape {shape}, expected (2, 4, 5)", mistake="mask-channel-axis")
    if shape in ((3, 4, 5), (2, 3, 5), (2, 3, 4)):
        fail(f"{name} has shape {shape}, expected (2, 4, 5)", mistake="argmax-wrong-dim")
    expect(shape == (2, 4, 5), f"{name} has shape {shape}, expected (2, 4, 5)",
           hint="one label per pixel: (N, C, H, W) -> (N, H, W).")
    if labels.is_floating_point() and torch.equal(labels, logits.max(dim=1).values):
        fail(f"{name} holds the largest logits, not their classes",
             mistake="max-values-not-indices")
    expect(labels.dtype == torch.int64, f"{name} has dtype "
           f"{str(labels.dtype).replace('torch.', '')}, expected int64",
           mistake="mask-not-int64",
           hint="`argmax` already gives int64 class indices: keep them as they are.")
    expect(torch.equal(labels, logits.argmax(dim=1)), f"{name} differs from the argmax over "
           f"the class axis at {int((labels != logits.argmax(dim=1)).sum())} of 40 pixels",
           hint="the class of a pixel is the index of its largest logit: "
                "`logits.argmax(dim=1)`.")
    return "(2, 3, 4, 5) -> (2, 4, 5) int64"
