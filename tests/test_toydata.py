"""The toy datasets: layouts of the real datasets, determinism, the committed copies."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit import toydata
from segkit.errors import DataError
from segkit.toydata.carvana import rle_decode, rle_encode
from segkit.toydata.voc import VOC_TOY_CLASSES, void_border, voc_colormap

SMALL = {"carvana": dict(n=8, size=(64, 96)), "seasky": dict(n=6, size=(48, 64)),
         "voc": dict(n=8, size=(48, 64))}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _masks(root: Path) -> dict[str, np.ndarray]:
    """Every mask file under root, as arrays of its stored values."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.suffix == ".gif" or (p.suffix == ".png" and ("masks" in p.parts or "SegmentationClass" in p.parts)):
            out[str(p.relative_to(root))] = np.asarray(Image.open(p))
    return out


def _images(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.suffix == ".jpg" or (p.suffix == ".png" and "images" in p.parts):
            out[str(p.relative_to(root))] = np.asarray(Image.open(p), dtype=np.float32)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    """Each dataset, small, seed 1."""
    base = tmp_path_factory.mktemp("toy")
    return {name: toydata.generate(name, base / name, seed=1, **kw) for name, kw in SMALL.items()}


# ----------------------------------------------------------------------------- API


def test_datasets_lists_the_three_toy_datasets():
    assert set(toydata.DATASETS) == {"carvana", "seasky", "voc"}


def test_unknown_name_is_a_data_error_listing_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="carvana.*seasky.*voc"):
        toydata.generate("cityscapes", tmp_path / "x")
    with pytest.raises(DataError, match="carvana"):
        toydata.embedded_root("cityscapes")


def test_non_empty_root_needs_overwrite(tmp_path):
    root = tmp_path / "sea"
    toydata.generate("seasky", root, n=3, size=(24, 32))
    (root / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty.*overwrite=True"):
        toydata.generate("seasky", root, n=2, size=(24, 32))
    toydata.generate("seasky", root, n=2, size=(24, 32), overwrite=True)
    assert len(list((root / "images").glob("*.png"))) == 2       # old images gone
    assert (root / "notes.txt").read_text() == "mine"             # other files kept


@pytest.mark.parametrize("bad", [dict(n=0), dict(size=(8, 8)), dict(size="big")])
def test_bad_n_or_size_is_a_data_error(tmp_path, bad):
    with pytest.raises(DataError):
        toydata.generate("seasky", tmp_path / "x", **bad)


def test_generate_returns_root_and_size_is_height_width(small):
    """size is (H, W), as everywhere in segkit; PIL says (W, H)."""
    img = Image.open(next((small["carvana"] / "train").glob("*.jpg")))
    assert img.size == (96, 64)
    img = Image.open(next((small["seasky"] / "images").glob("*.png")))
    assert img.size == (64, 48)
    tall = toydata.generate("seasky", small["seasky"].parent / "tall", n=1, size=(40, 24))
    assert Image.open(next((tall / "images").glob("*.png"))).size == (24, 40)


def test_carvana_n_is_rounded_to_whole_cars(tmp_path):
    root = toydata.generate("carvana", tmp_path / "c", n=6, size=(32, 48))
    assert len(list((root / "train").glob("*.jpg"))) == 8


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ["carvana", "seasky", "voc"])
def test_same_seed_same_data_other_seed_other_data(tmp_path, small, name):
    again = toydata.generate(name, tmp_path / "again", seed=1, **SMALL[name])
    other = toydata.generate(name, tmp_path / "other", seed=2, **SMALL[name])
    assert _files(again) == _files(small[name])
    for (key, a), b in zip(_masks(small[name]).items(), _masks(again).values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    for (key, a), b in zip(_images(small[name]).items(), _images(again).values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    masks_1, masks_2 = list(_masks(small[name]).values()), list(_masks(other).values())
    assert any(a.shape != b.shape or (a != b).any() for a, b in zip(masks_1, masks_2))


# ----------------------------------------------------------------------------- layouts


def test_carvana_layout_is_kaggles(small):
    root = small["carvana"]
    images = sorted((root / "train").glob("*.jpg"))
    assert len(images) == 8
    for p in images:
        assert re.fullmatch(r"[0-9a-f]{12}_(0[1-9]|1[0-6])", p.stem), p.name
        mask_path = root / "train_masks" / f"{p.stem}_mask.gif"
        mask = Image.open(mask_path)
        assert mask.mode == "P"
        assert mask.size == Image.open(p).size
        assert Image.open(p).mode == "RGB"
        values = np.asarray(mask)
        assert set(np.unique(values)) == {0, 1}
        palette = np.array(mask.getpalette()[:6]).reshape(2, 3)
        np.testing.assert_array_equal(palette, [[0, 0, 0], [255, 255, 255]])
    # 4 views per car
    cars = {p.stem[:12] for p in images}
    assert len(cars) == 2


def test_carvana_csvs(small):
    root = small["carvana"]
    with open(root / "train_masks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["img"] for r in rows] == sorted(p.name for p in (root / "train").glob("*.jpg"))
    for r in rows:
        mask = np.asarray(Image.open(root / "train_masks" / r["img"].replace(".jpg", "_mask.gif")))
        np.testing.assert_array_equal(rle_decode(r["rle_mask"], mask.shape), mask)
    with open(root / "metadata.csv", newline="") as f:
        meta = list(csv.DictReader(f))
    assert list(meta[0]) == ["id", "year", "make", "model"]
    assert {m["id"] for m in meta} == {r["img"][:12] for r in rows}


def test_rle_is_kaggles_row_major_one_based():
    mask = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]], np.uint8)
    assert rle_encode(mask) == "2 3 9 1"
    np.testing.assert_array_equal(rle_decode("2 3 9 1", (3, 3)), mask)
    assert rle_encode(np.zeros((2, 2), np.uint8)) == ""


def test_seasky_layout_and_0_255_masks(small):
    root = small["seasky"]
    images = sorted((root / "images").glob("*.png"))
    assert len(images) == 6
    for p in images:
        img, mask = Image.open(p), Image.open(root / "masks" / f"{p.stem}_mask.png")
        assert img.mode == "L" and mask.mode == "L"
        assert img.size == mask.size == (64, 48)
        assert set(np.unique(np.asarray(mask))) <= {0, 255}
    # sea is below the sky: the bottom row is mostly sea, the top row mostly sky
    masks = np.stack([np.asarray(Image.open(p)) for p in sorted((root / "masks").glob("*.png"))])
    assert masks[:, -1].mean() > 200 and masks[:, 0].mean() < 55


def test_voc_layout_reads_with_torchvision(small):
    from torchvision.datasets import VOCSegmentation

    root = small["voc"]
    train = VOCSegmentation(str(root), year="2012", image_set="train", download=False)
    val = VOCSegmentation(str(root), year="2012", image_set="val", download=False)
    assert len(train) == 6 and len(val) == 2
    image, target = train[0]
    assert image.mode == "RGB" and target.mode == "P"
    assert image.size == target.size == (64, 48)
    base = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    names = {s: (base / f"{s}.txt").read_text().split() for s in ("train", "val", "trainval")}
    assert sorted(names["train"] + names["val"]) == names["trainval"]
    assert not set(names["train"]) & set(names["val"])
    assert all(re.fullmatch(r"20(0[7-9]|1[01])_\d{6}", n) for n in names["trainval"])


def test_voc_masks_are_palette_pngs_with_classes_and_void(small):
    seen = set()
    for p in (small["voc"] / "VOCdevkit" / "VOC2012" / "SegmentationClass").glob("*.png"):
        mask = Image.open(p)
        assert mask.mode == "P"
        palette = np.array(mask.getpalette()).reshape(-1, 3)
        np.testing.assert_array_equal(palette[:256], voc_colormap(256)[: len(palette)])
        seen |= set(np.unique(np.asarray(mask)).tolist())
    assert seen <= {0, 1, 2, 3, 4, 255}
    assert {0, 255} <= seen


def test_voc_colormap_is_the_standard_one():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]
    assert cmap[2].tolist() == [0, 128, 0]
    assert cmap[15].tolist() == [192, 128, 128]     # person
    assert cmap[255].tolist() == [224, 224, 192]    # void
    assert VOC_TOY_CLASSES == ("background", "disc", "box", "triangle", "ring")
    assert toydata.VOC_TOY_CLASSES is VOC_TOY_CLASSES


def test_void_border_is_a_band_on_both_sides_of_every_edge():
    inst = np.zeros((12, 12), np.int32)
    inst[3:9, 3:9] = 1
    inst[3:9, 6:9] = 2                        # a second object touching the first
    void = void_border(inst, radius=1)
    assert void[2, 5] and void[3, 5] and not void[5, 4] and not void[0, 0]
    assert void[5, 5] and void[5, 6]          # between the two objects
    edge = np.zeros((6, 6), np.int32)
    edge[:, :3] = 1                           # an object cut by the frame
    assert not void_border(edge)[:, 0].any()  # the frame is not an object edge


# ----------------------------------------------------------------------------- the committed copies


@pytest.mark.parametrize("name", ["carvana", "seasky", "voc"])
def test_committed_copy_is_what_the_generator_writes(tmp_path, name):
    committed = Path(__file__).resolve().parents[1] / "datasets" / f"toy_{name}"
    assert committed.is_dir(), f"{committed} is missing: run python datasets/make_embedded.py"
    fresh = toydata.generate(name, tmp_path / name, seed=0)
    assert _files(fresh) == _files(committed)
    fresh_masks, committed_masks = _masks(fresh), _masks(committed)
    for key in committed_masks:
        np.testing.assert_array_equal(fresh_masks[key], committed_masks[key], err_msg=key)
    fresh_images, committed_images = _images(fresh), _images(committed)
    for key in committed_images:
        diff = np.abs(fresh_images[key] - committed_images[key]).mean()
        assert diff < 2.0, f"{key}: mean abs difference {diff:.2f} grey levels"
    for text in [p for p in _files(committed) if p.endswith((".csv", ".txt"))]:
        assert (fresh / text).read_text() == (committed / text).read_text(), text


def test_embedded_root_is_the_committed_copy():
    for name in toydata.DATASETS:
        root = toydata.embedded_root(name)
        assert root == Path(__file__).resolve().parents[1] / "datasets" / f"toy_{name}"


def test_embedded_root_without_the_repo_generates_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(toydata, "REPO_DATASETS", tmp_path / "no-repo")
    monkeypatch.setenv("SEGKIT_DATA", str(tmp_path / "cache"))
    small_spec = dataclasses.replace(toydata.DATASETS["seasky"], default_n=3, default_size=(24, 32))
    monkeypatch.setitem(toydata.DATASETS, "seasky", small_spec)
    root = toydata.embedded_root("seasky")
    assert root == tmp_path / "cache" / "toy_seasky"
    assert len(list((root / "images").glob("*.png"))) == 3
    stamp = (root / "images" / "scene_0000.png").stat().st_mtime_ns
    assert toydata.embedded_root("seasky") == root
    assert (root / "images" / "scene_0000.png").stat().st_mtime_ns == stamp   # not written again
    assert not list((tmp_path / "cache").glob(".toy_*"))                    # no leftovers


# ----------------------------------------------------------------------------- what the lessons rely on


def test_carvana_cars_cover_a_realistic_part_of_the_frame():
    root = toydata.embedded_root("carvana")
    fractions = [np.asarray(Image.open(p)).mean() for p in (root / "train_masks").glob("*.gif")]
    assert len(fractions) == 192
    assert 0.2 < min(fractions) and max(fractions) < 0.5


def test_voc_classes_are_imbalanced():
    root = toydata.embedded_root("voc") / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    counts = np.zeros(256, np.int64)
    for p in root.glob("*.png"):
        counts += np.bincount(np.asarray(Image.open(p)).ravel(), minlength=256)
    share = counts[:5] / counts[:5].sum()
    assert share[0] > 0.6                      # background dominates
    assert share[1:].min() == share[3]         # triangles are the rare class
    assert 0.002 < share[3] < 0.3 * share[1:].max()
    assert counts[255] > 0
