"""Checks of lesson 03 (training): ``average_loss``, ``train_one_epoch``, ``validate``.

==========================  ================================================================
check                       mistakes it names (``CheckFailed.mistake``)
==========================  ================================================================
``check_average_loss``      ``loss-mean-over-batches`` (the batch means averaged, so an
                            uneven last batch counts as much as a full one),
                            ``loss-not-averaged`` (the sum, never divided; the sea/sky
                            project),
                            ``loss-tensor-accumulator``, ``loss-wrong-average``
``check_train_one_epoch``   ``loss-tensor-accumulator`` (a tensor returned, or tensors kept
                            during the epoch: every batch's graph stays alive; the
                            sea/sky project),
                            ``train-in-eval-mode`` (no ``model.train()``),
                            ``no-backward``, ``no-optimizer-step`` (the weights never change),
                            ``step-before-backward``,
                            ``zero-grad-after-backward``, ``no-zero-grad`` (gradients add up
                            from batch to batch), ``step-not-every-batch``,
                            ``loader-dataset-len``, ``loss-mean-over-batches``,
                            ``loss-not-averaged``, ``loss-wrong-average``, ``returns-none``,
                            ``loss-fn-not-called``
``check_validate``          ``validate-returns-dict``, ``loss-tensor-accumulator``,
                            ``dice-not-float``, ``validate-train-mode`` (BatchNorm then uses
                            the batch's statistics and updates its running ones),
                            ``validate-grad-enabled`` (no ``torch.no_grad()``),
                            ``validate-changes-weights``, ``loss-mean-over-batches``,
                            ``loss-not-averaged``, ``loss-wrong-average``,
                            ``dice-mean-over-batches``, ``dice-wrong``, ``loss-fn-not-called``
==========================  ================================================================

How the checks look inside a loop they cannot read (no magic, just spies):

- **the data**: 10 small samples in batches of 4, 4 and 2 (an uneven last batch, so a mean
  over batches and a mean over samples differ). The batches come from a plain iterable that
  has ``len()`` but no ``.dataset``: the loop must count the samples it sees.
- **the model**: conv -> BatchNorm -> ReLU -> 1x1 conv, one logit per pixel. A forward
  pre-hook records ``model.training`` and ``torch.is_grad_enabled()`` at every call.
- **the loss function**: segkit's ``BCEDiceLoss``, recording each batch's loss value and
  batch size (so the check knows the right average whatever the weights did), the logits
  (for the expected Dice), and whether ``backward`` went through the loss. Each loss is
  tagged with a small marker object held by its autograd graph: if the marker of an older
  batch is still alive when a new batch starts, the loop is keeping old graphs (a tensor
  accumulator such as ``total += loss``).
- **the optimizer**: an SGD that counts its steps, looks at the gradients it is asked to
  apply, and after each step leaves a large "stale" gradient (1e4) in every ``.grad``.
  A loop that calls ``zero_grad()`` every batch never sees it; one that forgets finds it
  added to the next batch's gradients. It also notes a step taken before the batch's
  ``backward`` (the spy loss counts the backward passes).

Every check builds its own model and data inside ``torch.random.fork_rng``: the notebook's
objects and random numbers are left as they were. The check prints nothing but its ✅ line.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from segkit.checks.core import check, expect, expect_type, fail, show
from segkit.losses import BCEDiceLoss
from segkit.metrics import dice_per_image

__all__ = ["check_average_loss", "check_train_one_epoch", "check_validate",
           "reference_average_loss"]

#: batch sizes of the checks' data: an uneven last batch
BATCH_SIZES = (4, 4, 2)
STALE_GRAD = 1e4
_TOL = 1e-5


def reference_average_loss(batch_losses: Sequence[float], batch_sizes: Sequence[int]) -> float:
    """The mean loss per sample of an epoch, from each batch's mean loss and its size.

    Every batch loss is the mean over that batch, so batch i stands for
    ``batch_losses[i] * batch_sizes[i]`` summed sample losses.
    """
    total = sum(float(loss) * int(n) for loss, n in zip(batch_losses, batch_sizes))
    return total / sum(int(n) for n in batch_sizes)


# --------------------------------------------------------------------------- the spies


class _Batches:
    """An iterable of (images, masks) batches with ``len()`` (the number of batches) but
    without ``.dataset``, like ``itertools.islice`` of a loader would not have it."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, masks in self._batches:
            yield images.clone(), masks.clone()

    def __len__(self) -> int:
        return len(self._batches)

    def __repr__(self) -> str:
        return f"a loader of {len(self)} batches"


def _data(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of 4, 4 and 2 samples: images (n, 3, 8, 8) float32, masks (n, 8, 8) int64.

    The first 8 masks follow the images' first channel; the last 2 are all object, so the
    last batch's loss and Dice differ from the others'.
    """
    g = torch.Generator().manual_seed(seed)
    n = sum(BATCH_SIZES)
    images = torch.randn(n, 3, 8, 8, generator=g)
    masks = (images[:, 0] + 0.3 * torch.randn(n, 8, 8, generator=g) > 0).long()
    masks[-BATCH_SIZES[-1]:] = 1
    batches, start = [], 0
    for size in BATCH_SIZES:
        batches.append((images[start:start + size], masks[start:start + size]))
        start += size
    return batches


class _TinyNet(nn.Sequential):
    """conv -> BatchNorm -> ReLU -> 1x1 conv: (N, 3, H, W) -> (N, 1, H, W) logits.

    ``calls`` lists ``(model.training, torch.is_grad_enabled())`` of every forward pass.
    """

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 1, 1))
        self.calls: list[tuple[bool, bool]] = []
        self.register_forward_pre_hook(_record_mode)

    @property
    def bn(self) -> nn.BatchNorm2d:
        return self[1]


def _record_mode(module: _TinyNet, args: Any) -> None:
    module.calls.append((module.training, torch.is_grad_enabled()))


def _tiny_model(*, running_stats: bool = False) -> _TinyNet:
    model = _TinyNet()
    if running_stats:  # BatchNorm statistics far from any batch's, as after some training
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(2.0, 4.0)
    return model


class _Marker:
    """Lives exactly as long as the autograd graph of one batch's loss."""

    def __init__(self, spy: _SpyLoss) -> None:
        self.spy = spy


class _Tag(torch.autograd.Function):
    """The identity on a loss, whose graph node holds a marker (and reports backward)."""

    @staticmethod
    def forward(ctx: Any, loss: torch.Tensor, marker: _Marker) -> torch.Tensor:
        ctx.marker = marker
        return loss.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ctx.marker.spy.backward_calls += 1
        return grad, None


class _SpyLoss:
    """segkit's BCEDiceLoss that records what the loop does with it (see the module doc)."""

    def __init__(self) -> None:
        self.loss_fn = BCEDiceLoss()
        self.values: list[float] = []
        self.sizes: list[int] = []
        self.logits: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        self.graphs: list[weakref.ref] = []
        self.kept_graphs = 0
        self.backward_calls = 0

    def __call__(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        # When batch k's loss is computed, the graphs of batches k-2 and before must be gone:
        # the loop's `loss` and `logits` now belong to batch k-1 at most.
        self.kept_graphs = max(self.kept_graphs,
                               sum(ref() is not None for ref in self.graphs[:-1]))
        loss = self.loss_fn(logits, masks)
        self.values.append(float(loss.detach()))
        self.sizes.append(int(logits.shape[0]))
        self.logits.append(logits.detach().clone())
        self.masks.append(torch.as_tensor(masks).detach().clone())
        marker = _Marker(self)
        self.graphs.append(weakref.ref(marker))
        return _Tag.apply(loss, marker)

    def __repr__(self) -> str:
        return "BCEDiceLoss()"

    # the averages a loop could have computed from what it saw
    def per_sample(self) -> float:
        return reference_average_loss(self.values, self.sizes)

    def per_batch(self) -> float:
        return sum(self.values) / len(self.values)

    def sums(self) -> list[float]:
        return [sum(self.values), sum(v * n for v, n in zip(self.values, self.sizes))]


class _SpySGD(torch.optim.SGD):
    """SGD (lr 0.05) that watches the gradients it applies (see the module doc)."""

    def __init__(self, params: Any, loss_fn: _SpyLoss | None = None) -> None:
        super().__init__(params, lr=0.05)
        self.loss_fn = loss_fn
        self.steps = 0
        self.early_steps = 0   # step() before the batch's loss and loss.backward()
        self.empty_steps = 0   # every gradient None or zero: zero_grad() after backward()
        self.stale_steps = 0   # the stale gradient left by the last step was still there

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        params = self._params()
        spy = self.loss_fn
        if spy is not None and (spy.backward_calls < len(spy.values)  # before its backward
                                or len(spy.values) <= self.steps):     # before its loss
            self.early_steps += 1
        grads = [p.grad for p in params if p.grad is not None]
        if not grads or not any(bool(g.any()) for g in grads):
            self.empty_steps += 1
        elif any(float(g.abs().max()) > STALE_GRAD / 2 for g in grads):
            self.stale_steps += 1
            for p in params:  # take the stale part out again, so training stays sane
                if p.grad is not None:
                    p.grad -= STALE_GRAD
        result = super().step(closure)
        self.steps += 1
        for p in params:
            p.grad = torch.full_like(p, STALE_GRAD)
        return result

    def __repr__(self) -> str:
        return "SGD(lr=0.05)"


def _center_logits(model: _TinyNet, loader: _Batches) -> None:
    """Shift the last bias so that about half of the pixels are predicted as object
    (eval mode): the Dice values then lie well inside (0, 1)."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(images) for images, _ in loader])
        model[3].bias -= logits.median()
    model.calls.clear()


def _call(fn: Callable[..., Any], name: str, *args: Any) -> Any:
    """Call the student's function; an AttributeError about ``.dataset`` gets its own hint."""
    try:
        return fn(*args)
    except AttributeError as exc:
        if "dataset" not in str(exc):
            raise
        fail(f"{name} used `loader.dataset`, but the check's loader has none: `{exc}`.",
             mistake="loader-dataset-len")


# --------------------------------------------------------------------------- averages

_AVERAGE_HINT = ("each batch loss is the mean over that batch, so multiply it by the batch size "
                 "(the real one: the last batch may be smaller), add these up, and divide by "
                 "the number of samples.")


def _expect_sample_mean(value: float, spy: _SpyLoss, name: str) -> None:
    """``value`` must be the mean loss per sample of what ``spy`` saw."""
    __tracebackhide__ = True
    want = spy.per_sample()
    if abs(value - want) <= _TOL:
        return
    sizes = ", ".join(str(n) for n in spy.sizes)
    if abs(value - spy.per_batch()) <= _TOL:
        fail(f"{name} is {show(value)}, the mean of the {len(spy.sizes)} batch losses; the "
             f"batches had {sizes} samples, and the mean loss per sample is {show(want)}.",
             mistake="loss-mean-over-batches")
    if any(abs(value - s) <= _TOL for s in spy.sums()):
        fail(f"{name} is {show(value)}, a sum over the batches, not an average "
             f"(expected {show(want)}).",
             mistake="loss-not-averaged")
    fail(f"{name} is {show(value)}; the batches had {sizes} samples and the mean loss per "
         f"sample is {show(want)}.", mistake="loss-wrong-average")


def _expect_float_loss(value: Any, name: str) -> None:
    __tracebackhide__ = True
    if isinstance(value, torch.Tensor):
        graph = " It still carries its autograd graph (`grad_fn`)." \
            if value.grad_fn is not None else ""
        fail(f"{name} is a tensor, {show(value)}, not a Python float.{graph}",
             mistake="loss-tensor-accumulator")
    if value is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="end the function with `return total / n` (the mean loss per sample).")
    expect_type(value, (float, int), name=name, mistake="loss-wrong-average",
                hint="return the mean loss per sample as a Python float.")


# --------------------------------------------------------------------------- average_loss


@check("average_loss", "average_loss with an uneven last batch")
def check_average_loss(average_loss: Callable[[Sequence[float], Sequence[int]], float]):
    """``average_loss(batch_losses, batch_sizes)``: the mean loss per sample."""
    losses, sizes = [0.5, 0.4, 0.1], [4, 4, 2]
    value = average_loss(list(losses), list(sizes))
    name = f"average_loss({losses}, {sizes})"
    if isinstance(value, torch.Tensor):
        fail(f"{name} is a tensor, {show(value)}.", mistake="loss-tensor-accumulator",
             hint="return a Python float: add up Python numbers (use `float(...)`).")
    expect_type(value, (float, int), name=name, mistake="loss-wrong-average",
                hint="return one Python float: " + _AVERAGE_HINT)
    want = reference_average_loss(losses, sizes)  # 0.38
    if abs(value - want) > 1e-9:
        if abs(value - sum(losses) / len(losses)) <= 1e-9:
            fail(f"{name} is {show(value)}, the mean of the three batch losses; the mean "
                 f"loss per sample is {show(want)}.", mistake="loss-mean-over-batches",
                 hint="the last batch has 2 samples, not 4: weight each batch loss by its "
                      "batch size, then divide by the number of samples (10), not by the "
                      "number of batches (3).")
        if any(abs(value - s) <= 1e-9 for s in (sum(losses), 3.8)):
            fail(f"{name} is {show(value)}, a sum, not an average (expected {show(want)}).",
                 mistake="loss-not-averaged",
                 hint="divide the weighted sum by the number of samples, "
                      "`sum(batch_sizes)`.")
        fail(f"{name} is {show(value)}, expected {show(want)}.",
             mistake="loss-wrong-average")
    same = average_loss([0.2, 0.4], [8, 8])
    expect(isinstance(same, (float, int)) and abs(same - 0.3) <= 1e-9,
           f"average_loss([0.2, 0.4], [8, 8]) is {show(same)}, expected 0.3",
           mistake="loss-wrong-average")
    return "batches of 4, 4 and 2"


# --------------------------------------------------------------------------- train_one_epoch


@check("train_one_epoch", "train_one_epoch on a small model", fixed_rng=True)
def check_train_one_epoch(train_one_epoch: Callable[..., float]):
    """``train_one_epoch(model, loader, loss_fn, optimizer, device) -> float``."""
    model = _tiny_model()
    model.eval()  # as validate() leaves it: train_one_epoch must switch to train mode
    before = copy.deepcopy(model.state_dict())
    loss_fn = _SpyLoss()
    optimizer = _SpySGD(model.parameters(), loss_fn)
    loader = _Batches(_data(seed=3))
    name = "train_one_epoch(...)"
    value = _call(train_one_epoch, "train_one_epoch", model, loader, loss_fn, optimizer,
                  "cpu")
    n_batches = len(BATCH_SIZES)

    expect(len(loss_fn.values) > 0, "loss_fn was never called: no batch was trained on.",
           mistake="loss-fn-not-called")
    _expect_float_loss(value, name)
    expect(loss_fn.kept_graphs == 0,
           f"{name} returned a float, but while it ran, the autograd graphs of earlier "
           f"batches stayed alive ({loss_fn.kept_graphs} of them when the last batch "
           "started).",
           mistake="loss-tensor-accumulator",
           hint="something keeps the loss tensors: `total += loss` (even with `.item()` at "
                "the very end) or a list of `loss` tensors. Each one holds its batch's "
                "graph, so memory grows batch after batch. Accumulate `loss.item()` instead.")
    if any(not training for training, _ in model.calls):
        fail("the model was in eval mode while training (the check handed it over in eval "
             "mode, as validate() leaves it).", mistake="train-in-eval-mode")
    expect(loss_fn.backward_calls > 0,
           f"loss.backward() was never called, so no gradient was computed "
           f"({optimizer.steps} optimizer steps had nothing to apply).",
           mistake="no-backward")
    expect(optimizer.steps > 0,
           "optimizer.step() was never called: the weights did not change.",
           mistake="no-optimizer-step")
    expect(optimizer.early_steps == 0,
           f"at {optimizer.early_steps} of {optimizer.steps} steps optimizer.step() ran "
           "before that batch's loss.backward(): each step applied no gradient or the "
           "previous batch's.",
           mistake="step-before-backward")
    expect(optimizer.empty_steps == 0,
           f"at {optimizer.empty_steps} of {optimizer.steps} steps every gradient was "
           "None or zero: the step changed nothing.",
           mistake="zero-grad-after-backward")
    expect(optimizer.stale_steps == 0,
           f"at {optimizer.stale_steps} of {optimizer.steps} steps the gradients still "
           "held those of an earlier batch.",
           mistake="no-zero-grad")
    expect(optimizer.steps == n_batches,
           f"optimizer.step() was called {optimizer.steps} times for {n_batches} batches.",
           mistake="step-not-every-batch")
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items()
                  if k in before and v.is_floating_point())
    expect(changed, "the weights did not change.", mistake="no-optimizer-step",
           hint="call `optimizer.step()` after `loss.backward()`, inside the loop.")
    _expect_sample_mean(float(value), loss_fn, name)
    return f"{n_batches} batches of {', '.join(map(str, BATCH_SIZES))} samples"


# --------------------------------------------------------------------------- validate


@check("validate", "validate on a small model", fixed_rng=True)
def check_validate(validate: Callable[..., dict[str, float]]):
    """``validate(model, loader, loss_fn, device) -> {"loss": float, "dice": float}``."""
    model = _tiny_model(running_stats=True)
    loader = _Batches(_data(seed=5))
    _center_logits(model, loader)
    model.train()  # as train_one_epoch leaves it: validate must switch to eval mode
    before = copy.deepcopy(model.state_dict())
    loss_fn = _SpyLoss()
    result = _call(validate, "validate", model, loader, loss_fn, "cpu")

    expect(len(loss_fn.values) > 0, "loss_fn was never called.",
           mistake="loss-fn-not-called",
           hint="compute `loss_fn(logits, masks)` for every batch of the loader.")
    if not isinstance(result, dict) or not {"loss", "dice"} <= set(result):
        keys = f" with keys {sorted(map(str, result))}" if isinstance(result, dict) else ""
        fail(f"validate(...) returned {show(result)}{keys}.",
             mistake="validate-returns-dict")
    _expect_float_loss(result["loss"], 'validate(...)["loss"]')
    dice = result["dice"]
    if isinstance(dice, torch.Tensor) or not isinstance(dice, (float, int)) \
            or isinstance(dice, bool):
        fail(f'validate(...)["dice"] is {show(dice)}, not a Python float.',
             mistake="dice-not-float")
    stats_moved = not (torch.equal(before["1.running_mean"], model.bn.running_mean)
                       and torch.equal(before["1.running_var"], model.bn.running_var))
    if any(training for training, _ in model.calls) or stats_moved:
        fail("the model ran in train mode during validation: BatchNorm normalised each "
             "batch with the batch's own statistics and updated its running statistics "
             "with validation data.", mistake="validate-train-mode")
    if any(grad for _, grad in model.calls):
        fail("gradients were enabled during validation: every forward pass built an "
             "autograd graph.", mistake="validate-grad-enabled")
    weights_changed = any(not torch.equal(before[k], v)
                          for k, v in model.state_dict().items())
    expect(not weights_changed, "validate changed the model's weights.",
           mistake="validate-changes-weights")
    _expect_sample_mean(float(result["loss"]), loss_fn, 'validate(...)["loss"]')

    per_image = [dice_per_image((lg[:, 0] > 0).long(), m)
                 for lg, m in zip(loss_fn.logits, loss_fn.masks)]
    want = float(torch.cat(per_image).mean())
    if abs(float(dice) - want) > 1e-4:
        by_batch = sum(float(d.mean()) for d in per_image) / len(per_image)
        if abs(float(dice) - by_batch) <= 1e-4:
            fail(f'validate(...)["dice"] is {show(float(dice))}, the mean of the batches\' '
                 f"Dice; the mean over the {sum(loss_fn.sizes)} images is {show(want)}.",
                 mistake="dice-mean-over-batches")
        fail(f'validate(...)["dice"] is {show(float(dice))}, expected {show(want)} (the '
             "mean over images of each image's Dice).", mistake="dice-wrong")
    return f"{len(BATCH_SIZES)} batches of {', '.join(map(str, BATCH_SIZES))} samples"
