"""One training run from start to finish: the recipe behind ``segkit train``.

``TrainConfig`` holds every setting with the course's defaults; ``run_training(cfg)``
builds the datasets, the U-Net, the loss and the optimizer, calls :func:`segkit.training.fit`,
saves checkpoints (``last.pt`` every epoch, ``best.pt`` at the best validation score), the
history as CSV, and a PNG of predictions next to the ground truth.

The defaults are chosen for a 2-core laptop CPU: a narrow U-Net (base 16 channels, about
1.9M parameters) on 96x64 images reaches val Dice >= 0.98 on toy Carvana in about a minute.
The ``rmsprop-1e-5`` preset reproduces the settings of a student project that trained
milesial's U-Net on Carvana (RMSprop, lr 1e-5, momentum 0.999, weight decay 1e-8, batch 1),
so that lesson 03 can show how slowly they learn.
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
from segkit.checkpoint import check_resume, load_checkpoint, load_weights, save_checkpoint
from segkit.errors import DataError
from segkit.device import describe_device, pick_device, seed_everything
from segkit.training import (
    BudgetCosineLR,
    History,
    NonFiniteLossError,
    fit,
    save_history_csv,
    weights_are_finite,
)
from segkit.unet import UNet, count_parameters

#: Settings that a preset changes, by preset name.
PRESETS: dict[str, dict[str, Any]] = {
    # a student project's Carvana settings: RMSprop lr 1e-5, momentum 0.999, weight decay
    # 1e-8, batch 1, no AMP
    "rmsprop-1e-5": {"optimizer": "rmsprop", "lr": 1e-5, "momentum": 0.999,
                     "weight_decay": 1e-8, "batch_size": 1},
}

#: What ``segkit train`` uses where an option is not given, on top of TrainConfig's
#: defaults (which the lessons' stored outputs rely on): the speed switches of
#: segkit.speed and segkit.cache, which change no result beyond rounding ...
CLI_DEFAULTS: dict[str, Any] = {"precision": "auto", "channels_last": True, "cache": "auto",
                                "num_workers": "auto"}
#: ... and, per dataset, without a --preset, a recipe that reaches val Dice 0.98 on toy
#: Carvana sooner: batch 4, AdamW 1.5e-3, cosine over 10 epochs, a U-Net of depth 3 (the
#: 4th level costs about 30 % of the step at 96x64 and adds no Dice there) and no
#: augmentation (the photos are all of one studio: augmenting slowed learning and cost
#: Dice). Seeds 0-2 first reach 0.98 after epoch 4-5 and stay above it (0.989-0.991 at
#: the end, against 0.986-0.988 with depth 4 and augmentation); 60 s remains the cap on
#: slow machines. ``--depth 4 --augment`` gives the library's settings back. Measured
#: with benchmarks/speed_benchmark.py --only dice ttd.
CLI_RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "carvana": {"batch_size": 4, "lr": 1.5e-3, "epochs": 10, "depth": 3, "augment": False},
}

TASKS = {"carvana": "binary", "seasky": "binary", "voc": "multiclass",
         "folder": "binary"}  # folder: your own --images/--masks; multiclass with > 2 classes

# Settings that depend on the dataset, used where a TrainConfig leaves them at None.
# Toy VOC (5 classes, cluttered 64x64 scenes, 120 training images) learns best in a
# 60 s CPU budget with a shallower U-Net and no augmentation: val mIoU 0.41 against 0.14
# with the Carvana settings (benchmarks/train_benchmark.py, 2 CPU cores).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "carvana": {"size": (64, 96), "depth": 4, "augment": True, "crop": False},
    "seasky": {"size": (64, 96), "depth": 4, "augment": True, "crop": False},
    "voc": {"size": (64, 64), "depth": 2, "augment": False, "crop": False},
    "folder": {"size": (64, 64), "depth": 4, "augment": True, "crop": False},
}


@dataclass
class TrainConfig:
    """Every setting of a training run. ``size`` is (height, width).

    ``size``, ``depth`` and ``augment`` left at None take the dataset's values from
    ``DATASET_DEFAULTS`` (Carvana and sea/sky: 64x96, depth 4, augmented; VOC: 64x64,
    depth 2, not augmented).
    """

    dataset: str = "carvana"
    data_root: str | None = None          # None: the embedded toy copy
    size: tuple[int, int] | None = None   # None: DATASET_DEFAULTS
    base: int = 16
    depth: int | None = None              # None: DATASET_DEFAULTS
    kernel_size: int = 3
    bilinear: bool = False
    batch_size: int = 8
    epochs: int = 40
    max_seconds: float | None = 60.0
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    loss: str = "auto"                    # binary: bce_dice; multiclass: weighted cross-entropy
    scheduler: str = "cosine"             # "cosine" (over max_seconds if set), "plateau", "none"
    augment: bool | None = None           # None: DATASET_DEFAULTS
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    clip_grad: float | None = 1.0
    out_dir: str = "runs/carvana"
    resume: str | None = None
    preset: str | None = None
    num_workers: int | str = 0             # "auto": chosen per device (segkit.speed)
    # speed (segkit.speed); `segkit train` turns on what measures faster (see cli.py)
    precision: str | None = None          # None: `amp` decides; "auto", "fp32", "bf16", "fp16"
    channels_last: bool = False
    compile: bool = False
    cache: str = "none"                   # decoded, resized images: auto, memory, disk, none
    cache_dir: str | None = None          # disk cache folder (None: ~/.cache/segkit/resized)
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
    crop: bool | None = None              # train on random crops of `size` at the images'
                                          # own scale (own folders; else resized to `size`)

    def __post_init__(self) -> None:
        if self.preset:
            if self.preset not in PRESETS:
                raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
            for k, v in PRESETS[self.preset].items():
                setattr(self, k, v)
        if self.images and self.dataset == "carvana":
            self.dataset = "folder"  # --images without --dataset: your own folders
        for name in ("data_root", "images", "masks", "val_images", "val_masks", "class_names"):
            if getattr(self, name):  # absolute, so that a checkpoint finds its data anywhere
                setattr(self, name, str(Path(getattr(self, name)).expanduser().resolve()))
        if self.dataset not in TASKS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(TASKS)}")
        for name, value in DATASET_DEFAULTS[self.dataset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.size = (int(self.size[0]), int(self.size[1]))
        self.check_ranges()

    def check_ranges(self) -> None:
        """Raise a ValueError naming the option when a number is outside what training can use."""
        for name, value in [("epochs", self.epochs), ("batch_size", self.batch_size)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r} "
                                 f"(--{name.replace('_', '-')})")
        for name, value in [("lr", self.lr), ("max_seconds", self.max_seconds)]:
            if value is not None and not value > 0:  # also refuses nan
                raise ValueError(f"{name} must be > 0, got {value!r} (--{name.replace('_', '-')})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


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
    return owndata.own_datasets(cfg.images, cfg.masks, spec=spec, size=cfg.size,
                                augment=cfg.augment, val_fraction=cfg.val_fraction,
                                seed=cfg.seed, val_images=cfg.val_images,
                                val_masks=cfg.val_masks, pairing_options=pairing,
                                image_mode=cfg.image_mode, skip_audit=cfg.skip_audit,
                                drop_bad=cfg.drop_bad_files, crop=cfg.crop, log=log,
                                show_progress=show_progress)


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
        name = "bce_dice" if num_classes == 1 else "weighted_ce"
    if name == "bce":
        return losses.BCELoss() if hasattr(losses, "BCELoss") else nn.BCEWithLogitsLoss()
    if name == "bce_dice" and _binary_ignores(cfg):
        return IgnoringBCEDice()  # binary masks with "not labelled" pixels (255)
    if name == "bce_dice":
        return losses.BCEDiceLoss()
    if name == "dice":
        return losses.SoftDiceLoss()
    if name == "ce":
        return nn.CrossEntropyLoss(ignore_index=255)
    if name in ("weighted_ce", "median_ce"):  # inverse or median-frequency class weights
        counts = losses.pixel_counts((m for _, m in _raw_masks(train_ds)), num_classes)
        weights = losses.class_weights_from_frequencies(
            counts, num_classes, method="median" if name == "median_ce" else "inverse")
        return losses.weighted_cross_entropy(weights)
    raise ValueError(f"unknown loss {cfg.loss!r}: use auto, bce, dice, bce_dice, ce, "
                     "weighted_ce or median_ce")


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


def build_scheduler(cfg: TrainConfig, optimizer):
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cosine":
        if cfg.max_seconds:
            # anneal over the time budget, so a run cut by it still ends at a small lr
            return BudgetCosineLR(optimizer, max_seconds=cfg.max_seconds, epochs=max(cfg.epochs, 1))
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
    scheduler._last_lr = list(lrs)
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


def start_run_folder(cfg: TrainConfig, out: Path, train_ds, val_ds, ctx,
                     log: Callable[[str], None]) -> dict[str, Any]:
    """Create the run folder, once the data has been read (a run that never starts leaves
    none behind); write the split of your own folders to it (``split.csv``). Returns the
    data's provenance for the checkpoints (``data_provenance``)."""
    out.mkdir(parents=True, exist_ok=True)
    info = data_provenance(cfg, train_ds, val_ds)
    if "split" in info and (ctx is None or ctx.is_main):  # under torchrun, rank 0 writes
        from segkit.owndata import write_split

        log(f"split: {write_split(out / 'split.csv', train_ds, val_ds, info['root'])}")
    return info


#: The files that say a folder holds a training run.
RUN_FILES = ("last.pt", "best.pt", "history.csv", "config.json")


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` already holds a run's checkpoints or history."""
    return any((Path(folder) / name).exists() for name in RUN_FILES)


def new_run_dir(folder: str | Path) -> Path:
    """``folder`` if it holds no run yet, else the first of ``folder-2``, ``folder-3``, ...
    that holds none: a new run never overwrites an earlier one."""
    folder = Path(folder)
    candidate, n = folder, 1
    while holds_run(candidate):
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


def run_training(cfg: TrainConfig, log: Callable[[str], None] = print,
                 show_progress: bool | None = None, show_lr: bool = False) -> RunResult:
    """Train a U-Net as ``cfg`` says; save checkpoints, history and a prediction figure.

    ``show_lr``: end every epoch line with the learning rate that epoch used.
    """
    out = Path(cfg.out_dir)
    device = pick_device(None if cfg.device == "auto" else cfg.device)
    ctx = distributed.setup(device) if distributed.launched_by_torchrun() else None
    if ctx is not None:  # one of several torchrun processes: only rank 0 speaks
        device = ctx.device
        if not ctx.is_main:
            log, show_progress = (lambda s: None), False
    generator = seed_everything(cfg.seed)

    train_ds, val_ds, stats = build_datasets(cfg)
    data_info = start_run_folder(cfg, out, train_ds, val_ds, ctx, log)
    task = TASKS[cfg.dataset]
    if cfg.dataset == "folder":  # your own data: binary with 2 classes, else multiclass
        task = "binary" if int(stats["num_classes"]) == 2 else "multiclass"
    num_classes = 1 if task == "binary" else int(stats.get("num_classes", 5))
    in_channels = len(stats["mean"])
    train_loader, val_loader, batch_size = build_loaders(cfg, device, ctx, train_ds, val_ds)
    del generator  # make_loaders seeds its own generator from cfg.seed

    model = UNet(in_channels=in_channels, num_classes=num_classes, base=cfg.base,
                 depth=cfg.depth, kernel_size=cfg.kernel_size, bilinear=cfg.bilinear).to(device)
    fast = speed.speed_settings(device, cfg.precision or "fp32", cfg.channels_last, cfg.compile)
    wrap = None if ctx is None else (lambda m: distributed.wrap_model(m, ctx))
    train_model = speed.prepare_model(model, fast, wrap)  # `model` stays the plain module
    if ctx is not None and ctx.rank > 0:  # other augmentations than rank 0's
        torch.manual_seed(cfg.seed + ctx.rank)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer)
    loss_fn = build_loss(cfg, train_ds, num_classes)
    history, start_epoch = History(), 0
    if cfg.resume:
        history, start_epoch = resume_state(cfg, model, optimizer, scheduler, train_loader,
                                            device, log)

    data_info.update({"size": list(cfg.size), "mean": [float(m) for m in stats["mean"]],
                      "std": [float(s) for s in stats["std"]],
                      "image_mode": "RGB" if in_channels == 3 else "L", "task": task,
                      "num_classes": num_classes, "dataset": cfg.dataset})
    log_run_header(cfg, log, device, ctx, fast, batch_size, len(train_ds), len(val_ds), model)
    saver = EpochSaver(cfg, out, "val_dice" if task == "binary" else "val_miou", model,
                       optimizer, scheduler, train_loader, data_info, ctx, history, start_epoch)
    try:
        history = fit(train_model, train_loader, val_loader, loss_fn=loss_fn, optimizer=optimizer,
                      epochs=cfg.epochs, device=device, scheduler=scheduler, amp=cfg.amp,
                      clip_grad=cfg.clip_grad, max_seconds=cfg.max_seconds, history=history,
                      start_epoch=start_epoch, on_epoch_end=saver,
                      log=with_lr(log, history) if show_lr else log,
                      show_progress=show_progress,
                      num_classes=None if task == "binary" else num_classes,
                      precision=cfg.precision, channels_last=cfg.channels_last, dist=ctx)
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(f"training diverged: {exc} Nothing non-finite was saved; "
                                 f"{saver.what_is_left()}.") from None
    if ctx is not None:
        distributed.cleanup()
        if not ctx.is_main:
            return RunResult(model, history, out, saver.last_path, saver.best_path, None, data_info)
    figure = finish_run(cfg, out, history, model, val_ds, device, stats, num_classes,
                        saver, log)
    return RunResult(model, history, out, saver.last_path, saver.best_path, figure, data_info)


def build_loaders(cfg: TrainConfig, device: torch.device, ctx, train_ds, val_ds):
    """(train_loader, val_loader, per-process batch size) with the device's loader settings.

    Under torchrun ``cfg.batch_size`` is the global batch, shared by the processes, and
    each loader draws its share through a distributed sampler.
    """
    loading = speed.loader_settings(device, cfg.num_workers)
    batch_size, samplers = cfg.batch_size, {}
    if ctx is not None:
        batch_size = distributed.per_process_batch(cfg.batch_size, ctx)
        samplers = dict(zip(("train_sampler", "val_sampler"),
                            distributed.samplers(train_ds, val_ds, ctx, cfg.seed)))
    train_loader, val_loader = data.make_loaders(train_ds, val_ds, batch_size, seed=cfg.seed,
                                                 **loading.as_kwargs(), **samplers)
    return train_loader, val_loader, batch_size


def resume_state(cfg: TrainConfig, model: nn.Module, optimizer, scheduler, train_loader,
                 device: torch.device, log: Callable[[str], None]) -> tuple[History, int]:
    """Load ``cfg.resume`` into the model, optimizer, schedule and random states.

    Returns the run's history so far and the last finished epoch. The schedule continues
    over this run's budget (``continue_schedule``).
    """
    ckpt = load_checkpoint(cfg.resume, map_location=device)
    check_resume(model.config, ckpt, cfg.resume)
    load_weights(model, ckpt["model_state"], cfg.resume)
    if "optimizer_state" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer_state"])
    if scheduler is not None and "scheduler_state" in ckpt:
        scheduler.load_state_dict(ckpt["scheduler_state"])
    history = History.from_list(ckpt.get("history", []))
    start_epoch = int(ckpt["epoch"])
    rng = ckpt.get("rng_state", {})
    if "torch" in rng:  # same shuffles and augmentations as an uninterrupted run (CPU)
        torch.set_rng_state(rng["torch"].cpu())
    if "loader" in rng and train_loader.generator is not None:
        train_loader.generator.set_state(rng["loader"].cpu())
    log(f"resuming from {cfg.resume} after epoch {start_epoch}")
    lr_now = continue_schedule(scheduler, optimizer, cfg, history, start_epoch)
    if lr_now is not None:
        log(f"the schedule continues over the new budget: learning rate {lr_now:.3g}")
    return history, start_epoch


def log_run_header(cfg: TrainConfig, log: Callable[[str], None], device, ctx, fast,
                   batch_size: int, n_train: int, n_val: int, model: nn.Module) -> None:
    """The lines a run starts with: device, processes, precision, data, model, optimizer."""
    log(f"device: {describe_device(device)}")
    if ctx is not None:
        log(f"distributed: {ctx.world_size} processes ({'NCCL' if device.type == 'cuda' else 'gloo'}), "
            f"batch {batch_size} per process, {cfg.batch_size} in all")
    if cfg.precision is not None or cfg.channels_last or cfg.compile:
        log(fast.describe())
    log(f"data: {cfg.dataset}, {n_train} train / {n_val} val images at "
        f"{cfg.size[1]}x{cfg.size[0]} (W x H)")
    log(f"model: U-Net base {cfg.base}, depth {cfg.depth}, {count_parameters(model):,} parameters")
    log(f"optimizer: {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, "
        f"up to {cfg.epochs} epochs" + (f" or {cfg.max_seconds:g} s of training" if cfg.max_seconds else ""))


class EpochSaver:
    """``fit``'s ``on_epoch_end``: save ``last.pt`` every epoch, ``best.pt`` on a new best.

    Only finite weights are ever written, and ``best.pt`` only on a finite improvement of
    ``key``; non-finite weights stop the run with ``NonFiniteLossError``. Under torchrun
    only rank 0 writes. ``last_epoch`` and ``best`` say what is on disk.
    """

    def __init__(self, cfg: TrainConfig, out: Path, key: str, model: nn.Module, optimizer,
                 scheduler, train_loader, data_info: dict, ctx, history: History,
                 start_epoch: int) -> None:
        self.cfg, self.key, self.model, self.ctx = cfg, key, model, ctx
        self.optimizer, self.scheduler, self.train_loader = optimizer, scheduler, train_loader
        self.data_info = data_info
        self.last_path, self.best_path = out / "last.pt", out / "best.pt"
        self.last_epoch = start_epoch if cfg.resume else None
        self.best = max((r[key] for r in history.records
                         if math.isfinite(r.get(key, math.nan))), default=-math.inf)

    def __call__(self, epoch: int, hist: History) -> None:
        if not weights_are_finite(self.model):
            raise NonFiniteLossError(f"the weights became NaN or infinite during epoch {epoch} "
                                     f"(learning rate {self.cfg.lr:g}): try a learning rate 10x "
                                     "lower and keep gradient clipping on.")
        if self.ctx is not None and not self.ctx.is_main:
            return  # rank 0 writes the checkpoints
        common = dict(model=self.model, epoch=epoch, optimizer=self.optimizer,
                      scheduler=self.scheduler, history=hist.to_list(), metrics=hist.last,
                      data=self.data_info, train_config=self.cfg.to_dict(),
                      rng_state={"torch": torch.get_rng_state(),
                                 "loader": self.train_loader.generator.get_state()})
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


def finish_run(cfg: TrainConfig, out: Path, history: History, model: nn.Module, val_ds,
               device, stats: dict, num_classes: int, saver: EpochSaver,
               log: Callable[[str], None]) -> Path | None:
    """Write history.csv, config.json and the prediction figure; log the summary.

    Returns the figure's path (None when it could not be drawn: a figure must never lose
    a finished training run).
    """
    save_history_csv(history, out / "history.csv")
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    figure = None
    try:
        from segkit import viz

        figure = viz.save_prediction_grid(out / "predictions.png", model, val_ds, device,
                                          mean=stats["mean"], std=stats["std"], n=4,
                                          num_classes=num_classes)
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
