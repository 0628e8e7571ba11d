"""Every mistake in more than one form: differently written wrong implementations of the
same mistake each get that mistake's id and hint, and no other mistake's hint.

The lesson files (tests/test_checks_lessonNN.py) hold one form of most mistakes; this file
holds the mistakes whose hints used to misfire and the ones added with the catalogue, each
written at least twice, the way different students write them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from check_helpers import failure
from check_helpers import register_wrong as corpus_register
from segkit.checks import (lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06,
                           lesson07,
                           lesson08)
from segkit.checks.catalogue import MISTAKES, hint_for
from segkit.metrics import dice_per_image

WRONG: list = []  # (check, student, mistake, fields of the catalogue hint)


def wrong(check, mistake, own_hint=False, **fields):
    """Register the decorated function as a form of ``mistake`` for ``check``
    (``own_hint``: the check words the hint with its values, not the catalogue's)."""
    def register(student):
        WRONG.append(pytest.param(check, student, mistake, None if own_hint else fields,
                                  id=f"{mistake}-{student.__name__}"))
        return corpus_register(check, student, mistake)
    return register


@pytest.mark.parametrize("check, student, mistake, fields", WRONG)
def test_each_form_gets_its_mistakes_hint_and_no_other(check, student, mistake, fields):
    error = failure(check, student)
    assert error.mistake == mistake, str(error)
    if fields is not None:  # the check uses the catalogue's hint (not one with its values)
        assert error.hint == hint_for(mistake, **fields), str(error)
    assert error.hint
    others = [m.hint for m in MISTAKES.values() if m.id != mistake and "{" not in m.hint]
    assert not [hint for hint in others if hint in error.hint], str(error)


# Mistakes whose every form is in this file (new ones, and ones whose hint misfired):
# at least two forms each. The others have one form in tests/test_checks_lessonNN.py and
# a second, written differently, here.
ALL_FORMS_HERE = {"channel-broadcast", "sigmoid-on-target", "step-before-backward",
                  "no-zero-grad", "train-in-eval-mode", "softmax-before-cross-entropy",
                  "bce-for-multiclass", "mask-channel-axis", "ignore-index-missing",
                  "ignore-as-background", "class-weights-ignored", "loss-summed",
                  "loss-not-differentiable", "argmax-wrong-dim", "max-values-not-indices"}


def test_the_new_and_mended_mistakes_have_two_forms_here():
    forms: dict[str, set] = {}
    for param in WRONG:
        forms.setdefault(param.values[2], set()).add(param.values[1])
    assert {m: len(forms.get(m, ())) for m in ALL_FORMS_HERE if len(forms.get(m, ())) < 2} == {}


# --------------------------------------------------------------------------- lesson 04
# The channel axis kept: (N, 1, H, W) predictions against an (N, H, W) target broadcast to
# (N, N, H, W). With `.sum() / target.numel()` the value exceeds 1, which once made the
# check blame the divisor.


@wrong(lesson04.check_pixel_accuracy, "channel-broadcast")
def accuracy_broadcast_sum_over_numel(logits, target):
    preds = (logits > 0).long()
    return (preds == target).sum().item() / target.numel()


@wrong(lesson04.check_pixel_accuracy, "channel-broadcast")
def accuracy_broadcast_float_mean(logits, target):
    return ((logits > 0).float() == target).float().mean().item()


@wrong(lesson04.check_pixel_accuracy, "channel-broadcast")
def accuracy_broadcast_sigmoid_count(logits, target):
    right = torch.count_nonzero((torch.sigmoid(logits) > 0.5) == target.bool())
    return float(right) / float(target.shape[0] * target.shape[1] * target.shape[2])


@wrong(lesson04.check_dice_score, "sigmoid-on-target", formula=lesson04._FORMULA["dice"])
def dice_sigmoid_of_target(logits, target, threshold=0.5):
    p = (torch.sigmoid(logits[:, 0]) > threshold).float()
    t = torch.sigmoid(target.float())
    inter, size = (p * t).sum((1, 2)), p.sum((1, 2)) + t.sum((1, 2))
    return torch.where(size > 0, 2 * inter / size.clamp(min=1e-9), 1.0).mean().item()


@wrong(lesson04.check_dice_score, "sigmoid-on-target", formula=lesson04._FORMULA["dice"])
def dice_sigmoid_of_both(logits, target, threshold=0.5):
    scores = []
    for lg, t in zip(logits, target):
        p = (lg[0].sigmoid() > threshold).float()
        t = t.float().sigmoid()
        both = p.sum() + t.sum()
        scores.append(1.0 if both == 0 else float(2 * (p * t).sum() / both))
    return sum(scores) / len(scores)


@wrong(lesson04.check_iou_score, "sigmoid-on-target", formula=lesson04._FORMULA["iou"])
def iou_sigmoid_of_target(logits, target, threshold=0.5):
    p = (torch.sigmoid(logits.squeeze(1)) > threshold).double()
    t = target.double().sigmoid()
    inter = (p * t).sum((1, 2))
    union = p.sum((1, 2)) + t.sum((1, 2)) - inter
    return torch.where(union > 0, inter / union, 1.0).mean().item()


@wrong(lesson04.check_iou_score, "sigmoid-on-target", formula=lesson04._FORMULA["iou"])
def iou_soft_target_loop(logits, target, threshold=0.5):
    values = []
    for i in range(len(target)):
        p = torch.sigmoid(logits[i, 0]).gt(threshold).float()
        t = torch.sigmoid(target[i].float())
        inter = (p * t).sum()
        values.append(float(inter / (p.sum() + t.sum() - inter)) if (p + t).sum() else 1.0)
    return sum(values) / len(values)


# --------------------------------------------------------------------------- lesson 03


def _mean(total, n):
    return total / n


@wrong(lesson03.check_train_one_epoch, "step-before-backward")
def step_then_backward(model, loader, loss_fn, optimizer, device):
    model.train()
    total = n = 0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        optimizer.step()
        loss.backward()
        total, n = total + loss.item() * len(images), n + len(images)
    return _mean(total, n)


@wrong(lesson03.check_train_one_epoch, "step-before-backward")
def step_first_in_the_loop(model, loader, loss_fn, optimizer, device):
    model.train()
    total, n = 0.0, 0
    for x, y in loader:
        optimizer.step()
        optimizer.zero_grad()
        loss = loss_fn(model(x.to(device)), y.to(device))
        loss.backward()
        total += float(loss) * x.shape[0]
        n += x.shape[0]
    return total / n


@wrong(lesson03.check_train_one_epoch, "no-zero-grad")
def never_zero_grad(model, loader, loss_fn, optimizer, device):
    model.train()
    total = n = 0
    for images, masks in loader:
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total, n = total + loss.item() * len(images), n + len(images)
    return _mean(total, n)


@wrong(lesson03.check_train_one_epoch, "no-zero-grad")
def zero_grad_once_before_the_loop(model, loader, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    losses, sizes = [], []
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(x.shape[0])
    return sum(a * b for a, b in zip(losses, sizes)) / sum(sizes)


@wrong(lesson03.check_train_one_epoch, "train-in-eval-mode")
def no_model_train(model, loader, loss_fn, optimizer, device):
    total = n = 0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total, n = total + loss.item() * len(images), n + len(images)
    return _mean(total, n)


@wrong(lesson03.check_train_one_epoch, "train-in-eval-mode")
def model_train_after_the_loop(model, loader, loss_fn, optimizer, device):
    total, n = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
        n += len(x)
    model.train()  # too late: the epoch ran in eval mode
    return total / n


# --------------------------------------------------------------------------- lesson 05


@wrong(lesson05.check_multiclass_loss, "softmax-before-cross-entropy")
def loss_after_softmax(logits, target, weights):
    return F.cross_entropy(logits.softmax(dim=1), target, weight=weights, ignore_index=255)


@wrong(lesson05.check_multiclass_loss, "softmax-before-cross-entropy")
def loss_module_after_softmax(logits, target, weights):
    probs = nn.Softmax(dim=1)(logits)
    return nn.CrossEntropyLoss(weight=weights, ignore_index=255)(probs, target)


@wrong(lesson05.check_multiclass_loss, "bce-for-multiclass")
def loss_bce_on_labels(logits, target, weights):
    return nn.BCEWithLogitsLoss()(logits, target.float())


@wrong(lesson05.check_multiclass_loss, "bce-for-multiclass")
def loss_bce_one_hot(logits, target, weights):
    one_hot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1])
    return F.binary_cross_entropy_with_logits(logits, one_hot.permute(0, 3, 1, 2).float())


@wrong(lesson05.check_multiclass_loss, "mask-channel-axis")
def loss_target_unsqueezed(logits, target, weights):
    return F.cross_entropy(logits, target.unsqueeze(1), weight=weights, ignore_index=255)


@wrong(lesson05.check_multiclass_loss, "mask-channel-axis")
def loss_target_indexed_with_none(logits, target, weights):
    return nn.CrossEntropyLoss(weight=weights, ignore_index=255)(logits, target[:, None])


@wrong(lesson05.check_multiclass_loss, "ignore-index-missing")
def loss_without_ignore_index(logits, target, weights):
    return F.cross_entropy(logits, target, weight=weights)


@wrong(lesson05.check_multiclass_loss, "ignore-index-missing")
def loss_module_default_ignore(logits, target, weights):
    return nn.CrossEntropyLoss(weight=weights)(logits, target)


@wrong(lesson05.check_multiclass_loss, "ignore-as-background")
def loss_border_to_zero(logits, target, weights):
    return F.cross_entropy(logits, torch.where(target == 255, 0, target), weight=weights)


@wrong(lesson05.check_multiclass_loss, "ignore-as-background")
def loss_border_masked_fill(logits, target, weights):
    return F.cross_entropy(logits, target.masked_fill(target == 255, 0), weight=weights,
                           ignore_index=255)


@wrong(lesson05.check_multiclass_loss, "class-weights-ignored")
def loss_unweighted(logits, target, weights):
    return F.cross_entropy(logits, target, ignore_index=255)


@wrong(lesson05.check_multiclass_loss, "class-weights-ignored")
def loss_module_unweighted(logits, target, weights):
    return nn.CrossEntropyLoss(ignore_index=255)(logits, target)


@wrong(lesson05.check_multiclass_loss, "loss-summed")
def loss_reduction_sum(logits, target, weights):
    return F.cross_entropy(logits, target, weight=weights, ignore_index=255, reduction="sum")


@wrong(lesson05.check_multiclass_loss, "loss-summed")
def loss_per_pixel_summed(logits, target, weights):
    per_pixel = nn.CrossEntropyLoss(weight=weights, ignore_index=255, reduction="none")
    return per_pixel(logits, target).sum()


@wrong(lesson05.check_multiclass_loss, "loss-not-differentiable")
def loss_item(logits, target, weights):
    return F.cross_entropy(logits, target, weight=weights, ignore_index=255).item()


@wrong(lesson05.check_multiclass_loss, "loss-not-differentiable")
def loss_detached(logits, target, weights):
    return F.cross_entropy(logits.detach(), target, weight=weights, ignore_index=255)


@wrong(lesson05.check_predict_labels, "argmax-wrong-dim")
def labels_argmax_dim0(logits):
    return logits.argmax(dim=0)


@wrong(lesson05.check_predict_labels, "argmax-wrong-dim")
def labels_argmax_last(logits):
    return torch.argmax(logits, -1)


@wrong(lesson05.check_predict_labels, "argmax-wrong-dim")
def labels_softmax_then_argmax_dim2(logits):
    return logits.softmax(1).argmax(2)


@wrong(lesson05.check_predict_labels, "mask-channel-axis")
def labels_keepdim(logits):
    return logits.argmax(dim=1, keepdim=True)


@wrong(lesson05.check_predict_labels, "mask-channel-axis")
def labels_unsqueezed(logits):
    return logits.max(1).indices.unsqueeze(1)


@wrong(lesson05.check_predict_labels, "max-values-not-indices")
def labels_max_values(logits):
    return logits.max(dim=1).values


@wrong(lesson05.check_predict_labels, "max-values-not-indices")
def labels_amax(logits):
    return torch.amax(logits, dim=1)


# --------------------------------------------------------------------------- lesson 01


@wrong(lesson01.check_to_class_indices, "mask-channel-axis")
def indices_with_channel_first(mask_array):
    return (np.asarray(mask_array) > 0).astype(np.int64)[None]


@wrong(lesson01.check_to_class_indices, "mask-channel-axis")
def indices_with_channel_last(mask_array):
    return torch.from_numpy((mask_array > 0).copy()).long().unsqueeze(-1)


# --------------------------------------------------------------------------- lesson 00


@wrong(lesson00.check_float32_mib, "megabytes-not-mib")
def mib_decimal(shape):
    return math.prod(shape) * 4 / 1e6


@wrong(lesson00.check_float32_mib, "megabytes-not-mib")
def mib_kilo_kilo(shape):
    n = 1
    for size in shape:
        n *= size
    return n * 4 / 1000 / 1000


@wrong(lesson00.check_float32_mib, "bytes-not-mib")
def mib_left_in_bytes(shape):
    return float(np.prod(shape)) * 4


@wrong(lesson00.check_float32_mib, "bytes-not-mib")
def mib_element_size_only(shape):
    return torch.empty(shape, device="meta").element_size() * math.prod(shape) * 1.0


# --------------------------------------------------------------------------- lesson 04
# The Dice/IoU formula slips, written as loops and with NumPy (the lesson file holds
# vectorised torch versions).


def _loop_scores(logits, target, threshold, score):
    values = []
    for lg, t in zip(logits, target):
        p = (torch.sigmoid(lg[0]) > threshold).double()
        values.append(score(p, t.double()))
    return sum(values) / len(values)


@wrong(lesson04.check_dice_score, "dice-no-factor-2")
def dice_loop_without_2(logits, target, threshold=0.5):
    return _loop_scores(logits, target, threshold, lambda p, t: 1.0 if p.sum() + t.sum() == 0
                        else float((p * t).sum() / (p.sum() + t.sum())))


@wrong(lesson04.check_dice_score, "dice-is-iou")
def dice_loop_as_iou(logits, target, threshold=0.5):
    return _loop_scores(logits, target, threshold, lambda p, t: 1.0 if (p + t).sum() == 0
                        else float((p * t).sum() / ((p + t) > 0).sum()))


@wrong(lesson04.check_iou_score, "iou-is-dice")
def iou_loop_as_dice(logits, target, threshold=0.5):
    return _loop_scores(logits, target, threshold, lambda p, t: 1.0 if (p + t).sum() == 0
                        else float(2 * (p * t).sum() / (p.sum() + t.sum())))


@wrong(lesson04.check_iou_score, "iou-union-double-counts")
def iou_numpy_sum_union(logits, target, threshold=0.5):
    p = 1 / (1 + np.exp(-logits.numpy()[:, 0])) > threshold
    t = target.numpy() > 0
    inter = (p & t).sum(axis=(1, 2))
    union = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
    return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))


def _numpy_overlap(p, t, kind, eps=0.0):
    inter = (p * t).sum(axis=(1, 2))
    total = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
    num, den = (2 * inter, total) if kind == "dice" else (inter, total - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den + eps == 0, 1.0, (num + eps) / (den + eps))


for _kind in ("dice", "iou"):
    _check = {"dice": lesson04.check_dice_score, "iou": lesson04.check_iou_score}[_kind]

    def _on_logits(logits, target, threshold=0.5, kind=_kind):
        return float(_numpy_overlap(logits.numpy()[:, 0], target.numpy().astype(float),
                                    kind).mean())

    def _soft(logits, target, threshold=0.5, kind=_kind):
        p = torch.sigmoid(logits).squeeze(1).numpy()
        return float(_numpy_overlap(p, target.numpy().astype(float), kind).mean())

    def _pooled_numpy(logits, target, threshold=0.5, kind=_kind):
        p = (torch.sigmoid(logits[:, 0]).numpy() > threshold).astype(float)[None].reshape(
            1, -1, target.shape[-1])
        return float(_numpy_overlap(p, target.numpy().astype(float).reshape(1, -1,
                                                                         target.shape[-1]),
                                    kind).mean())

    def _smooth_numpy(logits, target, threshold=0.5, kind=_kind):
        p = (torch.sigmoid(logits[:, 0]).numpy() > threshold).astype(float)
        return float(_numpy_overlap(p, target.numpy().astype(float), kind, eps=1.0).mean())

    for _fn, _what in ((_on_logits, "on-logits"), (_soft, "without-threshold"),
                       (_pooled_numpy, "pooled"), (_smooth_numpy, "smoothing")):
        _fn.__name__ = f"{_kind}_{_what.replace('-', '_')}_numpy"
        wrong(_check, f"{_kind}-{_what}")(_fn)


@wrong(lesson04.check_pixel_accuracy, "accuracy-wrong-dim")
def accuracy_per_image(logits, target):
    return ((logits[:, 0] > 0).long() == target).float().mean(dim=(1, 2))


# --------------------------------------------------------------------------- lesson 05


def _bincount(masks, num_classes, ignore_index):
    values = masks[masks != ignore_index]
    return torch.bincount(values, minlength=num_classes).double()


@wrong(lesson05.check_class_weights, "weights-backwards")
def weights_as_frequencies(masks, num_classes, ignore_index=255):
    counts = _bincount(masks, num_classes, ignore_index)
    w = counts / counts.sum()
    return (w / w[counts > 0].mean()).float()


@wrong(lesson05.check_class_weights, "zero-count-inf")
def weights_divide_by_zero(masks, num_classes, ignore_index=255):
    counts = _bincount(masks, num_classes, ignore_index).numpy()
    with np.errstate(divide="ignore"):
        w = counts.sum() / counts
    return torch.tensor(w / w[np.isfinite(w)].mean(), dtype=torch.float32)


@wrong(lesson05.check_class_weights, "weights-not-normalised")
def weights_raw_inverse(masks, num_classes, ignore_index=255):
    counts = _bincount(masks, num_classes, ignore_index)
    return torch.where(counts > 0, counts.sum() / counts.clamp(min=1), 0.0).float()


@wrong(lesson05.check_class_weights, "weights-not-tensor")
def weights_as_list(masks, num_classes, ignore_index=255):
    counts = _bincount(masks, num_classes, ignore_index)
    w = torch.where(counts > 0, counts.sum() / counts.clamp(min=1), 0.0)
    return (w / w[counts > 0].mean()).tolist()


@wrong(lesson05.check_class_weights, "weights-wrong-dtype")
def weights_float64_numpy(masks, num_classes, ignore_index=255):
    counts = _bincount(masks, num_classes, ignore_index).numpy()
    w = np.zeros(num_classes)
    w[counts > 0] = 1 / counts[counts > 0]
    return torch.from_numpy(w / w[counts > 0].mean())


@wrong(lesson05.check_class_weights, "weights-wrong-shape")
def weights_unique_classes_only(masks, num_classes, ignore_index=255):
    _, counts = torch.unique(masks[masks != ignore_index], return_counts=True)
    w = counts.sum() / counts.double()
    return (w / w.mean()).float()


def _iou_numpy(cm, denominator, include_background, nan_as_zero=False):
    cm = np.asarray(cm, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(cm) / denominator(cm)
    if not include_background:
        iou = iou[1:]
    return float(np.nan_to_num(iou).mean() if nan_as_zero else np.nanmean(iou))


@wrong(lesson05.check_miou_from_confusion, "precision-not-iou")
def miou_column_sums(cm, include_background=True):
    return _iou_numpy(cm, lambda c: c.sum(axis=0), include_background)


@wrong(lesson05.check_miou_from_confusion, "recall-not-iou")
def miou_row_sums(cm, include_background=True):
    return _iou_numpy(cm, lambda c: c.sum(axis=1), include_background)


@wrong(lesson05.check_miou_from_confusion, "union-double-counts-diagonal")
def miou_rows_plus_columns(cm, include_background=True):
    return _iou_numpy(cm, lambda c: c.sum(axis=0) + c.sum(axis=1), include_background)


@wrong(lesson05.check_miou_from_confusion, "nan-class-as-zero")
def miou_nan_to_num(cm, include_background=True):
    return _iou_numpy(cm, lambda c: c.sum(0) + c.sum(1) - np.diag(c), include_background,
                      nan_as_zero=True)


@wrong(lesson05.check_miou_from_confusion, "background-not-excluded")
def miou_ignores_the_flag(cm, include_background=True):
    return _iou_numpy(cm, lambda c: c.sum(0) + c.sum(1) - np.diag(c), True)


@wrong(lesson05.check_miou_from_confusion, "background-pixels-dropped")
def miou_cut_matrix(cm, include_background=True):
    cm = np.asarray(cm, dtype=float)
    if not include_background:
        cm = cm[1:, 1:]
    return _iou_numpy(cm, lambda c: c.sum(0) + c.sum(1) - np.diag(c), True)


@wrong(lesson05.check_miou_from_confusion, "miou-not-number")
def miou_per_class(cm, include_background=True):
    cm = cm.double()
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
    return iou if include_background else iou[1:]


# --------------------------------------------------------------------------- lesson 06


@wrong(lesson06.check_log_spaced, "linear-spacing")
def spaced_by_steps(low, high, n):
    step = (high - low) / (n - 1)
    return [low + i * step for i in range(n)]


@wrong(lesson06.check_log_spaced, "logspace-takes-exponents")
def spaced_torch_logspace(low, high, n):
    return torch.logspace(low, high, n, dtype=torch.float64).tolist()


@wrong(lesson06.check_log_spaced, "endpoint-excluded")
def spaced_ratio_over_n(low, high, n):
    ratio = (high / low) ** (1 / n)
    return [low * ratio ** i for i in range(n)]


@wrong(lesson06.check_log_spaced, "exponents-not-values")
def spaced_exponents(low, high, n):
    return [math.log10(low) + i * (math.log10(high) - math.log10(low)) / (n - 1)
            for i in range(n)]


@wrong(lesson06.check_log_spaced, "wrong-count")
def spaced_one_short(low, high, n):
    ratio = (high / low) ** (1 / (n - 2))
    return [low * ratio ** i for i in range(n - 1)]


# --------------------------------------------------------------------------- lesson 07


@wrong(lesson07.check_mask_to_png_array, "png-left-0-1")
def png_uint8_only(mask):
    return np.asarray(mask).astype("uint8")


@wrong(lesson07.check_mask_to_png_array, "png-inverted")
def png_inverted(mask):
    return np.where(np.asarray(mask) > 0, 0, 255).astype(np.uint8)


@wrong(lesson07.check_mask_to_png_array, "png-wrong-dtype")
def png_int64(mask):
    return np.asarray(mask, dtype=np.int64) * 255


@wrong(lesson07.check_mask_to_png_array, "png-not-numpy")
def png_tensor(mask):
    return torch.as_tensor(np.asarray(mask)).to(torch.uint8) * 255


def _summary(rows, by, key, *, ddof=1, one_run_std=math.nan, settings=None, keep_n=True):
    """A summary by a dict of lists; the keyword arguments switch on one mistake each."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row[b] for b in (settings or by)), []).append(row[key])
    out = []
    for setting, values in groups.items():
        std = float(np.std(values, ddof=ddof)) if len(values) > 1 or ddof == 0 else one_run_std
        row = {**dict(zip(settings or by, setting)), "mean": float(np.mean(values)), "std": std}
        if keep_n:
            row["n"] = len(values)
        out.append(row)
    return out


@wrong(lesson06.check_summarize_runs, "population-std")
def summary_ddof0(rows, by, key="val_dice"):
    return _summary(rows, by, key, ddof=0)


@wrong(lesson06.check_summarize_runs, "single-run-std-zero")
def summary_zero_std(rows, by, key="val_dice"):
    return _summary(rows, by, key, one_run_std=0.0)


@wrong(lesson06.check_summarize_runs, "grouped-by-wrong-key", own_hint=True)
def summary_seed_in_the_key(rows, by, key="val_dice"):
    return _summary(rows, by, key, settings=(*by, "seed"))


@wrong(lesson06.check_summarize_runs, "missing-columns", own_hint=True)
def summary_without_n(rows, by, key="val_dice"):
    return _summary(rows, by, key, keep_n=False)


@wrong(lesson06.check_summarize_runs, "key-ignored")
def summary_fixed_column(rows, by, key="val_dice"):
    return _summary(rows, by, "val_dice")


@wrong(lesson06.check_summarize_runs, "not-grouped")
def summary_one_row_per_run(rows, by, key="val_dice"):
    return [{**{b: r[b] for b in by}, "mean": r[key], "std": math.nan, "n": 1} for r in rows]


@wrong(lesson06.check_summarize_runs, "groupby-needs-sorting")
def summary_neighbours_only(rows, by, key="val_dice"):
    out, previous = [], None
    for row in rows:
        setting = tuple(row[b] for b in by)
        if setting != previous:
            out.append({**dict(zip(by, setting)), "values": []})
            previous = setting
        out[-1]["values"].append(row[key])
    for row in out:
        values = row.pop("values")
        row.update(mean=sum(values) / len(values), n=len(values),
                   std=float(np.std(values, ddof=1)) if len(values) > 1 else math.nan)
    return out


class _HistoryStopper:
    """Early stopping from the list of values seen; subclasses each make one mistake."""

    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.values: list[float] = []
        self.best, self.best_epoch = None, 0

    def improves(self, value, reference, min_delta):
        if self.mode == "min":
            return value < reference - min_delta
        return value > reference + min_delta

    def step(self, value):
        self.values.append(value)
        if self.best is None or self.improves(value, self.best, self.min_delta):
            self.best, self.best_epoch = value, len(self.values)
        return self.waited() >= self.patience

    def waited(self):
        return len(self.values) - self.best_epoch


@wrong(lesson06.check_early_stopping, "stops-at-first-bad-epoch")
class StopOnAnyDrop(_HistoryStopper):
    def step(self, value):
        super().step(value)
        return self.waited() >= 1


@wrong(lesson06.check_early_stopping, "compares-with-last")
class StopComparedWithPrevious(_HistoryStopper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad = 0

    def step(self, value):
        previous = self.values[-1] if self.values else None
        super().step(value)
        if previous is not None and not self.improves(value, previous, self.min_delta):
            self.bad += 1
        elif previous is not None:
            self.bad = 0
        return self.bad >= self.patience


@wrong(lesson06.check_early_stopping, "counter-not-reset")
class StopCountingEveryBadEpoch(_HistoryStopper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad_total = 0

    def step(self, value):
        before = self.best_epoch
        super().step(value)
        self.bad_total += int(self.best_epoch == before)
        return self.bad_total >= self.patience


@wrong(lesson06.check_early_stopping, "patience-off-by-one")
class StopOneLate(_HistoryStopper):
    def step(self, value):
        super().step(value)
        return self.waited() > self.patience


@wrong(lesson06.check_early_stopping, "wrong-direction")
class StopAlwaysMaximising(_HistoryStopper):
    def improves(self, value, reference, min_delta):
        return value > reference + min_delta


@wrong(lesson06.check_early_stopping, "min-delta-ignored")
class StopWithoutMinDelta(_HistoryStopper):
    def improves(self, value, reference, min_delta):
        return super().improves(value, reference, 0.0)


@wrong(lesson06.check_early_stopping, "ties-count-as-improvement")
class StopTiesImprove(_HistoryStopper):
    def improves(self, value, reference, min_delta):
        if self.mode == "min":
            return value <= reference - min_delta
        return value >= reference + min_delta


# ---------------------------------------------------------------------- lesson 03 (second forms)


def _epoch(model, loader, loss_fn, optimizer, *, backward=True, step=True, zero_after=False):
    model.train()
    total = seen = 0.0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        if backward:
            loss.backward()
        if zero_after:
            model.zero_grad()
        if step:
            optimizer.step()
        total += loss.item() * len(images)
        seen += len(images)
    return total / seen


@wrong(lesson03.check_train_one_epoch, "no-backward")
def epoch_without_backward(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, backward=False)


@wrong(lesson03.check_train_one_epoch, "no-optimizer-step")
def epoch_without_step(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, step=False)


@wrong(lesson03.check_train_one_epoch, "zero-grad-after-backward")
def epoch_model_zero_grad_before_step(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, zero_after=True)


@wrong(lesson03.check_train_one_epoch, "loader-dataset-len")
def epoch_divided_by_dataset_size(model, loader, loss_fn, optimizer, device):
    _epoch(model, loader, loss_fn, optimizer)
    return 0.0 / len(loader.dataset)


def _validate(model, loader, loss_fn, *, no_grad=True, dice="images", returns="dict"):
    model.eval()
    losses, dices, sizes = [], [], []
    context = torch.no_grad() if no_grad else torch.enable_grad()
    with context:
        for images, masks in loader:
            logits = model(images)
            losses.append(loss_fn(logits, masks).item())
            per_image = dice_per_image((logits[:, 0] > 0).long(), masks)
            dices.append(per_image)
            sizes.append(len(images))
    loss = sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
    if dice == "batches":
        value = sum(float(d.mean()) for d in dices) / len(dices)
    elif dice == "tensor":
        value = torch.cat(dices).mean()
    else:
        value = float(torch.cat(dices).mean())
    if returns == "tuple":
        return loss, value
    return {"loss": loss, "dice": value}


@wrong(lesson03.check_validate, "validate-grad-enabled")
def validate_with_grad(model, loader, loss_fn, device):
    return _validate(model, loader, loss_fn, no_grad=False)


@wrong(lesson03.check_validate, "dice-mean-over-batches")
def validate_batch_dice(model, loader, loss_fn, device):
    return _validate(model, loader, loss_fn, dice="batches")


@wrong(lesson03.check_validate, "dice-not-float")
def validate_dice_tensor(model, loader, loss_fn, device):
    return _validate(model, loader, loss_fn, dice="tensor")


@wrong(lesson03.check_validate, "validate-returns-dict")
def validate_tuple(model, loader, loss_fn, device):
    return _validate(model, loader, loss_fn, returns="tuple")


@wrong(lesson03.check_validate, None, own_hint=True)
def validate_dice_of_soft_predictions(model, loader, loss_fn, device):
    model.eval()
    total_loss = total_dice = n = 0.0
    with torch.no_grad():
        for images, masks in loader:
            logits = model(images)
            total_loss += loss_fn(logits, masks).item() * len(images)
            p = torch.sigmoid(logits[:, 0])
            inter = (p * masks).sum((1, 2))
            total_dice += float((2 * inter / (p.sum((1, 2)) + masks.sum((1, 2)))).sum())
            n += len(images)
    return {"loss": total_loss / n, "dice": total_dice / n}


# ---------------------------------------------------------------------- lesson 08 (second forms)


def _stages(resnet, x, *, relu=True, pool_stem=False):
    stem = resnet.bn1(resnet.conv1(x))
    if relu:
        stem = torch.relu(stem)
    pooled = resnet.maxpool(stem)
    maps = [pooled if pool_stem else stem]
    for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        pooled = layer(pooled)
        maps.append(pooled)
    return maps


@wrong(lesson08.check_encoder_features, "skips-reversed")
def features_deepest_first(resnet, x):
    return list(reversed(_stages(resnet, x)))


@wrong(lesson08.check_encoder_features, "missing-stem")
def features_from_layer1(resnet, x):
    return _stages(resnet, x)[1:]


@wrong(lesson08.check_encoder_features, "stem-after-maxpool")
def features_pooled_stem(resnet, x):
    return _stages(resnet, x, pool_stem=True)


@wrong(lesson08.check_encoder_features, "stem-no-relu")
def features_stem_before_relu(resnet, x):
    return _stages(resnet, x, relu=False)


@wrong(lesson08.check_encoder_features, "wrong-number-of-maps")
def features_three_deepest(resnet, x):
    return _stages(resnet, x)[-3:]


@wrong(lesson08.check_encoder_features, "features-mismatch")
def features_each_from_the_stem(resnet, x):
    stem = torch.relu(resnet.bn1(resnet.conv1(x)))
    f1 = resnet.layer1(resnet.maxpool(stem))
    f2 = resnet.layer2(f1)
    f3 = resnet.layer3(f2)
    return [stem, f1, f2, f3, resnet.layer4(resnet.layer3(resnet.layer2(resnet.layer1(stem))))]


def _freeze(model, *, encoder=True, everything=False, bn_eval=True, give="trainable"):
    target = model if everything else model.encoder
    if encoder:
        for p in target.parameters():
            p.requires_grad = False
    if bn_eval:  # BatchNorm statistics frozen too (segkit's model keeps them so in train())
        model.encoder.eval()
        model.encoder_frozen = True
    if give == "all":
        return list(model.parameters())
    if give == "head":
        return [p for n, p in model.named_parameters() if n.startswith("head")]
    if give == "generator":
        return (p for p in model.parameters() if p.requires_grad)
    return [p for p in model.parameters() if p.requires_grad]


@wrong(lesson08.check_freeze_encoder, "params-generator")
def freeze_returns_generator(model):
    return _freeze(model, give="generator")


@wrong(lesson08.check_freeze_encoder, "encoder-not-frozen")
def freeze_only_the_bn(model):
    _freeze(model, encoder=False)
    for m in model.encoder.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


@wrong(lesson08.check_freeze_encoder, "froze-decoder")
def freeze_the_whole_model(model):
    return _freeze(model, everything=True)


@wrong(lesson08.check_freeze_encoder, "optimizer-gets-frozen")
def freeze_returns_everything(model):
    return _freeze(model, give="all")


@wrong(lesson08.check_freeze_encoder, "params-missing")
def freeze_returns_the_head_only(model):
    return _freeze(model, give="head")


@wrong(lesson08.check_freeze_encoder, "batchnorm-stats-update")
def freeze_without_eval(model):
    return _freeze(model, bn_eval=False)


# ---------------------------------------------------------------------- lesson 07 (second forms)


def _full_size(model, image, size, *, eval_mode=True, resize_in=True, back="logits",
               threshold=0.0, argmax=False):
    if eval_mode:
        model.eval()
    h, w = image.shape[-2:]
    with torch.no_grad():
        x = F.interpolate(image, size=size, mode="bilinear", antialias=True) if resize_in \
            else image
        logits = model(x)
        if back == "none":
            big = logits
        elif back == "mask":
            small = (logits > threshold).float()
            big = F.interpolate(small, size=(h, w), mode="bilinear")
            return big[0, 0].long() if threshold else big[0, 0]
        else:
            big = F.interpolate(logits, size=(h, w), mode="bilinear")
    if argmax:
        return big.argmax(dim=1)[0]
    return (big[0, 0] > threshold).long()


@wrong(lesson07.check_predict_full_size, "forgot-eval")
def predict_in_train_mode(model, image, size):
    return _full_size(model, image, size, eval_mode=False)


@wrong(lesson07.check_predict_full_size, "not-resized-in", own_hint=True)
def predict_at_full_size(model, image, size):
    return _full_size(model, image, size, resize_in=False)


@wrong(lesson07.check_predict_full_size, "returned-training-size")
def predict_small_mask(model, image, size):
    return _full_size(model, image, size, back="none")


@wrong(lesson07.check_predict_full_size, "threshold-then-resize", own_hint=True)
def predict_resized_probability_mask(model, image, size):
    return _full_size(model, image, size, back="mask")


@wrong(lesson07.check_predict_full_size, "argmax-one-channel")
def predict_argmax(model, image, size):
    return _full_size(model, image, size, argmax=True)


@wrong(lesson07.check_predict_full_size, "logit-threshold-0.5")
def predict_logits_over_half(model, image, size):
    return _full_size(model, image, size, threshold=0.5)


def _tta(model, x, combine):
    with torch.no_grad():
        a = model(x)[:, 0]
        b = model(torch.flip(x, dims=[-1]))[:, 0]
    return combine(a, b).long()


@wrong(lesson07.check_flip_tta, "tta-not-flipped-back")
def tta_mirror_left_mirrored(model, x):
    return _tta(model, x, lambda a, b: torch.stack([a, b]).mean(0) > 0)


@wrong(lesson07.check_flip_tta, "tta-averaged-masks", own_hint=True)
def tta_vote_both(model, x):
    return _tta(model, x, lambda a, b: ((a > 0).float() + (b.flip(-1) > 0).float()) / 2 > 0.5)


@wrong(lesson07.check_flip_tta, "tta-no-flip", own_hint=True)
def tta_original_twice(model, x):
    return _tta(model, x, lambda a, b: (a + a) / 2 > 0)


@wrong(lesson07.check_flip_tta, "tta-wrong-axis")
def tta_upside_down(model, x):
    with torch.no_grad():
        logits = model(x) + model(x.flip(2)).flip(2)
    return (logits[:, 0] > 0).long()


# ---------------------------------------------------------------------- lesson 02 (second forms)
# DoubleConv written with named layers (the lesson file uses nn.Sequential), one switch
# per mistake.


def _double_conv(*, padding=1, bn=True, bias=False, relu_first=False, pool=None):
    class Block(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            self.c1 = nn.Conv2d(in_ch, out_ch, 3, padding=padding, bias=bias)
            self.c2 = nn.Conv2d(out_ch, out_ch, 3, padding=padding, bias=bias)
            self.n1 = nn.BatchNorm2d(out_ch) if bn else nn.Identity()
            self.n2 = nn.BatchNorm2d(out_ch) if bn else nn.Identity()

        def forward(self, x):
            for conv, norm in ((self.c1, self.n1), (self.c2, self.n2)):
                x = norm(torch.relu(conv(x))) if relu_first else torch.relu(norm(conv(x)))
            return x
    return Block


@wrong(lesson02.check_double_conv, "conv-no-padding")
class DoubleConvValid(_double_conv(padding=0)):
    pass


@wrong(lesson02.check_double_conv, "missing-batchnorm")
class DoubleConvWithoutNorm(_double_conv(bn=False)):
    pass


@wrong(lesson02.check_double_conv, "conv-bias-before-batchnorm")
class DoubleConvWithBias(_double_conv(bias=True)):
    pass


@wrong(lesson02.check_double_conv, "doubleconv-order", own_hint=True)
class DoubleConvReluThenNorm(_double_conv(relu_first=True)):
    pass


@wrong(lesson02.check_double_conv, "not-a-module")
def double_conv_function(in_ch, out_ch):
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.Conv2d(out_ch, out_ch, 3, padding=1)]


_GOOD_DOUBLE = _double_conv()


@wrong(lesson02.check_down, "down-no-pool")
class DownWithoutPooling(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x):
        return self.conv(x)


@wrong(lesson02.check_down, "conv-before-pool")
class DownConvolvesFirst(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x):
        return F.max_pool2d(self.conv(x), 2)


@wrong(lesson02.check_down, "down-mismatch", own_hint=True)
class DownAveragePool(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x):
        return self.conv(F.avg_pool2d(x, 2))


@wrong(lesson02.check_down, "down-wrong-size", own_hint=True)
class DownPoolsByFour(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x):
        return self.conv(F.max_pool2d(x, 4))


@wrong(lesson02.check_up, "up-transposed-in-channels")
class UpTransposedFromHalf(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch // 2, in_ch // 2, 2, stride=2)
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x1, x2):
        return self.conv(torch.cat([x2, self.up(x1)], 1))


@wrong(lesson02.check_up, "up-wrong-upsample")
class UpKernelThree(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=3, stride=2)
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x1, x2):
        x1 = self.up(x1)[..., :x2.shape[2], :x2.shape[3]]
        return self.conv(torch.cat([x2, x1], 1))


# ---------------------------------------------------------------------- lesson 01 (second forms)


@wrong(lesson01.check_to_class_indices, "mask-bool-dtype")
def indices_as_bool_tensor(mask_array):
    return torch.from_numpy(np.asarray(mask_array).copy()) != 0


@wrong(lesson01.check_to_class_indices, "mask-divided-to-float")
def indices_divided(mask_array):
    mask = np.asarray(mask_array, dtype=np.float32)
    return mask / mask.max() if mask.max() > 0 else mask


def _pixels(dataset):
    return torch.stack([image for image, _ in dataset]).double()  # (N, 3, H, W)


@wrong(lesson01.check_mean_std, "not-per-channel")
def stats_one_number(dataset):
    x = _pixels(dataset)
    return x.mean(), x.std(unbiased=False)


@wrong(lesson01.check_mean_std, "reduced-wrong-dims")
def stats_per_row(dataset):
    x = _pixels(dataset)
    return x.mean(dim=(0, 1, 3)), x.std(dim=(0, 1, 3))


@wrong(lesson01.check_mean_std, "variance-not-std")
def stats_variance(dataset):
    x = _pixels(dataset).numpy()
    return x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))


@wrong(lesson01.check_mean_std, "std-of-image-means")
def stats_spread_of_means(dataset):
    means = _pixels(dataset).mean(dim=(2, 3))  # (N, 3)
    return means.mean(0), means.std(0, unbiased=False)


@wrong(lesson01.check_mean_std, "mean-of-image-stds")
def stats_mean_of_stds(dataset):
    x = _pixels(dataset)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(2, 3), unbiased=False).mean(0)


@wrong(lesson01.check_mean_std, "mean-of-batch-means")
def stats_batches_of_two(dataset):
    x = _pixels(dataset)
    batches = [x[i:i + 2] for i in range(0, len(x), 2)]
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
    stds = torch.stack([b.std(dim=(0, 2, 3)) for b in batches])
    return means.mean(0), stds.mean(0)


def _transform(size, *, plain_mask=False, normalize=False):
    from torchvision.transforms import v2

    steps = [v2.Resize(size), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True)]
    if normalize:
        steps.append(v2.Normalize([0.5] * 3, [0.25] * 3))
    pipeline = v2.Compose(steps)

    def t(image, mask):
        return pipeline(image, mask.as_subclass(torch.Tensor) if plain_mask else mask)
    return t


@wrong(lesson01.check_make_train_transform, "normalized-too-early")
def transform_normalised(size):
    return _transform(size, normalize=True)


@wrong(lesson01.check_make_train_transform, "mask-not-transformed")
def transform_plain_tensor_mask(size):
    return _transform(size, plain_mask=True)


# --------------------------------------------------------------------------- more second forms


@wrong(lesson00.check_list_pairs, "names-not-paths")
def pairs_of_names(root):
    from pathlib import Path
    images = sorted(p.name for p in Path(root, "train").glob("*.jpg"))
    masks = {p.name for p in Path(root, "train_masks").iterdir()}
    return [(n, n[:-4] + "_mask.gif") for n in images if n[:-4] + "_mask.gif" in masks]


@wrong(lesson00.check_list_pairs, "missing-mask-kept")
def pairs_without_checking(root):
    from pathlib import Path
    root = Path(root)
    return [(p, root / "train_masks" / f"{p.stem}_mask.gif")
            for p in sorted((root / "train").glob("*.jpg"))]


@wrong(lesson07.check_mask_to_png_array, "png-wrong-values")
def png_times_128(mask):
    return (np.asarray(mask) * 128).astype(np.uint8)


@wrong(lesson07.check_predict_full_size, "model-not-called")
def predict_without_the_model(model, image, size):
    return torch.zeros(image.shape[-2:], dtype=torch.int64)


@wrong(lesson07.check_flip_tta, "model-not-called")
def tta_without_the_model(model, x):
    return (x[:, 0] > 0).long()


@wrong(lesson06.check_early_stopping, "best-not-tracked")
class StopBestIsLast:
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self._inner = _HistoryStopper(patience, min_delta, mode)
        self.best, self.best_epoch = None, 0

    def step(self, value):
        stop = self._inner.step(value)  # decides right...
        self.best, self.best_epoch = value, len(self._inner.values)  # ...reports the last
        return stop


@wrong(lesson03.check_validate, "validate-changes-weights")
def validate_that_trains(model, loader, loss_fn, device):
    result = _validate(model, loader, loss_fn)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.9)
    return result


def _pairs_class(*, image="right", mask="right", length="right", use_transform=True):
    """A CarvanaPairs read with NumPy (the lesson file's are torchvision-based); each
    keyword switches on one mistake."""
    from pathlib import Path

    from PIL import Image
    from torchvision import tv_tensors

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, root, transform=None):
            root = Path(root)
            self.image_paths = sorted((root / "train").glob("*.jpg"))
            self.mask_dir = root / "train_masks"
            self.transform = transform

        def __len__(self):
            return len(self.image_paths) + (1 if length == "one-more" else 0)

        def __getitem__(self, i):
            path = self.image_paths[i]
            photo = Image.open(path)
            pixels = np.asarray(photo if image == "no-rgb" else photo.convert("RGB"))
            x = torch.from_numpy(pixels.copy())
            if image != "hwc":
                x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
            if image in ("right", "hwc", "no-rgb"):
                x = x.float() / 255
            elif image == "unscaled":
                x = x.float()
            gif = Image.open(self.mask_dir / f"{path.stem}_mask.gif")
            classes = (np.asarray(gif.convert("RGB") if mask == "rgb" else gif) > 0)
            m = classes.astype(np.int64)
            if mask == "numpy":
                y = m
            else:
                y = tv_tensors.Mask(torch.from_numpy(m))
                if mask == "channel":
                    y = tv_tensors.Mask(y[None])
            x = tv_tensors.Image(x) if x.ndim == 3 and image != "hwc" else x
            if self.transform is not None and use_transform:
                x, y = self.transform(x, y)
            return x, y
    return Pairs


for _name, _mistake, _kwargs in [
        ("PairsUint8", "image-uint8-not-float", dict(image="uint8")),
        ("PairsUnscaled", "image-not-scaled", dict(image="unscaled")),
        ("PairsChannelsLast", "image-hwc-not-chw", dict(image="hwc")),
        ("PairsGrayKept", "image-not-rgb", dict(image="no-rgb")),
        ("PairsNumpyMask", "mask-not-tensor", dict(mask="numpy")),
        ("PairsRgbMask", "mask-read-as-rgb", dict(mask="rgb")),
        ("PairsMaskWithChannel", "mask-channel-axis", dict(mask="channel")),
        ("PairsOneTooMany", "len-wrong", dict(length="one-more")),
        ("PairsTransformStoredOnly", "transform-ignored", dict(use_transform=False))]:
    _cls = _pairs_class(**_kwargs)
    _cls.__name__ = _name
    wrong(lesson01.check_carvana_pairs, _mistake)(_cls)


@wrong(lesson01.check_make_train_transform, "wrong-size")
def transform_square(size):
    return _transform((size[0], size[0]))


@wrong(lesson01.check_make_train_transform, "mask-bilinear")
def transform_mask_as_image(size):
    from torchvision import tv_tensors

    pipeline = _transform(size)

    def t(image, mask):
        image, as_image = pipeline(image, tv_tensors.Image(mask[None].float()))
        return image, as_image[0].round().long()  # interpolated like a photo
    return t


@wrong(lesson02.check_double_conv, "doubleconv-param-count")
class DoubleConvWithExtraConv(_double_conv()):
    def __init__(self, in_ch, out_ch):
        super().__init__(in_ch, out_ch)
        self.mix = nn.Conv2d(out_ch, out_ch, 1, bias=False)

    def forward(self, x):
        return self.mix(super().forward(x))


@wrong(lesson02.check_down, "down-param-count", own_hint=True)
class DownWithExtraNorm(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_ch)
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x):
        return self.conv(self.norm(F.max_pool2d(x, 2)))


class _GoodUp(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, 2, stride=2)
        self.conv = _GOOD_DOUBLE(in_ch, out_ch)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy, dx = x2.shape[2] - x1.shape[2], x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], 1))


@wrong(lesson02.check_up, "up-mismatch")
class UpSkipAddedToo(_GoodUp):
    def forward(self, x1, x2):
        return super().forward(x1, x2) + x2.mean(dim=1, keepdim=True)


@wrong(lesson02.check_up, "up-mismatch")
class UpUpsampledTwice(_GoodUp):
    def forward(self, x1, x2):
        return super().forward(x1, x2 * 2)


def _unet(*, depth_change=0, skip_outc=False, crop=False):
    class Net(nn.Module):
        def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
            super().__init__()
            depth += depth_change
            ch = [base * 2 ** i for i in range(depth + 1)]
            self.inc = _GOOD_DOUBLE(in_channels, ch[0])
            self.downs = nn.ModuleList(
                nn.Sequential(nn.MaxPool2d(2), _GOOD_DOUBLE(ch[i], ch[i + 1]))
                for i in range(depth))
            self.ups = nn.ModuleList(_GoodUp(ch[i + 1], ch[i]) for i in reversed(range(depth)))
            self.outc = nn.Conv2d(ch[0], num_classes, 1)

        def forward(self, x):
            skips = [self.inc(x)]
            for down in self.downs:
                skips.append(down(skips[-1]))
            x = skips.pop()
            for up in self.ups:
                skip = skips.pop()
                if crop:  # crop the skip to the upsampled size instead of padding
                    h, w = x.shape[2] * 2, x.shape[3] * 2
                    skip = skip[:, :, :h, :w]
                x = up(x, skip)
            return x if skip_outc else self.outc(x)
    return Net


@wrong(lesson02.check_unet, "unet-depth-off-by-one", own_hint=True)
class UNetOneTooDeep(_unet(depth_change=1)):
    pass


@wrong(lesson02.check_unet, "unet-output-shape")
class UNetWithoutHead(_unet(skip_outc=True)):
    pass


@wrong(lesson02.check_unet, "unet-odd-size")
class UNetCroppingSkips(_unet(crop=True)):
    pass


@wrong(lesson01.check_make_train_transform, "image-not-float32")
def transform_to_float64(size):
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float64, scale=True)])


# ``check-error``: the check could not use what came back (here, arrays of one element
# that is not a number), reported by run_check for every exercise.


@wrong(lesson04.check_pixel_accuracy, "check-error", own_hint=True)
def accuracy_as_text_array(logits, target):
    right = float(((logits[:, 0] > 0).long() == target).float().mean())
    return np.array([f"{right:.0%} of the pixels"])


@wrong(lesson04.check_dice_score, "check-error", own_hint=True)
def dice_as_array_of_none(logits, target, threshold=0.5):
    return np.array([None])
