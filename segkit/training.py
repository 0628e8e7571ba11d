"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``.

This is the loop lesson 03 builds by hand, in the same order:

1. ``optimizer.zero_grad()``  - forget the previous step's gradients
2. ``logits = model(images)`` - forward pass, logits (N, C, H, W) float32
3. ``loss = loss_fn(logits, masks)``
4. ``loss.backward()``        - gradients
5. ``optimizer.step()``       - update the weights

How the epoch loss is averaged (the course's convention):
    every batch loss is the *mean over the pixels of that batch*. We accumulate
    ``loss.item() * batch_size`` and divide by the number of samples, so the epoch loss
    is the mean over samples, and an uneven last batch counts with its real size. (Dividing
    the sum of batch means by ``len(loader)`` gives the mean over batches instead; the two
    agree when every batch has the same size.) ``loss.item()`` turns the 0-d tensor into a
    Python float: accumulating the tensor itself would keep every batch's autograd graph
    alive and memory would grow.

Validation runs with ``model.eval()`` (BatchNorm uses its running statistics) under
``torch.no_grad()`` (no graph is built). Binary models have one output channel
(logits > 0 means "object"); multiclass models have one channel per class (argmax).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segkit import metrics
from segkit.errors import SegkitError
from segkit.progress import progress

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NonFiniteLossError(SegkitError, RuntimeError):
    """The loss (or the weights) became NaN or infinite: training cannot go on from here."""


def weights_are_finite(model: nn.Module) -> bool:
    """True when every float weight and buffer of ``model`` (BatchNorm statistics too)
    is a finite number: no NaN, no infinity."""
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values()
               if t.is_floating_point())


@dataclass
class History:
    """Per-epoch figures of a run: a list of dicts, one per epoch.

    Each record holds ``epoch`` (1-based), ``train_loss``, ``val_loss``, ``val_dice``
    (binary) or ``val_miou`` (multiclass), ``val_accuracy``, ``lr`` and ``seconds``
    (training time of the epoch) and ``elapsed`` (training time since the start of the run).
    """

    records: list[dict[str, float]] = field(default_factory=list)

    def append(self, record: dict[str, float]) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        """``history["val_dice"]`` -> the column as a list (for plotting)."""
        return [r.get(key, math.nan) for r in self.records]

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}

    def best(self, key: str = "val_dice", mode: str = "max") -> dict[str, float]:
        """The record with the best value of ``key`` (``mode`` "max" or "min")."""
        rows = [r for r in self.records if key in r and not math.isnan(r[key])]
        if not rows:
            raise KeyError(f"no epoch has a value for {key!r}")
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: r[key])

    def to_list(self) -> list[dict[str, float]]:
        """Plain Python data (safe to store in a ``weights_only`` checkpoint)."""
        return [dict(r) for r in self.records]

    @classmethod
    def from_list(cls, rows: Iterable[dict[str, float]]) -> "History":
        return cls([dict(r) for r in rows])


def _amp_enabled(amp: bool | str, device: torch.device) -> bool:
    """AMP ("auto") is used on CUDA only; on CPU and MPS the course trains in float32."""
    if amp == "auto":
        return device.type == "cuda"
    return bool(amp) and device.type == "cuda"


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    *,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad: float | None = None,
    deadline: float | None = None,
    desc: str = "train",
    show_progress: bool | None = None,
) -> float:
    """Train ``model`` for one pass over ``loader``; return the mean loss per sample.

    loader yields ``(images, masks)``: images (N, C, H, W) float32, masks (N, H, W) int64.
    ``scaler`` (a ``torch.amp.GradScaler``) turns on mixed precision on CUDA.
    ``clip_grad`` clips the gradient norm (e.g. 1.0). ``deadline`` (a ``time.monotonic()``
    value) stops the epoch early when the time is up (used for time-budget comparisons).

    Raises :class:`NonFiniteLossError` if a batch loss is NaN or infinite.
    """
    device = torch.device(device)
    model.train()
    use_amp = scaler is not None and scaler.is_enabled()
    total_loss = 0.0
    n_samples = 0
    for images, masks in progress(loader, desc=desc, enabled=show_progress):
        images = images.to(device, non_blocking=True)
        masks = masks.to(device, non_blocking=True)

        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            logits = model(images)
            loss = loss_fn(logits, masks)
        if not torch.isfinite(loss):
            lr = optimizer.param_groups[0]["lr"]
            raise NonFiniteLossError(
                f"the loss became {loss.item()} after {n_samples} samples of this epoch "
                f"(learning rate {lr:g}). The weights have blown up: try a learning rate "
                f"10x lower (e.g. {lr / 10:g}), keep gradient clipping on, and check that "
                "the masks hold class indices (0/1), not 0/255."
            )
        if use_amp:
            scaler.scale(loss).backward()
            if clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()

        batch_size = images.shape[0]
        total_loss += loss.item() * batch_size  # .item(): a float, no graph kept
        n_samples += batch_size
        if deadline is not None and time.monotonic() >= deadline:
            break
    if n_samples == 0:
        raise ValueError("the training loader gave no batches: is the dataset empty?")
    return total_loss / n_samples


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn | None,
    device: torch.device | str,
    *,
    num_classes: int | None = None,
    ignore_index: int = 255,
    desc: str = "val",
    show_progress: bool | None = None,
) -> dict[str, float]:
    """Validation: loss and metrics of ``model`` on ``loader``, in eval mode, without gradients.

    Binary models (1 output channel) give ``loss``, ``dice`` (mean of per-image Dice,
    threshold logit 0 = probability 0.5), ``iou`` and ``accuracy`` (pixel accuracy).
    Multiclass models (C > 1 channels) give ``loss``, ``miou`` (mean IoU over classes
    present, background included), ``accuracy`` and, for C == 2, ``dice`` of class 1.
    The model's train/eval mode is restored afterwards.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, n_samples = 0.0, 0
    dices: list[torch.Tensor] = []
    ious: list[torch.Tensor] = []
    correct, counted = 0, 0
    cm: torch.Tensor | None = None
    for images, masks in progress(loader, desc=desc, enabled=show_progress):
        images = images.to(device)
        masks = masks.to(device)
        logits = model(images)
        if loss_fn is not None:
            total_loss += loss_fn(logits, masks).item() * images.shape[0]
        n_samples += images.shape[0]
        if logits.shape[1] == 1:
            preds = (logits[:, 0] > 0).long()
            valid = masks != ignore_index  # binary masks may mark pixels "not labelled" too
            preds, masks = preds * valid, masks * valid
            dice = metrics.dice_per_image(preds, masks)
            dices.append(dice)
            ious.append(dice / (2 - dice))  # per image, IoU = Dice / (2 - Dice)
            correct += ((preds == masks) & valid).sum().item()
            counted += valid.sum().item()
        else:
            c = num_classes or logits.shape[1]
            batch_cm = metrics.confusion_matrix(logits.argmax(1), masks, c, ignore_index=ignore_index)
            cm = batch_cm if cm is None else cm + batch_cm
            if c == 2:
                preds = logits.argmax(1)
                valid = masks != ignore_index
                dices.append(metrics.dice_per_image(preds * valid, masks * valid))
    model.train(was_training)
    if n_samples == 0:
        raise ValueError("the validation loader gave no batches: is the validation split empty?")
    out: dict[str, float] = {}
    if loss_fn is not None:
        out["loss"] = total_loss / n_samples
    if cm is not None:
        out["miou"] = metrics.mean_iou(cm)
        out["accuracy"] = metrics.pixel_accuracy_from_cm(cm)
    else:
        out["accuracy"] = correct / counted
        out["iou"] = torch.cat(ious).mean().item()
    if dices:
        out["dice"] = torch.cat(dices).mean().item()
    return out


class BudgetCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """Cosine annealing over a training-time budget instead of a fixed number of epochs.

    A run stopped by a time budget (``fit(..., max_seconds=60)``) with an epoch-based
    cosine schedule stops half-way down the curve, at a still-large learning rate, and its
    last weights are noisy. This schedule follows the share of the budget used so far::

        progress = max(elapsed / max_seconds, epochs_done / epochs)     # 0 -> 1
        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2

    so the learning rate reaches ``min_lr`` when the time runs out on a slow machine, or
    when the last epoch ends on a fast one. ``fit`` calls ``step(elapsed)`` after each
    epoch with the training seconds so far.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_seconds: float, epochs: int,
                 min_lr: float = 0.0) -> None:
        if max_seconds <= 0 or epochs <= 0:
            raise ValueError(f"BudgetCosineLR: max_seconds ({max_seconds}) and epochs "
                             f"({epochs}) must be positive")
        self.max_seconds = float(max_seconds)
        self.epochs = int(epochs)
        self.min_lr = float(min_lr)
        self.progress = 0.0
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = (1 + math.cos(math.pi * self.progress)) / 2
        return [self.min_lr + (base - self.min_lr) * factor for base in self.base_lrs]

    def step(self, elapsed: float | None = None) -> None:  # type: ignore[override]
        """Move to the next epoch; ``elapsed``: training seconds used so far."""
        if elapsed is not None:
            by_epochs = (self.last_epoch + 1) / self.epochs
            self.progress = min(1.0, max(elapsed / self.max_seconds, by_epochs))
        super().step()


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: torch.device | str,
    scheduler: Any = None,
    amp: bool | str = "auto",
    clip_grad: float | None = 1.0,
    max_seconds: float | None = None,
    history: History | None = None,
    start_epoch: int = 0,
    on_epoch_end: Callable[[int, History], None] | None = None,
    log: Callable[[str], None] | None = print,
    show_progress: bool | None = None,
    num_classes: int | None = None,
) -> History:
    """Train for ``epochs`` epochs (counting from ``start_epoch``), validating after each.

    Prints one line per epoch (train loss, val loss, val Dice or mIoU, val accuracy).
    ``max_seconds`` stops training once that much *training* time has passed (the last
    epoch may be partial; validation time is not counted). ``scheduler`` is stepped once
    per epoch (``ReduceLROnPlateau`` gets the val loss, ``BudgetCosineLR`` the training
    seconds so far). ``on_epoch_end(epoch, history)``
    runs after each epoch, e.g. to save a checkpoint. Resuming: pass the ``history`` and
    ``start_epoch`` stored in a checkpoint.
    """
    device = torch.device(device)
    history = history if history is not None else History()
    scaler = torch.amp.GradScaler("cuda", enabled=_amp_enabled(amp, device))
    elapsed = history.last.get("elapsed", 0.0)
    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.monotonic()
        deadline = None
        if max_seconds is not None:
            if elapsed >= max_seconds:
                break
            deadline = t0 + (max_seconds - elapsed)
        train_loss = train_one_epoch(
            model, train_loader, loss_fn, optimizer, device, scaler=scaler,
            clip_grad=clip_grad, deadline=deadline, desc=f"epoch {epoch}/{epochs}",
            show_progress=show_progress,
        )
        seconds = time.monotonic() - t0
        elapsed += seconds
        val = evaluate(model, val_loader, loss_fn, device, num_classes=num_classes,
                       show_progress=show_progress)
        record = {"epoch": float(epoch), "train_loss": train_loss,
                  "lr": float(optimizer.param_groups[0]["lr"]),
                  "seconds": seconds, "elapsed": elapsed}
        record.update({f"val_{k}": v for k, v in val.items()})
        history.append(record)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val.get("loss", train_loss))
            elif isinstance(scheduler, BudgetCosineLR):
                scheduler.step(elapsed)
            else:
                scheduler.step()
        if log is not None:
            log(format_epoch(record, epochs))
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history


def format_epoch(record: dict[str, float], epochs: int | None = None) -> str:
    """One readable line for an epoch record, e.g.
    ``epoch  3/20  train loss 0.2345  val loss 0.2011  val Dice 0.9512  val acc 0.9801  4.1 s``."""
    e = int(record["epoch"])
    head = f"epoch {e:>2}/{epochs}" if epochs else f"epoch {e:>2}"
    parts = [head, f"train loss {record['train_loss']:.4f}"]
    if "val_loss" in record:
        parts.append(f"val loss {record['val_loss']:.4f}")
    if "val_dice" in record:
        parts.append(f"val Dice {record['val_dice']:.4f}")
    if "val_miou" in record:
        parts.append(f"val mIoU {record['val_miou']:.4f}")
    parts.append(f"val acc {record['val_accuracy']:.4f}")
    parts.append(f"{record['seconds']:.1f} s")
    return "  ".join(parts)


def save_history_csv(history: History, path: str | Path) -> Path:
    """Write the history as CSV (one row per epoch)."""
    import csv

    path = Path(path)
    keys: list[str] = []
    for r in history.records:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history.records)
    return path
