"""``segkit fetch NAME ROOT``: the real datasets in the layout segkit reads.

==========  ===============================================  ================================
name        what you get in ROOT                             then train with
==========  ===============================================  ================================
voc2012     VOCdevkit/VOC2012/ (about 2 GB download)         --dataset voc --data-root ROOT
pet         images/, annotations/trimaps/ (about 800 MB)     --images ROOT/images --masks
                                                             ROOT/annotations/trimaps
                                                             --mask-values 1:1,2:0,3:255
                                                             (3 = border: ignored)
carvana     train/, train_masks/ (Kaggle zips you give)      --dataset carvana --data-root ROOT
==========  ===============================================  ================================

Every archive is checked against its MD5 sum before it is unpacked (see
``segkit.realdata``). Without a network, download the archives in a browser and pass
them with ``--archive`` (``archives=``). Carvana is only served to signed-in Kaggle
users who accepted the competition rules, so it always needs ``--archive``.
"""

from __future__ import annotations

from pathlib import Path

from segkit import realdata
from segkit.errors import DataError

__all__ = ["DATASETS", "fetch"]

DATASETS = ("voc2012", "pet", "carvana")


def _pick(archives: list[Path], filename: str) -> Path | None:
    found = [a for a in archives if a.name == filename]
    return found[0] if found else None


def fetch(name: str, root: str | Path, archives: list[str | Path] | None = None) -> Path:
    """Download (or take from ``archives``), check and unpack dataset ``name`` into ``root``.

    Returns the folder to train on. Raises DataError with what to do when the network,
    an archive or its checksum is missing or wrong.
    """
    root = Path(root)
    given = [Path(a) for a in archives or []]
    for archive in given:
        if not archive.is_file():
            raise DataError(f"archive not found: {archive}")
    if name == "voc2012":
        if len(given) > 1:
            raise DataError(f"voc2012 is one archive ({realdata.VOC2012.filename}); got {len(given)}")
        return realdata.prepare_voc2012(root, given[0] if given else None)
    if name == "pet":
        expected = (realdata.PET_IMAGES.filename, realdata.PET_ANNOTATIONS.filename)
        unknown = [a.name for a in given if a.name not in expected]
        if unknown:
            raise DataError(f"the Pet archives are named {' and '.join(expected)}; got "
                            f"{', '.join(unknown)}")
        return realdata.prepare_oxford_pet(root, _pick(given, expected[0]),
                                           _pick(given, expected[1]))
    if name == "carvana":
        if not given:
            raise DataError(
                "Carvana cannot be downloaded by a script: sign in to Kaggle, accept the "
                f"competition rules at {realdata.CARVANA_URL}, download train.zip and "
                "train_masks.zip, then run: segkit fetch carvana ROOT --archive train.zip "
                "--archive train_masks.zip")
        folders = {a.parent for a in given}
        if len(folders) != 1:
            raise DataError("put train.zip and train_masks.zip in one folder")
        return realdata.prepare_carvana(root, folders.pop())
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
