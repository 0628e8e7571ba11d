"""Train and validation sets from your own folders (what ``segkit train --images`` builds).

``own_datasets(...)`` pairs the folders (``segkit.folders``), reads the masks as a
``MaskSpec`` says, audits every pair before training (``segkit.audit``), splits off
a validation set (a seeded fraction, or your own val folders) and attaches the course's
transforms. ``voc_datasets_any(root, ...)`` reads a VOC layout with or without
``ImageSets/Segmentation`` split files (without: a seeded split, announced in one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from segkit import data
from segkit.audit import audit_dataset
from segkit.data import PairedFolderDataset
from segkit.errors import DataError
from segkit.imageio import guess_image_mode
from segkit.labels import MaskSpec, parse_value_map, read_class_names

__all__ = ["mask_spec", "own_datasets", "voc_datasets_any", "find_class_names"]


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
        for i, kind, text in report.problems:
            log(f"left out ({kind}): {text.splitlines()[0]}")
        ds = ds.subset([i for i in range(len(ds)) if i not in bad])
        if len(ds) == 0:
            raise DataError(f"every pair had a problem; nothing left to train on:\n{report}")
    else:
        report.raise_if_problems()
    log(report.summary())
    return ds


def own_datasets(images, masks, *, spec: MaskSpec, size, augment: bool, val_fraction=0.2,
                 seed=0, val_images=None, val_masks=None, pairing_options=None,
                 image_mode=None, skip_audit=False, drop_bad=False,
                 log: Callable[[str], None] = print, show_progress: bool | None = None):
    """(train_ds, val_ds, stats) from your folders; stats as in ``data.carvana_datasets``."""
    options = dict(pairing_options or {})
    images, masks = shown(images), shown(masks)  # messages name files as the user sees them
    everything = PairedFolderDataset(images, masks, spec=spec, **options)
    mode = image_mode or guess_image_mode(everything.image_paths)
    everything.image_mode = mode
    log(f"paired {len(everything)} images of {images} with masks of {masks} by "
        f"{everything.pairing.how}" + (f" ({everything.pairing.left_out} files matched no "
                                      "pattern and are not used)" if everything.pairing.left_out else ""))
    everything = audited(everything, skip=skip_audit, drop_bad=drop_bad, log=log,
                         show_progress=show_progress)
    if val_images or val_masks:
        if not (val_images and val_masks):
            raise DataError("give both --val-images and --val-masks (or neither, for a "
                            "seeded --val-fraction split)")
        val_ds = PairedFolderDataset(shown(val_images), shown(val_masks), spec=spec,
                                     image_mode=mode, **options)
        val_ds = audited(val_ds, skip=skip_audit, drop_bad=drop_bad, log=log,
                         show_progress=show_progress)
        train_ds = everything
    else:
        train_idx, val_idx = data.split_indices(len(everything), val_fraction, seed)
        train_ds, val_ds = everything.subset(train_idx), everything.subset(val_idx)
    num_classes = spec.num_classes or 2
    mask_fill = 255 if spec.has_ignore or num_classes > 2 else 0
    return data.with_transforms(train_ds, val_ds, size, augment, num_classes, mask_fill)


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
