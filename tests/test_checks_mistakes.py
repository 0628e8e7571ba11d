"""Every mistake in more than one form: differently written wrong implementations of the
same mistake each get that mistake's id and hint, and no other mistake's hint.

The lesson files (tests/test_checks_lessonNN.py) hold one form of most mistakes; this file
holds the mistakes whose hints used to misfire and the ones added with the catalogue, each
written at least twice, the way different students write them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from check_helpers import failure
from segkit.checks import lesson01, lesson03, lesson04, lesson05
from segkit.checks.catalogue import MISTAKES, hint_for

WRONG: list = []  # (check, student, mistake, fields of the catalogue hint)


def wrong(check, mistake, **fields):
    """Register the decorated function as a form of ``mistake`` for ``check``."""
    def register(student):
        WRONG.append(pytest.param(check, student, mistake, fields,
                                  id=f"{mistake}-{student.__name__}"))
        return student
    return register


@pytest.mark.parametrize("check, student, mistake, fields", WRONG)
def test_each_form_gets_its_mistakes_hint_and_no_other(check, student, mistake, fields):
    error = failure(check, student)
    assert error.mistake == mistake, str(error)
    assert error.hint == hint_for(mistake, **fields), str(error)
    others = [m.hint for m in MISTAKES.values() if m.id != mistake and "{" not in m.hint]
    assert not [hint for hint in others if hint in error.hint], str(error)


def test_every_mistake_here_has_two_forms():
    forms: dict[str, set] = {}
    for param in WRONG:
        forms.setdefault(param.values[2], set()).add(param.values[1])
    assert min(len(students) for students in forms.values()) >= 2, forms


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
    import numpy as np
    return (np.asarray(mask_array) > 0).astype(np.int64)[None]


@wrong(lesson01.check_to_class_indices, "mask-channel-axis")
def indices_with_channel_last(mask_array):
    return torch.from_numpy((mask_array > 0).copy()).long().unsqueeze(-1)
