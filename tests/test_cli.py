"""The command line as a user types it: help, generate, a short train, evaluate, predict, resume."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.checkpoint import load_checkpoint
from segkit.cli import build_parser, main, train_config

SUBCOMMANDS = ["generate", "train", "evaluate", "predict", "fetch", "build-lessons", "run-course", "grade", "verify"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "segkit", *args], capture_output=True, text=True)


def test_help_for_every_subcommand(capsys):
    top = run_cli("--help")  # `python -m segkit` itself, as a user starts it
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        with pytest.raises(SystemExit) as done:  # in-process: one Python start, not eleven
            main([name, "--help"])
        assert done.value.code == 0
        assert "usage: segkit " + name in capsys.readouterr().out


def test_bad_size_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--size", "ninety"])
    assert "width x height" in capsys.readouterr().err


TINY = ["--size", "48x32", "--base", "4", "--depth", "3", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short end-to-end run on a freshly generated toy Carvana (2 epochs)."""
    tmp = tmp_path_factory.mktemp("cli")
    data_root = tmp / "carvana"
    assert main(["generate", "carvana", str(data_root), "--n", "40"]) == 0
    out = tmp / "run"
    assert main(["train", "--data-root", str(data_root), "--out-dir", str(out), "--epochs", "2",
                 "--no-time-limit", *TINY]) == 0
    return data_root, out


@pytest.mark.parametrize("argv,expected", [
    (["train"], {"dataset": "carvana", "size": (64, 96), "depth": 3, "augment": False,
                 "out_dir": "runs/carvana", "max_seconds": 60.0}),
    (["train", "--preset", "rmsprop-1e-5"], {"depth": 4, "augment": True}),
    (["train", "--dataset", "seasky"], {"depth": 4, "augment": True}),
    (["train", "--dataset", "voc"], {"size": (64, 64), "depth": 2, "augment": False,
                                     "out_dir": "runs/voc"}),
    (["train", "--dataset", "voc", "--augment", "--depth", "3", "--size", "96x64"],
     {"size": (64, 96), "depth": 3, "augment": True}),
    (["train", "--no-augment", "--no-time-limit"], {"augment": False, "max_seconds": None}),
])
def test_train_options_and_dataset_defaults(argv, expected):
    cfg = train_config(build_parser().parse_args(argv))
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_train_writes_checkpoints_history_and_figure(trained, capsys):
    data_root, out = trained
    for name in ["last.pt", "best.pt", "history.csv", "predictions.png", "config.json"]:
        assert (out / name).is_file(), name
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 2
    assert ckpt["model_config"]["base"] == 4
    assert ckpt["data"]["size"] == [32, 48]
    assert 0.0 <= ckpt["metrics"]["val_dice"] <= 1.0
    assert len(open(out / "history.csv").read().splitlines()) == 3  # header + 2 epochs


def test_resume_continues_the_run(trained, capsys):
    data_root, out = trained
    assert main(["train", "--data-root", str(data_root), "--out-dir", str(out), "--epochs", "3",
                 "--no-time-limit", "--resume", str(out / "last.pt"), *TINY]) == 0
    text = capsys.readouterr().out
    assert "resuming from" in text and "epoch  3/3" in text
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 3 and len(ckpt["history"]) == 3


def test_resume_keeps_the_checkpoints_model_over_the_command_lines_defaults(trained, tmp_path):
    """A depth-4 run resumed without --depth stays depth 4 (the command line's carvana
    recipe says depth 3 only for new runs)."""
    data_root, _ = trained
    deep = [("4" if a == "3" and TINY[i - 1] == "--depth" else a) for i, a in enumerate(TINY)]
    out = tmp_path / "deep"
    assert main(["train", "--data-root", str(data_root), "--out-dir", str(out), "--epochs", "1",
                 "--no-time-limit", *deep]) == 0
    assert main(["train", "--epochs", "2", "--no-time-limit", "--resume",
                 str(out / "last.pt"), "--device", "cpu"]) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["model_config"]["depth"], ckpt["model_config"]["base"]) == (2, 4, 4)


def test_a_second_run_never_overwrites_the_first(trained, tmp_path, capsys):
    """Training twice into one folder keeps the first run byte for byte and puts the second
    in folder-2; resuming without --out-dir continues in the checkpoint's own folder."""
    data_root, _ = trained
    first = tmp_path / "run"
    argv = ["train", "--data-root", str(data_root), "--out-dir", str(first), "--epochs", "1",
            "--no-time-limit", *TINY]
    assert main(argv) == 0
    kept = {p.name: p.read_bytes() for p in first.iterdir()}
    assert main(argv) == 0
    assert (f"{first} holds earlier results (last.pt, best.pt, history.csv), which are kept; "
            f"this run writes to {first}-2") in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in first.iterdir()} == kept
    second = tmp_path / "run-2"
    assert (second / "last.pt").is_file()

    assert main(["train", "--data-root", str(data_root), "--epochs", "2", "--no-time-limit",
                 "--resume", str(second / "last.pt"), *TINY]) == 0
    assert load_checkpoint(second / "last.pt")["epoch"] == 2
    assert {p.name: p.read_bytes() for p in first.iterdir()} == kept
    assert not (tmp_path / "run-3").exists()


def test_a_diverging_run_writes_no_nan_and_says_which_checkpoint_is_left(trained, tmp_path,
                                                                         capsys):
    data_root, _ = trained
    out = tmp_path / "diverged"
    code = main(["train", "--data-root", str(data_root), "--out-dir", str(out), "--lr", "1e6",
                 "--epochs", "4", "--no-time-limit", *TINY])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "training diverged" in err and "Nothing non-finite was saved" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    for name in ("last.pt", "best.pt"):
        if (out / name).exists():
            state = load_checkpoint(out / name)["model_state"]
            assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    if (out / "last.pt").exists():
        assert f"the last finite checkpoint is {out / 'last.pt'}" in err
    else:
        assert "no checkpoint was written" in err


def test_evaluate_prints_metrics(trained, capsys):
    _, out = trained
    assert main(["evaluate", str(out / "best.pt"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "dice" in text and "accuracy" in text


def test_predict_any_size_writes_viewable_masks(trained, tmp_path):
    _, out = trained
    inputs = tmp_path / "photos"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"a.jpg": (101, 75), "b.png": (240, 160)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(inputs / name)
    (inputs / "notes.txt").write_text("not an image")
    preds = tmp_path / "preds"
    assert main(["predict", str(out / "best.pt"), str(inputs), str(preds), "--tta", "--device", "cpu"]) == 0
    mask = Image.open(preds / "a_mask.png")
    assert mask.size == (101, 75) and mask.mode == "L"
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert Image.open(preds / "b_overlay.png").size == (240, 160)
    assert not (preds / "notes_mask.png").exists()


def test_predict_errors_name_the_problem(trained, tmp_path, capsys):
    _, out = trained
    assert main(["predict", str(out / "best.pt"), str(tmp_path / "missing"), str(tmp_path / "o")]) == 1
    assert "input folder not found" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.pt"), str(tmp_path), str(tmp_path / "o")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def _photos(folder, names=("a.jpg", "b.png")):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_predict_never_overwrites_or_mixes_files(trained, tmp_path, capsys):
    """A non-empty output folder, the input folder itself, a folder inside it and a
    dataset's masks folder are all refused, and every file the user had is unchanged."""
    data_root, out = trained
    ckpt = str(out / "best.pt")
    photos = _photos(tmp_path / "photos")
    old = tmp_path / "old_preds"
    old.mkdir()
    (old / "a_mask.png").write_bytes(b"my earlier mask")
    (old / "notes.txt").write_text("keep me")
    before = {**_snapshot(tmp_path), **_snapshot(data_root)}

    cases = {
        str(old): "already holds 2 file(s)",
        str(photos): "is the input folder",
        str(photos / "preds"): "is inside the input folder",
        str(data_root / "train_masks"): "is inside the dataset",
        str(data_root / "train"): "is inside the dataset",
    }
    for target, message in cases.items():
        assert main(["predict", ckpt, str(photos), target, "--device", "cpu"]) == 1, target
        err = capsys.readouterr().err
        assert message in err and target in err, err
    # a dataset's masks stay out of reach even when asked to overwrite
    assert main(["predict", ckpt, str(photos), str(data_root / "train_masks"), "--overwrite",
                 "--device", "cpu"]) == 1
    assert {**_snapshot(tmp_path), **_snapshot(data_root)} == before

    # asked to, it replaces only its own file names and leaves the rest alone
    assert main(["predict", ckpt, str(photos), str(old), "--overwrite", "--device", "cpu"]) == 0
    assert (old / "notes.txt").read_text() == "keep me"
    assert (old / "a_mask.png").read_bytes() != b"my earlier mask"
    assert sorted(p.name for p in old.iterdir()) == [
        "a_mask.png", "a_overlay.png", "b_mask.png", "b_overlay.png", "notes.txt"]
    # a new folder next to a dataset's data folders is fine
    assert main(["predict", ckpt, str(photos), str(data_root / "predicted"),
                 "--device", "cpu"]) == 0


def test_predict_skips_an_unreadable_image_and_says_so(trained, tmp_path, capsys):
    _, out = trained
    photos = _photos(tmp_path / "photos")
    (photos / "broken.png").write_text("version https://git-lfs.github.com/spec/v1\n")
    preds = tmp_path / "preds"
    assert main(["predict", str(out / "best.pt"), str(photos), str(preds),
                 "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "wrote 2 masks" in captured.out
    assert "skipped 1 image(s) that could not be read" in captured.err
    assert str(photos / "broken.png") in captured.err
    assert sorted(p.name for p in preds.glob("*_mask.png")) == ["a_mask.png", "b_mask.png"]

    strict = tmp_path / "strict"
    assert main(["predict", str(out / "best.pt"), str(photos), str(strict), "--strict",
                 "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "cannot read image" in err and "broken.png" in err


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    assert main(["generate", "seasky", str(tmp_path / "s"), "--n", "4"]) == 0
    assert main(["generate", "seasky", str(tmp_path / "s"), "--n", "4"]) == 1
    assert "overwrite" in capsys.readouterr().err


def test_sizes_are_typed_w_x_h_and_held_as_h_w(tmp_path):
    """The command line's WxH is flipped at its edge, once: generate writes images that
    wide and that tall, and train holds (H, W) like the rest of segkit."""
    assert main(["generate", "seasky", str(tmp_path / "s"), "--n", "2", "--size", "48x32"]) == 0
    image = Image.open(next((tmp_path / "s" / "images").glob("*.png")))
    assert image.size == (48, 32)  # PIL says (W, H)
    cfg = train_config(build_parser().parse_args(["train", "--size", "48x32"]))
    assert cfg.size == (32, 48)
