"""Pairing a folder of images with a folder of masks: which mask belongs to which image.

Three ways to say which mask belongs to which image (``pair_folders``):

- nothing: identical names (``cat_7.jpg`` + ``cat_7.png``); when names differ, segkit
  looks for the one pairing that fits every file (``cat_7.jpg`` + ``cat_7_mask.png``,
  ``21_training.tif`` + ``21_manual1.gif``), uses it, and says so in one line;
- ``mask_suffix``: ``<stem>.<ext>`` pairs with ``<stem><mask_suffix>.<ext>``;
- patterns: ``image_pattern="{id}_training.tif", mask_pattern="{id}_manual1.gif"``:
  ``{id}`` is the part the two names share, ``*`` any text; files that do not match
  a pattern are left out (and counted).

Files that do not pair are an error that shows a few names from each side and the exact
option that would pair them. Two masks that fit one image (``21_manual1.gif`` and
``21_training_mask.gif``) are an error too, and so are two files of one folder that differ
only by their extension (``a.jpg`` and ``a.png``): segkit never guesses which one you meant.

Every folder dataset of segkit pairs its files here: ``segkit.data.PairedFolderDataset``
(your own folders, sea/sky, Oxford-IIIT Pet), ``CarvanaDataset``, ``segkit train --images``
and ``segkit evaluate --images``; ``segkit predict`` lists its input folder with
``image_files``. Image files are those ending in
``segkit.imageio.IMAGE_EXTENSIONS``; hidden files (``.DS_Store``, ``._x.png``) are skipped.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from segkit.errors import DataError
from segkit.imageio import IMAGE_EXTENSIONS

__all__ = ["Pairing", "pair_folders", "image_files", "compile_pattern", "match_names",
           "show_names"]

_SEPARATORS = "_-. "


@dataclass
class Pairing:
    """Matched files: pair i is (image_paths[i], mask_paths[i]); ``how`` says by which rule."""

    image_paths: list[Path]
    mask_paths: list[Path]
    how: str
    left_out: int = 0  # files a pattern did not match


def show_names(names: list[str], first: int = 5) -> str:
    """'a.png, b.png, ... (3 more)': the first names of a list, for an error message."""
    shown = ", ".join(names[:first])
    return shown + (f", ... ({len(names) - first} more)" if len(names) > first else "")


def image_files(folder: str | Path, what: str = "images") -> list[Path]:
    """The image files of ``folder``, sorted by name (hidden files skipped).

    Raises DataError naming the folder (``what``: "images", "masks", "input") when it
    is missing, is a file, or holds no image (then it shows what it does hold).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}" if not folder.exists() else
                        f"{what} folder {folder} is a file, not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        others = sorted(p.name for p in folder.iterdir())
        seen = f"; it holds: {', '.join(others[:5])}" if others else "; it is empty"
        raise DataError(f"no images found in {what} folder {folder} (looked for "
                        f"{' '.join(IMAGE_EXTENSIONS)}){seen}")
    return files


def _keyed(files: list[Path], key, what: str) -> dict[str, Path]:
    """{key(file): file} of the files whose key is not None; two files with one key (a.jpg
    and a.png) raise DataError: which of them is meant cannot be known."""
    found: dict[str, Path] = {}
    twice = []
    for path in files:
        k = key(path)
        if k is None:
            continue
        if k in found:
            twice.append(f"{found[k].name} / {path.name}")
        found[k] = path
    if twice:
        raise DataError(f"{what} folder {files[0].parent} has files with the same name and "
                        f"different extensions, so it is not clear which to use: "
                        f"{', '.join(twice[:5])}")
    return found


def compile_pattern(pattern: str) -> re.Pattern:
    """'{id}_manual1.gif' -> a regex matching whole file names, group 'id'."""
    if pattern.count("{id}") != 1:
        raise DataError(f"a name pattern holds {{id}} exactly once (the part an image and "
                        f"its mask share), e.g. '{{id}}_mask.png'; got {pattern!r}")
    before, after = pattern.split("{id}")
    star = lambda text: ".*".join(re.escape(part) for part in text.split("*"))  # noqa: E731
    return re.compile(f"{star(before)}(?P<id>.+?){star(after)}")


def match_names(image_names: list[str], mask_names: list[str], image_pattern: str,
                mask_pattern: str) -> list[tuple[str, str]]:
    """Pair file names by patterns: [(image name, mask name)], sorted by image name.

    A name pairs when the whole name matches its pattern (``{id}`` = the shared part,
    ``*`` = any text) and a name of the other side has the same id. Names that match no
    pattern, and ids found on one side only, are left out. Two names of one side with the
    same id raise DataError (which one is meant cannot be known). Lesson 09 writes it.
    """
    images = _names_by_id(image_names, image_pattern, "images")
    masks = _names_by_id(mask_names, mask_pattern, "masks")
    return sorted((images[k], masks[k]) for k in images if k in masks)


def _names_by_id(names: list[str], pattern: str, what: str) -> dict[str, str]:
    """{id: name} of the names matching ``pattern``; two names with one id is an error."""
    regex = compile_pattern(pattern)
    found: dict[str, list[str]] = defaultdict(list)
    for name in names:
        match = regex.fullmatch(name)
        if match:
            found[match["id"]].append(name)
    twice = {k: v for k, v in found.items() if len(v) > 1}
    if twice:
        shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(twice.items())[:3])
        raise DataError(f"{len(twice)} ids match several {what} with pattern {pattern!r}, so "
                        f"the pairing would be a guess: {shown}. Make the pattern tighter.")
    return {k: v[0] for k, v in found.items()}


def _by_id(files: list[Path], pattern: str, what: str) -> dict[str, Path]:
    """{id: file} of the files whose name matches ``pattern`` (see ``_names_by_id``)."""
    by_name = {p.name: p for p in files}
    return {k: by_name[name] for k, name in _names_by_id(list(by_name), pattern, what).items()}


def _stem_id(path: Path, suffix: str) -> str | None:
    return path.stem[: len(path.stem) - len(suffix)] if path.stem.endswith(suffix) else None


def _match(images: dict[str, Path], masks: dict[str, Path], how: str, images_dir, masks_dir,
           all_images, all_masks, left_out: int = 0) -> Pairing:
    """Pair by shared id; raise with both sides' leftovers and a proposal if any are left."""
    no_mask = [images[k].name for k in sorted(images) if k not in masks]
    no_image = [masks[k].name for k in sorted(masks) if k not in images]
    if no_mask or no_image:
        lines = [f"images in {images_dir} and masks in {masks_dir} do not pair up ({how})"]
        if no_mask:
            lines.append(f"  {len(no_mask)} images have no mask: {show_names(no_mask)}")
        if no_image:
            lines.append(f"  {len(no_image)} masks have no image: {show_names(no_image)}")
        lines += _proposals(all_images, all_masks)
        raise DataError("\n".join(lines))
    ids = sorted(images)
    return Pairing([images[k] for k in ids], [masks[k] for k in ids], how, left_out)


def _token_id(stem: str) -> str:
    """'21_training' -> '21': the name up to the first separator."""
    return re.split(f"[{re.escape(_SEPARATORS)}]", stem, maxsplit=1)[0]


def _pattern_of(path: Path, ident: str) -> str:
    return "{id}" + path.name[len(ident):]


def _candidate_patterns(images: list[Path], masks: list[Path]) -> list[tuple[str, str, int]]:
    """(image pattern, mask pattern, pairs) for the name shapes seen around a shared id."""
    image_shapes = Counter(_pattern_of(p, _token_id(p.stem)) for p in images)
    mask_shapes = Counter(_pattern_of(p, _token_id(p.stem)) for p in masks)
    out = []
    for ip, _ in image_shapes.most_common(2):
        for mp, _ in mask_shapes.most_common(4):
            ids_i = {_token_id(p.stem) for p in images if _pattern_of(p, _token_id(p.stem)) == ip}
            ids_m = {_token_id(p.stem) for p in masks if _pattern_of(p, _token_id(p.stem)) == mp}
            out.append((ip, mp, len(ids_i & ids_m)))
    return sorted(out, key=lambda t: -t[2])


def _candidate_suffixes(images: list[Path], masks: list[Path]) -> list[tuple[str, int]]:
    stems = {p.stem for p in images}
    mask_stems = {p.stem for p in masks}
    suffixes = {""}
    for m in list(mask_stems)[:200]:
        for cut in range(1, len(m)):
            if m[:cut] in stems:
                suffixes.add(m[cut:])
    counted = [(s, sum(1 for st in stems if st + s in mask_stems)) for s in suffixes]
    return sorted((c for c in counted if c[1]), key=lambda t: -t[1])


def _proposals(images: list[Path], masks: list[Path]) -> list[str]:
    """Lines proposing the options that pair the most files."""
    lines = []
    suffixes = _candidate_suffixes(images, masks)
    if suffixes:
        s, n = suffixes[0]
        lines.append(f"  --mask-suffix \"{s}\" pairs {n} of {len(images)} images")
    patterns = [(ip, mp, n) for ip, mp, n in _candidate_patterns(images, masks)[:2] if n]
    for ip, mp, n in patterns:
        lines.append(f"  --image-pattern \"{ip}\" --mask-pattern \"{mp}\" pairs {n} of "
                     f"{len(images)} images")
    if len(patterns) == 2 and patterns[0][2] == patterns[1][2] == len(images):
        lines.append("  Two kinds of masks fit the same images: the patterns say which one "
                     "is meant; a suffix that fits one kind leaves the other unpaired.")
    return (["  Options that pair them:"] + lines) if lines else []


def _auto(images: list[Path], masks: list[Path], images_dir, masks_dir) -> Pairing:
    """Identical stems; else the one loose rule that pairs every file; else an error."""
    by_stem = _keyed(images, _stem, "images"), _keyed(masks, _stem, "masks")
    if set(by_stem[0]) == set(by_stem[1]):
        return _match(*by_stem, "identical names", images_dir, masks_dir, images, masks)
    fits: dict[Path, list[Path]] = {}
    for image in images:  # a mask fits an image: same stem, or stem + separator + more,
        ident = _token_id(image.stem)  # or the same leading id ("21_...")
        fits[image] = [m for m in masks if m.stem == image.stem or _token_id(m.stem) == ident
                       or (m.stem.startswith(image.stem) and m.stem[len(image.stem)] in _SEPARATORS)]
    several = {i: ms for i, ms in fits.items() if len(ms) > 1}
    if several:
        shown = "\n".join(f"  {i.name}: {', '.join(m.name for m in ms)}"
                          for i, ms in list(several.items())[:3])
        options = [f"  --image-pattern \"{ip}\" --mask-pattern \"{mp}\""
                   for ip, mp, n in _candidate_patterns(images, masks) if n == len(images)]
        raise DataError(
            f"{len(several)} images in {images_dir} have more than one mask in {masks_dir} "
            f"that fits, so the pairing would be a guess:\n{shown}\n"
            "Say which masks to use, e.g.:\n" + "\n".join(options[:3] or _proposals(images, masks)))
    used = [m for ms in fits.values() for m in ms]
    if all(len(ms) == 1 for ms in fits.values()) and len(set(used)) == len(used) == len(masks):
        pairs = sorted((i, ms[0]) for i, ms in fits.items())
        example = f"{pairs[0][0].name} + {pairs[0][1].name}"
        return Pairing([i for i, _ in pairs], [m for _, m in pairs],
                       f"names that share an id, e.g. {example}")
    return _match(*by_stem, "identical names", images_dir, masks_dir, images, masks)


def _stem(path: Path) -> str:
    return path.stem


def _by_patterns(images: list[Path], masks: list[Path], ip: str, mp: str, one_folder: bool,
                 images_dir: Path, masks_dir: Path) -> Pairing:
    """Pair by the ids that the patterns ``ip`` and ``mp`` find in the file names."""
    by_i = _by_id(images, ip, "images")
    if one_folder:  # a file an image pattern matched is not a mask
        masks = [p for p in masks if p not in by_i.values()]
    by_m = _by_id(masks, mp, "masks")
    left = len(images) - len(by_i) + len(masks) - len(by_m)
    if one_folder:
        left = len(images) - len(by_i) - len(by_m)
    return _match(by_i, by_m, f"patterns {ip} and {mp}", images_dir, masks_dir,
                  images, masks, left_out=left)


def _by_suffix(images: list[Path], masks: list[Path], suffix: str, one_folder: bool,
               images_dir: Path, masks_dir: Path) -> Pairing:
    """Pair ``<stem>.<ext>`` with ``<stem><suffix>.<ext>``."""
    if one_folder:
        if not suffix:
            raise DataError(f"images and masks are both in {images_dir}: give the masks' "
                            "name ending (--mask-suffix _mask), or use two folders")
        images = [p for p in images if not p.stem.endswith(suffix)]
    by_i = _keyed(images, _stem, "images")
    by_m = _keyed(masks, lambda p: _stem_id(p, suffix), "masks")
    if not one_folder:  # every mask file must find its image: one without the suffix is
        by_m.update({"\0" + p.name: p for p in masks  # listed (never silently passed over)
                     if _stem_id(p, suffix) is None})
    return _match(by_i, by_m, f"mask suffix {suffix!r}", images_dir, masks_dir, images, masks)


def pair_folders(images_dir: str | Path, masks_dir: str | Path, *, mask_suffix: str | None = None,
                 image_pattern: str | None = None, mask_pattern: str | None = None) -> Pairing:
    """Pair the images of ``images_dir`` with the masks of ``masks_dir`` (module docstring).

    Returns a ``Pairing`` sorted by image name. Raises DataError (what is left over on
    each side, the option that pairs them, or the images with several fitting masks).
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    images, masks = image_files(images_dir, "images"), image_files(masks_dir, "masks")
    one_folder = images_dir.resolve() == masks_dir.resolve()
    if image_pattern or mask_pattern:
        return _by_patterns(images, masks, image_pattern or "{id}.*", mask_pattern or "{id}.*",
                            one_folder, images_dir, masks_dir)
    if mask_suffix is not None:
        return _by_suffix(images, masks, mask_suffix, one_folder, images_dir, masks_dir)
    if one_folder:
        raise DataError(f"images and masks are both in {images_dir}: give the masks' name "
                        "ending (--mask-suffix _mask) or patterns, or use two folders")
    return _auto(images, masks, images_dir, masks_dir)
