"""Score a checkpoint on a labelled folder: summary, per-image CSV, figure of the worst images.

``evaluate_folder(checkpoint, images, masks, out_dir)`` predicts every image at its own
size (as ``segkit predict`` does, tiles included) and compares with its mask:

- binary: Dice and IoU of the foreground, per image and pooled over all pixels, and
  pixel accuracy;
- multiclass: IoU of every class (pooled over the folder), mIoU, pixel accuracy.

It writes ``per_image.csv`` (one row per image, worst first) and ``worst.png`` (image,
truth, prediction of the worst images). Masks are read as the checkpoint's training
read them (its foreground, ignore value, value map, class names), unless a ``MaskSpec``
is given. Pixels labelled 255 (ignore) are not scored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from segkit.checkpoint import load_checkpoint, model_from_checkpoint
from segkit.errors import DataError
from segkit.data import PairedFolderDataset
from segkit.labels import IGNORE, MaskSpec
from segkit.metrics import confusion_matrix
from segkit.predict import predict_mask

__all__ = ["FolderScores", "evaluate_folder", "spec_from_checkpoint"]


@dataclass
class FolderScores:
    """What ``evaluate_folder`` found: ``summary`` figures, ``rows`` per image, files written."""

    summary: dict[str, float]
    rows: list[dict] = field(default_factory=list)
    per_class_iou: list[float] | None = None
    csv_path: Path | None = None
    figure_path: Path | None = None
    skipped: list[str] = field(default_factory=list)  # pairs that could not be read: why

    def __str__(self) -> str:
        lines = [f"{len(self.rows)} images:"]
        lines += [f"  {k:<14} {v:.4f}" for k, v in self.summary.items()]
        if self.per_class_iou is not None:
            lines.append("  IoU per class: " + ", ".join(
                f"{i}: {v:.3f}" for i, v in enumerate(self.per_class_iou) if v == v))
        if self.skipped:
            lines.append(f"  {len(self.skipped)} pair(s) could not be read and are not scored:")
            lines += [f"    {why}" for why in self.skipped]
        return "\n".join(lines)


def spec_from_checkpoint(ckpt: dict) -> MaskSpec:
    """The MaskSpec a checkpoint's training used (binary 0/1 or 0/255 when it says nothing)."""
    from segkit.owndata import mask_spec

    info = ckpt.get("data") or {}
    classes = int(info.get("num_classes", 1))
    return mask_spec(num_classes=None if classes <= 2 else classes,
                     foreground=info.get("foreground"), ignore_index=info.get("ignore_index"),
                     mask_values=info.get("mask_values"), log=lambda _: None)


def _binary_row(pred: np.ndarray, truth: np.ndarray) -> dict:
    valid = truth != IGNORE
    p, t = (pred == 1) & valid, (truth == 1) & valid
    inter, total, union = (p & t).sum(), p.sum() + t.sum(), (p | t).sum()
    return {"dice": 1.0 if total == 0 else 2 * inter / total,
            "iou": 1.0 if union == 0 else inter / union,
            "accuracy": float(((pred == truth) & valid).sum() / max(valid.sum(), 1)),
            "_counts": (int(inter), int(total), int(union))}


def evaluate_folder(checkpoint: str | Path, images: str | Path, masks: str | Path,
                    out_dir: str | Path | None = None, *, spec: MaskSpec | None = None,
                    pairing: dict | None = None, device: str | torch.device = "cpu",
                    threshold: float = 0.5, worst: int = 4) -> FolderScores:
    """Score ``checkpoint`` on the pairs of ``images`` and ``masks`` (module docstring)."""
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    model = model_from_checkpoint(ckpt, device)
    classes = int(info.get("num_classes", 1))
    ds = PairedFolderDataset(images, masks, spec=spec or spec_from_checkpoint(ckpt),
                             image_mode=info.get("image_mode", "RGB"), **(pairing or {}))
    n = 2 if classes == 1 else classes
    cm = torch.zeros(n, n, dtype=torch.int64)
    rows = []
    skipped = []
    for i in range(len(ds)):
        try:
            image, truth = ds.load_pair(i)
        except DataError as err:
            skipped.append(str(err).splitlines()[0])
            continue
        truth = truth.numpy()
        pred = predict_mask(model, image, info, device, threshold=threshold)
        cm += confusion_matrix(torch.from_numpy(pred), torch.from_numpy(truth), n,
                               ignore_index=IGNORE)
        row = {"image": ds.image_paths[i].name, "mask": ds.mask_paths[i].name}
        if classes == 1:
            row.update(_binary_row(pred, truth))
        else:
            valid = truth != IGNORE
            row["accuracy"] = float(((pred == truth) & valid).sum() / max(valid.sum(), 1))
        rows.append(row)
    if not rows:
        raise DataError(f"no pair of {images} and {masks} could be read:\n" + "\n".join(skipped))
    result = _summarise(rows, cm, classes)
    result.skipped = skipped
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.csv_path = _write_csv(result.rows, out / "per_image.csv")
        result.figure_path = _worst_figure(ds, result.rows[:worst], model, info, device,
                                           threshold, out / "worst.png")
    return result


def _summarise(rows: list[dict], cm: torch.Tensor, classes: int) -> FolderScores:
    cm = cm.double()
    accuracy = float(cm.diag().sum() / cm.sum().clamp_min(1))
    if classes == 1:
        inter, total, union = (sum(r["_counts"][j] for r in rows) for j in range(3))
        summary = {"dice": float(np.mean([r["dice"] for r in rows])),
                   "iou": float(np.mean([r["iou"] for r in rows])),
                   "dice_pooled": 2 * inter / total if total else 1.0,
                   "iou_pooled": inter / union if union else 1.0, "accuracy": accuracy}
        for r in rows:
            del r["_counts"]
        rows.sort(key=lambda r: r["dice"])
        return FolderScores(summary, rows)
    union = cm.sum(0) + cm.sum(1) - cm.diag()
    iou = torch.where(union > 0, cm.diag() / union.clamp_min(1), torch.nan)
    present = union > 0
    summary = {"miou": float(iou[present].mean()), "accuracy": accuracy}
    rows.sort(key=lambda r: r["accuracy"])
    return FolderScores(summary, rows, per_class_iou=iou.tolist())


def _write_csv(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)
    return path


def _worst_figure(ds, rows, model, info, device, threshold, path: Path) -> Path:
    """image | truth | prediction for each row (the worst images), as a PNG."""
    import matplotlib.pyplot as plt

    from segkit.imageio import to_uint8

    index = {p.name: i for i, p in enumerate(ds.image_paths)}
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        i = index[row["image"]]
        image = ds.load_image(i)
        truth = ds.load_mask(i).numpy()
        pred = predict_mask(model, image, info, device, threshold=threshold)
        score = f"Dice {row['dice']:.3f}" if "dice" in row else f"acc {row['accuracy']:.3f}"
        low, high = image.min(), image.max()  # stretched for the eye (a 12-bit scan is dark)
        shown_image = to_uint8((image - low) / (high - low) if high > low else image)
        for ax, shown, title in zip(ax_row, (shown_image, truth, pred),
                                    (row["image"], "truth", f"prediction ({score})")):
            ax.imshow(shown, interpolation="nearest", vmin=0,
                      vmax=None if shown.ndim == 3 else max(int(info.get("num_classes", 1)), 1))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
