"""The ``segkit`` command line (also ``python -m segkit``).

    segkit generate carvana data/carvana      # write a toy dataset
    segkit train                              # train on the embedded toy Carvana
    segkit evaluate runs/carvana/best.pt      # val loss / Dice / accuracy of a checkpoint
    segkit predict runs/carvana/best.pt my_photos/ predictions/
    segkit train --images my_data/images --masks my_data/masks    # your own folders
    segkit evaluate runs/folder/best.pt --images test/images --masks test/masks
    segkit fetch voc2012 data/                # download and check a real dataset
    segkit build-lessons [--check]            # lessons/ from solutions/
    segkit run-course                         # execute every solution notebook headless
    segkit grade submissions/ --lesson 03     # grade a class of student notebooks
    segkit verify                             # check the whole course before a term

Every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from segkit.failures import describe, wants_traceback


def image_size(text: str) -> tuple[int, int]:
    """Parse "96x64" (W x H, as image viewers say it) into (H, W), the order segkit holds
    sizes in everywhere: the command line's edge is the only place that flips them."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 96x64 (width x height), got {text!r}")
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small: at least 8x8")
    return (h, w)


def cmd_generate(args: argparse.Namespace) -> int:
    from segkit import toydata

    root = toydata.generate(args.name, args.root, n=args.n, size=args.size, seed=args.seed,
                            overwrite=args.overwrite)
    print(f"wrote toy {args.name} to {root}")
    return 0


def train_config(args: argparse.Namespace):
    """The TrainConfig that ``segkit train`` runs: the options given, and for the rest the
    preset (by default the one named after the dataset) and the table of defaults
    (``segkit.recipe.DEFAULTS``), as ``run_training(TrainConfig(...))`` would. With
    ``--resume`` the rest comes from the checkpoint instead (:func:`resumed_config`)."""
    from segkit.recipe import TrainConfig, preset_for

    fields = {k: v for k, v in vars(args).items()
              if k in TrainConfig.__dataclass_fields__ and v is not None}
    if args.no_time_limit:
        fields["max_seconds"] = None
    if getattr(args, "no_bf16", False):
        fields["precision"] = "fp32"
    if fields.get("resume"):
        return resumed_config(fields)
    dataset = fields.get("dataset") or ("folder" if fields.get("images") else "carvana")
    preset = fields.pop("preset", None) or preset_for(dataset)
    return TrainConfig(**fields, preset=None if preset == "none" else preset)


#: What a resumed run may change: how long it goes on, where and how fast it runs.
RESUME_MAY_CHANGE = ("epochs", "max_seconds", "device", "precision", "channels_last",
                     "compile", "cache", "cache_dir", "num_workers", "out_dir", "resume",
                     "skip_audit", "drop_bad_files")
DATA_PATHS = ("data_root", "images", "masks", "val_images", "val_masks", "class_names")


def resumed_config(given: dict):
    """``--resume CKPT``: the run as the checkpoint recorded it (data folders, patterns,
    labels, size, model, recipe), with the options given for what a resumed run may
    change (:data:`RESUME_MAY_CHANGE`). Any other option given that disagrees with the
    run is refused, naming both values; a data folder may differ only when the recorded
    one is gone (the data moved)."""
    from segkit.checkpoint import CheckpointError, load_checkpoint
    from segkit.recipe import TrainConfig

    saved = load_checkpoint(given["resume"]).get("train_config") or {}
    if not saved:
        raise CheckpointError(f"cannot resume {given['resume']}: it records no training "
                              "settings (it was not written by segkit train); start a new run "
                              "without --resume")
    saved = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
    wrong = [f"--{key.replace('_', '-')} {_shown(value)} (the run: {_shown(saved[key])})"
             for key, value in given.items()
             if key not in RESUME_MAY_CHANGE and key in saved
             and not _same_setting(key, saved[key], value)]
    if wrong:
        raise CheckpointError(
            f"cannot resume {given['resume']} with options that change the run: "
            + "; ".join(wrong) + ". A resumed run goes on as it was trained (its learning "
            "rate continues its schedule): leave these options out, or start a new run "
            "without --resume.")
    merged = {**saved, **given}
    merged["size"] = tuple(merged["size"])
    return TrainConfig(**merged)


def _same_setting(key: str, saved, value) -> bool:
    """Whether an option given on resume says what the run recorded (a data folder that is
    gone may be given anew: the data moved)."""
    if key == "size":
        return list(saved) == list(value)
    if key in DATA_PATHS and saved is not None:
        if not Path(saved).exists():
            return True
        return Path(saved) == Path(value).expanduser().resolve()
    return saved == value


def _shown(value) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[1]}x{value[0]}"  # a size (H, W), as --size takes it
    return f"{value:g}" if isinstance(value, float) else str(value)


def cmd_train(args: argparse.Namespace) -> int:
    from segkit.recipe import run_training

    cfg = train_config(args)
    if cfg.resume and args.out_dir is None:  # continue the run where its checkpoint is
        cfg.out_dir = str(Path(cfg.resume).parent)
    run_training(cfg, show_lr=True)  # claims cfg.out_dir, or the next free name
    return 0


MASK_OPTIONS = ("num_classes", "class_names", "foreground", "ignore_index", "mask_values")


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from segkit import data
    from segkit.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
    from segkit.device import pick_device
    from segkit.recipe import TrainConfig, build_datasets, build_loss
    from segkit.training import validate

    ckpt = load_checkpoint(args.checkpoint)
    saved = dict(ckpt.get("train_config") or {})
    cfg = TrainConfig(**{k: (tuple(v) if k == "size" else v) for k, v in saved.items()
                         if k in TrainConfig.__dataclass_fields__ and k != "preset"})
    if getattr(args, "images", None) or getattr(args, "masks", None):
        return evaluate_own_folder(args, ckpt)
    if cfg.dataset == "folder":
        return evaluate_own_split(args, ckpt)
    given = [f"--{k.replace('_', '-')}" for k in MASK_OPTIONS if getattr(args, k) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} say how to read your own masks: they apply to "
                         f"--images DIR --masks DIR (or a checkpoint trained on your own "
                         f"folders), not to the {cfg.dataset} dataset this checkpoint used")
    if args.data_root:
        cfg.data_root = str(Path(args.data_root).resolve())
    elif cfg.data_root and not Path(cfg.data_root).is_dir():
        raise CheckpointError(
            f"{args.checkpoint} was trained on {cfg.data_root}, which is not there (moved, "
            "deleted, or a relative path from another folder): give the data's folder with "
            "--data-root DIR")
    check_data_root(args.checkpoint, cfg)
    device = pick_device(args.device)
    model = model_from_checkpoint(ckpt, device, name=args.checkpoint)
    train_ds, val_ds, _ = build_datasets(cfg)
    num_classes = int(ckpt["data"].get("num_classes", 1))
    _, val_loader = data.make_loaders(train_ds, val_ds, cfg.batch_size, seed=cfg.seed)
    loss_fn = build_loss(cfg, train_ds, num_classes)
    with torch.no_grad():
        result = validate(model, val_loader, loss_fn, device,
                          num_classes=None if num_classes == 1 else num_classes)
    print(f"checkpoint {args.checkpoint} (epoch {ckpt['epoch']}), {len(val_ds)} val images:")
    for k, v in result.items():
        print(f"  {k:<9} {v:.4f}")
    return 0


def check_data_root(checkpoint, cfg) -> None:
    """Raise naming the checkpoint and --data-root when its data folders are gone."""
    from segkit.errors import DataError

    for name in ("data_root", "images", "masks"):
        folder = getattr(cfg, name, None)
        if folder and not Path(folder).exists():
            option = "--data-root" if name == "data_root" else f"--{name}"
            raise DataError(f"checkpoint {checkpoint} was trained on {folder}, which is not "
                            f"there any more (moved, or another machine): give the data's new "
                            f"place with {option} DIR, or score a labelled folder with "
                            "--images DIR --masks DIR")


def _mask_spec_of(args: argparse.Namespace, ckpt: dict):
    """How to read the masks: as the checkpoint's training did, with the mask options given
    on the command line in place of its own (they apply to the predictions too)."""
    from segkit.evaluation import spec_from_checkpoint

    return spec_from_checkpoint(ckpt, **{k: getattr(args, k) for k in MASK_OPTIONS})


def _show_scores(args: argparse.Namespace, ckpt: dict, result, what) -> None:
    for note in result.notes:
        print(note)
    print(f"checkpoint {args.checkpoint} (epoch {ckpt['epoch']}) on {what}: {result}")
    print(f"wrote {result.csv_path} and {result.figure_path} (the worst images)")


#: The files that say a folder holds an evaluation.
EVALUATION_FILES = ("per_image.csv", "worst.png", "summary.json", "per_class.csv")


def evaluate_into_own_folder(args: argparse.Namespace, evaluate: Callable[[Path], Any]):
    """``evaluate(folder)``'s result, written into a folder this evaluation takes alone:
    ``--out-dir`` or ``<checkpoint folder>/evaluation``, or the next free name when that
    holds an earlier evaluation or another process is writing there (segkit.claim)."""
    from segkit.claim import claim_folder, release_folder

    folder = Path(args.out_dir) if args.out_dir else Path(args.checkpoint).parent / "evaluation"
    folder = claim_folder(folder, EVALUATION_FILES, what="evaluation")
    try:
        return evaluate(folder)
    finally:
        release_folder(folder)


def evaluate_own_folder(args: argparse.Namespace, ckpt: dict) -> int:
    """``segkit evaluate CKPT --images DIR --masks DIR``: summary, CSV, worst-images figure.
    On the run's own training folder, per_image.csv says which images were validation."""
    from segkit.device import pick_device
    from segkit.evaluation import evaluate_folder

    if not (args.images and args.masks):
        raise ValueError("give both --images DIR and --masks DIR (a labelled folder to score)")
    pairing = {"mask_suffix": args.mask_suffix, "image_pattern": args.image_pattern,
               "mask_pattern": args.mask_pattern}
    info = ckpt.get("data") or {}
    split = None  # on the run's own training folder: which images were validation
    if "split" in info and Path(args.images).resolve() == Path(info.get("images", "")):
        split = {image: part for part in ("train", "val") for image, _ in info["split"][part]}
    result = evaluate_into_own_folder(args, lambda folder: evaluate_folder(
        args.checkpoint, args.images, args.masks, folder, spec=_mask_spec_of(args, ckpt),
        pairing=pairing, device=pick_device(args.device), split=split))
    _show_scores(args, ckpt, result, args.images)
    return 0


def evaluate_own_split(args: argparse.Namespace, ckpt: dict) -> int:
    """``segkit evaluate CKPT`` for a run on your own folders: its validation pairs, found
    where it trained (or under --data-root after a move), scored as evaluate_folder does."""
    from segkit.device import pick_device
    from segkit.evaluation import evaluate_split

    result = evaluate_into_own_folder(args, lambda folder: evaluate_split(
        args.checkpoint, folder, data_root=args.data_root, spec=_mask_spec_of(args, ckpt),
        device=pick_device(args.device)))
    _show_scores(args, ckpt, result, "its validation images")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from segkit import fetch

    where = fetch.fetch(args.name, args.root, archives=args.archive)
    print(f"{args.name} is ready in {where}")
    return 0


def add_own_data_options(p: argparse.ArgumentParser, *, training: bool) -> None:
    """The options that say where your images and masks are and what the masks mean."""
    g = p.add_argument_group("your own data (folders of images and masks)")
    g.add_argument("--images", help="folder of images (PNG, JPEG, GIF, TIFF, BMP)")
    g.add_argument("--masks", help="folder of masks")
    g.add_argument("--mask-suffix", dest="mask_suffix",
                   help="pair <stem>.<ext> with <stem><SUFFIX>.<ext>, e.g. _mask (default: "
                        "identical names, or the one rule that pairs every file)")
    g.add_argument("--image-pattern", dest="image_pattern",
                   help='image names with {id}, e.g. "{id}_training.tif"')
    g.add_argument("--mask-pattern", dest="mask_pattern",
                   help='mask names with {id}, e.g. "{id}_manual1.gif"')
    g.add_argument("--num-classes", dest="num_classes", type=int,
                   help="classes in the masks (default: binary, or from --class-names)")
    g.add_argument("--class-names", dest="class_names",
                   help="labelme class_names.txt or VOC-style labelmap.txt (default: one "
                        "found next to the masks)")
    g.add_argument("--foreground", type=int,
                   help="binary: the mask value of the object (default: 1, or 255 in 0/255 masks)")
    g.add_argument("--ignore-index", dest="ignore_index", type=int,
                   help="a mask value meaning 'not labelled' (e.g. 255), left out of loss "
                        "and scores (binary too)")
    g.add_argument("--mask-values", dest="mask_values",
                   help="mask value -> class, e.g. 0:0,128:1,255:2")
    if not training:
        return
    g.add_argument("--val-images", dest="val_images", help="validation images (else a split)")
    g.add_argument("--val-masks", dest="val_masks", help="validation masks")
    g.add_argument("--val-fraction", dest="val_fraction", type=float,
                   help="share of the pairs kept for validation, split with --seed (default 0.2)")
    g.add_argument("--crop", action=argparse.BooleanOptionalAction, default=None,
                   help="train on random crops of --size at the images' own scale (as many "
                        "an epoch as the images hold) and validate on whole images; predict "
                        "and evaluate then work in tiles at that scale. --no-crop resizes "
                        "every image to --size. Default: crops when resizing to --size would "
                        "lose the masks' labels (thin structures) and the images are at least "
                        "twice --size on each side; the run says which and why")
    g.add_argument("--image-mode", dest="image_mode", choices=["RGB", "L"],
                   help="read images as colour or grey (default: as the first image is)")
    g.add_argument("--skip-audit", "--skip-data-check", dest="skip_audit", action="store_true",
                   default=None, help="do not audit the data (open every pair) before training")
    g.add_argument("--drop-bad-files", dest="drop_bad_files", action="store_true",
                   default=None, help="train without the pairs the audit finds bad")


def cmd_predict(args: argparse.Namespace) -> int:
    from segkit.device import pick_device
    from segkit.predict import predict_folder

    result = predict_folder(args.checkpoint, args.input_dir, args.output_dir,
                            device=pick_device(args.device), threshold=args.threshold,
                            tta=args.tta, overlays=not args.no_overlays,
                            overwrite=args.overwrite, strict=args.strict,
                            all_files=args.all_files)
    if result.derived_note():
        print(result.derived_note())
    print(f"wrote {len(result.written)} masks" + ("" if args.no_overlays else " and overlays")
          + f" to {result.folder}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} image(s) that could not be read:", file=sys.stderr)
        for path, why in result.skipped:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with errors in two lines (the error and where to find help), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


def _add_generate(sub) -> None:
    """The ``segkit generate`` subcommand and its options."""
    p = sub.add_parser("generate", help="write a toy dataset in the real dataset's layout",
                       description="Write a generated toy dataset (carvana, seasky or voc) "
                                   "in the real dataset's folder layout.")
    p.add_argument("name", choices=["carvana", "seasky", "voc", "cells"])
    p.add_argument("root", help="folder to write to (created)")
    p.add_argument("--n", type=int, default=None, help="number of images (default: the embedded size)")
    p.add_argument("--size", type=image_size, default=None,
                   help="image size WxH, e.g. 240x160 (default: the dataset's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=cmd_generate)


def table_default(name: str) -> str:
    """What the table of defaults (and the presets) say for setting ``name``, for --help:
    the help text always tells what ``segkit.recipe`` does."""
    from segkit.recipe import DATASET_DEFAULTS, DEFAULTS, PRESETS

    def shown(value) -> str:
        if isinstance(value, tuple):  # a size (H, W), shown as the option takes it: WxH
            return f"{value[1]}x{value[0]}"
        return "on" if value is True else "off" if value is False else f"{value:g}" \
            if isinstance(value, float) else str(value)

    if name in DEFAULTS:
        text = f"default {shown(DEFAULTS[name])}" + "".join(
            f"; {dataset} {shown(column[name])}" for dataset, column in DATASET_DEFAULTS.items()
            if name in column)
    else:
        text = "default " + ", ".join(f"{dataset} {shown(column[name])}"
                                      for dataset, column in DATASET_DEFAULTS.items())
    presets = [f"{preset} {shown(values[name])}" for preset, values in PRESETS.items()
               if name in values]
    return text + (f"; preset {', '.join(presets)}" if presets else "")


def add_speed_options(p: argparse.ArgumentParser) -> None:
    """--precision, --channels-last, --compile, --cache, --num-workers (segkit.speed)."""
    speed = p.add_argument_group("speed (see segkit.speed)")
    speed.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                       help="auto: bf16 autocast on CPUs with avx512_bf16/AMX and on GPUs "
                            "that have it, fp16 with a GradScaler on older GPUs, else fp32 "
                            f"({table_default('precision')})")
    speed.add_argument("--no-bf16", action="store_true", help="the same as --precision fp32")
    speed.add_argument("--channels-last", dest="channels_last",
                       action=argparse.BooleanOptionalAction, default=None,
                       help=f"channels_last memory layout ({table_default('channels_last')})")
    speed.add_argument("--compile", action="store_true", default=None,
                       help="torch.compile the model (slow first steps; for long GPU runs)")
    speed.add_argument("--cache", choices=["auto", "memory", "disk", "none"],
                       help="keep decoded, resized images for the next epochs: in memory, "
                            "or on disk as .npy for large sets, exactly as read (auto: "
                            f"memory up to 1 GiB, else disk; {table_default('cache')}); "
                            "see segkit.cache")
    speed.add_argument("--cache-dir", dest="cache_dir",
                       help="disk cache folder (default ~/.cache/segkit/resized)")
    speed.add_argument("--num-workers", dest="num_workers", type=int,
                       help="DataLoader worker processes (default: chosen per device)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--size, --base, --depth, --kernel-size, --bilinear."""
    p.add_argument("--size", type=image_size,
                   help=f"training size WxH: images are resized to it, or cut into crops of it "
                        f"(--crop) ({table_default('size')})")
    p.add_argument("--base", type=int,
                   help=f"channels of the first block ({table_default('base')})")
    p.add_argument("--depth", type=int,
                   help=f"number of down/up steps ({table_default('depth')})")
    p.add_argument("--kernel-size", dest="kernel_size", type=int,
                   help=f"convolution kernel size ({table_default('kernel_size')})")
    p.add_argument("--bilinear", action="store_true", default=None,
                   help="bilinear upsampling instead of transposed convolutions")


def add_optimizer_options(p: argparse.ArgumentParser) -> None:
    """--batch-size, --epochs, the time budget, the optimizer, the loss and the schedule."""
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help=f"images per step ({table_default('batch_size')})")
    p.add_argument("--epochs", type=int, help=f"passes over the data ({table_default('epochs')})")
    p.add_argument("--max-seconds", dest="max_seconds", type=float,
                   help=f"stop after this much training time ({table_default('max_seconds')})")
    p.add_argument("--no-time-limit", action="store_true", help="train all epochs")
    p.add_argument("--optimizer", choices=["adamw", "adam", "sgd", "rmsprop"],
                   help=table_default("optimizer"))
    p.add_argument("--lr", type=float, help=f"learning rate ({table_default('lr')})")
    p.add_argument("--weight-decay", dest="weight_decay", type=float,
                   help=table_default("weight_decay"))
    p.add_argument("--momentum", type=float, help=table_default("momentum"))
    p.add_argument("--clip-grad", dest="clip_grad", type=float,
                   help=f"clip the gradients' norm to this; 0: no clipping "
                        f"({table_default('clip_grad')})")
    p.add_argument("--loss", choices=["auto", "bce", "dice", "bce_dice", "ce", "weighted_ce",
                                      "sqrt_ce", "median_ce"],
                   help="auto: bce_dice for binary masks, sqrt_ce for classes (cross-entropy "
                        "with class weights 1/sqrt(frequency)); weighted_ce: weights "
                        "1/frequency (median_ce, median-frequency balancing, is the same loss: "
                        f"its weights are those times a constant) ({table_default('loss')})")
    p.add_argument("--scheduler", choices=["cosine", "plateau", "none"],
                   help="cosine: down to 0 over the time budget, or over the epochs with "
                        "--no-time-limit; plateau: halve on a stalled val loss "
                        f"({table_default('scheduler')})")


def _add_train(sub) -> None:
    """The ``segkit train`` subcommand and its options."""
    from segkit.recipe import PRESETS, describe_preset

    p = sub.add_parser("train", help="train a U-Net (default: toy Carvana, under a minute on CPU)",
                       description="Train a U-Net; prints one line per epoch and saves "
                                   "last.pt/best.pt, history.csv, config.json and "
                                   "predictions.png in --out-dir. Every option left out "
                                   "comes from the preset, then from the table of defaults "
                                   "(segkit.recipe.DEFAULTS).")
    p.add_argument("--dataset", choices=["carvana", "seasky", "voc"])
    p.add_argument("--data-root", dest="data_root", help="dataset folder (default: embedded toy copy)")
    p.add_argument("--preset", choices=[*PRESETS, "none"],
                   help="a named recipe, options you give win over it: "
                        + "; ".join(describe_preset(name)[len("preset: "):] for name in PRESETS)
                        + ". Default: the one named after the dataset (carvana), else none "
                          "(the table alone)")
    add_model_options(p)
    add_optimizer_options(p)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="flips and small changes of the training images "
                        f"({table_default('augment')}; folder: your own --images/--masks)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--out-dir", dest="out_dir",
                   help="where to save (default runs/<dataset>); a folder that already holds "
                        "a run is kept and this run goes to <folder>-2, -3, ...")
    p.add_argument("--resume", help="continue from this checkpoint (e.g. runs/carvana/last.pt) "
                                    "with the run's own data and settings (give only what may "
                                    "change: --epochs, --max-seconds, --device, speed, "
                                    "--out-dir), in its own folder unless --out-dir is given")
    add_own_data_options(p, training=True)
    add_speed_options(p)
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub) -> None:
    """The ``segkit evaluate`` subcommand and its options."""
    p = sub.add_parser("evaluate", help="validation figures of a checkpoint",
                       description="Score a checkpoint on its validation split: the built-in "
                                   "datasets' (loss, Dice/mIoU, pixel accuracy), or the one a "
                                   "run on your own folders recorded (Dice and IoU of both "
                                   "classes, or of every class by name; per_image.csv and "
                                   "worst.png); or on any labelled folder (--images/--masks).")
    p.add_argument("checkpoint")
    p.add_argument("--data-root", dest="data_root",
                   help="where the checkpoint's dataset is now (default: the folder it "
                        "recorded when training); for your own folders, the folder that now "
                        "holds its images and masks folders")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--out-dir", dest="out_dir",
                   help="where to write per_image.csv and worst.png (your own folders; "
                        "default: <checkpoint folder>/evaluation)")
    add_own_data_options(p, training=False)
    p.set_defaults(func=cmd_evaluate)


def _add_fetch(sub) -> None:
    """The ``segkit fetch`` subcommand and its options."""
    p = sub.add_parser("fetch", help="download (or unpack) a real dataset and check it",
                       description="Get a real dataset in the layout segkit reads: voc2012 "
                                   "and pet are downloaded (or taken from --archive files you "
                                   "downloaded) and checked against their MD5 sums; carvana "
                                   "needs a Kaggle sign-in, so give its zips with --archive.")
    p.add_argument("name", choices=["voc2012", "pet", "carvana"])
    p.add_argument("root", help="folder to put the dataset in")
    p.add_argument("--archive", action="append", default=None,
                   help="an archive you downloaded yourself (repeat for several)")
    p.set_defaults(func=cmd_fetch)


def _add_predict(sub) -> None:
    """The ``segkit predict`` subcommand and its options."""
    p = sub.add_parser("predict", help="masks and overlays for a folder of images",
                       description="Predict a mask for every image in INPUT_DIR (any size); "
                                   "write <name>_mask.png (0/255 or palette) and <name>_overlay.png.")
    p.add_argument("checkpoint")
    p.add_argument("input_dir")
    p.add_argument("output_dir")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (binary)")
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument("--no-overlays", action="store_true")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an output folder that already holds files (replaces "
                        "only masks and overlays of the same names)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first image that cannot be read (default: skip it, "
                        "list it at the end, exit status 1)")
    p.add_argument("--all-files", dest="all_files", action="store_true",
                   help="predict files named like another image plus a word too (0_predict.png "
                        "beside 0.png: by default left out, as earlier outputs or masks)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.set_defaults(func=cmd_predict)


#: Commands other packages add to ``segkit``: each entry point of this group names a
#: function that takes the subparsers (the course machinery's build-lessons, run-course,
#: grade, grade-merge, build-site and verify come in this way, from ``segkit_course``;
#: the runtime itself never imports the machinery).
PLUGIN_GROUP = "segkit.commands"


def add_plugin_commands(sub) -> None:
    """Add the subcommands that installed packages register under :data:`PLUGIN_GROUP`."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="segkit", description="segkit: the U-Net segmentation course's command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_generate(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_fetch(sub)
    _add_predict(sub)

    add_plugin_commands(sub)
    for command in sub.choices.values():
        command.add_argument("--traceback", action="store_true",
                             help="on failure, print the traceback too (or set SEGKIT_TRACEBACK=1)")
    return parser


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning raised during a command as one line, without the source path."""
    print(f"note: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():  # a library's warning is one line of the run's own
            warnings.showwarning = _note
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure ends in one message; --traceback shows where
        if wants_traceback(args.traceback):
            traceback.print_exc()
        print(f"segkit {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
