"""The resized-image cache: same pairs as the files give, read once, never stale."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from segkit import cache as cache_mod
from segkit import data, toydata
from segkit.cache import ResizedCache, choose_cache
from segkit.errors import DataError

SIZE = (32, 48)  # (H, W) from 120x80 files


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    return toydata.generate("carvana", tmp_path_factory.mktemp("c") / "carvana", n=16, size=(80, 120))


def test_cached_pair_matches_the_files_resized(carvana):
    ds = data.CarvanaDataset(carvana)
    cache = ResizedCache(SIZE)
    for i in range(3):
        image, mask = cache.pair(ds, i)
        assert image.dtype == torch.uint8 and image.shape == (3, *SIZE)
        assert mask.dtype == torch.int64 and mask.shape == SIZE
        ref_image, ref_mask = ds.load_pair(i)
        ref_image = TF.resize(ref_image, list(SIZE), antialias=True)
        ref_mask = TF.resize(ref_mask, list(SIZE))
        assert (image.float() / 255 - ref_image).abs().mean() < 0.03
        assert (mask == ref_mask).float().mean() > 0.97
        assert set(mask.unique().tolist()) <= {0, 1}


def test_second_read_is_a_hit_and_a_changed_file_or_size_is_not(carvana, tmp_path):
    ds = data.CarvanaDataset(carvana)
    cache = ResizedCache(SIZE)
    cache.pair(ds, 0)
    cache.pair(ds, 0)
    assert (cache.hits, cache.misses) == (1, 1)
    key = cache.key(ds, 0)
    st = ds.image_paths[0].stat()
    os.utime(ds.image_paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # file changed
    assert cache.key(ds, 0) != key
    cache.pair(ds, 0)
    assert cache.misses == 2
    assert ResizedCache((16, 24)).key(ds, 0) != cache.key(ds, 0)


def test_disk_cache_is_read_by_the_next_run_without_decoding(carvana, tmp_path, monkeypatch):
    ds = data.CarvanaDataset(carvana)
    first = ResizedCache(SIZE, tmp_path / "cache")
    want = [first.pair(ds, i) for i in range(4)]
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 8 and all(np.load(f).dtype == np.uint8 for f in files)

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_mod, "load_resized", no_decoding)
    second = ResizedCache(SIZE, tmp_path / "cache")
    for i in range(4):
        image, mask = second.pair(ds, i)
        assert torch.equal(image, want[i][0]) and torch.equal(mask, want[i][1])
    assert second.hits == 4


def test_a_damaged_cache_file_is_rebuilt(carvana, tmp_path):
    ds = data.CarvanaDataset(carvana)
    cache = ResizedCache(SIZE, tmp_path / "cache")
    image, _ = cache.pair(ds, 0)
    image_file, _ = cache._paths(cache.key(ds, 0))
    image_file.write_bytes(b"\x93NUMPY cut short")
    again, _ = cache.pair(ds, 0)
    assert torch.equal(again, image) and cache.misses == 2


def test_a_broken_image_names_the_file(carvana, tmp_path):
    ds = data.CarvanaDataset(carvana)
    ds.image_paths[0] = tmp_path / "broken.jpg"
    ds.image_paths[0].write_bytes(b"<html>not an image</html>")
    with pytest.raises(DataError, match="broken.jpg"):
        ResizedCache(SIZE).pair(ds, 0)


def test_datasets_read_through_the_cache(carvana):
    cache = ResizedCache(SIZE)
    train, val, stats = data.carvana_datasets(carvana, size=SIZE, cache=cache)
    plain_train, _, plain_stats = data.carvana_datasets(carvana, size=SIZE)
    assert cache.misses == len(train)  # the statistics pass filled it
    image, mask = train[0]
    assert image.shape == (3, *SIZE) and image.dtype == torch.float32
    assert mask.shape == SIZE and mask.dtype == torch.int64
    assert stats["mean"] == pytest.approx(plain_stats["mean"], abs=0.01)
    assert stats["std"] == pytest.approx(plain_stats["std"], abs=0.01)
    val[0]
    assert cache.misses == len(train) + 1
    train[0]
    assert cache.misses == len(train) + 1  # epoch 2 costs no decoding


def test_choose_cache_by_size(tmp_path):
    assert choose_cache("none", SIZE, 10) is None
    assert choose_cache("auto", SIZE, 10).folder is None  # small: memory
    big = choose_cache("auto", (1280, 1918), 5088, folder=tmp_path)
    assert big.folder == tmp_path  # 5088 real-size images: disk
    with pytest.raises(ValueError, match="unknown cache mode"):
        choose_cache("ram", SIZE, 10)


def test_a_16_bit_image_and_a_mask_spec_are_cached_as_the_dataset_reads_them(tmp_path):
    """A 12-bit scan is scaled (not clipped to white) and the mask is read by the dataset's
    MaskSpec (foreground 128), as ``load_pair`` reads them."""
    from PIL import Image

    from segkit.labels import MaskSpec

    (tmp_path / "im").mkdir(), (tmp_path / "ma").mkdir()
    ramp = np.linspace(0, 4095, 16 * 24).reshape(16, 24).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "im" / "a.tif")
    mask = np.zeros((16, 24), np.uint8)
    mask[4:12, 6:18] = 128
    Image.fromarray(mask).save(tmp_path / "ma" / "a.png")
    ds = data.PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L",
                                  spec=MaskSpec(foreground=128))
    image, cached_mask = ResizedCache((16, 24)).pair(ds, 0)
    ref_image, ref_mask = ds.load_pair(0)
    assert image.dtype == torch.uint8 and 14 <= image.max().item() <= 16  # 4095/65535 * 255
    assert (image.float() / 255 - ref_image).abs().max().item() <= 1 / 255 + 1e-6
    assert torch.equal(cached_mask, ref_mask) and set(ref_mask.unique().tolist()) == {0, 1}
    other = data.PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L",
                                     spec=MaskSpec(foreground=0))
    assert ResizedCache((16, 24)).key(other, 0) != ResizedCache((16, 24)).key(ds, 0)
