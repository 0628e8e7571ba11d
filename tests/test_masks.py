"""Reading masks and turning them into class indices: segkit.masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segkit.errors import DataError, SegkitError
from segkit.masks import (
    VOC_CLASSES,
    VOC_COLORMAP,
    mask_to_index,
    read_mask,
    voc_colormap,
)


def blocks(h: int = 24, w: int = 32) -> np.ndarray:
    """(h, w) uint8 class map: 0 background, 1 and 2 two rectangles, 255 a border line."""
    m = np.zeros((h, w), dtype=np.uint8)
    m[4:12, 4:14] = 1
    m[14:22, 16:30] = 2
    m[3, 3:15] = 255
    return m


def save_palette_png(index: np.ndarray, path) -> None:
    im = Image.fromarray(index.astype(np.uint8), mode="P")
    im.putpalette(VOC_COLORMAP.flatten().tolist())
    im.save(path)


# -- colour map --------------------------------------------------------------


def test_voc_colormap_known_colours():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert tuple(cmap[0]) == (0, 0, 0)
    assert tuple(cmap[1]) == (128, 0, 0)  # aeroplane
    assert tuple(cmap[VOC_CLASSES.index("person")]) == (192, 128, 128)
    assert tuple(cmap[255]) == (224, 224, 192)  # ignore / object border
    assert np.array_equal(cmap, VOC_COLORMAP)
    assert len({tuple(c) for c in cmap}) == 256  # every index has its own colour
    assert voc_colormap(21).shape == (21, 3)


def test_errors_are_value_errors():
    assert issubclass(DataError, SegkitError) and issubclass(DataError, ValueError)


# -- mask_to_index: binary ---------------------------------------------------


def test_binary_0_255_becomes_0_1():
    m = np.zeros((8, 8), np.uint8)
    m[2:5, 2:6] = 255
    out = mask_to_index(Image.fromarray(m))
    assert out.dtype == np.int64 and out.shape == (8, 8)
    assert set(np.unique(out)) == {0, 1}
    assert out.sum() == 12


def test_binary_0_1_kept_and_empty_mask():
    m = np.zeros((8, 8), np.uint8)
    m[0, :3] = 1
    assert mask_to_index(Image.fromarray(m), convention="binary").sum() == 3
    assert mask_to_index(np.zeros((5, 5), np.uint8)).sum() == 0
    assert mask_to_index(np.ones((5, 5), bool)).sum() == 25


def test_jpeg_mask_is_refused_with_the_cause(tmp_path):
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 10:40] = 255
    Image.fromarray(m).save(tmp_path / "car_mask.jpg", quality=75)
    with pytest.raises(DataError) as info:
        read_mask(tmp_path / "car_mask.jpg")
    text = str(info.value)
    assert "car_mask.jpg" in text
    assert "JPEG" in text and "nearest" in text
    assert "distinct values" in text


def test_bilinear_resized_mask_is_refused():
    m = np.zeros((8, 8), np.uint8)
    m[:, 4:] = 255
    smooth = Image.fromarray(m).resize((13, 13), Image.BILINEAR)
    assert len(np.unique(np.asarray(smooth))) > 2  # the mistake really happened
    with pytest.raises(DataError, match="bilinear"):
        mask_to_index(smooth, convention="binary", path="m.png")


def test_many_gray_levels_message_lists_the_first_values():
    m = np.array([[0, 38, 75, 113], [150, 188, 226, 255]], np.uint8)
    with pytest.raises(DataError, match=r"\{0, 38, 75, 113, 150, 188, 226, 255\}"):
        mask_to_index(Image.fromarray(m), path="x.png")


# -- mask_to_index: palette / index -------------------------------------------


def test_palette_png_gives_indices_not_colours(tmp_path):
    save_palette_png(blocks(), tmp_path / "2007_000032.png")
    out = read_mask(tmp_path / "2007_000032.png", num_classes=21)
    assert out.dtype == np.int64
    assert np.array_equal(out, blocks().astype(np.int64))
    assert set(np.unique(out)) == {0, 1, 2, 255}


def test_carvana_gif_palette_0_1(tmp_path):
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 5:25] = 1
    im = Image.fromarray(m, mode="P")
    im.putpalette([0, 0, 0, 255, 255, 255])
    im.save(tmp_path / "abc_01_mask.gif")
    for convention in ("auto", "binary", "index"):
        out = read_mask(tmp_path / "abc_01_mask.gif", convention=convention)
        assert np.array_equal(out, m.astype(np.int64))


def test_0_255_mask_saved_as_palette_is_binary_not_ignore():
    m = np.zeros((8, 8), np.uint8)
    m[2:6, 2:6] = 255
    as_palette = Image.fromarray(m).convert("P")  # grayscale palette: 255 is white
    assert as_palette.mode == "P"
    out = mask_to_index(as_palette, num_classes=2)
    assert out.sum() == 16 and out.max() == 1  # not 255 = "ignore these pixels"
    voc_style = Image.fromarray(m, mode="P")
    voc_style.putpalette(VOC_COLORMAP.flatten().tolist())
    assert mask_to_index(voc_style).max() == 255  # VOC: 255 is the ignore border


def test_gray_class_indices_need_index_or_num_classes():
    m = np.array([[0, 1, 2], [3, 2, 1]], np.uint8)
    with pytest.raises(DataError, match="convention='index'"):
        mask_to_index(m)
    assert np.array_equal(mask_to_index(m, num_classes=4), m)
    assert np.array_equal(mask_to_index(m, convention="index"), m)


def test_num_classes_exceeded_is_an_error_but_ignore_is_allowed():
    m = np.array([[0, 1, 255], [5, 0, 0]], np.uint8)
    with pytest.raises(DataError, match=r"num_classes=3.*\{5\}"):
        mask_to_index(Image.fromarray(m, mode="P"), num_classes=3)
    ok = np.array([[0, 1, 255], [2, 0, 0]], np.uint8)
    assert mask_to_index(Image.fromarray(ok, mode="P"), num_classes=3)[0, 2] == 255


def test_0_255_mask_with_two_classes_after_conversion_passes_num_classes():
    m = np.array([[0, 255], [255, 0]], np.uint8)
    assert mask_to_index(m, num_classes=2).max() == 1


# -- mask_to_index: rgb ------------------------------------------------------


def test_rgb_voc_colours_to_indices(tmp_path):
    rgb = VOC_COLORMAP[blocks()]
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = read_mask(tmp_path / "rgb.png")  # auto: RGB -> VOC colour map
    assert np.array_equal(out, blocks().astype(np.int64))


def test_rgb_unknown_colours_listed_with_counts():
    rgb = VOC_COLORMAP[blocks()].copy()
    rgb[0, 0] = (10, 20, 30)
    rgb[1, :2] = (1, 2, 3)
    for k in range(6):  # 6 more stray colours: only 5 are listed
        rgb[23, k] = (200, 200 - k, 7)
    with pytest.raises(DataError) as info:
        mask_to_index(rgb, path="seg.png")
    text = str(info.value)
    assert "seg.png" in text and "8 colours" in text
    assert "(1, 2, 3): 2 px" in text
    assert "and 3 more" in text


def test_rgb_custom_colormap_dict():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (0, 255, 0)
    out = mask_to_index(rgb, convention="rgb", colormap={(0, 0, 0): 0, (0, 255, 0): 1})
    assert out.sum() == 8


def test_black_white_mask_saved_as_rgb_is_binary():
    m = np.zeros((6, 6), np.uint8)
    m[:3] = 255
    out = mask_to_index(Image.fromarray(m).convert("RGB"))
    assert out.sum() == 18


def test_rgb_mask_with_index_convention_is_refused():
    with pytest.raises(DataError, match="convention='rgb'"):
        mask_to_index(VOC_COLORMAP[blocks()], convention="index")


# -- mask_to_index: trimap ---------------------------------------------------


def test_oxford_pet_trimap():
    t = np.array([[1, 2, 3], [2, 2, 1]], np.uint8)
    out = mask_to_index(Image.fromarray(t), convention="trimap", num_classes=2)
    assert out.tolist() == [[1, 0, 255], [0, 0, 1]]
    with pytest.raises(DataError, match="trimap"):
        mask_to_index(np.array([[0, 1]], np.uint8), convention="trimap")


def test_unknown_convention():
    with pytest.raises(DataError, match="convention must be one of"):
        mask_to_index(np.zeros((2, 2), np.uint8), convention="palette")
