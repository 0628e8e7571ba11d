"""Datasets of (image, mask) pairs, train/validation split, DataLoaders.

Every dataset here returns ``(image, mask)``:

- image: ``tv_tensors.Image`` float32 (C, H, W) with values in [0, 1]
  (C = 3 for RGB, 1 for grayscale);
- mask: ``tv_tensors.Mask`` int64 (H, W) of class indices (255 = ignore).

With a ``transform`` the pair goes through ``transform(image, mask)`` first
(e.g. ``segkit.transforms.train_transforms``): it then returns whatever the
transform gives, typically a normalised float32 image.

Layouts read (the same code reads the toy datasets and the real ones):

- Carvana: ``<root>/train/<id>_NN.jpg`` and ``<root>/train_masks/<id>_NN_mask.gif``
- Pascal VOC 2012: ``<root>/VOCdevkit/VOC2012/JPEGImages/<name>.jpg``,
  ``SegmentationClass/<name>.png``, ``ImageSets/Segmentation/<split>.txt``
- a pair of folders, paired by ``segkit.folders.pair_folders``: identical names,
  ``<stem>.<ext>`` + ``<stem><mask_suffix>.<ext>``, or name patterns with ``{id}``
  (sea/sky, your own data, Oxford-IIIT Pet images/ + annotations/trimaps/)

How masks become class indices: a ``mask_convention`` (``segkit.masks.mask_to_index``)
for the known layouts, or a ``segkit.labels.MaskSpec`` for your own data. Before
training, ``segkit.audit.audit_dataset`` opens every pair once and lists every problem.

Sizes given to the ``*_datasets`` helpers are (H, W), the torch convention
(PIL speaks (W, H); error messages about files use "(W x H)" like an image
viewer does).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

from segkit.errors import DataError
from segkit.folders import pair_folders, show_names
from segkit.imageio import IMAGE_EXTENSIONS, load_image, open_image
from segkit.labels import MaskSpec
from segkit.masks import mask_to_index
from segkit.transforms import compute_mean_std, eval_transforms, train_transforms

__all__ = [
    "IMAGE_EXTENSIONS",
    "SegmentationPairs",
    "PairedFolderDataset",
    "CarvanaDataset",
    "VOCSegmentation",
    "find_voc2012",
    "split_indices",
    "make_loaders",
    "with_transforms",
    "carvana_datasets",
    "seasky_datasets",
    "voc_datasets",
    "count_classes",
]

Transform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple]


# ---------------------------------------------------------------------------
# the common part: a list of (image file, mask file) pairs
# ---------------------------------------------------------------------------


class SegmentationPairs(Dataset):
    """A list of (image file, mask file) pairs read on demand.

    The subclasses below only differ in how they find the pairs.

    Args:
        image_paths, mask_paths: the files, pair i = (image_paths[i], mask_paths[i]).
        image_mode: "RGB" (3 channels) or "L" (grayscale, 1 channel).
        mask_convention, num_classes: how to read the masks (see
            ``segkit.masks.mask_to_index``).
        spec: a ``segkit.labels.MaskSpec`` to read the masks instead (your own data:
            foreground, ignore value, value map, class names); ``num_classes`` is then
            the spec's (2 for binary masks).
        transform: None, or a callable ``transform(image, mask) -> (image, mask)``.

    Attributes:
        names: a short name per pair (the image file's stem).
        cache: None, or a ``segkit.cache.ResizedCache``: items are then read from it
            (uint8 image and mask already at the training size) before the transform.
    """

    cache = None

    def __init__(
        self,
        image_paths: Sequence[Path],
        mask_paths: Sequence[Path],
        *,
        image_mode: str = "RGB",
        mask_convention: str = "auto",
        num_classes: int | None = None,
        spec: MaskSpec | None = None,
        transform: Transform | None = None,
    ):
        if len(image_paths) != len(mask_paths):
            raise ValueError("image_paths and mask_paths must have the same length")
        self.image_paths = [Path(p) for p in image_paths]
        self.mask_paths = [Path(p) for p in mask_paths]
        self.names = [p.stem for p in self.image_paths]
        self.image_mode = image_mode
        self.mask_convention = mask_convention
        self.spec = spec
        self.num_classes = num_classes if spec is None else (spec.num_classes or 2)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_image(self, index: int) -> tv_tensors.Image:
        """Image ``index`` without transform: (C, H, W) float32 in [0, 1]
        (read faithfully by ``segkit.imageio.load_image``: 16-bit, float, palette, alpha)."""
        return tv_tensors.Image(load_image(self.image_paths[index], mode=self.image_mode))

    def mask_indices(self, mask: Image.Image, path: Path | None = None) -> np.ndarray:
        """A mask image as (H, W) int64 class indices (255 = ignore), read as this dataset
        reads its masks: by its ``spec``, or by ``mask_convention`` and ``num_classes``.
        ``path`` names the file in error messages."""
        if self.spec is not None:
            return self.spec.to_index(mask, path)
        return mask_to_index(mask, convention=self.mask_convention,
                             num_classes=self.num_classes, path=path)

    def load_mask(self, index: int) -> tv_tensors.Mask:
        """Mask ``index`` without transform: (H, W) int64 class indices."""
        path = self.mask_paths[index]
        return tv_tensors.Mask(torch.from_numpy(self.mask_indices(open_image(path), path)))

    def load_pair(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """Image and mask ``index`` without transform, checked to have the same size."""
        image = self.load_image(index)
        mask = self.load_mask(index)
        if image.shape[-2:] != mask.shape[-2:]:
            (ih, iw), (mh, mw) = image.shape[-2:], mask.shape[-2:]
            raise DataError(
                f"image and mask have different sizes: {self.image_paths[index]} is "
                f"({iw} x {ih}) but {self.mask_paths[index]} is ({mw} x {mh}) (W x H). "
                "Likely cause: the masks were made at another resolution (or the image "
                "was resized and the mask was not); resize both together, the mask "
                "with nearest interpolation."
            )
        return image, mask

    def __getitem__(self, index: int):
        if self.cache is not None:
            image, mask = self.cache.pair(self, index)
        else:
            image, mask = self.load_pair(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask

    def subset(self, indices: Sequence[int]) -> SegmentationPairs:
        """The pairs ``indices`` only, as a dataset that reads them the same way (no
        transform): a train or validation split, or a dataset without its bad files."""
        return SegmentationPairs(
            [self.image_paths[i] for i in indices],
            [self.mask_paths[i] for i in indices],
            image_mode=self.image_mode,
            mask_convention=self.mask_convention,
            num_classes=self.num_classes,
            spec=self.spec,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} pairs, transform={self.transform is not None})"


# ---------------------------------------------------------------------------
# folders paired by name
# ---------------------------------------------------------------------------


class PairedFolderDataset(SegmentationPairs):
    """Images in one folder, masks in another (or in the same one), paired by name.

    The folders are paired by ``segkit.folders.pair_folders``: identical names (the
    extensions may differ: photo.jpg with photo.png), else the one loose rule that pairs
    every file; ``mask_suffix``: ``<stem>.<ext>`` with ``<stem><mask_suffix>.<ext>``;
    ``image_pattern``/``mask_pattern``: names with ``{id}``, e.g. "{id}_training.tif" and
    "{id}_manual1.gif". Files that do not pair are an error proposing the option to use.
    Extensions read: .jpg .jpeg .png .gif .bmp .tif .tiff; hidden files are skipped.

    Args:
        image_mode: "RGB" (3 channels) or "L" (grayscale, 1 channel).
        mask_convention, num_classes: how to read the masks (see
            ``segkit.masks.mask_to_index``), or
        spec: a ``segkit.labels.MaskSpec`` (what your masks' values mean).
        transform: callable ``transform(image, mask) -> (image, mask)``.

    Attributes: ``pairing`` (the ``segkit.folders.Pairing``; ``pairing.how`` says by
    which rule), ``images_dir``, ``masks_dir``.

    Items: image (C, H, W) float32 in [0, 1], mask (H, W) int64 (255 = ignore).
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        *,
        mask_suffix: str | None = None,
        image_pattern: str | None = None,
        mask_pattern: str | None = None,
        image_mode: str = "RGB",
        mask_convention: str = "auto",
        num_classes: int | None = None,
        spec: MaskSpec | None = None,
        transform: Transform | None = None,
    ):
        self.pairing = pair_folders(images_dir, masks_dir, mask_suffix=mask_suffix,
                                    image_pattern=image_pattern, mask_pattern=mask_pattern)
        super().__init__(
            self.pairing.image_paths,
            self.pairing.mask_paths,
            image_mode=image_mode,
            mask_convention=mask_convention,
            num_classes=num_classes,
            spec=spec,
            transform=transform,
        )
        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.images_dir)!r}, {str(self.masks_dir)!r}: "
            f"{len(self)} pairs by {self.pairing.how}, transform={self.transform is not None})"
        )


class CarvanaDataset(PairedFolderDataset):
    """The Carvana layout: ``root/train/<id>_NN.jpg`` + ``root/train_masks/<id>_NN_mask.gif``.

    ``<id>`` names a car (12 hex characters), NN its view (01..16). Masks are
    read as binary (GIF palette indices 0/1; a 0/255 PNG works too).

    Args:
        root: the folder holding train/ and train_masks/.
        ids: which pairs to keep: image names ("0cdf5b5d0ce1_01") or car
            ids ("0cdf5b5d0ce1" = all views of that car); None = all.
        transform: callable ``transform(image, mask) -> (image, mask)``.

    Attributes:
        names: image names, e.g. "0cdf5b5d0ce1_01".
        car_ids: the car of each pair, e.g. "0cdf5b5d0ce1": give these to
            ``split_indices(groups=...)`` so all views of a car stay on one side.
    """

    def __init__(
        self,
        root: str | Path,
        ids: list[str] | None = None,
        transform: Transform | None = None,
    ):
        root = Path(root)
        if not (root / "train").is_dir() or not (root / "train_masks").is_dir():
            raise DataError(
                f"{root} is not a Carvana folder: expected {root / 'train'} "
                f"(<id>_NN.jpg) and {root / 'train_masks'} (<id>_NN_mask.gif). "
                "The real data comes from Kaggle (see segkit.realdata.prepare_carvana)."
            )
        super().__init__(
            root / "train",
            root / "train_masks",
            mask_suffix="_mask",
            mask_convention="binary",
            num_classes=2,
            transform=transform,
        )
        self.root = root
        if ids is not None:
            self._keep(list(ids))

    @property
    def car_ids(self) -> list[str]:
        """Car id of each pair: the name without its "_NN" view number."""
        return [_car_id(name) for name in self.names]

    def _keep(self, ids: list[str]) -> None:
        wanted = set(ids)
        keep = [i for i, name in enumerate(self.names) if name in wanted or _car_id(name) in wanted]
        known = set(self.names) | set(self.car_ids)
        unknown = [x for x in ids if x not in known]
        if unknown:
            raise DataError(
                f"{len(unknown)} ids are neither image names nor car ids in "
                f"{self.root / 'train'}: {show_names(unknown)}"
            )
        self.image_paths = [self.image_paths[i] for i in keep]
        self.mask_paths = [self.mask_paths[i] for i in keep]
        self.names = [self.names[i] for i in keep]

    def __repr__(self) -> str:
        return (
            f"CarvanaDataset({str(self.root)!r}: {len(self)} images of "
            f"{len(set(self.car_ids))} cars, transform={self.transform is not None})"
        )


def _car_id(name: str) -> str:
    return name.rsplit("_", 1)[0]


def find_voc2012(root: str | Path) -> Path:
    """The VOC2012 folder (JPEGImages/ and SegmentationClass/ inside), given it or a
    folder above it (``root/VOCdevkit/VOC2012``, ``root/VOC2012``). Raises DataError."""
    root = Path(root)
    for candidate in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    raise DataError(
        f"no Pascal VOC 2012 folder at {root}: expected {root}/VOCdevkit/VOC2012/ "
        "(or the VOC2012 folder itself) holding JPEGImages/, SegmentationClass/ and "
        "ImageSets/Segmentation/. See segkit.realdata.prepare_voc2012."
    )


class VOCSegmentation(SegmentationPairs):
    """Pascal VOC 2012 segmentation (or the toy version in its layout).

    Args:
        root: the folder holding VOCdevkit/, or the VOC2012 folder itself.
        split: a file of ImageSets/Segmentation/, e.g. "train", "val", "trainval".
        num_classes: 21 for VOC (background + 20 object classes); masks with a
            larger index are an error (None: no check). The masks' 255 marks
            object borders and is ignored by loss and metrics.
        transform: callable ``transform(image, mask) -> (image, mask)``.

    Items: image (3, H, W) float32 in [0, 1], mask (H, W) int64 in
    {0..num_classes-1, 255}. Masks are palette PNGs read as indices.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        num_classes: int | None = 21,
    ):
        voc = find_voc2012(root)
        split_dir = voc / "ImageSets" / "Segmentation"
        split_file = split_dir / f"{split}.txt"
        if not split_file.is_file():
            known = sorted(p.stem for p in split_dir.glob("*.txt")) if split_dir.is_dir() else []
            raise DataError(f"split file not found: {split_file}; splits available: {known}")
        names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        if not names:
            raise DataError(f"split file {split_file} lists no images")
        image_paths = [voc / "JPEGImages" / f"{n}.jpg" for n in names]
        mask_paths = [voc / "SegmentationClass" / f"{n}.png" for n in names]
        missing = [p.name for p in image_paths + mask_paths if not p.is_file()]
        if missing:
            raise DataError(
                f"{split_file} lists {len(missing)} files that are missing under {voc}: "
                f"{show_names(missing)}. Was the archive fully extracted?"
            )
        super().__init__(
            image_paths,
            mask_paths,
            mask_convention="index",
            num_classes=num_classes,
            transform=transform,
        )
        self.root, self.split = voc, split

    def __repr__(self) -> str:
        return f"VOCSegmentation({str(self.root)!r}, split={self.split!r}: {len(self)} pairs)"


# ---------------------------------------------------------------------------
# train/validation split and loaders
# ---------------------------------------------------------------------------


def split_indices(
    n: int,
    val_fraction: float = 0.2,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """Split range(n) into sorted train and validation index lists.

    Deterministic: the same (n, val_fraction, seed, groups) always give the
    same split. With ``groups`` (e.g. ``CarvanaDataset.car_ids``) whole groups
    are split: all 16 views of one car land on the same side, so the
    validation score is not inflated by cars the model has already seen.
    val_fraction is then the fraction of groups.

    Returns: (train_idx, val_idx).
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    rng = random.Random(seed)
    if groups is None:
        order = list(range(n))
        rng.shuffle(order)
        n_val = round(n * val_fraction)
        if n_val == 0 or n_val == n:
            raise DataError(
                f"splitting {n} items with val_fraction={val_fraction} gives {n_val} "
                f"validation and {n - n_val} training items: one side would be empty"
            )
        return sorted(order[n_val:]), sorted(order[:n_val])

    if len(groups) != n:
        raise DataError(f"groups has {len(groups)} entries, expected one per item ({n})")
    unique = sorted(set(groups))
    rng.shuffle(unique)
    n_val = round(len(unique) * val_fraction)
    if n_val == 0 or n_val == len(unique):
        raise DataError(
            f"splitting {len(unique)} groups with val_fraction={val_fraction} gives "
            f"{n_val} validation and {len(unique) - n_val} training groups: one side "
            "would be empty (too few groups, e.g. cars, for this fraction)"
        )
    val_groups = set(unique[:n_val])
    train_idx = [i for i in range(n) if groups[i] not in val_groups]
    val_idx = [i for i in range(n) if groups[i] in val_groups]
    return train_idx, val_idx


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from torch's worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_loaders(
    train_ds: Dataset,
    val_ds: Dataset,
    batch_size: int,
    *,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    train_sampler=None,
    val_sampler=None,
) -> tuple[DataLoader, DataLoader]:
    """DataLoaders for training (shuffled) and validation (in order).

    The training order comes from a ``torch.Generator`` seeded with ``seed``,
    so two runs see the same batches; with ``num_workers > 0`` each worker's
    numpy and random are seeded too (the recipe of the PyTorch
    reproducibility notes). The last, smaller batch is kept (drop_last=False):
    average losses over pixels or images, not over batches.

    Speed (see ``segkit.speed.loader_settings``): ``pin_memory`` (page-locked batches,
    faster copies to a CUDA GPU), ``persistent_workers`` (keep the worker processes, and
    what they cached, from one epoch to the next). ``train_sampler``/``val_sampler``
    replace the shuffling, e.g. a ``DistributedSampler`` (``segkit.distributed``).

    Batches: images (N, C, H, W), masks (N, H, W) int64.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    extra = {"worker_init_fn": _seed_worker} if num_workers > 0 else {}
    extra["pin_memory"] = pin_memory
    extra["persistent_workers"] = persistent_workers and num_workers > 0
    train_loader = DataLoader(
        train_ds,
        batch_size=batch_size,
        shuffle=train_sampler is None,
        sampler=train_sampler,
        generator=generator,
        num_workers=num_workers,
        drop_last=False,
        **extra,
    )
    val_loader = DataLoader(
        val_ds,
        batch_size=batch_size,
        shuffle=False,
        sampler=val_sampler,
        num_workers=num_workers,
        drop_last=False,
        **extra,
    )
    return train_loader, val_loader


# ---------------------------------------------------------------------------
# ready-made train/val datasets for the course
# ---------------------------------------------------------------------------


def with_transforms(train_ds: SegmentationPairs, val_ds: SegmentationPairs,
                    size: tuple[int, int] | None, augment: bool, num_classes: int,
                    mask_fill: int = 0, cache=None, crop: bool = False):
    """Compute stats on train_ds (untransformed), attach train/val transforms.

    size is (H, W) (None: the files' size); with ``augment`` the training set gets
    ``train_transforms`` (pixels brought in by the random affine are labelled
    ``mask_fill``), else the validation transform. With a ``cache``
    (``segkit.cache.ResizedCache``) both datasets read through it and the stats come
    from the cached images. With ``crop`` the training images are random crops of
    ``size`` at their own scale (augmented or not) and the validation images are whole,
    at their own scale (padded at the right and bottom to the largest, padding not
    scored).

    Returns (train_ds, val_ds, stats) with stats the dict described in
    ``carvana_datasets``.
    """
    if cache is not None:
        from segkit.cache import CachedImages

        train_ds.cache = val_ds.cache = cache
        mean, std = compute_mean_std(CachedImages(train_ds, cache))
    else:
        mean, std = compute_mean_std(train_ds, size=size)
    if crop:
        train_ds.transform = train_transforms(size, mean, std, mask_fill=mask_fill, crop=True,
                                              hflip=augment, affine=augment, color=augment)
        val_ds.transform = eval_transforms(None, mean, std, pad_to=largest_size(val_ds),
                                           mask_fill=255)
    elif augment:
        train_ds.transform = train_transforms(size, mean, std, mask_fill=mask_fill)
        val_ds.transform = eval_transforms(size, mean, std)
    else:
        train_ds.transform = eval_transforms(size, mean, std)
        val_ds.transform = eval_transforms(size, mean, std)
    stats = {
        "mean": mean,
        "std": std,
        "size": list(size) if size is not None else None,
        "image_mode": train_ds.image_mode,
        "num_classes": num_classes,
    }
    return train_ds, val_ds, stats


def image_sizes(dataset: SegmentationPairs) -> list[tuple[int, int]]:
    """(H, W) of each of the dataset's images, read from the files' headers without
    decoding the pixels."""
    sizes = []
    for path in dataset.image_paths:
        with Image.open(path) as im:
            sizes.append((im.height, im.width))
    return sizes


def largest_size(dataset: SegmentationPairs) -> tuple[int, int]:
    """(H, W): the largest height and width of the dataset's images."""
    sizes = image_sizes(dataset)
    return max(h for h, _ in sizes), max(w for _, w in sizes)


def smallest_size(dataset: SegmentationPairs) -> tuple[int, int]:
    """(H, W): the smallest height and width of the dataset's images."""
    sizes = image_sizes(dataset)
    return min(h for h, _ in sizes), min(w for _, w in sizes)


def carvana_datasets(
    root: str | Path,
    size: tuple[int, int] = (64, 96),
    val_fraction: float = 0.2,
    seed: int = 0,
    augment: bool = True,
    cache=None,
) -> tuple[CarvanaDataset, CarvanaDataset, dict]:
    """Carvana train and validation datasets, split by car, ready for training.

    size is (H, W) (Carvana photos are 1280 x 1918, H x W, so (64, 96) keeps
    the 2:3 shape). Normalisation statistics come from the training split only.
    With augment=False the training set gets the validation transform.
    ``cache``: a ``segkit.cache.ResizedCache`` at ``size`` (decode and resize once).

    Returns: (train_ds, val_ds, stats) with stats a dict:
        "mean", "std": per-channel lists of floats (of the training images);
        "size": [H, W]; "image_mode": "RGB" or "L"; "num_classes": int
        (2 for the binary datasets: background and object).
    """
    everything = CarvanaDataset(root)
    train_idx, val_idx = split_indices(
        len(everything), val_fraction, seed, groups=everything.car_ids
    )
    train_ds = CarvanaDataset(root, ids=[everything.names[i] for i in train_idx])
    val_ds = CarvanaDataset(root, ids=[everything.names[i] for i in val_idx])
    return with_transforms(train_ds, val_ds, size, augment, num_classes=2, cache=cache)


def seasky_datasets(
    root: str | Path,
    size: tuple[int, int] | None = (64, 64),
    val_fraction: float = 0.2,
    seed: int = 0,
    augment: bool = True,
    cache=None,
) -> tuple[Dataset, Dataset, dict]:
    """Sea/sky train and validation datasets from ``root/images`` + ``root/masks``.

    Images are grayscale ("L", 1 channel); masks ``<stem>_mask.<ext>`` hold
    0/255 and are read as 0/1 (1 = the white class). size is (H, W),
    or None to keep the files' size. Statistics from the training split only.

    Returns: (train_ds, val_ds, stats), stats as in ``carvana_datasets``.
    """
    root = Path(root)
    options = dict(mask_suffix="_mask", image_mode="L", mask_convention="binary", num_classes=2)
    everything = PairedFolderDataset(root / "images", root / "masks", **options)
    train_idx, val_idx = split_indices(len(everything), val_fraction, seed)
    train_ds, val_ds = everything.subset(train_idx), everything.subset(val_idx)
    return with_transforms(train_ds, val_ds, size, augment, num_classes=2, cache=cache)


def voc_datasets(
    root: str | Path,
    size: tuple[int, int] = (64, 64),
    augment: bool = True,
    num_classes: int | None = None,
    cache=None,
) -> tuple[VOCSegmentation, VOCSegmentation, dict]:
    """VOC train and val datasets (ImageSets/Segmentation/train.txt and val.txt).

    size is (H, W). Statistics from the train split only. When augmenting,
    pixels that RandomAffine brings in from outside the picture are labelled
    255 (ignore), like VOC's own object borders.

    num_classes: None = 1 + the largest class index in the train and val
    masks (21 for the real VOC: background + 20 classes; fewer for a toy
    version).

    Returns: (train_ds, val_ds, stats), stats as in ``carvana_datasets``.
    """
    train_ds = VOCSegmentation(root, "train", num_classes=num_classes)
    val_ds = VOCSegmentation(root, "val", num_classes=num_classes)
    if num_classes is None:
        num_classes = max(count_classes(train_ds), count_classes(val_ds))
        train_ds.num_classes = val_ds.num_classes = num_classes  # checked from now on
    return with_transforms(train_ds, val_ds, size, augment, num_classes, mask_fill=255,
                            cache=cache)


def count_classes(dataset: SegmentationPairs, ignore_index: int = 255) -> int:
    """1 + the largest class index in the dataset's masks (``ignore_index`` left out)."""
    largest = 0
    for i in range(len(dataset)):
        values = dataset.load_mask(i).unique()
        values = values[values != ignore_index]
        if len(values):
            largest = max(largest, int(values.max()))
    return largest + 1
