"""Train and validation sets from your own folders (what ``segkit train --images`` builds).

``own_datasets(...)`` pairs the folders (``segkit.folders``; a pairing that is not by
identical names is shown with examples), reads the masks as a ``MaskSpec`` says, audits
every pair before training (``segkit.audit``), splits off a validation set (a seeded
fraction, or your own val folders) and attaches the course's transforms.
``voc_datasets_any(root, ...)`` reads a VOC layout with or without
``ImageSets/Segmentation`` split files (without: a seeded split, announced in one line).

The split is kept: ``split_record`` goes into the checkpoint (the validation pairs by
name, and the folders relative to their common parent) and ``write_split`` into the run
folder as ``split.csv``; ``own_folders`` finds the folders again, after a move under a
new ``--data-root``, and ``validation_pairs`` rebuilds the validation set from them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from segkit import data
from segkit.audit import audit_dataset
from segkit.data import PairedFolderDataset
from segkit.errors import DataError
from segkit.imageio import guess_image_mode
from segkit.labels import MaskSpec, parse_value_map, read_class_names

__all__ = ["mask_spec", "own_datasets", "voc_datasets_any", "find_class_names", "split_record",
           "write_split", "own_folders", "validation_pairs"]

FOLDERS = ("images", "masks", "val_images", "val_masks")  # the folders a run records


def shown(path: str | Path) -> str:
    """``path`` as a user reads it: relative to the working folder when it lies inside."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_class_names(masks_dir: str | Path) -> Path | None:
    """A labelme ``class_names.txt`` or VOC ``labelmap.txt`` next to (or in) the masks folder."""
    masks_dir = Path(masks_dir)
    for folder in (masks_dir, masks_dir.parent):
        for name in ("class_names.txt", "labelmap.txt"):
            if (folder / name).is_file():
                return folder / name
    return None


def mask_spec(*, num_classes=None, class_names=None, foreground=None, ignore_index=None,
              mask_values=None, masks_dir=None, log: Callable[[str], None] = print) -> MaskSpec:
    """The MaskSpec of the options of ``segkit train`` (a class-names file next to the masks
    is used when none is given, with a one-line note)."""
    names, colormap = None, None
    if class_names is None and masks_dir is not None and num_classes is None and foreground is None:
        found = find_class_names(masks_dir)
        if found is not None:
            log(f"class names from {shown(found)} (pass --class-names to use another file)")
            class_names = found
    if class_names is not None:
        names, colormap = read_class_names(class_names)
        if num_classes is not None and num_classes != len(names):
            raise DataError(f"--num-classes {num_classes} but {class_names} names "
                            f"{len(names)} classes; give one of the two")
    value_map = parse_value_map(mask_values) if isinstance(mask_values, str) else mask_values
    return MaskSpec(num_classes=num_classes, foreground=foreground, ignore_value=ignore_index,
                    class_names=names, colormap=colormap, value_map=value_map)


def audited(ds, *, skip: bool, drop_bad: bool, log: Callable[[str], None] = print,
            show_progress: bool | None = None):
    """Audit ``ds`` (``segkit.audit``): log the summary, raise listing every problem (or,
    with ``drop_bad``, leave the bad pairs out and say which). Returns the dataset."""
    if skip:
        log(f"audit skipped (--skip-audit): {len(ds)} pairs")
        return ds
    report = audit_dataset(ds, show_progress=show_progress)
    if report.problems and drop_bad:
        bad = set(report.bad_indices)
        for kind in {k: None for _, k, _ in report.problems}:
            for line in report.problem_lines(kind, prefix=f"left out ({kind}): "):
                log(line)
        ds = ds.subset([i for i in range(len(ds)) if i not in bad])
        if len(ds) == 0:
            raise DataError(f"every pair had a problem; nothing left to train on:\n{report}")
    else:
        report.raise_if_problems()
    log(report.summary())
    return ds


class RepeatedCrops(Dataset):
    """A training set read ``times`` times an epoch: with random crops each read is another
    part of the image, so that an epoch covers about as many pixels as the images hold.
    Every other attribute (``image_paths``, ``spec``, ...) is the wrapped dataset's."""

    def __init__(self, dataset, times: int):
        self.dataset, self.times = dataset, times

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet (copy, pickling by loader workers)
            raise AttributeError(name)
        return getattr(self.dataset, name)


#: ``crop="auto"`` considers crops only for images at least this many times the training
#: size on each side (smaller ones: a crop would be most of the image) ...
CROP_FACTOR = 2
#: ... and crops when a class holding at least ``MAJOR_SHARE`` of the labelled pixels keeps
#: a Dice under ``KEPT_FOR_RESIZE`` once its masks are resized to the training size and
#: back: the model could not draw it from resized images. Measured on public sets at
#: --size 64x64 (benchmarks/real_data.py): retina vessels (8.6 % of the pixels) keep 0.30
#: and EM membranes 0.55, and both train far better on crops; the street scenes' major
#: classes keep 0.89 or more (only rare thin ones, poles, lose), and train better resized.
MAJOR_SHARE = 0.05
KEPT_FOR_RESIZE = 0.8


def resize_round_trip(dataset, size: tuple[int, int],
                      samples: int = 16) -> tuple[dict[int, float], dict[int, float]]:
    """({class: Dice}, {class: share of the labelled pixels}) of the masks against the masks
    resized to ``size`` (H, W) and back to their own size, nearest-neighbour as training
    resizes them: how much of each class a model trained on resized images could still
    draw. Up to ``samples`` masks spread over ``dataset``; ignored pixels (255) not counted."""
    import torch
    import torch.nn.functional as F

    from segkit.labels import IGNORE

    step = max(1, len(dataset) // samples)
    inter: dict[int, float] = {}
    total: dict[int, float] = {}
    pixels: dict[int, float] = {}
    for index in range(0, len(dataset), step)[:samples]:
        mask = torch.as_tensor(dataset.load_mask(index))          # (H, W) int64
        small = F.interpolate(mask[None, None].float(), size=size, mode="nearest")
        back = F.interpolate(small, size=mask.shape, mode="nearest")[0, 0].long()
        labelled = mask != IGNORE
        for c in torch.unique(mask[labelled]).tolist():
            truth, kept = (mask == c) & labelled, (back == c) & labelled
            inter[c] = inter.get(c, 0) + 2 * float((truth & kept).sum())
            total[c] = total.get(c, 0) + float(truth.sum() + kept.sum())
            pixels[c] = pixels.get(c, 0) + float(truth.sum())
    counted = sum(pixels.values())
    return ({c: inter[c] / total[c] for c in sorted(inter)},
            {c: pixels[c] / counted for c in sorted(pixels)})


def choose_crop(dataset, size: tuple[int, int]) -> tuple[bool, str]:
    """(crop, why) for ``crop="auto"``: random crops of ``size`` (H, W) at the images' own
    scale when every image is at least ``CROP_FACTOR`` times ``size`` on each side and
    resizing loses a major class (``resize_round_trip``: a class with ``MAJOR_SHARE`` of the
    pixels or more keeps a Dice under ``KEPT_FOR_RESIZE``), else the whole images resized
    to ``size``. ``why`` is the line that says so."""
    height, width = data.smallest_size(dataset)
    shown_size = f"{size[1]}x{size[0]}"
    if height < CROP_FACTOR * size[0] or width < CROP_FACTOR * size[1]:
        return False, (f"whole images resized to {shown_size} (the smallest is "
                       f"{width}x{height}, under {CROP_FACTOR}x --size on a side; --crop "
                       f"trains on crops at their own scale)")
    kept, share = resize_round_trip(dataset, size)
    major = [c for c in kept if share[c] >= MAJOR_SHARE]
    if not major:  # no labelled pixel in the masks looked at: nothing to lose by resizing
        return False, f"whole images resized to {shown_size} (--crop trains on crops)"
    names = getattr(getattr(dataset, "spec", None), "class_names", None) or []
    worst = min(major, key=kept.get)
    name = names[worst] if worst < len(names) else f"class {worst}"
    said = (f"resized to {shown_size} and back, {name} ({share[worst]:.1%} of the labelled "
            f"pixels) keeps a Dice of {kept[worst]:.2f}")
    if kept[worst] < KEPT_FOR_RESIZE:
        return True, (f"crops: {said}, so the images ({width}x{height} and larger) train on "
                      f"crops at their own scale (--no-crop resizes them)")
    return False, (f"whole images resized to {shown_size}: {said}, the least of the classes "
                   f"with {MAJOR_SHARE:.0%} of the pixels or more (--crop trains on crops at "
                   f"their own scale)")


def crops_per_image(dataset, size: tuple[int, int], limit: int = 32) -> int:
    """How many crops of ``size`` (H, W) an epoch takes from each image: the image's area
    over the crop's (of the largest image), between 1 and ``limit``."""
    height, width = data.largest_size(dataset)
    return max(1, min(limit, round(height * width / (size[0] * size[1]))))


def own_datasets(images, masks, *, spec: MaskSpec, size, augment: bool, val_fraction=0.2,
                 seed=0, val_images=None, val_masks=None, pairing_options=None,
                 image_mode=None, skip_audit=False, drop_bad=False,
                 crop: bool | str = False, log: Callable[[str], None] = print,
                 show_progress: bool | None = None):
    """(train_ds, val_ds, stats) from your folders; stats as in ``data.carvana_datasets``,
    plus ``stats["crop"]``, whether the run trains on crops.

    ``crop``: train on random crops of ``size`` at the images' own scale (``times`` of
    them per image and epoch, ``RepeatedCrops``) and validate on the whole images;
    ``"auto"``: crops where resizing to ``size`` would lose a major class
    (``choose_crop``), said in a line."""
    options = dict(pairing_options or {})
    images, masks = shown(images), shown(masks)  # messages name files as the user sees them
    everything = PairedFolderDataset(images, masks, spec=spec, **options)
    mode = image_mode or guess_image_mode(everything.image_paths)
    everything.image_mode = mode
    log(everything.pairing.describe(images, masks))
    everything = audited(everything, skip=skip_audit, drop_bad=drop_bad, log=log,
                         show_progress=show_progress)
    if val_images or val_masks:
        if not (val_images and val_masks):
            raise DataError("give both --val-images and --val-masks (or neither, for a "
                            "seeded --val-fraction split)")
        val_ds = PairedFolderDataset(shown(val_images), shown(val_masks), spec=spec,
                                     image_mode=mode, **options)
        log(val_ds.pairing.describe(shown(val_images), shown(val_masks)))
        val_ds = audited(val_ds, skip=skip_audit, drop_bad=drop_bad, log=log,
                         show_progress=show_progress)
        train_ds = everything
    else:
        train_idx, val_idx = data.split_indices(len(everything), val_fraction, seed)
        train_ds, val_ds = everything.subset(train_idx), everything.subset(val_idx)
    num_classes = spec.num_classes or 2
    mask_fill = 255 if spec.has_ignore or num_classes > 2 else 0
    if crop == "auto":
        crop, why = choose_crop(train_ds, size)
        log(why)
    train_ds, val_ds, stats = data.with_transforms(train_ds, val_ds, size, augment, num_classes,
                                                   mask_fill, crop=crop)
    stats["crop"] = bool(crop)
    if crop:
        times = crops_per_image(train_ds, size)
        log(f"crops: {times} random {size[1]}x{size[0]} crops of each training image an "
            f"epoch, at the images' own scale; validation on the whole images")
        train_ds = RepeatedCrops(train_ds, times)
    return train_ds, val_ds, stats


def voc_datasets_any(root, *, size, augment: bool, num_classes=None, val_fraction=0.2, seed=0,
                     log: Callable[[str], None] = print):
    """VOC train/val from ImageSets/Segmentation/{train,val}.txt, or, when the layout has
    no split files (a labelme export), a seeded split announced in one line."""
    voc = data.find_voc2012(root)
    if (voc / "ImageSets" / "Segmentation" / "train.txt").is_file():
        return data.voc_datasets(root, size=size, augment=augment, num_classes=num_classes)
    masks = voc / "SegmentationClass"
    names = find_class_names(masks)
    if names is not None and num_classes is None:
        num_classes = len(read_class_names(names)[0])
    everything = PairedFolderDataset(voc / "JPEGImages", masks, mask_suffix="",
                                     mask_convention="index", num_classes=num_classes)
    if num_classes is None:
        num_classes = data.count_classes(everything)
        everything.num_classes = num_classes
    train_idx, val_idx = data.split_indices(len(everything), val_fraction, seed)
    log(f"{shown(voc)} has no ImageSets/Segmentation/train.txt: split {len(everything)} pairs at "
        f"random (seed {seed}) into {len(train_idx)} train / {len(val_idx)} val")
    train_ds, val_ds = everything.subset(train_idx), everything.subset(val_idx)
    return data.with_transforms(train_ds, val_ds, size, augment, num_classes, mask_fill=255)


def split_record(train_ds, val_ds, folders: dict[str, str | None]) -> dict:
    """What a checkpoint records of an own-folder run's data: ``root``, the common parent of
    the ``folders`` (images, masks, val_images, val_masks: absolute paths), each folder
    relative to it (``relative``), and ``split``: the training and validation pairs by
    file name ({"train": [[image, mask], ...], "val": [...]})."""
    given = {k: Path(v) for k, v in folders.items() if v}
    root = Path(os.path.commonpath([str(p) for p in given.values()]))
    return {"root": str(root),
            "relative": {k: str(p.relative_to(root)) for k, p in given.items()},
            "split": {part: [[i.name, m.name] for i, m in zip(ds.image_paths, ds.mask_paths)]
                      for part, ds in (("train", train_ds), ("val", val_ds))}}


def write_split(path: str | Path, train_ds, val_ds, root: str | Path) -> Path:
    """``split.csv``: one row per pair, ``split`` (train / val), ``image`` and ``mask`` (paths
    relative to ``root``, the data's common parent folder)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "image", "mask"])
        for name, ds in (("train", train_ds), ("val", val_ds)):
            for image, mask in zip(ds.image_paths, ds.mask_paths):
                writer.writerow([name, _relative(image, root), _relative(mask, root)])
    return path


def _relative(path: Path, root) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def own_folders(info: dict, data_root: str | Path | None, checkpoint) -> dict[str, Path]:
    """The folders an own-folder checkpoint trained on ({"images": ..., "masks": ..., and
    "val_images"/"val_masks" when it had them}): where it recorded them, or, given
    ``data_root`` (the data moved), ``data_root`` / the folder's place under the recorded
    common parent, else ``data_root`` / the folder's name. Raises DataError naming the
    checkpoint, what was tried and the options that help."""
    found = {}
    for name in FOLDERS:
        recorded = info.get(name)
        if not recorded:
            continue
        tried = [Path(recorded)]
        if data_root is not None:
            relative = (info.get("relative") or {}).get(name)
            tried = ([Path(data_root) / relative] if relative else []) + [
                Path(data_root) / Path(recorded).name, Path(data_root)]
        where = next((p for p in tried if p.is_dir()), None)
        if where is None:
            option = "a --data-root that holds them" if data_root else "--data-root DIR"
            raise DataError(f"checkpoint {checkpoint} was trained on {recorded}, which is not "
                            f"there (looked in {', '.join(map(str, dict.fromkeys(tried)))}): "
                            f"the data moved, or this is another machine. Give {option} (the "
                            f"folder that now holds {Path(recorded).name}/), or score a "
                            "labelled folder with --images DIR --masks DIR")
        found[name] = where
    if not found:
        raise DataError(f"checkpoint {checkpoint} records no folders of images and masks")
    return found


def validation_pairs(info: dict, folders: dict[str, Path], spec: MaskSpec,
                     fallback: tuple[float, int] = (0.2, 0)):
    """(dataset, note): the validation pairs of an own-folder run, found in ``folders``
    (``own_folders``), and one line saying which they are. The run's --val-images folder
    whole; else the pairs its ``split`` names (an error lists those that are missing);
    else (a checkpoint from before splits were recorded) the seeded split rebuilt with
    ``fallback`` = (val_fraction, seed)."""
    options = {k: info[k] for k in ("mask_suffix", "image_pattern", "mask_pattern") if info.get(k)}
    mode = info.get("image_mode", "RGB")
    if "val_images" in folders:
        ds = PairedFolderDataset(folders["val_images"], folders["val_masks"], spec=spec,
                                 image_mode=mode, **options)
        return ds, (f"validation: the {len(ds)} pairs of {folders['val_images']} and "
                    f"{folders['val_masks']} (the run's --val-images and --val-masks)")
    everything = PairedFolderDataset(folders["images"], folders["masks"], spec=spec,
                                     image_mode=mode, **options)
    names = [p.name for p in everything.image_paths]
    if "split" not in info:
        _, val_idx = data.split_indices(len(everything), *fallback)
        return everything.subset(val_idx), (
            f"validation: {len(val_idx)} of {len(everything)} pairs of {folders['images']}, "
            f"the split rebuilt with val_fraction {fallback[0]} and seed {fallback[1]} (this "
            "checkpoint records no split; it matches the run if the audit left nothing out)")
    wanted = [image for image, _ in info["split"]["val"]]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise DataError(f"{len(missing)} of the run's {len(wanted)} validation images are not "
                        f"in {folders['images']}: {', '.join(missing[:5])}"
                        + (" ..." if len(missing) > 5 else ""))
    position = {name: i for i, name in enumerate(names)}
    val_ds = everything.subset([position[name] for name in wanted])
    return val_ds, (f"validation: the {len(wanted)} pairs of {folders['images']} that the run "
                    f"kept for validation (its split.csv), of {len(everything)}")
