"""Checks of lesson 10 (scaling up).

==============================  ============================================================
check                           mistakes it names (``CheckFailed.mistake``)
==============================  ============================================================
``check_CachedDataset``         ``no-cache`` (every access decodes again), ``cached-after-
                                augment`` (the augmented pair is kept: the same flip every
                                epoch), ``cache-ignores-index`` (one entry for every index),
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
                                sum), ``samples-dropped``, ``shard-too-long``
==============================  ============================================================
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn

from segkit import speed
from segkit.checks.core import check, expect, fail

__all__ = ["check_CachedDataset", "check_to_channels_last", "check_mixed_precision_step",
           "check_shard", "reference_CachedDataset", "reference_to_channels_last",
           "reference_mixed_precision_step", "reference_shard"]


# --------------------------------------------------------------------------- references


class reference_CachedDataset(torch.utils.data.Dataset):
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


# --------------------------------------------------------------------------- exercise 1


def _load_counting(calls: Counter) -> Callable:
    def load_pair(index: int):
        calls[index] += 1
        image = torch.full((1, 2, 3), index, dtype=torch.uint8)
        image[0, 0, 0] = 100 + index        # a corner to see flips by
        return image, torch.full((2, 3), index % 2, dtype=torch.uint8)
    return load_pair


def _flip_half(image, mask):
    """A random horizontal flip of image and mask together (probability 0.5)."""
    if torch.rand(()) < 0.5:
        return image.flip(-1), mask.flip(-1)
    return image, mask


def _unchanged(image, mask):
    return image, mask


@check("CachedDataset", "CachedDataset over 3 epochs", fixed_rng=True)
def check_CachedDataset(CachedDataset) -> str:
    """Each pair loaded once, the right pair per index, augmentation on every access."""
    calls: Counter = Counter()
    plain = CachedDataset(_load_counting(calls), 4, _unchanged)
    expect(len(plain) == 4, f"len(CachedDataset(load_pair, 4, augment)) is {len(plain)}",
           mistake="wrong-length")
    firsts = [int(plain[i][0][0, 0, 0]) for i in range(4)]
    expect(firsts == [100, 101, 102, 103], f"items 0..3 have corners {firsts}, the loaded "
           "pairs have 100..103", mistake="cache-ignores-index")
    calls.clear()
    flips = CachedDataset(_load_counting(calls), 4, _flip_half)
    corners = [int(flips[i % 4][0][0, 0, 0]) for i in range(48)]   # 12 epochs of 4
    loads = [calls[i] for i in range(4)]
    if max(loads) > 1:
        fail(f"over 12 epochs load_pair(0..3) was called {loads} times",
             mistake="no-cache")
    if len(set(corners[0::4])) == 1:
        fail(f"item 0 came back the same way in all 12 epochs ({len(set(corners))} different "
             "items in all), though the augmentation flips half of the time",
             mistake="cached-after-augment")
    return "each pair loaded once, flipped anew every epoch"


# --------------------------------------------------------------------------- exercise 2


def _small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 2, 3, padding=1))


def _is_cl(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


@check("to_channels_last", "to_channels_last on a small conv net", fixed_rng=True)
def check_to_channels_last(to_channels_last) -> str:
    model = _small_net().eval()
    images = torch.randn(2, 3, 5, 6)
    with torch.no_grad():
        want = model(images)
    got = to_channels_last(model, images.clone())
    expect(got is not None, "to_channels_last returned None", mistake="returns-none")
    expect(isinstance(got, tuple) and len(got) == 2, "to_channels_last should return "
           f"(model, images); it returned a {type(got).__name__}",
           hint="end with `return model, images`, both converted.")
    new_model, new_images = got
    if tuple(new_images.shape) == (2, 5, 6, 3):
        fail("the images came back with shape (2, 5, 6, 3); they went in as (2, 3, 5, 6)",
             mistake="permuted-not-layout")
    expect(tuple(new_images.shape) == (2, 3, 5, 6) and torch.equal(new_images, images),
           f"the images came back with shape {tuple(new_images.shape)} and other values",
           mistake="values-changed")
    expect(_is_cl(new_images), "the images are still in the default (N, C, H, W) memory "
           f"layout: strides {new_images.stride()}", mistake="input-not-channels-last")
    weights = [m.weight for m in new_model.modules() if isinstance(m, nn.Conv2d)]
    expect(bool(weights) and all(_is_cl(w) for w in weights),
           "the conv weights are still in the default memory layout: strides "
           f"{[w.stride() for w in weights]}", mistake="model-not-channels-last")
    with torch.no_grad():
        out = new_model(new_images)
    expect(torch.allclose(out, want, atol=1e-5), "the model computes something else after "
           f"the change (largest difference {(out - want).abs().max().item():.3g})",
           mistake="values-changed")
    return f"images strides {new_images.stride()}, same output"


# --------------------------------------------------------------------------- exercise 3


def _step_setup(seed: int):
    torch.manual_seed(seed)
    model = _small_net()
    images, masks = torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8))
    return model, images, masks


def _run_step(step, model, images, masks, stale_grads: bool = False):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if stale_grads:
        for p in model.parameters():
            p.grad = torch.full_like(p, 5.0)
    dtypes: list[torch.dtype] = []
    hook = model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    try:
        loss = step(model, images, masks, nn.CrossEntropyLoss(), optimizer)
    finally:
        hook.remove()
    return loss, dtypes


@check("mixed_precision_step", "mixed_precision_step on a small conv net", fixed_rng=True)
def check_mixed_precision_step(mixed_precision_step) -> str:
    model, images, masks = _step_setup(0)
    before = copy.deepcopy(model)
    loss, dtypes = _run_step(mixed_precision_step, model, images, masks, stale_grads=True)
    expect(bool(dtypes), "the model was never called", mistake="no-autocast")
    wrong = [(n, p.dtype) for n, p in model.named_parameters() if p.dtype != torch.float32]
    if wrong:
        fail(f"after the step the weights are {wrong[0][1]} (parameter {wrong[0][0]})",
             mistake="weights-cast-to-16-bit")
    expect(dtypes[0] == torch.bfloat16, f"the first convolution computed in {dtypes[0]}",
           mistake="no-autocast")
    expect(isinstance(loss, float), f"mixed_precision_step returned a "
           f"{type(loss).__name__}, not a Python float", mistake="not-a-float")
    changed = any(not torch.equal(a, b) for a, b in zip(model.parameters(), before.parameters()))
    expect(changed, "the weights did not change.", mistake="no-optimizer-step")
    want_model = copy.deepcopy(before)
    want_loss, _ = _run_step(reference_mixed_precision_step, want_model, images, masks)
    same = all(torch.allclose(a, b, atol=1e-2)   # a bfloat16 loss moves them by < 1e-3
               for a, b in zip(model.parameters(), want_model.parameters()))
    expect(same, "the step moved the weights differently from one zero_grad, forward, "
           "backward, step (it started with old gradients in .grad)", mistake="no-zero-grad")
    return f"convolutions in bfloat16, weights float32, loss {want_loss:.4f}"


# --------------------------------------------------------------------------- exercise 4

CASES = [(8, 2), (10, 4), (3, 4), (7, 3)]   # (images, processes)


def _shards(shard, indices: list[int], world: int) -> list[list[int]]:
    got = []
    for rank in range(world):
        part = shard(list(indices), rank, world)
        expect(part is not None, f"shard(indices, {rank}, {world}) returned None",
               mistake="returns-none")
        got.append([int(i) for i in part])
    return got


@check("shard", "shard over 4 sets of images and processes")
def check_shard(shard) -> str:
    for n, world in CASES:
        indices = [100 + (7 * i) % n for i in range(n)]     # shuffled, not 0..n-1
        parts = _shards(shard, indices, world)
        show = f"shard({indices}, rank, {world}) gave {parts}"
        if all(sorted(p) == sorted(indices) for p in parts) and world > 1:
            fail(show, mistake="every-rank-all-data")
        expect(all(i in indices for p in parts for i in p), show,
               mistake="positions-not-indices")
        lengths = [len(p) for p in parts]
        expect(len(set(lengths)) == 1, f"{show}: lengths {lengths}", mistake="uneven-shards")
        seen = Counter(i for p in parts for i in p)
        missing = sorted(set(indices) - set(seen))
        expect(not missing, f"{show}: {missing} in no process", mistake="samples-dropped")
        expect(lengths[0] == math.ceil(n / world), f"{show}: {lengths[0]} each for {n} "
               f"images, where {math.ceil(n / world)} each hold them all",
               mistake="shard-too-long")
    return f"{len(CASES)} cases: equal shares, every image in one, padding only to fill"
