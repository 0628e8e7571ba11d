"""Datasets, split and loaders: segkit.data.

The fixtures write tiny datasets in the real layouts with PIL under tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from segkit.data import (
    CarvanaDataset,
    PairedFolderDataset,
    VOCSegmentation,
    carvana_datasets,
    make_loaders,
    seasky_datasets,
    split_indices,
    voc_datasets,
)
from segkit.errors import DataError
from segkit.masks import VOC_COLORMAP
from segkit.transforms import compute_mean_std

CARS = ["0cdf5b5d0ce1", "0d1a9caf4350", "1ae8a68a40e4", "2af7c265531e", "3c6acfceb552"]
H, W = 16, 24


def rectangle_mask(h: int, w: int, value: int, shift: int = 0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 4 + shift : 3 * w // 4 + shift] = value
    return m


def make_carvana(root: Path, cars=CARS, views: int = 3) -> Path:
    """root/train/<id>_NN.jpg + root/train_masks/<id>_NN_mask.gif (palette, 0/1).

    Car k is photographed with brightness 40 * k, so statistics tell cars apart.
    """
    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    for k, car in enumerate(cars):
        for view in range(1, views + 1):
            name = f"{car}_{view:02d}"
            image = np.full((H, W, 3), 40 * k, np.uint8)
            mask = rectangle_mask(H, W, 1, shift=view - 2)
            image[mask == 1] = 250
            Image.fromarray(image).save(root / "train" / f"{name}.jpg", quality=95)
            gif = Image.fromarray(mask, mode="P")
            gif.putpalette([0, 0, 0, 255, 255, 255])
            gif.save(root / "train_masks" / f"{name}_mask.gif")
    return root


def make_voc(root: Path, train=("2007_000032", "2007_000039"), val=("2007_000063",)) -> Path:
    """root/VOCdevkit/VOC2012 with palette PNG masks holding {0, class, 255}."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    for k, name in enumerate(list(train) + list(val)):
        h, w = 20 + 4 * k, 30 - 2 * k  # VOC images have different sizes
        index = rectangle_mask(h, w, k + 1)
        index[h // 4 - 1, :] = 255  # an object border
        Image.fromarray(VOC_COLORMAP[index]).save(voc / "JPEGImages" / f"{name}.jpg")
        png = Image.fromarray(index, mode="P")
        png.putpalette(VOC_COLORMAP.flatten().tolist())
        png.save(voc / "SegmentationClass" / f"{name}.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(train) + "\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return root


def make_paired(root: Path, stems, suffix: str = "_mask", mask_ext: str = "png") -> Path:
    """root/images/<stem>.png ('L') + root/masks/<stem><suffix>.<mask_ext> (0/255)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, stem in enumerate(stems):
        image = np.full((H, W), 10 * k, np.uint8)
        image[: H // 2] = 200  # bright sky on top
        mask = np.zeros((H, W), np.uint8)
        mask[: H // 2] = 255
        Image.fromarray(image).save(root / "images" / f"{stem}.png")
        Image.fromarray(mask).save(root / "masks" / f"{stem}{suffix}.{mask_ext}")
    return root


# -- CarvanaDataset ----------------------------------------------------------


def test_carvana_items(tmp_path):
    ds = CarvanaDataset(make_carvana(tmp_path))
    assert len(ds) == 15
    assert ds.names[0] == "0cdf5b5d0ce1_01"
    assert ds.car_ids[:4] == ["0cdf5b5d0ce1"] * 3 + ["0d1a9caf4350"]
    image, mask = ds[0]
    assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
    assert image.dtype == torch.float32 and image.shape == (3, H, W)
    assert 0 <= image.min() and image.max() <= 1
    assert mask.dtype == torch.int64 and mask.shape == (H, W)
    assert set(mask.unique().tolist()) == {0, 1}
    assert image[0][mask == 1].mean() > 0.9  # the mask sits on the bright car


def test_carvana_ids_select_names_or_whole_cars(tmp_path):
    root = make_carvana(tmp_path)
    assert CarvanaDataset(root, ids=["0d1a9caf4350_02"]).names == ["0d1a9caf4350_02"]
    two_cars = CarvanaDataset(root, ids=[CARS[1], CARS[3]])
    assert len(two_cars) == 6 and set(two_cars.car_ids) == {CARS[1], CARS[3]}
    with pytest.raises(DataError, match="ffffffffffff"):
        CarvanaDataset(root, ids=["ffffffffffff"])


def test_carvana_missing_folder_explains_layout(tmp_path):
    with pytest.raises(DataError, match="train_masks.*Kaggle"):
        CarvanaDataset(tmp_path)


def test_carvana_image_without_mask(tmp_path):
    root = make_carvana(tmp_path)
    (root / "train_masks" / f"{CARS[0]}_02_mask.gif").unlink()
    with pytest.raises(DataError, match=f"1 images have no mask.*{CARS[0]}_02.jpg"):
        CarvanaDataset(root)


def test_transform_receives_the_pair(tmp_path):
    seen = []

    def transform(image, mask):
        seen.append((type(image), type(mask)))
        return image * 2, mask + 1

    ds = CarvanaDataset(make_carvana(tmp_path), transform=transform)
    image, mask = ds[1]
    assert seen == [(tv_tensors.Image, tv_tensors.Mask)]
    assert image.max() > 1 and mask.min() == 1


# -- VOCSegmentation ---------------------------------------------------------


def test_voc_splits_and_root_forms(tmp_path):
    root = make_voc(tmp_path)
    train = VOCSegmentation(root, "train")
    assert len(train) == 2 and len(VOCSegmentation(root, "val")) == 1
    same = VOCSegmentation(root / "VOCdevkit" / "VOC2012", "train")
    assert same.image_paths == train.image_paths
    image, mask = train[1]
    assert image.shape == (3, 24, 28) and mask.shape == (24, 28)
    assert set(mask.unique().tolist()) == {0, 2, 255}


def test_voc_missing_split_and_missing_files(tmp_path):
    root = make_voc(tmp_path)
    with pytest.raises(DataError, match=r"test.txt.*\['train', 'val'\]"):
        VOCSegmentation(root, "test")
    (root / "VOCdevkit/VOC2012/SegmentationClass/2007_000039.png").unlink()
    with pytest.raises(DataError, match="1 files that are missing.*2007_000039.png"):
        VOCSegmentation(root, "train")
    with pytest.raises(DataError, match="no Pascal VOC 2012 folder"):
        VOCSegmentation(tmp_path / "elsewhere")


def test_voc_num_classes_checked(tmp_path):
    ds = VOCSegmentation(make_voc(tmp_path), "val", num_classes=2)  # mask holds class 3
    with pytest.raises(DataError, match="num_classes=2"):
        ds[0]


# -- PairedFolderDataset -----------------------------------------------------


def test_paired_folder_grayscale(tmp_path):
    root = make_paired(tmp_path, ["a", "b", "c"])
    (root / "images" / ".DS_Store").write_bytes(b"junk")
    (root / "masks" / "._a_mask.png").write_bytes(b"junk")  # macOS resource fork
    (root / "masks" / "notes.txt").write_text("hello")
    ds = PairedFolderDataset(root / "images", root / "masks", mask_suffix="_mask", image_mode="L")
    assert ds.names == ["a", "b", "c"]
    image, mask = ds[2]
    assert image.shape == (1, H, W) and image.dtype == torch.float32
    assert mask.tolist()[0][0] == 1 and mask.tolist()[-1][0] == 0  # 255 -> 1


def test_paired_folder_finds_the_one_rule_or_proposes_the_suffix(tmp_path):
    root = make_paired(tmp_path, ["a", "b"], suffix="_mask")
    ds = PairedFolderDataset(root / "images", root / "masks")  # a.png + a_mask.png: one rule
    assert [p.name for p in ds.mask_paths] == ["a_mask.png", "b_mask.png"]
    assert "names that share an id, e.g. a.png + a_mask.png" in repr(ds)
    with pytest.raises(DataError) as info:
        PairedFolderDataset(root / "images", root / "masks", mask_suffix="")
    text = str(info.value)
    assert "2 images have no mask" in text and "2 masks have no image" in text
    assert '--mask-suffix "_mask" pairs 2 of 2 images' in text


def test_paired_folder_suggests_no_suffix(tmp_path):
    root = make_paired(tmp_path, ["a", "b"], suffix="")
    with pytest.raises(DataError, match='--mask-suffix "" pairs 2 of 2'):
        PairedFolderDataset(root / "images", root / "masks", mask_suffix="_mask")


def test_paired_folder_refuses_two_files_with_one_name(tmp_path):
    root = make_paired(tmp_path, ["a", "b"], suffix="")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "images" / "a.jpg")
    for suffix in (None, ""):
        with pytest.raises(DataError, match="same name and different extensions.*a.jpg / a.png"):
            PairedFolderDataset(root / "images", root / "masks", mask_suffix=suffix)


def test_paired_folder_lists_at_most_five(tmp_path):
    root = make_paired(tmp_path, [f"img{i}" for i in range(8)])
    for i in range(7):
        (root / "masks" / f"img{i}_mask.png").unlink()
    with pytest.raises(DataError) as info:
        PairedFolderDataset(root / "images", root / "masks", mask_suffix="_mask")
    text = str(info.value)
    assert "7 images have no mask" in text and "(2 more)" in text
    assert "img5.png" not in text and "masks have no image" not in text


def test_paired_folder_images_and_masks_in_one_folder(tmp_path):
    root = make_paired(tmp_path, ["a", "b"])
    for mask in (root / "masks").iterdir():
        mask.rename(root / "images" / mask.name)
    ds = PairedFolderDataset(root / "images", root / "images", mask_suffix="_mask")
    assert ds.names == ["a", "b"] and ds.mask_paths[0].name == "a_mask.png"
    with pytest.raises(DataError, match="both in.*--mask-suffix"):
        PairedFolderDataset(root / "images", root / "images")


def test_paired_folder_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="images folder not found"):
        PairedFolderDataset(tmp_path / "images", tmp_path / "masks")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no images found.*it is empty"):
        PairedFolderDataset(tmp_path / "images", tmp_path / "masks")


def test_size_mismatch_names_both_files(tmp_path):
    root = make_paired(tmp_path, ["a", "b"])
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(root / "masks" / "b_mask.png")
    ds = PairedFolderDataset(root / "images", root / "masks", mask_suffix="_mask")
    ds[0]
    with pytest.raises(DataError) as info:
        ds[1]
    text = str(info.value)
    assert "b.png" in text and "b_mask.png" in text
    assert f"({W} x {H})" in text and "(12 x 8)" in text
    assert "another resolution" in text


# -- subset ------------------------------------------------------------------


def test_subset_reads_its_pairs_the_same_way(tmp_path):
    root = make_paired(tmp_path, ["a", "b", "c"])
    ds = PairedFolderDataset(root / "images", root / "masks", mask_suffix="_mask", image_mode="L",
                             mask_convention="binary", num_classes=2)
    part = ds.subset([2, 0])
    assert part.names == ["c", "a"] and part.transform is None
    assert (part.image_mode, part.mask_convention, part.num_classes) == ("L", "binary", 2)
    image, mask = part[0]
    assert torch.equal(image, ds.load_image(2)) and torch.equal(mask, ds.load_mask(2))


# -- split_indices -----------------------------------------------------------


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_indices(50, 0.2, seed=0)
    assert (train, val) == split_indices(50, 0.2, seed=0)
    assert len(val) == 10 and sorted(train + val) == list(range(50))
    assert split_indices(50, 0.2, seed=1)[1] != val
    assert val != list(range(40, 50)) and val != list(range(10))  # shuffled


def test_split_by_groups_keeps_each_car_on_one_side():
    groups = [f"car{i // 16}" for i in range(16 * 10)]
    train, val = split_indices(len(groups), 0.3, seed=0, groups=groups)
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in val})
    assert len(val) == 3 * 16 and sorted(train + val) == list(range(160))
    assert (train, val) == split_indices(len(groups), 0.3, seed=0, groups=groups)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_split_refuses_bad_fraction(fraction):
    with pytest.raises(DataError, match="val_fraction"):
        split_indices(10, fraction)


def test_split_refuses_an_empty_side():
    with pytest.raises(DataError, match="empty"):
        split_indices(3, 0.1)
    with pytest.raises(DataError, match="too few groups"):
        split_indices(32, 0.2, groups=["a"] * 16 + ["b"] * 16)


# -- make_loaders ------------------------------------------------------------


class Numbers(torch.utils.data.Dataset):
    """Item i is (tensor i, random draw): shows order and augmentation randomness."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.tensor(i), torch.rand(1)


def test_loaders_seeded_shuffle_and_last_batch():
    train_loader, val_loader = make_loaders(Numbers(), Numbers(), 4, seed=0)
    order = torch.cat([i for i, _ in train_loader]).tolist()
    again = torch.cat([i for i, _ in make_loaders(Numbers(), Numbers(), 4, seed=0)[0]]).tolist()
    other = torch.cat([i for i, _ in make_loaders(Numbers(), Numbers(), 4, seed=1)[0]]).tolist()
    assert order == again and sorted(order) == list(range(10))
    assert order != list(range(10)) and other != order
    assert [len(i) for i, _ in val_loader] == [4, 4, 2]  # last batch kept
    assert torch.cat([i for i, _ in val_loader]).tolist() == list(range(10))


def test_loaders_with_workers_are_reproducible():
    def run():
        loader, _ = make_loaders(Numbers(), Numbers(), 5, seed=7, num_workers=2)
        return [(i.tolist(), r.tolist()) for i, r in loader]

    assert run() == run()


# -- ready-made datasets -----------------------------------------------------


def test_carvana_datasets_split_by_car_and_train_only_stats(tmp_path):
    root = make_carvana(tmp_path)
    train_ds, val_ds, stats = carvana_datasets(root, size=(8, 12), val_fraction=0.4, seed=0)
    assert set(train_ds.car_ids).isdisjoint(val_ds.car_ids)
    assert len(train_ds) + len(val_ds) == 15 and len(val_ds) == 6
    mean = stats["mean"]
    assert stats["num_classes"] == 2 and stats["size"] == [8, 12]
    plain_train = CarvanaDataset(root, ids=train_ds.names)
    assert mean == pytest.approx(compute_mean_std(plain_train, size=(8, 12))[0])
    everything = compute_mean_std(CarvanaDataset(root), size=(8, 12))[0]
    assert mean != pytest.approx(everything)  # validation cars did not leak into the stats
    image, mask = train_ds[0]
    assert image.shape == (3, 8, 12) and mask.shape == (8, 12) and mask.dtype == torch.int64
    v1, v2 = val_ds[0], val_ds[0]
    assert torch.equal(v1[0], v2[0])  # validation is not augmented


def test_seasky_and_voc_datasets(tmp_path):
    root = make_paired(tmp_path / "seasky", [f"scene{i:03d}" for i in range(10)])
    train_ds, val_ds, stats = seasky_datasets(root, size=(8, 8))
    assert len(train_ds) == 8 and len(val_ds) == 2
    assert set(train_ds.names).isdisjoint(val_ds.names)
    assert len(stats["mean"]) == 1 and stats["image_mode"] == "L"
    image, mask = val_ds[0]
    assert image.shape == (1, 8, 8) and set(mask.unique().tolist()) == {0, 1}

    train_ds, val_ds, stats = voc_datasets(make_voc(tmp_path / "voc"), size=(16, 16))
    assert len(train_ds) == 2 and len(val_ds) == 1 and len(stats["std"]) == 3
    assert stats["num_classes"] == 4  # classes 1, 2 in train and 3 in val, + background
    image, mask = train_ds[0]
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)
    loader, _ = make_loaders(train_ds, val_ds, batch_size=2)
    images, masks = next(iter(loader))
    assert images.shape == (2, 3, 16, 16) and masks.shape == (2, 16, 16)
