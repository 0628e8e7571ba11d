"""Pairing your own folders (segkit.folders) and reading their masks (segkit.labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.errors import DataError
from segkit.folders import match_names, pair_folders
from segkit.labels import MaskSpec, read_class_names
from segkit.masks import VOC_COLORMAP


def write(path: Path, array: np.ndarray, palette: list[int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array, mode="P" if palette else None)
    if palette:
        im.putpalette(palette)
    im.save(path)
    return path


GREY = np.zeros((8, 8), np.uint8)


def drive_layout(root: Path, ids=range(21, 25), fov: bool = True) -> Path:
    """DRIVE-like: images/21_training.tif, masks/21_manual1.gif (+ 21_training_mask.gif)."""
    for i in ids:
        write(root / "images" / f"{i}_training.tif", GREY)
        write(root / "masks" / f"{i}_manual1.gif", GREY)
        if fov:
            write(root / "masks" / f"{i}_training_mask.gif", GREY + 255)
    return root


def test_identical_names_pair_whatever_the_extensions(tmp_path):
    for name in ("b", "a", "c"):
        write(tmp_path / "im" / f"{name}.jpg", GREY)
        write(tmp_path / "ma" / f"{name}.png", GREY)
    (tmp_path / "im" / ".DS_Store").write_text("junk")
    pairing = pair_folders(tmp_path / "im", tmp_path / "ma")
    assert [p.name for p in pairing.image_paths] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [p.name for p in pairing.mask_paths] == ["a.png", "b.png", "c.png"]
    assert pairing.how == "identical names"


def test_patterns_pair_drive_names_and_count_what_they_leave_out(tmp_path):
    root = drive_layout(tmp_path)
    pairing = pair_folders(root / "images", root / "masks", image_pattern="{id}_training.tif",
                           mask_pattern="{id}_manual1.gif")
    assert [m.name for m in pairing.mask_paths] == [f"{i}_manual1.gif" for i in range(21, 25)]
    assert pairing.left_out == 4  # the field-of-view masks


def test_two_masks_fitting_one_image_is_an_error_proposing_both_patterns(tmp_path):
    root = drive_layout(tmp_path)
    with pytest.raises(DataError) as err:
        pair_folders(root / "images", root / "masks")
    text = str(err.value)
    assert "21_training.tif: 21_manual1.gif, 21_training_mask.gif" in text
    assert '--image-pattern "{id}_training.tif" --mask-pattern "{id}_manual1.gif"' in text
    assert '--mask-pattern "{id}_training_mask.gif"' in text


def test_a_suffix_never_silently_pairs_the_wrong_masks(tmp_path):
    """mask_suffix='_mask' fits 21_training_mask.gif; the 21_manual1.gif next to it must
    not be passed over in silence (the trap: training on field-of-view masks)."""
    root = drive_layout(tmp_path)
    with pytest.raises(DataError, match=r"4 masks have no image: 21_manual1.gif") as err:
        pair_folders(root / "images", root / "masks", mask_suffix="_mask")
    assert "Two kinds of masks fit the same images" in str(err.value)
    assert '--mask-pattern "{id}_manual1.gif" pairs 4 of 4 images' in str(err.value)


def test_one_loose_rule_that_pairs_every_file_is_used_and_named(tmp_path):
    root = drive_layout(tmp_path, fov=False)
    pairing = pair_folders(root / "images", root / "masks")
    assert pairing.how == "names that share an id, e.g. 21_training.tif + 21_manual1.gif"
    assert len(pairing.image_paths) == 4


def test_unpaired_files_show_both_sides_and_the_option_that_pairs_them(tmp_path):
    for name in ("cat_1", "cat_2", "dog_1"):
        write(tmp_path / "im" / f"{name}.jpg", GREY)
        write(tmp_path / "ma" / f"{name}-label.png", GREY)
    write(tmp_path / "ma" / "cat_1-label-old.png", GREY)
    with pytest.raises(DataError) as err:
        pair_folders(tmp_path / "im", tmp_path / "ma", mask_suffix="_mask")
    text = str(err.value)
    assert "3 images have no mask: cat_1.jpg, cat_2.jpg, dog_1.jpg" in text
    assert "4 masks have no image" in text and "cat_1-label.png" in text
    assert '--mask-suffix "-label" pairs 3 of 3 images' in text


def test_pattern_matching_two_files_for_one_id_is_an_error(tmp_path):
    root = drive_layout(tmp_path)
    with pytest.raises(DataError, match="ids match several masks"):
        pair_folders(root / "images", root / "masks", image_pattern="{id}_training.tif",
                     mask_pattern="{id}_*.gif")
    with pytest.raises(DataError, match="21: 21_manual1.gif, 21_training_mask.gif"):
        match_names(["21_training.tif"], ["21_manual1.gif", "21_training_mask.gif"],
                    "{id}_training.tif", "{id}_*.gif")
    assert match_names(["21_training.tif", "22_training.tif"], ["21_manual1.gif", "x.gif"],
                       "{id}_training.tif", "{id}_manual1.gif") == [("21_training.tif",
                                                                     "21_manual1.gif")]


def test_same_folder_needs_a_suffix(tmp_path):
    write(tmp_path / "a.png", GREY)
    write(tmp_path / "a_mask.png", GREY)
    with pytest.raises(DataError, match="both in"):
        pair_folders(tmp_path, tmp_path)
    pairing = pair_folders(tmp_path, tmp_path, mask_suffix="_mask")
    assert [(i.name, m.name) for i, m in zip(pairing.image_paths, pairing.mask_paths)] == [
        ("a.png", "a_mask.png")]


# --------------------------------------------------------------------------- mask values


def test_binary_foreground_and_ignore(tmp_path):
    mask = np.array([[0, 0, 128, 255]], np.uint8)
    path = write(tmp_path / "m.png", mask)
    assert MaskSpec(foreground=128, ignore_value=255).read(path).tolist() == [[0, 0, 1, 255]]
    assert MaskSpec(foreground=0, ignore_value=255).read(path).tolist() == [[1, 1, 0, 255]]
    with pytest.raises(DataError, match="holds 3 values"):
        MaskSpec(foreground=255).read(path)  # 0 and 128 cannot both be background
    zero_one = write(tmp_path / "z.png", np.array([[0, 1, 255]], np.uint8))
    assert MaskSpec(ignore_value=255).read(zero_one).tolist() == [[0, 1, 255]]


def test_palette_indices_grey_values_value_map_and_rgb_colours(tmp_path):
    labels = np.array([[0, 3, 20, 255]], np.uint8)
    palette = write(tmp_path / "p.png", labels, VOC_COLORMAP.flatten().tolist())
    assert MaskSpec(num_classes=21).read(palette).tolist() == [[0, 3, 20, 255]]
    with pytest.raises(DataError, match="class indices must be 0..4"):
        MaskSpec(num_classes=5).read(palette)
    grey = write(tmp_path / "g.png", np.array([[0, 128, 255]], np.uint8))
    assert MaskSpec(value_map={0: 0, 128: 1, 255: 2}).read(grey).tolist() == [[0, 1, 2]]
    rgb = write(tmp_path / "c.png", VOC_COLORMAP[labels])
    assert MaskSpec(num_classes=21).read(rgb).tolist() == [[0, 3, 20, 255]]
    own = {(0, 0, 0): 0, (250, 50, 50): 1}
    red = write(tmp_path / "r.png", np.array([[[0, 0, 0], [250, 50, 50]]], np.uint8))
    assert MaskSpec(num_classes=2, colormap=own).read(red).tolist() == [[0, 1]]


def test_class_names_files_labelme_and_labelmap(tmp_path):
    labelme = tmp_path / "class_names.txt"
    labelme.write_text("\n".join(["__ignore__", "_background_"] + [f"c{i}" for i in range(20)]))
    names, colours = read_class_names(labelme)
    assert len(names) == 21 and names[0] == "_background_" and colours is None
    assert MaskSpec(class_names=names).num_classes == 21
    labelmap = tmp_path / "labelmap.txt"
    labelmap.write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:64,0,0::\n")
    assert read_class_names(labelmap) == (["background", "cat"], {(0, 0, 0): 0, (64, 0, 0): 1})
    labelmap.write_text("cat:64,0::\n")
    with pytest.raises(DataError, match="line 1"):
        read_class_names(labelmap)
