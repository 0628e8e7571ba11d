"""Time the whole-dataset audit (segkit.audit) on toy Carvana at the real resolution.

    python benchmarks/data_audit.py                       # 5,000 pairs at 1918x1280
    python benchmarks/data_audit.py --n 500 --workers 2   # a smaller run

Writes ``--root`` (default build/bench_audit): a few distinct toy Carvana pairs drawn
at 1918x1280 (JPEG photo, GIF mask, as Kaggle's), copied under new names up to ``--n``
pairs (about 0.2 MB a pair), then times pairing the folders and auditing every pair
(decode each photo, read each mask's values, compare sizes) with ``--workers`` threads.
The files are copies, not links: each is read from disk (or the page cache) like a real
dataset. Prints one line per step and pairs per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from segkit import toydata
from segkit.audit import audit_dataset
from segkit.data import PairedFolderDataset
from segkit.labels import MaskSpec


def build(root: Path, n: int, distinct: int) -> None:
    """root/train/<name>.jpg + root/train_masks/<name>_mask.gif, n pairs."""
    if (root / "train").is_dir() and len(list((root / "train").iterdir())) == n:
        return
    shutil.rmtree(root, ignore_errors=True)
    source = root.with_name(root.name + "_source")
    shutil.rmtree(source, ignore_errors=True)
    toydata.generate("carvana", source, n=distinct, size=(1280, 1918), seed=0)
    photos = sorted((source / "train").glob("*.jpg"))
    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    for i in range(n):
        photo = photos[i % len(photos)]
        name = f"{i:05d}{photo.stem[-3:]}"
        shutil.copyfile(photo, root / "train" / f"{name}.jpg")
        shutil.copyfile(source / "train_masks" / f"{photo.stem}_mask.gif",
                        root / "train_masks" / f"{name}_mask.gif")
    shutil.rmtree(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="pairs (default 5000)")
    parser.add_argument("--distinct", type=int, default=16, help="distinct pairs drawn")
    parser.add_argument("--workers", type=int, default=None, help="threads (default min(4, CPUs))")
    parser.add_argument("--root", default="build/bench_audit")
    args = parser.parse_args()
    root = Path(args.root)
    t0 = time.perf_counter()
    build(root, args.n, args.distinct)
    print(f"dataset: {args.n} pairs at 1918x1280 in {root} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    # masks read as `segkit train --images` reads them: a MaskSpec (binary 0/1 or 0/255)
    ds = PairedFolderDataset(root / "train", root / "train_masks", mask_suffix="_mask",
                             spec=MaskSpec())
    pairing = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = audit_dataset(ds, workers=args.workers, show_progress=False)
    seconds = time.perf_counter() - t0
    workers = args.workers or min(4, os.cpu_count() or 1)
    print(f"pairing: {pairing:.2f} s; audit: {seconds:.1f} s for {report.n_pairs} pairs "
          f"({report.n_pairs / seconds:.1f} pairs/s, {workers} threads, "
          f"{os.cpu_count()} CPUs); problems: {len(report.problems)}")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
