"""More written forms: every catalogued mistake of every exercise in at least two forms,
every exercise with its reference and at least three other right solutions.

The lesson files (tests/test_checks_lessonNN.py), tests/test_checks_variants.py and
tests/test_checks_mistakes.py hold most forms; this file adds the second (or first) form
where a mistake had fewer than two, written the way another student would, and the test
that the corpus is complete. Each form runs once here; tests/test_checks_draws.py runs them
all on draws.
"""

from __future__ import annotations

import importlib
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

import test_checks_lesson01 as t01
import test_checks_lesson02 as t02
import test_checks_lesson05 as t05
import test_checks_lesson06 as t06
import test_checks_lesson10 as t10
from check_helpers import CORPUS, expected, outcome, register_wrong
from segkit import metrics
from segkit.checks import lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06
from segkit.checks import lesson07, lesson08, lesson09, lesson10
from segkit.checks.catalogue import MISTAKES

FORMS: list[tuple] = []  # (check, student, mistake)


def form(check, mistake):
    """Register the decorated function or class as a form of ``mistake`` for ``check``."""
    def add(student):
        FORMS.append((check, student, mistake))
        return register_wrong(check, student, mistake, f"forms_{student.__name__}")
    return add


# --------------------------------------------------------------------------- lesson 00


@form(lesson00.check_float32_mib, "returns-none")
def mib_printed(shape):
    print(math.prod(shape) * 4 / 2**20)


@form(lesson00.check_foreground_fraction, "returns-none")
def fraction_stored(mask):
    fraction_stored.last = np.count_nonzero(mask) / mask.size


@form(lesson00.check_foreground_fraction, "not-a-float")
def fraction_as_string(mask):
    return f"{np.count_nonzero(mask) / mask.size:.4f}"


@form(lesson00.check_list_pairs, "returns-none")
def pairs_appended_only(root):
    pairs = []
    for image in sorted(Path(root, "train").glob("*.jpg")):
        mask = Path(root, "train_masks", image.stem + "_mask.gif")
        if mask.exists():
            pairs.append((image, mask))


# --------------------------------------------------------------------------- lesson 01


@form(lesson01.check_to_class_indices, "returns-none")
def indices_in_place(mask_array):
    mask_array[mask_array > 0] = 1


@form(lesson01.check_to_class_indices, "not-an-array")
def indices_as_lists(mask_array):
    return [[1 if v else 0 for v in row] for row in np.asarray(mask_array)]


@form(lesson01.check_to_class_indices, "mask-not-int64")
def indices_int32(mask_array):
    return (np.asarray(mask_array) > 0).astype(np.int32)


class PairsReverseSorted(t01.CarvanaPairs):
    def __init__(self, root, transform=None):
        super().__init__(root, transform)
        self.image_paths = sorted(self.image_paths, reverse=True)
        self.mask_paths = [Path(root) / "train_masks" / f"{p.stem}_mask.gif"
                           for p in self.image_paths]


class MaskUint8(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, tv_tensors.Mask(mask.to(torch.uint8))


class MaskInt32(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, tv_tensors.Mask(mask.to(torch.int32))


class MaskKeeps255(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, tv_tensors.Mask(mask * 255)


class MaskHalfFloat(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.float()


class MaskWithChannel(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, tv_tensors.Mask(mask[None])


class MaskChannelLast(t01.CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, tv_tensors.Mask(mask[..., None])


for _cls, _mistake in [(PairsReverseSorted, "pairs-not-sorted"), (MaskUint8, "mask-not-int64"),
                       (MaskInt32, "mask-not-int64"), (MaskKeeps255, "mask-0-255-as-index"),
                       (MaskHalfFloat, "mask-float-not-int64"),
                       (MaskWithChannel, "mask-channel-axis"),
                       (MaskChannelLast, "mask-channel-axis")]:
    form(lesson01.check_carvana_pairs, _mistake)(_cls)


def _pipeline(*steps, mask_to=None):
    def make(size):
        t = v2.Compose([step(size) if callable(step) and not isinstance(step, nn.Module)
                        else step for step in steps])

        def transform(image, mask):
            image, mask = t(image, mask)
            return image, (mask if mask_to is None else mask_to(mask))
        return transform
    return make


def _resize(size):
    return v2.Resize(size)


_FLIP = v2.RandomHorizontalFlip(p=0.5)
_FLOAT = v2.ToDtype(torch.float32, scale=True)
for _name, _make, _mistake in [
        ("transform_mask_uint8", _pipeline(_resize, _FLIP, _FLOAT,
                                           mask_to=lambda m: m.to(torch.uint8)), "mask-not-int64"),
        ("transform_mask_int32", _pipeline(_resize, _FLIP, _FLOAT,
                                           mask_to=lambda m: m.to(torch.int32)), "mask-not-int64"),
        ("transform_mask_double", _pipeline(_resize, _FLIP, _FLOAT,
                                            mask_to=lambda m: m.double()), "mask-float-not-int64"),
        ("transform_mask_unsqueezed", _pipeline(_resize, _FLIP, _FLOAT,
                                                mask_to=lambda m: m[None]), "mask-channel-axis"),
        ("transform_mask_keepdim", _pipeline(_resize, _FLIP, _FLOAT,
                                             mask_to=lambda m: m.unsqueeze(0)),
         "mask-channel-axis"),
        ("transform_size_w_h", lambda size: v2.Compose([v2.Resize(list(size)[::-1]), _FLIP,
                                                        _FLOAT]), "size-w-h-swapped"),
]:
    _make.__name__ = _name
    form(lesson01.check_make_train_transform, _mistake)(_make)


@form(lesson01.check_make_train_transform, "returns-none")
def transform_built_not_returned(size):
    transform_built_not_returned.pipeline = v2.Compose([v2.Resize(size), _FLIP, _FLOAT])


@form(lesson01.check_make_train_transform, "mask-not-transformed")
def transform_image_only(size):
    image_t = v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(), _FLOAT])

    def transform(image, mask):
        return image_t(image), mask
    return transform


@form(lesson01.check_mean_std, "returns-none")
def mean_std_stored(dataset):
    stack = torch.stack([dataset[i][0] for i in range(len(dataset))])
    mean_std_stored.result = (stack.mean((0, 2, 3)), stack.std((0, 2, 3)))


# --------------------------------------------------------------------------- lesson 02


class DoubleConvPlain:  # no nn.Module: a plain class
    def __init__(self, in_ch, out_ch):
        self.net = t02.DoubleConv(in_ch, out_ch)

    def __call__(self, x):
        return self.net(x)


def down_function(in_ch, out_ch):  # a function that returns a function
    block = t02.Down(in_ch, out_ch)
    return lambda x: block(x)


class DownPlain:
    def __init__(self, in_ch, out_ch):
        self.block = t02.Down(in_ch, out_ch)

    def forward(self, x):
        return self.block(x)


class UpPlain:
    def __init__(self, in_ch, out_ch):
        self.block = t02.Up(in_ch, out_ch)

    def __call__(self, x1, x2):
        return self.block(x1, x2)


def up_function(in_ch, out_ch):
    return t02.Up(in_ch, out_ch).forward


class UNetPlain:
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        self.model = t02.UNet(in_channels, num_classes, base, depth)

    def __call__(self, x):
        return self.model(x)


def unet_function(in_channels=3, num_classes=2, base=64, depth=4):
    return t02.UNet(in_channels, num_classes, base, depth).forward


class DoubleConvToInCh(nn.Module):  # the second conv gives in_ch
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(out_ch), nn.ReLU(),
                                 nn.Conv2d(out_ch, in_ch, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(in_ch), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class DownToInCh(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.pool, self.conv = nn.MaxPool2d(2), t02.DoubleConv(in_ch, 2 * out_ch)

    def forward(self, x):
        return self.conv(self.pool(x))


class DownInList(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.parts = [nn.MaxPool2d(2), t02.DoubleConv(in_ch, out_ch)]

    def forward(self, x):
        for part in self.parts:
            x = part(x)
        return x


class UpInDict(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.blocks = {"up": nn.ConvTranspose2d(in_ch, in_ch // 2, 2, stride=2),
                       "conv": t02.DoubleConv(in_ch, out_ch)}

    def forward(self, x1, x2):
        x1 = self.blocks["up"](x1)
        dy, dx = x2.shape[2] - x1.shape[2], x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.blocks["conv"](torch.cat([x2, x1], dim=1))


class UpToInCh(t02.Up):
    def __init__(self, in_ch, out_ch):
        super().__init__(in_ch, out_ch)
        self.conv = t02.DoubleConv(in_ch, in_ch)


class UpToHalf(t02.Up):
    def __init__(self, in_ch, out_ch):
        super().__init__(in_ch, out_ch)
        self.conv = t02.DoubleConv(in_ch, max(out_ch // 2, 1))


for _check, _cls, _mistake in [
        (lesson02.check_double_conv, DoubleConvPlain, "not-a-module"),
        (lesson02.check_double_conv, DoubleConvToInCh, "wrong-out-channels"),
        (lesson02.check_down, down_function, "not-a-module"),
        (lesson02.check_down, DownPlain, "not-a-module"),
        (lesson02.check_down, DownToInCh, "wrong-out-channels"),
        (lesson02.check_down, DownInList, "layers-not-registered"),
        (lesson02.check_up, UpPlain, "not-a-module"),
        (lesson02.check_up, up_function, "not-a-module"),
        (lesson02.check_up, UpInDict, "layers-not-registered"),
        (lesson02.check_up, UpToInCh, "wrong-out-channels"),
        (lesson02.check_up, UpToHalf, "wrong-out-channels"),
        (lesson02.check_unet, UNetPlain, "not-a-module"),
        (lesson02.check_unet, unet_function, "not-a-module")]:
    form(_check, _mistake)(_cls)


# --------------------------------------------------------------------------- lesson 03


@form(lesson03.check_average_loss, "loss-mean-over-batches")
def average_np_mean(batch_losses, batch_sizes):
    return float(np.mean(batch_losses))


@form(lesson03.check_average_loss, "loss-tensor-accumulator")
def average_tensor_sum(batch_losses, batch_sizes):
    total = torch.zeros(())
    for loss, n in zip(batch_losses, batch_sizes):
        total = total + torch.tensor(loss) * n
    return total / sum(batch_sizes)


def _epoch(model, loader, loss_fn, optimizer, device, *, finish, every=1, call_loss=True):
    """A train_one_epoch that moves its batches, with the end (and the stepping) varied."""
    model.train()
    total, n = 0.0, 0
    for k, (images, masks) in enumerate(loader):
        images, masks = images.to(device), masks.to(device)
        optimizer.zero_grad()
        if not call_loss:
            continue
        loss = loss_fn(model(images), masks)
        loss.backward()
        if k % every == 0:
            optimizer.step()
        total += loss.item() * len(images)
        n += len(images)
    return finish(total, n)


def train_prints_the_loss(model, loader, loss_fn, optimizer, device):
    print(_epoch(model, loader, loss_fn, optimizer, device, finish=lambda t, n: t / n))


def train_int_average(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, device, finish=lambda t, n: int(t) / n)


def train_every_other_step(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, device, finish=lambda t, n: t / n, every=2)


def train_forgets_the_loss(model, loader, loss_fn, optimizer, device):
    return _epoch(model, loader, loss_fn, optimizer, device, finish=lambda t, n: 0.5,
                  call_loss=False)


def train_only_counts(model, loader, loss_fn, optimizer, device):
    model.train()
    return float(sum(len(images) for images, _ in loader))


for _fn, _mistake in [(train_prints_the_loss, "returns-none"),
                      (train_int_average, "integer-division"),
                      (train_every_other_step, "step-not-every-batch"),
                      (train_forgets_the_loss, "loss-fn-not-called"),
                      (train_only_counts, "loss-fn-not-called")]:
    form(lesson03.check_train_one_epoch, _mistake)(_fn)


@torch.no_grad()
def _evaluate(model, loader, loss_fn, device, *, finish, call_loss=True, count="shape",
              accumulate="item", step=False):
    """A validate that moves its batches, with the averaging (and more) varied."""
    model.eval()
    losses, sizes, dice = [], [], 0.0
    n = len(loader.dataset) if count == "dataset" else 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        logits = model(images)
        if call_loss:
            loss = loss_fn(logits, masks)
            losses.append(loss if accumulate == "tensor" else loss.item())
        sizes.append(len(images))
        dice += metrics.dice_per_image((logits[:, 0] > 0).long(), masks).sum().item()
        if count == "shape":
            n += len(images)
        if step:
            for p in model.parameters():
                p.add_(0.001)
    return finish(losses, sizes, dice, n)


def _per_sample(losses, sizes):
    return sum(v * s for v, s in zip(losses, sizes)) / sum(sizes)


def validate_prints(model, loader, loss_fn, device):
    print(_evaluate(model, loader, loss_fn, device,
                    finish=lambda l, s, d, n: {"loss": _per_sample(l, s), "dice": d / n}))


def validate_returns_nothing(model, loader, loss_fn, device):
    _evaluate(model, loader, loss_fn, device, finish=lambda l, s, d, n: None)


def validate_floor_loss(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, finish=lambda l, s, d, n: {
        "loss": sum(v * k for v, k in zip(l, s)) // sum(s), "dice": d / n})


def validate_int_loss(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, finish=lambda l, s, d, n: {
        "loss": int(sum(v * k for v, k in zip(l, s))) / sum(s), "dice": d / n})


def validate_dataset_len(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, count="dataset",
                     finish=lambda l, s, d, n: {"loss": _per_sample(l, s), "dice": d / n})


def validate_batch_mean(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device,
                     finish=lambda l, s, d, n: {"loss": sum(l) / len(l), "dice": d / n})


def validate_loss_sum(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device,
                     finish=lambda l, s, d, n: {"loss": sum(l), "dice": d / n})


def validate_weighted_sum(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, finish=lambda l, s, d, n: {
        "loss": sum(v * k for v, k in zip(l, s)), "dice": d / n})


def validate_tensor_loss(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, accumulate="tensor",
                     finish=lambda l, s, d, n: {"loss": _per_sample(l, s), "dice": d / n})


def validate_without_loss(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, call_loss=False,
                     finish=lambda l, s, d, n: {"loss": 0.0, "dice": d / n})


def validate_dice_only(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, call_loss=False,
                     finish=lambda l, s, d, n: {"loss": float("nan"), "dice": d / n})


def validate_nudges_weights(model, loader, loss_fn, device):
    return _evaluate(model, loader, loss_fn, device, step=True,
                     finish=lambda l, s, d, n: {"loss": _per_sample(l, s), "dice": d / n})


for _fn, _mistake in [(validate_prints, "returns-none"), (validate_returns_nothing, "returns-none"),
                      (validate_floor_loss, "integer-division"),
                      (validate_int_loss, "integer-division"),
                      (validate_dataset_len, "loader-dataset-len"),
                      (validate_batch_mean, "loss-mean-over-batches"),
                      (validate_loss_sum, "loss-not-averaged"),
                      (validate_weighted_sum, "loss-not-averaged"),
                      (validate_tensor_loss, "loss-tensor-accumulator"),
                      (validate_without_loss, "loss-fn-not-called"),
                      (validate_dice_only, "loss-fn-not-called"),
                      (validate_nudges_weights, "validate-changes-weights")]:
    form(lesson03.check_validate, _mistake)(_fn)


@form(lesson03.check_validate, "loader-dataset-len")
def validate_dataset_size(model, loader, loss_fn, device):
    model.eval()
    loss = dice = 0.0
    with torch.no_grad():
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            logits = model(images)
            loss += loss_fn(logits, masks).item() * len(images)
            dice += metrics.dice_per_image((logits[:, 0] > 0).long(), masks).sum().item()
    return {"loss": loss / len(loader.dataset), "dice": dice / len(loader.dataset)}


# --------------------------------------------------------------------------- lesson 04


def _labels(logits, threshold=0.5):
    return (torch.sigmoid(logits[:, 0]) > threshold).float()


def _scores(pred, target, kind, empty=1.0):
    t = target.float()
    inter = (pred * t).sum((1, 2))
    total = pred.sum((1, 2)) + t.sum((1, 2))
    score = 2 * inter / total if kind == "dice" else inter / (total - inter)
    return torch.where(total == 0, torch.full_like(score, empty), score)


def _overlap_forms(kind):
    """Second forms of the Dice / IoU mistakes, written another way than lesson 04's."""
    def returns_nothing(logits, target, threshold=0.5):
        _scores(_labels(logits, threshold), target, kind).mean()

    def prints_it(logits, target, threshold=0.5):
        print(_scores(_labels(logits, threshold), target, kind).mean().item())

    def numpy_float32(logits, target, threshold=0.5):
        return torch.tensor(_scores(_labels(logits, threshold), target, kind).mean().item())[None]

    def per_image_list(logits, target, threshold=0.5):
        return _scores(_labels(logits, threshold), target, kind).numpy()

    def broadcast_keepdim(logits, target, threshold=0.5):
        p = (torch.sigmoid(logits) > threshold).float()    # (N, 1, H, W)
        t = target.float()                                  # (N, H, W): (N, N, H, W) together
        inter = (p * t).sum((2, 3))
        total = p.sum((2, 3)) + t.sum((1, 2))
        score = 2 * inter / total if kind == "dice" else inter / (total - inter)
        return torch.where(total == 0, torch.ones_like(score), score).mean().item()

    def target_twice(logits, target, threshold=0.5):
        return _scores(target.float(), target, kind).mean().item()

    def logits_at_threshold(logits, target, threshold=0.5):
        return _scores((logits[:, 0] >= threshold).float(), target, kind).mean().item()

    def fixed_half(logits, target, threshold=0.5):
        return _scores((torch.sigmoid(logits[:, 0]) > 0.5).float(), target, kind).mean().item()

    def nan_kept(logits, target, threshold=0.5):
        return float(np.mean(_scores(_labels(logits, threshold), target, kind,
                                     empty=float("nan")).tolist()))

    def zero_for_empty(logits, target, threshold=0.5):
        return _scores(_labels(logits, threshold), target, kind, empty=0.0).mean().item()

    def skip_empty(logits, target, threshold=0.5):
        pred = _labels(logits, threshold)
        keep = (pred.sum((1, 2)) + target.sum((1, 2))) > 0
        return _scores(pred[keep], target[keep], kind).mean().item()

    def empty_target_perfect(logits, target, threshold=0.5):
        pred = _labels(logits, threshold)
        scores = [1.0 if int(t.sum()) == 0 else float(_scores(p[None], t[None], kind)[0])
                  for p, t in zip(pred, target)]
        return sum(scores) / len(scores)

    mistakes = {returns_nothing: "returns-none", prints_it: "returns-none",
                numpy_float32: "returns-tensor", per_image_list: "per-image-tensor",
                broadcast_keepdim: "channel-broadcast", target_twice: "target-as-prediction",
                logits_at_threshold: "threshold-on-logits", fixed_half: "threshold-ignored",
                nan_kept: "empty-nan", zero_for_empty: "empty-zero", skip_empty: "empty-skipped",
                empty_target_perfect: "empty-target-one"}
    for fn, mistake in mistakes.items():
        fn.__name__ = f"{kind}_{fn.__name__}"
    return mistakes


for _kind, _check in (("dice", lesson04.check_dice_score), ("iou", lesson04.check_iou_score)):
    for _fn, _mistake in _overlap_forms(_kind).items():
        form(_check, _mistake)(_fn)


def accuracy_no_return(logits, target):
    ((logits[:, 0] > 0).long() == target).float().mean().item()


def accuracy_printed(logits, target):
    print(((logits[:, 0] > 0).long() == target).float().mean().item())


def accuracy_double_tensor(logits, target):
    return ((logits[:, 0] > 0).long() == target).double().mean()


def accuracy_target_twice(logits, target):
    return float((target.bool() == target.bool()).sum()) / target.numel()


def accuracy_probability_cut_on_logits(logits, target):
    return ((logits.squeeze(1) > 0.5).long() == target).sum().item() / target.numel()


for _fn, _mistake in [(accuracy_no_return, "returns-none"), (accuracy_printed, "returns-none"),
                      (accuracy_double_tensor, "returns-tensor"),
                      (accuracy_target_twice, "target-as-prediction"),
                      (accuracy_probability_cut_on_logits, "threshold-on-logits")]:
    form(lesson04.check_pixel_accuracy, _mistake)(_fn)


# --------------------------------------------------------------------------- lesson 05


@form(lesson05.check_class_weights, "returns-none")
def weights_printed(masks, num_classes, ignore_index=255):
    print(t05.class_weights(masks, num_classes, ignore_index))


@form(lesson05.check_miou_from_confusion, "returns-none")
def miou_printed(cm, include_background=True):
    print(t05.miou_from_confusion(cm, include_background))


def loss_no_return(logits, target, weights):
    F.cross_entropy(logits, target, weight=weights, ignore_index=255)


def loss_printed(logits, target, weights):
    print(F.cross_entropy(logits, target, weight=weights, ignore_index=255).item())


def labels_no_return(logits):
    logits.argmax(dim=1)


def labels_printed(logits):
    print(logits.argmax(1))


def labels_as_numpy_list(logits):
    return logits.argmax(1).tolist()


def labels_as_string(logits):
    return str(logits.argmax(1))


def labels_uint8(logits):
    return logits.argmax(1).to(torch.uint8)


def labels_float(logits):
    return logits.argmax(1).float()


for _check, _fn, _mistake in [
        (lesson05.check_multiclass_loss, loss_no_return, "returns-none"),
        (lesson05.check_multiclass_loss, loss_printed, "returns-none"),
        (lesson05.check_predict_labels, labels_no_return, "returns-none"),
        (lesson05.check_predict_labels, labels_printed, "returns-none"),
        (lesson05.check_predict_labels, labels_as_numpy_list, "not-an-array"),
        (lesson05.check_predict_labels, labels_as_string, "not-an-array"),
        (lesson05.check_predict_labels, labels_uint8, "mask-not-int64"),
        (lesson05.check_predict_labels, labels_float, "mask-not-int64")]:
    form(_check, _mistake)(_fn)


# --------------------------------------------------------------------------- lesson 06


def log_spaced_no_return(low, high, n):
    np.logspace(np.log10(low), np.log10(high), n).tolist()


def log_spaced_printed(low, high, n):
    print(np.logspace(np.log10(low), np.log10(high), n))


def summary_no_return(rows, by, key="val_dice"):
    t06.summarize_runs(rows, by, key)


def summary_printed(rows, by, key="val_dice"):
    for row in t06.summarize_runs(rows, by, key):
        print(row)


class StoppingBestIsLast:
    """Decides right, but reports the last value seen as the best."""

    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.counter = t06.EarlyStopping(patience, min_delta, mode)
        self.best, self.best_epoch = None, 0

    def step(self, value):
        stop = self.counter.step(value)
        self.best, self.best_epoch = value, self.counter.epoch
        return stop


for _check, _fn, _mistake in [
        (lesson06.check_log_spaced, log_spaced_no_return, "returns-none"),
        (lesson06.check_log_spaced, log_spaced_printed, "returns-none"),
        (lesson06.check_summarize_runs, summary_no_return, "returns-none"),
        (lesson06.check_summarize_runs, summary_printed, "returns-none"),
        (lesson06.check_early_stopping, StoppingBestIsLast, "best-not-tracked")]:
    form(_check, _mistake)(_fn)


# --------------------------------------------------------------------------- lesson 07


def _tta_with(finish, *, mode=None, no_grad=True):
    def student(model, x):
        if mode == "train":
            model.train()
        with torch.set_grad_enabled(not no_grad):
            return finish(model, x)
    return student


def _avg(model, x):
    return (model(x) + model(x.flip(-1)).flip(-1)) / 2


for _name, _fn, _mistake in [
        ("tta_no_return", _tta_with(lambda m, x: None), "returns-none"),
        ("tta_printed", _tta_with(lambda m, x: print((_avg(m, x)[:, 0] > 0).long())),
         "returns-none"),
        ("tta_list", _tta_with(lambda m, x: (_avg(m, x)[:, 0] > 0).long().tolist()),
         "not-an-array"),
        ("tta_string", _tta_with(lambda m, x: "mask"), "not-an-array"),
        ("tta_float_mask", _tta_with(lambda m, x: (_avg(m, x)[:, 0] > 0).float()), "mask-not-int64"),
        ("tta_no_model", _tta_with(lambda m, x: torch.zeros(x.shape[0], *x.shape[2:],
                                                              dtype=torch.long)), "model-not-called"),
        ("tta_train_mode", _tta_with(lambda m, x: (_avg(m, x)[:, 0] > 0).long(), mode="train"),
         "forgot-eval"),
        ("tta_train_mode_grad", _tta_with(lambda m, x: (_avg(m, x)[:, 0] > 0).long(), mode="train",
                                          no_grad=False), "forgot-eval"),
        ("tta_grad_on", _tta_with(lambda m, x: (_avg(m, x)[:, 0] > 0).long(), no_grad=False),
         "forgot-no-grad"),
        ("tta_keepdim", _tta_with(lambda m, x: (_avg(m, x) > 0).long().squeeze(0)), "wrong-shape"),
        ("tta_probabilities", _tta_with(lambda m, x: torch.sigmoid(_avg(m, x)[:, 0])),
         "no-threshold"),
        ("tta_inverted", _tta_with(lambda m, x: (_avg(m, x)[:, 0] <= 0).long()), "wrong-mask")]:
    _fn.__name__ = _name
    form(lesson07.check_flip_tta, _mistake)(_fn)


def _full_size(finish):
    @torch.no_grad()
    def student(model, image, size):
        model.eval()
        logits = model(F.interpolate(image, size=tuple(size), mode="bilinear"))
        return finish(model, logits, image.shape[-2:])
    return student


for _name, _fn, _mistake in [
        ("full_size_no_return", _full_size(lambda m, lg, hw: None), "returns-none"),
        ("full_size_list", _full_size(lambda m, lg, hw: (F.interpolate(
            lg, size=hw, mode="bilinear")[0, 0] > 0).long().tolist()), "not-an-array"),
        ("full_size_uint8", _full_size(lambda m, lg, hw: (F.interpolate(
            lg, size=hw, mode="bilinear")[0, 0] > 0).to(torch.uint8)), "mask-not-int64"),
        ("full_size_w_h", _full_size(lambda m, lg, hw: (F.interpolate(
            lg, size=tuple(hw)[::-1], mode="bilinear")[0, 0] > 0).long()), "size-w-h-swapped"),
        ("full_size_batch_axis", _full_size(lambda m, lg, hw: (F.interpolate(
            lg, size=hw, mode="bilinear")[0] > 0).long()), "wrong-shape"),
        ("full_size_inverted", _full_size(lambda m, lg, hw: (F.interpolate(
            lg, size=hw, mode="bilinear")[0, 0] < 0.1).long()), "wrong-mask")]:
    _fn.__name__ = _name
    form(lesson07.check_predict_full_size, _mistake)(_fn)


@form(lesson07.check_predict_full_size, "model-not-called")
def full_size_without_model(model, image, size):
    return (image[0, 0] > 0).long()


@form(lesson07.check_predict_full_size, "forgot-no-grad")
def full_size_with_grad(model, image, size):
    model.eval()
    logits = model(F.interpolate(image, size=tuple(size), mode="bilinear"))
    return (F.interpolate(logits, size=image.shape[-2:], mode="bilinear")[0, 0] > 0).long()


for _name, _fn, _mistake in [
        ("png_list", lambda m: (np.asarray(m) * 255).astype(np.uint8).tolist(), "not-an-array"),
        ("png_rgb", lambda m: np.repeat((np.asarray(m) * 255).astype(np.uint8)[None], 3, 0),
         "wrong-shape")]:
    _fn.__name__ = _name
    form(lesson07.check_mask_to_png_array, _mistake)(_fn)


@form(lesson07.check_mask_to_png_array, "returns-none")
def png_computed_not_returned(mask):
    png_computed_not_returned.array = (np.asarray(mask) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- lesson 08


@form(lesson08.check_encoder_features, "not-a-list")
def features_as_dict(resnet, x):
    stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
    f1 = resnet.layer1(resnet.maxpool(stem))
    f2 = resnet.layer2(f1)
    f3 = resnet.layer3(f2)
    return {"stem": stem, "layer1": f1, "layer2": f2, "layer3": f3, "layer4": resnet.layer4(f3)}


@form(lesson08.check_freeze_encoder, "not-a-list")
def freeze_returns_count(model):
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    model.encoder.eval()
    model.encoder_frozen = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- lesson 09


@form(lesson09.check_to_unit_range, "not-float32")
def unit_float64_tensor(array):
    return torch.tensor(array / np.iinfo(array.dtype).max)


@form(lesson09.check_to_unit_range, "divided-by-255")
def unit_255_float32(array):
    return np.asarray(array, np.float32) / np.float32(255.0)


@form(lesson09.check_to_unit_range, "wrong-range")
def unit_by_uint16_max(array):
    return (array / np.iinfo(np.uint16).max).astype(np.float32)


# --------------------------------------------------------------------------- lesson 10


class CachedLengthPlusOne(t10.CachedDataset):
    def __len__(self):
        return self.n + 1


@form(lesson10.check_shard, "returns-none")
def shard_printed(indices, rank, world_size):
    print(t10.shard(indices, rank, world_size))


@form(lesson10.check_shard, "every-rank-all-data")
def shard_padded_all(indices, rank, world_size):
    per = math.ceil(len(indices) / world_size)
    return list(indices) + list(indices)[:per * world_size - len(indices)]


@form(lesson10.check_to_channels_last, "returns-none")
def channels_last_in_place(model, images):
    model.to(memory_format=torch.channels_last)


@form(lesson10.check_to_channels_last, "values-changed")
def channels_last_scaled(model, images):
    return model.to(memory_format=torch.channels_last), \
        (images * 1.01).contiguous(memory_format=torch.channels_last)


@form(lesson10.check_to_channels_last, "model-not-channels-last")
def channels_last_images_to(model, images):
    return model, images.to(memory_format=torch.channels_last)


@form(lesson10.check_mixed_precision_step, "not-a-float")
def step_returns_detached_tensor(model, images, masks, loss_fn, optimizer):
    return torch.tensor(t10.mixed_precision_step(model, images, masks, loss_fn, optimizer))


@form(lesson10.check_mixed_precision_step, "no-optimizer-step")
def step_backward_only(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    loss.backward()
    optimizer.zero_grad()
    return loss.item()


form(lesson10.check_CachedDataset, "wrong-length")(CachedLengthPlusOne)


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("check, student, mistake", FORMS,
                         ids=[f"{getattr(c, '__name__', c)}-{m}-{getattr(s, '__name__', s)}"
                              for c, s, m in FORMS])
def test_each_second_form_gets_its_mistake(check, student, mistake, capsys):
    assert outcome(check, student, 4321) == mistake


def _lessons() -> list:
    root = Path(__file__).parents[1] / "segkit" / "checks"
    return [importlib.import_module(f"segkit.checks.{p.stem}")
            for p in sorted(root.glob("lesson[0-9][0-9].py"))]


def test_the_corpus_covers_every_exercise_and_every_mistake_twice():
    for path in sorted(Path(__file__).parent.glob("test_checks_*.py")):
        importlib.import_module(path.stem)
    right: Counter = Counter()
    wrong: dict[str, Counter] = defaultdict(Counter)
    for f in CORPUS:
        if f.expect is None:
            right[f.check.exercise] += 1
        else:
            wrong[f.check.exercise][f.expect] += 1
    from segkit.checks import core

    exercises = {name for module in _lessons() for name in core.checks_of(module.__name__[-2:])}
    assert {e: right[e] for e in exercises if right[e] < 4} == {}  # the reference + 3
    thin = {(e, m.id): wrong[e][m.id] for m in MISTAKES.values() for e in m.exercises
            if e in exercises and wrong[e][m.id] < 2}
    assert thin == {}


def test_every_form_expects_a_catalogued_answer():
    for f in CORPUS:
        assert expected(f) in {"passed", "not-done", "None", "crashed", "check-error"} \
            or f.expect in MISTAKES, f.id
