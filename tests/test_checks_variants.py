"""Correct code always passes: for every exercise, three (or more) right solutions written
differently from the reference must pass its check.

Students name things their own way, define layers in another order, concatenate the other
way round, add an epsilon, use NumPy where torch would do, return a tensor where an array
works. A check judges what the code computes, never the spelling of the reference.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from check_helpers import register as corpus_register
from segkit import metrics
from segkit.checks import lesson00, lesson01, lesson02, lesson03, lesson04, lesson05
from segkit.checks import lesson06, lesson07, lesson08

VARIANTS: list[tuple] = []  # (check, student, id)


def variant(check):
    """Register the decorated function or class as a right solution for ``check`` (here,
    and in the corpus that tests/test_checks_draws.py runs on fresh draws)."""
    def register(student):
        VARIANTS.append(pytest.param(check, student, id=f"{check.__name__}-{student.__name__}"))
        return corpus_register(check, student, None)
    return register


@pytest.mark.parametrize("check, student", VARIANTS)
def test_a_right_solution_written_differently_passes(check, student, capsys):
    check(student)
    assert capsys.readouterr().out.startswith("✅")


def test_every_exercise_has_three_variants():
    counts: dict[str, int] = {}
    for param in VARIANTS:
        counts[param.values[0].__name__] = counts.get(param.values[0].__name__, 0) + 1
    lessons = (lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07,
               lesson08)
    checks = {name for module in lessons for name in module.__all__ if name.startswith("check_")}
    assert checks == set(counts)
    assert min(counts.values()) >= 3, counts


# --------------------------------------------------------------------------- lesson 00


@variant(lesson00.check_float32_mib)
def mib_numpy(shape):
    return float(np.prod(shape, dtype=np.int64)) * np.dtype(np.float32).itemsize / 1024 / 1024


@variant(lesson00.check_float32_mib)
def mib_torch(shape):
    return torch.empty(shape, dtype=torch.float32, device="meta").element_size() * \
        math.prod(shape) / (1 << 20)


@variant(lesson00.check_float32_mib)
def mib_loop(shape):
    n = 1
    for size in shape:
        n *= size
    return 4.0 * n / 1048576


@variant(lesson00.check_foreground_fraction)
def fraction_mean(mask):
    return float((np.asarray(mask) != 0).mean())


@variant(lesson00.check_foreground_fraction)
def fraction_torch(mask):
    m = torch.as_tensor(np.asarray(mask))
    return (m > 0).sum().item() / m.numel()


@variant(lesson00.check_foreground_fraction)
def fraction_loop(mask):
    values = np.asarray(mask).ravel().tolist()
    return sum(1 for v in values if v) / len(values)


@variant(lesson00.check_list_pairs)
def pairs_by_name(root):
    root = Path(root)
    names = sorted(p.name for p in (root / "train").iterdir() if p.suffix == ".jpg")
    masks = {p.name for p in (root / "train_masks").iterdir()}
    return [(root / "train" / n, root / "train_masks" / (n[:-4] + "_mask.gif"))
            for n in names if n[:-4] + "_mask.gif" in masks]


@variant(lesson00.check_list_pairs)
def pairs_with_str_paths(root):
    images = sorted(Path(root, "train").glob("*.jpg"))
    out = []
    for image in images:
        mask = Path(root, "train_masks", image.stem + "_mask.gif")
        if mask.exists():
            out.append((str(image), str(mask)))
    return out


@variant(lesson00.check_list_pairs)
def pairs_comprehension(root):
    root = Path(root)
    wanted = ((p, root / "train_masks" / f"{p.stem}_mask.gif")
              for p in sorted((root / "train").glob("*.jpg"), key=lambda p: p.name))
    return [pair for pair in wanted if pair[1].is_file()]


# --------------------------------------------------------------------------- lesson 01


@variant(lesson01.check_to_class_indices)
def indices_where(mask_array):
    return np.where(np.asarray(mask_array) != 0, 1, 0).astype(np.int64)


@variant(lesson01.check_to_class_indices)
def indices_torch(mask_array):
    return torch.from_numpy(np.asarray(mask_array).copy()).gt(0).long()


@variant(lesson01.check_to_class_indices)
def indices_clip(mask_array):
    return np.clip(np.asarray(mask_array, dtype=np.int64), 0, 1)


def _to_indices(array):
    return (np.asarray(array) > 0).astype(np.int64)


@variant(lesson01.check_carvana_pairs)
class PairsWithOtherNames(Dataset):  # `image_paths` is the lesson's contract
    def __init__(self, root, transform=None):
        self.tf = transform
        self.root = Path(root)
        self.image_paths = sorted((self.root / "train").glob("*.jpg"))  # the lesson's name
        self.names = [p.stem for p in self.image_paths]

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name = self.names[i]
        photo = np.asarray(Image.open(self.root / "train" / f"{name}.jpg").convert("RGB"))
        image = tv_tensors.Image(torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255)
        gif = np.asarray(Image.open(self.root / "train_masks" / f"{name}_mask.gif"))
        mask = tv_tensors.Mask(torch.from_numpy(_to_indices(gif)))
        return self.tf(image, mask) if self.tf else (image, mask)


@variant(lesson01.check_carvana_pairs)
class PairsListedOnce(Dataset):
    def __init__(self, root, transform=None):
        root = Path(root)
        self.items = [(p, root / "train_masks" / (p.stem + "_mask.gif"))
                      for p in sorted((root / "train").glob("*.jpg"))]
        self.image_paths = [image for image, _ in self.items]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        image_path, mask_path = self.items[index]
        image = TF.to_dtype(TF.pil_to_tensor(Image.open(image_path).convert("RGB")),
                            torch.float32, scale=True)
        mask = torch.as_tensor(_to_indices(Image.open(mask_path)), dtype=torch.int64)
        image, mask = tv_tensors.Image(image), tv_tensors.Mask(mask)
        if self.transform is None:
            return image, mask
        return self.transform(image, mask)


@variant(lesson01.check_carvana_pairs)
class PairsReadEagerly(Dataset):
    def __init__(self, root, transform=None):
        root = Path(root)
        self.transform = transform
        self.images, self.masks = [], []
        self.image_paths = sorted((root / "train").glob("*.jpg"))
        for path in self.image_paths:
            with Image.open(path) as im:
                self.images.append(TF.to_image(im.convert("RGB")))
            with Image.open(root / "train_masks" / f"{path.stem}_mask.gif") as gif:
                self.masks.append(torch.from_numpy(_to_indices(gif)))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, k):
        image = tv_tensors.Image(TF.to_dtype(self.images[k], torch.float32, scale=True))
        mask = tv_tensors.Mask(self.masks[k])
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


@variant(lesson01.check_make_train_transform)
def transform_flip_last(size):
    return v2.Compose([v2.Resize(size), v2.ToDtype(torch.float32, scale=True),
                       v2.RandomHorizontalFlip()])


@variant(lesson01.check_make_train_transform)
def transform_size_as_list(size):
    return v2.Compose([v2.RandomHorizontalFlip(0.5), v2.Resize(list(size), antialias=True),
                       v2.ColorJitter(brightness=0.1), v2.ToDtype(torch.float32, scale=True)])


@variant(lesson01.check_make_train_transform)
def transform_without_jitter(size):
    height, width = size
    steps = [v2.Resize((height, width)), v2.RandomHorizontalFlip(p=0.5)]
    return v2.Compose(steps + [v2.ToDtype(dtype=torch.float32, scale=True)])


@variant(lesson01.check_mean_std)
def stats_stacked(dataset):
    images = torch.stack([image for image, _ in dataset]).double()
    return images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3), unbiased=False)


@variant(lesson01.check_mean_std)
def stats_numpy(dataset):
    pixels = np.concatenate([np.asarray(image).reshape(3, -1) for image, _ in dataset], axis=1)
    return pixels.mean(axis=1), pixels.std(axis=1)


@variant(lesson01.check_mean_std)
def stats_welford_lists(dataset):
    total, total_sq, count = [0.0] * 3, [0.0] * 3, 0
    for image, _ in dataset:
        x = image.double()
        for c in range(3):
            total[c] += float(x[c].sum())
            total_sq[c] += float((x[c] ** 2).sum())
        count += x[0].numel()
    mean = [t / count for t in total]
    return mean, [math.sqrt(s / count - m * m) for s, m in zip(total_sq, mean)]


# --------------------------------------------------------------------------- lesson 02


@variant(lesson02.check_double_conv)
class DoubleConvNamedOutOfOrder(nn.Module):  # layers defined conv, conv, bn, bn
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


@variant(lesson02.check_double_conv)
class DoubleConvSecondFirst(nn.Module):  # the second conv is created first
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.b = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, padding="same", bias=False),
                               nn.BatchNorm2d(out_ch), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                               nn.BatchNorm2d(out_ch), nn.ReLU())

    def forward(self, x):
        return self.b(self.a(x))


@variant(lesson02.check_double_conv)
class DoubleConvFromList(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        layers = []
        for c_in in (in_ch, out_ch):
            layers += [nn.Conv2d(c_in, out_ch, kernel_size=(3, 3), padding=(1, 1), bias=False),
                       nn.BatchNorm2d(out_ch), nn.ReLU(inplace=False)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@variant(lesson02.check_down)
class DownFunctionalPool(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = DoubleConvNamedOutOfOrder(in_ch, out_ch)

    def forward(self, x):
        return self.conv(F.max_pool2d(x, kernel_size=2))


@variant(lesson02.check_down)
class DownConvDefinedFirst(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.block = DoubleConvSecondFirst(in_ch, out_ch)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x):
        return self.block(self.pool(x))


@variant(lesson02.check_down)
class DownOneSequential(nn.Sequential):
    def __init__(self, in_ch, out_ch):
        super().__init__(nn.MaxPool2d(2), DoubleConvFromList(in_ch, out_ch))


def _pad_to(x1, x2):
    dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
    return F.pad(x1, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))


@variant(lesson02.check_up)
class UpCatUpsampledFirst(nn.Module):  # torch.cat([x1, x2]): as good, weights swapped
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = DoubleConvNamedOutOfOrder(in_ch, out_ch)
        self.upconv = nn.ConvTranspose2d(in_ch, in_ch // 2, 2, 2)

    def forward(self, x1, x2):
        return self.conv(torch.cat((_pad_to(self.upconv(x1), x2), x2), dim=1))


@variant(lesson02.check_up)
class UpOtherNames(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels=in_ch, out_channels=in_ch // 2,
                                           kernel_size=2, stride=2)
        self.fuse = DoubleConvSecondFirst(in_ch, out_ch)

    def forward(self, below, skip):
        return self.fuse(torch.cat([skip, _pad_to(self.upsample(below), skip)], 1))


@variant(lesson02.check_up)
class UpPaddingWithZerosByHand(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
        self.conv = DoubleConvFromList(in_ch, out_ch)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        padded = x1.new_zeros(x1.shape[0], x1.shape[1], x2.shape[2], x2.shape[3])
        top, left = (x2.shape[2] - x1.shape[2]) // 2, (x2.shape[3] - x1.shape[3]) // 2
        padded[:, :, top:top + x1.shape[2], left:left + x1.shape[3]] = x1
        return self.conv(torch.cat([x2, padded], dim=1))


def _unet_class(double, down, up, *, dicts: bool = False):
    class UNetVariant(nn.Module):
        def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
            super().__init__()
            widths = [base * 2 ** i for i in range(depth + 1)]
            self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)  # created first
            self.decoder = nn.ModuleList(up(widths[i + 1], widths[i])
                                         for i in range(depth - 1, -1, -1))
            self.stem = double(in_channels, widths[0])
            self.encoder = nn.ModuleList(down(widths[i], widths[i + 1]) for i in range(depth))

        def forward(self, x):
            features = [self.stem(x)]
            for block in self.encoder:
                features.append(block(features[-1]))
            x = features[-1]
            for block, skip in zip(self.decoder, reversed(features[:-1])):
                x = block(x, skip)
            return self.head(x)
    UNetVariant.__name__ = f"UNet_{double.__name__}"
    return UNetVariant


for _parts in [(DoubleConvNamedOutOfOrder, DownFunctionalPool, UpCatUpsampledFirst),
               (DoubleConvSecondFirst, DownConvDefinedFirst, UpOtherNames),
               (DoubleConvFromList, DownOneSequential, UpPaddingWithZerosByHand)]:
    variant(lesson02.check_unet)(_unet_class(*_parts))


# --------------------------------------------------------------------------- lesson 03


@variant(lesson03.check_average_loss)
def average_numpy(batch_losses, batch_sizes):
    return float(np.average(batch_losses, weights=batch_sizes))


@variant(lesson03.check_average_loss)
def average_torch(batch_losses, batch_sizes):
    sizes = torch.tensor(batch_sizes, dtype=torch.float64)
    losses = torch.tensor(batch_losses, dtype=torch.float64)
    return (losses * sizes).sum().item() / sizes.sum().item()


@variant(lesson03.check_average_loss)
def average_loop(batch_losses, batch_sizes):
    total = n = 0
    for loss, size in zip(batch_losses, batch_sizes):
        total, n = total + loss * size, n + size
    return total / n


@variant(lesson03.check_train_one_epoch)
def train_zero_grad_last(model, loader, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    losses, sizes = [], []
    for images, masks in loader:
        loss = loss_fn(model(images.to(device)), masks.to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        sizes.append(len(images))
    return sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)


@variant(lesson03.check_train_one_epoch)
def train_model_zero_grad(model, loader, loss_fn, optimizer, device):
    model.train(True)
    total, count = 0.0, 0
    for batch in loader:
        x, y = (t.to(device) for t in batch)
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * x.size(0)
        count += x.size(0)
    return total / count


@variant(lesson03.check_train_one_epoch)
def train_enumerate(model, loader, loss_fn, optimizer, device):
    model.to(device).train()
    running = torch.zeros((), dtype=torch.float64)
    n = 0
    for _, (images, masks) in enumerate(loader):
        images, masks = images.to(device, non_blocking=True), masks.to(device)
        optimizer.zero_grad()
        out = model(images)
        loss = loss_fn(out, masks)
        loss.backward()
        optimizer.step()
        running += loss.detach().double() * images.shape[0]
        n += images.shape[0]
    return (running / n).item()


@variant(lesson03.check_validate)
@torch.no_grad()
def validate_decorated(model, loader, loss_fn, device):
    model.eval()
    losses, dices = [], []
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        logits = model(images)
        losses += [loss_fn(logits, masks).item()] * len(images)
        dices += metrics.dice_per_image((torch.sigmoid(logits[:, 0]) > 0.5).long(),
                                        masks).tolist()
    return {"dice": sum(dices) / len(dices), "loss": sum(losses) / len(losses)}


@variant(lesson03.check_validate)
def validate_inference_mode(model, loader, loss_fn, device):
    model.train(False)
    loss_sum = dice_sum = 0.0
    seen = 0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device=device), y.to(device=device)
            logits = model(x)
            loss_sum += loss_fn(logits, y).item() * x.shape[0]
            pred = (logits.squeeze(1) > 0).float()
            inter = (pred * y).sum(dim=(1, 2))
            size = pred.sum(dim=(1, 2)) + y.sum(dim=(1, 2))
            dice = torch.where(size == 0, torch.ones_like(inter), 2 * inter / size.clamp(min=1))
            dice_sum += dice.sum().item()
            seen += x.shape[0]
    return dict(loss=loss_sum / seen, dice=dice_sum / seen, seen=seen)


@variant(lesson03.check_validate)
def validate_numpy_dice(model, loader, loss_fn, device):
    model.eval()
    results = []
    with torch.no_grad():
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            logits = model(images)
            loss = loss_fn(logits, masks).item()
            p = logits[:, 0].cpu().numpy() > 0
            t = masks.cpu().numpy() > 0
            for pi, ti in zip(p, t):
                both = pi.sum() + ti.sum()
                results.append((loss, 1.0 if both == 0 else 2 * (pi & ti).sum() / both))
    return {"loss": float(np.mean([r[0] for r in results])),
            "dice": float(np.mean([r[1] for r in results]))}


# --------------------------------------------------------------------------- lesson 04


@variant(lesson04.check_pixel_accuracy)
def accuracy_sigmoid_mean(logits, target):
    preds = (torch.sigmoid(logits).squeeze(1) >= 0.5).long()
    return (preds == target).float().mean().item()


@variant(lesson04.check_pixel_accuracy)
def accuracy_numpy(logits, target):
    return float(np.mean((logits.numpy()[:, 0] > 0) == target.numpy().astype(bool)))


@variant(lesson04.check_pixel_accuracy)
def accuracy_eq_count(logits, target):
    right = torch.eq((logits > 0).long().view_as(target), target).count_nonzero()
    return int(right) / float(target.numel())


def _per_image(logits, target, threshold, kind, eps=0.0):
    p = (torch.sigmoid(logits[:, 0]) > threshold).double()
    t = target.double()
    inter = (p * t).flatten(1).sum(1)
    total = p.flatten(1).sum(1) + t.flatten(1).sum(1)
    if kind == "dice":
        score = (2 * inter + eps) / (total + eps)
    else:
        score = (inter + eps) / (total - inter + eps)
    return torch.where(total == 0, torch.ones_like(score), score)


@variant(lesson04.check_dice_score)
def dice_with_tiny_epsilon(logits, target, threshold=0.5):
    return _per_image(logits, target, threshold, "dice", eps=1e-9).mean().item()


@variant(lesson04.check_dice_score)
def dice_numpy_loop(logits, target, threshold=0.5):
    probs = 1 / (1 + np.exp(-logits.numpy()[:, 0].astype(np.float64)))
    scores = []
    for p, t in zip(probs > threshold, target.numpy() == 1):
        size = p.sum() + t.sum()
        scores.append(1.0 if size == 0 else 2.0 * np.logical_and(p, t).sum() / size)
    return float(np.mean(scores))


@variant(lesson04.check_dice_score)
def dice_logit_threshold(logits, target, threshold=0.5):
    cut = math.log(threshold / (1 - threshold))  # the logit of the threshold
    p = (logits.squeeze(1) > cut)
    t = target.bool()
    inter = (p & t).sum((-2, -1)).double()
    size = (p.sum((-2, -1)) + t.sum((-2, -1))).double()
    return float(torch.nan_to_num(2 * inter / size, nan=1.0).mean())


@variant(lesson04.check_iou_score)
def iou_with_tiny_epsilon(logits, target, threshold=0.5):
    return _per_image(logits, target, threshold, "iou", eps=1e-9).mean().item()


@variant(lesson04.check_iou_score)
def iou_logical_or(logits, target, threshold=0.5):
    p = torch.sigmoid(logits[:, 0]) > threshold
    t = target > 0
    inter = (p & t).sum(dim=(1, 2)).double()
    union = (p | t).sum(dim=(1, 2)).double()
    return torch.where(union > 0, inter / union.clamp(min=1), 1.0).mean().item()


@variant(lesson04.check_iou_score)
def iou_from_dice(logits, target, threshold=0.5):
    dice = _per_image(logits, target, threshold, "dice")
    return (dice / (2 - dice)).mean().item()  # IoU = D / (2 - D), image by image


# --------------------------------------------------------------------------- lesson 05


@variant(lesson05.check_class_weights)
def weights_numpy(masks, num_classes, ignore_index=255):
    values = np.asarray(masks).ravel()
    counts = np.bincount(values[values != ignore_index], minlength=num_classes).astype(float)
    w = np.zeros(num_classes)
    seen = counts > 0
    w[seen] = 1 / counts[seen]
    w[seen] /= w[seen].mean()
    return torch.tensor(w, dtype=torch.float32)


@variant(lesson05.check_class_weights)
def weights_by_class(masks, num_classes, ignore_index=255):
    counts = torch.stack([(masks == c).sum() for c in range(num_classes)]).float()
    freq = counts / counts.sum()
    w = torch.where(counts > 0, 1.0 / freq.clamp(min=1e-12), torch.zeros_like(freq))
    return w / w[counts > 0].mean()


@variant(lesson05.check_class_weights)
def weights_segkit(masks, num_classes, ignore_index=255):
    from segkit.losses import class_weights_from_frequencies, pixel_counts
    return class_weights_from_frequencies(pixel_counts(masks, num_classes, ignore_index),
                                          num_classes, ignore_index)


@variant(lesson05.check_multiclass_loss)
def loss_module(logits, target, weights):
    return nn.CrossEntropyLoss(weight=weights, ignore_index=255)(logits, target)


@variant(lesson05.check_multiclass_loss)
def loss_nll_of_log_softmax(logits, target, weights):
    return F.nll_loss(torch.log_softmax(logits, dim=1), target, weight=weights, ignore_index=255)


@variant(lesson05.check_multiclass_loss)
def loss_by_hand(logits, target, weights):
    keep = target != 255
    labels = torch.where(keep, target, 0)
    picked = -torch.log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1)
    w = weights[labels] * keep
    return (picked * w).sum() / w.sum()


@variant(lesson05.check_predict_labels)
def labels_max_indices(logits):
    return logits.max(dim=1).indices


@variant(lesson05.check_predict_labels)
def labels_after_softmax(logits):
    return torch.argmax(torch.softmax(logits, dim=1), dim=1)


@variant(lesson05.check_predict_labels)
def labels_numpy(logits):
    return torch.from_numpy(np.argmax(logits.numpy(), axis=1)).long()


@variant(lesson05.check_miou_from_confusion)
def miou_numpy(cm, include_background=True):
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
    return float(np.nanmean(iou if include_background else iou[1:]))


@variant(lesson05.check_miou_from_confusion)
def miou_loop(cm, include_background=True):
    ious = []
    for c in range(0 if include_background else 1, cm.shape[0]):
        union = float(cm[c, :].sum() + cm[:, c].sum() - cm[c, c])
        if union > 0:
            ious.append(float(cm[c, c]) / union)
    return sum(ious) / len(ious)


@variant(lesson05.check_miou_from_confusion)
def miou_masked(cm, include_background=True):
    cm = cm.double()
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
    keep = ~iou.isnan()
    if not include_background:
        keep[0] = False
    return iou[keep].mean().item()


# --------------------------------------------------------------------------- lesson 06


@variant(lesson06.check_log_spaced)
def log_spaced_logspace(low, high, n):
    return np.logspace(np.log10(low), np.log10(high), n)


@variant(lesson06.check_log_spaced)
def log_spaced_geometric(low, high, n):
    ratio = (high / low) ** (1 / (n - 1)) if n > 1 else 1.0
    return [low * ratio ** i for i in range(n)]


@variant(lesson06.check_log_spaced)
def log_spaced_torch(low, high, n):
    return torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)


@variant(lesson06.check_summarize_runs)
def summary_sorted_groupby(rows, by, key="val_dice"):
    import itertools
    setting = lambda r: tuple(r[b] for b in by)  # noqa: E731
    out = []
    for values, group in itertools.groupby(sorted(rows, key=setting), key=setting):
        xs = [r[key] for r in group]
        out.append({**dict(zip(by, values)), "mean": sum(xs) / len(xs), "n": len(xs),
                    "std": statistics.stdev(xs) if len(xs) > 1 else float("nan")})
    return out


@variant(lesson06.check_summarize_runs)
def summary_numpy(rows, by, key="val_dice"):
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r[key])
    return [dict(zip(by, k), mean=float(np.mean(v)), n=len(v),
                 std=float(np.std(v, ddof=1)) if len(v) > 1 else math.nan)
            for k, v in groups.items()]


@variant(lesson06.check_summarize_runs)
def summary_pandas_free_two_passes(rows, by, key="val_dice"):
    settings = []
    for r in rows:
        s = {b: r[b] for b in by}
        if s not in settings:
            settings.append(s)
    out = []
    for s in settings:
        xs = [r[key] for r in rows if all(r[b] == s[b] for b in by)]
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 \
            else math.nan
        out.append({**s, "mean": mean, "std": std, "n": len(xs)})
    return out


@variant(lesson06.check_early_stopping)
class StopperWithCounter:
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.patience, self.min_delta = patience, min_delta
        self.sign = 1 if mode == "max" else -1
        self.best, self.best_epoch, self.wait, self.seen = None, 0, 0, 0

    def step(self, value):
        self.seen += 1
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, self.seen, 0
            return False
        self.wait += 1
        return self.wait >= self.patience


@variant(lesson06.check_early_stopping)
class StopperFromHistory:
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.history = []
        self.best = None
        self.best_epoch = 0

    def _better(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value):
        self.history.append(value)
        if self._better(value):
            self.best, self.best_epoch = value, len(self.history)
        return len(self.history) - self.best_epoch >= self.patience


@variant(lesson06.check_early_stopping)
class StopperNegatedForMin:
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.patience, self.min_delta = patience, min_delta
        self.flip = -1.0 if mode == "min" else 1.0
        self._best_score = -math.inf
        self.best, self.best_epoch, self.epoch, self.bad = None, 0, 0, 0

    def step(self, value):
        self.epoch += 1
        score = self.flip * value
        if self.best is None or score > self._best_score + self.min_delta:
            self._best_score, self.best, self.best_epoch, self.bad = score, value, self.epoch, 0
        else:
            self.bad += 1
        return bool(self.bad >= self.patience)


# --------------------------------------------------------------------------- lesson 07


@variant(lesson07.check_predict_full_size)
@torch.no_grad()
def predict_decorated(model, image, size):
    model.eval()
    h, w = image.shape[2], image.shape[3]
    logits = model(F.interpolate(image, size=tuple(size), mode="bilinear", antialias=True))
    probs = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear"))
    return (probs[0, 0] > 0.5).long()


@variant(lesson07.check_predict_full_size)
def predict_inference_mode(model, image, size):
    model.train(False)
    with torch.inference_mode():
        small = F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                              antialias=True)
        big = F.interpolate(model(small), size=image.shape[-2:], mode="bilinear")
    return big.squeeze(0).squeeze(0).gt(0).to(torch.int64)


@variant(lesson07.check_predict_full_size)
def predict_resize_transform(model, image, size):
    model.eval()
    with torch.no_grad():
        logits = model(v2.functional.resize(image, list(size), antialias=True))
        logits = v2.functional.resize(logits, list(image.shape[-2:]), antialias=False)
    return (logits[0, 0] > 0).long()


@variant(lesson07.check_mask_to_png_array)
def png_where(mask):
    return np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)


@variant(lesson07.check_mask_to_png_array)
def png_from_tensor(mask):
    return (torch.as_tensor(np.asarray(mask)).to(torch.uint8) * 255).numpy()


@variant(lesson07.check_mask_to_png_array)
def png_multiply_first(mask):
    return (np.asarray(mask, dtype=np.int64) * 255).astype("uint8")


@variant(lesson07.check_flip_tta)
def tta_probabilities(model, x):
    with torch.no_grad():
        p = (torch.sigmoid(model(x)) + torch.sigmoid(model(torch.flip(x, dims=[3]))).flip(3)) / 2
    return (p[:, 0] > 0.5).long()


@variant(lesson07.check_flip_tta)
def tta_stacked(model, x):
    with torch.no_grad():
        both = model(torch.cat([x, x.flip(-1)]))
        n = x.shape[0]
        mean = torch.stack([both[:n], both[n:].flip(-1)]).mean(0)
    return mean.squeeze(1).gt(0).long()


@variant(lesson07.check_flip_tta)
def tta_sum_of_logits(model, x):
    model.eval()
    with torch.inference_mode():
        total = model(x)[:, 0] + model(x.flip(-1))[:, 0].flip(-1)
    return (total > 0).to(torch.int64)


# --------------------------------------------------------------------------- lesson 08


@variant(lesson08.check_encoder_features)
def features_by_children(resnet, x):
    x = resnet.relu(resnet.bn1(resnet.conv1(x)))
    maps = [x]
    x = resnet.maxpool(x)
    for stage in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        x = stage(x)
        maps.append(x)
    return maps


@variant(lesson08.check_encoder_features)
def features_named_stages(resnet, x):
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu)(x)
    out, f = [stem], resnet.maxpool(stem)
    for name in ["layer1", "layer2", "layer3", "layer4"]:
        f = getattr(resnet, name)(f)
        out.append(f)
    return out


@variant(lesson08.check_encoder_features)
def features_functional_relu(resnet, x):
    s = F.relu(resnet.bn1(resnet.conv1(x)))
    a = resnet.layer1(F.max_pool2d(s, kernel_size=3, stride=2, padding=1))
    b = resnet.layer2(a)
    c = resnet.layer3(b)
    return [s, a, b, c, resnet.layer4(c)]


@variant(lesson08.check_freeze_encoder)
def freeze_requires_grad_(model):
    model.encoder.requires_grad_(False)
    model.encoder.eval()
    model.encoder_frozen = True
    return [p for p in model.parameters() if p.requires_grad]


@variant(lesson08.check_freeze_encoder)
def freeze_by_name(model):
    for name, p in model.named_parameters():
        if name.startswith("encoder."):
            p.requires_grad = False
    model.encoder.train(False)
    model.encoder_frozen = True
    return [p for name, p in model.named_parameters() if not name.startswith("encoder.")]


@variant(lesson08.check_freeze_encoder)
def freeze_filter_list(model):
    for module in model.encoder.modules():
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    model.encoder_frozen = True
    return list(filter(lambda p: p.requires_grad, model.parameters()))
