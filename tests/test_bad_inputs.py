"""A careless user's bad inputs against every command: one clear message each, no file lost.

Each case below is something a user typed or had on disk: a wrong path, a text file named
``.pt``, a git-lfs pointer, a checkpoint whose settings disagree with its weights, a run that
diverges, an output folder that is the input... For every case the command must

- end with a non-zero exit status and a message of a few lines that names the problem,
- print no traceback,
- leave every file the user had before byte-identical (nothing lost or overwritten),
- leave no temporary file behind.

``python -m pytest tests/test_bad_inputs.py -v`` tries them all; the count printed at the end
("N passed") is the number of bad inputs with a clear message and no file lost.
"""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.cli import main

TINY = ["--size", "48x32", "--base", "4", "--depth", "2", "--batch-size", "8", "--device", "cpu"]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A user's folder: a toy dataset, a finished run, photos, and a collection of bad files."""
    root = tmp_path_factory.mktemp("user")
    assert main(["generate", "carvana", str(root / "carvana"), "--n", "24"]) == 0
    assert main(["train", "--data-root", str(root / "carvana"), "--out-dir", str(root / "run"),
                 "--epochs", "1", "--no-time-limit", *TINY]) == 0
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photos / name)
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("a user's notes\n")
    bad = root / "bad"
    bad.mkdir()
    (bad / "text.pt").write_text("hello\n")
    (bad / "lfs.pt").write_text("version https://git-lfs.github.com/spec/v1\n"
                                "oid sha256:4d7a2146\nsize 2311\n")
    (bad / "page.pt").write_text("<!DOCTYPE html><html><title>Drive: virus scan</title>")
    (bad / "empty.pt").write_bytes(b"")
    torch.save({"model_state": {}, "model_config": {}, "x": Evil()}, bad / "evil.pt")
    (bad / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    good = (root / "run" / "best.pt").read_bytes()
    (bad / "cut.pt").write_bytes(good[: len(good) // 3])
    (bad / "loop1.pt").symlink_to(bad / "loop2.pt")
    (bad / "loop2.pt").symlink_to(bad / "loop1.pt")
    (bad / "dangling.pt").symlink_to(bad / "moved-away.pt")
    ckpt = torch.load(root / "run" / "best.pt", weights_only=True)
    torch.save({**ckpt, "data": {**ckpt["data"], "image_mode": "L", "num_classes": 5}},
               bad / "says-5-grey.pt")
    torch.save({**ckpt, "model_config": {**ckpt["model_config"], "width": 3}}, bad / "unknown-key.pt")
    torch.save({**ckpt, "model_config": {**ckpt["model_config"], "bilinear": True}},
               bad / "wrong-weights.pt")
    torch.save({"weights": torch.zeros(3)}, bad / "bare.pt")
    moved = root / "moved-data"
    shutil.copytree(root / "carvana", moved)
    torch.save({**ckpt, "train_config": {**ckpt["train_config"], "data_root": str(moved)}},
               bad / "moved-data.pt")
    shutil.rmtree(moved)
    broken = root / "broken-image"
    shutil.copytree(root / "carvana", broken)
    sorted((broken / "train").iterdir())[0].write_text("<html>quota exceeded</html>")
    shutil.copytree(root / "run", root / "other-run")
    history = [{**row, "elapsed": 5.0} for row in ckpt["history"]]
    torch.save({**ckpt, "history": history,
                "train_config": {**ckpt["train_config"], "max_seconds": 2.0, "epochs": 9}},
               bad / "budget-used.pt")
    own = root / "own255"  # own folders with 0/255 masks
    (own / "images").mkdir(parents=True), (own / "masks").mkdir()
    for image in sorted((root / "carvana" / "train").iterdir())[:8]:
        shutil.copy(image, own / "images" / image.name)
        mask = np.array(Image.open(root / "carvana" / "train_masks" / f"{image.stem}_mask.gif"))
        Image.fromarray((mask * 255).astype(np.uint8)).save(own / "masks" / f"{image.stem}.png")
    Image.new("L", (20000, 20000)).save(photos / "bomb.png")  # 400 megapixels, 0.4 MB
    deep = root / "own65535"  # the same with 16-bit 0/65535 masks
    shutil.copytree(own / "images", deep / "images")
    (deep / "masks").mkdir()
    for mask in sorted((own / "masks").iterdir()):
        levels = (np.array(Image.open(mask)) > 0).astype(np.uint16) * 65535
        Image.fromarray(levels).save(deep / "masks" / mask.name)
    (bad / "names.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    other = root / "other-size-mask"
    shutil.copytree(root / "carvana", other)
    mask = sorted((other / "train_masks").iterdir())[0]
    Image.open(mask).resize((10, 10)).save(mask)
    return root


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    expected: str
    status: int = 1
    lines: int = 6  # at most; the data audit lists each pair (issue 24 caps it at ~15)


def ckpt(name):
    return lambda r: ["evaluate", str(r / "bad" / name), "--device", "cpu"]


def train(*extra):
    return lambda r: ["train", "--data-root", str(r / "carvana"), "--epochs", "1",
                      "--no-time-limit", *TINY, *[e.format(r=r) for e in extra]]


def own(*extra):
    """segkit train on your own folders (0/255 masks)."""
    return lambda r: ["train", "--images", str(r / "own255/images"), "--masks",
                      str(r / "own255/masks"), "--epochs", "1", *TINY,
                      *[e.format(r=r) for e in extra]]


CASES = [
    # generate
    Case("generate over a dataset", lambda r: ["generate", "carvana", str(r / "carvana")],
         "--overwrite"),
    Case("generate an unknown dataset", lambda r: ["generate", "cityscapes", str(r / "x")],
         "invalid choice", status=2),
    Case("generate with a bad size", lambda r: ["generate", "carvana", str(r / "x"), "--size", "9"],
         "width x height", status=2),  # read at the command line's edge, as train's --size
    Case("generate no images", lambda r: ["generate", "carvana", str(r / "x"), "--n", "0"],
         "images >= 1, got 0"),
    # train: the data
    Case("train on a missing folder", lambda r: ["train", "--data-root", str(r / "nowhere")],
         "not found"),
    Case("train on an empty folder", lambda r: ["train", "--data-root", str(r / "empty")],
         "empty"),
    Case("train on a file", lambda r: ["train", "--data-root", str(r / "notes.txt")],
         "is a file, not a folder"),
    Case("train voc on carvana data", lambda r: ["train", "--dataset", "voc",
                                                 "--data-root", str(r / "carvana")], "voc"),
    Case("train on a broken image", lambda r: ["train", "--data-root", str(r / "broken-image"),
                                               *TINY, "--out-dir", str(r / "r1")],
         "is not an image"),
    Case("train on a mask of another size", lambda r: [
        "train", "--data-root", str(r / "other-size-mask"), *TINY, "--out-dir", str(r / "r2")],
        "different sizes"),
    # train: the options
    Case("train with a bad size", train("--size", "ninety"), "width x height", status=2),
    Case("train with a tiny size", train("--size", "4x4"), "too small", status=2),
    Case("train zero epochs", train("--epochs", "0"), "epochs"),
    Case("train negative batch", train("--batch-size", "-2"), "--batch-size must be"),
    Case("train negative lr", train("--lr", "-1"), "--lr must be"),
    Case("train infinite lr", train("--lr", "inf"), "--lr must be a finite number > 0, got inf"),
    Case("train negative time", lambda r: ["train", "--data-root", str(r / "carvana"),
                                           "--max-seconds", "-5", *TINY], "--max-seconds"),
    Case("train negative workers", train("--num-workers", "-1"),
         "--num-workers must be a whole number >= 0, got -1"),
    Case("train negative classes", train("--num-classes", "-3"),
         "--num-classes must be a whole number >= 2, got -3"),
    Case("train ignore index -1", train("--ignore-index", "-1"), "from 0 to 255"),
    Case("train validation fraction 1", train("--val-fraction", "1"), "--val-fraction"),
    Case("train momentum 1.5", train("--momentum", "1.5"), "--momentum must be below 1"),
    Case("train negative weight decay", train("--weight-decay", "-1"), "--weight-decay"),
    Case("train depth 12", train("--depth", "12"), "at least 4096 pixels on each side"),
    Case("train depth 12 on huge images", train("--depth", "12", "--size", "4096x4096"),
         "free. Nothing was built"),
    Case("train validation on the training folders",
         own("--val-images", "{r}/own255/images", "--val-masks", "{r}/own255/masks"),
         "same folder as --images"),
    Case("train ignore 255 on 0/255 masks", own("--ignore-index", "255", "--out-dir", "{r}/r3"),
         "255 is the object: leave --ignore-index out"),
    Case("train a binary class-names file", own("--class-names", "{r}/bad/names.txt"),
         "names.txt is not text"),
    Case("train a foreground that is not in the masks", own("--foreground", "7"),
         "--foreground 7 is not one of its values", lines=15),
    Case("train 16-bit 0/65535 masks", lambda r: [
        "train", "--images", str(r / "own65535/images"), "--masks", str(r / "own65535/masks"),
        *TINY], "--foreground 65535", lines=15),
    Case("train with the cache in a file", train("--cache", "disk", "--cache-dir",
                                                 "{r}/notes.txt"),
         "cannot write the image cache file"),
    Case("train into /dev/full", train("--out-dir", "/dev/full"), "is a file, not a folder"),
    Case("train too deep for the size", train("--depth", "7"), "depth"),
    Case("train even kernel", train("--kernel-size", "4"), "odd"),
    Case("train into a file", train("--out-dir", "{r}/notes.txt"), "notes.txt"),
    Case("train diverges", train("--lr", "1e6", "--epochs", "3", "--out-dir", "{r}/diverged"),
         "training diverged"),
    # train: resuming
    Case("resume a missing checkpoint", train("--resume", "{r}/run/nope.pt"), "not found"),
    Case("resume a text file", train("--resume", "{r}/bad/text.pt"), "text file"),
    Case("resume a git-lfs pointer", train("--resume", "{r}/bad/lfs.pt"), "git lfs pull"),
    Case("resume a web page", train("--resume", "{r}/bad/page.pt"), "web page"),
    Case("resume an unsafe pickle", train("--resume", "{r}/bad/evil.pt"), "unsafe"),
    Case("resume a truncated file", train("--resume", "{r}/bad/cut.pt"), "truncated"),
    Case("resume a symlink loop", train("--resume", "{r}/bad/loop1.pt"), "symlink loop"),
    Case("resume a folder", train("--resume", "{r}/run"), "is a folder"),
    Case("resume with another width", lambda r: [
        "train", "--data-root", str(r / "carvana"), "--resume", str(r / "run" / "last.pt"),
        "--base", "8", "--epochs", "2", "--no-time-limit", "--size", "48x32"],
        "--base 8 (the run: 4)"),
    Case("resume with another learning rate", train("--resume", "{r}/run/last.pt", "--lr", "0.5",
                                                    "--epochs", "3"),
         "--lr 0.5 (the run: 0.0015)"),
    Case("resume with another optimizer", train("--resume", "{r}/run/last.pt", "--optimizer",
                                                "sgd", "--epochs", "3"),
         "--optimizer sgd (the run: adamw)"),
    Case("resume with other data", lambda r: [
        "train", "--resume", str(r / "run" / "last.pt"), "--epochs", "3", "--images",
        str(r / "own255/images"), "--masks", str(r / "own255/masks")], "--images"),
    Case("resume a finished run", train("--resume", "{r}/run/last.pt"),
         "nothing is left to train, and nothing was written"),
    Case("resume a used-up time budget", lambda r: [
        "train", "--resume", str(r / "bad" / "budget-used.pt"), "--device", "cpu"],
        "has used its time budget (5.0 s of training, --max-seconds 2)"),
    # evaluate
    Case("evaluate a missing checkpoint", ckpt("nope.pt"), "not found"),
    Case("evaluate an empty file", ckpt("empty.pt"), "empty"),
    Case("evaluate a plain pickle of code", ckpt("evil.pkl"), "unsafe"),
    Case("evaluate a dangling link", ckpt("dangling.pt"), "does not exist"),
    Case("evaluate a bare state_dict", ckpt("bare.pt"), "not a segkit checkpoint"),
    Case("evaluate settings that disagree", ckpt("says-5-grey.pt"), "disagrees with itself"),
    Case("evaluate an unknown model key", ckpt("unknown-key.pt"), "width"),
    Case("evaluate weights of another model", ckpt("wrong-weights.pt"), "do not fit"),
    Case("evaluate after the data moved", ckpt("moved-data.pt"), "--data-root"),
    Case("evaluate into a file", lambda r: [
        "evaluate", str(r / "run/best.pt"), "--device", "cpu", "--images", str(r / "carvana/train"),
        "--masks", str(r / "carvana/train_masks"), "--mask-suffix", "_mask", "--out-dir",
        str(r / "notes.txt")], "is a file, not a folder"),
    # predict
    Case("predict into its input", lambda r: ["predict", str(r / "run/best.pt"), str(r / "photos"),
                                              str(r / "photos")], "input"),
    Case("predict inside its input", lambda r: ["predict", str(r / "run/best.pt"), str(r / "photos"),
                                                str(r / "photos/out")], "inside"),
    Case("predict into a dataset's masks", lambda r: [
        "predict", str(r / "run/best.pt"), str(r / "photos"), str(r / "carvana/train_masks")],
        "dataset"),
    Case("predict into a folder with files", lambda r: [
        "predict", str(r / "run/best.pt"), str(r / "photos"), str(r / "run")], "--overwrite"),
    Case("predict a missing folder", lambda r: ["predict", str(r / "run/best.pt"),
                                                str(r / "nowhere"), str(r / "o1")], "not found"),
    Case("predict an empty folder", lambda r: ["predict", str(r / "run/best.pt"), str(r / "empty"),
                                               str(r / "o2")], "no images"),
    Case("predict a file", lambda r: ["predict", str(r / "run/best.pt"), str(r / "notes.txt"),
                                      str(r / "o3")], "not a folder"),
    Case("predict with a web page", lambda r: ["predict", str(r / "bad/page.pt"), str(r / "photos"),
                                               str(r / "o4")], "web page"),
    Case("predict with settings that disagree", lambda r: [
        "predict", str(r / "bad/says-5-grey.pt"), str(r / "photos"), str(r / "o5")],
        "disagrees with itself"),
    Case("predict a decompression bomb among photos", lambda r: [
        "predict", str(r / "run/best.pt"), str(r / "photos"), str(r / "o7")],
        "bomb.png is too large to open safely"),
    Case("predict threshold above 1", lambda r: ["predict", str(r / "run/best.pt"),
                                                 str(r / "photos"), str(r / "o6"),
                                                 "--threshold", "1.5"], "threshold"),
    # the course's commands
    Case("grade a missing notebook", lambda r: ["grade", str(r / "nowhere.ipynb"), "--lesson", "04"],
         "neither a notebook, a folder nor a glob"),
    Case("build lessons from a missing folder", lambda r: [
        "build-lessons", "--solutions", str(r / "nowhere"), "--lessons", str(r / "l")], "nowhere"),
    Case("unknown command", lambda r: ["trian"], "invalid choice", status=2),
]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links not followed) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_gets_one_clear_message_and_loses_nothing(corpus, case, capsys):
    before = snapshot(corpus)
    try:
        status = main(case.argv(corpus))
    except SystemExit as exc:  # argparse: usage line and error
        status = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert status == case.status, err
    assert "Traceback" not in err
    assert case.expected in err, err
    assert 1 <= len(lines) <= case.lines, err
    after = snapshot(corpus)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost or changed
    assert not [k for k in after if k.endswith(".tmp")]


def test_an_unexpected_error_is_called_a_bug_and_the_traceback_is_on_request(monkeypatch,
                                                                            capsys, tmp_path):
    import segkit.cli

    def broken(args):
        return {}["a key segkit forgot"]

    monkeypatch.setattr(segkit.cli, "cmd_generate", broken)
    monkeypatch.delenv("SEGKIT_TRACEBACK", raising=False)
    assert main(["generate", "carvana", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "bug in segkit" in err and "--traceback" in err
    assert "Traceback" not in err
    assert main(["generate", "carvana", str(tmp_path / "x"), "--traceback"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    monkeypatch.setenv("SEGKIT_TRACEBACK", "1")
    assert main(["generate", "carvana", str(tmp_path / "x")]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


# Commands that succeed (exit 0) and must still lose nothing: each writes somewhere new and
# says where. (name, argv, a phrase the output must hold)
KEPT = [
    ("train into a run's folder", train("--out-dir", "{r}/run"),
     "holds earlier results"),
    ("resume into another run's folder", train("--resume", "{r}/other-run/last.pt", "--out-dir",
                                               "{r}/run", "--epochs", "2"),
     "holds earlier results"),
    ("evaluate twice into the default folder",
     lambda r: ["evaluate", str(r / "run/best.pt"), "--device", "cpu", "--images",
                str(r / "carvana/train"), "--masks", str(r / "carvana/train_masks"),
                "--mask-suffix", "_mask"],
     "holds earlier results (per_image.csv"),
]


def test_commands_that_succeed_keep_every_earlier_result(corpus, capsys):
    """Each command twice: the second run keeps the first one's files and says where it
    wrote instead."""
    import re

    for name, argv, said in KEPT:
        assert main(argv(corpus)) == 0, name
        capsys.readouterr()
        before = snapshot(corpus)
        assert main(argv(corpus)) == 0, name
        out = capsys.readouterr().out
        assert said in out, (name, out)
        landed = Path(re.search(r"writes to (\S+)", out).group(1)).relative_to(corpus)
        after = snapshot(corpus)
        assert {k: v for k, v in after.items() if k in before} == before, name
        assert any(k.startswith(f"{landed}/") for k in after.keys() - before.keys()), name


def test_two_trainings_started_together_get_a_folder_each(corpus, tmp_path):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "segkit", *train("--out-dir", str(tmp_path / "D"))(corpus)]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    saved = {line.split(",")[0] for out in outputs for line in out.splitlines()
             if line.startswith("saved: ")}
    assert saved == {f"saved: {tmp_path / 'D' / 'last.pt'}",
                     f"saved: {tmp_path / 'D-2' / 'last.pt'}"}, outputs
    assert any("this run writes to" in out for out in outputs)
    for folder in ("D", "D-2"):  # each holds one whole run
        assert torch.load(tmp_path / folder / "last.pt", weights_only=False)["epoch"] == 1


def test_a_one_pixel_image_is_called_out_before_training(corpus, tmp_path, capsys):
    """Silent no more: a 1x1 "image" among the pairs trains, with a note naming it."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(corpus / "own255" / "images", images)
    shutil.copytree(corpus / "own255" / "masks", masks)
    Image.new("RGB", (1, 1)).save(images / "dot.png")
    Image.new("L", (1, 1)).save(masks / "dot.png")
    assert main(["train", "--images", str(images), "--masks", str(masks), "--out-dir",
                 str(tmp_path / "run"), "--epochs", "1", *TINY]) == 0
    assert "1 image(s) are smaller than 8 pixels on a side (the smallest 1x1)" in \
        capsys.readouterr().out
