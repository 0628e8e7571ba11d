"""Checks of lesson 04 (metrics): pixel accuracy, Dice and IoU of a binary model.

The three exercises take what a binary U-Net gives and what the loader gives::

    logits: (N, 1, H, W) float32, the model's raw output (logit > 0 <=> probability > 0.5)
    target: (N, H, W) int64 of 0/1, the ground-truth masks

and return one Python ``float`` for the batch. ``dice_score`` and ``iou_score`` take a
``threshold`` on the *probability* ``sigmoid(logit)``, score each image on its own and
average the images (an image whose target and prediction are both empty scores 1.0).

Each check draws its batches fresh (:class:`~segkit.checks.core.Check`): the lesson's worked
example (a big and a small object, 2 images of 3 x 4 pixels, the same on every run) and
batches of random odd and unequal sizes: a batch of one image, a threshold other than 0.5,
an image with nothing to find and nothing found, an image with nothing to find but
something predicted. The judge computes the right values with segkit's metrics and, when
the student's differ, the values each catalogued mistake gives on the same batches: a
mistake is named only when it gives the student's values on every batch. Mistake ids:

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
from typing import Any

import numpy as np
import torch

from segkit import metrics
from segkit.checks import values
from segkit.checks.core import GENERAL_HINT, Check, close, explained_by, fail, judging

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


# --------------------------------------------------------------------------- the worked example
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


def _case(logits: np.ndarray, target: np.ndarray, *, drawn: bool, what: str,
          threshold: float | None = None, alone: bool = False) -> dict[str, Any]:
    """One batch: logits (N, 1, H, W) float32, target (N, H, W) int64, and what it shows."""
    return {"logits": np.asarray(logits, np.float32), "target": np.asarray(target, np.int64),
            "threshold": threshold, "drawn": drawn, "what": what, "alone": alone}


def _worked_example() -> dict[str, Any]:
    logits = np.array([_IMAGE_BIG[0], _IMAGE_SMALL[0]])[:, None]
    target = np.array([_IMAGE_BIG[1], _IMAGE_SMALL[1]])
    return _case(logits, target, drawn=False, alone=True,
                 what="the worked example (a big and a small object, 2 images of 3 x 4 pixels)")


# --------------------------------------------------------------------------- drawing


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _away(values_: np.ndarray, points: list[float], gap: float = 0.03) -> np.ndarray:
    """``values_`` pushed at least ``gap`` away from each of ``points`` (where float32 and
    float64, sigmoid-then-cut and cut-on-logits could disagree)."""
    out = values_.copy()
    for point in points:
        near = np.abs(out - point) < gap
        out[near] = point + np.where(out[near] >= point, gap, -gap)
    return out


def _size(rng: np.random.Generator) -> tuple[int, int]:
    """Odd and unequal (H, W), from 3 to 9."""
    h, w = rng.choice([3, 5, 7, 9], size=2, replace=False)
    return int(h), int(w)


def _object(rng: np.random.Generator, h: int, w: int, threshold: float) -> tuple:
    """(logits (H, W), target (H, W)): an object, a prediction with at least one error,
    and a pixel between each two cuts a mistake could use (0, logit(threshold), threshold,
    0.5), so that every cut gives another answer."""
    target = np.zeros((h, w), np.int64)
    y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
    target[y0:rng.integers(y0 + 1, h + 1), x0:rng.integers(x0 + 1, w + 1)] = 1
    target[rng.random((h, w)) < 0.1] = 1
    if target.all():
        target[rng.integers(h), rng.integers(w)] = 0
    logits = np.where(target == 1, rng.uniform(0.9, 3.5, (h, w)), rng.uniform(-3.5, -1.2, (h, w)))
    cut = _logit(threshold)
    points = sorted({round(p, 6) for p in (cut, threshold, 0.0, 0.5)})
    gaps = [(a, b) for a, b in zip(points, points[1:]) if b - a > 0.1]
    objects = list(rng.permutation(np.flatnonzero(target)))
    others = list(rng.permutation(np.flatnonzero(target == 0)))
    between = [objects.pop() if objects else others.pop() for _ in gaps]
    rest = objects + others  # a few errors among the other pixels, at least one
    errors = [i for i in rest if rng.random() < 0.15] or [rest[int(rng.integers(len(rest)))]]
    logits.flat[errors] = -logits.flat[errors]
    for index, (low, high) in zip(between, gaps):  # one pixel between each two cuts
        logits.flat[index] = rng.uniform(low + 0.04, high - 0.04)
    return _away(logits, [0.0, cut, threshold, 0.5]), target


def _nothing(rng: np.random.Generator, h: int, w: int, predicted: bool) -> tuple:
    """(logits, target) of an image with nothing to find; ``predicted``: 2 pixels found."""
    logits = rng.uniform(-3.5, -1.2, (h, w))
    if predicted:
        logits.flat[rng.choice(h * w, size=2, replace=False)] = rng.uniform(1.2, 3.0, 2)
    return logits, np.zeros((h, w), np.int64)


def _batch(pairs: list[tuple], **kwargs: Any) -> dict[str, Any]:
    logits = np.stack([p[0] for p in pairs])[:, None]
    return _case(logits, np.stack([p[1] for p in pairs]), drawn=True, **kwargs)


def _describe_batch(n: int, h: int, w: int) -> str:
    return f"a drawn batch of {'one image' if n == 1 else f'{n} images'} of {h} x {w} pixels"


def _draw_accuracy(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example, a batch of 2-4 images, one image, and a batch predicted right."""
    n, (h, w) = int(rng.integers(2, 5)), _size(rng)
    mixed = _batch([_object(rng, h, w, 0.5) for _ in range(n)], what=_describe_batch(n, h, w))
    h1, w1 = _size(rng)
    one = _batch([_object(rng, h1, w1, 0.5)], what=_describe_batch(1, h1, w1))
    n2, (h2, w2) = int(rng.integers(2, 4)), _size(rng)
    right = []
    for _ in range(n2):
        logits, target = _object(rng, h2, w2, 0.5)
        right.append((np.where(target == 1, np.abs(logits) + 0.6, -np.abs(logits) - 0.6), target))
    all_right = _batch(right, what=_describe_batch(n2, h2, w2) + " predicted right everywhere")
    return {"cases": [_worked_example(), mixed, one, all_right]}


def _draw_overlap(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example and four drawn batches: one image, a threshold other than 0.5,
    a both-empty image, an image with nothing to find but something predicted."""
    h, w = _size(rng)
    one = _batch([_object(rng, h, w, 0.5)], what=_describe_batch(1, h, w))
    t = float(rng.choice([0.3, 0.35, 0.4, 0.6, 0.65, 0.7]))
    n, (h, w) = int(rng.integers(2, 5)), _size(rng)
    threshold = _batch([_object(rng, h, w, t) for _ in range(n)], threshold=t, alone=True,
                       what=_describe_batch(n, h, w) + f" with threshold={t:g}")
    cases = [_worked_example(), one, threshold]
    for predicted, role in ((False, "an empty target and an empty prediction"),
                            (True, "an empty target but 2 predicted pixels")):
        n, (h, w) = int(rng.integers(2, 4)), _size(rng)
        pairs = [_object(rng, h, w, 0.5) for _ in range(n - 1)]
        at = int(rng.integers(0, n))
        pairs.insert(at, _nothing(rng, h, w, predicted))
        cases.append(_batch(pairs, what=f"{_describe_batch(n, h, w)} whose image {at + 1} has "
                                        f"{role}"))
    return {"cases": cases}


# --------------------------------------------------------------------------- asking


def _ask(fn: Callable, cases: dict[str, Any]) -> dict[str, Any]:
    """The student's value on each batch (and on each image alone where asked)."""
    answers = []
    for case in cases["cases"]:
        args = (values.tensor(case["logits"]), values.tensor(case["target"]))
        kwargs = {} if case["threshold"] is None else {"threshold": case["threshold"]}
        result, error = values.call(fn, *args, **kwargs)
        answer = {"value": error or values.describe(result)}
        if case["alone"]:
            answer["alone"] = []
            for i in range(len(case["target"])):
                one = (values.tensor(case["logits"][i:i + 1]),
                       values.tensor(case["target"][i:i + 1]))
                result, error = values.call(fn, *one, **kwargs)
                answer["alone"].append(error or values.describe(result))
        answers.append(answer)
    return {"cases": answers}


# --------------------------------------------------------------------------- judging: shared


def _stop_on_stub_or_crash(exercise: str, cases: list, answers: list) -> None:
    """The stub anywhere means not done; a crash fails, unless it is only on a batch of one
    image (the squeeze mistake, for Dice and IoU: ``_judge_overlap`` names it)."""
    from segkit.checks import core

    records = [(c, core.raised(a["value"])) for c, a in zip(cases, answers, strict=True)]
    for _, record in records:
        if record and record.get("stub"):
            core.fail_for(record, exercise)
    for case, record in records:
        if record and not (exercise != "pixel_accuracy" and len(case["target"]) == 1):
            with judging(case["drawn"]):
                core.fail_for(record, exercise)


def _number(desc: dict[str, Any], name: str, case: dict[str, Any], *,
            many_mistake: str, **fields: Any) -> float:
    """The student's answer as a float, or a failure saying why it is not one number."""
    with judging(case["drawn"]):
        if desc["kind"] == "none":
            fail(f"{name} returned None", mistake="returns-none",
                 hint="your function computes the value but does not `return` it.")
        if desc["kind"] in ("tensor", "ndarray") and math.prod(desc["shape"]) != 1:
            fail(f"{name} should be one number for the whole batch, but on {case['what']} it "
                 f"is {values.shown(desc)}", mistake=many_mistake, **fields)
        number = values.number(desc)
        if number is None:
            fail(f"{name} should be a number (a Python float), but on {case['what']} it is "
                 f"{values.shown(desc)}", mistake="check-error")
        return number


def _is_integer(desc: dict[str, Any]) -> bool:
    return desc["kind"] == "int" or (desc["kind"] in ("tensor", "ndarray", "numpy-scalar")
                                     and desc["dtype"].startswith(("int", "uint")))


def _expect_float(exercise: str, cases: list, descs: list) -> None:
    """The values are right: each must be a Python float (or a NumPy float)."""
    for case, desc in zip(cases, descs):
        if desc["kind"] not in ("float",) and not (desc["kind"] == "numpy-scalar"
                                                   and desc["dtype"].startswith("float")):
            with judging(case["drawn"]):
                fail(f"{exercise}(logits, target) is {values.shown(desc)} on {case['what']}: "
                     "the right value, but not a Python float", mistake="returns-tensor")


def _first_wrong(cases: list, got: list[float], right: list[float]) -> int | None:
    """The first batch whose value is wrong (the worked example comes first)."""
    return next((i for i, (g, r) in enumerate(zip(got, right))
                 if not close(g, r, abs_tol=1e-5)), None)


# --------------------------------------------------------------------------- pixel accuracy


def _accuracy_forms(case: dict[str, Any]) -> dict[str, list[float]]:
    """The value each catalogued pixel-accuracy mistake gives on ``case`` (its forms)."""
    logits, target = case["logits"].astype(np.float64), case["target"]
    n, h, w = target.shape
    right = (logits[:, 0] > 0) == target
    broadcast = (logits > 0) == target  # (N, 1, H, W) against (N, H, W): (N, N, H, W)
    return {
        "channel-broadcast": [broadcast.mean(), broadcast.sum() / target.size,
                              broadcast.mean() * n],
        "accuracy-integer-division": [float(math.floor(right.mean() + 1e-12))],
        "accuracy-compares-scores": [0.0],
        "accuracy-wrong-count": [right.sum() / n, right.sum() / (h * w)],
        "target-as-prediction": [1.0],
        "threshold-on-logits": [((logits[:, 0] > 0.5) == target).mean()],
    }


def _judge_pixel_accuracy(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    cases, answers = cases["cases"], answers["cases"]
    name = "pixel_accuracy(logits, target)"
    _stop_on_stub_or_crash("pixel_accuracy", cases, answers)
    descs = [a["value"] for a in answers]
    got = [_number(d, name, c, many_mistake="accuracy-wrong-dim") for c, d in zip(cases, descs)]
    right = [reference_pixel_accuracy(values.tensor(c["logits"]), values.tensor(c["target"]))
             for c in cases]
    index = _first_wrong(cases, got, right)
    if index is None:
        _expect_float("pixel_accuracy", cases, descs)
        return f"{right[0]:.4f} on 2 images of 3 x 4 pixels"
    case = cases[index]
    pixels = case["target"].size
    message = (f"{name} is {got[index]:.6g} on {case['what']}, expected {right[index]:.4f} "
               f"({round(right[index] * pixels)} of {pixels} pixels right)")
    with judging(case["drawn"]):
        mistake = explained_by(got, [_accuracy_forms(c) for c in cases])
        if mistake is None and got[index] == 0 and _is_integer(descs[index]):
            mistake = "accuracy-integer-division"
        if mistake is None and any(g > 1 for g in got):
            mistake = "accuracy-wrong-count"
        if got[index] > 1:
            message += "; an accuracy lies between 0 and 1"
        fail(message, mistake=mistake, threshold="0.5",
             hint=None if mistake else GENERAL_HINT)


check_pixel_accuracy = Check(
    "04", "pixel_accuracy", "pixel_accuracy on a batch of 2 images",
    references=("segkit.checks.lesson04.reference_pixel_accuracy",
                "segkit.metrics.pixel_accuracy"),
    draw_cases=_draw_accuracy, ask_student=_ask, judge_answers=_judge_pixel_accuracy)


# --------------------------------------------------------------------------- Dice and IoU

_TITLE = {"dice": "Dice", "iou": "IoU"}
_FORMULA = {"dice": "Dice = 2|P ∩ T| / (|P| + |T|)", "iou": "IoU = |P ∩ T| / |P ∪ T|"}
_EXERCISE = {"dice": "dice_score", "iou": "iou_score"}


def _overlap(pred: np.ndarray, target: np.ndarray, kind: str, *, pooled: bool = False,
             empty: str = "one", smooth: float = 0.0, variant: str = "right") -> float:
    """Dice/IoU of float (N, H, W) ``pred`` (0/1 or soft) against ``target``, many ways
    (the catalogued mistakes' arithmetic, in float64)."""
    t = target.astype(np.float64)
    axes = (0, 1, 2) if pooled else (1, 2)
    inter = np.atleast_1d((pred * t).sum(axes))
    size_p, size_t = np.atleast_1d(pred.sum(axes)), np.atleast_1d(t.sum(axes))
    if variant in ("no-factor-2", "double-union"):
        num, den = inter, size_p + size_t
    elif (kind == "dice") != (variant == "swapped"):  # Dice, or IoU's formula swapped for Dice's
        num, den = 2 * inter, size_p + size_t
    else:
        num, den = inter, size_p + size_t - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (num + smooth) / (den + smooth)
    both_empty = (size_p + size_t) == 0
    if smooth == 0.0:
        fill = {"one": 1.0, "zero": 0.0, "nan": math.nan, "skip": math.nan,
                "target-one": 1.0}[empty]
        scores = np.where(both_empty, fill, scores)
    if empty == "target-one":
        scores = np.where(size_t == 0, 1.0, scores)
    if empty == "skip":
        return float(np.nanmean(scores)) if not np.isnan(scores).all() else math.nan
    return float(scores.mean())


def _overlap_forms(kind: str, case: dict[str, Any]) -> dict[str, list[float]]:
    """The value each catalogued Dice/IoU mistake gives on ``case`` (its forms)."""
    raw = case["logits"][:, 0].astype(np.float64)
    target, t = case["target"], case["threshold"] or 0.5
    probs = 1 / (1 + np.exp(-raw))
    labels = (raw > _logit(t)).astype(np.float64)
    soft_target = 1 / (1 + np.exp(-target.astype(np.float64)))  # 0 -> 0.5, 1 -> 0.73
    forms = {
        "target-as-prediction": [1.0],
        f"{kind}-on-logits": [_overlap(raw, target, kind, pooled=p) for p in (False, True)],
        f"{kind}-without-threshold": [_overlap(probs, target, kind, pooled=p)
                                      for p in (False, True)],
        "sigmoid-on-target": [_overlap(labels, soft_target, kind),
                              _overlap(probs, soft_target, kind)],
        "threshold-on-logits": [_overlap((raw > t).astype(np.float64), target, kind),
                                _overlap((raw > 0.5).astype(np.float64), target, kind)],
        f"{kind}-pooled": [_overlap(labels, target, kind, pooled=True)],
        f"{kind}-smoothing": [_overlap(labels, target, kind, smooth=1.0)],
    }
    if kind == "dice":
        forms["dice-no-factor-2"] = [_overlap(labels, target, kind, variant="no-factor-2"),
                                     _overlap(labels, target, kind) / 2]
        forms["dice-is-iou"] = [_overlap(labels, target, kind, variant="swapped")]
    else:
        forms["iou-is-dice"] = [_overlap(labels, target, kind, variant="swapped")]
        forms["iou-union-double-counts"] = [_overlap(labels, target, kind, variant="double-union")]
    forms["threshold-ignored"] = [_overlap((raw > 0).astype(np.float64), target, kind)]
    forms["empty-nan"] = [_overlap(labels, target, kind, empty="nan")]
    forms["empty-zero"] = [_overlap(labels, target, kind, empty="zero")]
    forms["empty-skipped"] = [_overlap(labels, target, kind, empty="skip")]
    forms["empty-target-one"] = [_overlap(labels, target, kind, empty="target-one")]
    return forms


def _right_overlap(kind: str, case: dict[str, Any]) -> float:
    reference = reference_dice_score if kind == "dice" else reference_iou_score
    return reference(values.tensor(case["logits"]), values.tensor(case["target"]),
                     threshold=case["threshold"] or 0.5)


def _judge_overlap(kind: str, cases: dict[str, Any], answers: dict[str, Any]) -> str:
    """The batches' values: right, or which mistake gives them all."""
    from segkit.checks import core

    exercise, title = _EXERCISE[kind], _TITLE[kind]
    cases, answers = cases["cases"], answers["cases"]
    _stop_on_stub_or_crash(exercise, cases, answers)
    for case, answer in zip(cases, answers):  # left: crashes on a batch of one image
        record = core.raised(answer["value"])
        if record:
            with judging(case["drawn"]):
                fail(f"{exercise} raised `{record['type']}: {record['message']}` on "
                     f"{case['what']}, and no error on the larger batches", mistake="squeeze-batch")
    name = f"{exercise}(logits, target)"
    descs = [a["value"] for a in answers]
    got = [_number(d, name, c, many_mistake="per-image-tensor", title=title)
           for c, d in zip(cases, descs)]
    right = [_right_overlap(kind, c) for c in cases]
    index = _first_wrong(cases, got, right)
    if index is None:
        _expect_float(exercise, cases, descs)
        return f"{title} {right[0]:.4f} on a big and a small object"
    case = cases[index]
    message = f"{name} is {got[index]:.6g} on {case['what']}, expected {right[index]:.4f}"
    with judging(case["drawn"]):
        mistake = explained_by(got, [_overlap_forms(kind, c) for c in cases], rel_tol=1e-3)
        if mistake is None and all(len(cases[i]["target"]) == 1 for i, (g, r)
                                   in enumerate(zip(got, right)) if not close(g, r, abs_tol=1e-5)):
            mistake = "squeeze-batch"
        if mistake is None and _each_image_alone_right(kind, case, answers[index]):
            mistake = "channel-broadcast"
            message += ", although each of its images alone gets its right score"
        threshold = f"{case['threshold'] or 0.5:g}"
        fail(message, mistake=mistake, title=title, formula=_FORMULA[kind], threshold=threshold,
             hint=None if mistake else GENERAL_HINT)


def _each_image_alone_right(kind: str, case: dict[str, Any], answer: dict[str, Any]) -> bool:
    """Does the student's function score each image of ``case`` right on its own?"""
    alone = answer.get("alone")
    if not alone or len(alone) < 2:
        return False
    for i, desc in enumerate(alone):
        one = dict(case, logits=case["logits"][i:i + 1], target=case["target"][i:i + 1])
        value = values.number(desc) if isinstance(desc, dict) and "kind" in desc else None
        if value is None or not close(value, _right_overlap(kind, one), abs_tol=1e-5):
            return False
    return True


check_dice_score = Check(
    "04", "dice_score", "dice_score on 5 small batches",
    references=("segkit.checks.lesson04.reference_dice_score", "segkit.metrics.dice_score",
                "segkit.metrics.dice_per_image"),
    draw_cases=_draw_overlap, ask_student=_ask,
    judge_answers=lambda cases, answers: _judge_overlap("dice", cases, answers))

check_iou_score = Check(
    "04", "iou_score", "iou_score on 5 small batches",
    references=("segkit.checks.lesson04.reference_iou_score", "segkit.metrics.iou_score",
                "segkit.metrics.iou_per_image"),
    draw_cases=_draw_overlap, ask_student=_ask,
    judge_answers=lambda cases, answers: _judge_overlap("iou", cases, answers))
