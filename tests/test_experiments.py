"""segkit.experiments: grids of short runs are repeatable, rows and summaries are right."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from segkit import experiments as ex
from segkit.recipe import TrainConfig
from segkit.unet import UNet

TINY = TrainConfig(size=(32, 48), base=4, depth=2, epochs=2, batch_size=8, optimizer="adam",
                   lr=3e-3, scheduler="none", max_seconds=None, device="cpu")


@pytest.fixture(scope="module")
def data():
    return ex.load_data(TINY, limit=16, val_limit=8)


def test_load_data_gives_normalised_tensors_of_the_split(data):
    images, masks = data.train.tensors
    assert images.shape == (16, 3, 32, 48) and images.dtype == torch.float32
    assert masks.shape == (16, 32, 48) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {0, 1}
    assert len(data.val) == 8 and data.in_channels == 3
    assert abs(images.mean().item()) < 0.5  # normalised with the training statistics
    assert "16 train / 8 val images" in repr(data)


def test_load_data_refuses_multiclass():
    with pytest.raises(ValueError, match="binary"):
        ex.load_data(dataclasses.replace(TINY, dataset="voc"))


def test_run_one_is_repeatable_and_fills_the_row(data):
    lines = []
    first = ex.run_one(TINY, data, log=lines.append)
    again = ex.run_one(TINY, data)
    other_seed = ex.run_one(dataclasses.replace(TINY, seed=1), data)
    assert first["val_dice"] == again["val_dice"]
    assert first["history"]["val_loss"] == again["history"]["val_loss"]
    assert first["history"]["val_loss"] != other_seed["history"]["val_loss"]
    assert first["epochs_run"] == 2 and len(lines) == 2 and "val Dice" in lines[0]
    assert first["params"] == sum(p.numel() for p in UNet(3, 1, base=4, depth=2).parameters())
    assert 0.0 <= first["val_dice"] <= 1.0 and first["best_val_dice"] >= first["val_dice"]
    assert first["stopped_early"] is False and first["lr"] == 3e-3 and first["seed"] == 0


def test_run_one_stops_early_and_steps_a_plateau_scheduler(data):
    cfg = dataclasses.replace(TINY, epochs=6, lr=0.5, scheduler="plateau")
    stopper = ex.EarlyStopping(patience=1, mode="max", min_delta=1.0)  # nothing improves
    row = ex.run_one(cfg, data, early_stopping=stopper)
    assert row["epochs_run"] == 2 and row["stopped_early"] is True
    assert stopper.best_epoch == 1
    lrs = ex.run_one(dataclasses.replace(cfg, lr=1e-2, epochs=4), data)["history"]["lr"]
    assert lrs[0] == 1e-2 and all(b <= a for a, b in zip(lrs, lrs[1:]))
    halving = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa
    row = ex.run_one(dataclasses.replace(cfg, epochs=3), data, make_scheduler=halving)
    assert row["history"]["lr"] == [0.5, 0.25, 0.125]


def test_run_grid_runs_every_setting_and_seed(data):
    lines = []
    rows = ex.run_grid(dataclasses.replace(TINY, epochs=1), {"lr": [1e-3, 1e-2]}, data,
                       seeds=(0, 1), log=lines.append)
    assert [(r["lr"], r["seed"]) for r in rows] == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    assert lines[0].startswith("lr 0.001, seed 0: val Dice ")
    with pytest.raises(ValueError, match="not TrainConfig fields"):
        ex.run_grid(TINY, {"learning_rate": [1e-3]}, data)


def test_summarize_gives_mean_sample_std_and_nan_for_one_run():
    rows = [{"lr": 0.1, "bs": 8, "val_dice": 0.8}, {"lr": 0.01, "bs": 8, "val_dice": 0.5},
            {"lr": 0.1, "bs": 8, "val_dice": 0.9}, {"lr": 0.1, "bs": 8, "val_dice": 0.85}]
    summary = ex.summarize(rows, "lr")
    assert [s["lr"] for s in summary] == [0.1, 0.01]
    assert summary[0]["mean"] == pytest.approx(0.85) and summary[0]["n"] == 3
    assert summary[0]["std"] == pytest.approx(0.05)  # sample std (n - 1)
    assert math.isnan(summary[1]["std"]) and summary[1]["n"] == 1
    both = ex.summarize(rows, ("lr", "bs"), key="val_dice")
    assert set(both[0]) == {"lr", "bs", "mean", "std", "n"}


def test_format_table_aligns_rounds_and_hides_the_history():
    table = ex.format_table([{"lr": 1e-4, "mean": 0.123456, "std": math.nan, "n": 1,
                              "params": 1941105, "history": [1, 2]}])
    head, rule, line = table.splitlines()
    assert head.split() == ["lr", "mean", "std", "n", "params"]
    assert line.split() == ["0.0001", "0.1235", "n/a", "1", "1,941,105"]
    assert len(head) == len(rule) == len(line)
    assert ex.format_table([]) == "(no rows)"


def test_log_spaced_includes_both_ends():
    assert ex.log_spaced(1e-4, 1e-1, 4) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert ex.log_spaced(1e-3, 1e-1, 5) == [0.001, 0.00316, 0.01, 0.0316, 0.1]
    with pytest.raises(ValueError):
        ex.log_spaced(0.0, 1.0, 3)


def test_early_stopping_counts_bad_epochs_against_the_best():
    stopper = ex.EarlyStopping(patience=2, mode="max")
    assert [stopper.step(d) for d in [0.5, 0.6, 0.55, 0.58]] == [False, False, False, True]
    assert (stopper.best, stopper.best_epoch, stopper.bad_epochs) == (0.6, 2, 2)
    loss = ex.EarlyStopping(patience=1, mode="min", min_delta=0.01)
    assert [loss.step(v) for v in [1.0, 0.5, 0.495]] == [False, False, True]
    with pytest.raises(ValueError, match="mode"):
        ex.EarlyStopping(mode="loss")


def test_seconds_per_image_is_a_positive_number_measured_in_eval_mode():
    model = UNet(3, 1, base=4, depth=2)
    seconds = ex.seconds_per_image(model, torch.zeros(2, 3, 32, 48), repeats=2)
    assert isinstance(seconds, float) and seconds > 0 and not model.training
