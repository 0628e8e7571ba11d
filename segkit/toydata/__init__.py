"""Generated toy datasets, written in the real datasets' layouts.

The course runs offline on three small datasets drawn by code, deterministic
from a seed. Each is written to disk exactly as its real counterpart is laid
out, so the loading code of the lessons reads the real data unchanged:

========  ==========================================  ==========================
name      what                                        real counterpart
========  ==========================================  ==========================
carvana   cars on a studio turntable, JPEG + GIF      Kaggle Carvana
seasky    infrared horizons, grey PNG + 0/255 mask    sea/sky IR (Oxford Pet layout)
voc       4 object classes, VOC palette PNGs + 255    Pascal VOC 2012
========  ==========================================  ==========================

>>> from segkit import toydata
>>> root = toydata.generate("carvana", "data/carvana")   # or: segkit generate carvana data/carvana
>>> root = toydata.embedded_root("carvana")              # the copy shipped with the course

See ``datasets/README.md`` for the dataset cards.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from segkit.errors import DataError
from segkit.toydata.carvana import generate_carvana
from segkit.toydata.cells import generate_cells
from segkit.toydata.seasky import generate_seasky
from segkit.toydata.voc import VOC_TOY_CLASSES, generate_voc, voc_colormap

__all__ = ["DATASETS", "ToyDataset", "generate", "embedded_root", "VOC_TOY_CLASSES", "voc_colormap"]


@dataclass(frozen=True)
class ToyDataset:
    """What :func:`generate` needs to know about one toy dataset."""

    name: str
    make: Callable[..., Path]          # make(root, n=..., size=(h, w), seed=...) -> root
    default_n: int
    default_size: tuple[int, int]      # (height, width)
    writes: tuple[str, ...]            # the files and folders it creates under root
    description: str


DATASETS: dict[str, ToyDataset] = {
    "carvana": ToyDataset("carvana", generate_carvana, 192, (160, 240),
                          ("train", "train_masks", "train_masks.csv", "metadata.csv"),
                          "cars on a studio turntable: train/<id>_NN.jpg + train_masks/<id>_NN_mask.gif "
                          "(0 background, 1 car)"),
    "seasky": ToyDataset("seasky", generate_seasky, 160, (120, 160), ("images", "masks"),
                         "infrared horizons: images/<name>.png + masks/<name>_mask.png "
                         "(0 sky, 255 sea)"),
    "voc": ToyDataset("voc", generate_voc, 160, (120, 160), ("VOCdevkit",),
                      "4 object classes in Pascal VOC 2012's layout: palette PNGs with 0..4 and "
                      "255 borders"),
}

#: Toy folders that are generated when needed and have no committed copy (lesson 09).
GENERATE_ONLY: dict[str, ToyDataset] = {
    "cells": ToyDataset("cells", generate_cells, 64, (96, 96), ("scans", "labels"),
                        "your own data, awkward: scans/<id>_scan.tif (16-bit) + "
                        "labels/<id>_cells.gif and <id>_scan_roi.gif, one broken TIFF"),
}

REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _lookup(name: str) -> ToyDataset:
    known = {**DATASETS, **GENERATE_ONLY}
    if name not in known:
        raise DataError(f"unknown toy dataset {name!r}: the known ones are "
                        f"{', '.join(repr(k) for k in known)}")
    return known[name]


def generate(name: str, root: str | Path, *, n: int | None = None, size: tuple[int, int] | None = None,
             seed: int = 0, overwrite: bool = False) -> Path:
    """Write toy dataset ``name`` under ``root``; returns root (a Path).

    Args:
        name: "carvana", "seasky" or "voc" (see DATASETS).
        root: the folder to write; it must be empty or missing, unless ``overwrite``.
        n: number of images (default: 192 carvana, 160 seasky, 160 voc). Carvana rounds
            it to whole cars of 4 views.
        size: (height, width) of the images, as everywhere in segkit (default: (160, 240)
            carvana, (120, 160) the others; the command line's ``--size`` is W x H).
        seed: the same seed writes the same dataset.
        overwrite: allow a non-empty ``root``. The files and folders this dataset writes
            (e.g. ``train/`` and ``train_masks/`` for carvana) are deleted first;
            anything else in ``root`` is left alone.

    Raises:
        DataError: unknown name, bad n or size, or a non-empty root without overwrite=True.
    """
    spec = _lookup(name)
    root = Path(root).expanduser()
    n = spec.default_n if n is None else n
    size = spec.default_size if size is None else size
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"n must be a whole number of images >= 1, got {n!r}")
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DataError(f"size must be (height, width), two whole numbers, got {size!r}") from None
    if width < 16 or height < 16:
        raise DataError(f"size (height, width) = {size!r} is too small: at least 16 x 16 pixels")
    if root.exists() and not root.is_dir():
        raise DataError(f"cannot write toy {name} to {root}: it is a file, not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise DataError(f"cannot write toy {name} to {root}: the folder is not empty. "
                            f"Pick an empty or new folder, or pass overwrite=True "
                            f"(segkit generate ... --overwrite) to replace "
                            f"{', '.join(spec.writes)} there.")
        for entry in spec.writes:
            path = root / entry
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    spec.make(root, n=n, size=(height, width), seed=int(seed))
    return root


def embedded_root(name: str) -> Path:
    """Folder of the embedded copy of toy dataset ``name`` (default parameters, seed 0).

    In the course repository that is ``<repo>/datasets/toy_<name>`` (committed). When
    segkit is installed without the repository (e.g. ``pip install`` from git in
    Colab), that folder does not exist: the dataset is generated once into
    ``~/.cache/segkit/toy_<name>`` (or ``$SEGKIT_DATA/toy_<name>`` if the environment
    variable SEGKIT_DATA is set) and that folder is returned from then on.
    """
    _lookup(name)
    committed = REPO_DATASETS / f"toy_{name}"
    if committed.is_dir() and any(committed.iterdir()):
        return committed
    base = Path(os.environ.get("SEGKIT_DATA") or Path.home() / ".cache" / "segkit").expanduser()
    target = base / f"toy_{name}"
    if target.is_dir() and any(target.iterdir()):
        return target
    # write to a temporary folder and rename it: a half-written dataset is never used
    tmp = base / f".toy_{name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    generate(name, tmp)
    try:
        if target.is_dir() and not any(target.iterdir()):   # an empty folder left behind
            target.rmdir()
        os.replace(tmp, target)
    except OSError:
        if not (target.is_dir() and any(target.iterdir())):  # not another process's copy
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target
