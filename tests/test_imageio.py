"""Image files are opened in one place (segkit.imageio.open_image) and read faithfully
(segkit.imageio.load_image), by every reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from torchvision.transforms.v2 import functional as TF

from segkit.errors import DataError
from segkit.imageio import (
    IMAGE_EXTENSIONS,
    faithful_image,
    guess_image_mode,
    is_8_bit,
    load_image,
    open_image,
    to_uint8,
)


def ramp16(height=16, width=24, top=4095) -> np.ndarray:
    return np.linspace(0, top, height * width).reshape(height, width).astype(np.uint16)


# -- open_image: every file is opened here -------------------------------------


def test_open_image_keeps_the_files_own_mode(tmp_path):
    Image.fromarray(np.full((10, 20, 3), 90, np.uint8)).save(tmp_path / "a.png")
    im = open_image(tmp_path / "a.png")
    assert im.mode == "RGB" and im.size == (20, 10)
    palette = Image.fromarray(np.array([[0, 1], [2, 255]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0] * 128)
    palette.save(tmp_path / "m.png")
    assert open_image(tmp_path / "m.png").mode == "P"  # indices, not colours
    Image.fromarray(ramp16()).save(tmp_path / "scan.tif")
    assert open_image(tmp_path / "scan.tif").mode.startswith("I;16")  # not clipped to 8 bits


def test_open_image_names_a_missing_file_a_folder_and_a_web_page(tmp_path):
    with pytest.raises(DataError, match="not found.*nope.jpg"):
        open_image(tmp_path / "nope.jpg")
    with pytest.raises(DataError, match="is a folder"):
        open_image(tmp_path)
    (tmp_path / "page.jpg").write_text("<html>Too many requests</html>")
    with pytest.raises(DataError, match="page.jpg.*not an image"):
        open_image(tmp_path / "page.jpg")


@pytest.mark.parametrize("ext", ["jpg", "png", "gif"])
def test_open_image_refuses_a_file_cut_short(tmp_path, ext):
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    if ext == "gif":
        im = im.convert("P")
    im.save(tmp_path / f"full.{ext}")
    data = (tmp_path / f"full.{ext}").read_bytes()
    (tmp_path / f"cut.{ext}").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"cut.{ext}: the file is cut short"):
        open_image(tmp_path / f"cut.{ext}")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # we never switch PIL's safety off


def test_faithful_image_mode_and_guessed_image_mode(tmp_path):
    Image.fromarray(ramp16()).save(tmp_path / "grey.tif")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    assert faithful_image(tmp_path / "grey.tif").size == (24, 16)
    assert guess_image_mode([tmp_path / "grey.tif"]) == "L"
    assert guess_image_mode([tmp_path / "missing.png", tmp_path / "rgb.png"]) == "RGB"
    assert is_8_bit("P") and is_8_bit("L") and not is_8_bit("I;16") and not is_8_bit("CMYK")
    assert ".tif" in IMAGE_EXTENSIONS and ".txt" not in IMAGE_EXTENSIONS


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_grey_is_scaled_by_its_range_not_clipped_to_white(tmp_path, ext):
    array = ramp16(top=65535)
    Image.fromarray(array).save(tmp_path / f"a.{ext}")
    image = load_image(tmp_path / f"a.{ext}", mode="L")
    assert image.shape == (1, 16, 24) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.from_numpy(array / 65535).float(), atol=1e-6)
    # PIL's own convert("L") would make nearly every pixel white
    clipped = np.asarray(Image.open(tmp_path / f"a.{ext}").convert("L"))
    assert (clipped == 255).mean() > 0.9 and (image == 1).float().mean() < 0.01


def test_12_bit_scan_keeps_its_contrast_and_grey_becomes_rgb(tmp_path):
    Image.fromarray(ramp16(top=4095)).save(tmp_path / "scan.tif")
    rgb = load_image(tmp_path / "scan.tif", mode="RGB")
    assert rgb.shape == (3, 16, 24)
    assert torch.equal(rgb[0], rgb[2]) and abs(rgb.max().item() - 4095 / 65535) < 1e-6
    assert len(rgb[0].unique()) > 200  # not crushed to a few 8-bit levels


def test_float_image_in_range_kept_else_scaled_by_its_own_range(tmp_path, capsys):
    unit = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert torch.allclose(load_image(tmp_path / "unit.tif", "L")[0], torch.from_numpy(unit))
    (tmp_path / "hdr").mkdir()
    Image.fromarray(unit * 40 - 5).save(tmp_path / "hdr" / "wide.tif")
    scaled = load_image(tmp_path / "hdr" / "wide.tif", "L")
    assert scaled.min().item() == 0.0 and abs(scaled.max().item() - 1.0) < 1e-6
    assert "scaled by its own range" in capsys.readouterr().err


@pytest.mark.parametrize("fmt,mode", [("JPEG", "RGB"), ("BMP", "RGB"), ("PNG", "RGB"),
                                      ("PNG", "L"), ("TIFF", "RGB")])
def test_8_bit_files_match_torchvision_bit_for_bit(tmp_path, fmt, mode):
    array = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    path = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(array).save(path, format=fmt)
    expected = TF.to_dtype(TF.pil_to_tensor(Image.open(path).convert(mode)), torch.float32,
                           scale=True)
    assert torch.equal(load_image(path, mode), expected)


def test_palette_gif_photo_gives_its_colours(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    im.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    im.save(tmp_path / "p.gif")
    image = load_image(tmp_path / "p.gif", "RGB")
    assert to_uint8(image)[0, 1].tolist() == [200, 100, 0]


def test_alpha_is_dropped_with_one_note_per_folder(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((4, 4, 4), 128, np.uint8), mode="RGBA").save(tmp_path / name)
    assert load_image(tmp_path / "a.png").shape == (3, 4, 4)
    load_image(tmp_path / "b.png")
    err = capsys.readouterr().err
    assert err.count("alpha channel") == 1 and "dropped" in err


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")  # the file cut short on purpose
def test_what_cannot_be_read_faithfully_is_an_error_naming_file_and_mode(tmp_path):
    Image.new("CMYK", (4, 4)).save(tmp_path / "print.tif")
    with pytest.raises(DataError, match=r"print\.tif.*'CMYK'"):
        load_image(tmp_path / "print.tif")
    frames = [Image.new("L", (4, 4), v) for v in (0, 80, 160)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(DataError, match=r"stack\.tif holds 3 frames"):
        load_image(tmp_path / "stack.tif")
    Image.fromarray(np.full((4, 4), 2**20, np.int32), mode="I").save(tmp_path / "deep.tif")
    with pytest.raises(DataError, match=r"deep\.tif.*beyond 16 bits"):
        load_image(tmp_path / "deep.tif")
    (tmp_path / "cut.png").write_bytes((tmp_path / "print.tif").read_bytes()[:40])
    with pytest.raises(DataError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_datasets_and_predict_read_through_load_image(tmp_path):
    """A 16-bit image reaches the model scaled, not white, through a dataset and predict."""
    from segkit.data import PairedFolderDataset
    from segkit.predict import prepare_image

    (tmp_path / "im").mkdir(), (tmp_path / "ma").mkdir()
    Image.fromarray(ramp16(top=4095)).save(tmp_path / "im" / "a.tif")
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(tmp_path / "ma" / "a.png")
    image, _ = PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L")[0]
    assert image.max().item() < 0.07
    x = prepare_image(image, {"size": [16, 24], "mean": [0.0], "std": [1.0]})
    assert x.shape == (1, 1, 16, 24) and x.max().item() < 0.07


def test_mean_std_of_16_bit_files_uses_their_range(tmp_path):
    from segkit.transforms import compute_mean_std

    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(tmp_path / "half.png")
    mean, std = compute_mean_std([tmp_path / "half.png"], mode="L")
    assert mean == pytest.approx([32768 / 65535], abs=1e-6) and std[0] < 1e-6
