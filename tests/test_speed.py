"""Speed switches on CPU: precision choice, bf16 autocast, channels_last, loader settings,
the CLI's defaults, and the reduction of metrics over processes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segkit import speed
from segkit.cli import build_parser, train_config
from segkit.device import seed_everything
from segkit.recipe import TrainConfig
from segkit.training import evaluate, fit, train_one_epoch
from segkit.unet import UNet


def toy_loader(n=12, batch_size=4, size=16, seed=0, classes=1):
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, max(classes, 2), (n, size, size), generator=g)
    images = masks[:, None].float().repeat(1, 3, 1, 1) + 0.1 * torch.randn(n, 3, size, size, generator=g)
    return DataLoader(TensorDataset(images, masks), batch_size=batch_size)


def bce(logits, masks):
    return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], masks.float())


def test_precision_is_resolved_per_device(monkeypatch):
    assert speed.resolve_precision("fp32", "cpu") is None
    assert speed.resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(speed.PrecisionError, match="fp16 needs a CUDA GPU"):
        speed.resolve_precision("fp16", "cpu")
    with pytest.raises(speed.PrecisionError, match="unknown precision"):
        speed.resolve_precision("half", "cpu")
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: False)
    assert speed.resolve_precision("auto", "cpu") is None
    assert "no bfloat16 instructions" in speed.precision_note(None, "cpu")
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: True)
    assert speed.resolve_precision("auto", "cpu") is torch.bfloat16
    assert "--precision fp32" in speed.precision_note(torch.bfloat16, "cpu")


def test_scaler_only_for_fp16_on_cuda():
    assert not speed.make_scaler("cpu", torch.bfloat16).is_enabled()
    assert not speed.make_scaler("cpu", None).is_enabled()


def test_bf16_autocast_trains_with_float32_weights():
    seed_everything(0)
    model = UNet(3, 1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = fit(model, toy_loader(n=16), toy_loader(n=8, seed=1), loss_fn=bce, optimizer=opt,
               epochs=5, device="cpu", log=None, precision="bf16", channels_last=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist.last["val_dice"] > 0.8


def test_autocast_really_runs_the_model_in_bf16():
    seen = []
    model = nn.Conv2d(3, 1, 1)
    model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_one_epoch(model, toy_loader(), bce, opt, "cpu", amp_dtype=torch.bfloat16)
    assert seen and set(seen) == {torch.bfloat16}
    assert isinstance(loss, float)


def test_channels_last_gives_the_same_fp32_step():
    losses = []
    for cl in (False, True):
        torch.manual_seed(0)
        model = speed.prepare_model(UNet(3, 1, base=4, depth=2),
                                    speed.speed_settings("cpu", "fp32", channels_last=cl))
        if cl:
            conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
            assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        losses.append([train_one_epoch(model, toy_loader(), bce, opt, "cpu", channels_last=cl,
                                       show_progress=False) for _ in range(2)])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_loader_settings_per_device():
    assert speed.loader_settings("cpu", cpus=2).as_kwargs() == {
        "num_workers": 0, "pin_memory": False, "persistent_workers": False}
    assert speed.loader_settings("cpu", cpus=16).num_workers == 4
    cuda = speed.loader_settings("cuda", cpus=16)
    assert (cuda.num_workers, cuda.pin_memory, cuda.persistent_workers) == (8, True, True)
    assert speed.loader_settings("cuda", num_workers=0, cpus=16).persistent_workers is False


def test_cli_turns_on_speed_but_the_library_defaults_stay():
    args = build_parser().parse_args(["train"])
    cfg = train_config(args)
    assert (cfg.precision, cfg.channels_last, cfg.cache, cfg.num_workers) == (
        "auto", True, "auto", "auto")
    plain = TrainConfig()  # what the lessons' stored outputs were made with
    assert (plain.precision, plain.channels_last, plain.cache, plain.num_workers) == (
        None, False, "none", 0)
    cfg = train_config(build_parser().parse_args(["train", "--no-bf16", "--no-channels-last",
                                                  "--cache", "none"]))
    assert (cfg.precision, cfg.channels_last, cfg.cache) == ("fp32", False, "none")


class OneProcess:
    """A DistContext stand-in for a world of one: every reduction returns its input."""

    def sum_floats(self, *values):
        return tuple(float(v) for v in values)

    def any(self, flag):
        return bool(flag)

    def max_float(self, value):
        return float(value)

    def sum_tensor(self, tensor):
        return tensor


@pytest.mark.parametrize("classes", [1, 3])
def test_reduced_metrics_equal_the_plain_ones(classes):
    torch.manual_seed(0)
    model = UNet(3, classes, base=4, depth=2)
    loader = toy_loader(n=10, classes=classes)
    loss_fn = bce if classes == 1 else nn.CrossEntropyLoss()
    plain = evaluate(model, loader, loss_fn, "cpu")
    reduced = evaluate(model, loader, loss_fn, "cpu", dist=OneProcess())
    assert reduced.keys() == plain.keys()
    for k in plain:
        assert reduced[k] == pytest.approx(plain[k], rel=1e-5), k


def test_unwrap_finds_the_plain_module():
    model = nn.Conv2d(3, 1, 1)

    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert speed.unwrap(Wrapped(model)) is model
    assert speed.unwrap(model) is model


def test_cli_schedule_defaults_only_for_carvana_without_a_preset():
    parse = lambda *a: train_config(build_parser().parse_args(["train", *a]))
    cfg = parse()
    assert (cfg.batch_size, cfg.lr, cfg.epochs, cfg.max_seconds) == (4, 1.5e-3, 10, 60.0)
    assert (cfg.depth, cfg.augment) == (3, False)
    assert (parse("--batch-size", "8").batch_size, parse("--epochs", "3").epochs) == (8, 3)
    assert (parse("--depth", "4").depth, parse("--augment").augment) == (4, True)
    voc, plain = parse("--dataset", "voc"), TrainConfig()
    assert (voc.batch_size, voc.lr, voc.epochs) == (plain.batch_size, plain.lr, plain.epochs)
    assert (voc.depth, voc.augment) == (2, False)  # the dataset's own defaults
    rms = parse("--preset", "rmsprop-1e-5")
    assert (rms.batch_size, rms.lr, rms.epochs, rms.optimizer) == (1, 1e-5, plain.epochs, "rmsprop")
    assert (rms.depth, rms.augment) == (4, True)  # the library's settings
    assert rms.precision == "auto"  # the speed switches hold for every run
