"""Audit a whole dataset before the first epoch: every problem at once, not one a crash.

``audit_dataset(ds)`` opens every image and mask of a segkit dataset once (in a few
threads: PIL decodes without holding Python's lock), with a progress bar, and returns an
``Audit`` that lists:

- files that cannot be read (cut short, not an image, a mode that cannot be read
  faithfully, several frames);
- an image and its mask of different sizes;
- mask values that do not fit what you said they mean (a JPEG-compressed mask, 0/255
  read as class indices, a class index beyond the number of classes);

and a few notes (masks that look like a region of interest, a field of view, rather than
labels: nearly the same in every image, or one simple region covering most of it; the
foreground covers most pixels: Dice then rewards "everything is foreground"; image sizes
differ; classes that never appear). Each problem names the file, the value, the likely
cause and the option that fixes it; a kind of problem found in many pairs is shown by a
few examples, a count, and the cause that fits the values seen in all of them (values
0..11 read as binary masks are class indices: ``--num-classes 12``). ``segkit train`` audits
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
from segkit.masks import likely_cause, mask_array
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
    "colours": "a few colours of your own: name each class and its colour in a labelmap "
               "file, one 'name:r,g,b' a line, and pass --class-names FILE; hundreds of "
               "colours: a JPEG-compressed mask (use PNG) or a mask resized with bilinear "
               "interpolation (use nearest); or --drop-bad-files",
}
#: How an error about a colour mask starts its list of colours (segkit.masks).
UNKNOWN_COLOURS = "colours are not in the colour map"
SHOWN = 3  # problems of a kind shown as examples; the rest are counted


@dataclass
class MaskShape:
    """What a binary mask looks like, to tell labels from a region of interest.

    ``coverage``: share of the labelled pixels that are class 1; ``edges``: class changes
    between neighbouring pixels over sqrt(class-1 pixels) (about 4 for one disc or
    square, tens for many small objects); ``thumbnail``: class 1 on a 32x32 grid.
    """

    coverage: float
    edges: float
    thumbnail: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> MaskShape:
        """The shape of an (H, W) class-index mask (255 = ignore)."""
        fg, valid = mask == 1, mask != IGNORE
        changes = np.count_nonzero(fg[:, 1:] != fg[:, :-1]) + np.count_nonzero(fg[1:] != fg[:-1])
        h, w = mask.shape
        grid = np.ix_((np.arange(32) * h) // 32, (np.arange(32) * w) // 32)
        return cls(float(fg.sum() / max(valid.sum(), 1)), changes / max(np.sqrt(fg.sum()), 1.0),
                   fg[grid])


def _agreement(stack: np.ndarray) -> float:
    """Mean IoU of each (32, 32) bool map of ``stack`` with their majority map."""
    consensus = stack.mean(0) >= 0.5
    return float(np.mean([(t & consensus).sum() / max((t | consensus).sum(), 1) for t in stack]))


def region_of_interest_note(shapes: list[MaskShape]) -> str | None:
    """A warning when binary masks look like regions of interest (a field of view, a tissue
    outline) rather than labels: nearly the same in every image (both the region and what
    lies outside it), or one simple region covering most of each. None when they do not."""
    if len(shapes) < 3:
        return None
    stack = np.stack([s.thumbnail for s in shapes])
    iou = min(_agreement(stack), _agreement(~stack))  # a class covering 95 % of every
    cover = float(np.mean([s.coverage for s in shapes]))  # image is not "the same" alone
    simple = float(np.median([s.edges for s in shapes])) <= 8
    same = iou >= 0.9
    if not (same or (simple and iou >= 0.8 and min(s.coverage for s in shapes) >= 0.6)):
        return None
    return (f"warning: these masks look like regions of interest (a field of view, a tissue "
            f"outline), not labels: each is {'nearly the same' if same else 'one simple region'}"
            f" in every image (IoU {iou:.2f} with their average) and covers {cover:.0%} of it. "
            "If the labels are in another folder or have other names, pair those instead "
            "(--masks DIR, --mask-pattern)")


@dataclass
class Audit:
    """What ``audit_dataset`` found.

    Attributes:
        n_pairs: pairs opened.
        problems: (pair index, kind, text); kind is "unreadable", "size" or "values".
        sizes: Counter of image sizes (H, W).
        modes: Counter of image modes ("RGB", "L", "I;16", ...).
        pixels: Counter {class index: pixels} over the good masks (255 = ignore).
        notes: things worth knowing that are not errors (warnings first).
        bad_values: the distinct file values of the masks whose values did not fit.
        num_classes: what the masks were read as (None or 2: binary).
    """

    n_pairs: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    pixels: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    bad_values: set = field(default_factory=set)
    num_classes: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_indices(self) -> list[int]:
        return sorted({i for i, _, _ in self.problems})

    def summary(self) -> str:
        lines = [f"audited {self.n_pairs} pairs: {len(self.bad_indices)} with problems"]
        if self.sizes:  # (none when every pair had a problem)
            sizes = ", ".join(f"{w}x{h}: {n}" for (h, w), n in self.sizes.most_common(3))
            modes = ", ".join(f"{m}: {n}" for m, n in self.modes.most_common())
            total = sum(n for c, n in self.pixels.items() if c != IGNORE) or 1
            share = ", ".join(f"{c}: {n / total:.1%}" for c, n in sorted(self.pixels.items())
                              if c != IGNORE)
            lines += [f"  image sizes (W x H): {sizes}" + (" ..." if len(self.sizes) > 3 else ""),
                      f"  image modes: {modes}", f"  classes (share of labelled pixels): {share}"]
        return "\n".join(lines + [f"  note: {n}" if not n.startswith("warning") else f"  {n}"
                                   for n in self.notes])

    def fix(self, kind: str) -> str:
        """The fix of a kind of problem; for mask values, the cause that fits the values
        seen in every mask that did not fit (class indices, JPEG, ...)."""
        if kind == "values" and self.bad_values:
            return f"{likely_cause(sorted(self.bad_values), self.num_classes)}; or --drop-bad-files"
        if kind == "values" and any(UNKNOWN_COLOURS in t for _, k, t in self.problems if k == kind):
            return FIXES["colours"]
        return FIXES[kind]

    def problem_lines(self, kind: str, prefix: str = "  - ") -> list[str]:
        """The first problems of ``kind`` (one line each), then how many more there are."""
        found = [text for _, k, text in self.problems if k == kind]
        if kind == "values":  # the cause is said once, in the fix
            found = [text.split(" Likely:")[0].split(" Expected only")[0] for text in found]
        lines = [prefix + text.splitlines()[0] for text in found[:SHOWN]]
        if len(found) > SHOWN:
            lines.append(f"{prefix}... and {len(found) - SHOWN} more")
        return lines

    def __str__(self) -> str:
        lines = [self.summary()]
        for kind in ("unreadable", "size", "values"):
            count = sum(1 for _, k, _ in self.problems if k == kind)
            if count:
                lines.append(f"{count} problem(s) of kind '{kind}' (fix: {self.fix(kind)}):")
                lines += self.problem_lines(kind)
        return "\n".join(lines)

    __repr__ = __str__

    def raise_if_problems(self) -> None:
        """Raise one DataError listing the problems (if there are any): a few of each kind,
        the count of the rest, the likely cause and the option that fixes them."""
        if self.problems:
            raise DataError(str(self))


def _file_values(mask_file) -> set[int]:
    """The distinct values of a mask file (grey or palette), for the cause of a problem;
    empty for colour masks (their colours are listed by the error itself)."""
    array, kind = mask_array(mask_file)
    return set() if kind == "rgb" else set(np.unique(array).tolist()[:300])


def _audit_pair(dataset, i: int, binary: bool):
    """(image size, image mode, {class: pixels}, MaskShape or None) of pair i, or
    (kind, text, values) of a problem."""
    image_path, mask_path = dataset.image_paths[i], dataset.mask_paths[i]
    try:
        image = faithful_image(image_path)
        mask_file = open_image(mask_path)
    except DataError as err:
        return "unreadable", str(err), set()
    try:
        mask = dataset.mask_indices(mask_file, mask_path)
    except DataError as err:
        return "values", str(err), _file_values(mask_file)
    if mask.shape != (image.height, image.width):
        (mh, mw) = mask.shape
        return "size", (f"{image_path} is {image.width}x{image.height} but its mask "
                        f"{mask_path.name} is {mw}x{mh} (W x H)"), set()
    counts = np.bincount(mask.ravel())  # class indices are >= 0 (255 = ignore)
    values = np.flatnonzero(counts)
    pixels = dict(zip(values.tolist(), counts[values].tolist()))
    return (image.height, image.width), image.mode, pixels, MaskShape.of(mask) if binary else None


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
    report = Audit(num_classes=getattr(dataset, "num_classes", None))
    binary = report.num_classes in (None, 2)
    shapes = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda i: _audit_pair(dataset, i, binary), range(len(dataset)))
        for i, result in enumerate(progress(results, desc="auditing data", total=len(dataset),
                                            enabled=show_progress)):
            report.n_pairs += 1
            if isinstance(result[0], str):
                report.problems.append((i, result[0], result[1]))
                report.bad_values |= result[2]
                continue
            size, mode, pixels, shape = result
            report.sizes[size] += 1
            report.modes[mode] += 1
            report.pixels.update(pixels)
            shapes += [shape] if shape is not None else []
    _add_notes(report, report.num_classes, shapes)
    return report


#: Images with a side shorter than this are called out: a 1x1 "image" is a broken file.
TINY_SIDE = 8


def _add_notes(report: Audit, num_classes: int | None, shapes: list[MaskShape]) -> None:
    labelled = {c: n for c, n in report.pixels.items() if c != IGNORE}
    total = sum(labelled.values())
    roi = region_of_interest_note(shapes)
    if roi:
        report.notes.append(roi)
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
