"""Download and extraction code for the real datasets (segkit.realdata), and the
benchmark that trains on them as they ship (benchmarks/real_data.py).

Nothing here touches the network: downloads use file:// URLs and a closed
port on 127.0.0.1; archives are built in tmp_path; the real layouts are small stand-ins
generated here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit import realdata
from segkit.data import CarvanaDataset, PairedFolderDataset, VOCSegmentation
from segkit.errors import DataError
from segkit.masks import VOC_COLORMAP
from segkit.realdata import Resource, download, extract, prepare_carvana, prepare_voc2012

PAYLOAD = b"segmentation " * 1000


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def png_bytes(array: np.ndarray, palette: list[int] | None = None, fmt: str = "PNG") -> bytes:
    """Encode an array as an image file (PNG by default; a palette makes it 'P')."""
    im = Image.fromarray(array, mode="P" if palette else None)
    if palette:
        im.putpalette(palette)
    buffer = io.BytesIO()
    im.save(buffer, format=fmt)
    return buffer.getvalue()


# -- the known sums ----------------------------------------------------------


def test_known_checksums_match_torchvision():
    assert realdata.VOC2012.md5 == "6cd6e144f989b92b3379bac3b3de84fd"
    assert realdata.PET_IMAGES.md5 == "5c4f3ee8e5d25df40f4fd59a7f44e54c"
    assert realdata.PET_ANNOTATIONS.md5 == "95a8c909bbe2e81eed6a22bccdf3f68f"
    from torchvision.datasets import OxfordIIITPet

    assert {md5 for _, md5 in OxfordIIITPet._RESOURCES} == {
        realdata.PET_IMAGES.md5,
        realdata.PET_ANNOTATIONS.md5,
    }


# -- download ----------------------------------------------------------------


def test_download_with_right_checksums(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "file.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    got = download(source.as_uri(), dest, md5=md5_of(PAYLOAD), sha256=sha, progress=False)
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "file.bin.part").exists()
    source.unlink()  # already there with the right sum: no second download
    assert download(source.as_uri(), dest, md5=md5_of(PAYLOAD), progress=False) == dest


def test_download_wrong_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "file.bin"
    wrong = "0" * 32
    with pytest.raises(DataError) as info:
        download(source.as_uri(), dest, md5=wrong, progress=False)
    text = str(info.value)
    assert wrong in text and md5_of(PAYLOAD) in text and "download it again" in text
    assert not dest.exists() and not (tmp_path / "file.bin.part").exists()


def test_download_without_network_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/VOCtrainval_11-May-2012.tar"
    dest = tmp_path / "voc.tar"
    with pytest.raises(DataError, match=f"no network: download {url} by hand to {dest}"):
        download(url, dest, timeout=5, progress=False)
    assert not dest.exists()


# -- extract -----------------------------------------------------------------


def test_extract_tar_and_zip(tmp_path):
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tar:
        add_bytes(tar, "folder/x.txt", b"hello")
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("train/y.txt", "bye")
    extract(tmp_path / "a.tar.gz", tmp_path / "out")
    extract(tmp_path / "b.zip", tmp_path / "out")
    assert (tmp_path / "out/folder/x.txt").read_text() == "hello"
    assert (tmp_path / "out/train/y.txt").read_text() == "bye"
    assert (tmp_path / "out/.a.tar.gz.extracted").exists()


@pytest.mark.parametrize(
    "name, fields",
    [
        ("../evil.txt", {}),
        ("/tmp/segkit_evil_absolute.txt", {}),
        ("ok/../../evil.txt", {}),
        ("link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("link", {"type": tarfile.SYMTYPE, "linkname": "../../outside"}),
    ],
)
def test_extract_refuses_path_traversal_in_tar(tmp_path, name, fields):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, "good.txt", b"fine")
        add_bytes(tar, name, b"" if fields else b"pwned", **fields)
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(DataError, match="unsafe"):
        extract(archive, dest)
    assert not (dest / "good.txt").exists()  # checked before anything was written
    assert not (tmp_path / "dest" / "evil.txt").exists()
    assert not Path("/tmp/segkit_evil_absolute.txt").exists()


def test_extract_refuses_path_traversal_in_zip(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", "pwned")
    with pytest.raises(DataError, match="unsafe"):
        extract(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".zip"])
def test_truncated_archive(tmp_path, suffix):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()  # does not compress
    full = tmp_path / f"full{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(full, "w") as zf:
            zf.writestr("a.bin", data)
    else:
        with tarfile.open(full, "w:gz" if suffix == ".tar.gz" else "w") as tar:
            add_bytes(tar, "a.bin", data)
            add_bytes(tar, "b.bin", data)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(DataError, match="cut short or damaged.*download it again"):
        extract(cut, tmp_path / "dest")
    assert not (tmp_path / "dest" / f".cut{suffix}.extracted").exists()


def test_extract_missing_and_unknown_archive(tmp_path):
    with pytest.raises(DataError, match="archive not found"):
        extract(tmp_path / "nope.tar", tmp_path)
    (tmp_path / "data.rar").write_bytes(b"x")
    with pytest.raises(DataError, match="don't know how to extract"):
        extract(tmp_path / "data.rar", tmp_path)


# -- prepare_* -----------------------------------------------------------------


def test_prepare_carvana_missing_zips_explains_kaggle(tmp_path):
    with pytest.raises(DataError) as info:
        prepare_carvana(tmp_path / "carvana", tmp_path / "downloads")
    text = str(info.value)
    assert "train.zip and train_masks.zip not found" in text
    assert "Kaggle" in text and "accept the competition rules" in text


def test_prepare_carvana_unpacks_for_the_dataset(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    name = "0cdf5b5d0ce1_01"
    image = np.zeros((6, 8, 3), np.uint8)
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 2:6] = 1
    with zipfile.ZipFile(downloads / "train.zip", "w") as zf:
        zf.writestr(f"train/{name}.jpg", png_bytes(image, fmt="JPEG"))
    with zipfile.ZipFile(downloads / "train_masks.zip", "w") as zf:
        zf.writestr(f"train_masks/{name}_mask.gif", png_bytes(mask, [0] * 3 + [255] * 3, "GIF"))
    root = prepare_carvana(tmp_path / "carvana", downloads)
    ds = CarvanaDataset(root)
    assert ds.names == [name] and ds[0][1].sum() == 8


def tiny_voc_tar(path: Path) -> bytes:
    index = np.zeros((6, 8), np.uint8)
    index[1:5, 2:6] = 15
    index[1, 2:6] = 255
    palette = VOC_COLORMAP.flatten().tolist()
    with tarfile.open(path, "w") as tar:
        base = "VOCdevkit/VOC2012/"
        black = png_bytes(np.zeros((6, 8, 3), np.uint8), fmt="JPEG")
        add_bytes(tar, base + "JPEGImages/2007_000032.jpg", black)
        add_bytes(tar, base + "SegmentationClass/2007_000032.png", png_bytes(index, palette))
        add_bytes(tar, base + "ImageSets/Segmentation/train.txt", b"2007_000032\n")
    return path.read_bytes()


def test_prepare_voc2012_checks_the_archive_md5(tmp_path):
    archive = tmp_path / "VOCtrainval_11-May-2012.tar"
    tiny_voc_tar(archive)
    with pytest.raises(DataError, match="expected md5 6cd6e144f989b92b3379bac3b3de84fd"):
        prepare_voc2012(tmp_path / "voc", archive=archive)
    assert not (tmp_path / "voc" / "VOCdevkit").exists()


def test_prepare_voc2012_download_and_extract(tmp_path, monkeypatch):
    archive = tmp_path / "server" / "VOCtrainval_11-May-2012.tar"
    archive.parent.mkdir()
    data = tiny_voc_tar(archive)
    fake = Resource(archive.as_uri(), archive.name, md5_of(data))
    monkeypatch.setattr(realdata, "VOC2012", fake)
    voc = prepare_voc2012(tmp_path / "voc")
    assert voc == tmp_path / "voc" / "VOCdevkit" / "VOC2012"
    mask = VOCSegmentation(tmp_path / "voc", "train")[0][1]
    assert set(mask.unique().tolist()) == {0, 15, 255}
    archive.unlink()  # prepared once: a second call needs no archive
    assert prepare_voc2012(tmp_path / "voc") == voc


def test_prepare_oxford_pet_with_local_archives(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    trimap = np.full((6, 8), 2, np.uint8)
    trimap[2:5, 2:6] = 1
    trimap[2, 2:6] = 3
    with tarfile.open(server / "images.tar.gz", "w:gz") as tar:
        black = png_bytes(np.zeros((6, 8, 3), np.uint8), fmt="JPEG")
        add_bytes(tar, "images/Abyssinian_1.jpg", black)
    with tarfile.open(server / "annotations.tar.gz", "w:gz") as tar:
        add_bytes(tar, "annotations/trimaps/Abyssinian_1.png", png_bytes(trimap))
        add_bytes(tar, "annotations/trimaps/._Abyssinian_1.png", b"macOS junk")
    for attr, name in (("PET_IMAGES", "images.tar.gz"), ("PET_ANNOTATIONS", "annotations.tar.gz")):
        path = server / name
        monkeypatch.setattr(
            realdata, attr, Resource(path.as_uri(), name, md5_of(path.read_bytes()))
        )
    root = realdata.prepare_oxford_pet(tmp_path / "pet")
    ds = PairedFolderDataset(
        root / "images", root / "annotations" / "trimaps", mask_convention="trimap", num_classes=2
    )
    assert ds[0][1].tolist()[2][2:6] == [255] * 4 and int((ds[0][1] == 1).sum()) == 8


# -- benchmarks/real_data.py on small stand-ins of the real layouts ---------------------


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _retina_stand_in(root: Path) -> None:
    """The DRIVE layout: training/ and test/ with images/NN_training.tif,
    1st_manual/NN_manual1.gif and mask/NN_training_mask.gif (field of view)."""
    rng = np.random.default_rng(0)
    for part, ids in (("training", range(21, 29)), ("test", range(1, 4))):
        kind = "training" if part == "training" else "test"
        for i in ids:
            image = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
            vessels = np.zeros((32, 32), np.uint8)
            vessels[:, rng.integers(3, 29, 2)] = 255
            image[vessels > 0] = 200  # bright vessels: something to learn
            _write(root / part / "images" / f"{i:02d}_{kind}.tif", image)
            _write(root / part / "1st_manual" / f"{i:02d}_manual1.gif", vessels)
            _write(root / part / "mask" / f"{i:02d}_{kind}_mask.gif",
                   np.full((32, 32), 255, np.uint8))


def test_the_real_data_benchmark_trains_from_the_command_line_and_scores(tmp_path):
    root = tmp_path / "DRIVE"
    _retina_stand_in(root)
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / "real_data.py"), str(root), "--epochs", "1",
         "--out", str(tmp_path / "runs"), "--extra", "--size", "16x16", "--base", "4",
         "--depth", "2", "--device", "cpu"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    assert "drive in" in done.stdout and "F1 (= Dice) 0.8142" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("recipe:"))
    dice, trivial = (float(v) for v in re.findall(r"(?:dice|baseline) (\d\.\d{4})", line))
    assert 0 <= dice <= 1 and 0 < trivial < 1
    rows = json.loads((tmp_path / "runs" / "drive.json").read_text())
    assert rows[0]["dataset"] == "drive" and rows[0]["cpu_s"] >= 0
    assert (tmp_path / "runs" / "drive-recipe" / "test" / "per_image.csv").is_file()
    best = tmp_path / "runs" / "drive-recipe" / "best.pt"  # a run's checkpoint, scored again
    again = subprocess.run([sys.executable, str(repo / "benchmarks" / "real_data.py"), str(root),
                            "--checkpoint", str(best)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(repo)})
    assert again.returncode == 0, again.stderr
    assert f"(epoch 1): dice {dice:.4f} (trivial baseline {trivial:.4f})" in again.stdout


def test_the_real_data_benchmark_knows_the_layouts_as_they_ship(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "real_data", Path(__file__).resolve().parents[1] / "benchmarks" / "real_data.py")
    real_data = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "real_data", real_data)  # its dataclasses look it up
    spec.loader.exec_module(real_data)
    for folder in ("train/image", "train/label"):
        (tmp_path / "em" / folder).mkdir(parents=True)
    for folder in ("train", "trainannot", "val", "valannot", "test", "testannot"):
        (tmp_path / "camvid" / folder).mkdir(parents=True)
    (tmp_path / "drive" / "training" / "1st_manual").mkdir(parents=True)
    assert real_data.find_layout(tmp_path / "em").name == "em"
    assert real_data.find_layout(tmp_path / "camvid").name == "camvid"
    assert real_data.find_layout(tmp_path / "drive").test == ("testing/images",
                                                              "testing/1st_manual")
    with pytest.raises(SystemExit, match="none of the layouts"):
        real_data.find_layout(tmp_path)
