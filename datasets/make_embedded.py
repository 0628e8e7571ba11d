"""Regenerate the embedded toy datasets of the course: datasets/toy_<name>/.

    python datasets/make_embedded.py            # all three
    python datasets/make_embedded.py carvana    # only one

Each is written with the default size and number of images and seed 0, the
exact call ``segkit.toydata.generate(name, root, seed=0)``; the old copy is
replaced. tests/test_toydata.py checks that the committed copies match what
this writes (masks exactly, JPEG images to within a few grey levels).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segkit import toydata

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> None:
    for name in names or list(toydata.DATASETS):
        root = HERE / f"toy_{name}"
        start = time.perf_counter()
        toydata.generate(name, root, seed=0, overwrite=True)
        print(f"toy {name}: wrote {root} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
