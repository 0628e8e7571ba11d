"""The training loop of lesson 03: ``train_one_epoch``, ``validate`` and ``fit``.

These are the lesson's answers, in the same order:

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

What ``segkit train`` adds (mixed precision, channels_last, torchrun, a time budget,
gradient clipping, a stop on a non-finite loss) does not live in these functions: it wraps
their arguments from outside (the model in :mod:`segkit.speed`, the training loader in
:mod:`segkit.budget`, the epoch's two halves in :mod:`segkit.distributed`), and
:mod:`segkit.recipe` puts the pieces together. ``fit`` puts a progress bar around each
loader it hands to ``train_one_epoch`` and ``validate``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segkit.metrics import RunningScores
from segkit.progress import progress

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: LossFn,
                    optimizer: torch.optim.Optimizer, device: torch.device | str) -> float:
    """Train ``model`` for one pass over ``loader``; return the mean loss per sample.

    Defined in lesson 03 (the exercise ``train_one_epoch``). loader yields ``(images,
    masks)``: images (N, C, H, W) float32, masks (N, H, W) int64. Returns a Python float.
    """
    model.train()
    total_loss, n_samples = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, masks)
        loss.backward()
        optimizer.step()
        batch_size = images.shape[0]
        total_loss += loss.item() * batch_size  # .item(): a float, no graph kept
        n_samples += batch_size
    if n_samples == 0:
        raise ValueError("the training loader gave no batches: is the dataset empty?")
    return total_loss / n_samples


@torch.no_grad()
def validate(model: nn.Module, loader: Iterable, loss_fn: LossFn | None,
             device: torch.device | str, *, num_classes: int | None = None) -> dict[str, float]:
    """Mean loss per sample and the scores of ``model`` on ``loader``, in eval mode and
    without gradients.

    Defined in lesson 03 (the exercise ``validate``), with lesson 04's and 05's scores:
    binary models (1 output channel) give ``loss``, ``dice`` (mean of per-image Dice at
    logit 0, i.e. probability 0.5), ``iou`` and ``accuracy`` (pixel accuracy); multiclass
    models give ``loss``, ``miou`` (mean IoU over the classes present, background
    included), ``accuracy`` and, for 2 classes, ``dice`` of class 1. Pixels labelled 255
    are left out of the scores (:class:`segkit.metrics.RunningScores`). ``loss_fn`` None
    leaves the loss out. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    total_loss, n_samples = 0.0, 0
    scores = RunningScores(num_classes)
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        logits = model(images)
        batch_size = images.shape[0]
        if loss_fn is not None:
            total_loss += loss_fn(logits, masks).item() * batch_size
        n_samples += batch_size
        scores.add(logits, masks)
    model.train(was_training)
    if n_samples == 0:
        raise ValueError("the validation loader gave no batches: is the validation split empty?")
    figures = {"loss": total_loss / n_samples} if loss_fn is not None else {}
    return {**figures, **scores.figures()}


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


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable, *, loss_fn: LossFn,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str,
        scheduler=None, num_classes: int | None = None, history: History | None = None,
        start_epoch: int = 0, on_epoch_end: Callable[[int, History], bool | None] | None = None,
        log: Callable[[str], None] | None = print, show_progress: bool | None = None,
        train_epoch=train_one_epoch, validate_epoch=validate) -> History:
    """Train for ``epochs`` epochs (counting from ``start_epoch``), validating after each.

    Defined in lesson 03 (its training cell, as a function). Each epoch trains
    (``train_epoch``, :func:`train_one_epoch` by default), validates (``validate_epoch``,
    :func:`validate`), appends a record to ``history`` and logs one line (train loss, val
    loss, val Dice or mIoU, val accuracy, seconds). ``scheduler`` is stepped once per
    epoch (``ReduceLROnPlateau`` with the val loss). ``on_epoch_end(epoch, history)`` runs
    after each epoch (save a checkpoint, watch for early stopping or a time budget); when
    it returns True, training stops there. Resuming: pass the ``history`` and
    ``start_epoch`` stored in a checkpoint. ``show_progress``: a progress bar over each
    loader, around the two functions (None: on, except in CI; see :mod:`segkit.progress`).
    Returns the history.
    """
    history = History() if history is None else history
    for epoch in range(start_epoch + 1, epochs + 1):
        lr = float(optimizer.param_groups[0]["lr"])  # the learning rate of this epoch
        start = time.monotonic()
        batches = progress(train_loader, desc=f"epoch {epoch}/{epochs}", enabled=show_progress)
        train_loss = train_epoch(model, batches, loss_fn, optimizer, device)
        seconds = time.monotonic() - start
        val = validate_epoch(model, progress(val_loader, desc="val", enabled=show_progress),
                             loss_fn, device, num_classes=num_classes)
        record = {"epoch": float(epoch), "train_loss": train_loss, "lr": lr, "seconds": seconds,
                  "elapsed": history.last.get("elapsed", 0.0) + seconds,
                  **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val.get("loss", train_loss))
        elif scheduler is not None:
            scheduler.step()
        if log is not None:
            log(format_epoch(record, epochs))
        if on_epoch_end is not None and on_epoch_end(epoch, history):
            break
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


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float | None):
    """Clip the gradients' total norm to ``max_norm`` before every ``optimizer.step()``.

    Registers a step pre-hook on ``optimizer`` (PyTorch calls it at the start of each
    step, after a GradScaler has unscaled the gradients) and returns its handle
    (``handle.remove()`` undoes it); ``max_norm`` None does nothing and returns None.
    A large first gradient of a fresh model then cannot throw the weights far off.
    """
    if max_norm is None:
        return None
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clip(opt, args, kwargs) -> None:  # a pre-hook returns None: the step's arguments stay
        nn.utils.clip_grad_norm_(params, max_norm)

    return optimizer.register_step_pre_hook(clip)


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
