"""The training recipe's settings (one table of defaults, presets, validation of names) and
a learning run."""

import dataclasses
import json

import pytest
import torch

from segkit.budget import BudgetCosineLR
from segkit.recipe import (
    DATASET_DEFAULTS,
    DEFAULTS,
    PRESETS,
    TrainConfig,
    build_optimizer,
    build_scheduler,
    run_training,
)


def test_rmsprop_preset_is_the_student_projects_settings():
    cfg = TrainConfig(preset="rmsprop-1e-5")
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (
        "rmsprop", 1e-5, 0.999, 1e-8, 1)
    opt = build_optimizer(cfg, [torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.param_groups[0]["momentum"] == 0.999
    assert set(PRESETS) == {"carvana", "rmsprop-1e-5"}


def test_one_table_fills_every_setting_not_given():
    """A field left out takes its preset's value, else its dataset's, else the table's."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in [*DEFAULTS, *DATASET_DEFAULTS["carvana"]]:
        assert name in fields, name
        if name != "max_seconds":  # None means "no limit" there: its default is the table's
            assert fields[name].default is None, name
    for values in PRESETS.values():  # a preset changes only what the table holds
        assert set(values) <= set(DEFAULTS) | set(DATASET_DEFAULTS["carvana"])
        assert "max_seconds" not in values
    cfg = TrainConfig()
    assert {k: getattr(cfg, k) for k in DEFAULTS} == DEFAULTS
    assert cfg.preset is None and cfg.out_dir == "runs/carvana"
    assert TrainConfig(dataset="seasky").out_dir == "runs/seasky"


def test_a_setting_given_wins_over_the_preset():
    cfg = TrainConfig(preset="carvana", epochs=5, batch_size=8)
    assert (cfg.epochs, cfg.batch_size, cfg.depth, cfg.lr) == (5, 8, 3, 1.5e-3)
    assert TrainConfig(preset="carvana", augment=True).augment is True
    assert TrainConfig(max_seconds=None).max_seconds is None  # no time limit
    assert TrainConfig(clip_grad=0).clip_grad == 0  # no clipping


@pytest.mark.parametrize("field,value,match", [
    ("preset", "fast", "unknown preset"),
    ("dataset", "cityscapes", "unknown dataset"),
])
def test_unknown_names_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(TrainConfig(optimizer="lion"), [torch.nn.Parameter(torch.zeros(1))])


def test_dataset_defaults_fill_only_what_is_left_out():
    voc = TrainConfig(dataset="voc")
    assert (voc.size, voc.depth, voc.augment) == ((64, 64), 2, False)
    carvana = TrainConfig()
    assert (carvana.size, carvana.depth, carvana.augment) == ((64, 96), 4, True)
    mine = TrainConfig(dataset="voc", size=(32, 32), depth=3, augment=True)
    assert (mine.size, mine.depth, mine.augment) == ((32, 32), 3, True)


def test_cosine_anneals_over_the_time_budget_when_there_is_one():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    budget = build_scheduler(TrainConfig(max_seconds=60, epochs=40), opt)
    assert isinstance(budget, BudgetCosineLR) and budget.max_seconds == 60 and budget.epochs == 40
    by_epoch = build_scheduler(TrainConfig(max_seconds=None, epochs=40), opt)
    assert isinstance(by_epoch, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert by_epoch.T_max == 40
    assert build_scheduler(TrainConfig(scheduler="none"), opt) is None


def test_short_run_on_embedded_seasky_learns(tmp_path):
    """End to end on the committed toy data: a few epochs beat the untrained model."""
    cfg = TrainConfig(dataset="seasky", size=(32, 48), base=8, depth=3, epochs=3, max_seconds=None,
                      batch_size=16, out_dir=str(tmp_path), device="cpu", preset="carvana")
    lines = []
    result = run_training(cfg, log=lines.append, show_progress=False)
    dice = result.history["val_dice"]
    assert len(dice) == 3
    assert dice[-1] > 0.8, dice
    assert any("best val dice" in line for line in lines)
    assert (tmp_path / "predictions.png").stat().st_size > 1000
    # the preset is printed at the start and written with the settings
    assert "preset: carvana (batch_size 4, lr 0.0015, epochs 10, depth 3, augment False)" \
        in lines
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["preset"] == "carvana" and saved["epochs"] == 3 and saved["depth"] == 3


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, monkeypatch):
    """Resume from epoch 2 of a 4-epoch run: the same weights as the run itself (CPU).

    Augmentation and shuffling draw random numbers every epoch; the checkpoint carries
    their states, so the resumed epochs 3-4 see what the uninterrupted ones saw.
    """
    import shutil

    import segkit.recipe

    save = segkit.recipe.save_checkpoint

    def save_and_keep_epoch_2(path, **kwargs):
        written = save(path, **kwargs)
        if kwargs["epoch"] == 2 and written.name == "last.pt":
            shutil.copy(written, tmp_path / "epoch2.pt")  # as if the run had stopped here
        return written

    monkeypatch.setattr(segkit.recipe, "save_checkpoint", save_and_keep_epoch_2)
    common = dict(dataset="seasky", size=(32, 48), base=4, depth=2, batch_size=16, epochs=4,
                  max_seconds=None, device="cpu", seed=3, precision="fp32", cache="none")
    whole = run_training(TrainConfig(out_dir=str(tmp_path / "whole"), **common),
                         log=lambda _: None, show_progress=False)
    torch.manual_seed(12345)  # whatever happened in between must not matter
    resumed = run_training(TrainConfig(out_dir=str(tmp_path / "resumed"),
                                       resume=str(tmp_path / "epoch2.pt"), **common),
                           log=lambda _: None, show_progress=False)
    assert resumed.history["epoch"] == [1.0, 2.0, 3.0, 4.0]
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.history["val_loss"] == whole.history["val_loss"]


def test_auto_loss_weights_classes_by_one_over_sqrt_frequency_and_voc_by_one_over_frequency():
    """Own folders with several classes train with 1/sqrt(frequency) class weights (on
    street scenes they kept the common classes that 1/frequency crushed); toy VOC keeps
    1/frequency, which measured better there. Median-frequency weights are 1/frequency
    weights times a constant."""
    from segkit.losses import class_weights_from_frequencies
    from segkit.recipe import TrainConfig, build_loss

    masks = [(None, torch.tensor([[0] * 8 + [1] * 2 + [2] * 6] * 4))]
    counts = torch.tensor([32.0, 8.0, 24.0])
    own = build_loss(TrainConfig(images="i", masks="m"), masks, 3)
    assert torch.allclose(own.weight, class_weights_from_frequencies(counts, 3,
                                                                     method="inverse_sqrt"))
    voc = build_loss(TrainConfig(dataset="voc"), masks, 3)
    inverse = class_weights_from_frequencies(counts, 3, method="inverse")
    assert torch.allclose(voc.weight, inverse)
    assert own.weight[1] / own.weight[0] == pytest.approx(2.0)  # sqrt(32 / 8)
    median = build_loss(TrainConfig(images="i", masks="m", loss="median_ce"), masks, 3).weight
    assert torch.allclose(median / median.sum(), inverse / inverse.sum())


def test_crop_is_refused_for_the_built_in_datasets_and_checked_for_own_folders():
    from segkit.recipe import TrainConfig

    with pytest.raises(ValueError, match="--crop trains your own folders .* carvana is resized"):
        TrainConfig(crop=True)
    with pytest.raises(ValueError, match="crop must be True, False or 'auto', got 'yes'"):
        TrainConfig(images="i", masks="m", crop="yes")
    assert TrainConfig(images="i", masks="m").crop == "auto"
    assert TrainConfig(images="i", masks="m", crop=True).crop is True
