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


def test_loading_refuses_pickled_code(tmp_path):
    torch.save({"model_state": {}, "model_config": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could not load"):
        load_checkpoint(tmp_path / "evil.pt")


def test_random_number_states_travel_with_the_checkpoint(tmp_path):
    loader = torch.Generator().manual_seed(7)
    path = save_checkpoint(tmp_path / "m.pt", model=UNet(3, 1, base=4, depth=2), epoch=1,
                           rng_state={"torch": torch.get_rng_state(), "loader": loader.get_state()})
    saved = load_checkpoint(path)["rng_state"]  # weights_only=True accepts the uint8 tensors
    assert torch.equal(saved["torch"], torch.get_rng_state())
    expected = torch.rand(3, generator=loader)
    assert torch.equal(torch.rand(3, generator=torch.Generator().set_state(saved["loader"])), expected)
