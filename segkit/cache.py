"""A cache of decoded, resized (image, mask) pairs: epoch 2+ costs only augmentation.

At the real Carvana resolution (1918 x 1280) a loader spends almost all of its time
*before* augmentation: decoding a 2.5-megapixel JPEG and a GIF mask, converting to
float, and shrinking both to the training size (e.g. 240 x 160). It does that again
for every image in every epoch, although the result never changes. At 240 x 160 the
model consumes images faster than that, so it waits for the loader.

The cache does this work once per image and keeps the result at the training size:

- image (C, H, W) float32 and mask (H, W) uint8 class indices, **exactly** what the
  dataset's reader and its transform's resize give without the cache (a 16-bit scan stays
  as finely graded as it is read; every batch is the same bit for bit with the cache and
  without it): 240 x 160 RGB is 450 KB instead of the 29 MB float32 a full-size photo takes;
- **in memory** for small sets (a dict, one per process), or **on disk** as ``.npy``
  files (one pair per image) for sets that do not fit, in a folder that survives the run:
  the second run's first epoch is fast too.

Each entry's name is a hash of the image and mask files' **contents**, the training size
and how the files are read: a changed file gives a new name, also one replaced by other
bytes of the same size with its old modification time, so a stale entry is never read (it
stays on disk until you delete the folder). A file's content hash is computed once per
process and file version (path, size, modification and change times).

Use it through the ``cache=`` argument of ``segkit.data.carvana_datasets`` (and the
other ``*_datasets`` helpers) or ``segkit train --cache``; the random augmentation
still runs every epoch on the cached, small tensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from segkit.errors import SegkitError

#: Bump when the cached arrays change meaning; older entries are then ignored.
CACHE_VERSION = 2
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
    """Decoded (image, mask) pairs of a segkit dataset at ``size`` (H, W), kept as read.

    Args:
        size: (H, W) the training size.
        folder: a folder for ``.npy`` files (kept between runs), or None to keep the
            pairs in this process's memory.

    ``pair(dataset, index)`` -> (tv_tensors.Image float32 (C, H, W), tv_tensors.Mask
    int64 (H, W)), the same as ``dataset.load_pair(index)`` resized to ``size`` as the
    transforms resize (image antialiased bilinear, mask nearest), bit for bit.
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
        """The entry's name: a hash of both files' contents and of how they are read."""
        parts = [CACHE_VERSION, self.size, dataset.image_mode, dataset.mask_convention,
                 dataset.num_classes, getattr(dataset, "spec", None)]
        parts += [content_hash(dataset.image_paths[index]),
                  content_hash(dataset.mask_paths[index])]
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
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    np.save(f, array)
                os.replace(tmp, path)  # atomic: another worker never reads half a file
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise SegkitError(
                    f"cannot write the image cache file {path}: {exc.strerror or exc} (a "
                    "full disk, or a folder you cannot write to?): free space there, give "
                    "the cache another folder with --cache-dir DIR, or train without it "
                    "with --cache memory or --cache none") from None


#: (path, size, mtime, ctime, inode) -> the file's content hash, for this process.
_HASHES: dict[tuple, str] = {}


def content_hash(path: str | Path) -> str:
    """SHA-1 of the file's bytes, computed once per process and version of the file (a
    file rewritten in place, even with its old size and modification time restored, has
    a new change time, so it is hashed anew)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return f"unreadable:{path}"  # the reader then names the file and the cause
    version = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if version not in _HASHES:
        digest = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[version] = digest.hexdigest()
    return _HASHES[version]


def load_resized(dataset, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pair ``index`` of a segkit dataset read by ``dataset.load_pair`` and resized to
    ``size`` (H, W) as the transforms resize: image (C, H, W) float32 (antialiased
    bilinear), mask (H, W) uint8 class indices (nearest; 255 = ignore). The same numbers
    as without a cache, bit for bit. Raises the dataset's own DataError (naming the file)
    when a file is unreadable or the sizes differ."""
    image, mask = dataset.load_pair(index)
    image = TF.resize(image, list(size), antialias=True)
    mask = TF.resize(mask, list(size))  # a tv_tensors.Mask: nearest
    return image.as_subclass(torch.Tensor).numpy(), mask.numpy().astype(np.uint8)


def choose_cache(mode: str, size: tuple[int, int], n_images: int, channels: int = 3,
                 folder: str | Path | None = None) -> ResizedCache | None:
    """The cache ``mode`` asks for: "none" -> None, "memory", "disk" (in ``folder`` or
    :func:`default_folder`), or "auto": memory when the set's arrays take at most
    ``MEMORY_LIMIT_BYTES`` (1 GiB), else disk."""
    if mode == "none":
        return None
    if mode == "auto":
        per_image = (4 * channels + 1) * size[0] * size[1]  # float32 image, uint8 mask
        mode = "memory" if per_image * n_images <= MEMORY_LIMIT_BYTES else "disk"
    if mode == "memory":
        return ResizedCache(size)
    if mode == "disk":
        return ResizedCache(size, folder if folder is not None else default_folder())
    raise ValueError(f"unknown cache mode {mode!r}: use auto, memory, disk or none")


class CachedImages(torch.utils.data.Dataset):
    """The cached images of a dataset (float32 (C, H, W)), for ``compute_mean_std``."""

    def __init__(self, dataset, cache: ResizedCache):
        self.dataset, self.cache = dataset, cache

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.cache.pair(self.dataset, index)[0].as_subclass(torch.Tensor)
