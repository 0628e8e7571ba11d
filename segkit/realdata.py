"""Fetching and preparing the real datasets (Pascal VOC 2012, Oxford-IIIT Pet, Carvana).

The course runs on generated toy data by default; nothing here runs unless you
call it. Each ``prepare_*`` function leaves the files in the layout that
``segkit.data`` reads:

- ``prepare_voc2012(root)`` -> ``root/VOCdevkit/VOC2012/`` for ``VOCSegmentation``
  (about 2 GB to download);
- ``prepare_oxford_pet(root)`` -> ``root/images/`` and ``root/annotations/trimaps/``,
  read with ``PairedFolderDataset(root / "images", root / "annotations" / "trimaps",
  mask_convention="trimap", num_classes=2)`` (about 800 MB);
- ``prepare_carvana(root, zip_dir)`` -> ``root/train/`` and ``root/train_masks/``
  for ``CarvanaDataset``. Carvana cannot be downloaded by a script: Kaggle
  wants you to sign in and accept the competition rules first.

Downloads are checked against the MD5 sums torchvision uses, written to a
temporary ``.part`` file and renamed only when complete, so an interrupted
download never looks finished. Archives are checked for paths that would
escape the destination folder before anything is extracted.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from segkit.errors import DataError

__all__ = [
    "Resource",
    "VOC2012",
    "PET_IMAGES",
    "PET_ANNOTATIONS",
    "CARVANA_URL",
    "file_checksum",
    "verify_checksum",
    "download",
    "extract",
    "prepare_voc2012",
    "prepare_oxford_pet",
    "prepare_carvana",
]


@dataclass(frozen=True)
class Resource:
    """A file to download: where from, what to call it, its MD5 sum."""

    url: str
    filename: str
    md5: str


# URLs and sums as in torchvision.datasets (VOCSegmentation, OxfordIIITPet).
VOC2012 = Resource(
    "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    "VOCtrainval_11-May-2012.tar",
    "6cd6e144f989b92b3379bac3b3de84fd",
)
PET_IMAGES = Resource(
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
    "images.tar.gz",
    "5c4f3ee8e5d25df40f4fd59a7f44e54c",
)
PET_ANNOTATIONS = Resource(
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
    "annotations.tar.gz",
    "95a8c909bbe2e81eed6a22bccdf3f68f",
)
CARVANA_URL = "https://www.kaggle.com/c/carvana-image-masking-challenge/data"

_CHUNK = 1 << 20  # read and hash 1 MiB at a time


# ---------------------------------------------------------------------------
# checksums
# ---------------------------------------------------------------------------


def file_checksum(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file ("md5" or "sha256"), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(
    path: str | Path, *, md5: str | None = None, sha256: str | None = None, url: str | None = None
) -> None:
    """Raise DataError unless the file has the expected MD5 and/or SHA-256 sum."""
    path = Path(path)
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_checksum(path, algorithm)
        if actual != expected.lower():
            again = f" from {url}" if url else ""
            raise DataError(
                f"checksum mismatch for {path.name}: expected {algorithm} {expected}, "
                f"got {actual}. The file is incomplete or not the right one: delete "
                f"{path} and download it again{again}."
            )


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------


def download(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60,
    progress: bool | None = None,
) -> Path:
    """Download ``url`` to the file ``dest`` and check its checksum.

    The bytes go to ``dest.part`` first and are renamed to ``dest`` only once
    complete and verified (an atomic rename), so ``dest`` either is the
    whole, correct file or does not exist. A ``dest`` already present with the
    right checksum is not downloaded again.

    progress: show a progress bar; None = yes, except in CI or with
    SEGKIT_PROGRESS=0 (see segkit.progress).

    Returns: ``dest`` as a Path. Raises DataError when the network is
    unreachable, the server refuses, the download is cut short or the
    checksum is wrong.
    """
    dest = Path(dest)
    if dest.is_file():
        try:
            verify_checksum(dest, md5=md5, sha256=sha256)
            return dest
        except DataError:
            print(f"{dest} is there but its checksum is wrong: downloading it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected_size = response.headers.get("Content-Length")
            expected_size = int(expected_size) if expected_size else None
            _copy_with_progress(response, part, expected_size, dest.name, progress)
        got = part.stat().st_size
        if expected_size is not None and got != expected_size:
            raise DataError(
                f"download of {url} was cut short: got {got} of {expected_size} bytes. "
                "Try again (the network dropped?)."
            )
        verify_checksum(part, md5=md5, sha256=sha256, url=url)
        os.replace(part, dest)
    except urllib.error.HTTPError as err:
        raise DataError(
            f"the server answered {err.code} ({err.reason}) for {url}: download it by "
            f"hand (in a browser) to {dest}"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(
            f"no network: download {url} by hand to {dest} (the connection failed: {reason})"
        ) from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def _copy_with_progress(
    response, path: Path, total: int | None, label: str, show: bool | None
) -> None:
    from tqdm.auto import tqdm

    from segkit.progress import progress_disabled

    if show is None:
        show = not progress_disabled()

    with (
        open(path, "wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not show) as bar,
    ):
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))


# ---------------------------------------------------------------------------
# extract
# ---------------------------------------------------------------------------

_TAR_ENDINGS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def _check_tar_members(tar: tarfile.TarFile, root: Path, archive: Path) -> None:
    """Refuse members that would land outside ``root`` (path traversal)."""
    plain_size = archive.stat().st_size if archive.name.lower().endswith(".tar") else None
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        problem = None
        if not _inside(root, target):
            problem = "its path leads outside the destination folder"
        elif member.issym() and not _inside(root, (target.parent / member.linkname).resolve()):
            problem = f"it is a link to {member.linkname}, outside the destination folder"
        elif member.islnk() and not _inside(root, (root / member.linkname).resolve()):
            problem = f"it is a hard link to {member.linkname}, outside the destination folder"
        elif member.isdev():
            problem = "it is a device file"
        if problem:
            raise DataError(
                f"refusing to extract {archive}: the entry {member.name!r} is unsafe "
                f"({problem}). Nothing was extracted; this archive is not the one you want."
            )
        if plain_size is not None and member.isfile():
            if member.offset_data + member.size > plain_size:
                raise EOFError(f"{member.name} ends beyond the end of the file")


def _check_zip_members(zf: zipfile.ZipFile, root: Path, archive: Path) -> None:
    for name in zf.namelist():
        target = (root / name.replace("\\", "/")).resolve()
        if not _inside(root, target):
            raise DataError(
                f"refusing to extract {archive}: the entry {name!r} is unsafe (its path "
                "leads outside the destination folder). Nothing was extracted."
            )


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a .tar (.tar.gz, .tgz, .tar.bz2, .tar.xz) or .zip archive into ``dest``.

    Every entry is checked before anything is written: an entry whose path
    (or link target) leads outside ``dest`` (``../x``, ``/etc/x``) stops the
    extraction with a DataError. A damaged or cut-short archive gives a
    DataError that says to download it again. When done, an empty marker
    file ``dest/.<archive name>.extracted`` records the success.

    Returns: ``dest`` as a Path.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DataError(f"archive not found: {archive}")
    name = archive.name.lower()
    if not (name.endswith(".zip") or name.endswith(_TAR_ENDINGS)):
        raise DataError(
            f"don't know how to extract {archive.name}: expected .zip or one of "
            f"{', '.join(_TAR_ENDINGS)}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _check_zip_members(zf, root, archive)
                zf.extractall(root)
        else:
            with tarfile.open(archive) as tar:
                _check_tar_members(tar, root, archive)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                    tar.extractall(root, filter="data")
                else:
                    tar.extractall(root)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        gzip.BadGzipFile,
    ) as err:
        raise DataError(
            f"could not extract {archive}: the archive is cut short or damaged ({err}). "
            "Was the download interrupted? Delete it and download it again."
        ) from None
    _marker(dest, archive).touch()
    return dest


def _marker(dest: Path, archive: Path) -> Path:
    return Path(dest) / f".{Path(archive).name}.extracted"


# ---------------------------------------------------------------------------
# the three datasets
# ---------------------------------------------------------------------------


def _fetch_and_extract(resource: Resource, archive: str | Path | None, root: Path) -> None:
    """Download (or take the given) archive, check its MD5, extract it into root."""
    if archive is None:
        if _marker(root, Path(resource.filename)).exists():
            return  # extracted before
        archive = download(resource.url, root / resource.filename, md5=resource.md5)
    else:
        archive = Path(archive)
        if not archive.is_file():
            raise DataError(f"archive not found: {archive} (download it from {resource.url})")
        if _marker(root, archive).exists():
            return
        verify_checksum(archive, md5=resource.md5, url=resource.url)
    extract(archive, root)


def prepare_voc2012(root: str | Path, archive: str | Path | None = None) -> Path:
    """Download (if needed) and extract Pascal VOC 2012 train+val into ``root``.

    Args:
        root: where to put it; you get ``root/VOCdevkit/VOC2012``.
        archive: VOCtrainval_11-May-2012.tar that you downloaded yourself
            (checked against its MD5), or None to download it (about 2 GB).

    Returns: the VOC2012 folder, for ``VOCSegmentation(root)``.
    """
    root = Path(root)
    _fetch_and_extract(VOC2012, archive, root)
    voc = root / "VOCdevkit" / "VOC2012"
    if not (voc / "ImageSets" / "Segmentation").is_dir():
        raise DataError(
            f"after extracting, {voc / 'ImageSets' / 'Segmentation'} is missing: is the "
            f"archive {VOC2012.filename}?"
        )
    return voc


def prepare_oxford_pet(
    root: str | Path,
    images_archive: str | Path | None = None,
    annotations_archive: str | Path | None = None,
) -> Path:
    """Download (if needed) and extract Oxford-IIIT Pet into ``root``.

    You get ``root/images/<Breed>_<n>.jpg`` and
    ``root/annotations/trimaps/<Breed>_<n>.png`` (1 pet, 2 background,
    3 border). Read them with::

        PairedFolderDataset(root / "images", root / "annotations" / "trimaps",
                            mask_convention="trimap", num_classes=2)

    (trimap border -> 255 = ignore).

    Args:
        images_archive, annotations_archive: images.tar.gz and
            annotations.tar.gz downloaded by hand, or None to download them.

    Returns: ``root``.
    """
    root = Path(root)
    _fetch_and_extract(PET_IMAGES, images_archive, root)
    _fetch_and_extract(PET_ANNOTATIONS, annotations_archive, root)
    for folder in (root / "images", root / "annotations" / "trimaps"):
        if not folder.is_dir():
            raise DataError(f"after extracting, {folder} is missing: are these the Pet archives?")
    return root


def prepare_carvana(root: str | Path, zip_dir: str | Path) -> Path:
    """Unpack Carvana's train.zip and train_masks.zip (from Kaggle) into ``root``.

    Kaggle serves Carvana only to signed-in users who accepted the
    competition rules, so this function does not download: go to
    https://www.kaggle.com/c/carvana-image-masking-challenge/data, accept the
    rules, download train.zip and train_masks.zip (or run
    ``kaggle competitions download -c carvana-image-masking-challenge -f train.zip``
    and the same with ``-f train_masks.zip``) into ``zip_dir``.

    Returns: ``root``, holding train/ and train_masks/ for ``CarvanaDataset(root)``.
    """
    root, zip_dir = Path(root), Path(zip_dir)
    zips = [zip_dir / "train.zip", zip_dir / "train_masks.zip"]
    missing = [z.name for z in zips if not z.is_file()]
    if missing:
        raise DataError(
            f"{' and '.join(missing)} not found in {zip_dir}. Carvana cannot be "
            "downloaded by a script: Kaggle wants you to sign in and accept the "
            f"competition rules at {CARVANA_URL}, then download train.zip and "
            "train_masks.zip yourself (in the browser, or with the kaggle command: "
            "kaggle competitions download -c carvana-image-masking-challenge -f train.zip) "
            f"and put them in {zip_dir}."
        )
    for z in zips:
        if not _marker(root, z).exists():
            extract(z, root)
    for folder in (root / "train", root / "train_masks"):
        if not folder.is_dir():
            raise DataError(
                f"after extracting, {folder} is missing: train.zip should hold a train/ "
                "folder and train_masks.zip a train_masks/ folder"
            )
    return root
