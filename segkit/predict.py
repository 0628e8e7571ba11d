"""Masks for new images: load a checkpoint, predict, save masks and overlays.

The checkpoint's ``data`` entry says how images were prepared for training (size,
mean, std, grey or colour). A new image of *any* size is resized to the training size,
the logits are resized back to the image's own size (bilinear, on logits, before the
threshold), and then thresholded (binary) or arg-maxed (multiclass).

Saved masks are meant to be *looked at*: a binary mask is written as 0/255 (a 0/1 PNG
looks all black in an image viewer), a multiclass mask as a palette PNG whose indices
are the classes and whose colours are the VOC palette.

Nothing a user has is overwritten: ``predict_folder`` refuses an output folder that
already holds files (unless ``overwrite=True``, and even then it only replaces the
``<name>_mask.png`` / ``<name>_overlay.png`` files it writes), and an output folder
that is, or is inside, the input folder or a dataset folder (so a second run never
predicts on the first run's outputs, and ground-truth masks are never replaced). An
image that cannot be read is skipped and reported; ``strict=True`` stops at the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from segkit.checkpoint import load_checkpoint, model_from_checkpoint
from segkit.claim import claim_folder, release_folder
from segkit.errors import DataError
from segkit.folders import image_files
from segkit.imageio import load_image, to_uint8
from segkit.masks import voc_colormap
from segkit.viz import overlay


def _as_tensor(img: Image.Image | torch.Tensor) -> torch.Tensor:
    """PIL image (8-bit) or (C, H, W) float tensor in [0, 1] -> (C, H, W) float32."""
    if isinstance(img, torch.Tensor):
        return img.float()
    return TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True)


def _image_size(img: Image.Image | torch.Tensor) -> tuple[int, int]:
    return tuple(img.shape[-2:]) if isinstance(img, torch.Tensor) else (img.height, img.width)


def prepare_image(img: Image.Image | torch.Tensor, data_info: dict[str, Any],
                  size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL image (or (C, H, W) float tensor in [0, 1], e.g. from ``segkit.imageio.load_image``)
    -> (1, C, h, w) float32 tensor, resized to the training size (or ``size``) and normalised."""
    x = _as_tensor(img)
    x = TF.resize(x, list(size or data_info["size"]), antialias=True)
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


def needs_tiles(img_size: tuple[int, int], data_info: dict[str, Any]) -> bool:
    """True when an image of ``img_size`` (H, W) is larger than the images the model was
    trained on (``data_info["source_size"]``), so it is predicted in tiles at their scale."""
    source = data_info.get("source_size")
    return bool(source) and (img_size[0] > source[0] or img_size[1] > source[1])


@torch.no_grad()
def predict_tiled(model: torch.nn.Module, img: Image.Image | torch.Tensor,
                  data_info: dict[str, Any], device: str | torch.device = "cpu", *,
                  threshold: float = 0.5, tta: bool = False, overlap: float = 0.25,
                  batch_size: int = 4) -> np.ndarray:
    """Class-index mask (H, W) of a large image, predicted in overlapping windows.

    The image is scaled as the training images were (training size / ``source_size``),
    cut into windows of the training size, and the blended logits are resized back in
    bands of rows (``segkit.tiling``): memory grows with the scaled image, not the photo.
    """
    from segkit.tiling import scaled_size, sliding_window_logits, upsample_in_bands

    model.eval()
    height, width = _image_size(img)
    size, source = list(data_info["size"]), data_info.get("source_size") or [height, width]
    target = scaled_size((height, width), (size[0] / source[0], size[1] / source[1]))
    x = prepare_image(img, data_info, size=target).to(device)
    logits = sliding_window_logits(model, x, tuple(size), overlap=overlap, batch_size=batch_size)
    if tta:
        mirrored = sliding_window_logits(model, x.flip(-1), tuple(size), overlap=overlap,
                                         batch_size=batch_size)
        logits = (logits + mirrored.flip(-1)) / 2
    return upsample_in_bands(logits, (height, width), threshold=threshold).numpy()


@torch.no_grad()
def predict_mask(model: torch.nn.Module, img: Image.Image | torch.Tensor,
                 data_info: dict[str, Any], device: str | torch.device = "cpu", *,
                 threshold: float = 0.5, tta: bool = False,
                 tile: bool | None = None) -> np.ndarray:
    """Class-index mask (H, W) int64 at the image's own size (H, W).

    ``img``: a PIL image or a (C, H, W) float tensor in [0, 1]. ``tile``: None = tiles for
    images larger than the training images (``needs_tiles``), True/False to force.
    """
    if tile if tile is not None else needs_tiles(_image_size(img), data_info):
        return predict_tiled(model, img, data_info, device, threshold=threshold, tta=tta)
    model.eval()
    height, width = _image_size(img)
    x = prepare_image(img, data_info).to(device)
    logits = predict_logits(model, x, tta=tta)
    logits = F.interpolate(logits, size=(height, width), mode="bilinear",
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


# A dataset's data folders, each with the folder that sits next to it in that layout
# (Carvana: train/ + train_masks/; VOC: JPEGImages/ + SegmentationClass/; images/ + masks/).
DATASET_PAIRS = {"train": "train_masks", "train_masks": "train", "images": "masks",
                 "masks": "images", "JPEGImages": "SegmentationClass",
                 "SegmentationClass": "JPEGImages", "SegmentationObject": "JPEGImages"}


def dataset_folder_of(path: Path) -> Path | None:
    """The dataset ``path`` lies in, judged by its layout, or None.

    ``path`` lies in a dataset when it is, or is inside, one of a dataset's data folders:
    ``data/carvana/train_masks`` (next to ``train/``), ``project/masks`` (next to
    ``images/``), ``VOC2012/SegmentationClass``. A new ``predictions/`` folder next to
    them is not inside.
    """
    for folder in [path, *path.parents]:
        partner = DATASET_PAIRS.get(folder.name)
        if partner and (folder.parent / partner).is_dir():
            return folder.parent
    return None


def check_output_folder(input_dir: Path, output_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder where writing could lose or mix up a user's files.

    Raises DataError naming the folder and the way out.
    """
    source, target = input_dir.resolve(), output_dir.resolve()
    if target.is_relative_to(source):
        where = "is" if target == source else "is inside"
        raise DataError(f"output folder {output_dir} {where} the input folder {input_dir}: "
                        "the masks would mix with your images, and the next run would "
                        "predict on them. Choose a folder outside it, e.g. "
                        f"{source.parent / (source.name + '_predicted')}")
    dataset = dataset_folder_of(target)
    if dataset is not None:
        raise DataError(f"output folder {output_dir} is inside the dataset {dataset}: its "
                        "masks could be overwritten by predictions. Choose a folder outside "
                        "the dataset")
    if target.is_dir() and not overwrite:
        existing = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
        if existing:
            shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
            raise DataError(f"output folder {output_dir} already holds {len(existing)} "
                            f"file(s) ({shown}): choose an empty or new folder, or pass "
                            "--overwrite (overwrite=True) to replace the masks and overlays "
                            "of the same names (other files are left alone)")


@dataclass
class Prediction:
    """What ``predict_folder`` did: the masks it wrote, the images it could not read."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (image, why)
    folder: Path | None = None  # where they went (the next free name if another held it)


def predict_folder(checkpoint: str | Path, input_dir: str | Path, output_dir: str | Path, *,
                   device: str | torch.device = "cpu", threshold: float = 0.5,
                   tta: bool = False, overlays: bool = True, overwrite: bool = False,
                   strict: bool = False) -> Prediction:
    """Predict a mask for every image in ``input_dir``; write ``<stem>_mask.png`` (and
    ``<stem>_overlay.png``) to ``output_dir``.

    The output folder must be new or empty unless ``overwrite``, and outside the input
    folder and any dataset (see :func:`check_output_folder`). An image that cannot be
    read is skipped and listed in the result; with ``strict`` it raises instead.
    """
    input_dir, out = Path(input_dir), Path(output_dir)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold} "
                         "(--threshold)")
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.get("data") or {}
    if "size" not in info:
        raise ValueError(f"{checkpoint} has no 'data' entry (size/mean/std): it was not saved "
                         "by segkit's training; cannot tell how to prepare images")
    images = image_files(input_dir, "input")
    check_output_folder(input_dir, out, overwrite)  # before anything is written
    model = model_from_checkpoint(ckpt, device, name=str(checkpoint))
    out = claim_folder(out, (), option="output folder", what="prediction")
    try:
        return _predict_images(model, images, out, info, device, threshold, tta, overlays,
                               strict)
    finally:
        release_folder(out)


def _predict_images(model, images: list[Path], out: Path, info: dict, device, threshold: float,
                    tta: bool, overlays: bool, strict: bool) -> Prediction:
    """``predict_folder``'s loop: each image read (or skipped), predicted and written."""
    num_classes = int(info.get("num_classes", 1))
    result = Prediction(folder=out)
    for path in images:
        try:
            img = load_image(path, mode=info.get("image_mode", "RGB"))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for bad files
            if strict:
                raise DataError(f"cannot read image {path}: {exc}") from exc
            result.skipped.append((path, str(exc).splitlines()[0] if str(exc) else
                                   type(exc).__name__))
            continue
        mask = predict_mask(model, img, info, device, threshold=threshold, tta=tta)
        result.written.append(save_mask(mask, out / f"{path.stem}_mask.png", num_classes))
        if overlays:
            save_overlay(img, mask, out / f"{path.stem}_overlay.png", num_classes)
    return result


def save_overlay(img: Image.Image | torch.Tensor, mask: np.ndarray, path: Path,
                 num_classes: int) -> Path:
    """Write the image with its mask blended in: red for binary, VOC colours otherwise."""
    base = to_uint8(img) if isinstance(img, torch.Tensor) else np.asarray(img.convert("RGB"))
    if num_classes <= 2:
        blended = overlay(base, mask)
    else:
        colours = voc_colormap(256)[mask]
        fg = (mask > 0)[..., None]
        blended = np.where(fg, (0.55 * base + 0.45 * colours), base).astype(np.uint8)
    Image.fromarray(blended).save(path)
    return path
