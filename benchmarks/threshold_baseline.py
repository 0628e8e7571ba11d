"""What does a single global threshold score on the toy datasets?

    python benchmarks/threshold_baseline.py            # the embedded copies
    python benchmarks/threshold_baseline.py --fresh    # generate them first (seed 0) into a temp dir

For each dataset the best rule "feature >= t" (or "<= t") is picked on the
training split and scored on the validation split, the same splits the
training recipe uses (segkit.data.split_indices, val_fraction 0.2, seed 0;
Carvana split by car; VOC by its ImageSets/Segmentation/{train,val}.txt).
VOC is scored as foreground (any object) vs background, void pixels (255)
left out. A U-Net that does not clearly beat these numbers has learned nothing
a threshold could not.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from segkit import toydata
from segkit.baselines import best_threshold_baseline, evaluate_threshold_baseline
from segkit.data import split_indices


def _read(paths, mode):
    return [np.asarray(Image.open(p).convert(mode)) for p in paths]


def carvana(root: Path):
    images = sorted((root / "train").glob("*.jpg"))
    masks = [root / "train_masks" / f"{p.stem}_mask.gif" for p in images]
    train, val = split_indices(len(images), 0.2, 0, groups=[p.stem[:-3] for p in images])
    pick = lambda idx, paths: [paths[i] for i in idx]  # noqa: E731
    return ((_read(pick(train, images), "RGB"), [np.asarray(Image.open(p)) for p in pick(train, masks)]),
            (_read(pick(val, images), "RGB"), [np.asarray(Image.open(p)) for p in pick(val, masks)]), None)


def seasky(root: Path):
    images = sorted((root / "images").glob("*.png"))
    masks = [root / "masks" / f"{p.stem}_mask.png" for p in images]
    train, val = split_indices(len(images), 0.2, 0)
    pick = lambda idx, paths: [paths[i] for i in idx]  # noqa: E731
    return ((_read(pick(train, images), "L"), _read(pick(train, masks), "L")),
            (_read(pick(val, images), "L"), _read(pick(val, masks), "L")), None)


def voc(root: Path):
    base = root / "VOCdevkit" / "VOC2012"

    def split(name):
        names = (base / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().split()
        return (_read([base / "JPEGImages" / f"{n}.jpg" for n in names], "RGB"),
                [np.asarray(Image.open(base / "SegmentationClass" / f"{n}.png")) for n in names])

    return split("train"), split("val"), 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="generate the datasets (seed 0) first")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.fresh else None
    print(f"{'dataset':<16}{'feature':<12}{'rule':<10}{'train Dice':>11}{'val Dice':>10}{'val IoU':>9}{'val acc':>9}")
    for name, load in (("carvana", carvana), ("seasky", seasky), ("voc", voc)):
        root = toydata.generate(name, Path(tmp.name) / name) if tmp else toydata.embedded_root(name)
        (ti, tm), (vi, vm), ignore = load(root)
        rule = best_threshold_baseline(ti, tm, ignore_index=ignore)
        score = evaluate_threshold_baseline(vi, vm, rule, ignore_index=ignore)
        label = name + ("-foreground" if name == "voc" else "")
        print(f"{label:<16}{rule['feature']:<12}{rule['direction'] + format(rule['threshold'], '.3f'):<10}"
              f"{rule['train_dice']:>11.3f}{score['dice']:>10.3f}{score['iou']:>9.3f}{score['pixel_accuracy']:>9.3f}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
