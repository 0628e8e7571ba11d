"""Does lesson 05's conclusion (weighted cross-entropy beats plain) hold for other seeds?

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/lesson05_seeds.py [--seeds 0 1 2] [--epochs 25]

Trains lesson 05's small U-Net (base 16, depth 2, Adam, batch 8, 64x64 toy VOC, no
augmentation) with plain and with inverse-frequency weighted cross-entropy, for each seed,
with the lesson's one-cycle schedule (max lr 1e-2) and with a constant lr of 3e-3, and
prints val IoU per class, mIoU with and without background, and pixel accuracy. The
lesson itself runs seed 0 with the one-cycle schedule. A benchmark, not a test: it takes
about 35 s per training on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segkit import data, losses, metrics, toydata
from segkit.unet import UNet

NUM_CLASSES, IGNORE = len(toydata.VOC_TOY_CLASSES), 255


def stack(dataset):
    images, masks = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images).as_subclass(torch.Tensor), torch.stack(masks).as_subclass(torch.Tensor)


def train(images, masks, loss_fn, *, epochs: int, seed: int, one_cycle: bool) -> nn.Module:
    torch.manual_seed(seed)
    model = UNet(in_channels=3, num_classes=NUM_CLASSES, base=16, depth=2)
    lr = 1e-2 if one_cycle else 3e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(images, masks), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    schedule = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
                if one_cycle else None)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=25)
    args = ap.parse_args()
    train_ds, val_ds, _ = data.voc_datasets(toydata.embedded_root("voc"), size=(64, 64), augment=False)
    train_images, train_masks = stack(train_ds)
    val_images, val_masks = stack(val_ds)
    weights = losses.class_weights_from_frequencies(train_masks, NUM_CLASSES)  # counts the pixels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs")
    print("schedule   seed  loss      IoU per class (bg disc box tri ring)   mIoU  no-bg  acc    s")
    for one_cycle in (True, False):
        for seed in args.seeds:
            for name, weight in (("plain", None), ("weighted", weights)):
                start = time.perf_counter()
                model = train(train_images, train_masks, nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE),
                              epochs=args.epochs, seed=seed, one_cycle=one_cycle)
                with torch.no_grad():
                    cm = metrics.confusion_matrix(model(val_images).argmax(1), val_masks, NUM_CLASSES,
                                                  ignore_index=IGNORE)
                iou = metrics.iou_per_class(cm)
                print(f"{'one-cycle' if one_cycle else 'constant':9}  {seed:4}  {name:8}  "
                      + " ".join(f"{v:.3f}" for v in iou.tolist())
                      + f"   {metrics.mean_iou(cm):.3f}  {metrics.mean_iou(cm, include_background=False):.3f}"
                      + f"  {metrics.pixel_accuracy_from_cm(cm):.3f}  {time.perf_counter() - start:4.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
