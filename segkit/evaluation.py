"""Score a checkpoint on a labelled folder: summary, per-image CSV, figure of the worst images.

``evaluate_folder(checkpoint, images, masks, out_dir)`` predicts every image at its own
size (as ``segkit predict`` does, tiles included) and compares with its mask:

- binary: Dice and IoU of the foreground per image (their mean) and pooled over all
  pixels, pixel accuracy, and Dice and IoU of *both* classes (the background is what
  you are after when it is the membranes of an EM slice);
- multiclass: IoU and Dice of every class by name (pooled over the folder), mIoU, pixel
  accuracy.

It writes ``per_image.csv`` (one row per image, worst first; with the checkpoint's split,
a column saying which images were validation) and ``worst.png`` (image, truth, prediction
of the worst images). ``evaluate_split(checkpoint)`` scores the validation images of your
own folders that the checkpoint recorded (``--data-root`` when they moved).

Masks are read as the checkpoint's training read them (its foreground, ignore value, value
map, class names). Options that read them otherwise (``spec``: ``--foreground 0``, another
value map) apply to the prediction too: each of the model's classes is translated into
the class those options give the same pixels, so that the scores compare like with like.
Pixels labelled 255 (ignore) are not scored.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from segkit.audit import MaskShape, region_of_interest_note
from segkit.checkpoint import load_checkpoint, model_from_checkpoint
from segkit.data import PairedFolderDataset
from segkit.errors import DataError
from segkit.imageio import open_image
from segkit.labels import IGNORE, MaskSpec
from segkit.metrics import confusion_matrix, dice_per_class, iou_per_class
from segkit.predict import predict_mask

__all__ = ["FolderScores", "evaluate_folder", "evaluate_split", "spec_from_checkpoint",
           "class_translation"]


@dataclass
class FolderScores:
    """What ``evaluate_folder`` found: ``summary`` figures, ``rows`` per image, files written.

    ``per_class``: {class name: {"dice": ..., "iou": ...}} pooled over the folder (both
    classes of binary masks too); ``per_class_iou``: the IoUs in class order (multiclass).
    ``notes``: what was paired and how, and warnings (masks that look like a region of
    interest rather than labels).
    """

    summary: dict[str, float]
    rows: list[dict] = field(default_factory=list)
    per_class_iou: list[float] | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    csv_path: Path | None = None
    figure_path: Path | None = None
    skipped: list[str] = field(default_factory=list)  # pairs that could not be read: why
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.rows)} images:"]
        lines += [f"  {k:<14} {v:.4f}" for k, v in self.summary.items()]
        if self.per_class:
            width = max(len(name) for name in self.per_class) + 2
            lines.append(f"  per class, pooled over the images:\n    {'':<{width}}Dice    IoU")
            lines += [f"    {name:<{width}}{v['dice']:.4f}  {v['iou']:.4f}"
                      for name, v in self.per_class.items() if v["iou"] == v["iou"]]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} pair(s) could not be read and are not scored:")
            lines += [f"    {why}" for why in self.skipped]
        return "\n".join(lines)


def spec_from_checkpoint(ckpt: dict, **given) -> MaskSpec:
    """The MaskSpec a checkpoint's training used (binary 0/1 or 0/255 when it says nothing),
    with the options in ``given`` (those not None: num_classes, class_names, foreground,
    ignore_index, mask_values) in place of the training's."""
    from segkit.owndata import mask_spec

    info = ckpt.get("data") or {}
    classes = int(info.get("num_classes", 1))
    names = info.get("class_names")
    options = {"num_classes": None if classes <= 2 else classes,
               "class_names": names if names and Path(names).is_file() else None,
               "foreground": info.get("foreground"), "ignore_index": info.get("ignore_index"),
               "mask_values": info.get("mask_values")}
    given = {k: v for k, v in given.items() if v is not None}
    if "num_classes" in given or "mask_values" in given or "class_names" in given:
        options.update(num_classes=None, class_names=None, foreground=None, mask_values=None)
    options.update(given)
    return mask_spec(**options, log=lambda _: None)


def class_translation(mask_paths, trained: MaskSpec, wanted: MaskSpec,
                      model_classes: int) -> np.ndarray | None:
    """lookup (model_classes,) int64: lookup[c] = the class ``wanted`` gives the pixels that
    ``trained`` (the checkpoint's reading) calls c, learned from the masks themselves;
    None when both read the masks the same way. A class found in no mask keeps its index.

    Raises DataError when ``wanted`` splits one of the model's classes (its class 0 covers
    values that ``wanted`` calls 0 and 2: the model cannot tell them apart), or when the
    masks cannot be read as the training read them.
    """
    if trained == wanted:
        return None
    seen: dict[int, set[int]] = defaultdict(set)
    for path in mask_paths:
        raw = open_image(path)
        try:
            t = trained.to_index(raw, path)
        except DataError as err:
            raise DataError("these masks cannot be read as the checkpoint's training read "
                            "them, so its classes cannot be matched with the options given: "
                            f"{str(err).splitlines()[0]}") from None
        w = wanted.to_index(raw, path)
        both = (t != IGNORE) & (w != IGNORE)
        for code in np.unique(t[both] * 256 + w[both]).tolist():
            seen[code // 256].add(code % 256)
    split = {c: sorted(v) for c, v in seen.items() if len(v) > 1}
    if split:
        c, v = next(iter(split.items()))
        raise DataError(f"the options given split what the checkpoint learned as one class: "
                        f"its class {c} covers pixels they call classes {v}, which the model "
                        "cannot tell apart. Score with the options it was trained with.")
    lookup = np.arange(model_classes, dtype=np.int64)
    for c, v in seen.items():
        if c < model_classes:
            lookup[c] = next(iter(v))
    return lookup


def class_names(ckpt: dict, spec: MaskSpec, n: int) -> list[str]:
    """Names of the ``n`` classes scored: the class-names file's, the checkpoint's, or
    'background' / 'foreground' for binary masks and 'class i' otherwise."""
    names = spec.class_names or (ckpt.get("data") or {}).get("classes")
    if names and len(names) == n:
        return [f"{i} {name}" for i, name in enumerate(names)]
    if n == 2:
        fg = "" if spec.foreground is None else f", value {spec.foreground}"
        return ["0 background", f"1 foreground{fg}"]
    return [f"class {i}" for i in range(n)]


def _binary_row(pred: np.ndarray, truth: np.ndarray) -> dict:
    valid = truth != IGNORE
    p, t = (pred == 1) & valid, (truth == 1) & valid
    inter, total, union = (p & t).sum(), p.sum() + t.sum(), (p | t).sum()
    return {"dice": 1.0 if total == 0 else 2 * inter / total,
            "iou": 1.0 if union == 0 else inter / union,
            "accuracy": float(((pred == truth) & valid).sum() / max(valid.sum(), 1)),
            "_counts": (int(inter), int(total), int(union))}


@dataclass
class _Scoring:
    """What one evaluation needs besides the images: the model and how to read its output."""

    model: torch.nn.Module
    info: dict
    device: str | torch.device
    threshold: float
    n: int                          # classes scored (2 for binary masks)
    lookup: np.ndarray | None       # model class -> scored class (None: the same)
    split: dict[str, str] | None    # image name -> "train" / "val", when known

    def predict(self, image) -> np.ndarray:
        pred = predict_mask(self.model, image, self.info, self.device, threshold=self.threshold)
        return pred if self.lookup is None else self.lookup[pred]


def _score_pairs(ds, scoring: _Scoring):
    """(rows, confusion matrix, skipped, mask shapes) over the pairs of ``ds``."""
    cm = torch.zeros(scoring.n, scoring.n, dtype=torch.int64)
    rows, skipped, shapes = [], [], []
    for i in range(len(ds)):
        try:
            image, truth = ds.load_pair(i)
        except DataError as err:
            skipped.append(str(err).splitlines()[0])
            continue
        truth = truth.numpy()
        pred = scoring.predict(image)
        cm += confusion_matrix(torch.from_numpy(pred), torch.from_numpy(truth), scoring.n,
                               ignore_index=IGNORE)
        row = {"image": ds.image_paths[i].name, "mask": ds.mask_paths[i].name}
        if scoring.split is not None:
            row["split"] = scoring.split.get(row["image"], "not used")
        if scoring.n == 2:
            row.update(_binary_row(pred, truth))
            shapes.append(MaskShape.of(truth))
        else:
            valid = truth != IGNORE
            row["accuracy"] = float(((pred == truth) & valid).sum() / max(valid.sum(), 1))
        rows.append(row)
    return rows, cm, skipped, shapes


def evaluate_dataset(checkpoint: str | Path, ds, out_dir: str | Path | None = None, *,
                     device: str | torch.device = "cpu", threshold: float = 0.5,
                     worst: int = 4, split: dict[str, str] | None = None) -> FolderScores:
    """Score ``checkpoint`` on the pairs of ``ds`` (a segkit dataset of paired files whose
    ``spec`` says how to read the masks); see the module docstring. ``split``: image name
    -> "train" / "val", written to per_image.csv."""
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    model = model_from_checkpoint(ckpt, device)
    model_classes = max(int(info.get("num_classes", 1)), 2)
    spec = ds.spec or spec_from_checkpoint(ckpt)
    lookup = class_translation(ds.mask_paths, spec_from_checkpoint(ckpt), spec, model_classes)
    n = spec.num_classes or 2
    scoring = _Scoring(model, info, device, threshold, n, lookup, split)
    rows, cm, skipped, shapes = _score_pairs(ds, scoring)
    if not rows:
        raise DataError("no pair could be read:\n" + "\n".join(skipped[:5]))
    result = _summarise(rows, cm, class_names(ckpt, spec, n))
    result.skipped = skipped
    roi = region_of_interest_note(shapes)
    result.notes += [roi] if roi else []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.csv_path = _write_csv(result.rows, out / "per_image.csv")
        result.figure_path = _worst_figure(ds, result.rows[:worst], scoring, out / "worst.png")
    return result


def evaluate_folder(checkpoint: str | Path, images: str | Path, masks: str | Path,
                    out_dir: str | Path | None = None, *, spec: MaskSpec | None = None,
                    pairing: dict | None = None, device: str | torch.device = "cpu",
                    threshold: float = 0.5, worst: int = 4,
                    split: dict[str, str] | None = None) -> FolderScores:
    """Score ``checkpoint`` on the pairs of ``images`` and ``masks`` (module docstring).

    ``spec``: how to read the masks (default: as the checkpoint's training did);
    ``pairing``: the options of ``segkit.folders.pair_folders``. The result's first note
    says how the folders were paired (with examples when not by identical names).
    """
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    ds = PairedFolderDataset(images, masks, spec=spec or spec_from_checkpoint(ckpt),
                             image_mode=info.get("image_mode", "RGB"),
                             **{k: v for k, v in (pairing or {}).items() if v is not None})
    result = evaluate_dataset(checkpoint, ds, out_dir, device=device, threshold=threshold,
                              worst=worst, split=split)
    result.notes.insert(0, ds.pairing.describe(images, masks))
    return result


def evaluate_split(checkpoint: str | Path, out_dir: str | Path | None = None, *,
                   data_root: str | Path | None = None, spec: MaskSpec | None = None,
                   device: str | torch.device = "cpu", threshold: float = 0.5) -> FolderScores:
    """Score the validation images of the own-folder run that wrote ``checkpoint``: the
    pairs its ``data["split"]`` names, found in the folders it trained on (or, after a
    move, under ``data_root``: ``segkit.owndata.own_folders``)."""
    from segkit.owndata import own_folders, validation_pairs

    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    folders = own_folders(info, data_root, checkpoint)
    saved = ckpt.get("train_config") or {}
    ds, note = validation_pairs(info, folders, spec or spec_from_checkpoint(ckpt),
                                (saved.get("val_fraction", 0.2), saved.get("seed", 0)))
    split = {p.name: "val" for p in ds.image_paths}
    result = evaluate_dataset(checkpoint, ds, out_dir, device=device, threshold=threshold,
                              split=split)
    result.notes.insert(0, note)
    return result


def _summarise(rows: list[dict], cm: torch.Tensor, names: list[str]) -> FolderScores:
    accuracy = float(cm.diag().sum() / cm.sum().clamp_min(1))
    dice, iou = dice_per_class(cm), iou_per_class(cm)
    per_class = {name: {"dice": float(d), "iou": float(j)}
                 for name, d, j in zip(names, dice.tolist(), iou.tolist())}
    if len(names) == 2:
        inter, total, union = (sum(r["_counts"][j] for r in rows) for j in range(3))
        summary = {"dice": float(np.mean([r["dice"] for r in rows])),
                   "iou": float(np.mean([r["iou"] for r in rows])),
                   "dice_pooled": 2 * inter / total if total else 1.0,
                   "iou_pooled": inter / union if union else 1.0, "accuracy": accuracy}
        for r in rows:
            del r["_counts"]
        rows.sort(key=lambda r: r["dice"])
        return FolderScores(summary, rows, per_class=per_class)
    summary = {"miou": float(iou[~iou.isnan()].mean()), "accuracy": accuracy}
    rows.sort(key=lambda r: r["accuracy"])
    return FolderScores(summary, rows, per_class_iou=iou.tolist(), per_class=per_class)


def _write_csv(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)
    return path


def _worst_figure(ds, rows, scoring: _Scoring, path: Path) -> Path:
    """image | truth | prediction for each row (the worst images), as a PNG."""
    import matplotlib.pyplot as plt

    from segkit.imageio import to_uint8

    index = {p.name: i for i, p in enumerate(ds.image_paths)}
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        i = index[row["image"]]
        image = ds.load_image(i)
        truth = ds.load_mask(i).numpy()
        pred = scoring.predict(image)
        score = f"Dice {row['dice']:.3f}" if "dice" in row else f"acc {row['accuracy']:.3f}"
        low, high = image.min(), image.max()  # stretched for the eye (a 12-bit scan is dark)
        shown_image = to_uint8((image - low) / (high - low) if high > low else image)
        for ax, shown, title in zip(ax_row, (shown_image, truth, pred),
                                    (row["image"], "truth", f"prediction ({score})")):
            ax.imshow(shown, interpolation="nearest", vmin=0,
                      vmax=None if shown.ndim == 3 else max(scoring.n - 1, 1))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
