"""Checkpoints: round trip, atomic saves, safe and clear loading."""

import os

import pytest
import torch

from segkit import checkpoint as ck
from segkit.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from segkit.unet import UNet


def small_model():
    torch.manual_seed(0)
    return UNet(in_channels=3, num_classes=1, base=4, depth=2)


def test_round_trip_restores_weights_optimizer_and_metadata(tmp_path):
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(2, 3, 20, 30)
    model(x).mean().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "a.pt", model=model, epoch=3, optimizer=opt,
                           history=[{"epoch": 1.0, "val_dice": 0.5}], metrics={"val_dice": 0.5},
                           data={"size": [64, 96], "mean": [0.5] * 3, "std": [0.2] * 3})
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["metrics"]["val_dice"] == 0.5
    assert ckpt["data"]["size"] == [64, 96]
    again = model_from_checkpoint(ckpt)
    assert not again.training
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    opt2 = torch.optim.Adam(again.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt["optimizer_state"])
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_interrupted_save_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    model = small_model()
    path = save_checkpoint(tmp_path / "last.pt", model=model, epoch=1)
    before = path.read_bytes()

    real_save = torch.save

    def dying_save(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the disk ...
        raise KeyboardInterrupt  # ... then the user presses Ctrl-C

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, epoch=2)
    monkeypatch.setattr(ck.torch, "save", real_save)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_missing_truncated_and_foreign_files_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    path = save_checkpoint(tmp_path / "a.pt", model=small_model(), epoch=1)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a segkit checkpoint"):
        load_checkpoint(tmp_path / "bare.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_loading_refuses_pickled_code_as_unsafe(tmp_path):
    torch.save({"model_state": {}, "model_config": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="unsafe") as info:
        load_checkpoint(tmp_path / "evil.pt")
    text = str(info.value)
    assert "system" in text and "never runs" in text
    assert "weights_only" not in text  # never advise the one setting that would run the code


@pytest.mark.parametrize("content,expected", [
    (b"", "empty"),
    (b"hello, this is a note\n", "text file"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:0a1b\nsize 1234\n", "git lfs pull"),
    (b"<!DOCTYPE html><html><head><title>Drive</title>", "web page"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "neither a zip archive nor a pickle"),
])
def test_files_that_are_not_checkpoints_are_named(tmp_path, content, expected):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(tmp_path / "model.pt")
    assert "model.pt" in str(info.value)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_folders_and_broken_links_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
    (tmp_path / "a.pt").symlink_to(tmp_path / "b.pt")
    (tmp_path / "b.pt").symlink_to(tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="symlink loop"):
        load_checkpoint(tmp_path / "a.pt")
    (tmp_path / "c.pt").symlink_to(tmp_path / "gone.pt")
    with pytest.raises(CheckpointError, match="gone.pt, which does not exist"):
        load_checkpoint(tmp_path / "c.pt")


def _saved(tmp_path, **data):
    model = small_model()  # 3 input channels, 1 class, base 4, depth 2
    save_checkpoint(tmp_path / "m.pt", model=model, epoch=1,
                    data={"image_mode": "RGB", "num_classes": 1, **data})
    return load_checkpoint(tmp_path / "m.pt")


def test_settings_that_disagree_with_the_weights_are_refused_with_both_facts(tmp_path):
    ckpt = _saved(tmp_path, image_mode="L", num_classes=5)
    with pytest.raises(CheckpointError, match="disagrees with itself") as info:
        model_from_checkpoint(ckpt)
    assert "image_mode channels 1 (weights: 3)" in str(info.value)
    assert "data num_classes 5 (weights: 1)" in str(info.value)
    ckpt = _saved(tmp_path)
    ckpt["model_config"]["num_classes"] = 5
    with pytest.raises(CheckpointError, match=r"num_classes 5 \(weights: 1\)"):
        model_from_checkpoint(ckpt)
    ckpt = _saved(tmp_path)
    ckpt["model_config"]["bilinear"] = True  # same shapes at the ends, other layers inside
    with pytest.raises(CheckpointError, match="weights do not fit"):
        model_from_checkpoint(ckpt)
    ckpt = _saved(tmp_path)
    ckpt["model_config"]["width"] = 2
    with pytest.raises(CheckpointError, match="width.*keys segkit knows are in_channels"):
        model_from_checkpoint(ckpt)


def test_resuming_with_another_model_names_both_settings(tmp_path):
    ckpt = _saved(tmp_path)
    with pytest.raises(CheckpointError, match=r"trained with base 4 \(this run: 8\)"):
        ck.check_resume(UNet(3, 1, base=8, depth=2).config, ckpt, "m.pt")
    ck.check_resume(small_model().config, ckpt, "m.pt")  # the same model resumes


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoints_get_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "m.pt", model=small_model(), epoch=1)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_the_next_save_removes_temp_files_of_a_killed_save(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", model=small_model(), epoch=1)
    (tmp_path / ".last.pt.x1y2z3.tmp").write_bytes(b"PK" + bytes(4096))  # left by kill -9
    (tmp_path / ".best.pt.abcdef.tmp").write_bytes(b"PK")  # another checkpoint's: not ours
    (tmp_path / "notes.tmp").write_text("the user's")
    save_checkpoint(path, model=small_model(), epoch=2)
    assert sorted(os.listdir(tmp_path)) == [".best.pt.abcdef.tmp", "last.pt", "notes.tmp"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_names_the_file_and_the_free_space(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", model=small_model(), epoch=1)
    before = path.read_bytes()
    real_save = torch.save

    def save_to_a_full_disk(obj, f, *a, **kw):
        with open("/dev/full", "wb") as full:  # every write fails with ENOSPC
            real_save(obj, full)

    monkeypatch.setattr(ck.torch, "save", save_to_a_full_disk)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(path, model=small_model(), epoch=2)
    text = str(info.value)
    assert str(path) in text and "free in" in text and "previous checkpoint is intact" in text
    assert "inline_container" not in text
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


KILLED_SAVER = """
import sys, torch
from segkit.checkpoint import save_checkpoint
from segkit.unet import UNet
model = UNet(3, 1, base=16, depth=3)
print("ready", flush=True)
epoch = 0
while True:
    epoch += 1
    save_checkpoint(sys.argv[1], model=model, epoch=epoch)
"""


@pytest.mark.skipif(os.name == "nt", reason="kill -9 is POSIX")
def test_kill_9_at_any_point_of_a_save_leaves_a_loadable_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = save_checkpoint(tmp_path / "last.pt", model=small_model(), epoch=0)
    epochs, interrupted = [], []
    for delay in [0.0, 0.01, 0.03, 0.05, 0.08, 0.13, 0.21, 0.34]:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        epochs.append(load_checkpoint(path)["epoch"])  # never a half-written file
        interrupted.append(len(os.listdir(tmp_path)) > 1)  # killed in the middle of a write
    assert max(epochs) > 0 and any(interrupted)  # the kills did hit saves in progress
    save_checkpoint(path, model=small_model(), epoch=99)  # the next save cleans up
    assert os.listdir(tmp_path) == ["last.pt"]


def test_random_number_states_travel_with_the_checkpoint(tmp_path):
    loader = torch.Generator().manual_seed(7)
    path = save_checkpoint(tmp_path / "m.pt", model=UNet(3, 1, base=4, depth=2), epoch=1,
                           rng_state={"torch": torch.get_rng_state(), "loader": loader.get_state()})
    saved = load_checkpoint(path)["rng_state"]  # weights_only=True accepts the uint8 tensors
    assert torch.equal(saved["torch"], torch.get_rng_state())
    expected = torch.rand(3, generator=loader)
    assert torch.equal(torch.rand(3, generator=torch.Generator().set_state(saved["loader"])), expected)
