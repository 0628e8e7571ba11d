"""Measuring speed: images per second of a training step, of a loader, of a whole loop.

A timing is only worth comparing with another one taken on the same machine at the same
moment: other programs, the CPU's clock and the first-call costs (memory allocation,
oneDNN/cuDNN picking kernels, ``torch.compile``) all move it. So every function here

- runs a few warm-up steps first and does not count them,
- waits for the GPU (``torch.cuda.synchronize``) before reading the clock,
- returns the *median* over several repetitions, and the spread, not one number.

Compare variants interleaved (A, B, A, B, ...) rather than one after the other:
:func:`compare` does that.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from segkit import speed


@dataclass
class Timing:
    """Images per second over ``repeats`` repetitions: ``median``, ``low`` and ``high``."""

    name: str
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def low(self) -> float:
        return min(self.rates) if self.rates else float("nan")

    @property
    def high(self) -> float:
        return max(self.rates) if self.rates else float("nan")

    def __str__(self) -> str:
        return f"{self.name}: {self.median:.1f} img/s (range {self.low:.1f}-{self.high:.1f})"


def sync(device: torch.device | str) -> None:
    """Wait until the GPU has finished its queued work (nothing to wait for on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_step(model: nn.Module, loss_fn: Callable, settings: speed.SpeedSettings,
              lr: float = 1e-3) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A training step ``step(images, masks) -> loss`` (a 0-d tensor): the body of
    ``segkit.training.train_one_epoch`` for one batch, with an AdamW optimizer.

    ``model`` must be prepared with the same ``settings`` (``speed.prepare_model``): it
    then runs in their precision and layout and returns float32 logits; the optimizer
    goes through ``speed.prepare_optimizer`` (float16's gradient scaling)."""
    optimizer = speed.prepare_optimizer(torch.optim.AdamW(model.parameters(), lr=lr), settings)

    def step(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def time_calls(fn: Callable[[], object], n_items: int, device: torch.device | str, *,
               calls: int = 5, warmup: int = 2) -> float:
    """Items per second of ``fn()``, each call handling ``n_items`` (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return n_items * calls / (time.perf_counter() - t0)


def compare(variants: dict[str, Callable[[], float]], repeats: int = 3) -> dict[str, Timing]:
    """Run each ``variants[name]()`` (which returns a rate) ``repeats`` times, interleaved
    (A, B, C, A, B, C, ...), so a slow moment of the machine hits all of them alike."""
    results = {name: Timing(name) for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            results[name].rates.append(measure())
    return results


def time_loader(loader: Iterable, max_batches: int | None = None) -> float:
    """Images per second that ``loader`` delivers on its own (no model): one pass, or
    the first ``max_batches`` batches."""
    n, t0 = 0, time.perf_counter()
    for i, (images, _) in enumerate(loader):
        n += images.shape[0]
        if max_batches is not None and i + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0)


def peak_memory_mib(device: torch.device | str) -> float | None:
    """Peak GPU memory allocated by tensors since the last reset, in MiB (None on CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20
