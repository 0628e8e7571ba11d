"""Your own data from the command line: train, evaluate, predict, resume, fetch.

The end-to-end run uses the generated awkward folder (``segkit generate cells``): 16-bit
TIFF scans, GIF masks with other names, a second mask per scan that a loose rule would
pick, and one TIFF cut short.
"""

from __future__ import annotations

import csv
import math
import re
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit import realdata
from segkit.checkpoint import load_checkpoint
from segkit.cli import main
from segkit.masks import VOC_COLORMAP
from segkit.recipe import TrainConfig, build_datasets, continue_schedule
from segkit.budget import BudgetCosineLR
from segkit.training import History

TINY = ["--size", "32x32", "--base", "4", "--depth", "2", "--batch-size", "8", "--device", "cpu"]
PATTERNS = ["--image-pattern", "{id}_scan.tif", "--mask-pattern", "{id}_cells.gif"]


@pytest.fixture(scope="module")
def cells_run(tmp_path_factory):
    """The awkward folder and one short training run on it (2 epochs)."""
    tmp = tmp_path_factory.mktemp("own")
    data = tmp / "cells"
    assert main(["generate", "cells", str(data), "--n", "16", "--size", "48x48"]) == 0
    out = tmp / "run"
    argv = ["train", "--images", str(data / "scans"), "--masks", str(data / "labels"), *PATTERNS,
            "--drop-bad-files", "--out-dir", str(out), "--epochs", "2", "--no-time-limit", *TINY]
    return data, out, argv


def test_awkward_folder_end_to_end(cells_run, capsys, tmp_path):
    data, out, argv = cells_run
    # 1. no pairing options: two masks fit each scan -> an error that proposes the patterns
    assert main(argv[:5] + ["--out-dir", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "000_scan.tif: 000_cells.gif, 000_scan_roi.gif" in err
    assert '--image-pattern "{id}_scan.tif" --mask-pattern "{id}_cells.gif"' in err
    # 2. patterns, but the broken TIFF: listed before any epoch, with the option that helps
    no_drop = [a for a in argv if a != "--drop-bad-files"]
    no_drop[no_drop.index("--out-dir") + 1] = str(tmp_path / "y")
    assert main(no_drop) == 1
    captured = capsys.readouterr()
    assert "015_scan.tif: the file is cut short" in captured.err
    assert "--drop-bad-files" in captured.err and "epoch" not in captured.out
    # 3. train without it
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "by patterns {id}_scan.tif and {id}_cells.gif (16 files matched no pattern" in text
    assert "left out (unreadable): " in text and "015_scan.tif" in text
    share = re.search(r"classes \(share of labelled pixels\): 0: [\d.]+%, 1: ([\d.]+)%", text)
    assert float(share[1]) < 15  # the cells are the minority class
    epochs = [line for line in text.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2 and all("  lr " in line for line in epochs)
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["data"]["image_mode"] == "L" and ckpt["data"]["source_size"] == [48, 48]
    assert Path(ckpt["data"]["images"]).is_absolute() and ckpt["data"]["num_classes"] == 1
    # 4. evaluate on a labelled folder: summary, CSV worst first, figure
    assert main(["evaluate", str(out / "best.pt"), "--images", str(data / "scans"), "--masks",
                 str(data / "labels"), *PATTERNS, "--out-dir", str(tmp_path / "ev")]) == 0
    text = capsys.readouterr().out
    assert "15 images:" in text and "dice" in text and "iou_pooled" in text
    assert "1 pair(s) could not be read" in text
    rows = list(csv.DictReader(open(tmp_path / "ev" / "per_image.csv")))
    assert len(rows) == 15 and rows[0]["mask"].endswith("_cells.gif")
    dices = [float(r["dice"]) for r in rows]
    assert dices == sorted(dices)
    assert Image.open(tmp_path / "ev" / "worst.png").size[0] > 100
    # 5. predict a scan four times as large as the training scans (tiled)
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(np.tile(np.asarray(Image.open(data / "scans" / "000_scan.tif")), (2, 2))
                    ).save(big / "large.tif")
    assert main(["predict", str(out / "best.pt"), str(big), str(tmp_path / "pred")]) == 0
    assert Image.open(tmp_path / "pred" / "large_mask.png").size == (96, 96)


def test_evaluate_names_the_checkpoint_and_option_when_the_data_moved(cells_run, capsys,
                                                                       tmp_path, monkeypatch):
    data, out, argv = cells_run
    if not (out / "best.pt").exists():
        assert main(argv) == 0
    monkeypatch.chdir(tmp_path)  # another folder: the recorded absolute paths still work
    assert main(["evaluate", str(out / "best.pt")]) == 0
    moved = data.with_name("cells-moved")
    data.rename(moved)
    try:
        assert main(["evaluate", str(out / "best.pt")]) == 1
        err = capsys.readouterr().err
        assert f"checkpoint {out / 'best.pt'} was trained on {data / 'scans'}" in err
        assert "--images DIR" in err
    finally:
        moved.rename(data)


def test_data_root_is_recorded_absolute_and_can_be_overridden(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "carvana", "car", "--n", "8", "--size", "48x32"]) == 0
    cfg = TrainConfig(data_root="car")
    assert cfg.data_root == str(tmp_path / "car")
    (tmp_path / "car").rename(tmp_path / "car2")
    from segkit.cli import check_data_root
    from segkit.errors import DataError

    with pytest.raises(DataError, match=r"checkpoint c\.pt was trained on .*--data-root DIR"):
        check_data_root("c.pt", cfg)


def test_resume_stretches_the_schedule_over_the_new_budget(tmp_path, capsys):
    """Resuming a finished 2-epoch run for 4 epochs continues the cosine at half-way
    (lr 0.0015), not at the saved schedule's end (lr 0)."""
    assert main(["generate", "carvana", str(tmp_path / "car"), "--n", "8", "--size", "48x32"]) == 0
    common = ["train", "--data-root", str(tmp_path / "car"), "--out-dir", str(tmp_path / "r"),
              "--no-time-limit", "--val-fraction", "0.5", "--lr", "0.003", *TINY]
    assert main([*common, "--epochs", "2"]) == 0
    assert main([*common, "--epochs", "4", "--resume", str(tmp_path / "r" / "last.pt")]) == 0
    text = capsys.readouterr().out
    assert "learning rate 0.0015" in text
    lines = {int(line.split()[1].split("/")[0]): line for line in text.splitlines()
             if line.startswith("epoch")}
    assert lines[1].endswith("lr 0.003") and lines[3].endswith("lr 0.0015")
    assert lines[4].endswith("lr 0.000439")


def test_budget_schedule_continues_over_more_seconds():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=0.003)
    sched = BudgetCosineLR(opt, max_seconds=60, epochs=40)
    opt.step()
    sched.step(60.0)  # the first budget is spent: lr 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    history = History.from_list([{"epoch": 5.0, "elapsed": 60.0, "lr": 0.0}])
    lr = continue_schedule(sched, opt, TrainConfig(max_seconds=120, epochs=40), history, 5)
    assert lr == pytest.approx(0.0015) and opt.param_groups[0]["lr"] == pytest.approx(0.0015)
    sched.step(90.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.003 * (1 + math.cos(math.pi * 0.75)) / 2)


def test_voc_layout_without_split_files_gets_a_seeded_split(tmp_path, capsys):
    assert main(["generate", "voc", str(tmp_path / "voc"), "--n", "10", "--size", "32x32"]) == 0
    sets = tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets"
    for f in sets.rglob("*.txt"):
        f.unlink()
    cfg = TrainConfig(dataset="voc", data_root=str(tmp_path / "voc"), size=(32, 32))
    train_ds, val_ds, stats = build_datasets(cfg)
    out = capsys.readouterr().out
    assert "has no ImageSets/Segmentation/train.txt: split 10 pairs at random (seed 0) " \
           "into 8 train / 2 val" in out
    assert (len(train_ds), len(val_ds)) == (8, 2)


def test_labelme_export_takes_its_class_count_from_class_names(tmp_path, capsys):
    export = tmp_path / "export"
    (export / "JPEGImages").mkdir(parents=True)
    (export / "SegmentationClassPNG").mkdir()
    (export / "class_names.txt").write_text(
        "\n".join(["_background_"] + [f"class{i}" for i in range(1, 21)]))
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            export / "JPEGImages" / f"img{i}.jpg")
        index = np.zeros((16, 16), np.uint8)
        index[4:9, 4:9] = 18  # the largest index present: 18, not 20
        mask = Image.fromarray(index, mode="P")
        mask.putpalette(VOC_COLORMAP.flatten().tolist())
        mask.save(export / "SegmentationClassPNG" / f"img{i}.png")
    cfg = TrainConfig(images=str(export / "JPEGImages"), masks=str(export / "SegmentationClassPNG"),
                      size=(16, 16), val_fraction=0.4)
    assert cfg.dataset == "folder"
    _, _, stats = build_datasets(cfg)
    assert stats["num_classes"] == 21
    assert f"class names from {export / 'class_names.txt'}" in capsys.readouterr().out


def _voc_archive(path: Path) -> None:
    index = np.zeros((6, 8), np.uint8)
    index[1:5, 2:6] = 15
    jpg, png = path.parent / "a.jpg", path.parent / "a.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(jpg)
    mask = Image.fromarray(index, mode="P")
    mask.putpalette(VOC_COLORMAP.flatten().tolist())
    mask.save(png)
    sets = path.parent / "train.txt"
    sets.write_text("a\n")
    with tarfile.open(path, "w") as tar:
        base = "VOCdevkit/VOC2012/"
        tar.add(jpg, base + "JPEGImages/a.jpg")
        tar.add(png, base + "SegmentationClass/a.png")
        tar.add(sets, base + "ImageSets/Segmentation/train.txt")


def test_fetch_checks_archives_and_explains_what_is_missing(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "VOCtrainval_11-May-2012.tar"
    _voc_archive(archive)
    assert main(["fetch", "voc2012", str(tmp_path / "voc"), "--archive", str(archive)]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    monkeypatch.setattr(realdata, "VOC2012", realdata.Resource(
        archive.as_uri(), archive.name, realdata.file_checksum(archive)))
    assert main(["fetch", "voc2012", str(tmp_path / "voc"), "--archive", str(archive)]) == 0
    assert "voc2012 is ready in" in capsys.readouterr().out
    assert (tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages" / "a.jpg").is_file()

    with socket.socket() as s:  # a port nobody listens on: no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(realdata, "PET_IMAGES", realdata.Resource(
        f"http://127.0.0.1:{port}/images.tar.gz", "images.tar.gz", "0" * 32))
    assert main(["fetch", "pet", str(tmp_path / "pet")]) == 1
    assert "no network: download" in capsys.readouterr().err
    assert main(["fetch", "carvana", str(tmp_path / "car")]) == 1
    err = capsys.readouterr().err
    assert "sign in to Kaggle" in err and "--archive train.zip" in err


def test_binary_masks_with_an_ignore_value_and_explicit_val_folders(tmp_path, capsys):
    """--ignore-index 255 on binary 0/1 masks: the loss and the scores leave those pixels
    out; --val-images/--val-masks replace the split; --skip-audit says so."""
    from segkit.recipe import IgnoringBCEDice, build_loss
    from segkit.training import validate
    from segkit.unet import UNet

    mask = np.zeros((16, 16), np.uint8)
    mask[4:10, 4:10] = 1
    mask[0] = 255  # a row nobody labelled
    for part, n in (("train", 4), ("val", 2)):
        for i in range(n):
            (tmp_path / part / "im").mkdir(parents=True, exist_ok=True)
            (tmp_path / part / "ma").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(
                tmp_path / part / "im" / f"{part}{i}.png")
            Image.fromarray(mask).save(tmp_path / part / "ma" / f"{part}{i}.png")
    cfg = TrainConfig(images=str(tmp_path / "train" / "im"), masks=str(tmp_path / "train" / "ma"),
                      val_images=str(tmp_path / "val" / "im"),
                      val_masks=str(tmp_path / "val" / "ma"), ignore_index=255,
                      skip_audit=True, size=(16, 16), augment=False)
    train_ds, val_ds, stats = build_datasets(cfg)
    assert (len(train_ds), len(val_ds), stats["num_classes"]) == (4, 2, 2)
    assert "audit skipped (--skip-audit): 4 pairs" in capsys.readouterr().out
    images, masks = val_ds[0][0][None], val_ds[0][1][None]
    assert set(masks.unique().tolist()) == {0, 1, 255}
    loss_fn = build_loss(cfg, train_ds, num_classes=1)
    assert isinstance(loss_fn, IgnoringBCEDice)
    perfect = torch.where(masks == 1, 20.0, -20.0).float()[:, None]
    assert loss_fn(perfect, masks).item() < 0.01
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    scores = validate(model, [(images, masks)], loss_fn, "cpu")
    assert 0 <= scores["accuracy"] <= 1 and math.isfinite(scores["loss"])

    class Oracle(torch.nn.Module):  # predicts the truth; wrong only where nobody labelled
        def forward(self, x):
            return torch.where(masks == 1, 20.0, -20.0).float()[:, None] + 0 * x[:, :1]
    oracle = validate(Oracle(), [(images, masks)], loss_fn, "cpu")
    assert oracle["accuracy"] == 1.0 and oracle["dice"] == 1.0


def test_evaluate_a_multiclass_checkpoint_per_class_and_miou(tmp_path):
    from segkit.checkpoint import save_checkpoint
    from segkit.evaluation import evaluate_folder
    from segkit.unet import UNet

    torch.manual_seed(0)
    model = UNet(in_channels=3, num_classes=3, base=4, depth=2)
    info = {"size": [16, 16], "mean": [0.5] * 3, "std": [0.25] * 3, "image_mode": "RGB",
            "task": "multiclass", "num_classes": 3}
    save_checkpoint(tmp_path / "m.pt", model=model, epoch=1, data=info)
    rng = np.random.default_rng(0)
    for i in range(3):
        (tmp_path / "im").mkdir(exist_ok=True), (tmp_path / "ma").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / "im" / f"{i}.png")
        labels = np.zeros((16, 16), np.uint8)
        labels[:8], labels[12:, :4] = 1, 2
        labels[0, 0] = 255
        mask = Image.fromarray(labels, mode="P")
        mask.putpalette(VOC_COLORMAP.flatten().tolist())
        mask.save(tmp_path / "ma" / f"{i}.png")
    result = evaluate_folder(tmp_path / "m.pt", tmp_path / "im", tmp_path / "ma", tmp_path / "ev")
    assert set(result.summary) == {"miou", "accuracy"} and len(result.per_class_iou) == 3
    present = [v for v in result.per_class_iou if v == v]
    assert result.summary["miou"] == pytest.approx(sum(present) / len(present))
    assert "IoU per class: 0:" in str(result)
    rows = list(csv.DictReader(open(result.csv_path)))
    assert [float(r["accuracy"]) for r in rows] == sorted(float(r["accuracy"]) for r in rows)
    assert result.figure_path.is_file()


def test_skip_audit_keeps_its_old_spelling():
    """--skip-audit, and --skip-data-check from before the audit had its own word."""
    from segkit.cli import build_parser

    for option in ("--skip-audit", "--skip-data-check"):
        args = build_parser().parse_args(["train", "--images", "im", "--masks", "ma", option])
        assert args.skip_audit is True
    args = build_parser().parse_args(["train", "--images", "im", "--masks", "ma"])
    assert args.skip_audit is None and TrainConfig().skip_audit is False
