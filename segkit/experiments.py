"""Small, repeatable experiments: a grid of short training runs and their summary (lesson 06).

A study asks "does this setting matter?" (learning rate, batch size, kernel size, optimizer,
width). The honest way to answer it on a small budget is:

1. load the data **once** (:func:`load_data`: images and masks as tensors, no augmentation),
   so every run sees the same split and nothing is decoded again;
2. train one short run per setting and per **seed** (:func:`run_one`, :func:`run_grid`),
   with a fixed number of epochs (never a time budget: the number of steps that fit in a
   minute changes from run to run);
3. put every run in a *row* (a plain dict) and summarise the rows per setting: mean and
   sample standard deviation over the seeds (:func:`summarize`). Two settings whose means
   differ by less than the spread between seeds are not shown to differ.

The settings come from :class:`segkit.recipe.TrainConfig` (only the fields that matter
here are used: ``base``, ``depth``, ``kernel_size``, ``bilinear``, ``batch_size``,
``epochs``, ``optimizer``, ``lr``, ``weight_decay``, ``momentum``, ``scheduler``,
``clip_grad``, ``seed``, ``device``). Binary datasets only (``carvana``, ``seasky``): the
model has one output channel, the loss is :class:`segkit.losses.BCEDiceLoss` and the score
is the validation Dice.

What a seed changes here: the U-Net's initial weights and the order of the training batches.
The train/validation split is fixed when the data is loaded (by the ``seed`` of the config
given to :func:`load_data`), so the seeds of a study measure run-to-run spread, not the
luck of the split.

Also here: :class:`EarlyStopping` (stop when the validation score has not improved for
``patience`` epochs), :func:`log_spaced` (a learning-rate grid), :func:`format_table`
(rows as an aligned text table) and :func:`seconds_per_image` (CPU/GPU inference time).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from segkit import losses, recipe
from segkit.device import pick_device, seed_everything
from segkit.training import History, clip_gradients, fit
from segkit.unet import UNet, count_parameters

__all__ = [
    "EarlyStopping",
    "ExperimentData",
    "format_table",
    "load_data",
    "log_spaced",
    "run_grid",
    "run_one",
    "seconds_per_image",
    "summarize",
]

Row = dict[str, Any]


# --------------------------------------------------------------------------- data


@dataclasses.dataclass
class ExperimentData:
    """Train and validation tensors, loaded once and shared by every run of a study.

    Attributes:
        train: ``TensorDataset`` of images (N, C, H, W) float32 (normalised) and
            masks (N, H, W) int64 of 0/1.
        val: the same for the validation split.
        in_channels: C (3 for Carvana, 1 for sea/sky).
        stats: the dataset's statistics dict (``mean``, ``std``, ``size`` ...), as
            :func:`segkit.recipe.build_datasets` returns it.
    """

    train: TensorDataset
    val: TensorDataset
    in_channels: int
    stats: dict[str, Any]

    def __repr__(self) -> str:
        x = self.train.tensors[0]
        return (f"ExperimentData({len(self.train)} train / {len(self.val)} val images, "
                f"images (N, {x.shape[1]}, {x.shape[2]}, {x.shape[3]}) {str(x.dtype)[6:]}, "
                f"masks (N, {x.shape[2]}, {x.shape[3]}) int64)")


def _stack(dataset, limit: int | None) -> TensorDataset:
    """The first ``limit`` items of ``dataset`` stacked into two tensors."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ValueError("no images to load: the dataset (or the limit) is empty")
    images, masks = zip(*(dataset[i] for i in range(n)))
    images = torch.stack([torch.as_tensor(im).as_subclass(torch.Tensor) for im in images])
    masks = torch.stack([torch.as_tensor(m).as_subclass(torch.Tensor) for m in masks])
    return TensorDataset(images.float(), masks.long())


def load_data(cfg: recipe.TrainConfig, limit: int | None = None,
              val_limit: int | None = None) -> ExperimentData:
    """Load ``cfg.dataset`` at ``cfg.size`` (H, W) into memory, without augmentation.

    The split is :func:`segkit.recipe.build_datasets`'s (Carvana: by car, seeded with
    ``cfg.seed``); images are resized and normalised with the training statistics.
    ``limit`` / ``val_limit`` keep only the first images of each split (a quick study
    on a CPU); None keeps them all.

    Returns: an :class:`ExperimentData`.
    """
    if recipe.TASKS[cfg.dataset] != "binary":
        raise ValueError(f"segkit.experiments handles binary datasets (carvana, seasky); "
                         f"got {cfg.dataset!r}")
    cfg = dataclasses.replace(cfg, augment=False, cache="none")  # loaded once: nothing to cache
    train_ds, val_ds, stats = recipe.build_datasets(cfg)
    return ExperimentData(_stack(train_ds, limit), _stack(val_ds, val_limit),
                          in_channels=len(stats["mean"]), stats=stats)


# --------------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Stop training when the monitored value has not improved for ``patience`` epochs.
    Defined in lesson 06 (the exercise ``EarlyStopping``).

    Call ``step(value)`` once per epoch with the validation figure; it returns True when
    training should stop. "Improved" means better than the **best value so far** (not the
    previous epoch's) by more than ``min_delta``: higher for ``mode="max"`` (Dice, IoU),
    lower for ``mode="min"`` (a loss). Each improvement resets the count of bad epochs.

    Attributes: ``best`` (best value so far, None before the first step), ``best_epoch``
    (1-based epoch of ``best``), ``bad_epochs`` (epochs since the last improvement),
    ``epoch`` (steps taken), ``stopped`` (True once ``step`` returned True).

    Example::

        stopper = EarlyStopping(patience=2, mode="max")
        [stopper.step(d) for d in [0.5, 0.6, 0.55, 0.58]]   # [False, False, False, True]
        stopper.best, stopper.best_epoch                   # (0.6, 2)
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, mode: str = "max") -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' (a score) or 'min' (a loss), got {mode!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.epoch = 0
        self.stopped = False

    def improved(self, value: float) -> bool:
        """True when ``value`` beats the best so far by more than ``min_delta``."""
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def step(self, value: float) -> bool:
        """Record this epoch's ``value``; True when training should stop now."""
        self.epoch += 1
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), self.epoch, 0
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return self.stopped

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta:g}, "
                f"mode={self.mode!r}: best {self.best} at epoch {self.best_epoch}, "
                f"{self.bad_epochs} bad epochs)")


# --------------------------------------------------------------------------- one run


def run_one(cfg: recipe.TrainConfig, data: ExperimentData, *,
            early_stopping: EarlyStopping | None = None,
            make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
            log: Callable[[str], None] | None = None) -> Row:
    """Train a fresh U-Net as ``cfg`` says on ``data``; return the run as a row.

    Seeds everything with ``cfg.seed`` (initial weights, batch order), trains
    ``cfg.epochs`` epochs with :func:`segkit.training.fit` (lesson 03's loop, in float32),
    ``cfg.optimizer`` (gradients clipped to ``cfg.clip_grad``) and ``cfg.scheduler``
    (``"none"``, ``"cosine"`` or ``"plateau"``: ReduceLROnPlateau on the validation loss),
    and stops early when ``early_stopping`` (monitoring val Dice or val loss, by its
    ``mode``) says so. ``make_scheduler(optimizer)``, when given, builds the scheduler
    instead of ``cfg.scheduler`` (e.g. a ReduceLROnPlateau with other settings than
    :func:`segkit.recipe.build_scheduler`'s). ``log`` gets one line per epoch.

    Returns: a dict with the settings that studies vary (``lr``, ``batch_size``,
    ``kernel_size``, ``optimizer``, ``base``, ``depth``, ``scheduler`` ("custom" with
    ``make_scheduler``), ``seed``), then
    ``params`` (int), ``epochs_run`` (int), ``val_dice`` (float, last epoch),
    ``best_val_dice`` and ``best_epoch``, ``train_loss`` and ``val_loss`` (last epoch),
    ``stopped_early`` (bool), ``history`` (:class:`segkit.training.History`: per-epoch
    records with ``epoch``, ``train_loss``, ``val_loss``, ``val_dice``, ``lr``...).
    """
    device = pick_device(None if cfg.device == "auto" else cfg.device)
    generator = seed_everything(cfg.seed)
    model = UNet(in_channels=data.in_channels, num_classes=1, base=cfg.base, depth=cfg.depth,
                 kernel_size=cfg.kernel_size, bilinear=cfg.bilinear).to(device)
    optimizer = recipe.build_optimizer(cfg, model.parameters())
    clip_gradients(optimizer, cfg.clip_grad or None)
    scheduler = (make_scheduler(optimizer) if make_scheduler is not None
                 else recipe.build_scheduler(cfg, optimizer))
    train_loader = DataLoader(data.train, batch_size=cfg.batch_size, shuffle=True,
                              generator=generator)
    val_loader = DataLoader(data.val, batch_size=max(cfg.batch_size, 32), shuffle=False)

    def after_epoch(epoch: int, history: History) -> bool:
        """Log the epoch's line; True (stop) when the early stopping says so."""
        r = history.last
        if log is not None:
            log(f"epoch {epoch:>2}/{cfg.epochs}  lr {r['lr']:.2e}  train loss "
                f"{r['train_loss']:.4f}  val loss {r['val_loss']:.4f}  val Dice {r['val_dice']:.4f}")
        if early_stopping is None:
            return False
        return early_stopping.step(r["val_dice"] if early_stopping.mode == "max" else r["val_loss"])

    history = fit(model, train_loader, val_loader, loss_fn=losses.BCEDiceLoss(),
                  optimizer=optimizer, epochs=cfg.epochs, device=device, scheduler=scheduler,
                  on_epoch_end=after_epoch, log=None, show_progress=False)
    return run_row(cfg, model, history, custom_scheduler=make_scheduler is not None)


def run_row(cfg: recipe.TrainConfig, model: torch.nn.Module, history: History,
            custom_scheduler: bool = False) -> Row:
    """One run as a row of a study: its settings, then its figures (see :func:`run_one`)."""
    best = history.best("val_dice")
    return {
        "lr": cfg.lr, "batch_size": cfg.batch_size, "kernel_size": cfg.kernel_size,
        "optimizer": cfg.optimizer, "base": cfg.base, "depth": cfg.depth,
        "scheduler": "custom" if custom_scheduler else cfg.scheduler, "seed": cfg.seed,
        "params": count_parameters(model), "epochs_run": len(history),
        "val_dice": history.last["val_dice"], "best_val_dice": best["val_dice"],
        "best_epoch": int(best["epoch"]), "train_loss": history.last["train_loss"],
        "val_loss": history.last["val_loss"],
        "stopped_early": len(history) < cfg.epochs, "history": history,
    }


def run_grid(base: recipe.TrainConfig, grid: dict[str, Sequence[Any]], data: ExperimentData,
             seeds: Iterable[int] = (0,),
             log: Callable[[str], None] | None = None) -> list[Row]:
    """One run (:func:`run_one`) for every combination of ``grid`` values and every seed.

    ``grid`` maps :class:`~segkit.recipe.TrainConfig` field names to the values to try,
    e.g. ``{"lr": [1e-3, 1e-2], "batch_size": [8, 32]}`` (4 settings); every other field
    comes from ``base``. The runs go setting by setting, seed by seed. ``log`` gets one
    line per finished run.

    Returns: the rows, ``len(settings) * len(seeds)`` of them.
    """
    fields = {f.name for f in dataclasses.fields(recipe.TrainConfig)}
    unknown = [k for k in grid if k not in fields]
    if unknown:
        raise ValueError(f"{unknown} are not TrainConfig fields; known: {sorted(fields)}")
    seeds = list(seeds)
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in names)):
        for seed in seeds:
            cfg = dataclasses.replace(base, seed=seed, **dict(zip(names, values)))
            row = run_one(cfg, data)
            rows.append(row)
            if log is not None:
                setting = ", ".join(f"{k} {v:.3g}" if k == "lr" else f"{k} {_fmt(v)}"
                                    for k, v in zip(names, values))
                log(f"{setting}, seed {seed}: val Dice {row['val_dice']:.4f}")
    return rows


# --------------------------------------------------------------------------- summaries


def summarize(rows: Iterable[Row], by: str | Sequence[str], key: str = "val_dice") -> list[Row]:
    """Mean and sample standard deviation of ``key`` per setting, over the seeds. Defined in
    lesson 06 (the exercise ``summarize_runs``).

    ``by`` is a column name (``"lr"``) or several (``("lr", "batch_size")``): rows with the
    same values there form one group. The std is the *sample* std (divides by n - 1, like
    ``statistics.stdev`` and ``torch.std``): it estimates the spread of a new run. With a
    single run it is undefined and given as NaN: one run says nothing about the spread.

    Returns: one row per group, in the order the groups first appear: the ``by`` columns,
    then ``mean``, ``std`` and ``n`` (the number of runs).
    """
    names = [by] if isinstance(by, str) else list(by)
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in names), []).append(float(row[key]))
    out = []
    for values, scores in groups.items():
        std = statistics.stdev(scores) if len(scores) > 1 else math.nan
        out.append({**dict(zip(names, values)), "mean": statistics.fmean(scores), "std": std,
                    "n": len(scores)})
    return out


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


def format_table(rows: Sequence[Row], columns: Sequence[str] | None = None,
                 digits: int = 4) -> str:
    """Rows as an aligned text table (floats rounded to ``digits``; NaN shown as n/a).

    ``columns`` defaults to every key of the first row except ``history``. Learning rates
    (the ``lr`` column) are shown with 3 significant digits (``0.001``, ``1e-05``).
    """
    if not rows:
        return "(no rows)"
    columns = list(columns) if columns else [k for k in rows[0] if k != "history"]

    def cell(row: Row, column: str) -> str:
        value = row.get(column, "")
        if column == "lr" and isinstance(value, float):
            return f"{value:.3g}"
        return _fmt(value, digits)

    cells = [[cell(r, c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def log_spaced(low: float, high: float, n: int) -> list[float]:
    """``n`` values from ``low`` to ``high`` (both included), evenly spaced on a log scale.
    Defined in lesson 06 (the exercise ``log_spaced``).

    ``log_spaced(1e-4, 1e-1, 4)`` -> ``[1e-4, 1e-3, 1e-2, 1e-1]``. Learning rates matter by
    their factor, not their difference: 1e-4 -> 2e-4 is as big a step as 1e-2 -> 2e-2.
    Values are rounded to 3 significant digits.
    """
    if n < 2 or not 0 < low < high:
        raise ValueError(f"need 0 < low < high and n >= 2, got low={low}, high={high}, n={n}")
    ratio = (high / low) ** (1 / (n - 1))
    return [float(f"{low * ratio ** i:.3g}") for i in range(n)]


# --------------------------------------------------------------------------- timing


@torch.no_grad()
def seconds_per_image(model: torch.nn.Module, images: torch.Tensor, repeats: int = 3) -> float:
    """Inference time of ``model`` per image, in seconds: the best of ``repeats`` timed passes.

    images: (N, C, H, W) float32, on the model's device. One untimed pass warms up first;
    the model is put in eval mode. Timings depend on the machine and its load: never
    compare numbers measured on different machines, or print them in a compared output.
    """
    model.eval()
    model(images)  # warm-up: the first pass allocates memory and picks kernels
    best = math.inf
    for _ in range(repeats):
        if images.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(images)
        if images.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best / images.shape[0]
