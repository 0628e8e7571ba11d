"""The training loop of lesson 03 (loss averaging, eval mode, fit's records and stops), and
what a run wraps around it: a NaN stop, gradient clipping, the time budget, resume."""

import math
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segkit.budget import BudgetCosineLR, TimeBudget
from segkit.device import pick_device, seed_everything
from segkit.progress import progress_disabled
from segkit.recipe import EpochBatches, FiniteLoss, NonFiniteLossError
from segkit.training import History, clip_gradients, fit, format_epoch, train_one_epoch, validate
from segkit.unet import UNet


def toy_loader(n=10, batch_size=4, size=16, seed=0):
    """Images whose first channel *is* the mask (+ noise): learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    masks = (torch.rand(n, size, size, generator=g) > 0.5).long()
    images = masks[:, None].float().repeat(1, 3, 1, 1) + 0.1 * torch.randn(n, 3, size, size, generator=g)
    return DataLoader(TensorDataset(images, masks), batch_size=batch_size, shuffle=False)


def bce(logits, masks):
    return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], masks.float())


class MaskEcho(nn.Module):
    """A 'model' whose logits are +/-10 from the first input channel; one dummy parameter."""

    def __init__(self, flip=False):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.flip = flip

    def forward(self, x):
        logits = (x[:, :1] > 0.5).float() * 20 - 10
        return (-logits if self.flip else logits) * self.w


def test_epoch_loss_is_mean_over_samples_with_uneven_last_batch():
    torch.manual_seed(0)
    loader = toy_loader(n=10, batch_size=4)  # batches of 4, 4, 2
    model = nn.Conv2d(3, 1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights never change
    loss_fn = nn.BCEWithLogitsLoss()
    wrap = lambda logits, masks: loss_fn(logits[:, 0], masks.float())
    got = train_one_epoch(model, loader, wrap, opt, "cpu")
    assert isinstance(got, float)  # a Python float, not a tensor holding a graph
    images = torch.cat([b[0] for b in loader])
    masks = torch.cat([b[1] for b in loader])
    with torch.no_grad():
        expected = wrap(model(images), masks).item()  # mean over all pixels of all samples
    assert got == pytest.approx(expected, rel=1e-5)
    # the mean of the three batch means would weigh the last 2 samples double: not equal
    with torch.no_grad():
        batch_means = [wrap(model(x), y).item() for x, y in loader]
    assert abs(sum(batch_means) / 3 - expected) > 1e-6


def test_train_one_epoch_is_the_lessons_answer_in_length():
    """Lesson 03's answer is about 15 lines: segkit's version stays that short (its
    options wrap it from outside, see segkit.recipe)."""
    import inspect

    assert len(inspect.getsource(train_one_epoch).splitlines()) <= 25
    assert list(inspect.signature(train_one_epoch).parameters) == [
        "model", "loader", "loss_fn", "optimizer", "device"]


def test_an_empty_loader_is_an_error_not_a_division_by_zero():
    model = nn.Conv2d(3, 1, 1)
    with pytest.raises(ValueError, match="no batches"):
        train_one_epoch(model, [], bce, torch.optim.SGD(model.parameters(), lr=0.1), "cpu")
    with pytest.raises(ValueError, match="validation split"):
        validate(model, [], bce, "cpu")


def test_validate_is_eval_mode_no_grad_and_restores_mode():
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    model.train()
    seen = {}

    def spy(module, inputs, output):
        seen["training"] = module.training
        seen["grad"] = torch.is_grad_enabled()

    model.register_forward_hook(spy)
    validate(model, toy_loader(), bce, "cpu")
    assert seen == {"training": False, "grad": False}
    assert model.training  # restored


def test_validate_perfect_and_inverted_models():
    loader = toy_loader()
    good = validate(MaskEcho(), loader, None, "cpu")
    assert good["dice"] == pytest.approx(1.0)
    assert good["accuracy"] == pytest.approx(1.0)
    assert good["iou"] == pytest.approx(1.0)
    bad = validate(MaskEcho(flip=True), loader, None, "cpu")
    assert bad["dice"] == pytest.approx(0.0)
    assert bad["accuracy"] == pytest.approx(0.0)


def test_nan_loss_stops_with_advice():
    model = MaskEcho()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    nan_loss = lambda logits, masks: (logits * float("nan")).mean()
    with pytest.raises(NonFiniteLossError, match="learning rate 0.1.*10x lower"):
        train_one_epoch(model, toy_loader(), FiniteLoss(nan_loss, opt), opt, "cpu")
    assert train_one_epoch(model, toy_loader(), FiniteLoss(bce, opt), opt, "cpu") < 1


def test_clip_gradients_limits_every_steps_gradient_norm():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    huge = lambda logits, masks: 1e4 * bce(logits, masks)
    norms = []
    opt.register_step_post_hook(lambda o, a, k: norms.append(float(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))))
    handle = clip_gradients(opt, 0.5)
    train_one_epoch(model, toy_loader(), huge, opt, "cpu")
    assert norms and max(norms) == pytest.approx(0.5, rel=1e-4)
    handle.remove()
    norms.clear()
    train_one_epoch(model, toy_loader(), huge, opt, "cpu")
    assert min(norms) > 10  # without the hook: the huge gradients themselves
    assert clip_gradients(opt, None) is None


def test_fit_learns_and_records_history():
    seed_everything(0)
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    lines = []
    hist = fit(model, toy_loader(n=16), toy_loader(n=8, seed=1), loss_fn=bce, optimizer=opt,
               epochs=6, device="cpu", log=lines.append)
    assert len(hist) == 6 and len(lines) == 6
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist.last["val_dice"] > 0.8
    assert set(hist.last) >= {"epoch", "train_loss", "val_loss", "val_dice", "val_accuracy", "lr", "seconds", "elapsed"}
    assert "val Dice" in lines[0] and "train loss" in lines[0]
    assert hist.best("val_dice")["val_dice"] == max(hist["val_dice"])


def test_a_time_budget_stops_fit_mid_epoch_and_between_epochs():
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    slow = lambda l, m: (time.sleep(0.05), bce(l, m))[1]
    hist = History()
    budget = TimeBudget(0.3, hist)
    batches = EpochBatches(toy_loader(n=40, batch_size=2), hist, budget)
    hist = fit(model, batches, toy_loader(n=4), loss_fn=slow, optimizer=opt, epochs=100,
               device="cpu", history=hist, on_epoch_end=lambda e, h: budget.spent(), log=None,
               show_progress=False)
    elapsed = hist["elapsed"]
    assert len(hist) == 1  # 20 batches of 50 ms are more than 0.3 s: the first epoch is cut
    # it used its budget and stopped after the first epoch that reached it (however slow
    # the machine: no bound on the time itself)
    assert elapsed[-1] >= 0.3 and all(e < 0.3 for e in elapsed[:-1])


def test_on_epoch_end_returning_true_stops_fit():
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seen = []
    hist = fit(model, toy_loader(), toy_loader(), loss_fn=bce, optimizer=opt, epochs=5,
               device="cpu", on_epoch_end=lambda e, h: seen.append(e) or e == 2, log=None)
    assert seen == [1, 2] and hist["epoch"] == [1.0, 2.0]


def test_fit_resume_continues_epoch_numbering():
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hist = fit(model, toy_loader(), toy_loader(), loss_fn=bce, optimizer=opt, epochs=2, device="cpu", log=None)
    again = History.from_list(hist.to_list())
    hist2 = fit(model, toy_loader(), toy_loader(), loss_fn=bce, optimizer=opt, epochs=4, device="cpu",
                history=again, start_epoch=2, log=None)
    assert hist2["epoch"] == [1.0, 2.0, 3.0, 4.0]
    assert hist2.records[3]["elapsed"] > hist2.records[1]["elapsed"]


def test_format_epoch_line():
    line = format_epoch({"epoch": 3, "train_loss": 0.25, "val_loss": 0.2, "val_dice": 0.95,
                         "val_accuracy": 0.98, "seconds": 4.12}, 20)
    assert line == "epoch  3/20  train loss 0.2500  val loss 0.2000  val Dice 0.9500  val acc 0.9800  4.1 s"


def test_history_best_without_values_is_clear():
    with pytest.raises(KeyError, match="val_dice"):
        History().best("val_dice")


def test_pick_device(monkeypatch):
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="available: "):
            pick_device("cuda")
    monkeypatch.setenv("SEGKIT_DEVICE", "cpu")
    assert pick_device().type == "cpu"


def test_seeding_repeats_runs():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_progress_quiet_in_ci(monkeypatch):
    monkeypatch.delenv("SEGKIT_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert progress_disabled()
    monkeypatch.setenv("SEGKIT_PROGRESS", "1")
    assert not progress_disabled()


# --------------------------------------------------------------------------- BudgetCosineLR


def _sgd(lr=0.1):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def _epoch(opt, sched, elapsed):
    """One epoch as fit runs it: optimizer steps (no gradients here: no change), then the schedule."""
    opt.step()
    sched.step(elapsed)


def test_budget_cosine_follows_the_share_of_the_time_budget():
    opt = _sgd()
    sched = BudgetCosineLR(opt, max_seconds=60, epochs=100, min_lr=0.001)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    _epoch(opt, sched, 15.0)   # a quarter of the budget
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001 + 0.099 * (1 + math.cos(math.pi / 4)) / 2)
    _epoch(opt, sched, 30.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001 + 0.099 / 2)
    _epoch(opt, sched, 61.0)   # past the budget: the floor, not beyond it
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_budget_cosine_ends_with_the_last_epoch_on_a_fast_machine():
    opt = _sgd()
    sched = BudgetCosineLR(opt, max_seconds=60, epochs=4)
    lrs = []
    for epoch in range(1, 5):
        _epoch(opt, sched, epoch * 1.0)   # 1 s per epoch: the epochs run out long before the time
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in (1, 2, 3)])
    assert lrs[3] == pytest.approx(0.0, abs=1e-12)


def test_budget_cosine_state_survives_a_checkpoint():
    opt = _sgd()
    sched = BudgetCosineLR(opt, max_seconds=10, epochs=50)
    _epoch(opt, sched, 5.0)
    opt2 = _sgd()
    opt2.load_state_dict(opt.state_dict())
    resumed = BudgetCosineLR(opt2, max_seconds=10, epochs=50)
    resumed.load_state_dict(sched.state_dict())
    _epoch(opt, sched, 7.5)
    _epoch(opt2, resumed, 7.5)
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert resumed.progress == pytest.approx(0.75)


def test_budget_cosine_rejects_an_empty_budget():
    with pytest.raises(ValueError, match="max_seconds"):
        BudgetCosineLR(_sgd(), max_seconds=0, epochs=10)


def test_fit_steps_the_budget_schedule_with_the_training_seconds():
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = History()
    budget = TimeBudget(0.4, hist)
    sched = BudgetCosineLR(opt, max_seconds=0.4, epochs=1000, clock=budget.used)
    assert "clock" not in sched.state_dict()  # a checkpoint holds plain data only
    slow = lambda l, m: (time.sleep(0.05), bce(l, m))[1]
    batches = EpochBatches(toy_loader(n=8, batch_size=2), hist, budget)
    hist = fit(model, batches, toy_loader(n=4), loss_fn=slow, optimizer=opt, epochs=1000,
               device="cpu", scheduler=sched, history=hist,
               on_epoch_end=lambda e, h: budget.spent(), log=None)
    # each epoch's lr is the one it trained with: falling, and the run ends at the floor
    assert hist["lr"][0] == pytest.approx(1e-2)
    assert all(a > b for a, b in zip(hist["lr"], hist["lr"][1:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_fit_iterates_its_loaders_as_every_stored_figure_was_made():
    """fit puts a progress bar (tqdm.auto) around each loader, and such a bar starts one
    iterator of a DataLoader when it is made, which draws a seed from the loader's
    generator: the batches of a shuffled loader depend on it. The lessons' stored figures
    were made this way, bar on or off (segkit.progress)."""
    seen = {}
    for bars in (True, False):
        order = []

        def remember(model, loader, loss_fn, optimizer, device, order=order):
            order.extend(int(x[0, 0, 0, 0] * 1e4) for x, _ in loader)
            return 0.0

        g = torch.Generator().manual_seed(0)
        images = torch.rand(12, 3, 4, 4, generator=torch.Generator().manual_seed(1))
        loader = DataLoader(TensorDataset(images, torch.zeros(12, 4, 4, dtype=torch.long)),
                            batch_size=1, shuffle=True, generator=g)
        fit(nn.Conv2d(3, 1, 1), loader, toy_loader(n=2), loss_fn=bce,
            optimizer=torch.optim.SGD(nn.Conv2d(3, 1, 1).parameters(), lr=0.1), epochs=1,
            device="cpu", log=None, show_progress=bars, train_epoch=remember)
        seen[bars] = order
    assert seen[True] == seen[False]
    bare = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(images), batch_size=1, shuffle=True, generator=bare)
    assert [int(x[0, 0, 0, 0] * 1e4) for (x,) in loader] != seen[True]
