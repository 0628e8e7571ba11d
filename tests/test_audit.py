"""Auditing a whole dataset before training (segkit.audit): every problem at once, each
with the file, the cause and the option that fixes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit import toydata
from segkit.audit import audit_dataset
from segkit.data import CarvanaDataset, PairedFolderDataset
from segkit.errors import DataError
from segkit.labels import MaskSpec
from segkit.metrics import dice_per_image


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_the_audit_lists_every_problem_at_once_with_its_fix(tmp_path):
    good = np.zeros((8, 8), np.uint8)
    good[:2] = 255
    for i in range(6):
        write(tmp_path / "im" / f"{i}.png", np.full((8, 8), 90, np.uint8))
        write(tmp_path / "ma" / f"{i}.png", good)
    (tmp_path / "im" / "1.png").write_bytes((tmp_path / "im" / "0.png").read_bytes()[:50])
    write(tmp_path / "ma" / "2.png", np.zeros((6, 8), np.uint8))                  # size
    write(tmp_path / "ma" / "3.png", np.arange(64, dtype=np.uint8).reshape(8, 8))  # JPEG-like
    (tmp_path / "ma" / "4.png").write_text("<html>rate limited</html>")           # not an image
    ds = PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L", spec=MaskSpec())
    report = audit_dataset(ds, workers=2)
    assert report.bad_indices == [1, 2, 3, 4] and report.n_pairs == 6
    assert [kind for _, kind, _ in report.problems] == ["unreadable", "size", "values",
                                                       "unreadable"]
    text = str(report)
    assert "1.png: the file is cut short" in text and "--drop-bad-files" in text
    assert "is 8x8 but its mask 2.png is 8x6" in text
    assert "3.png" in text and "--foreground VALUE" in text
    assert "4.png is not an image" in text
    assert report.pixels == {0: 2 * 48, 1: 2 * 16}
    with pytest.raises(DataError, match="audited 6 pairs: 4 with problems"):
        report.raise_if_problems()


def test_the_audit_reads_the_masks_by_the_datasets_convention(tmp_path):
    """0/255 masks, a mask of another size, a cut-short image and a JPEG-compressed mask,
    in a dataset read by mask_convention (the known layouts' way)."""
    mask = np.zeros((16, 24), np.uint8)
    mask[4:12, 6:18] = 255
    noise = np.random.default_rng(0).integers(0, 256, (16, 24), dtype=np.uint8)
    for name in "abcd":
        write(tmp_path / "images" / f"{name}.png", noise)  # noise: a large file to cut short
        write(tmp_path / "masks" / f"{name}_mask.png", mask)
    write(tmp_path / "masks" / "b_mask.png", np.zeros((8, 12), np.uint8))
    data = (tmp_path / "images" / "c.png").read_bytes()
    (tmp_path / "images" / "c.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "masks" / "d_mask.png").unlink()
    Image.fromarray(mask).save(tmp_path / "masks" / "d_mask.jpg", quality=50)
    ds = PairedFolderDataset(tmp_path / "images", tmp_path / "masks", mask_suffix="_mask")
    report = audit_dataset(ds)
    found = {i: (kind, text) for i, kind, text in report.problems}
    assert sorted(found) == [1, 2, 3]
    assert found[1][0] == "size" and "24x16 but its mask b_mask.png is 12x8" in found[1][1]
    assert found[2][0] == "unreadable" and "c.png: the file is cut short" in found[2][1]
    assert found[3][0] == "values" and "JPEG" in found[3][1]


def test_a_clean_dataset_passes_with_its_sizes_and_classes(tmp_path):
    root = toydata.generate("carvana", tmp_path / "carvana", n=8, size=(32, 48))  # (H, W)
    report = audit_dataset(CarvanaDataset(root))
    assert report.ok and report.n_pairs == 8 and report.bad_indices == []
    assert report.sizes == {(32, 48): 8} and report.modes == {"RGB": 8}
    assert "image sizes (W x H): 48x32: 8" in str(report)
    assert set(report.pixels) == {0, 1} and sum(report.pixels.values()) == 8 * 48 * 32
    assert "audited 8 pairs: 0 with problems" in report.summary()
    report.raise_if_problems()


def test_the_audit_wants_a_segkit_dataset():
    with pytest.raises(TypeError, match="segkit datasets"):
        audit_dataset([(torch.zeros(3, 4, 4), torch.zeros(4, 4))])


def test_the_audit_warns_when_the_foreground_is_most_of_the_image(tmp_path):
    """Binary Dice scores class 1 only: on masks where it covers 80 % of the pixels an
    all-foreground prediction scores 2*0.8/1.8 = 0.889; the audit says so and names
    --foreground, and with --foreground 0 the small object is what Dice scores."""
    mask = np.ones((10, 10), np.uint8)
    mask[:2] = 0  # the object of interest: 20 % of the pixels, value 0
    for i in range(3):
        write(tmp_path / "im" / f"{i}.png", np.zeros((10, 10), np.uint8))
        write(tmp_path / "ma" / f"{i}.png", mask)
    ds = PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L", spec=MaskSpec())
    [note] = audit_dataset(ds).notes
    assert "covers 80%" in note and "Dice 0.889" in note and "--foreground" in note

    everything = torch.ones(1, 10, 10, dtype=torch.long)
    assert dice_per_image(everything, ds.load_mask(0)[None]).item() == pytest.approx(0.889, abs=1e-3)
    flipped = PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L",
                                  spec=MaskSpec(foreground=0))
    assert audit_dataset(flipped).notes == []
    assert dice_per_image(everything, flipped.load_mask(0)[None]).item() == pytest.approx(1 / 3)
