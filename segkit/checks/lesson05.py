"""Checks of lesson 05 (multiclass): ``class_weights``, ``miou_from_confusion``.

Each check runs the lesson's worked example (the same on every run) and cases drawn fresh
from a seed: masks of drawn size and class counts with a class absent and ignore
borders, confusion matrices of drawn size with a class absent, logits of drawn size and
class count with pixels labelled 255, and it raises :class:`~segkit.checks.core.CheckFailed`
with a hint that names the mistake (a mistake is named when it gives the student's
answers on every case; otherwise the general hint). The
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
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segkit import losses, metrics
from segkit.checks import core, values
from segkit.checks.core import GENERAL_HINT, Check, close, explained_by, fail, judging

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
    counts = losses.pixel_counts(masks, num_classes, ignore_index)
    return losses.class_weights_from_frequencies(counts, num_classes, ignore_index)


def reference_miou_from_confusion(cm: torch.Tensor, include_background: bool = True) -> float:
    """Mean of the defined per-class IoUs of a (C, C) confusion matrix (rows = target).

    segkit's ``metrics.mean_iou``; class 0 is the background.
    """
    return metrics.mean_iou(cm, include_background=include_background)


# --------------------------------------------------------------------------- class_weights


def _weights_masks() -> torch.Tensor:
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
    return torch.stack([a, b])


def _draw_weights(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (two 4x6 masks, 4 classes), then masks of a drawn size and class
    count: the background the most frequent class, the others rarer and rarer, one class
    (never the background) absent, and ignore borders."""
    worked = {"masks": _weights_masks().numpy(), "classes": 4, "drawn": False}
    classes = int(rng.integers(3, 7))
    n, h, w = int(rng.integers(2, 4)), *(int(v) for v in rng.choice([7, 9, 11], 2, replace=False))
    absent = int(rng.integers(1, classes))
    present = [c for c in range(classes) if c != absent]
    share = np.array([2.0 ** -k for k in range(len(present))])
    masks = rng.choice(present, size=(n, h, w), p=share / share.sum())
    for c in present:  # every present class has at least one pixel
        masks.flat[rng.integers(masks.size)] = c
    masks[rng.random(masks.shape) < 0.1] = 255
    return {"cases": [worked, {"masks": masks.astype(np.int64), "classes": classes,
                               "drawn": True}]}


def _ask_weights(class_weights: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(class_weights(values.tensor(c["masks"]), c["classes"]))
                      for c in cases["cases"]]}


def _inverse(counts: np.ndarray) -> np.ndarray:
    """Inverse frequency with mean 1 over present classes, 0 for absent ones (float64)."""
    counts = counts.astype(np.float64)
    present = counts > 0
    out = np.zeros_like(counts)
    raw = counts.sum() / counts[present]
    out[present] = raw / raw.mean()
    return out


def _counts(masks: np.ndarray, classes: int) -> np.ndarray:
    return np.bincount(masks[masks != 255].ravel(), minlength=classes)[:classes]


def _weights_forms(case: dict[str, Any]) -> dict[str, list[np.ndarray]]:
    masks, classes = case["masks"], case["classes"]
    counts = _counts(masks, classes)
    folded = counts.copy()
    folded[0] += int((masks == 255).sum())
    freq = counts / counts.sum()
    present = counts > 0
    backwards = np.zeros(classes)
    backwards[present] = freq[present] / freq[present].mean()
    right = _inverse(counts)
    unnormalised = np.where(present, counts.sum() / np.maximum(counts, 1), 0.0)
    return {"ignore-counted-as-class": [_inverse(folded)],
            "weights-backwards": [backwards],
            "weights-not-normalised": [unnormalised, right * 2]}


def _judge_weights_case(case: dict[str, Any], out: dict[str, Any], forms: list,
                        got_all: list) -> None:
    classes = case["classes"]
    name = f"class_weights(masks, {classes})"
    counts = _counts(case["masks"], classes)
    with warnings.catch_warnings():  # segkit warns about a class without pixels
        warnings.simplefilter("ignore")
        expected = reference_class_weights(values.tensor(case["masks"]), classes).double().numpy()
    shown = lambda v: [round(float(x), 4) for x in v]  # noqa: E731
    got = got_all[-1]
    if not np.isfinite(got).all():
        fail(f"{name} is {shown(got)}: a class has no pixels and its weight is not a finite "
             "number.", mistake="zero-count-inf")
    if close(got, expected, abs_tol=1e-4, rel_tol=1e-4):
        if out["dtype"] != "float32":
            fail(f"{name} has dtype {out['dtype']}, expected float32.",
                 mistake="weights-wrong-dtype")
        return
    mistake = explained_by([got], [_weights_forms(case)], abs_tol=1e-4, rel_tol=1e-4)
    most, rarest = int(np.argmax(counts)), int(np.argmin(np.where(counts > 0, counts, 10**9)))
    if mistake is None and got[most] > got[rarest] > 0:
        mistake = "weights-backwards"
    message = (f"{name} is {shown(got)} for pixel counts {counts.tolist()} "
               f"({int((case['masks'] == 255).sum())} ignored); expected {shown(expected)}")
    if mistake == "weights-not-normalised":
        message += f": the ratios are right but the mean over the present classes is " \
                   f"{got[counts > 0].mean():.4f}, not 1"
    fail(message, mistake=mistake, hint=None if mistake else GENERAL_HINT)


def _judge_weights(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    got_all = []
    for case, out in zip(cases["cases"], answers["cases"], strict=True):
        name = f"class_weights(masks, {case['classes']})"
        with judging(case["drawn"]):
            if out["kind"] == "none":
                fail(f"{name} returned None.", mistake="returns-none",
                     hint="finish the function with `return weights`.")
            if out["kind"] != "tensor":
                fail(f"{name} returned {values.shown(out)}, not a torch tensor.",
                     mistake="weights-not-tensor")
            shape = tuple(out["shape"])
            if len(shape) == 1 and shape[0] > case["classes"]:
                fail(f"{name} has shape {shape}, expected ({case['classes']},): one weight per "
                     "class.", mistake="ignore-counted-as-class")
            if shape != (case["classes"],):
                fail(f"{name} has shape {shape}, expected ({case['classes']},).",
                     mistake="weights-wrong-shape")
            got_all.append(values.array(out).astype(np.float64))
            _judge_weights_case(case, out, [], got_all)
    return "24/12/6/0 pixels and 6 ignored, weights 0.571/1.143/2.286/0"


check_class_weights = Check(
    "05", "class_weights", "class_weights on two masks with ignore borders",
    references=("segkit.checks.lesson05.reference_class_weights",
                "segkit.losses.class_weights_from_frequencies"),
    draw_cases=_draw_weights, ask_student=_ask_weights, judge_answers=_judge_weights)


# --------------------------------------------------------------------------- miou_from_confusion


def _cm() -> np.ndarray:
    """A (5, 5) confusion matrix, rows = target, columns = prediction; class 4 absent.

    IoU per class: 0: 50/60, 1: 8/18, 2: 6/10, 3: 0/4, 4: NaN (0/0).
    """
    return np.array([[50, 4, 2, 0, 0],
                     [2, 8, 2, 0, 0],
                     [0, 0, 6, 0, 0],
                     [2, 2, 0, 0, 0],
                     [0, 0, 0, 0, 0]])


def _draw_miou(rng: np.random.Generator) -> dict[str, Any]:
    """The worked 5-class matrix, then a drawn one of 4 to 7 classes: a large background,
    one class absent from target and prediction, one never predicted right."""
    classes = int(rng.integers(4, 8))
    cm = rng.integers(0, 6, (classes, classes))
    cm[np.diag_indices(classes)] = rng.integers(3, 30, classes)
    cm[0, 0] = int(rng.integers(60, 200))
    absent, missed = rng.choice(np.arange(1, classes), size=2, replace=False)
    cm[absent, :] = 0
    cm[:, absent] = 0
    cm[missed, missed] = 0
    cm[missed, 0] += 3
    return {"cases": [{"cm": _cm(), "drawn": False}, {"cm": cm.astype(np.int64), "drawn": True}]}


def _ask_miou(miou_from_confusion: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [[values.describe(miou_from_confusion(values.tensor(c["cm"]),
                                                           include_background=include))
                       for include in (True, False)] for c in cases["cases"]]}


def _miou_forms(cm: np.ndarray, include: bool) -> dict[str, list[float]]:
    """The mistaken versions' mIoU for this matrix and flag."""
    cm = cm.astype(np.float64)
    tp, rows, cols = np.diag(cm), cm.sum(1), cm.sum(0)

    def div(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)

    def mean(v, background=include, nan_as_zero=False):
        v = v if background else v[1:]
        return float(np.nan_to_num(v, nan=0.0).mean()) if nan_as_zero else float(np.nanmean(v))

    iou = div(tp, rows + cols - tp)
    inner = cm[1:, 1:]
    inner_iou = div(np.diag(inner), inner.sum(1) + inner.sum(0) - np.diag(inner))
    return {"nan-class-as-zero": [mean(iou, nan_as_zero=True), float("nan")],
            "precision-not-iou": [mean(div(tp, cols))],
            "recall-not-iou": [mean(div(tp, rows))],
            "union-double-counts-diagonal": [mean(div(tp, rows + cols))],
            "background-not-excluded": [mean(iou, background=True)],
            "background-pixels-dropped": [mean(iou) if include else float(np.nanmean(inner_iou))]}


def _judge_miou(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    got, right, forms, where = [], [], [], []
    for case, pair in zip(cases["cases"], answers["cases"], strict=True):
        for include, desc in zip((True, False), pair, strict=True):
            call = f"miou_from_confusion(cm, include_background={include})"
            with judging(case["drawn"]):
                if desc["kind"] == "none":
                    fail(f"{call} returned None.", mistake="returns-none",
                         hint="finish the function with `return` and the mean IoU.")
                number = values.number(desc)
                if number is None:
                    fail(f"{call} returned {values.shown(desc)}, not a number.",
                         mistake="miou-not-number")
            got.append(number)
            right.append(reference_miou_from_confusion(values.tensor(case["cm"]), include))
            forms.append(_miou_forms(case["cm"], include))
            where.append((case, call))
    for i, (g, r) in enumerate(zip(got, right)):
        if close(g, r, abs_tol=1e-4):
            continue
        case, call = where[i]
        with judging(case["drawn"]):
            size = f"a {len(case['cm'])}-class matrix"
            if math.isnan(g):
                fail(f"{call} is nan on {size}.", mistake="nan-class-as-zero",
                     hint="a class absent from target and prediction has IoU 0/0 = NaN, and "
                          "a mean with a NaN is NaN: leave undefined classes out of the mean "
                          "(torch.nanmean).")
            mistake = explained_by(got, forms, abs_tol=1e-4)
            fail(f"{call} is {g:.4f} on {size}, expected {r:.4f}.", mistake=mistake,
                 hint=None if mistake else GENERAL_HINT)
    return (f"mIoU {right[0]:.4f} with background, {right[1]:.4f} without, on a 5-class "
            "matrix")


check_miou_from_confusion = Check(
    "05", "miou_from_confusion", "miou_from_confusion",
    references=("segkit.checks.lesson05.reference_miou_from_confusion",
                "segkit.metrics.mean_iou"),
    draw_cases=_draw_miou, ask_student=_ask_miou, judge_answers=_judge_miou)


# --------------------------------------------------------------------------- multiclass_loss

_IGNORE = 255


def reference_multiclass_loss(logits: torch.Tensor, target: torch.Tensor,
                              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of (N, C, H, W) logits against (N, H, W) int64 labels, 255 ignored:
    a 0-dim float tensor (with its graph, ready for ``backward``)."""
    return F.cross_entropy(logits, target, weight=weights, ignore_index=_IGNORE)


def _loss_case(with_ignore: bool) -> dict[str, Any]:
    """The worked example: logits (2, 4, 3, 5), labels of classes 0..3 (two 255s when
    ``with_ignore``), float32 class weights (4,)."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 5, generator=g) * 2
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    if with_ignore:
        target[0, 0, 0] = target[1, 2, 4] = _IGNORE
    return {"logits": logits.numpy(), "target": target.numpy(),
            "weights": np.array([0.5, 1.0, 2.0, 4.0], np.float32), "drawn": False,
            "what": "with two pixels labelled 255" if with_ignore else ""}


def _draw_loss(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example's 2 batches, then logits of drawn size and class count with
    pixels labelled 255 and drawn class weights."""
    n, classes = int(rng.integers(1, 4)), int(rng.integers(3, 6))
    h, w = (int(v) for v in rng.choice([3, 5, 7], size=2, replace=False))
    target = rng.integers(0, classes, (n, h, w))
    target[rng.random((n, h, w)) < 0.15] = _IGNORE
    target.flat[rng.integers(target.size)] = _IGNORE
    target.flat[rng.integers(target.size)] = 0
    drawn = {"logits": (rng.standard_normal((n, classes, h, w)) * 2).astype(np.float32),
             "target": target.astype(np.int64),
             "weights": rng.uniform(0.3, 4.0, classes).astype(np.float32), "drawn": True,
             "what": f"on drawn logits {(n, classes, h, w)} with pixels labelled 255"}
    return {"cases": [_loss_case(False), _loss_case(True), drawn]}


def _ask_loss(multiclass_loss: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        value, error = values.call(multiclass_loss,
                                   values.tensor(case["logits"]).requires_grad_(),
                                   values.tensor(case["target"]), values.tensor(case["weights"]))
        answers.append(error or values.describe(value))
    return {"cases": answers}


def _loss_forms(case: dict[str, Any]) -> dict[str, list[float]]:
    """The values the catalogued mistakes give on this case."""
    logits, target = values.tensor(case["logits"]), values.tensor(case["target"])
    weights = values.tensor(case["weights"])
    keep = target != _IGNORE
    one_hot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1])
    one_hot = one_hot.permute(0, 3, 1, 2).float()
    return {
        "softmax-before-cross-entropy": [float(F.cross_entropy(
            logits.softmax(1), target, weight=weights, ignore_index=_IGNORE))],
        "bce-for-multiclass": [float(F.binary_cross_entropy_with_logits(logits, one_hot))],
        "class-weights-ignored": [float(F.cross_entropy(logits, target, ignore_index=_IGNORE))],
        "loss-summed": [float(F.cross_entropy(logits, target, weight=weights,
                                              ignore_index=_IGNORE, reduction="sum"))],
        "ignore-as-background": [float(F.cross_entropy(
            logits, torch.where(keep, target, 0), weight=weights))],
    }


def _loss_error(record: dict[str, Any], name: str) -> None:
    """An error that a catalogued mistake causes is named; others are crashes."""
    text = record["message"]
    said = f"{name} raised `{record['type']}: {text}`"
    if "spatial targets" in text or "dimension: 4" in text:
        fail(said, mistake="mask-channel-axis")
    if "Target size" in text and "same as input size" in text:
        fail(said, mistake="bce-for-multiclass")
    if "out of bounds" in text:
        fail(said, mistake="ignore-index-missing")
    core.fail_for(record, "multiclass_loss")


def _judge_loss(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    got = []
    for case, desc in items:
        name = f"multiclass_loss(logits, target, weights) {case['what']}".strip()
        with judging(case["drawn"]):
            record = core.raised(desc)
            if record and not record.get("stub"):
                _loss_error(record, name)
            core.value_of(desc, "multiclass_loss")
            if desc["kind"] == "none":
                fail(f"{name} returned None.", mistake="returns-none")
            if desc["kind"] != "tensor" or math.prod(desc["shape"]) != 1 \
                    or not desc["requires_grad"]:
                fail(f"{name} is {values.shown(desc)}; expected a 1-element tensor that keeps "
                     "its graph", mistake="loss-not-differentiable")
        got.append(values.number(desc))
    right = [float(reference_multiclass_loss(values.tensor(c["logits"]), values.tensor(c["target"]),
                                             values.tensor(c["weights"]))) for c, _ in items]
    for (case, _), g, r in zip(items, got, right):
        if abs(g - r) <= 1e-4:
            continue
        with judging(case["drawn"]):
            mistake = explained_by(got, [_loss_forms(c) for c, _ in items], abs_tol=1e-4,
                                   rel_tol=1e-5)
            fail(f"multiclass_loss(logits, target, weights) {case['what']} is {g:.4f}, "
                 f"expected {r:.4f}".replace("  ", " "), mistake=mistake,
                 hint=None if mistake else GENERAL_HINT)
    return f"{right[1]:.4f} on logits (2, 4, 3, 5) with two pixels ignored"


check_multiclass_loss = Check(
    "05", "multiclass_loss", "multiclass_loss on 2 small batches",
    references=("segkit.checks.lesson05.reference_multiclass_loss",),
    draw_cases=_draw_loss, ask_student=_ask_loss, judge_answers=_judge_loss)


# --------------------------------------------------------------------------- predict_labels


def reference_predict_labels(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) logits -> (N, H, W) int64 labels: the class with the largest logit."""
    return logits.argmax(dim=1)


def _draw_labels(rng: np.random.Generator) -> dict[str, Any]:
    """The worked logits (2, 3, 4, 5), then logits whose N, C, H and W are drawn and all
    differ, so that every wrong axis gives its own shape."""
    worked = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(7)).numpy()
    n, c, h, w = (int(v) for v in rng.choice(np.arange(2, 10), size=4, replace=False))
    drawn = rng.standard_normal((n, c, h, w)).astype(np.float32)
    return {"cases": [{"logits": worked, "drawn": False}, {"logits": drawn, "drawn": True}]}


def _ask_labels(predict_labels: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        labels = predict_labels(values.tensor(case["logits"]))
        if isinstance(labels, tuple) and hasattr(labels, "indices"):  # torch.max(..., dim)
            labels = labels.values
        answers.append(values.describe(labels))
    return {"cases": answers}


def _judge_labels_case(logits: np.ndarray, desc: dict[str, Any]) -> None:
    n, c, h, w = logits.shape
    name = f"predict_labels(logits) for logits {logits.shape}"
    if desc["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none")
    if desc["kind"] != "tensor":
        fail(f"{name} is {values.shown(desc)}, not a tensor", mistake="not-an-array")
    shape = tuple(desc["shape"])
    if shape == (n, 1, h, w):
        fail(f"{name} has shape {shape}, expected {(n, h, w)}", mistake="mask-channel-axis")
    if shape in ((c, h, w), (n, c, w), (n, c, h)):
        fail(f"{name} has shape {shape}, expected {(n, h, w)}", mistake="argmax-wrong-dim")
    if shape != (n, h, w):
        fail(f"{name} has shape {shape}, expected {(n, h, w)}",
             hint="one label per pixel: (N, C, H, W) -> (N, H, W).")
    labels, want = values.array(desc), logits.argmax(axis=1)
    if desc["dtype"].startswith("float") and np.allclose(labels, logits.max(axis=1)):
        fail(f"{name} holds the largest logits, not their classes",
             mistake="max-values-not-indices")
    if desc["dtype"] != "int64":
        fail(f"{name} has dtype {desc['dtype']}, expected int64", mistake="mask-not-int64",
             hint="the class indices argmax gives are already int64: keep them as they are.")
    if not np.array_equal(labels, want):
        fail(f"{name} differs from the argmax over the class axis at "
             f"{int((labels != want).sum())} of {want.size} pixels", hint=GENERAL_HINT)


def _judge_labels(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    for case, desc in zip(cases["cases"], answers["cases"], strict=True):
        with judging(case["drawn"]):
            _judge_labels_case(case["logits"], desc)
    return "(2, 3, 4, 5) -> (2, 4, 5) int64"


check_predict_labels = Check(
    "05", "predict_labels", "predict_labels on logits (2, 3, 4, 5)",
    references=("segkit.checks.lesson05.reference_predict_labels",),
    draw_cases=_draw_labels, ask_student=_ask_labels, judge_answers=_judge_labels)
