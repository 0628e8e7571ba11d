"""One training run from start to finish: the recipe behind ``segkit train``.

``TrainConfig`` holds every setting of a run; ``run_training(cfg)`` builds the datasets,
the U-Net, the loss and the optimizer, runs :func:`segkit.training.fit`, saves checkpoints
(``last.pt`` every epoch, ``best.pt`` at the best validation score), the history as CSV,
the settings as ``config.json``, and a PNG of predictions next to the ground truth.

**One table of defaults.** A setting a run is not given comes from :data:`DEFAULTS` (and,
for the settings that depend on the dataset, from its column in :data:`DATASET_DEFAULTS`),
for ``segkit train`` and ``run_training(TrainConfig())`` alike. A **preset**
(:data:`PRESETS`) is a named recipe that replaces some of them; a setting given explicitly
still wins over it. The preset a run uses is printed at its start and written to its
``config.json`` and checkpoints. ``segkit train`` uses the preset named after its dataset
when there is one (``carvana``) and ``--preset`` names no other; ``TrainConfig`` uses a
preset only when it names one.

**Speed** is in the table too: bf16 autocast where the hardware has it, channels_last,
a cache of decoded images, loader workers per device (:mod:`segkit.speed`,
:mod:`segkit.cache`). They change no result beyond rounding on one machine, but they make
a run's figures depend on the machine: the lessons ask for ``precision="fp32",
channels_last=False, cache="none", num_workers=0``, which give the same figures on every CPU.

**How a run wraps the lesson's loop.** ``fit``, ``train_one_epoch`` and ``validate`` are
lesson 03's; the run gives them wrapped arguments: the model in a
:class:`segkit.speed.FastModel` (precision, layout) and, under torchrun, in
DistributedDataParallel; the training loader in :class:`EpochBatches` (a new shuffle per
process and epoch, the time budget's deadline, :mod:`segkit.budget`);
the loss in :class:`FiniteLoss` (a NaN stops the run); gradient clipping as an optimizer
hook (:func:`segkit.training.clip_gradients`); under torchrun, the epoch's two halves
from :mod:`segkit.distributed` (the loss averaged over processes, validation on rank 0).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from segkit import data, distributed, losses, speed, toydata
from segkit.budget import BudgetCosineLR, TimeBudget
from segkit.checkpoint import check_resume, load_checkpoint, load_weights, save_checkpoint
from segkit.device import describe_device, pick_device, seed_everything
from segkit.errors import DataError, SegkitError
from segkit.training import History, clip_gradients, fit, save_history_csv, train_one_epoch, validate
from segkit.unet import UNet, count_parameters

#: The training defaults: what a run uses for every setting it is not given (a
#: TrainConfig field left at None), after its preset and its dataset's column below.
DEFAULTS: dict[str, Any] = {
    # the model: a narrow U-Net (base 16 channels) for a laptop CPU
    "base": 16, "kernel_size": 3, "bilinear": False,
    # the optimizer and its schedule
    "batch_size": 8, "epochs": 40, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4,
    "momentum": 0.9, "scheduler": "cosine", "clip_grad": 1.0,
    # a time budget of training seconds (None: no limit; no preset changes it)
    "max_seconds": 60.0,
    # the loss ("auto": BCE + Dice for binary masks; for classes, cross-entropy weighted by
    # 1/sqrt(class frequency): on street scenes (CamVid at 128x96, 240 s) it gave mIoU 0.399
    # against 0.353 unweighted (5 classes at IoU 0) and 0.343 with 1/frequency weights (the
    # commonest classes crushed: building IoU 0.23 against 0.69), benchmarks/real_data.py)
    "loss": "auto",
    # the data: the validation split and the seed of everything random
    "val_fraction": 0.2, "seed": 0,
    # speed (segkit.speed, segkit.cache): what measures faster on this machine
    "precision": "auto", "channels_last": True, "cache": "auto", "num_workers": "auto",
    "compile": False,
}

#: The settings that depend on the dataset: its column of the table. Toy VOC (5 classes,
#: cluttered 64x64 scenes, 120 training images) learns best in a 60 s CPU budget with a
#: shallower U-Net and no augmentation: val mIoU 0.41 against 0.14 with the Carvana
#: settings (benchmarks/train_benchmark.py, 2 CPU cores), and with 1/frequency class
#: weights: 0.432 against 0.382 with auto's 1/sqrt(frequency) (one seed). Own folders:
#: crops or resized as segkit.owndata.choose_crop measures (real datasets: README).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "carvana": {"size": (64, 96), "depth": 4, "augment": True, "crop": False},
    "seasky": {"size": (64, 96), "depth": 4, "augment": True, "crop": False},
    "voc": {"size": (64, 64), "depth": 2, "augment": False, "crop": False,
            "loss": "weighted_ce"},
    "folder": {"size": (64, 64), "depth": 4, "augment": True, "crop": "auto"},
}

#: Named recipes: the settings each replaces in the table (a setting given still wins).
PRESETS: dict[str, dict[str, Any]] = {
    # toy Carvana's recipe, the one `segkit train` uses there: val Dice 0.98 sooner. A
    # U-Net of depth 3 (the 4th level costs about 30 % of the step at 96x64 and adds no
    # Dice), no augmentation (the photos are all of one studio: augmenting slowed
    # learning and cost Dice), batch 4, AdamW 1.5e-3 on a cosine over 10 epochs. Seeds
    # 0-2 first reach 0.98 after epoch 4-5 and stay above it (0.989-0.991 at the end,
    # 0.986-0.988 with the table's depth 4 and augmentation); the 60 s budget remains the
    # cap on slow machines. Measured with benchmarks/speed_benchmark.py --only dice ttd.
    "carvana": {"batch_size": 4, "lr": 1.5e-3, "epochs": 10, "depth": 3, "augment": False},
    # a student project's Carvana settings, which learn slowly (lesson 03): RMSprop lr
    # 1e-5, momentum 0.999, weight decay 1e-8, batch 1
    "rmsprop-1e-5": {"optimizer": "rmsprop", "lr": 1e-5, "momentum": 0.999,
                     "weight_decay": 1e-8, "batch_size": 1},
}

TASKS = {"carvana": "binary", "seasky": "binary", "voc": "multiclass",
         "folder": "binary"}  # folder: your own --images/--masks; multiclass with > 2 classes


def preset_for(dataset: str) -> str | None:
    """The preset ``segkit train`` uses on ``dataset`` when none is named: the one named
    after the dataset, if there is one."""
    return dataset if dataset in PRESETS else None


def describe_preset(name: str | None) -> str:
    """One line saying which preset a run uses and what it changes in the table."""
    if name is None:
        return "preset: none (the defaults table, segkit.recipe.DEFAULTS)"
    changes = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in PRESETS[name].items())
    return f"preset: {name} ({changes})"


@dataclass
class TrainConfig:
    """Every setting of a training run. ``size`` is (height, width).

    A field left at None takes its value from the ``preset`` (if one is named), else
    from the dataset's column of :data:`DATASET_DEFAULTS`, else from :data:`DEFAULTS`;
    after construction every field holds the value the run uses. ``max_seconds`` None
    means no time limit, ``clip_grad`` 0 no clipping.
    """

    dataset: str = "carvana"
    data_root: str | None = None          # None: the embedded toy copy
    preset: str | None = None             # a name in PRESETS
    size: tuple[int, int] | None = None   # (H, W)
    base: int | None = None
    depth: int | None = None
    kernel_size: int | None = None
    bilinear: bool | None = None
    batch_size: int | None = None
    epochs: int | None = None
    max_seconds: float | None = DEFAULTS["max_seconds"]
    optimizer: str | None = None          # adamw, adam, sgd, rmsprop
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    loss: str | None = None               # auto, bce, dice, bce_dice, ce, weighted_ce, sqrt_ce,
                                          # median_ce
    scheduler: str | None = None          # "cosine" (over max_seconds if set), "plateau", "none"
    augment: bool | None = None
    val_fraction: float | None = None
    seed: int | None = None
    device: str = "auto"
    clip_grad: float | None = None        # the gradient norm's limit; 0: no clipping
    out_dir: str | None = None            # None: runs/<dataset>
    resume: str | None = None
    # speed (segkit.speed, segkit.cache)
    precision: str | None = None          # "auto", "fp32", "bf16", "fp16"
    channels_last: bool | None = None
    compile: bool | None = None
    cache: str | None = None              # decoded, resized images: auto, memory, disk, none
    cache_dir: str | None = None          # disk cache folder (None: ~/.cache/segkit/resized)
    num_workers: int | str | None = None  # "auto": chosen per device (segkit.speed)
    # your own data (dataset "folder", chosen by giving images): see segkit.owndata
    images: str | None = None             # folder of images
    masks: str | None = None              # folder of masks
    val_images: str | None = None         # explicit validation folders (else val_fraction)
    val_masks: str | None = None
    mask_suffix: str | None = None        # pairing: <stem><suffix>.<ext>
    image_pattern: str | None = None      # pairing: e.g. "{id}_training.tif"
    mask_pattern: str | None = None       #          and "{id}_manual1.gif"
    num_classes: int | None = None        # None: binary, or from class_names
    class_names: str | None = None        # labelme class_names.txt / VOC-style labelmap.txt
    foreground: int | None = None         # binary: the mask value of the object
    ignore_index: int | None = None       # a mask value meaning "not labelled" (e.g. 255)
    mask_values: str | None = None        # "0:0,128:1,255:2": mask value -> class
    image_mode: str | None = None         # "RGB" / "L"; None: from the first image
    skip_audit: bool = False              # do not open every pair before training
    drop_bad_files: bool = False          # train without the pairs the audit finds bad
    crop: bool | str | None = None        # train on random crops of `size` at the images'
                                          # own scale (own folders; else resized to `size`);
                                          # "auto": as segkit.owndata.choose_crop measures

    def __post_init__(self) -> None:
        if self.images and self.dataset == "carvana":
            self.dataset = "folder"  # --images without --dataset: your own folders
        if self.dataset not in TASKS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(TASKS)}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        for name, value in self.table_values().items():
            if getattr(self, name) is None:  # not given: the preset's, the dataset's or the table's
                setattr(self, name, value)
        if self.out_dir is None:
            self.out_dir = f"runs/{self.dataset}"
        for name in ("data_root", "images", "masks", "val_images", "val_masks", "class_names"):
            if getattr(self, name):  # absolute, so that a checkpoint finds its data anywhere
                setattr(self, name, str(Path(getattr(self, name)).expanduser().resolve()))
        self.size = (int(self.size[0]), int(self.size[1]))
        self.check_ranges()

    def table_values(self) -> dict[str, Any]:
        """The values this run's preset, dataset and the table give to the fields left at
        None (``max_seconds`` is never left at None: None is its "no limit")."""
        table = {k: v for k, v in DEFAULTS.items() if k != "max_seconds"}
        return {**table, **DATASET_DEFAULTS[self.dataset], **PRESETS.get(self.preset, {})}

    def check_ranges(self) -> None:
        """Raise a ValueError naming the option and its value when a number is outside
        what training can use, or the validation folders are the training folders."""
        whole = [("epochs", self.epochs, 1), ("batch_size", self.batch_size, 1),
                 ("base", self.base, 1), ("depth", self.depth, 1),
                 ("kernel_size", self.kernel_size, 1), ("seed", self.seed, 0),
                 ("num_classes", self.num_classes, 2), ("foreground", self.foreground, 0)]
        if self.num_workers != "auto":
            whole.append(("num_workers", self.num_workers, 0))
        for name, value, least in whole:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < least):
                raise ValueError(f"{_option(name)} must be a whole number >= {least}, got "
                                 f"{value!r}")
        if self.ignore_index is not None and not 0 <= self.ignore_index <= 255:
            raise ValueError(f"--ignore-index must be a mask value from 0 to 255 (e.g. 255), "
                             f"got {self.ignore_index!r}")
        for name, value, low, high in [("lr", self.lr, 0, None),
                                       ("max_seconds", self.max_seconds, 0, None),
                                       ("val_fraction", self.val_fraction, 0, 1)]:
            if value is not None and not (value > low and math.isfinite(value)
                                          and (high is None or value < high)):
                limit = f"between {low} and {high}" if high is not None else f"> {low}"
                raise ValueError(f"{_option(name)} must be a finite number {limit}, got "
                                 f"{value!r}")
        for name, value in [("clip_grad", self.clip_grad), ("weight_decay", self.weight_decay),
                            ("momentum", self.momentum)]:
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{_option(name)} must be a finite number >= 0, got {value!r}")
        if self.momentum >= 1:
            raise ValueError(f"--momentum must be below 1 (e.g. 0.9), got {self.momentum!r}")
        if self.crop not in (True, False, "auto"):
            raise ValueError(f"crop must be True, False or 'auto', got {self.crop!r}")
        if self.crop is True and self.dataset != "folder":
            raise ValueError(f"--crop trains your own folders (--images, --masks) on crops; "
                             f"{self.dataset} is resized to --size: leave --crop out")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"--kernel-size must be odd (3, 5, 7 ...), got {self.kernel_size}")
        if 2 ** self.depth > min(self.size):
            raise ValueError(f"--depth {self.depth} halves the images {self.depth} times, so "
                             f"they must be at least {2 ** self.depth} pixels on each side; "
                             f"--size is {self.size[1]}x{self.size[0]}: use a smaller --depth "
                             "or a larger --size")
        for val, train in [("val_images", "images"), ("val_masks", "masks")]:
            if getattr(self, val) and getattr(self, val) == getattr(self, train):
                raise ValueError(f"{_option(val)} is the same folder as {_option(train)} "
                                 f"({getattr(self, val)}): the validation figures would be "
                                 "measured on the training images. Give a folder of other "
                                 "pairs, or leave it out to hold back --val-fraction of them")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


def _option(name: str) -> str:
    """The command-line option of a TrainConfig field: ``lr`` -> ``--lr``."""
    return "--" + name.replace("_", "-")


@dataclass
class RunResult:
    model: nn.Module
    history: History
    out_dir: Path
    checkpoint: Path
    best_checkpoint: Path
    figure: Path | None
    data_info: dict[str, Any] = field(default_factory=dict)


def build_datasets(cfg: TrainConfig):
    """(train_ds, val_ds, stats) for ``cfg.dataset``; stats = {"mean", "std", ...}."""
    if cfg.dataset == "folder" or (cfg.dataset == "voc" and cfg.data_root):
        return build_own_datasets(cfg)
    root = Path(cfg.data_root) if cfg.data_root else toydata.embedded_root(cfg.dataset)
    if not root.is_dir():
        raise DataError(f"data folder {root} " + ("is a file, not a folder" if root.exists()
                        else "not found") + " (--data-root): give the folder that holds the "
                        f"{cfg.dataset} dataset")
    maker = {"carvana": data.carvana_datasets, "seasky": data.seasky_datasets,
             "voc": data.voc_datasets}[cfg.dataset]
    if cfg.dataset == "voc":
        return maker(root, size=cfg.size, augment=cfg.augment, cache=build_cache(cfg, root))
    return maker(root, size=cfg.size, val_fraction=cfg.val_fraction, seed=cfg.seed,
                 augment=cfg.augment, cache=build_cache(cfg, root))


def build_cache(cfg: TrainConfig, root: Path):
    """The ``segkit.cache.ResizedCache`` that ``cfg.cache`` asks for, or None."""
    from segkit.cache import choose_cache

    if cfg.cache == "none":
        return None
    n_files = sum(1 for p in Path(root).rglob("*") if p.suffix.lower() in data.IMAGE_EXTENSIONS)
    channels = 1 if cfg.dataset == "seasky" else 3
    return choose_cache(cfg.cache, cfg.size, max(1, n_files // 2), channels, cfg.cache_dir)


def build_own_datasets(cfg: TrainConfig, log: Callable[[str], None] = print,
                       show_progress: bool | None = None):
    """(train_ds, val_ds, stats) of your own folders (or a VOC layout without split files)."""
    from segkit import owndata

    if cfg.dataset == "voc":
        return owndata.voc_datasets_any(cfg.data_root, size=cfg.size, augment=cfg.augment,
                                        num_classes=cfg.num_classes, seed=cfg.seed,
                                        val_fraction=cfg.val_fraction, log=log)
    if not (cfg.images and cfg.masks):
        raise ValueError("your own data needs both --images DIR and --masks DIR")
    spec = owndata.mask_spec(num_classes=cfg.num_classes, class_names=cfg.class_names,
                             foreground=cfg.foreground, ignore_index=cfg.ignore_index,
                             mask_values=cfg.mask_values, masks_dir=cfg.masks, log=log)
    pairing = {"mask_suffix": cfg.mask_suffix, "image_pattern": cfg.image_pattern,
               "mask_pattern": cfg.mask_pattern}
    datasets = owndata.own_datasets(cfg.images, cfg.masks, spec=spec, size=cfg.size,
                                    augment=cfg.augment, val_fraction=cfg.val_fraction,
                                    seed=cfg.seed, val_images=cfg.val_images,
                                    val_masks=cfg.val_masks, pairing_options=pairing,
                                    image_mode=cfg.image_mode, skip_audit=cfg.skip_audit,
                                    drop_bad=cfg.drop_bad_files, crop=cfg.crop, log=log,
                                    show_progress=show_progress)
    return refuse_an_ignore_that_hides_the_objects(cfg, *datasets)


def refuse_an_ignore_that_hides_the_objects(cfg: TrainConfig, train_ds, val_ds, stats):
    """(train_ds, val_ds, stats), after checking that binary masks read with
    ``--ignore-index`` still hold object pixels: in 0/255 masks, ``--ignore-index 255``
    would leave out every object pixel and train for a Dice of 0."""
    from segkit.labels import IGNORE

    if cfg.ignore_index is None or int(stats.get("num_classes", 2)) != 2:
        return train_ds, val_ds, stats
    for i in range(len(train_ds)):
        if bool((train_ds.load_mask(i) == 1).any()):
            return train_ds, val_ds, stats
    values = "only 0 and the ignored value" if cfg.ignore_index == IGNORE else "no object"
    raise DataError(f"--ignore-index {cfg.ignore_index}: the masks in {cfg.masks} then hold "
                    f"{values}: every object pixel would be left out of the loss and the "
                    f"scores (Dice 0). In 0/{cfg.ignore_index} masks {cfg.ignore_index} is "
                    "the object: leave --ignore-index out (or give --foreground VALUE for the "
                    "object's value)")


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    name = cfg.optimizer.lower()
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use adamw, adam, sgd or rmsprop")


def build_loss(cfg: TrainConfig, train_ds, num_classes: int) -> nn.Module:
    name = cfg.loss
    if name == "auto":
        name = "bce_dice" if num_classes == 1 else "sqrt_ce"
    if name == "bce":
        return losses.BCELoss()
    if name == "bce_dice" and _binary_ignores(cfg):
        return IgnoringBCEDice()  # binary masks with "not labelled" pixels (255)
    if name == "bce_dice":
        return losses.BCEDiceLoss()
    if name == "dice":
        return losses.SoftDiceLoss()
    if name == "ce":
        return nn.CrossEntropyLoss(ignore_index=255)
    methods = {"weighted_ce": "inverse", "median_ce": "median", "sqrt_ce": "inverse_sqrt"}
    if name in methods:  # class weights from the training masks' pixel counts
        counts = losses.pixel_counts((m for _, m in _raw_masks(train_ds)), num_classes)
        weights = losses.class_weights_from_frequencies(counts, num_classes,
                                                        method=methods[name])
        return losses.weighted_cross_entropy(weights)
    raise ValueError(f"unknown loss {cfg.loss!r}: use auto, bce, dice, bce_dice, ce, "
                     "weighted_ce, sqrt_ce or median_ce")


def _binary_ignores(cfg: TrainConfig) -> bool:
    """True when your own binary masks can hold 255 (--ignore-index, or --mask-values to 255)."""
    from segkit.labels import IGNORE, parse_value_map

    mapped = parse_value_map(cfg.mask_values).values() if cfg.mask_values else ()
    return cfg.ignore_index is not None or IGNORE in mapped


class IgnoringBCEDice(nn.Module):
    """BCE + soft Dice (half each) for binary targets 0/1 that leave out pixels labelled 255."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = losses.bce_loss(logits, target, ignore_index=255)
        return 0.5 * bce + 0.5 * losses.SoftDiceLoss(ignore_index=255)(logits, target)


def _raw_masks(ds):
    for i in range(len(ds)):
        yield ds[i]


def build_scheduler(cfg: TrainConfig, optimizer, clock: Callable[[], float] | None = None):
    """The learning-rate schedule ``cfg.scheduler`` names: "cosine" anneals over the time
    budget when there is one (a :class:`segkit.budget.BudgetCosineLR` reading the
    training seconds from ``clock``), else over the epochs; "plateau" halves the rate
    when the val loss stalls for 2 epochs; "none" keeps it."""
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cosine":
        if cfg.max_seconds:
            # anneal over the time budget, so a run cut by it still ends at a small lr
            return BudgetCosineLR(optimizer, max_seconds=cfg.max_seconds,
                                  epochs=max(cfg.epochs, 1), clock=clock)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}: use cosine, plateau or none")


def continue_schedule(scheduler, optimizer, cfg: TrainConfig, history: History,
                      start_epoch: int) -> float | None:
    """After loading a checkpoint's schedule: stretch it over this run's budget.

    A resumed run with more epochs or seconds than the first one would otherwise keep the
    saved schedule, which already reached its end (learning rate 0 for every new epoch).
    The cosine continues instead from where the run is on the *new* budget: 60 s done of a
    new 120 s budget is half-way down, at half the base rate. Returns the learning rate
    the next epoch uses (None without a cosine schedule).
    """
    if isinstance(scheduler, BudgetCosineLR):
        scheduler.max_seconds = float(cfg.max_seconds)
        scheduler.epochs = max(int(cfg.epochs), 1)
        elapsed = history.last.get("elapsed", 0.0) if len(history) else 0.0
        scheduler.progress = min(1.0, max(elapsed / scheduler.max_seconds,
                                          start_epoch / scheduler.epochs))
    elif isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = max(int(cfg.epochs), 1)
        scheduler.last_epoch = start_epoch
    else:
        return None
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        lrs = [scheduler.eta_min + (base - scheduler.eta_min) *
               (1 + math.cos(math.pi * start_epoch / scheduler.T_max)) / 2
               for base in scheduler.base_lrs]
    else:
        lrs = scheduler.get_lr()
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr
    return float(lrs[0])


def with_lr(log: Callable[[str], None], history: History) -> Callable[[str], None]:
    """``log`` that ends each epoch line with the learning rate that epoch used."""
    def log_line(line: str) -> None:
        if line.startswith("epoch") and len(history) and "lr" in history.last:
            line = f"{line}  lr {history.last['lr']:.3g}"
        log(line)
    return log_line


def data_provenance(cfg: TrainConfig, train_ds, val_ds=None) -> dict[str, Any]:
    """Where the data came from (absolute paths) and the usual size of its images (H, W),
    for the checkpoint: evaluate finds the data from anywhere, predict knows the scale.
    Own folders add their split and class names (``segkit.owndata.split_record``)."""
    info: dict[str, Any] = {}
    for name in ("data_root", "images", "masks", "val_images", "val_masks", "mask_suffix",
                 "image_pattern", "mask_pattern", "class_names", "foreground",
                 "ignore_index", "mask_values"):
        if getattr(cfg, name, None) is not None:
            info[name] = getattr(cfg, name)
    paths = getattr(train_ds, "image_paths", None)
    if paths and cfg.dataset == "folder":
        from PIL import Image

        from segkit.owndata import split_record

        with Image.open(paths[0]) as im:  # crops: trained at the images' own scale
            info["source_size"] = list(cfg.size) if cfg.crop else [im.height, im.width]
        info["crop"] = cfg.crop
        if val_ds is not None:
            info.update(split_record(train_ds, val_ds, {k: info.get(k) for k in (
                "images", "masks", "val_images", "val_masks")}))
        if getattr(train_ds, "spec", None) is not None and train_ds.spec.class_names:
            info["classes"] = list(train_ds.spec.class_names)
    return info


def start_run_folder(out: Path, run: RunParts, data_info: dict[str, Any],
                     log: Callable[[str], None]) -> None:
    """Write what a run folder holds before the first epoch, in the folder the run has
    just claimed (:func:`claim_run_folder`, once the data has been read, so that a run
    that never starts leaves none behind): the split of your own folders (``split.csv``),
    when ``data_info`` (the checkpoints' ``data`` entry, :func:`run_data_info`) records
    one. Under torchrun only rank 0 calls it."""
    if "split" in data_info:
        from segkit.owndata import write_split

        written = write_split(out / "split.csv", run.train_ds, run.val_ds, data_info["root"])
        log(f"split: {written}")


#: The files that say a folder holds a training run.
RUN_FILES = ("last.pt", "best.pt", "history.csv", "config.json", "predictions.png", "split.csv")


def claim_run_folder(folder: str | Path, resume: str | Path | None = None,
                     log: Callable[[str], None] = print) -> Path:
    """Create or take the run folder ``folder`` for this run alone, at the moment the run
    first writes there, and return it (:func:`segkit.claim.claim_folder`): a folder that
    holds another run's files, or that another running process holds, is kept as it is
    and the run goes to ``folder-2``, ``folder-3``, ... (said in ``log``). A resumed run
    (``resume``: its checkpoint) may go on in the checkpoint's own folder. Let it go with
    :func:`segkit.claim.release_folder` when the run ends."""
    from segkit.claim import claim_folder

    own = Path(resume).parent if resume else None
    return claim_folder(folder, RUN_FILES, own=own, option="--out-dir", log=log)


class NonFiniteLossError(SegkitError, RuntimeError):
    """The loss (or the weights) became NaN or infinite: training cannot go on from here."""


class FiniteLoss:
    """``loss_fn`` that stops the run with :class:`NonFiniteLossError` when a batch loss is
    NaN or infinite: the weights have blown up, and every step after would spread it."""

    def __init__(self, loss_fn: Callable, optimizer: torch.optim.Optimizer) -> None:
        self.loss_fn, self.optimizer = loss_fn, optimizer

    def __call__(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(logits, masks)
        if not torch.isfinite(loss):
            lr = self.optimizer.param_groups[0]["lr"]
            raise NonFiniteLossError(
                f"the loss became {loss.item()} (learning rate {lr:g}). The weights have blown "
                f"up: try a learning rate 10x lower (e.g. {lr / 10:g}), keep gradient clipping "
                "on, and check that the masks hold class indices (0/1), not 0/255.")
        return loss


def weights_are_finite(model: nn.Module) -> bool:
    """True when every float weight and buffer of ``model`` (BatchNorm statistics too)
    is a finite number: no NaN, no infinity."""
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values()
               if t.is_floating_point())


class EpochBatches:
    """The training loader as a run hands it to ``fit``: each pass is the epoch after the
    last one in ``history``. Under torchrun its sampler is told that epoch (a new shuffle
    for each epoch); with a :class:`segkit.budget.TimeBudget` the pass ends at the
    budget's deadline."""

    def __init__(self, loader, history: History, budget: TimeBudget | None = None) -> None:
        self.loader, self.history, self.budget = loader, history, budget

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle each epoch
            sampler.set_epoch(len(self.history) + 1)
        batches = iter(self.loader)
        return batches if self.budget is None else self.budget.until_deadline(batches)


@dataclass
class RunParts:
    """What a run trains with, built by :func:`build_run`: the plain ``model`` (what
    checkpoints save) and ``train_model`` (it wrapped for speed and torchrun), the data,
    the optimizer (``step_optimizer`` is what the loop steps: the optimizer, or it
    wrapped for float16), the schedule, the loss, the history and the time budget."""

    cfg: TrainConfig
    device: torch.device
    ctx: Any
    fast: speed.SpeedSettings
    model: nn.Module
    train_model: nn.Module
    train_ds: Any
    val_ds: Any
    stats: dict[str, Any]
    task: str
    num_classes: int
    train_loader: Any
    val_loader: Any
    batch_size: int
    optimizer: torch.optim.Optimizer
    step_optimizer: Any
    scheduler: Any
    loss_fn: Callable
    history: History
    budget: TimeBudget | None
    start_epoch: int = 0


def run_training(cfg: TrainConfig, log: Callable[[str], None] = print,
                 show_progress: bool | None = None, show_lr: bool = False) -> RunResult:
    """Train a U-Net as ``cfg`` says; save checkpoints, history, settings and a figure.

    ``show_lr``: end every epoch line with the learning rate that epoch used. Under
    torchrun every process runs this; rank 0 alone prints and writes files.
    """
    from segkit.claim import refuse_a_file

    refuse_a_file(cfg.out_dir)
    if cfg.resume:
        refuse_a_used_up_budget(cfg)
    device = pick_device(None if cfg.device == "auto" else cfg.device)
    ctx = distributed.setup(device) if distributed.launched_by_torchrun() else None
    if ctx is not None:  # one of several torchrun processes: only rank 0 speaks
        device = ctx.device
        if not ctx.is_main:
            log, show_progress = (lambda line: None), False
    run = build_run(cfg, device, ctx, log)
    main_process = ctx is None or ctx.is_main
    out = claim_run_folder(cfg.out_dir, cfg.resume, log) if main_process else Path(cfg.out_dir)
    try:
        cfg.out_dir = str(out)  # config.json and the checkpoints say where the run is
        saver = EpochSaver(run, out)
        if main_process:
            start_run_folder(out, run, saver.data_info, log)
        log_run_header(run, log)
        try:
            history = train_run(run, saver, with_lr(log, run.history) if show_lr else log,
                                show_progress)
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"training diverged: {exc} Nothing non-finite was saved; "
                                     f"{saver.what_is_left()}.") from None
        figure = None
        if ctx is not None:
            distributed.cleanup()
        if main_process:
            figure = finish_run(run, out, history, saver, log)
    finally:
        if main_process:
            from segkit.claim import release_folder

            release_folder(out)
    return RunResult(run.model, history, out, saver.last_path, saver.best_path, figure,
                     saver.data_info)


def training_memory(model_config: dict[str, Any], size: tuple[int, int],
                    batch_size: int) -> tuple[int, int]:
    """(parameters, bytes) a training step of this U-Net takes, estimated without building
    it (the model is made on PyTorch's "meta" device, which holds no numbers): float32
    weights, gradients and two optimizer states per weight, and about a dozen float32
    maps per level of the U-Net kept for the backward pass (convolutions, BatchNorm,
    ReLU, down and up)."""
    with torch.device("meta"):
        parameters = count_parameters(UNet(**model_config))
    base, depth = model_config["base"], model_config["depth"]
    pixels = size[0] * size[1]
    maps = sum(base * 2 ** level * pixels // 4 ** level for level in range(depth + 1))
    return parameters, 4 * (4 * parameters + 12 * batch_size * maps)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a run on ``device`` now (None when the system does not say)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def refuse_what_cannot_fit(cfg: TrainConfig, device: torch.device) -> None:
    """Raise, before the data is read and the model built, when a training step needs more
    memory than the device has free (:func:`training_memory`, for colour images and
    the whole batch), naming both figures and what to shrink."""
    model_config = dict(in_channels=3, num_classes=cfg.num_classes or 1, base=cfg.base,
                        depth=cfg.depth, kernel_size=cfg.kernel_size, bilinear=cfg.bilinear)
    parameters, need = training_memory(model_config, cfg.size, cfg.batch_size)
    batch_size = cfg.batch_size
    free = available_memory(device)
    if free is None or need <= free:
        return
    raise SegkitError(
        f"a U-Net of base {cfg.base} and depth {cfg.depth} has {parameters:,} parameters; "
        f"training it on batches of {batch_size} at {cfg.size[1]}x{cfg.size[0]} needs about "
        f"{need / 2**30:.1f} GiB, and this {device.type.upper()} has {free / 2**30:.1f} GiB "
        "free. Nothing was built: use a smaller --depth or --base (each step of depth "
        "multiplies the weights by about 4), a smaller --batch-size or --size.")


def refuse_a_used_up_budget(cfg: TrainConfig) -> None:
    """Raise before anything is read or written when the run ``cfg.resume`` continues has
    already trained all of ``cfg.epochs`` or used all of ``cfg.max_seconds``."""
    ckpt = load_checkpoint(cfg.resume)
    done, history = int(ckpt.get("epoch", 0)), ckpt.get("history") or []
    elapsed = float(history[-1].get("elapsed", 0.0)) if history else 0.0
    if done >= cfg.epochs:
        raise SegkitError(f"{cfg.resume} has trained {done} epoch(s) and the run asks for "
                          f"{cfg.epochs}: nothing is left to train, and nothing was written. "
                          f"To go on, give more epochs, e.g. --epochs {done + cfg.epochs}.")
    if cfg.max_seconds and elapsed >= cfg.max_seconds:
        raise SegkitError(f"{cfg.resume} has used its time budget ({elapsed:.1f} s of "
                          f"training, --max-seconds {cfg.max_seconds:g}): nothing is left to "
                          "train, and nothing was written. To go on, give a larger budget, "
                          f"e.g. --max-seconds {2 * cfg.max_seconds:g}, or --no-time-limit.")


def build_run(cfg: TrainConfig, device: torch.device, ctx, log: Callable[[str], None]) -> RunParts:
    """Seed everything, then build the data, the model, the optimizer, the schedule and
    the loss of ``cfg``'s run; load ``cfg.resume`` into them. A run that cannot fit in
    the device's memory is refused first (:func:`refuse_what_cannot_fit`)."""
    refuse_what_cannot_fit(cfg, device)
    seed_everything(cfg.seed)
    train_ds, val_ds, stats = build_datasets(cfg)
    cfg.crop = stats.get("crop", False)  # own folders: what "auto" decided
    task = TASKS[cfg.dataset]
    if cfg.dataset == "folder":  # your own data: binary with 2 classes, else multiclass
        task = "binary" if int(stats["num_classes"]) == 2 else "multiclass"
    num_classes = 1 if task == "binary" else int(stats.get("num_classes", 5))
    train_loader, val_loader, batch_size = build_loaders(cfg, device, ctx, train_ds, val_ds)
    model = UNet(in_channels=len(stats["mean"]), num_classes=num_classes, base=cfg.base,
                 depth=cfg.depth, kernel_size=cfg.kernel_size, bilinear=cfg.bilinear)
    fast = speed.speed_settings(device, cfg.precision, cfg.channels_last, cfg.compile)
    wrap = None if ctx is None else (lambda m: distributed.wrap_model(m, ctx))
    train_model = speed.prepare_model(model, fast, wrap)  # `model` stays the plain module
    if ctx is not None and ctx.rank > 0:  # other augmentations than rank 0's
        torch.manual_seed(cfg.seed + ctx.rank)
    optimizer = build_optimizer(cfg, model.parameters())
    clip_gradients(optimizer, cfg.clip_grad or None)
    history = History()
    budget = TimeBudget(cfg.max_seconds, history, ctx) if cfg.max_seconds else None
    scheduler = build_scheduler(cfg, optimizer, clock=budget.used if budget else None)
    loss_fn = FiniteLoss(build_loss(cfg, train_ds, num_classes), optimizer)
    run = RunParts(cfg, device, ctx, fast, model, train_model, train_ds, val_ds, stats, task,
                   num_classes, train_loader, val_loader, batch_size, optimizer,
                   speed.prepare_optimizer(optimizer, fast), scheduler, loss_fn, history, budget)
    if cfg.resume:
        run.start_epoch = resume_state(run, log)
    return run


def train_run(run: RunParts, saver: "EpochSaver", log: Callable[[str], None],
              show_progress: bool | None) -> History:
    """:func:`segkit.training.fit` with the run's wrapped model, loaders, loss and epoch
    functions; stops at the last epoch or when the time budget is spent."""
    if run.budget is not None and run.budget.spent():
        log(f"the time budget of {run.cfg.max_seconds:g} s is used up: nothing to train "
            "(give a larger --max-seconds to go on)")
        return run.history
    train_epoch, validate_epoch = train_one_epoch, validate
    if run.ctx is not None:
        train_epoch = distributed.averaged_over_processes(train_epoch, run.ctx)
        validate_epoch = distributed.validated_on_main(validate_epoch, run.ctx)

    def on_epoch_end(epoch: int, history: History) -> bool:
        saver(epoch, history)
        return run.budget is not None and run.budget.spent()

    batches = EpochBatches(run.train_loader, run.history, run.budget)
    return fit(run.train_model, batches, run.val_loader, loss_fn=run.loss_fn,
               optimizer=run.step_optimizer, epochs=run.cfg.epochs, device=run.device,
               scheduler=run.scheduler, history=run.history, start_epoch=run.start_epoch,
               num_classes=None if run.task == "binary" else run.num_classes,
               on_epoch_end=on_epoch_end, log=log, show_progress=show_progress,
               train_epoch=train_epoch, validate_epoch=validate_epoch)


def build_loaders(cfg: TrainConfig, device: torch.device, ctx, train_ds, val_ds):
    """(train_loader, val_loader, per-process batch size) with the device's loader settings.

    Under torchrun ``cfg.batch_size`` is the global batch, shared by the processes: each
    training loader draws its share through a distributed sampler (rank 0 validates on
    the whole validation set).
    """
    loading = speed.loader_settings(device, cfg.num_workers)
    batch_size, sampler = cfg.batch_size, None
    if ctx is not None:
        batch_size = distributed.per_process_batch(cfg.batch_size, ctx)
        sampler = distributed.train_sampler(train_ds, ctx, cfg.seed)
    train_loader, val_loader = data.make_loaders(train_ds, val_ds, batch_size, seed=cfg.seed,
                                                 train_sampler=sampler, **loading.as_kwargs())
    return train_loader, val_loader, batch_size


def resume_state(run: RunParts, log: Callable[[str], None]) -> int:
    """Load ``run.cfg.resume`` into the model, optimizer, schedule, history and random
    states; return the last finished epoch. The schedule continues over this run's
    budget (``continue_schedule``)."""
    cfg = run.cfg
    ckpt = load_checkpoint(cfg.resume, map_location=run.device)
    check_resume(run.model.config, ckpt, cfg.resume)
    load_weights(run.model, ckpt["model_state"], cfg.resume)
    if "optimizer_state" in ckpt:
        run.optimizer.load_state_dict(ckpt["optimizer_state"])
    if run.scheduler is not None and "scheduler_state" in ckpt:
        run.scheduler.load_state_dict(ckpt["scheduler_state"])
    run.history.records[:] = History.from_list(ckpt.get("history", [])).records
    start_epoch = int(ckpt["epoch"])
    rng = ckpt.get("rng_state", {})
    if "torch" in rng:  # same shuffles and augmentations as an uninterrupted run (CPU)
        torch.set_rng_state(rng["torch"].cpu())
    if "loader" in rng and run.train_loader.generator is not None:
        run.train_loader.generator.set_state(rng["loader"].cpu())
    log(f"resuming from {cfg.resume} after epoch {start_epoch}")
    lr_now = continue_schedule(run.scheduler, run.optimizer, cfg, run.history, start_epoch)
    if lr_now is not None:
        log(f"the schedule continues over the new budget: learning rate {lr_now:.3g}")
    return start_epoch


def log_run_header(run: RunParts, log: Callable[[str], None]) -> None:
    """The lines a run starts with: device, processes, preset, speed, data, model, optimizer."""
    cfg = run.cfg
    log(f"device: {describe_device(run.device)}")
    if run.ctx is not None:
        log(f"distributed: {run.ctx.world_size} processes "
            f"({'NCCL' if run.device.type == 'cuda' else 'gloo'}), batch {run.batch_size} per "
            f"process, {cfg.batch_size} in all")
    log(describe_preset(cfg.preset))
    log(run.fast.describe())
    size = f"{cfg.size[1]}x{cfg.size[0]} (W x H)"
    if cfg.crop:  # own folders on crops (segkit.owndata.RepeatedCrops)
        log(f"data: {cfg.dataset}, {len(run.train_ds.dataset)} train images, "
            f"{len(run.train_ds)} crops of {size} an epoch / {len(run.val_ds)} val images "
            "whole, at their own scale")
    else:
        log(f"data: {cfg.dataset}, {len(run.train_ds)} train / {len(run.val_ds)} val images "
            f"at {size}")
    log(f"model: U-Net base {cfg.base}, depth {cfg.depth}, "
        f"{count_parameters(run.model):,} parameters")
    log(f"optimizer: {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, up to "
        f"{cfg.epochs} epochs" + (f" or {cfg.max_seconds:g} s of training" if cfg.max_seconds else ""))


class EpochSaver:
    """``fit``'s ``on_epoch_end``: save ``last.pt`` every epoch, ``best.pt`` on a new best.

    Only finite weights are ever written, and ``best.pt`` only on a finite improvement of
    the run's score (val Dice, or val mIoU for classes); non-finite weights stop the run
    with ``NonFiniteLossError``. Under torchrun only rank 0 writes. ``last_epoch`` and
    ``best`` say what is on disk.
    """

    def __init__(self, run: RunParts, out: Path) -> None:
        self.run, self.key = run, "val_dice" if run.task == "binary" else "val_miou"
        self.data_info = run_data_info(run)
        self.last_path, self.best_path = out / "last.pt", out / "best.pt"
        self.last_epoch = run.start_epoch if run.cfg.resume else None
        self.best = max((r[self.key] for r in run.history.records
                         if math.isfinite(r.get(self.key, math.nan))), default=-math.inf)

    def __call__(self, epoch: int, hist: History) -> None:
        run = self.run
        if not weights_are_finite(run.model):
            raise NonFiniteLossError(f"the weights became NaN or infinite during epoch {epoch} "
                                     f"(learning rate {run.cfg.lr:g}): try a learning rate 10x "
                                     "lower and keep gradient clipping on.")
        if run.ctx is not None and not run.ctx.is_main:
            return  # rank 0 writes the checkpoints
        common = dict(model=run.model, epoch=epoch, optimizer=run.optimizer,
                      scheduler=run.scheduler, history=hist.to_list(), metrics=hist.last,
                      data=self.data_info, train_config=run.cfg.to_dict(),
                      rng_state={"torch": torch.get_rng_state(),
                                 "loader": run.train_loader.generator.get_state()})
        save_checkpoint(self.last_path, **common)
        self.last_epoch = epoch
        score = hist.last.get(self.key, math.nan)
        if math.isfinite(score) and score > self.best:
            save_checkpoint(self.best_path, **common)
            self.best = score

    def what_is_left(self) -> str:
        """Which checkpoint a stopped run leaves, in words."""
        if self.last_epoch:
            return f"the last finite checkpoint is {self.last_path} (epoch {self.last_epoch})"
        return "no checkpoint was written"


def run_data_info(run: RunParts) -> dict[str, Any]:
    """The checkpoint's ``data`` entry: how images were prepared (size (H, W), mean, std,
    grey or colour), the task and classes, and where the data came from."""
    stats, in_channels = run.stats, len(run.stats["mean"])
    info = {"size": list(run.cfg.size), "mean": [float(m) for m in stats["mean"]],
            "std": [float(s) for s in stats["std"]],
            "image_mode": "RGB" if in_channels == 3 else "L", "task": run.task,
            "num_classes": run.num_classes, "dataset": run.cfg.dataset}
    info.update(data_provenance(run.cfg, run.train_ds, run.val_ds))
    return info


def finish_run(run: RunParts, out: Path, history: History, saver: EpochSaver,
               log: Callable[[str], None]) -> Path | None:
    """Write history.csv, config.json and the prediction figure; log the summary.

    Returns the figure's path (None when it could not be drawn: a figure must never lose
    a finished training run).
    """
    save_history_csv(history, out / "history.csv")
    (out / "config.json").write_text(json.dumps(run.cfg.to_dict(), indent=2))
    figure = None
    try:
        from segkit import viz

        figure = viz.save_prediction_grid(out / "predictions.png", run.model, run.val_ds,
                                          run.device, mean=run.stats["mean"],
                                          std=run.stats["std"], n=4,
                                          num_classes=run.num_classes)
    except Exception as exc:
        log(f"could not save the prediction figure: {exc}")
    key = saver.key
    if len(history):
        best = history.best(key)
        log(f"best {key.replace('val_', 'val ')} {best[key]:.4f} at epoch {int(best['epoch'])}; "
            f"{history.last['elapsed']:.1f} s of training")
    log(f"saved: {saver.last_path}, {saver.best_path}, {out / 'history.csv'}"
        + (f", {figure}" if figure else ""))
    return figure
