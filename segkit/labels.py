"""What the values in your mask files mean: classes, foreground, ignore, colours.

A ``MaskSpec`` says it once for a whole dataset and reads every mask the same way:

- binary data (``num_classes`` 2 or left out): which file value is the object
  (``foreground``); without it {0, 1} and {0, 255} read as usual (1 / 255 = object).
  Say it when the object is the *smaller* region you care about but carries value 0,
  or when masks hold other values: binary Dice scores the foreground class only, so
  on data where class 1 covers most pixels a model that marks everything as
  foreground still scores high. Pick the foreground you want to find.
- multiclass data: ``num_classes`` (or the names in a class-names file), palette PNGs
  read as their indices, grey masks as values, RGB masks through a colour map
  (from a VOC-style labelmap file, default the VOC colours);
- ``ignore_value``: a file value that marks pixels nobody labelled (VOC's 255
  borders; also for binary data). It becomes 255, skipped by loss and metrics;
- ``value_map``: file value -> class, e.g. {0: 0, 128: 1, 255: 2}.

Class-names files read by ``read_class_names``: labelme's ``class_names.txt`` (one name
a line, ``_background_`` first, ``__ignore__`` skipped) and a VOC-style ``labelmap.txt``
(``name:r,g,b::`` a line, as CVAT exports it), which also gives the colour of each class.

Masks come out as (H, W) int64 class indices, 255 = ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.errors import DataError
from segkit.imageio import open_image
from segkit.masks import (check_num_classes, is_gray, likely_cause, mask_array, mask_to_index,
                          show_values)

__all__ = ["IGNORE", "MaskSpec", "read_class_names", "parse_value_map"]

IGNORE = 255  # the label the loss and the metrics skip


def _distinct(array: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an array; fast for 8-bit masks (a histogram, no sort)."""
    if array.dtype == np.uint8:
        return np.flatnonzero(np.bincount(array.ravel(), minlength=256))
    return np.unique(array)


def read_class_names(path: str | Path) -> tuple[list[str], dict[tuple[int, int, int], int] | None]:
    """Class names (and colours, for a labelmap) from a labelme or VOC-style file.

    Returns: (names, colormap) with names[i] the name of class i and colormap
    {(r, g, b): i} for a labelmap file, None for a plain list of names.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class-names file not found: {path}")
    names: list[str] = []
    colours: dict[tuple[int, int, int], int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"class-names file {path} is not text (byte {exc.start} is "
                        f"{exc.object[exc.start]:#04x}): give the class_names.txt or "
                        "labelmap.txt file, one class a line") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line == "__ignore__":
            continue
        if ":" in line:  # labelmap: name:r,g,b:parts:actions
            name, colour = line.split(":")[:2]
            try:
                rgb = tuple(int(c) for c in colour.split(","))
            except ValueError:
                rgb = ()
            if len(rgb) != 3:
                raise DataError(f"{path}, line {number}: expected name:r,g,b (a VOC-style "
                                f"labelmap line such as 'cat:64,0,0::'), found {raw!r}")
            colours[rgb] = len(names)
            names.append(name.strip())
        else:
            names.append(line)
    if not names:
        raise DataError(f"{path} names no classes (expected one name a line, background first)")
    return names, (colours or None)


def parse_value_map(text: str) -> dict[int, int]:
    """'0:0,128:1,255:2' -> {0: 0, 128: 1, 255: 2} (file value: class)."""
    mapping: dict[int, int] = {}
    for item in text.split(","):
        try:
            value, cls = (int(v) for v in item.split(":"))
        except ValueError:
            raise DataError(f"value map must look like 0:0,255:1 (file value:class), got "
                            f"{text!r}") from None
        mapping[value] = cls
    return mapping


@dataclass
class MaskSpec:
    """How to read every mask of a dataset (see the module docstring).

    Attributes:
        num_classes: classes the model predicts (2 or None = binary).
        foreground: binary only: the file value that marks the object.
        ignore_value: a file value meaning "not labelled" (becomes 255).
        class_names: names of the classes, index order.
        colormap: {(r, g, b): class} for RGB masks; None = the VOC colours.
        value_map: {file value: class} for grey or palette masks.
    """

    num_classes: int | None = None
    foreground: int | None = None
    ignore_value: int | None = None
    class_names: list[str] | None = None
    colormap: dict[tuple[int, int, int], int] | None = None
    value_map: dict[int, int] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.class_names is not None and self.num_classes is None:
            self.num_classes = len(self.class_names)
        if self.value_map and self.num_classes is None:
            self.num_classes = max(c for c in self.value_map.values() if c != IGNORE) + 1
        if self.foreground is not None and not self.binary:
            raise DataError(f"foreground={self.foreground} is for binary masks, but "
                            f"num_classes is {self.num_classes}; leave one of them out")

    @property
    def has_ignore(self) -> bool:
        """True when some masks may hold 255 (ignore): the loss must leave those out."""
        return self.ignore_value is not None or IGNORE in (self.value_map or {}).values()

    @property
    def binary(self) -> bool:
        return self.num_classes in (None, 2)

    def read(self, path: str | Path) -> np.ndarray:
        """The mask file at ``path`` as (H, W) int64 class indices, 255 = ignore."""
        return self.to_index(open_image(path), path)

    def to_index(self, mask: Image.Image | np.ndarray, path: str | Path | None = None
                 ) -> np.ndarray:
        """A mask image (or array) as (H, W) int64 class indices, 255 = ignore; ``path``
        names the file in error messages."""
        array, kind = mask_array(mask, path)
        if kind == "rgb" and is_gray(array):  # a grey mask saved as RGB
            array, kind = array[..., 0], "gray"
        if self.value_map is not None and kind != "rgb":
            return self._mapped(array, path)
        if self.binary and kind != "rgb":
            return self._binary(array, path)
        if kind == "rgb":
            return mask_to_index(array, convention="rgb", colormap=self.colormap,
                                 num_classes=self.num_classes, path=path)
        if self.ignore_value is not None:
            array = np.where(array == self.ignore_value, IGNORE, array)
        return mask_to_index(array, convention="index", num_classes=self.num_classes,
                             path=path)  # mask_to_index checks the class indices

    def _ignored(self, index: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        if self.ignore_value is not None and values is not None:
            index = np.where(values == self.ignore_value, IGNORE, index)
        return index

    def _mapped(self, array: np.ndarray, path) -> np.ndarray:
        values = np.unique(array)
        unknown = [v for v in values.tolist() if v not in self.value_map and v != self.ignore_value]
        if unknown:
            raise DataError(f"mask {path}: values {show_values(np.array(unknown))} are not in "
                            f"the value map {self.value_map}: add them to --mask-values. "
                            + likely_cause(values))
        lookup = np.zeros(int(values.max()) + 1, dtype=np.int64)
        for value, cls in self.value_map.items():
            if value <= values.max():
                lookup[value] = cls
        index = self._ignored(lookup[array], array)
        if self.num_classes is not None:
            check_num_classes(index, self.num_classes, IGNORE, path)
        return index

    def _binary(self, array: np.ndarray, path) -> np.ndarray:
        values = set(_distinct(array).tolist()) - {self.ignore_value}
        if self.foreground is None:
            if values <= {0, 1}:  # the common case, without a second pass over the pixels
                return self._ignored(array.astype(np.int64), array)
            labelled = array if self.ignore_value is None else \
                np.where(array == self.ignore_value, 0, array)
            index = mask_to_index(labelled, convention="binary", path=path)
            return self._ignored(index, array)
        if self.foreground not in values and len(values) > 1:
            raise DataError(
                f"mask {path}: --foreground {self.foreground} is not one of its values "
                f"{show_values(np.array(sorted(values)))}: give the object's value (e.g. "
                f"--foreground {max(values)}).")
        if len(values - {self.foreground}) > 1:
            raise DataError(
                f"mask {path}: foreground is {self.foreground}, so every other value is the "
                f"background, but the mask holds {len(values)} values "
                f"{show_values(np.array(sorted(values)))}. "
                + likely_cause(np.array(sorted(values))))
        return self._ignored((array == self.foreground).astype(np.int64), array)

