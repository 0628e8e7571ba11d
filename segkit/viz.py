"""Pictures of images, masks and predictions (matplotlib).

Functions that *show* (``show_pairs``, ``plot_history``) draw with pyplot so they appear
in a notebook; end the cell with ``plt.show()``. ``save_prediction_grid`` writes a PNG
with its own ``Figure`` (no pyplot state), so it works headless in a script or CI.
``draw_unet`` draws a U-Net's U from one forward pass (lesson 02).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from segkit.masks import voc_colormap
from segkit.shapes import ShapeRow, trace_shapes


def to_display(image: torch.Tensor, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
    """(C, H, W) float tensor (optionally normalised) -> (H, W, 3) or (H, W) float array in [0, 1]."""
    img = image.detach().cpu().float()
    if mean is not None and std is not None:
        m = torch.tensor(list(mean)).view(-1, 1, 1)
        s = torch.tensor(list(std)).view(-1, 1, 1)
        img = img * s + m
    img = img.clamp(0, 1)
    if img.shape[0] == 1:
        return img[0].numpy()
    return img.permute(1, 2, 0).numpy()


def colorize(mask: torch.Tensor | np.ndarray, num_classes: int = 2) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours (VOC palette; binary: black/white)."""
    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask).astype(np.int64)
    if num_classes <= 2:
        out = np.zeros(m.shape + (3,), np.uint8)
        out[m == 1] = 255
        out[m == 255] = (224, 224, 192)
        return out
    return voc_colormap(256)[np.clip(m, 0, 255)]


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.45) -> np.ndarray:
    """Blend a binary mask onto an image. image (H, W, 3) or (H, W) float in [0, 1] or uint8;
    mask (H, W) 0/1. Returns (H, W, 3) uint8."""
    img = np.asarray(image, dtype=np.float32)
    if img.max() > 1.0:
        img = img / 255.0
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    m = np.asarray(mask).astype(bool)[..., None]
    col = np.asarray(color, np.float32).reshape(1, 1, 3) / 255.0
    out = np.where(m, (1 - alpha) * img + alpha * col, img)
    return (out.clip(0, 1) * 255).round().astype(np.uint8)


@torch.no_grad()
def predict_batch(model: torch.nn.Module, images: torch.Tensor, device) -> torch.Tensor:
    """Class indices (N, H, W) int64 for images (N, C, H, W): logit > 0 for one output
    channel, argmax over channels otherwise."""
    was = model.training
    model.eval()
    logits = model(images.to(device)).cpu()
    model.train(was)
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


def save_prediction_grid(path: str | Path, model: torch.nn.Module, dataset, device, *,
                         mean=None, std=None, n: int = 4, num_classes: int = 1) -> Path:
    """Write a PNG: one row per sample with image | ground truth | prediction."""
    n = min(n, len(dataset))
    pairs = [dataset[i] for i in range(n)]
    images = torch.stack([torch.as_tensor(p[0]) for p in pairs])
    preds = predict_batch(model, images, device)
    fig = Figure(figsize=(7.5, 2.2 * n))
    axes = fig.subplots(n, 3, squeeze=False)
    classes = max(num_classes, 2)
    for i, (img, mask) in enumerate(pairs):
        shown = to_display(torch.as_tensor(img), mean, std)
        axes[i, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        axes[i, 1].imshow(colorize(torch.as_tensor(mask), classes))
        axes[i, 2].imshow(colorize(preds[i], classes))
    for ax, title in zip(axes[0], ("image", "ground truth", "prediction")):
        ax.set_title(title)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def show_pairs(images: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], preds=None, *,
               mean=None, std=None, num_classes: int = 2, titles=("image", "mask", "prediction")):
    """Show image / mask (/ prediction) side by side, one row per sample. Returns the figure."""
    import matplotlib.pyplot as plt

    cols = 2 if preds is None else 3
    n = len(images)
    fig, axes = plt.subplots(n, cols, figsize=(3 * cols, 2.2 * n), squeeze=False)
    for i in range(n):
        shown = to_display(torch.as_tensor(images[i]), mean, std)
        axes[i, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        axes[i, 1].imshow(colorize(torch.as_tensor(masks[i]), num_classes))
        if preds is not None:
            axes[i, 2].imshow(colorize(torch.as_tensor(preds[i]), num_classes))
    for j in range(cols):
        axes[0, j].set_title(titles[j])
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_history(history, keys: Sequence[str] = ("train_loss", "val_loss"),
                 metric_keys: Sequence[str] = ("val_dice",), title: str | None = None):
    """Loss curves (left) and metric curves (right) per epoch. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = history["epoch"]
    for k in keys:
        ax1.plot(epochs, history[k], marker="o", label=k.replace("_", " "))
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss"), ax1.legend()
    for k in metric_keys:
        ax2.plot(epochs, history[k], marker="o", label=k.replace("_", " "))
    ax2.set_xlabel("epoch"), ax2.set_ylabel("score"), ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_unet(model: nn.Module, input_size: Sequence[int], ax: Any = None) -> Any:
    """Draw the U of a U-Net with ``inc``, ``downs``, ``ups`` and ``outc`` blocks.

    The boxes come from a real forward pass (:func:`segkit.shapes.trace_shapes`): each box is a block's
    output map, with its channels above it (for an Up block: upsampled + skip -> out)
    and H x W inside. Red arrows are max pooling, green ones up-convs, grey dashed ones
    the skip connections (copy, then concatenate). Returns the matplotlib Axes; the
    caller shows it (``plt.show()``).
    """
    import matplotlib.pyplot as plt

    rows = {r.name: r for r in trace_shapes(model, tuple(input_size))}
    level_of = lambda name: int(name.split(".")[1])  # noqa: E731
    enc = [rows["inc"]] + sorted((r for n, r in rows.items() if n.startswith("downs.")),
                                 key=lambda r: level_of(r.name))
    dec = sorted((r for n, r in rows.items() if n.startswith("ups.")),
                 key=lambda r: level_of(r.name))
    depth = len(enc) - 1
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.6))
    pen = _UNetPen(ax)
    for i, row in enumerate(enc):
        pen.box(i, -i, row, "#9ecae1" if i < depth else "#6baed6", f"{row.out_channels}")
        if i:
            pen.arrow((i - 1 + 0.1, -(i - 1) - pen.h / 2), (i - 0.1, -i + pen.h / 2), "#d62728")
    for j, row in enumerate(dec):
        level = depth - 1 - j
        x = 2 * depth - level
        skip_ch = row.input_shapes[1][1]
        up_ch = row.up_shape[1] if row.up_shape is not None else row.input_shapes[0][1] // 2
        pen.box(x, -level, row, "#fdae6b", f"{up_ch}+{skip_ch}→{row.out_channels}")
        pen.arrow((x - 1 + 0.1, -(level + 1) + pen.h / 2), (x - 0.1, -level - pen.h / 2),
                  "#2ca02c")
        pen.arrow((level + pen.w / 2, -level), (x - pen.w / 2, -level), "#888888", "--")
    out = rows.get("outc")
    if out is not None:
        x = 2 * depth + 1
        pen.box(x, 0, out, "#a1d99b", f"{out.out_channels}")
        pen.arrow((x - 1 + pen.w / 2, 0), (x - pen.w / 2, 0), "black")
    pen.legend(depth, input_size[1])
    return ax


class _UNetPen:
    """The boxes, arrows and labels of :func:`draw_unet`, on matplotlib Axes ``ax``."""

    w, h = 0.78, 0.42  # a box's width and height

    def __init__(self, ax: Any) -> None:
        self.ax = ax

    def box(self, x: float, y: float, row: ShapeRow, color: str, label: str) -> None:
        """A block's output map at (x, y): channels above, H x W inside."""
        from matplotlib.patches import Rectangle

        self.ax.add_patch(Rectangle((x - self.w / 2, y - self.h / 2), self.w, self.h,
                                    facecolor=color, edgecolor="black", linewidth=0.8))
        shape = row.output_shape
        self.ax.text(x, y + self.h / 2 + 0.05, label, ha="center", va="bottom", fontsize=9,
                     fontweight="bold")
        self.ax.text(x, y, f"{shape[2]}x{shape[3]}", ha="center", va="center", fontsize=8)

    def arrow(self, a: tuple[float, float], b: tuple[float, float], color: str,
              style: str = "-") -> None:
        from matplotlib.patches import FancyArrowPatch

        self.ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12,
                                          color=color, linestyle=style, linewidth=1.3))

    def legend(self, depth: int, in_channels: int) -> None:
        """The input, the words on the arrows, and the axes' limits."""
        ax = self.ax
        ax.text(-1.15, 0, f"input\n{in_channels} ch", ha="center", va="center", fontsize=8)
        self.arrow((-0.85, 0), (-self.w / 2, 0), "black")
        ax.text(depth / 2 - 0.7, -depth / 2 - 0.5, "max pool\nH, W ÷ 2", color="#d62728",
                fontsize=9, ha="right", va="center")
        ax.text(1.5 * depth + 0.7, -depth / 2 - 0.5, "up-conv\nH, W × 2", color="#2ca02c",
                fontsize=9, ha="left", va="center")
        ax.text(depth, 0.3, "skips: copy, then concatenate", color="#555555", fontsize=9,
                ha="center")
        ax.set_xlim(-1.6, 2 * depth + 1.6)
        ax.set_ylim(-depth - 0.5, 0.75)
        ax.set_aspect("equal")
        ax.axis("off")
