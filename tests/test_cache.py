"""The resized-image cache: same pairs as the files give, read once, never stale."""

from __future__ import annotations

import os
from pathlib import Path

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
        assert image.dtype == torch.float32 and image.shape == (3, *SIZE)
        assert mask.dtype == torch.int64 and mask.shape == SIZE
        ref_image, ref_mask = ds.load_pair(i)
        assert torch.equal(image, TF.resize(ref_image, list(SIZE), antialias=True))
        assert torch.equal(mask, TF.resize(ref_mask, list(SIZE)))
        assert set(mask.unique().tolist()) <= {0, 1}


def test_second_read_is_a_hit_and_a_changed_file_or_size_is_not(carvana, tmp_path):
    import shutil

    root = tmp_path / "c"
    shutil.copytree(carvana, root)
    ds = data.CarvanaDataset(root)
    cache = ResizedCache(SIZE)
    cache.pair(ds, 0)
    cache.pair(ds, 0)
    assert (cache.hits, cache.misses) == (1, 1)
    key = cache.key(ds, 0)
    st = ds.image_paths[0].stat()
    os.utime(ds.image_paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched only
    assert cache.key(ds, 0) == key  # keyed by content: the same bytes are the same entry
    ds.image_paths[0].write_bytes(ds.image_paths[1].read_bytes())  # other bytes
    assert cache.key(ds, 0) != key
    cache.pair(ds, 0)
    assert cache.misses == 2
    assert ResizedCache((16, 24)).key(ds, 0) != cache.key(ds, 0)


def test_disk_cache_is_read_by_the_next_run_without_decoding(carvana, tmp_path, monkeypatch):
    ds = data.CarvanaDataset(carvana)
    first = ResizedCache(SIZE, tmp_path / "cache")
    want = [first.pair(ds, i) for i in range(4)]
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 8
    assert sorted(np.load(f).dtype.name for f in files) == ["float32"] * 4 + ["uint8"] * 4

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
    assert stats["mean"] == plain_stats["mean"] and stats["std"] == plain_stats["std"]
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
    assert torch.equal(image, ref_image)  # 4095 / 65535 at the top, graded as read
    assert image.max().item() == pytest.approx(4095 / 65535)
    assert torch.equal(cached_mask, ref_mask) and set(ref_mask.unique().tolist()) == {0, 1}
    other = data.PairedFolderDataset(tmp_path / "im", tmp_path / "ma", image_mode="L",
                                     spec=MaskSpec(foreground=0))
    assert ResizedCache((16, 24)).key(other, 0) != ResizedCache((16, 24)).key(ds, 0)


def _write(path, array, **kw):
    from PIL import Image

    Image.fromarray(array, **kw).save(path)


#: Every kind of image file the reader accepts (segkit.imageio), as (file name, writer).
KINDS = {
    "rgb8.png": lambda p, r: _write(p, r.integers(0, 256, (30, 44, 3), dtype=np.uint8)),
    "rgb8.jpg": lambda p, r: _write(p, r.integers(0, 256, (30, 44, 3), dtype=np.uint8)),
    "grey8.png": lambda p, r: _write(p, r.integers(0, 256, (30, 44), dtype=np.uint8)),
    "grey16.png": lambda p, r: _write(p, r.integers(0, 65536, (30, 44), dtype=np.uint16)),
    "grey16.tif": lambda p, r: _write(p, r.integers(0, 4096, (30, 44), dtype=np.uint16)),
    "float.tif": lambda p, r: _write(p, r.normal(100, 30, (30, 44)).astype(np.float32)),
    "palette.gif": lambda p, r: _write(p, r.integers(0, 256, (30, 44, 3), dtype=np.uint8)),
    "rgba.png": lambda p, r: _write(p, r.integers(0, 256, (30, 44, 4), dtype=np.uint8)),
    "bilevel.png": lambda p, r: Image1(p, r),
    "rgb8.bmp": lambda p, r: _write(p, r.integers(0, 256, (30, 44, 3), dtype=np.uint8)),
}


def Image1(path, rng):
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (30, 44), dtype=np.uint8)).convert("1").save(path)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_every_batch_is_the_same_bit_for_bit_with_the_cache_and_without(tmp_path, mode):
    """Every image kind the reader accepts, in memory and on disk, with augmentation: the
    batches of an epoch, and the mean and std, are equal with the cache and without."""
    rng = np.random.default_rng(0)
    (tmp_path / "im").mkdir(), (tmp_path / "ma").mkdir()
    for name, write in KINDS.items():
        write(tmp_path / "im" / name, rng)
        mask = (rng.random((30, 44)) > 0.5).astype(np.uint8)
        _write(tmp_path / "ma" / f"{Path(name).stem}_{Path(name).suffix[1:]}.png", mask)

    def batches(cache):
        images = sorted((tmp_path / "im").iterdir())
        masks = [tmp_path / "ma" / f"{p.stem}_{p.suffix[1:]}.png" for p in images]
        train = data.SegmentationPairs(images, masks, image_mode=mode, num_classes=2)
        val = train.subset(range(len(train)))
        train, val, stats = data.with_transforms(train, val, (16, 24), augment=True,
                                                 num_classes=2, cache=cache)
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(train, batch_size=4, shuffle=False)
        return stats, [b for b in loader] + [val[i] for i in range(len(val))]

    plain_stats, plain = batches(None)
    for cache in (ResizedCache((16, 24)), ResizedCache((16, 24), tmp_path / "disk"),
                  ResizedCache((16, 24), tmp_path / "disk")):  # the third reads the second's
        stats, cached = batches(cache)
        assert stats["mean"] == plain_stats["mean"] and stats["std"] == plain_stats["std"]
        for (a_image, a_mask), (b_image, b_mask) in zip(plain, cached, strict=True):
            assert torch.equal(a_image, b_image) and torch.equal(a_mask, b_mask)
    assert cache.hits >= len(KINDS)


def test_a_file_replaced_with_the_same_size_and_time_is_not_read_stale(carvana, tmp_path):
    import shutil

    root = tmp_path / "c"
    shutil.copytree(carvana, root)
    ds = data.CarvanaDataset(root)
    cache = ResizedCache(SIZE, tmp_path / "disk")
    before, _ = cache.pair(ds, 0)
    target, other = ds.image_paths[0], ds.image_paths[1]
    st = target.stat()
    new_bytes = other.read_bytes()[: st.st_size].ljust(st.st_size, b"\0")
    target.write_bytes(new_bytes)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same time
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    fresh = ResizedCache(SIZE, tmp_path / "disk")  # the next run, same disk folder
    after, _ = fresh.pair(ds, 0)
    assert fresh.misses == 1
    assert torch.equal(after, TF.resize(ds.load_pair(0)[0], list(SIZE), antialias=True))
    assert not torch.equal(after, before)
