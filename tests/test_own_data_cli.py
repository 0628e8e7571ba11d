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
    assert "per class, pooled over the images:" in str(result)
    by_name = {name: v["iou"] for name, v in result.per_class.items()}
    assert list(by_name) == ["class 0", "class 1", "class 2"]
    assert list(by_name.values()) == pytest.approx(result.per_class_iou, nan_ok=True)
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


# --------------------------------------------------------------------------- real data:
# each case below was silent (a wrong figure, or no word) on a real dataset as it ships


def _stand_in(root: Path, name: str, array: np.ndarray) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(root / name)
    return root / name


def test_evaluate_foreground_0_remaps_the_prediction_with_the_truth(cells_run, capsys, tmp_path):
    """EM slices label the membranes 0: scoring them with --foreground 0 must score the
    model's background prediction, not its foreground against the flipped truth (which
    reported Dice 0.121 for a model whose real figure was 0.764). Both readings give the
    same two classes, swapped; a binary evaluate shows both."""
    data, out, argv = cells_run
    if not (out / "best.pt").exists():
        assert main(argv) == 0
    common = ["evaluate", str(out / "best.pt"), "--images", str(data / "scans"), "--masks",
              str(data / "labels"), *PATTERNS]
    assert main([*common, "--out-dir", str(tmp_path / "a")]) == 0
    plain = capsys.readouterr().out
    assert main([*common, "--foreground", "0", "--out-dir", str(tmp_path / "b")]) == 0
    flipped = capsys.readouterr().out

    def per_class(text):
        rows = re.findall(r"^    (\d) ([^\n]*?) +(\d\.\d{4})  (\d\.\d{4})$", text, re.M)
        return {int(c): (float(d), float(j)) for c, _, d, j in rows}
    a, b = per_class(plain), per_class(flipped)
    assert set(a) == {0, 1} and "0 background" in plain and "1 foreground" in plain
    assert b[1] == a[0] and b[0] == a[1]  # the same figures, the classes swapped
    assert "1 foreground, value 0" in flipped
    dice = float(re.search(r"^  dice +(\d\.\d+)$", flipped, re.M)[1])
    assert dice > 0.9  # the background of a cells slide: most pixels, well predicted


def test_region_of_interest_masks_paired_by_a_loose_rule_are_called_out(tmp_path, capsys):
    """A retina layout with --masks on the field-of-view folder (21_training.tif beside
    21_training_mask.gif in another folder): the pairing is shown with its rule and
    examples, and the masks are called a probable region of interest before any epoch,
    by train and by evaluate."""
    yy, xx = np.mgrid[:40, :40]
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2 < 17 ** 2).astype(np.uint8) * 255
    rng = np.random.default_rng(0)
    for i in range(21, 27):
        _stand_in(tmp_path / "training" / "images", f"{i}_training.tif",
                  rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        _stand_in(tmp_path / "training" / "mask", f"{i}_training_mask.gif", disc)
    folders = ["--images", str(tmp_path / "training" / "images"),
               "--masks", str(tmp_path / "training" / "mask")]
    assert main(["train", *folders, "--out-dir", str(tmp_path / "run"), "--epochs", "1",
                 "--no-time-limit", "--val-fraction", "0.34", *TINY]) == 0
    text = capsys.readouterr().out
    assert "by names that share an id, not by identical names:\n" \
           "  21_training.tif + 21_training_mask.gif\n" in text
    warning = text.index("warning: these masks look like regions of interest")
    assert warning < text.index("epoch  1/1")
    assert main(["evaluate", str(tmp_path / "run" / "best.pt"), *folders]) == 0
    text = capsys.readouterr().out
    assert "not by identical names" in text and "look like regions of interest" in text


def test_predict_says_which_earlier_outputs_it_leaves_out(cells_run, tmp_path, capsys):
    """A folder holding 0.png and 0_predict.png (an earlier tool's output): the outputs
    are left out and named; --all-files predicts them too, and says so."""
    data, out, argv = cells_run
    if not (out / "best.pt").exists():
        assert main(argv) == 0
    folder = tmp_path / "test"
    scan = np.asarray(Image.open(data / "scans" / "000_scan.tif"))
    for name in ("0", "1"):
        _stand_in(folder, f"{name}.png", scan)
        _stand_in(folder, f"{name}_predict.png", (scan > scan.mean()).astype(np.uint8) * 255)
    assert main(["predict", str(out / "best.pt"), str(folder), str(tmp_path / "p1")]) == 0
    text = capsys.readouterr().out
    assert "left out 2 files named like another image plus a word, probably earlier " \
           "outputs or masks (0_predict.png beside 0.png, 1_predict.png beside 1.png)" in text
    assert sorted(p.name for p in (tmp_path / "p1").glob("*_mask.png")) == ["0_mask.png",
                                                                            "1_mask.png"]
    assert main(["predict", str(out / "best.pt"), str(folder), str(tmp_path / "p2"),
                 "--all-files"]) == 0
    assert "predicted 2 files named like another image plus a word too" in capsys.readouterr().out
    assert len(list((tmp_path / "p2").glob("*_mask.png"))) == 4


def test_the_split_travels_with_the_run_and_evaluate_finds_it_after_a_move(tmp_path, capsys):
    """split.csv in the run folder and the split in the checkpoint; after the data moves,
    evaluate --data-root scores exactly the validation images, and per_image.csv of the
    training folder says which images were validation."""
    data = tmp_path / "project"
    assert main(["generate", "cells", str(data), "--n", "12", "--size", "48x48"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--images", str(data / "scans"), "--masks", str(data / "labels"),
                 *PATTERNS, "--drop-bad-files", "--out-dir", str(run), "--epochs", "1",
                 "--no-time-limit", "--val-fraction", "0.25", *TINY]) == 0
    rows = list(csv.DictReader(open(run / "split.csv")))
    val = sorted(Path(r["image"]).name for r in rows if r["split"] == "val")
    assert len(rows) == 11 and len(val) == 3 and rows[0]["image"].startswith("scans/")
    assert "split: " in capsys.readouterr().out
    moved = tmp_path / "elsewhere" / "project-copy"
    moved.parent.mkdir()
    data.rename(moved)
    assert main(["evaluate", str(run / "best.pt")]) == 1
    err = capsys.readouterr().err
    assert "looked in" in err and "--data-root" in err
    assert main(["evaluate", str(run / "best.pt"), "--data-root", str(moved),
                 "--out-dir", str(tmp_path / "ev")]) == 0
    assert "validation: the 3 pairs" in capsys.readouterr().out
    scored = list(csv.DictReader(open(tmp_path / "ev" / "per_image.csv")))
    assert sorted(r["image"] for r in scored) == val and {r["split"] for r in scored} == {"val"}
    assert main(["evaluate", str(run / "best.pt"), "--images", str(moved / "scans"),
                 "--masks", str(moved / "labels"), *PATTERNS, "--out-dir", str(tmp_path / "all")]) == 0
    scored = list(csv.DictReader(open(tmp_path / "all" / "per_image.csv")))
    assert "split" not in scored[0]  # another folder than the run's: no split to say
    moved.rename(data)
    assert main(["evaluate", str(run / "best.pt"), "--images", str(data / "scans"),
                 "--masks", str(data / "labels"), *PATTERNS, "--out-dir", str(tmp_path / "tr")]) == 0
    scored = {r["image"]: r["split"] for r in csv.DictReader(open(tmp_path / "tr" / "per_image.csv"))}
    assert sorted(k for k, v in scored.items() if v == "val") == val
    assert sum(v == "train" for v in scored.values()) == 8


def test_class_index_masks_read_as_binary_fail_in_a_few_lines_with_the_option(tmp_path, capsys):
    """Street-scene masks holding 0..11 (11 = unlabelled) without --num-classes: one short
    error (not a line per pair), the cause that fits those values, the options, and no
    run folder left behind."""
    rng = np.random.default_rng(0)
    for i in range(30):
        _stand_in(tmp_path / "train", f"{i:03d}.png", rng.integers(0, 255, (16, 16, 3), np.uint8))
        _stand_in(tmp_path / "trainannot", f"{i:03d}.png",
                  rng.integers(0, 12, (16, 16)).astype(np.uint8))
    out = tmp_path / "run"
    assert main(["train", "--images", str(tmp_path / "train"), "--masks",
                 str(tmp_path / "trainannot"), "--out-dir", str(out), *TINY]) == 1
    err = capsys.readouterr().err
    message = err[err.index("segkit train: error"):].strip().splitlines()
    assert len(message) <= 15
    assert "--num-classes 12, or --num-classes 11 --ignore-index 11" in message[1]
    assert "JPEG" not in err and "... and 27 more" in err
    assert not out.exists()


def test_a_multiclass_run_names_its_classes_and_shows_no_raw_warning(tmp_path, capsys):
    """A labelme export (class_names.txt, classes that never appear): evaluate names each
    class; the weights of the absent classes are a one-line note, not a UserWarning with
    a path into the package."""
    export = tmp_path / "export"
    (export / "class_names.txt").parent.mkdir(parents=True)
    (export / "class_names.txt").write_text("_background_\nroad\ncar\ntree\n")
    rng = np.random.default_rng(0)
    for i in range(6):
        _stand_in(export / "JPEGImages", f"img{i}.jpg",
                  rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        index = np.zeros((16, 16), np.uint8)
        index[8:], index[2:5, 2:5] = 1, 2  # no tree anywhere
        mask = Image.fromarray(index, mode="P")
        mask.putpalette(VOC_COLORMAP.flatten().tolist())
        _stand_in(export / "SegmentationClassPNG", f"img{i}.png", np.zeros((1, 1), np.uint8))
        mask.save(export / "SegmentationClassPNG" / f"img{i}.png")
    folders = ["--images", str(export / "JPEGImages"), "--masks",
               str(export / "SegmentationClassPNG")]
    assert main(["train", *folders, "--out-dir", str(tmp_path / "run"), "--epochs", "1",
                 "--no-time-limit", "--val-fraction", "0.34", *TINY]) == 0
    captured = capsys.readouterr()
    assert "Warning" not in captured.err and "segkit/" not in captured.err
    assert "note: classes [3] have no pixels in the masks" in captured.err
    assert main(["evaluate", str(tmp_path / "run" / "best.pt")]) == 0
    text = capsys.readouterr().out
    for line in ("0 _background_", "1 road", "2 car"):
        assert f"    {line} " in text


def _grey_masks(folder: Path, n: int, rng) -> list[Path]:
    """Masks of three grey values (0, 128, 255) in bands, each in every mask."""
    paths = []
    for i in range(n):
        mask = np.zeros((24, 24), np.uint8)
        cut = rng.integers(6, 18)
        mask[cut:], mask[:, :cut // 2] = 128, 255
        paths.append(_stand_in(folder, f"{i:02d}.png", mask))
    return paths


def test_every_remapping_translates_the_models_classes_by_the_masks_themselves(tmp_path):
    """class_translation: --foreground 0 swaps the two classes of a binary model; another
    value map permutes a multiclass model's classes; a reading that splits one of the
    model's classes is refused (the model cannot tell its parts apart); the same reading
    needs no translation."""
    from segkit.errors import DataError
    from segkit.evaluation import class_translation
    from segkit.owndata import mask_spec

    paths = _grey_masks(tmp_path, 3, np.random.default_rng(0))
    three = mask_spec(mask_values="0:0,128:1,255:2")
    assert class_translation(paths, three, mask_spec(mask_values="0:2,128:1,255:0"),
                             3).tolist() == [2, 1, 0]
    assert class_translation(paths, three, three, 3) is None
    binary = [_stand_in(tmp_path / "bin", "a.png", (np.arange(64).reshape(8, 8) % 2 * 255).astype(np.uint8))]
    assert class_translation(binary, mask_spec(), mask_spec(foreground=0), 2).tolist() == [1, 0]
    merged = mask_spec(mask_values="0:0,128:0,255:1")
    with pytest.raises(DataError, match="split what the checkpoint learned as one class: its "
                                        r"class 0 covers pixels they call classes \[0, 1\]"):
        class_translation(paths, merged, three, 2)


def test_evaluate_with_another_value_map_scores_the_same_pixels_as_the_training(tmp_path,
                                                                                capsys):
    """A model trained with --mask-values 0:0,128:1,255:2, scored with the map reversed:
    every class keeps its Dice and IoU under its new index (the prediction is remapped
    with the truth), so mIoU and accuracy are the same."""
    rng = np.random.default_rng(1)
    _grey_masks(tmp_path / "masks", 8, rng)
    for i in range(8):
        _stand_in(tmp_path / "images", f"{i:02d}.png",
                  rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    folders = ["--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    assert main(["train", *folders, "--mask-values", "0:0,128:1,255:2", "--out-dir",
                 str(tmp_path / "run"), "--epochs", "1", "--no-time-limit", *TINY]) == 0
    capsys.readouterr()
    scores = []
    for values in ("0:0,128:1,255:2", "0:2,128:1,255:0"):
        assert main(["evaluate", str(tmp_path / "run" / "best.pt"), *folders, "--mask-values",
                     values, "--out-dir", str(tmp_path / values.replace(":", "_"))]) == 0
        text = capsys.readouterr().out
        rows = re.findall(r"^    class (\d) +(\d\.\d{4})  (\d\.\d{4})$", text, re.M)
        summary = re.findall(r"^  (miou|accuracy) +(\d\.\d{4})$", text, re.M)
        scores.append(({int(c): (d, j) for c, d, j in rows}, summary))
    (same, summary_a), (reversed_, summary_b) = scores
    assert set(same) == {0, 1, 2} and summary_a and summary_a == summary_b
    assert reversed_ == {2 - c: v for c, v in same.items()}


def _broken_folder(root: Path, kind: str) -> list[str]:
    """12 pairs with one kind of problem in every mask (or in the names); the options of
    segkit train that read them."""
    rng = np.random.default_rng(0)
    for i in range(12):
        name = f"{i:02d}.png"
        _stand_in(root / "img", name, rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        if kind == "names":
            _stand_in(root / "lab", f"label_{i}.png", np.zeros((16, 16), np.uint8))
        elif kind == "sizes":
            _stand_in(root / "lab", name, np.zeros((20, 16), np.uint8))
        elif kind == "indices":
            _stand_in(root / "lab", name, rng.integers(0, 12, (16, 16)).astype(np.uint8))
        else:  # colours
            _stand_in(root / "lab", name, rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    extra = ["--num-classes", "5"] if kind == "indices" else []
    return ["--images", str(root / "img"), "--masks", str(root / "lab"), *extra]


@pytest.mark.parametrize("kind, cause", [
    ("names", "12 images have no mask: 00.png, 01.png"),
    ("sizes", "resize the mask with the image (nearest interpolation for the mask)"),
    ("indices", "values 0..11 look like class indices: --num-classes 12, or --num-classes 11 "
                "--ignore-index 11"),
    ("colours", "pass --class-names FILE; hundreds of colours: a JPEG-compressed mask"),
])
def test_every_dataset_error_is_a_few_lines_with_the_cause_that_fits(tmp_path, capsys, kind,
                                                                      cause):
    """Whatever is wrong with the folders: one error of at most 15 lines (a summary, the
    cause that fits what was seen, a few examples and a count of the rest), no line of
    more than a few hundred characters, and no run folder left behind."""
    out = tmp_path / "run"
    argv = ["train", *_broken_folder(tmp_path, kind), "--out-dir", str(out), *TINY]
    assert main(argv) == 1
    err = capsys.readouterr().err
    message = err[err.index("segkit train: error"):].strip().splitlines()
    assert len(message) <= 15 and max(len(line) for line in message) <= 400
    assert cause in " ".join(message)
    assert kind == "names" or message[-1] == "  - ... and 9 more"
    assert not out.exists()


def test_augment_help_says_what_your_own_folders_get(capsys):
    """Own-folder runs augment by default: --augment's help says so, in the words of the
    table it is read from, and names your own folders (not only the built-in sets)."""
    from segkit.recipe import DATASET_DEFAULTS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    entry = text[text.index("--augment, --no-augment"):text.index("--seed SEED", text.index(
        "--augment, --no-augment"))]
    own = "on" if DATASET_DEFAULTS["folder"]["augment"] else "off"
    assert f"folder {own}" in entry and "folder: your own --images/--masks" in entry
    assert TrainConfig(images="x", masks="y").augment is DATASET_DEFAULTS["folder"]["augment"]


def test_a_second_run_into_the_same_folder_keeps_the_first_runs_split(tmp_path, capsys):
    """split.csv is written into the folder the run has claimed: a second run given the
    same --out-dir goes to the next free name and leaves the first run's split.csv,
    checkpoints and history as they were; a run whose data cannot be read claims none."""
    data = tmp_path / "project"
    assert main(["generate", "cells", str(data), "--n", "12", "--size", "48x48"]) == 0
    run = tmp_path / "run"
    argv = ["train", "--images", str(data / "scans"), "--masks", str(data / "labels"),
            *PATTERNS, "--drop-bad-files", "--out-dir", str(run), "--epochs", "1",
            "--no-time-limit", *TINY]
    assert main([*argv, "--val-fraction", "0.25"]) == 0
    first = {name: (run / name).read_bytes() for name in ("split.csv", "last.pt", "history.csv")}
    capsys.readouterr()
    assert main([*argv, "--val-fraction", "0.5", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    second = tmp_path / "run-2"
    assert f"this run writes to {second}" in out
    assert {name: (run / name).read_bytes() for name in first} == first
    assert (second / "split.csv").read_bytes() != first["split.csv"]
    broken = argv[:1] + ["--images", str(tmp_path / "nowhere")] + argv[3:]
    assert main(broken) == 1
    assert not (tmp_path / "run-3").exists()


def _vessels(root: Path, n: int = 10, size: int = 96) -> None:
    """A folder pair of grey images with thin bright lines (vessels) 1-2 pixels wide, and
    0/255 masks of them, by identical names."""
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 60, (size, size), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        for column in rng.integers(4, size - 4, 5):
            mask[:, column:column + rng.integers(1, 3)] = 255
        for row in rng.integers(4, size - 4, 3):
            mask[row, :] = 255
        image[mask > 0] = 200
        _stand_in(root / "images", f"{i:02d}.png", image)
        _stand_in(root / "masks", f"{i:02d}.png", mask)


def test_thin_structures_in_large_images_train_on_crops_at_their_own_scale(tmp_path, capsys):
    """96x96 images of 1-2 pixel vessels with --size 32x32: resized, the vessels would be
    lost, so the run trains on crops and says why, takes 9 crops of each image an epoch,
    records it, and predict and evaluate work at the images' own scale; resumed, it stays
    on crops, and --no-crop there is refused with both values. --no-crop given trains on
    the images resized."""
    data = tmp_path / "vessels"
    _vessels(data)
    base = ["train", "--images", str(data / "images"), "--masks", str(data / "masks"),
            "--epochs", "1", "--no-time-limit", *TINY]
    assert main([*base, "--out-dir", str(tmp_path / "crops")]) == 0
    out = capsys.readouterr().out
    said = re.search(r"crops: resized to 32x32 and back, class 1 \(([\d.]+)% of the labelled "
                     r"pixels\) keeps a Dice of (0\.\d\d), so the images \(96x96 and larger\) "
                     r"train on crops at their own scale \(--no-crop resizes them\)", out)
    assert said and float(said[1]) >= 5 and float(said[2]) < 0.8
    assert "9 random 32x32 crops of each training image" in out
    header = re.search(r"data: folder, (\d+) train images, (\d+) crops of 32x32 \(W x H\) an "
                       r"epoch / (\d+) val images whole", out)
    assert header and int(header[2]) == 9 * int(header[1])
    ckpt = load_checkpoint(tmp_path / "crops" / "last.pt")
    assert ckpt["data"]["crop"] is True and ckpt["train_config"]["crop"] is True
    assert main(["predict", str(tmp_path / "crops" / "best.pt"), str(data / "images"),
                 str(tmp_path / "pred")]) == 0
    predicted = sorted((tmp_path / "pred").iterdir())
    assert len(predicted) >= 10 and all(Image.open(p).size == (96, 96) for p in predicted)
    assert main(["evaluate", str(tmp_path / "crops" / "best.pt"),
                 "--out-dir", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "per_image.csv").is_file()
    capsys.readouterr()
    resume = ["train", "--resume", str(tmp_path / "crops" / "last.pt"), "--epochs", "2",
              "--no-time-limit"]
    assert main(resume) == 0  # no data option given: the run's folders and crops
    out = capsys.readouterr().out
    assert "9 random 32x32 crops" in out and "2 train images" not in out
    assert load_checkpoint(tmp_path / "crops" / "last.pt")["train_config"]["crop"] is True
    assert main([*resume[:3], "--epochs", "3", "--no-time-limit", "--no-crop"]) == 1
    assert "--crop False (the run: True)" in capsys.readouterr().err
    assert main([*base, "--no-crop", "--out-dir", str(tmp_path / "resized")]) == 0
    out = capsys.readouterr().out
    assert "crops" not in out
    assert load_checkpoint(tmp_path / "resized" / "last.pt")["data"]["crop"] is False


def test_labels_that_survive_resizing_or_small_images_train_resized_and_it_is_said(tmp_path):
    """Crops only pay where resizing loses the labels: large blobs resized to --size and
    back keep nearly all of them, and one image under twice --size on a side resizes the
    whole folder (a crop would be most of it). Each line says why and how to crop anyway."""
    from segkit.data import PairedFolderDataset
    from segkit.owndata import choose_crop, resize_round_trip

    blob = np.zeros((128, 128), np.uint8)
    blob[20:100, 30:110] = 255
    for i in range(3):
        _stand_in(tmp_path / "img", f"{i}.png", blob)
        _stand_in(tmp_path / "lab", f"{i}.png", blob)
    ds = PairedFolderDataset(tmp_path / "img", tmp_path / "lab")
    kept, share = resize_round_trip(ds, (32, 32))
    assert set(kept) == {0, 1} and min(kept.values()) > 0.95
    assert share[1] == pytest.approx(80 * 80 / 128 ** 2)
    crop, why = choose_crop(ds, (32, 32))
    assert crop is False and re.fullmatch(
        r"whole images resized to 32x32: resized to 32x32 and back, class 1 \(39\.1% of the "
        r"labelled pixels\) keeps a Dice of 0\.9\d, the least of the classes with 5% of the "
        r"pixels or more \(--crop trains on crops at their own scale\)", why), why
    _stand_in(tmp_path / "img", "3.png", np.zeros((60, 200), np.uint8))
    _stand_in(tmp_path / "lab", "3.png", np.zeros((60, 200), np.uint8))
    crop, why = choose_crop(PairedFolderDataset(tmp_path / "img", tmp_path / "lab"), (32, 32))
    assert crop is False
    assert why == ("whole images resized to 32x32 (the smallest is 128x60, under 2x --size on "
                   "a side; --crop trains on crops at their own scale)")


def test_resize_round_trip_measures_what_resizing_keeps_of_thin_lines(tmp_path):
    from segkit.data import PairedFolderDataset
    from segkit.owndata import resize_round_trip

    _vessels(tmp_path, n=4, size=64)
    ds = PairedFolderDataset(tmp_path / "images", tmp_path / "masks")
    (small, share), (large, _) = resize_round_trip(ds, (16, 16)), resize_round_trip(ds, (64, 64))
    assert large == {0: 1.0, 1: 1.0}  # the masks' own size: nothing lost
    assert small[1] < 0.6 < small[0]   # the lines, 4x smaller and back: most are lost
    assert sum(share.values()) == pytest.approx(1.0) and share[1] < share[0]
