"""Masks for new images: load a checkpoint, predict, save masks and overlays.

The checkpoint's ``data`` entry says how images were prepared for training (size,
mean, std, grey or colour). A new image of *any* size is resized to the training size,
the logits are resized back to the image's own size (bilinear, on logits, before the
threshold), and then thresholded (binary) or arg-maxed (multiclass).

Saved masks are meant to be *looked at*: a binary mask is written as 0/255 (a 0/1 PNG
looks all black in an image viewer), a multiclass mask as a palette PNG whose indices
are the classes and whose colours are the VOC palette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from segkit.checkpoint import load_checkpoint, model_from_checkpoint
from segkit.masks import read_image, voc_colormap
from segkit.viz import overlay

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")


def prepare_image(img: Image.Image, data_info: dict[str, Any]) -> torch.Tensor:
    """PIL image -> (1, C, h, w) float32 tensor, resized to the training size and normalised."""
    x = TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True)
    x = TF.resize(x, list(data_info["size"]), antialias=True)
    x = TF.normalize(x, data_info["mean"], data_info["std"])
    return x.unsqueeze(0)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, *, tta: bool = False) -> torch.Tensor:
    """Logits (1, C, h, w) for x (1, C, h, w). ``tta=True`` averages the logits of the image
    and its horizontal mirror (flipped back): test-time augmentation."""
    logits = model(x)
    if tta:
        logits = (logits + model(x.flip(-1)).flip(-1)) / 2
    return logits


@torch.no_grad()
def predict_mask(model: torch.nn.Module, img: Image.Image, data_info: dict[str, Any],
                 device: str | torch.device = "cpu", *, threshold: float = 0.5,
                 tta: bool = False) -> np.ndarray:
    """Class-index mask (H, W) int64 at the image's own size (H, W)."""
    model.eval()
    x = prepare_image(img, data_info).to(device)
    logits = predict_logits(model, x, tta=tta)
    logits = F.interpolate(logits, size=(img.height, img.width), mode="bilinear",
                           align_corners=False)
    if logits.shape[1] == 1:
        pred = torch.sigmoid(logits[0, 0]) > threshold
    else:
        pred = logits[0].argmax(0)
    return pred.long().cpu().numpy()


def save_mask(mask: np.ndarray, path: str | Path, num_classes: int) -> Path:
    """Write a viewable mask PNG: binary as 0/255 grey, multiclass as a VOC-palette PNG."""
    path = Path(path)
    if num_classes <= 2:
        Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L").save(path)
    else:
        im = Image.fromarray(mask.astype(np.uint8), mode="P")
        im.putpalette(voc_colormap(256).flatten().tolist())
        im.save(path)
    return path


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def predict_folder(checkpoint: str | Path, input_dir: str | Path, output_dir: str | Path, *,
                   device: str | torch.device = "cpu", threshold: float = 0.5,
                   tta: bool = False, overlays: bool = True) -> list[Path]:
    """Predict a mask for every image in ``input_dir``; write ``<stem>_mask.png`` (and
    ``<stem>_overlay.png``) to ``output_dir``. Returns the mask paths."""
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    if "size" not in info:
        raise ValueError(f"{checkpoint} has no 'data' entry (size/mean/std): it was not saved "
                         "by segkit's training; cannot tell how to prepare images")
    model = model_from_checkpoint(ckpt, device)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    num_classes = int(info.get("num_classes", 1))
    written = []
    for path in list_images(input_dir):
        img = read_image(path, mode=info.get("image_mode", "RGB"))
        mask = predict_mask(model, img, info, device, threshold=threshold, tta=tta)
        written.append(save_mask(mask, out / f"{path.stem}_mask.png", num_classes))
        if overlays:
            base = np.asarray(img.convert("RGB"))
            if num_classes <= 2:
                blended = overlay(base, mask)
            else:
                colours = voc_colormap(256)[mask]
                fg = (mask > 0)[..., None]
                blended = np.where(fg, (0.55 * base + 0.45 * colours), base).astype(np.uint8)
            Image.fromarray(blended).save(out / f"{path.stem}_overlay.png")
    return written
