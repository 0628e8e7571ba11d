"""Audit a whole dataset before the first epoch: every problem at once, not one a crash.

``audit_dataset(ds)`` opens every image and mask of a segkit dataset once (in a few
threads: PIL decodes without holding Python's lock), with a progress bar, and returns an
``Audit`` that lists:

- files that cannot be read (cut short, not an image, a mode that cannot be read
  faithfully, several frames);
- an image and its mask of different sizes;
- mask values that do not fit what you said they mean (a JPEG-compressed mask, 0/255
  read as class indices, a class index beyond the number of classes);

and a few notes (the foreground covers most pixels: Dice then rewards "everything is
foreground"; image sizes differ; classes that never appear). Each problem names the
file, the value, the likely cause and the option that fixes it. ``segkit train`` audits
your folders before training (``--skip-audit`` to skip, ``--drop-bad-files`` to train
without the files it lists).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from segkit.errors import DataError
from segkit.imageio import faithful_image, open_image
from segkit.labels import IGNORE
from segkit.progress import progress

__all__ = ["Audit", "audit_dataset"]

#: The option that usually fixes each kind of problem.
FIXES = {
    "unreadable": "replace or delete the file, or pass --drop-bad-files to train without it",
    "size": "resize the mask with the image (nearest interpolation for the mask), or pass "
            "--drop-bad-files",
    "values": "say what the values mean: --num-classes / --class-names FILE for several "
              "classes, --foreground VALUE for binary, --mask-values 0:0,128:1, "
              "--ignore-index VALUE; or --drop-bad-files",
}


@dataclass
class Audit:
    """What ``audit_dataset`` found.

    Attributes:
        n_pairs: pairs opened.
        problems: (pair index, kind, text); kind is "unreadable", "size" or "values".
        sizes: Counter of image sizes (H, W).
        modes: Counter of image modes ("RGB", "L", "I;16", ...).
        pixels: Counter {class index: pixels} over the good masks (255 = ignore).
        notes: things worth knowing that are not errors.
    """

    n_pairs: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    pixels: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_indices(self) -> list[int]:
        return sorted({i for i, _, _ in self.problems})

    def summary(self) -> str:
        sizes = ", ".join(f"{w}x{h}: {n}" for (h, w), n in self.sizes.most_common(3))
        modes = ", ".join(f"{m}: {n}" for m, n in self.modes.most_common())
        total = sum(n for c, n in self.pixels.items() if c != IGNORE) or 1
        share = ", ".join(f"{c}: {n / total:.1%}" for c, n in sorted(self.pixels.items())
                          if c != IGNORE)
        lines = [f"audited {self.n_pairs} pairs: {len(self.bad_indices)} with problems",
                 f"  image sizes (W x H): {sizes}" + (" ..." if len(self.sizes) > 3 else ""),
                 f"  image modes: {modes}", f"  classes (share of labelled pixels): {share}"]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def __str__(self) -> str:
        lines = [self.summary()]
        for kind in FIXES:
            found = [text for _, k, text in self.problems if k == kind]
            if found:
                lines.append(f"{len(found)} problem(s) of kind '{kind}' (fix: {FIXES[kind]}):")
                lines += [f"  - {text}" for text in found]
        return "\n".join(lines)

    __repr__ = __str__

    def raise_if_problems(self) -> None:
        """Raise one DataError listing every problem (if there are any)."""
        if self.problems:
            raise DataError(str(self))


def _audit_pair(dataset, i: int):
    """(image size, image mode, {class: pixels}) of pair i, or (kind, text) of a problem."""
    image_path, mask_path = dataset.image_paths[i], dataset.mask_paths[i]
    try:
        image = faithful_image(image_path)
        mask_file = open_image(mask_path)
    except DataError as err:
        return "unreadable", str(err)
    try:
        mask = dataset.mask_indices(mask_file, mask_path)
    except DataError as err:
        return "values", str(err)
    if mask.shape != (image.height, image.width):
        (mh, mw) = mask.shape
        return "size", (f"{image_path} is {image.width}x{image.height} but its mask "
                        f"{mask_path.name} is {mw}x{mh} (W x H)")
    counts = np.bincount(mask.ravel())  # class indices are >= 0 (255 = ignore)
    values = np.flatnonzero(counts)
    return (image.height, image.width), image.mode, dict(zip(values.tolist(), counts[values].tolist()))


def audit_dataset(dataset, *, workers: int | None = None,
                  show_progress: bool | None = None) -> Audit:
    """Open every pair of ``dataset`` once; return an ``Audit`` listing every problem.

    ``dataset``: a segkit dataset (``segkit.data.SegmentationPairs`` or a subclass:
    ``image_paths``, ``mask_paths`` and ``mask_indices``), read without its transform.
    ``workers``: threads (default: up to 4). Raises nothing itself: call
    ``raise_if_problems()`` on the result, or leave out its ``bad_indices``.
    """
    if not all(hasattr(dataset, a) for a in ("image_paths", "mask_paths", "mask_indices")):
        raise TypeError(f"audit_dataset reads segkit datasets (image_paths, mask_paths, "
                        f"mask_indices); got a {type(dataset).__name__}")
    workers = workers or min(4, os.cpu_count() or 1)
    report = Audit()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda i: _audit_pair(dataset, i), range(len(dataset)))
        for i, result in enumerate(progress(results, desc="auditing data", total=len(dataset),
                                            enabled=show_progress)):
            report.n_pairs += 1
            if isinstance(result[0], str):
                report.problems.append((i, result[0], result[1]))
                continue
            size, mode, pixels = result
            report.sizes[size] += 1
            report.modes[mode] += 1
            report.pixels.update(pixels)
    _add_notes(report, getattr(dataset, "num_classes", None))
    return report


#: Images with a side shorter than this are called out: a 1x1 "image" is a broken file.
TINY_SIDE = 8


def _add_notes(report: Audit, num_classes: int | None) -> None:
    labelled = {c: n for c, n in report.pixels.items() if c != IGNORE}
    total = sum(labelled.values())
    if total and num_classes in (None, 2) and labelled.get(1, 0) / total > 0.5:
        share = labelled.get(1, 0) / total
        report.notes.append(
            f"the foreground (class 1) covers {share:.0%} of the pixels: a model that marks "
            f"everything as foreground already scores Dice {2 * share / (1 + share):.3f}. If "
            "the object you want is the other value, say so with --foreground VALUE.")
    if len(report.sizes) > 1:
        report.notes.append(f"images come in {len(report.sizes)} sizes; all are resized to "
                            "the training size")
    tiny = {size: n for size, n in report.sizes.items() if min(size) < TINY_SIDE}
    if tiny:
        (h, w) = min(tiny, key=lambda size: size[0] * size[1])
        report.notes.append(f"{sum(tiny.values())} image(s) are smaller than {TINY_SIDE} pixels "
                            f"on a side (the smallest {w}x{h}): blown up to the training size, "
                            "they hold almost nothing to learn from. Are they thumbnails, or "
                            "files cut short?")
    if num_classes and num_classes > 2 and total:
        absent = [c for c in range(num_classes) if c not in labelled]
        if absent:
            report.notes.append(f"classes {absent} never appear in these masks")
