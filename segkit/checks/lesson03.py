"""Checks of lesson 03 (training): ``average_loss``, ``train_one_epoch``, ``validate``.

==========================  ================================================================
check                       mistakes it names (``CheckFailed.mistake``)
==========================  ================================================================
``check_average_loss``      ``loss-mean-over-batches`` (the batch means averaged, so an
                            uneven last batch counts as much as a full one),
                            ``loss-not-averaged`` (the sum, never divided; the sea/sky
                            project), ``integer-division`` (``//``),
                            ``loss-tensor-accumulator``
``check_train_one_epoch``   ``loss-tensor-accumulator`` (a tensor returned, or tensors kept
                            during the epoch: every batch's graph stays alive; the
                            sea/sky project),
                            ``train-in-eval-mode`` (no ``model.train()``),
                            ``batch-not-moved`` (the batches never moved to ``device``),
                            ``no-backward``, ``no-optimizer-step`` (the weights never change),
                            ``step-before-backward``,
                            ``zero-grad-after-backward``, ``no-zero-grad`` (gradients add up
                            from batch to batch), ``step-not-every-batch``,
                            ``loader-dataset-len``, ``loss-mean-over-batches``,
                            ``loss-not-averaged``, ``integer-division``, ``returns-none``,
                            ``loss-fn-not-called``
``check_validate``          ``validate-returns-dict``, ``loss-tensor-accumulator``,
                            ``dice-not-float``, ``validate-train-mode`` (BatchNorm then uses
                            the batch's statistics and updates its running ones),
                            ``validate-grad-enabled`` (no ``torch.no_grad()``),
                            ``validate-changes-weights``, ``batch-not-moved``,
                            ``loss-mean-over-batches``, ``loss-not-averaged``,
                            ``dice-mean-over-batches``, ``loss-fn-not-called``
==========================  ================================================================

The cases are drawn fresh each run: the number of batches, their sizes (the last one
smaller), the image size, the model's weights. The judge runs segkit's own loop
(``segkit.training``) on the same model and batches and compares: the final weights of
``train_one_epoch``, the loss and Dice of ``validate``. Where they differ, spies tell why
(no magic, plain objects that record what the loop does with them):

- **the data**: a plain iterable that has ``len()`` but no ``.dataset``: the loop must
  count the samples it sees. Its tensors are :class:`~segkit.checks.standin.HostTensor` s,
  batches that know whether ``.to(device)`` moved them; ``device`` is the accelerator when
  there is one, else the CPU standing in for it.
- **the model**: conv -> BatchNorm -> ReLU -> 1x1 conv, one logit per pixel. A forward
  pre-hook records ``model.training``, ``torch.is_grad_enabled()`` and whether the batch
  was moved, at every call.
- **the loss function**: segkit's ``BCEDiceLoss``, recording each batch's loss value and
  size, and whether ``backward`` went through the loss. Each loss is tagged with a small
  marker object held by its autograd graph: if the marker of an older batch is still alive
  when a new batch starts, the loop keeps old graphs (``total += loss``).
- **the optimizer**: an SGD that counts its steps, looks at the gradients it is asked to
  apply, and after each step leaves a large "stale" gradient (1e4) in every ``.grad``.
  A loop that calls ``zero_grad()`` every batch never sees it; one that forgets finds it
  added to the next batch's gradients. It also notes a step taken before the batch's
  ``backward``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from segkit import training
from segkit.checks import core, values
from segkit.checks.core import GENERAL_HINT, Check, explained_by, fail, judge_each, judging
from segkit.checks.standin import check_device, host, moved, unmoved
from segkit.losses import BCEDiceLoss

__all__ = ["check_average_loss", "check_train_one_epoch", "check_validate",
           "reference_average_loss"]

STALE_GRAD = 1e4
LR = 0.05
_TOL = 1e-5


def reference_average_loss(batch_losses: Sequence[float], batch_sizes: Sequence[int]) -> float:
    """The mean loss per sample of an epoch, from each batch's mean loss and its size.

    Every batch loss is the mean over that batch, so batch i stands for
    ``batch_losses[i] * batch_sizes[i]`` summed sample losses.
    """
    total = sum(float(loss) * int(n) for loss, n in zip(batch_losses, batch_sizes))
    return total / sum(int(n) for n in batch_sizes)


def _average_forms(losses: Sequence[float], sizes: Sequence[int]) -> dict[str, list[float]]:
    """What the catalogued averaging mistakes give for these batch losses and sizes."""
    total = sum(v * n for v, n in zip(losses, sizes))
    return {
        "loss-mean-over-batches": [sum(losses) / len(losses)],
        "loss-not-averaged": [sum(losses), total],
        "integer-division": [float(total // sum(sizes)), math.floor(total) / sum(sizes)],
    }


def _expect_average(value: float, losses: list[float], sizes: list[int], name: str,
                    forms: list[dict[str, list[float]]] | None = None,
                    got: list[float] | None = None, hints: dict[str, str] | None = None) -> None:
    """``value`` must be the mean loss per sample; if not, which mistake gives it?"""
    want = reference_average_loss(losses, sizes)
    if abs(value - want) <= _TOL:
        return
    shown = ", ".join(str(n) for n in sizes)
    mistake = explained_by(got or [value], forms or [_average_forms(losses, sizes)],
                           abs_tol=_TOL)
    hint = (hints or {}).get(mistake) if mistake else GENERAL_HINT
    fail(f"{name} is {value:.6g}; the {len(sizes)} batches had {shown} samples and the mean "
         f"loss per sample is {want:.6g}", mistake=mistake, hint=hint)


# --------------------------------------------------------------------------- average_loss


def _draw_average(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example ([0.5, 0.4, 0.1] for batches of 4, 4, 2), batches of drawn
    sizes with a smaller last one, and batches all of one size."""
    cases = [{"losses": [0.5, 0.4, 0.1], "sizes": [4, 4, 2], "drawn": False}]
    size, k = int(rng.integers(3, 9)), int(rng.integers(3, 7))
    sizes = [size] * (k - 1) + [int(rng.integers(1, size))]
    cases.append({"losses": [round(float(v), 4) for v in rng.uniform(0.05, 2.0, k)],
                  "sizes": sizes, "drawn": True})
    k = int(rng.integers(2, 5))
    cases.append({"losses": [round(float(v), 4) for v in rng.uniform(0.05, 2.0, k)],
                  "sizes": [int(rng.integers(2, 9))] * k, "drawn": True})
    return {"cases": cases}


def _ask_average(average_loss: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(average_loss(list(c["losses"]), list(c["sizes"])))
                      for c in cases["cases"]]}


def _judge_average(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    got = []
    for case, desc in items:
        name = f"average_loss({case['losses']}, {case['sizes']})"
        with judging(case["drawn"]):
            if desc["kind"] == "tensor":
                fail(f"{name} is a tensor, {values.shown(desc)}", mistake="loss-tensor-accumulator",
                     hint="return a Python float: add up Python numbers (`float(...)`, "
                          "`.item()`), not tensors.")
            if desc["kind"] == "none":
                fail(f"{name} returned None", mistake="returns-none")
            number = values.number(desc)
            if number is None:
                fail(f"{name} should be a number, but it is {values.shown(desc)}",
                     mistake="check-error")
        got.append(number)
    forms = [_average_forms(c["losses"], c["sizes"]) for c, _ in items]
    for (case, _), value in zip(items, got):
        with judging(case["drawn"]):
            name = f"average_loss({case['losses']}, {case['sizes']})"
            hints = {"loss-mean-over-batches": (
                f"each batch loss is the mean over its batch, and the last batch has "
                f"{case['sizes'][-1]} samples, not {case['sizes'][0]}: it stands for fewer "
                "samples than the others. The mean per sample weighs each batch by its "
                "size and divides by the number of samples, not of batches.")}
            _expect_average(value, case["losses"], case["sizes"], name, forms, got, hints)
    return "batches of 4, 4 and 2"


check_average_loss = Check(
    "03", "average_loss", "average_loss with an uneven last batch",
    references=("segkit.checks.lesson03.reference_average_loss",),
    draw_cases=_draw_average, ask_student=_ask_average, judge_answers=_judge_average)


# --------------------------------------------------------------------------- the spies


class _Batches:
    """An iterable of (images, masks) batches with ``len()`` (the number of batches) but
    without ``.dataset``, like ``itertools.islice`` of a loader would not have it. Each
    batch is fresh, on the host (:func:`~segkit.checks.standin.host`)."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, masks in self._batches:
            yield host(images), host(masks)

    def __len__(self) -> int:
        return len(self._batches)

    def __repr__(self) -> str:
        return f"a loader of {len(self)} batches"


class _TinyNet(nn.Sequential):
    """conv -> BatchNorm -> ReLU -> 1x1 conv: (N, 3, H, W) -> (N, 1, H, W) logits."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 1, 1))


def _spy_on(model: _TinyNet) -> list[list[bool]]:
    """Record ``[model.training, grad enabled, batch never moved]`` at every forward pass;
    a batch that was not moved is moved here, so that the run goes on."""
    calls: list[list[bool]] = []
    device = next(model.parameters()).device

    def record(module: nn.Module, args: tuple) -> tuple:
        (x, *rest) = args
        calls.append([module.training, torch.is_grad_enabled(), unmoved(x)])
        return (moved(x).to(device), *rest)
    model.register_forward_pre_hook(record)
    return calls


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
        self.graphs: list[weakref.ref] = []
        self.kept_graphs = 0
        self.backward_calls = 0
        self.unmoved = 0

    def __call__(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        # When batch k's loss is computed, the graphs of batches k-2 and before must be gone:
        # the loop's `loss` and `logits` now belong to batch k-1 at most.
        self.kept_graphs = max(self.kept_graphs,
                               sum(ref() is not None for ref in self.graphs[:-1]))
        self.unmoved += bool(unmoved(masks) or unmoved(logits))
        logits, masks = moved(logits), moved(torch.as_tensor(masks)).to(logits.device)
        loss = self.loss_fn(logits, masks)
        self.values.append(float(loss.detach()))
        self.sizes.append(int(logits.shape[0]))
        marker = _Marker(self)
        self.graphs.append(weakref.ref(marker))
        return _Tag.apply(loss, marker)

    def __repr__(self) -> str:
        return "BCEDiceLoss()"


class _SpySGD(torch.optim.SGD):
    """SGD (lr 0.05) that watches the gradients it applies (see the module doc)."""

    def __init__(self, params: Any, loss_fn: _SpyLoss) -> None:
        super().__init__(params, lr=LR)
        self.loss_fn = loss_fn
        self.steps = 0
        self.early_steps = 0   # step() before the batch's loss and loss.backward()
        self.empty_steps = 0   # every gradient None or zero: zero_grad() after backward()
        self.stale_steps = 0   # the stale gradient left by the last step was still there

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        params, spy = self._params(), self.loss_fn
        if spy.backward_calls < len(spy.values) or len(spy.values) <= self.steps:
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
        return f"SGD(lr={LR})"


# --------------------------------------------------------------------------- the cases


def _draw_loop(rng: np.random.Generator, *, running_stats: bool,
               worked: bool = False) -> dict[str, Any]:
    """Batches of a drawn size with a smaller last one, images of a drawn odd and unequal
    size, and the model's drawn weights (as arrays; ``running_stats``: BatchNorm statistics
    far from any batch's, as after some training). ``worked``: the lesson's worked example
    instead, batches of 4, 4 and 2 images of 8 x 8 (the same on every run)."""
    if worked:
        rng, sizes, (h, w) = np.random.default_rng(3), [4, 4, 2], (8, 8)
    else:
        size, k = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        sizes = [size] * k + [int(rng.integers(1, size))]
        h, w = (int(v) for v in rng.choice([5, 7, 9], size=2, replace=False))
    n = sum(sizes)
    images = rng.standard_normal((n, 3, h, w)).astype(np.float32)
    masks = (images[:, 0] + 0.3 * rng.standard_normal((n, h, w)) > 0).astype(np.int64)
    masks[-sizes[-1]:] = 1  # the last batch's loss and Dice differ from the others'
    state = {
        "0.weight": (rng.standard_normal((6, 3, 3, 3)) * (2 / 27) ** 0.5).astype(np.float32),
        "0.bias": (rng.standard_normal(6) * 0.1).astype(np.float32),
        "1.weight": rng.uniform(0.5, 1.5, 6).astype(np.float32),
        "1.bias": (rng.standard_normal(6) * 0.2).astype(np.float32),
        "1.running_mean": (rng.uniform(-0.5, 0.5, 6) if running_stats else np.zeros(6)
                           ).astype(np.float32),
        "1.running_var": (rng.uniform(2.0, 4.0, 6) if running_stats else np.ones(6)
                          ).astype(np.float32),
        "1.num_batches_tracked": np.array(0, np.int64),
        "3.weight": (rng.standard_normal((1, 6, 1, 1)) * (2 / 6) ** 0.5).astype(np.float32),
        "3.bias": np.zeros(1, np.float32),
    }
    return {"images": images, "masks": masks, "sizes": sizes, "state": state,
            "drawn": not worked}


def _model(state: dict[str, np.ndarray], device: torch.device | str = "cpu") -> _TinyNet:
    model = _TinyNet()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model.to(device)


def _batches(case: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    images, masks = values.tensor(case["images"]), values.tensor(case["masks"])
    out, start = [], 0
    for size in case["sizes"]:
        out.append((images[start:start + size], masks[start:start + size]))
        start += size
    return out


def _centered(case: dict[str, Any]) -> dict[str, Any]:
    """Shift the last bias so that about half of the pixels are predicted as object (eval
    mode): the Dice values then lie well inside (0, 1). The cut falls in the widest gap
    between logits near the median, so no logit lies where `sigmoid(logit) > 0.5` and
    `logit > 0` could disagree in float32."""
    model = _model(case["state"]).eval()
    with torch.no_grad():
        logits = torch.cat([model(images) for images, _ in _batches(case)]).flatten()
    ordered = np.sort(logits.double().numpy())
    middle = len(ordered) // 2
    near = np.arange(max(middle - 20, 0), min(middle + 20, len(ordered) - 1))
    widest = near[np.argmax(ordered[near + 1] - ordered[near])]
    cut = (ordered[widest] + ordered[widest + 1]) / 2
    case["state"]["3.bias"] = (case["state"]["3.bias"] - cut).astype(np.float32)
    return case


def _state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _ask_loop(fn: Any, case: dict[str, Any], *, train: bool) -> dict[str, Any]:
    """Run the student's loop on the case with the spies; what they saw, as plain data."""
    device, label = check_device()
    model = _model(case["state"], device)
    model.train(not train)  # as the other function leaves it: the loop must switch
    calls = _spy_on(model)
    loss_fn = _SpyLoss()
    loader = _Batches(_batches(case))
    if train:
        optimizer = _SpySGD(model.parameters(), loss_fn)
        result, error = values.call(fn, model, loader, loss_fn, optimizer, device)
    else:
        result, error = values.call(fn, model, loader, loss_fn, device)
    answer = {"result": error or values.describe(result), "calls": calls, "device": label,
              "losses": loss_fn.values, "sizes": loss_fn.sizes,
              "kept_graphs": loss_fn.kept_graphs, "backward_calls": loss_fn.backward_calls,
              "unmoved": loss_fn.unmoved, "after": _state(model)}
    if train:
        answer.update(steps=optimizer.steps, early_steps=optimizer.early_steps,
                      empty_steps=optimizer.empty_steps, stale_steps=optimizer.stale_steps)
    return answer


def _expect_ran(answer: dict[str, Any], exercise: str) -> None:
    """The loop ran: no stub, no crash; the loss function was called."""
    record = core.raised(answer["result"])
    if record and record["type"] == "AttributeError" and "dataset" in record["message"]:
        fail(f"{exercise} used `loader.dataset`, but the check's loader has none: "
             f"`{record['message']}`", mistake="loader-dataset-len")
    core.value_of(answer["result"], exercise)
    if not answer["losses"]:
        fail("loss_fn was never called: no batch was used", mistake="loss-fn-not-called")


def _expect_moved(answer: dict[str, Any], exercise: str) -> None:
    """Every batch reached the model and the loss on ``device``."""
    unmoved_inputs = sum(c[2] for c in answer["calls"])
    if unmoved_inputs or answer["unmoved"]:
        what = "images" if unmoved_inputs else "masks"
        fail(f"the {what} of {max(unmoved_inputs, answer['unmoved'])} of "
             f"{len(answer['sizes'])} batches reached the "
             f"{'model' if unmoved_inputs else 'loss'} without being moved to `device`",
             mistake="batch-not-moved")


def _expect_float_loss(desc: dict[str, Any], name: str) -> float:
    if desc["kind"] == "tensor":
        graph = " It still carries its autograd graph (`grad_fn`)." if desc["grad_fn"] else ""
        fail(f"{name} is a tensor, {values.shown(desc)}, not a Python float.{graph}",
             mistake="loss-tensor-accumulator")
    if desc["kind"] == "none":
        fail(f"{name} returned None", mistake="returns-none",
             hint="the function computes the mean loss but does not `return` it.")
    number = values.number(desc)
    if number is None:
        fail(f"{name} should be a Python float, but it is {values.shown(desc)}",
             mistake="check-error")
    return number


def _expect_loss(value: float, answer: dict[str, Any], name: str) -> None:
    losses, sizes = answer["losses"], answer["sizes"]
    _expect_average(value, losses, sizes, name)


# --------------------------------------------------------------------------- train_one_epoch


def _draw_train(rng: np.random.Generator) -> dict[str, Any]:
    return {"cases": [_draw_loop(rng, running_stats=False, worked=True),
                      _draw_loop(rng, running_stats=False)]}


def _ask_train(train_one_epoch: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [_ask_loop(train_one_epoch, case, train=True) for case in cases["cases"]]}


def _reference_epoch(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """The weights after segkit's train_one_epoch on the same model and batches."""
    model = _model(case["state"]).eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    training.train_one_epoch(model, _batches(case), BCEDiceLoss(), optimizer, "cpu")
    return _state(model)


def _judge_train(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_train_case)[0]


def _judge_train_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    name = "train_one_epoch(...)"
    n_batches = len(case["sizes"])
    _expect_ran(answer, "train_one_epoch")
    value = _expect_float_loss(answer["result"], name)
    if answer["kept_graphs"]:
        fail(f"{name} returned a float, but while it ran the autograd graphs of earlier "
             f"batches stayed alive ({answer['kept_graphs']} of them when the last batch "
             "started)", mistake="loss-tensor-accumulator",
             hint="something keeps the loss tensors: `total += loss` (even with `.item()` at "
                  "the very end) or a list of `loss` tensors. Each one holds its batch's "
                  "graph, so memory grows batch after batch: accumulate Python floats "
                  "(`loss.item()`).")
    if any(not training_ for training_, _, _ in answer["calls"]):
        fail("the model was in eval mode while training (the check handed it over in eval "
             "mode, as validation leaves it)", mistake="train-in-eval-mode")
    steps = answer["steps"]
    if not answer["backward_calls"]:
        fail(f"loss.backward() was never called, so no gradient was computed ({steps} "
             "optimizer steps had nothing to apply)", mistake="no-backward")
    if not steps:
        fail("optimizer.step() was never called: the weights did not change",
             mistake="no-optimizer-step")
    for key, mistake, said in [
            ("early_steps", "step-before-backward",
             "optimizer.step() ran before that batch's loss.backward(): each step applied no "
             "gradient or the previous batch's"),
            ("empty_steps", "zero-grad-after-backward", "every gradient was None or zero: the "
                                                         "step changed nothing"),
            ("stale_steps", "no-zero-grad", "the gradients still held those of an earlier "
                                             "batch")]:
        if answer[key]:
            fail(f"at {answer[key]} of {steps} steps {said}", mistake=mistake)
    if steps != n_batches:
        fail(f"optimizer.step() was called {steps} times for {n_batches} batches",
             mistake="step-not-every-batch")
    if all(np.array_equal(answer["after"][k], v) for k, v in case["state"].items()
           if np.asarray(v).dtype.kind == "f"):
        fail("the weights did not change", mistake="no-optimizer-step")
    _expect_loss(value, answer, name)
    _expect_moved(answer, "train_one_epoch")
    want = _reference_epoch(case)
    worst = max(float(np.abs(np.asarray(answer["after"][k], np.float64) - v).max())
                for k, v in want.items() if v.dtype.kind == "f")
    if worst > 1e-4:
        fail(f"after one epoch the weights differ from those segkit's train_one_epoch gives "
             f"on the same model and batches (by up to {worst:.3g})", hint=GENERAL_HINT)
    return f"{n_batches} batches of {', '.join(map(str, case['sizes']))} samples"


check_train_one_epoch = Check(
    "03", "train_one_epoch", "train_one_epoch on a small model",
    references=("segkit.training.train_one_epoch",),
    draw_cases=_draw_train, ask_student=_ask_train, judge_answers=_judge_train)


# --------------------------------------------------------------------------- validate


def _draw_validate(rng: np.random.Generator) -> dict[str, Any]:
    return {"cases": [_centered(_draw_loop(rng, running_stats=True, worked=True)),
                      _centered(_draw_loop(rng, running_stats=True))]}


def _ask_validate(validate: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [_ask_loop(validate, case, train=False) for case in cases["cases"]]}


def _dice_forms(case: dict[str, Any]) -> dict[str, list[float]]:
    """The validation Dice of the catalogued mistakes: the mean of the batches' means."""
    model = _model(case["state"]).eval()
    with torch.no_grad():
        per_batch = [float(_dice_per_image(model(images), masks).mean())
                     for images, masks in _batches(case)]
    return {"dice-mean-over-batches": [sum(per_batch) / len(per_batch)]}


def _dice_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    from segkit import metrics

    return metrics.dice_per_image((logits[:, 0] > 0).long(), masks)


def _judge_validate(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_validate_case)[0]


def _entries(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A described dict's entries whose keys are strings."""
    return {k["value"]: v for k, v in result.get("items", []) if k["kind"] == "str"}


def _judge_validate_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    name = "validate(...)"
    _expect_ran(answer, "validate")
    result = answer["result"]
    if result["kind"] == "none":
        fail(f"{name} returned None", mistake="returns-none",
             hint="the function computes the loss and the Dice but does not `return` them.")
    got = _entries(result) if result["kind"] == "dict" else {}
    if result["kind"] != "dict" or not {"loss", "dice"} <= set(got):
        with_keys = f" with keys {sorted(got)}" if result["kind"] == "dict" else ""
        fail(f"{name} returned {values.shown(result)}{with_keys}", mistake="validate-returns-dict")
    loss = _expect_float_loss(got["loss"], f'{name}["loss"]')
    dice = got["dice"]
    if dice["kind"] not in ("float", "int") and not (dice["kind"] == "numpy-scalar"
                                                     and values.number(dice) is not None):
        fail(f'{name}["dice"] is {values.shown(dice)}, not a Python float',
             mistake="dice-not-float")
    before, after = case["state"], answer["after"]
    stats_moved = not all(np.array_equal(before[k], after[k])
                          for k in ("1.running_mean", "1.running_var"))
    if any(training_ for training_, _, _ in answer["calls"]) or stats_moved:
        fail("the model ran in train mode during validation: BatchNorm normalised each batch "
             "with the batch's own statistics and updated its running statistics with "
             "validation data", mistake="validate-train-mode")
    if any(grad for _, grad, _ in answer["calls"]):
        fail("gradients were enabled during validation: every forward pass built an autograd "
             "graph", mistake="validate-grad-enabled")
    if not all(np.array_equal(before[k], after[k]) for k in before):
        fail("validate changed the model's weights", mistake="validate-changes-weights")
    _expect_loss(loss, answer, f'{name}["loss"]')
    want = training.validate(_model(before), _batches(case), BCEDiceLoss(), "cpu")
    value = float(values.number(dice))
    if abs(value - want["dice"]) > 1e-4:
        mistake = explained_by([value], [_dice_forms(case)], abs_tol=1e-4)
        fail(f'{name}["dice"] is {value:.6g}, expected {want["dice"]:.6g} (the mean over the '
             f"{sum(case['sizes'])} images of each image's Dice)", mistake=mistake,
             hint=None if mistake else GENERAL_HINT)
    _expect_moved(answer, "validate")
    if abs(loss - want["loss"]) > 1e-4:
        fail(f'{name}["loss"] is {loss:.6g}, expected {want["loss"]:.6g}', hint=GENERAL_HINT)
    return f"{len(case['sizes'])} batches of {', '.join(map(str, case['sizes']))} samples"


check_validate = Check(
    "03", "validate", "validate on a small model",
    references=("segkit.training.validate",),
    draw_cases=_draw_validate, ask_student=_ask_validate, judge_answers=_judge_validate)
