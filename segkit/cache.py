"""A cache of decoded, resized (image, mask) pairs: epoch 2+ costs only augmentation.

At the real Carvana resolution (1918 x 1280) a loader spends almost all of its time
*before* augmentation: decoding a 2.5-megapixel JPEG and a GIF mask, converting to
float, and shrinking both to the training size (e.g. 240 x 160). It does that again
for every image in every epoch, although the result never changes. At 240 x 160 the
model consumes images faster than that, so it waits for the loader.

The cache does this work once per image and keeps the result as uint8:

- image (C, H, W) uint8 and mask (H, W) uint8 at the training size: 240 x 160 RGB is
  115 KB instead of the 7.4 MB float32 a full-size image takes;
- **in memory** for small sets (a dict, one per process), or **on disk** as ``.npy``
  files (one pair per image) for sets that do not fit, in a folder that survives the run:
  the second run's first epoch is fast too.

Each entry's name is a hash of the image and mask files' paths, sizes in bytes and
modification times, the training size and how the files are read. A changed file or a
new training size gives a new name, so a stale entry is never read (it stays on disk until
you delete the folder).

Decoding is faster too: a JPEG much larger than the target is decoded at 1/2, 1/4 or
1/8 of its size directly (PIL's ``draft``), and a mask is resized with nearest
interpolation before its values are mapped to class indices.

Use it through the ``cache=`` argument of ``segkit.data.carvana_datasets`` (and the
other ``*_datasets`` helpers) or ``segkit train --cache``; the random augmentation
still runs every epoch on the cached, small tensors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from segkit.imageio import is_8_bit, load_image

#: Bump when the cached arrays change meaning; older entries are then ignored.
CACHE_VERSION = 1
#: Sets whose cached arrays would take more than this stay on disk instead of in memory.
MEMORY_LIMIT_BYTES = 1 << 30


def default_folder() -> Path:
    """Where disk caches go: ``$SEGKIT_CACHE`` or ``~/.cache/segkit/resized``."""
    env = os.environ.get("SEGKIT_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "segkit" / "resized"


class ResizedCache:
    """Decoded (image, mask) pairs of a segkit dataset at ``size`` (H, W), kept as uint8.

    Args:
        size: (H, W) the training size.
        folder: a folder for ``.npy`` files (kept between runs), or None to keep the
            pairs in this process's memory.

    ``pair(dataset, index)`` -> (tv_tensors.Image uint8 (C, H, W), tv_tensors.Mask
    int64 (H, W)), the same as ``dataset.load_pair(index)`` resized to ``size``
    (image antialiased bilinear, mask nearest).
    """

    def __init__(self, size: tuple[int, int], folder: str | Path | None = None):
        self.size = (int(size[0]), int(size[1]))
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        where = str(self.folder) if self.folder else "memory"
        return (f"ResizedCache({self.size[1]}x{self.size[0]} (W x H), {where}: "
                f"{self.hits} hits, {self.misses} misses)")

    def key(self, dataset, index: int) -> str:
        """The entry's name: a hash of both files' identity and of how they are read."""
        parts = [CACHE_VERSION, self.size, dataset.image_mode, dataset.mask_convention,
                 dataset.num_classes, getattr(dataset, "spec", None)]
        for path in (dataset.image_paths[index], dataset.mask_paths[index]):
            st = Path(path).stat()
            parts += [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
        return hashlib.sha1(repr(parts).encode()).hexdigest()

    def pair(self, dataset, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        key = self.key(dataset, index)
        arrays = self._read(key)
        if arrays is None:
            self.misses += 1
            arrays = load_resized(dataset, index, self.size)
            self._write(key, arrays)
        else:
            self.hits += 1
        image, mask = arrays
        return (tv_tensors.Image(torch.from_numpy(image)),
                tv_tensors.Mask(torch.from_numpy(mask).long()))

    def _paths(self, key: str) -> tuple[Path, Path]:
        sub = self.folder / key[:2]
        return sub / f"{key}.image.npy", sub / f"{key}.mask.npy"

    def _read(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        if self.folder is None:
            return self._memory.get(key)
        image_path, mask_path = self._paths(key)
        try:
            return np.load(image_path), np.load(mask_path)
        except (OSError, ValueError):  # missing, or cut short by a killed run: rebuild
            return None

    def _write(self, key: str, arrays: tuple[np.ndarray, np.ndarray]) -> None:
        if self.folder is None:
            self._memory[key] = arrays
            return
        for path, array in zip(self._paths(key), arrays):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, array)
            os.replace(tmp, path)  # atomic: another worker never reads half a file


def load_resized(dataset, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pair ``index`` of a segkit dataset decoded and resized to ``size`` (H, W):
    image (C, H, W) uint8 (antialiased bilinear), mask (H, W) uint8 class indices (nearest).

    The mask is read as the dataset reads its masks (``dataset.mask_indices``). Raises
    the dataset's own DataError when a file is unreadable or the sizes differ."""
    image_path, mask_path = dataset.image_paths[index], dataset.mask_paths[index]
    try:
        image, full = _small_image(image_path, dataset.image_mode, size)
        with Image.open(mask_path) as mk:
            mk.load()
            mask_full = mk.size
            small_mask = mk.resize((size[1], size[0]), Image.Resampling.NEAREST)
    except (OSError, SyntaxError, EOFError, ValueError):
        dataset.load_pair(index)  # raises the DataError that names the file and the cause
        raise
    if full != mask_full:
        dataset.load_pair(index)  # raises the size-mismatch DataError
    mask = dataset.mask_indices(small_mask, mask_path)
    return image.numpy(), mask.astype(np.uint8)


def _small_image(path: Path, mode: str, size: tuple[int, int]) -> tuple[torch.Tensor, tuple]:
    """(C, H, W) uint8 image at ``size`` (antialiased) and the file's own size (W, H).

    An 8-bit JPEG much larger than ``size`` is decoded at 1/2, 1/4 or 1/8 of its size
    directly (PIL's ``draft``); a 16-bit or float image is scaled faithfully by
    ``segkit.imageio.load_image`` (never clipped to white) before it becomes 8-bit."""
    with Image.open(path) as im:
        full = im.size
        if not is_8_bit(im.mode):
            image = TF.resize(load_image(path, mode), list(size), antialias=True)
            return TF.to_dtype(image.clamp(0, 1), torch.uint8, scale=True), full
        if im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 when that is still >= size
            im.draft(mode, (size[1], size[0]))
        pixels = TF.pil_to_tensor(im.convert(mode))
    return TF.resize(pixels, list(size), antialias=True), full


def choose_cache(mode: str, size: tuple[int, int], n_images: int, channels: int = 3,
                 folder: str | Path | None = None) -> ResizedCache | None:
    """The cache ``mode`` asks for: "none" -> None, "memory", "disk" (in ``folder`` or
    :func:`default_folder`), or "auto": memory when the set's uint8 arrays take at most
    ``MEMORY_LIMIT_BYTES`` (1 GiB), else disk."""
    if mode == "none":
        return None
    if mode == "auto":
        per_image = (channels + 1) * size[0] * size[1]
        mode = "memory" if per_image * n_images <= MEMORY_LIMIT_BYTES else "disk"
    if mode == "memory":
        return ResizedCache(size)
    if mode == "disk":
        return ResizedCache(size, folder if folder is not None else default_folder())
    raise ValueError(f"unknown cache mode {mode!r}: use auto, memory, disk or none")


class CachedImages(torch.utils.data.Dataset):
    """The cached images of a dataset (uint8 (C, H, W)), for ``compute_mean_std``."""

    def __init__(self, dataset, cache: ResizedCache):
        self.dataset, self.cache = dataset, cache

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.cache.pair(self.dataset, index)[0].as_subclass(torch.Tensor)
