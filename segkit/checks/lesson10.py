"""Checks of lesson 10 (scaling up).

==============================  ============================================================
check                           mistakes it names (``CheckFailed.mistake``)
==============================  ============================================================
``check_CachedDataset``         ``no-cache`` (every access decodes again), ``cached-after-
                                augment`` (the augmented pair is kept: the same flip every
                                epoch), ``augment-written-back`` (the augmented pair goes back
                                into the cache: each epoch augments the last one's result),
                                ``cache-ignores-index`` (one entry for every index),
                                ``wrong-length``
``check_to_channels_last``      ``permuted-not-layout`` (``permute`` changes the shape; the
                                layout is a memory format), ``input-not-channels-last``,
                                ``model-not-channels-last``, ``values-changed``
``check_mixed_precision_step``  ``no-autocast`` (the forward pass ran in float32; also
                                ``autocast("cuda")`` on a CPU), ``weights-cast-to-16-bit``
                                (``model.bfloat16()``: small updates round away),
                                ``no-zero-grad``, ``no-optimizer-step``, ``not-a-float``
``check_shard``                 ``every-rank-all-data``, ``positions-not-indices``,
                                ``uneven-shards`` (a process waits for ever at the gradient
                                sum; also padding once, which falls short when there are
                                fewer than half as many images as processes),
                                ``samples-dropped``, ``shard-too-long``
==============================  ============================================================

Every check draws its cases fresh each run: ``CachedDataset`` meets a drawn number of
pairs read in a drawn order over 3 epochs, with an augmentation that marks every call, so
the check sees which pair came back and which augmentation it got; ``to_channels_last`` and
``mixed_precision_step`` the lesson's worked example (the numbers their ✅ lines quote) and
a drawn net on drawn sizes; ``shard`` four sets of shuffled indices and processes, one with
fewer than half as many images as processes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from segkit import speed
from segkit.checks import core, values
from segkit.checks.core import GENERAL_HINT, Check, fail, judge_each

__all__ = ["check_CachedDataset", "check_to_channels_last", "check_mixed_precision_step",
           "check_shard", "reference_CachedDataset", "reference_to_channels_last",
           "reference_mixed_precision_step", "reference_shard"]


# --------------------------------------------------------------------------- references


class reference_CachedDataset(torch.utils.data.Dataset):  # noqa: N801 - the exercise's name
    """The pairs ``load_pair(i)`` returns, loaded once and kept; ``augment`` on every access."""

    def __init__(self, load_pair: Callable, n: int, augment: Callable):
        self.load_pair, self.n, self.augment = load_pair, n, augment
        self.pairs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if index not in self.pairs:
            self.pairs[index] = self.load_pair(index)
        image, mask = self.pairs[index]
        return self.augment(image, mask)


def reference_to_channels_last(model: nn.Module, images: torch.Tensor):
    """``(model, images)`` with weights and images in channels_last memory layout."""
    return model.to(memory_format=torch.channels_last), speed.to_channels_last(images)


def reference_mixed_precision_step(model, images, masks, loss_fn, optimizer) -> float:
    """One training step with the forward pass under bfloat16 autocast; returns the loss."""
    optimizer.zero_grad()
    return _step_keeping_old_gradients(model, images, masks, loss_fn, optimizer)


def _step_keeping_old_gradients(model, images, masks, loss_fn, optimizer) -> float:
    """The reference step without its zero_grad: what a forgotten zero_grad gives."""
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
        logits = model(images)
    loss = loss_fn(logits.float(), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """Process ``rank``'s share of ``indices``: every ``world_size``-th, after padding the
    list with its own first items to a multiple of ``world_size`` (as DistributedSampler
    does without shuffling), so every process gets the same number."""
    per_process = math.ceil(len(indices) / world_size)
    padded = (indices * world_size)[:per_process * world_size]
    return padded[rank::world_size]


# --------------------------------------------------------------------------- CachedDataset

_MARK = 1000  # augment call c adds (c + 1) * _MARK: the call is read back from the value


def _draw_cached(rng: np.random.Generator) -> dict[str, Any]:
    """A drawn number of pairs, each with its own value, read over 3 epochs, each epoch
    in a drawn order."""
    n = int(rng.integers(3, 8))
    bases = [int(v) for v in rng.choice(np.arange(1, _MARK), size=n, replace=False)]
    order = [int(i) for _ in range(3) for i in rng.permutation(n)]
    return {"n": n, "bases": bases, "order": order}


def _ask_cached(CachedDataset: Any, cases: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
    loads: Counter = Counter()
    augments = [0]

    def load_pair(index: int):
        loads[int(index)] += 1
        base = cases["bases"][int(index)]
        return torch.full((1, 2, 3), base, dtype=torch.int64), torch.full((2, 3), base)

    def augment(image: torch.Tensor, mask: torch.Tensor):
        augments[0] += 1
        return image + augments[0] * _MARK, mask + augments[0] * _MARK

    dataset = CachedDataset(load_pair, cases["n"], augment)
    length = values.describe(len(dataset))
    items = [values.describe(dataset[i]) for i in cases["order"]]
    return {"length": length, "items": items, "augments": augments[0],
            "loads": [loads[i] for i in range(cases["n"])]}


def _item_value(desc: dict[str, Any]) -> int | None:
    """The one value an item's image holds (None when it is not an (image, mask) pair of
    one value)."""
    pair = values.python(desc, None)
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    image = np.asarray(pair[0]) if pair[0] is not None else np.asarray([])
    if image.size == 0 or not np.all(image == image.flat[0]):
        return None
    return int(image.flat[0])


def _judge_cached(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    n, bases, order = cases["n"], cases["bases"], cases["order"]
    length = values.number(answers["length"])
    if length != n:
        fail(f"len(CachedDataset(load_pair, {n}, augment)) is "
             f"{values.shown(answers['length'])}", mistake="wrong-length")
    if len(answers["loads"]) != n or len(answers["items"]) != len(order) \
            or not isinstance(answers["augments"], int):
        fail("the answers do not cover every read of the dataset", mistake="check-error")
    got = [_item_value(d) for d in answers["items"]]
    if any(v is None for v in got):
        fail("an item of the dataset is not the (image, mask) pair augment returned",
             hint=GENERAL_HINT)
    epochs = len(order) // n
    which = [bases.index(v % _MARK) if v % _MARK in bases else None for v in got]
    if which != order:
        first = next(k for k, (w, i) in enumerate(zip(which, order)) if w != i)
        fail(f"dataset[{order[first]}] came back as the pair of index {which[first]} (read in "
             f"the order {order[:n]}, over {epochs} epochs)", mistake="cache-ignores-index")
    if max(answers["loads"]) > 1:
        fail(f"over {epochs} epochs load_pair(0..{n - 1}) was called {answers['loads']} times",
             mistake="no-cache")
    calls = [v // _MARK for v in got]
    if calls == list(range(1, len(order) + 1)):
        return "each pair loaded once, flipped anew every epoch"
    seen: dict[int, int] = {}
    piled = []
    for index, call in zip(order, range(1, len(order) + 1)):
        seen[index] = seen.get(index, 0) + call
        piled.append(seen[index])
    if calls == piled:
        fail(f"in epoch 2 and after, dataset[i] is the pair of the epoch before augmented "
             f"again ({epochs} epochs of {n} pairs)", mistake="augment-written-back")
    if answers["augments"] == 0:
        fail(f"over {epochs} epochs augment was never called: every item came back as "
             "load_pair gave it", mistake="augment-not-called")
    if answers["augments"] < len(order) and len(set(calls)) < len(order):
        index = order[0]
        fail(f"item {index} came back with the same augmentation in all {epochs} epochs "
             f"(augment was called {answers['augments']} times for {len(order)} reads)",
             mistake="cached-after-augment")
    fail(f"over {epochs} epochs the items were not each the loaded pair, augmented once at "
         f"every read (augment was called {answers['augments']} times for {len(order)} "
         "reads)", hint=GENERAL_HINT)


check_CachedDataset = Check(
    "10", "CachedDataset", "CachedDataset over 3 epochs",
    references=("segkit.checks.lesson10.reference_CachedDataset",),
    name="check_CachedDataset",
    draw_cases=_draw_cached, ask_student=_ask_cached, judge_answers=_judge_cached)


# --------------------------------------------------------------------------- small nets


def _small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 2, 3, padding=1))


def _state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _net(state: dict[str, np.ndarray]) -> nn.Module:
    model = _small_net()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model


def _worked_net(images_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """The lesson's worked example: the net and images torch makes from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _small_net()
        images = torch.randn(*images_shape)
        masks = torch.randint(0, 2, (images_shape[0], *images_shape[2:]))
    return {"state": _state(model), "images": images.numpy(), "masks": masks.numpy(),
            "drawn": False}


def _drawn_net(rng: np.random.Generator) -> dict[str, Any]:
    """A net with drawn weights and a batch of drawn odd, unequal size (never 3)."""
    model = _small_net()
    state = {}
    for key, value in model.state_dict().items():
        shape = tuple(value.shape)
        if key.endswith("running_var") or (key.startswith("1.") and key.endswith("weight")):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif value.dtype == torch.int64:
            state[key] = np.array(0, np.int64)
        else:
            state[key] = (rng.standard_normal(shape) * 0.3).astype(np.float32)
    h, w = (int(v) for v in rng.choice([5, 7, 9, 11], size=2, replace=False))
    n = int(rng.integers(2, 4))
    return {"state": state, "images": rng.standard_normal((n, 3, h, w)).astype(np.float32),
            "masks": rng.integers(0, 2, (n, h, w)).astype(np.int64), "drawn": True}


# --------------------------------------------------------------------------- to_channels_last


def _draw_layout(rng: np.random.Generator) -> dict[str, Any]:
    return {"cases": [_worked_net((2, 3, 5, 6)), _drawn_net(rng)]}


def _is_cl(desc: dict[str, Any]) -> bool:
    return bool(desc.get("channels_last"))


def _ask_layout(to_channels_last: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        model = _net(case["state"]).eval()
        got = to_channels_last(model, values.tensor(case["images"]))
        answer: dict[str, Any] = {"result": values.describe(got)}
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], nn.Module) \
                and isinstance(got[1], torch.Tensor):
            new_model, new_images = got
            answer["weights"] = [values.describe(m.weight) for m in new_model.modules()
                                 if isinstance(m, nn.Conv2d)]
            out, error = values.call(lambda: new_model.eval()(new_images))
            answer["output"] = error or values.describe(out.detach())
        answers.append(answer)
    return {"cases": answers}


def _judge_layout_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    result = answer["result"]
    if result["kind"] == "none":
        fail("to_channels_last returned None", mistake="returns-none")
    items = result.get("items", [])
    if result["kind"] != "tuple" or len(items) != 2 or items[1]["kind"] != "tensor":
        fail(f"to_channels_last should return (model, images); it returned "
             f"{values.shown(result)}", hint="return both, the model and the images, "
                                             "converted.")
    images = items[1]
    n, c, h, w = case["images"].shape
    if tuple(images["shape"]) == (n, h, w, c):
        fail(f"the images came back with shape {tuple(images['shape'])}; they went in as "
             f"{(n, c, h, w)}", mistake="permuted-not-layout")
    if tuple(images["shape"]) != (n, c, h, w) or not np.array_equal(
            values.array(images), case["images"]):
        fail(f"the images came back with shape {tuple(images['shape'])} and other values",
             mistake="values-changed")
    if not _is_cl(images):
        fail("the images are still in the default (N, C, H, W) memory layout: strides "
             f"{tuple(images['stride'])}", mistake="input-not-channels-last")
    weights = answer.get("weights", [])
    if not weights or not all(_is_cl(wd) for wd in weights):
        fail("the conv weights are still in the default memory layout: strides "
             f"{[tuple(wd['stride']) for wd in weights]}", mistake="model-not-channels-last")
    with torch.no_grad():
        want = _net(case["state"]).eval()(values.tensor(case["images"])).numpy()
    out = values.array(core.value_of(answer["output"], "to_channels_last"))
    if out is None or out.shape != want.shape or not np.allclose(out, want, atol=1e-5):
        worst = float(np.abs(out - want).max()) if out is not None and out.shape == want.shape \
            else float("inf")
        fail(f"the model computes something else after the change (largest difference "
             f"{worst:.3g})", mistake="values-changed")
    return f"images strides {tuple(images['stride'])}, same output"


def _judge_layout(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_layout_case)[0]


check_to_channels_last = Check(
    "10", "to_channels_last", "to_channels_last on a small conv net",
    references=("segkit.checks.lesson10.reference_to_channels_last",
                "segkit.speed.to_channels_last"),
    draw_cases=_draw_layout, ask_student=_ask_layout, judge_answers=_judge_layout)


# --------------------------------------------------------------------------- mixed_precision_step

_STALE = 5.0  # a gradient left in .grad before the step: zero_grad must clear it
_LR = 0.1


def _draw_step(rng: np.random.Generator) -> dict[str, Any]:
    return {"cases": [_worked_net((2, 3, 8, 8)), _drawn_net(rng)]}


def _run_step(step: Callable, case: dict[str, Any], *, stale: bool) -> tuple[Any, Any, list]:
    """``step`` on the case's net with SGD; (loss, model, conv output dtypes)."""
    model = _net(case["state"])
    optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
    if stale:
        for p in model.parameters():
            p.grad = torch.full_like(p, _STALE)
    dtypes: list[str] = []
    hook = model[0].register_forward_hook(
        lambda m, i, o: dtypes.append(str(o.dtype).replace("torch.", "")))
    try:
        loss = step(model, values.tensor(case["images"]), values.tensor(case["masks"]),
                    nn.CrossEntropyLoss(), optimizer)
    finally:
        hook.remove()
    return loss, model, dtypes


def _ask_step(mixed_precision_step: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        loss, model, dtypes = _run_step(mixed_precision_step, case, stale=True)
        answers.append({"loss": values.describe(loss), "dtypes": dtypes,
                        "params": {n: str(p.dtype).replace("torch.", "")
                                   for n, p in model.named_parameters()},
                        "after": {n: p.detach().float().numpy().copy()
                                  for n, p in model.named_parameters()}})
    return {"cases": answers}


def _judge_step_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    if not answer["dtypes"]:
        fail("the model was never called", mistake="no-autocast")
    wrong = [(n, d) for n, d in answer["params"].items() if d != "float32"]
    if wrong:
        fail(f"after the step the weights are {wrong[0][1]} (parameter {wrong[0][0]})",
             mistake="weights-cast-to-16-bit")
    if answer["dtypes"][0] != "bfloat16":
        fail(f"the first convolution computed in torch.{answer['dtypes'][0]}",
             mistake="no-autocast")
    loss = answer["loss"]
    if loss["kind"] != "float" and not (loss["kind"] == "numpy-scalar"
                                        and values.number(loss) is not None):
        fail(f"mixed_precision_step returned a {loss.get('type', loss['kind'])}, "
             f"{values.shown(loss)}, not a Python float", mistake="not-a-float")
    before = _net(case["state"])
    if all(np.array_equal(answer["after"][n], p.detach().numpy())
           for n, p in before.named_parameters()):
        fail("the weights did not change.", mistake="no-optimizer-step")
    want_loss, want_model, _ = _run_step(reference_mixed_precision_step, case, stale=False)
    same = all(np.allclose(answer["after"][n], p.detach().numpy(), atol=1e-2)
               for n, p in want_model.named_parameters())  # a bf16 loss moves them < 1e-3
    if not same:
        _, stale_model, _ = _run_step(_step_keeping_old_gradients, case, stale=True)
        kept = all(np.allclose(answer["after"][n], p.detach().numpy(), atol=1e-2)
                   for n, p in stale_model.named_parameters())
        fail("the step moved the weights differently from one zero_grad, forward, backward, "
             "step" + (" (it started with old gradients in .grad)" if kept else ""),
             mistake="no-zero-grad" if kept else None, hint=None if kept else GENERAL_HINT)
    return f"convolutions in bfloat16, weights float32, loss {want_loss:.4f}"




def _judge_step(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_step_case)[0]


check_mixed_precision_step = Check(
    "10", "mixed_precision_step", "mixed_precision_step on a small conv net",
    references=("segkit.checks.lesson10.reference_mixed_precision_step",),
    draw_cases=_draw_step, ask_student=_ask_step, judge_answers=_judge_step)


# --------------------------------------------------------------------------- shard


def _draw_shard(rng: np.random.Generator) -> dict[str, Any]:
    """Four (indices, processes): n a multiple of the processes, n larger but not a
    multiple, fewer images than processes but at least half as many, and fewer than half
    (where padding once is not enough). The indices are shuffled, not 0..n-1."""
    world = int(rng.integers(2, 5))
    sizes = [(world * int(rng.integers(2, 4)), world)]
    world = int(rng.integers(3, 6))
    sizes.append((world * int(rng.integers(1, 3)) + int(rng.integers(1, world)), world))
    world = int(rng.integers(3, 7))
    sizes.append((int(rng.integers(math.ceil(world / 2), world)), world))
    world = int(rng.integers(6, 10))  # 2 images at least: 1 alone is every share right
    sizes.append((int(rng.integers(2, math.ceil(world / 2))), world))
    cases = []
    for n, world in sizes:
        start = int(rng.integers(10, 90))
        indices = [start + int(i) for i in rng.permutation(n)]
        cases.append({"indices": indices, "world": world})
    return {"cases": cases}


def _ask_shard(shard: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [[values.describe(shard(list(c["indices"]), rank, c["world"]))
                       for rank in range(c["world"])] for c in cases["cases"]]}


def _share(desc: dict[str, Any], call: str) -> list[int]:
    if desc["kind"] == "none":
        fail(f"{call} returned None", mistake="returns-none")
    found = values.python(desc, None)
    if isinstance(found, np.ndarray):
        found = found.tolist()
    if not isinstance(found, (list, tuple)) or not all(
            isinstance(i, (int, float)) and float(i) == int(i) for i in found):
        fail(f"{call} should be a list of indices, but it is {values.shown(desc)}",
             mistake="check-error")
    return [int(i) for i in found]


def _judge_shard_case(indices: list[int], world: int, answers: list) -> None:
    n = len(indices)
    if len(answers) != world:
        fail(f"shard gave {len(answers)} shares for {world} processes", mistake="check-error")
    parts = [_share(a, f"shard({indices}, {rank}, {world})") for rank, a in enumerate(answers)]
    said = f"shard({indices}, rank, {world}) gave {parts}"
    if n > math.ceil(n / world) and all(sorted(p) == sorted(indices) for p in parts):
        fail(said, mistake="every-rank-all-data")
    if not all(i in indices for p in parts for i in p):
        fail(said, mistake="positions-not-indices")
    lengths = [len(p) for p in parts]
    if len(set(lengths)) != 1:
        fail(f"{said}: lengths {lengths}", mistake="uneven-shards")
    missing = sorted(set(indices) - {i for p in parts for i in p})
    if missing:
        fail(f"{said}: {missing} in no process", mistake="samples-dropped")
    if lengths[0] != math.ceil(n / world):
        fail(f"{said}: {lengths[0]} each for {n} images, where {math.ceil(n / world)} each "
             "hold them all", mistake="shard-too-long")


def _judge_shard(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    for case, answer in zip(cases["cases"], answers["cases"], strict=True):
        _judge_shard_case(case["indices"], case["world"], answer)
    return "4 cases: equal shares, every image in one, padding only to fill"


check_shard = Check(
    "10", "shard", "shard over 4 sets of images and processes",
    references=("segkit.checks.lesson10.reference_shard",),
    draw_cases=_draw_shard, ask_student=_ask_shard, judge_answers=_judge_shard)
