"""Lesson 10's checks pass right solutions written several ways, meet the stubs, and name
each catalogued mistake (most of them in two forms)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DistributedSampler

from check_helpers import NOT_DONE, exercise_of, expect_mistake, failure, register
from segkit.checks import lesson10
from segkit.checks.core import ExerciseNotDone


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your code here")


# --------------------------------------------------------------------------- CachedDataset


class CachedDataset(torch.utils.data.Dataset):  # the solution
    def __init__(self, load_pair, n, augment):
        self.load_pair, self.n, self.augment = load_pair, n, augment
        self.pairs = {}

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index not in self.pairs:
            self.pairs[index] = self.load_pair(index)
        return self.augment(*self.pairs[index])


class CachedList(torch.utils.data.Dataset):  # right: a list filled on first use
    def __init__(self, load_pair, n, augment):
        self.load, self.augment, self.items = load_pair, augment, [None] * n

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if self.items[i] is None:
            self.items[i] = self.load(i)
        image, mask = self.items[i]
        return self.augment(image, mask)


class CachedLruCache(torch.utils.data.Dataset):  # right: functools' cache on a method
    def __init__(self, load_pair, n, augment):
        import functools
        self.cached = functools.lru_cache(maxsize=None)(load_pair)
        self.n, self.augment = n, augment

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.augment(*self.cached(i))


class CachedSetdefault:  # right: not even a Dataset subclass
    def __init__(self, load_pair, n, augment):
        self.load_pair, self.n, self.augment, self.store = load_pair, n, augment, {}

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        pair = self.store.get(i)
        if pair is None:
            pair = self.store.setdefault(i, self.load_pair(i))
        return self.augment(pair[0], pair[1])


class CachedStub:
    def __init__(self, load_pair, n, augment):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise CachedDataset: write your code here")


class NoCache(CachedDataset):
    def __getitem__(self, index):
        return self.augment(*self.load_pair(index))


class CacheMadeEachTime(CachedDataset):
    def __getitem__(self, index):
        pairs = {}
        if index not in pairs:
            pairs[index] = self.load_pair(index)
        return self.augment(*pairs[index])


class CachedAugmented(CachedDataset):
    def __getitem__(self, index):
        if index not in self.pairs:
            self.pairs[index] = self.augment(*self.load_pair(index))
        return self.pairs[index]


class CachedAugmentedList(CachedList):
    def __getitem__(self, i):
        if self.items[i] is None:
            image, mask = self.load(i)
            self.items[i] = self.augment(image, mask)
        return self.items[i]


class OneEntry(CachedDataset):
    def __getitem__(self, index):
        if not self.pairs:
            self.pairs["pair"] = self.load_pair(index)
        return self.augment(*self.pairs["pair"])


class OneEntryAttribute(CachedDataset):
    cached = None

    def __getitem__(self, index):
        if self.cached is None:
            self.cached = self.load_pair(index)
        return self.augment(*self.cached)


class LengthOfCache(CachedDataset):
    def __len__(self):
        return len(self.pairs)


@pytest.mark.parametrize("student", [CachedDataset, CachedList, CachedLruCache,
                                     CachedSetdefault, lesson10.reference_CachedDataset])
def test_cached_dataset_passes_right_solutions(student, capsys):
    assert lesson10.check_CachedDataset(student).passed
    assert capsys.readouterr().out.startswith("✅")


def test_cached_dataset_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson10.check_CachedDataset(CachedStub)


CACHED_MISTAKES = [
    (NoCache, "no-cache", ["was called [3, 3, 3", "__init__"]),
    (CacheMadeEachTime, "no-cache", ["once"]),
    (CachedAugmented, "cached-after-augment", ["same augmentation", "every epoch"]),
    (CachedAugmentedList, "cached-after-augment", ["before any randomness"]),
    (OneEntry, "cache-ignores-index", ["came back as the pair of index"]),
    (OneEntryAttribute, "cache-ignores-index", ["one entry per index"]),
    (LengthOfCache, "wrong-length", ["is 0"]),
]


@pytest.mark.parametrize("student,mistake,words", CACHED_MISTAKES)
def test_cached_dataset_names_each_mistake(student, mistake, words):
    expect_mistake(lesson10.check_CachedDataset, student, mistake, *words)


# --------------------------------------------------------------------------- to_channels_last


def to_channels_last(model, images):  # the solution
    return (model.to(memory_format=torch.channels_last),
            images.contiguous(memory_format=torch.channels_last))


def cl_to(model, images):  # right: .to for both
    model = model.to(memory_format=torch.channels_last)
    images = images.to(memory_format=torch.channels_last)
    return model, images


def cl_by_permute_twice(model, images):  # right: NHWC in memory by hand, shape kept
    nhwc = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    model.to(memory_format=torch.channels_last)
    return model, nhwc


def cl_per_parameter(model, images):  # right: each 4-d weight by hand
    for p in model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
    return model, images.contiguous(memory_format=torch.channels_last)


def cl_permuted(model, images):
    return model.to(memory_format=torch.channels_last), images.permute(0, 2, 3, 1).contiguous()


def cl_permuted_both(model, images):
    return model, images.permute(0, 2, 3, 1)


def cl_input_only(model, images):
    return model, images.contiguous(memory_format=torch.channels_last)


def cl_model_only(model, images):
    return model.to(memory_format=torch.channels_last), images.contiguous()


def cl_images_only_returned(model, images):
    model.to(memory_format=torch.channels_last)
    return model, images


def cl_new_model(model, images):
    fresh = lesson10._small_net().eval()  # a new model, with new weights
    return fresh.to(memory_format=torch.channels_last), images.contiguous(
        memory_format=torch.channels_last)


def cl_none(model, images):
    model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("student", [to_channels_last, cl_to, cl_by_permute_twice,
                                     cl_per_parameter, lesson10.reference_to_channels_last])
def test_to_channels_last_passes_right_solutions(student):
    assert lesson10.check_to_channels_last(student).passed


def test_to_channels_last_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson10.check_to_channels_last(stub)


LAYOUT_MISTAKES = [
    (cl_permuted, "permuted-not-layout", ["(2, 5, 6, 3)", "not the shape"]),
    (cl_permuted_both, "permuted-not-layout", ["memory_format"]),
    (cl_input_only, "model-not-channels-last", ["4-d weights"]),
    (cl_images_only_returned, "input-not-channels-last", ["strides (90, 30, 6, 1)"]),
    (cl_model_only, "input-not-channels-last", ["tensor takes a `memory_format`"]),
    (cl_new_model, "values-changed", ["largest difference"]),
    (cl_none, "returns-none", ["return"]),
]


@pytest.mark.parametrize("student,mistake,words", LAYOUT_MISTAKES)
def test_to_channels_last_names_each_mistake(student, mistake, words):
    expect_mistake(lesson10.check_to_channels_last, student, mistake, *words)


# --------------------------------------------------------------------------- mixed_precision_step


def mixed_precision_step(model, images, masks, loss_fn, optimizer):  # the solution
    optimizer.zero_grad()
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
        logits = model(images)
    loss = loss_fn(logits.float(), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_loss_inside(model, images, masks, loss_fn, optimizer):  # right: loss under autocast
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def mp_zero_grad_last(model, images, masks, loss_fn, optimizer):  # right: grads zeroed first
    for p in model.parameters():
        p.grad = None
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model(images)
        loss = loss_fn(out, masks)
        loss.backward()
    optimizer.step()
    return loss.detach().item()


def mp_with_scaler(model, images, masks, loss_fn, optimizer):  # right: a (disabled) scaler
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model.zero_grad()
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.item()


def mp_no_autocast(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_cuda_autocast(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=False):
        loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_model_bf16(model, images, masks, loss_fn, optimizer):
    model.to(torch.bfloat16)
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(torch.bfloat16)).float(), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_model_bf16_autocast(model, images, masks, loss_fn, optimizer):
    model.bfloat16()
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_no_zero_grad(model, images, masks, loss_fn, optimizer):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(images)
    loss = loss_fn(logits.float(), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def mp_zero_grad_after_step(model, images, masks, loss_fn, optimizer):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def mp_no_step(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    loss.backward()
    return loss.item()


def mp_returns_tensor(model, images, masks, loss_fn, optimizer):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), masks)
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("student", [mixed_precision_step, mp_loss_inside, mp_zero_grad_last,
                                     mp_with_scaler, lesson10.reference_mixed_precision_step])
def test_mixed_precision_step_passes_right_solutions(student):
    assert lesson10.check_mixed_precision_step(student).passed


def test_mixed_precision_step_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson10.check_mixed_precision_step(stub)


STEP_MISTAKES = [
    (mp_no_autocast, "no-autocast", ["torch.float32", "torch.autocast"]),
    (mp_cuda_autocast, "no-autocast", ["images.device.type"]),
    (mp_model_bf16, "weights-cast-to-16-bit", ["bfloat16", "1 + 0.001"]),
    (mp_model_bf16_autocast, "weights-cast-to-16-bit", ["float32"]),
    (mp_no_zero_grad, "no-zero-grad", ["old gradients"]),
    (mp_zero_grad_after_step, "no-zero-grad", ["start of every batch"]),
    (mp_no_step, "no-optimizer-step", ["did not change"]),
    (mp_returns_tensor, "not-a-float", ["Tensor", ".item()"]),
]


@pytest.mark.parametrize("student,mistake,words", STEP_MISTAKES)
def test_mixed_precision_step_names_each_mistake(student, mistake, words):
    expect_mistake(lesson10.check_mixed_precision_step, student, mistake, *words)


# --------------------------------------------------------------------------- shard


def shard(indices, rank, world_size):  # the solution
    per_process = math.ceil(len(indices) / world_size)
    padded = (indices * world_size)[:per_process * world_size]
    return padded[rank::world_size]


def shard_blocks(indices, rank, world_size):  # right: contiguous blocks after padding
    per = -(-len(indices) // world_size)
    padded = list(indices)
    while len(padded) < per * world_size:
        padded.append(indices[len(padded) % len(indices)])
    return padded[rank * per:(rank + 1) * per]


def shard_cycle(indices, rank, world_size):  # right: itertools
    import itertools
    total = world_size * math.ceil(len(indices) / world_size)
    return list(itertools.islice(itertools.cycle(indices), rank, total, world_size))


def shard_tensor(indices, rank, world_size):  # right: torch, returns a tensor
    t = torch.tensor(indices)
    per = math.ceil(len(indices) / world_size)
    t = t.repeat(world_size)[:per * world_size]
    return t.view(per, world_size)[:, rank]


def shard_all(indices, rank, world_size):
    return list(indices)


def shard_positions(indices, rank, world_size):
    per = math.ceil(len(indices) / world_size)
    return [(rank + world_size * k) % len(indices) for k in range(per)]


def shard_positions_range(indices, rank, world_size):
    return list(range(rank, len(indices), world_size))


def shard_strided_unpadded(indices, rank, world_size):
    return indices[rank::world_size]


def shard_ceil_blocks(indices, rank, world_size):
    per = math.ceil(len(indices) / world_size)
    return indices[rank * per:(rank + 1) * per]


def shard_floor_blocks(indices, rank, world_size):
    per = len(indices) // world_size
    return indices[rank * per:(rank + 1) * per]


def shard_floor_strided(indices, rank, world_size):
    keep = len(indices) - len(indices) % world_size
    return indices[:keep][rank::world_size]


def shard_pad_always(indices, rank, world_size):
    padded = indices + indices[:world_size]
    return padded[rank::world_size]


def shard_one_extra(indices, rank, world_size):
    per = len(indices) // world_size + 1
    return (indices * 2)[rank * per:(rank + 1) * per]


def shard_no_return(indices, rank, world_size):
    per = math.ceil(len(indices) / world_size)
    padded = (indices * world_size)[:per * world_size]
    padded = padded[rank::world_size]


@pytest.mark.parametrize("student", [shard, shard_blocks, shard_cycle, shard_tensor,
                                     lesson10.reference_shard])
def test_shard_passes_right_solutions(student):
    assert lesson10.check_shard(student).passed


def test_shard_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson10.check_shard(stub)


SHARD_MISTAKES = [
    (shard_all, "every-rank-all-data", ["own share"]),
    (shard_positions, "positions-not-indices", ["range(n)"]),
    (shard_positions_range, "positions-not-indices", ["shuffled"]),
    (shard_strided_unpadded, "uneven-shards", ["lengths [", "pad"]),
    (shard_ceil_blocks, "uneven-shards", ["lengths ["]),
    (shard_floor_blocks, "samples-dropped", ["round the share up"]),
    (shard_floor_strided, "samples-dropped", ["in no process"]),
    (shard_pad_always, "shard-too-long", ["each for"]),
    (shard_one_extra, "shard-too-long", ["next multiple"]),
    (shard_no_return, "returns-none", ["return"]),
]


@pytest.mark.parametrize("student,mistake,words", SHARD_MISTAKES)
def test_shard_names_each_mistake(student, mistake, words):
    expect_mistake(lesson10.check_shard, student, mistake, *words)


@pytest.mark.parametrize("n,world", [(8, 2), (10, 4), (3, 4), (7, 3), (1, 2), (12, 5)])
def test_the_reference_shards_as_pytorchs_distributed_sampler_does(n, world):
    indices = list(range(n))
    for rank in range(world):
        sampler = DistributedSampler(indices, num_replicas=world, rank=rank, shuffle=False)
        assert lesson10.reference_shard(indices, rank, world) == list(sampler)


# --------------------------------------------------------------------------- the issue's cases


class CachedAugmentedOnFirstLoad(CachedDataset):
    """Augments only when it loads: later epochs get the first epoch's augmentation."""

    def __getitem__(self, index):
        if index not in self.pairs:
            self.pairs[index] = self.augment(*self.load_pair(index))
        return self.pairs[index]


class CachedWritesAugmentedBack(CachedDataset):
    """Puts the augmented pair back into the cache: augmentations pile up."""

    def __getitem__(self, index):
        if index not in self.pairs:
            self.pairs[index] = self.load_pair(index)
        self.pairs[index] = self.augment(*self.pairs[index])
        return self.pairs[index]


class CachedWritesAugmentedBackList(CachedList):
    def __getitem__(self, i):
        if self.items[i] is None:
            self.items[i] = self.load(i)
        image, mask = self.augment(*self.items[i])
        self.items[i] = (image, mask)
        return image, mask


class CachedNoAugment(CachedDataset):
    def __getitem__(self, index):
        if index not in self.pairs:
            self.pairs[index] = self.load_pair(index)
        return self.pairs[index]


class CachedNoAugmentTuple(CachedList):
    def __getitem__(self, i):
        if self.items[i] is None:
            self.items[i] = self.load(i)
        return tuple(self.items[i])


def shard_pad_once(indices, rank, world_size):
    """Pads with the first items once: too few when there are fewer than half as many
    images as processes (the issue's case)."""
    per = math.ceil(len(indices) / world_size)
    padded = indices + indices[:per * world_size - len(indices)]
    return padded[rank::world_size]


def shard_pad_once_blocks(indices, rank, world_size):
    per = -(-len(indices) // world_size)
    padded = list(indices) + list(indices)[:per * world_size - len(indices)]
    return padded[rank * per:(rank + 1) * per]


ISSUE_CASES = [
    (lesson10.check_CachedDataset, CachedAugmentedOnFirstLoad, "cached-after-augment"),
    (lesson10.check_CachedDataset, CachedWritesAugmentedBack, "augment-written-back"),
    (lesson10.check_CachedDataset, CachedWritesAugmentedBackList, "augment-written-back"),
    (lesson10.check_CachedDataset, CachedNoAugment, "augment-not-called"),
    (lesson10.check_CachedDataset, CachedNoAugmentTuple, "augment-not-called"),
    (lesson10.check_shard, shard_pad_once, "uneven-shards"),
    (lesson10.check_shard, shard_pad_once_blocks, "uneven-shards"),
]


@pytest.mark.parametrize("check, student, mistake", ISSUE_CASES,
                         ids=[s.__name__ for _, s, _ in ISSUE_CASES])
def test_the_forms_that_used_to_pass_fail_on_every_draw(check, student, mistake):
    for seed in range(6):
        error = failure(lambda s: check(s, seed=seed), student)
        assert error.mistake == mistake, str(error)


# --------------------------------------------------------------------------- the corpus

for _check, _rights, _stub in [
        (lesson10.check_CachedDataset, [CachedDataset, CachedList, CachedLruCache,
                                        CachedSetdefault, lesson10.reference_CachedDataset],
         CachedStub),
        (lesson10.check_to_channels_last, [to_channels_last, cl_to, cl_by_permute_twice,
                                           cl_per_parameter,
                                           lesson10.reference_to_channels_last], stub),
        (lesson10.check_mixed_precision_step, [mixed_precision_step, mp_loss_inside,
                                               mp_zero_grad_last, mp_with_scaler,
                                               lesson10.reference_mixed_precision_step], stub),
        (lesson10.check_shard, [shard, shard_blocks, shard_cycle, shard_tensor,
                                lesson10.reference_shard], stub)]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub, NOT_DONE, f"stub_{exercise_of(_check)}")
for _check, _list in [(lesson10.check_CachedDataset, CACHED_MISTAKES),
                      (lesson10.check_to_channels_last, LAYOUT_MISTAKES),
                      (lesson10.check_mixed_precision_step, STEP_MISTAKES),
                      (lesson10.check_shard, SHARD_MISTAKES)]:
    for _fn, _mistake, _ in _list:
        register(_check, _fn, _mistake)
for _check, _fn, _mistake in ISSUE_CASES:
    register(_check, _fn, _mistake)
