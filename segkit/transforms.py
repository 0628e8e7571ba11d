"""Paired augmentation and normalisation with torchvision.transforms.v2.

The one rule of segmentation augmentation: the image and its mask must get
the *same* random flip, rotation, shift and scale, or the labels no longer
sit on the pixels they describe. torchvision.transforms.v2 does this for us
when we call the pipeline on both at once::

    image, mask = transform(image, mask)

with ``image`` a ``tv_tensors.Image`` and ``mask`` a ``tv_tensors.Mask``:
the random parameters are drawn once per call and applied to both. Because
the mask is a ``tv_tensors.Mask``, v2 also knows to

- resize and rotate it with NEAREST interpolation (a bilinear resize would
  invent values such as 0.5 or 127 that are no class at all),
- leave it alone in ColorJitter, ToDtype and Normalize.

No need to reseed the global random generator before the image and again
before the mask (a trick some student code uses; it works only as long as
both pipelines draw exactly the same random numbers in the same order).

Sizes are (H, W), the torch convention, everywhere in this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segkit.imageio import is_8_bit, load_image, open_image

__all__ = ["train_transforms", "eval_transforms", "compute_mean_std", "denormalize"]


def train_transforms(
    size: tuple[int, int] | None,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    hflip: bool = True,
    affine: bool = True,
    color: bool = True,
    mask_fill: int = 0,
) -> v2.Compose:
    """Random augmentation for training, applied to (image, mask) pairs.

    Steps: Resize(size) -> RandomHorizontalFlip -> light RandomAffine
    (up to 10 degrees, 5 % shift, scale 0.9..1.1) -> ColorJitter (image only)
    -> ToDtype(float32, scale=True) (image only) -> Normalize(mean, std)
    (image only).

    Args:
        size: (H, W) of the output, or None to keep the input size.
        mean, std: per-channel statistics of the training images (see
            ``compute_mean_std``); one value per channel (1 for grayscale).
        hflip, affine, color: switch each augmentation on or off.
        mask_fill: label given to the mask pixels that RandomAffine moves in
            from outside the picture (the image gets 0 = black there).
            0 = background; use 255 (ignore) to leave them out of the loss.

    Call it as ``image, mask = t(image, mask)`` with image a tv_tensors.Image
    (C, H, W) (uint8 or float in [0, 1]) and mask a tv_tensors.Mask (H, W)
    int64. Returns image (C, H, W) float32, normalised, and mask (H, W) int64.
    """
    steps: list = [v2.ToImage()]
    if size is not None:
        steps.append(v2.Resize(_check_size(size)))
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if affine:
        steps.append(
            v2.RandomAffine(
                degrees=10,
                translate=(0.05, 0.05),
                scale=(0.9, 1.1),
                fill={tv_tensors.Image: 0, tv_tensors.Mask: mask_fill},
            )
        )
    if color:
        steps.append(v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def eval_transforms(
    size: tuple[int, int] | None, mean: Sequence[float], std: Sequence[float]
) -> v2.Compose:
    """Deterministic transform for validation and prediction.

    Resize(size) -> ToDtype(float32, scale=True) -> Normalize(mean, std); the
    mask is only resized (NEAREST). ``size`` is (H, W), or None to keep it.
    """
    steps: list = [v2.ToImage()]
    if size is not None:
        steps.append(v2.Resize(_check_size(size)))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def _check_size(size) -> list[int]:
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be (H, W), two positive ints, got {size!r}")
    return [size[0], size[1]]


def compute_mean_std(
    dataset_or_paths, *, size: tuple[int, int] | None = None, mode: str = "RGB"
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of a set of training images.

    Compute them on the TRAINING images only: the validation images stand for
    data the model has never seen, statistics included.

    Args:
        dataset_or_paths: a segkit dataset (its images are read without its
            transform), a ``torch.utils.data.Subset`` of one, any dataset
            whose items are (image, ...) with image (C, H, W) in [0, 1] or
            uint8, or a list of image file paths.
        size: (H, W) to resize every image to first (the size the network
            will see; also much faster on large photos), or None.
        mode: PIL mode to read image files in, when given paths ("RGB", "L").

    Returns: (mean, std), two lists of C floats, over all pixels of all
    images (streaming sums in float64, so memory stays small).
    """
    total = total_sq = None
    count = 0
    for image in _iter_images(dataset_or_paths, mode):
        image = torch.as_tensor(image)
        if image.dtype == torch.uint8:
            image = image.to(torch.float64) / 255
        if image.ndim == 2:
            image = image.unsqueeze(0)
        if size is not None:
            image = v2.functional.resize(image, _check_size(size), antialias=True)
        pixels = image.reshape(image.shape[0], -1).to(torch.float64)  # (C, H*W)
        if total is None:
            total = torch.zeros(pixels.shape[0], dtype=torch.float64)
            total_sq = torch.zeros_like(total)
        elif pixels.shape[0] != total.shape[0]:
            raise ValueError(
                f"images have different numbers of channels: {total.shape[0]} and "
                f"{pixels.shape[0]}; read them all in one mode (e.g. 'RGB')"
            )
        total += pixels.sum(dim=1)
        total_sq += (pixels**2).sum(dim=1)
        count += pixels.shape[1]
    if count == 0:
        raise ValueError("compute_mean_std got no images")
    mean = total / count
    var = (total_sq / count - mean**2).clamp(min=0)
    return mean.tolist(), var.sqrt().tolist()


def _iter_images(source, mode: str) -> Iterable:
    """Yield the untransformed images of a dataset, a Subset, or a list of paths."""
    if isinstance(source, (str, Path)):
        raise TypeError("compute_mean_std wants a list of paths or a dataset, not one path")
    if isinstance(source, torch.utils.data.Subset):
        dataset, indices = source.dataset, list(source.indices)
    else:
        dataset, indices = source, None

    if hasattr(dataset, "load_image"):  # a segkit dataset: skip its transform
        for i in indices if indices is not None else range(len(dataset)):
            yield dataset.load_image(i)
    elif isinstance(dataset, torch.utils.data.Dataset):
        for i in indices if indices is not None else range(len(dataset)):
            item = dataset[i]
            yield item[0] if isinstance(item, (tuple, list)) else item
    else:
        for path in dataset:
            image = open_image(path)
            if not is_8_bit(image.mode):
                yield load_image(path, mode=mode)  # 16-bit / float: scaled, not clipped
            else:  # 8-bit: uint8, so that the sums above stay exact in float64
                yield v2.functional.pil_to_tensor(image.convert(mode) if image.mode != mode
                                                  else image)


def denormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo Normalize for display: image * std + mean, clipped to [0, 1].

    image: (C, H, W) or (N, C, H, W) float. Returns the same shape, float,
    ready for ``plt.imshow(out.permute(1, 2, 0))``.
    """
    image = torch.as_tensor(image).detach().float()
    shape = (-1, 1, 1)
    mean_t = torch.as_tensor(list(mean), dtype=image.dtype, device=image.device).reshape(shape)
    std_t = torch.as_tensor(list(std), dtype=image.dtype, device=image.device).reshape(shape)
    out = image * std_t + mean_t
    return out.clamp(0, 1).as_subclass(torch.Tensor)
