"""Speed switches on CPU: precision choice, bf16 autocast and channels_last around the
lesson's loop (FastModel), float16's gradient scaling, loader settings, the table's speed
defaults, and the torchrun wrappers of an epoch's two halves."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segkit import distributed, speed
from segkit.cli import build_parser, train_config
from segkit.device import seed_everything
from segkit.recipe import DEFAULTS, TrainConfig
from segkit.training import fit, train_one_epoch, validate
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
    plain = UNet(3, 1, base=4, depth=2)
    model = speed.prepare_model(plain, speed.speed_settings("cpu", "bf16", channels_last=True))
    assert isinstance(model, speed.FastModel) and model.model is plain
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = fit(model, toy_loader(n=16), toy_loader(n=8, seed=1), loss_fn=bce, optimizer=opt,
               epochs=5, device="cpu", log=None)
    assert all(p.dtype == torch.float32 for p in plain.parameters())
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist.last["val_dice"] > 0.8


def test_autocast_really_runs_the_model_in_bf16_and_the_loss_in_float32():
    seen, losses_seen = [], []
    plain = nn.Conv2d(3, 1, 1)
    plain.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model = speed.prepare_model(plain, speed.speed_settings("cpu", "bf16"))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss_fn = lambda logits, masks: (losses_seen.append(logits.dtype), bce(logits, masks))[1]
    loss = train_one_epoch(model, toy_loader(), loss_fn, opt, "cpu")
    assert seen and set(seen) == {torch.bfloat16}
    assert set(losses_seen) == {torch.float32}
    assert isinstance(loss, float)


def test_float32_in_the_default_layout_leaves_the_model_as_it_is():
    plain = UNet(3, 1, base=4, depth=2)
    assert speed.prepare_model(plain, speed.speed_settings("cpu", "fp32")) is plain


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
        losses.append([train_one_epoch(model, toy_loader(), bce, opt, "cpu") for _ in range(2)])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_a_scaled_gradient_is_unscaled_before_the_step():
    """float16's GradScaler (here on the CPU, which has one): FastModel scales the gradient
    that flows back into the model, ScaledOptimizer unscales it and steps, so the weights
    move as without scaling; the loss the loop sees is the plain one."""
    results = []
    for scale in (False, True):
        torch.manual_seed(0)
        settings = speed.speed_settings("cpu", "fp32", channels_last=True)
        if scale:
            settings.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        plain = nn.Conv2d(3, 1, 1)
        model = speed.FastModel(plain, settings)
        seen = []
        plain.weight.register_hook(lambda g: seen.append(g.abs().max().item()))
        opt = speed.prepare_optimizer(torch.optim.SGD(plain.parameters(), lr=0.1), settings)
        assert isinstance(opt, speed.ScaledOptimizer) == scale
        loss = train_one_epoch(model, toy_loader(), bce, opt, "cpu")
        results.append((loss, plain.weight.detach().clone(), max(seen)))
    (loss, weight, grad), (scaled_loss, scaled_weight, scaled_grad) = results
    assert scaled_loss == pytest.approx(loss, rel=1e-6)
    assert torch.allclose(scaled_weight, weight, rtol=1e-5, atol=1e-7)
    assert scaled_grad == pytest.approx(1024 * grad, rel=1e-3)


def test_loader_settings_per_device():
    assert speed.loader_settings("cpu", cpus=2).as_kwargs() == {
        "num_workers": 0, "pin_memory": False, "persistent_workers": False}
    assert speed.loader_settings("cpu", cpus=16).num_workers == 4
    cuda = speed.loader_settings("cuda", cpus=16)
    assert (cuda.num_workers, cuda.pin_memory, cuda.persistent_workers) == (8, True, True)
    assert speed.loader_settings("cuda", num_workers=0, cpus=16).persistent_workers is False


def test_the_table_turns_on_speed_for_the_command_line_and_the_library_alike():
    cli = train_config(build_parser().parse_args(["train"]))
    plain = TrainConfig()
    for cfg in (cli, plain):
        assert (cfg.precision, cfg.channels_last, cfg.cache, cfg.num_workers) == (
            "auto", True, "auto", "auto")
    assert DEFAULTS["precision"] == "auto" and DEFAULTS["channels_last"] is True
    cfg = train_config(build_parser().parse_args(["train", "--no-bf16", "--no-channels-last",
                                                  "--cache", "none"]))
    assert (cfg.precision, cfg.channels_last, cfg.cache) == ("fp32", False, "none")
    # what the lessons ask for, so that their figures hold on any CPU
    lesson = TrainConfig(precision="fp32", channels_last=False, cache="none", num_workers=0)
    assert (lesson.precision, lesson.channels_last, lesson.cache, lesson.num_workers) == (
        "fp32", False, "none", 0)


class OneOfTwo:
    """A DistContext stand-in: rank ``rank`` of 2 processes whose other process trained
    with a loss of 0.5 and whose rank 0 validated with the figures ``main_figures``."""

    def __init__(self, rank, main_figures=None):
        self.rank, self.world_size, self.main_figures = rank, 2, main_figures

    @property
    def is_main(self):
        return self.rank == 0

    def mean_float(self, value):
        return (value + 0.5) / 2

    def from_main(self, value):
        return value if self.is_main else self.main_figures


@pytest.mark.parametrize("classes", [1, 3])
def test_torchrun_wraps_the_epoch_halves_from_outside(classes):
    torch.manual_seed(0)
    model = UNet(3, classes, base=4, depth=2)
    loader = toy_loader(n=10, classes=classes)
    loss_fn = bce if classes == 1 else nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    own = train_one_epoch(model, loader, loss_fn, opt, "cpu")
    shared = distributed.averaged_over_processes(train_one_epoch, OneOfTwo(0))
    assert shared(model, loader, loss_fn, opt, "cpu") == pytest.approx((own + 0.5) / 2)
    plain = validate(model, loader, loss_fn, "cpu")
    on_main = distributed.validated_on_main(validate, OneOfTwo(0))
    assert on_main(model, loader, loss_fn, "cpu") == plain
    elsewhere = distributed.validated_on_main(validate, OneOfTwo(1, main_figures={"dice": 1.0}))
    assert elsewhere(model, [], loss_fn, "cpu") == {"dice": 1.0}  # rank 1 does not validate


def test_unwrap_finds_the_plain_module():
    model = nn.Conv2d(3, 1, 1)

    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert speed.unwrap(Wrapped(model)) is model
    assert speed.unwrap(model) is model


def test_the_carvana_preset_is_what_segkit_train_runs_there():
    parse = lambda *a: train_config(build_parser().parse_args(["train", *a]))
    cfg = parse()
    assert cfg.preset == "carvana"
    assert (cfg.batch_size, cfg.lr, cfg.epochs, cfg.max_seconds) == (4, 1.5e-3, 10, 60.0)
    assert (cfg.depth, cfg.augment) == (3, False)
    assert TrainConfig(preset="carvana") == cfg  # the library runs the same with that name
    assert (parse("--batch-size", "8").batch_size, parse("--epochs", "3").epochs) == (8, 3)
    assert (parse("--depth", "4").depth, parse("--augment").augment) == (4, True)
    table = parse("--preset", "none")
    assert table == TrainConfig() and table.preset is None
    voc, plain = parse("--dataset", "voc"), TrainConfig()
    assert voc.preset is None
    assert (voc.batch_size, voc.lr, voc.epochs) == (plain.batch_size, plain.lr, plain.epochs)
    assert (voc.depth, voc.augment) == (2, False)  # the dataset's own defaults
    rms = parse("--preset", "rmsprop-1e-5")
    assert (rms.batch_size, rms.lr, rms.epochs, rms.optimizer) == (1, 1e-5, plain.epochs, "rmsprop")
    assert (rms.depth, rms.augment) == (4, True)  # the table's settings
    assert rms.precision == "auto"  # the speed switches hold for every run
