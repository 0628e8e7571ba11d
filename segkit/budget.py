"""A budget of training time: stop at the deadline, anneal the learning rate over it.

``segkit train`` trains for ``--max-seconds`` (60 by default) *of training*: the time
spent validating and saving is not counted. Three things read the budget, and all three
read the same clock, the ``elapsed`` seconds of the run's :class:`segkit.training.History`
(which a resumed run brings back from its checkpoint):

- the training loader stops in the middle of an epoch when the time is up
  (:meth:`TimeBudget.until_deadline`), so a slow machine's last epoch may be partial;
- no new epoch starts once it is spent (:meth:`TimeBudget.spent`);
- :class:`BudgetCosineLR` lowers the learning rate along a cosine over the budget, so a
  run cut by the clock still ends at a small learning rate.

Under torchrun (a ``DistContext`` given) every process uses the largest ``elapsed`` of
all processes and all stop at the same batch, so they take the same steps with the same
learning rate. The training loop itself (:func:`segkit.training.train_one_epoch`) knows
nothing of this: the budget wraps its loader and its schedule from outside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator

import torch


class TimeBudget:
    """``max_seconds`` of training for a run whose epochs ``history`` records.

    ``ctx``: a :class:`segkit.distributed.DistContext` under torchrun, else None.
    """

    def __init__(self, max_seconds: float, history, ctx=None) -> None:
        if not max_seconds > 0:  # also refuses nan
            raise ValueError(f"a time budget must be > 0 seconds, got {max_seconds!r}")
        self.max_seconds, self.history, self.ctx = float(max_seconds), history, ctx

    def used(self) -> float:
        """Seconds of training so far (the largest over all processes)."""
        elapsed = self.history.last.get("elapsed", 0.0)
        return self.ctx.max_float(elapsed) if self.ctx is not None else elapsed

    def spent(self) -> bool:
        """True once the run has trained for ``max_seconds``."""
        return self.used() >= self.max_seconds

    def until_deadline(self, batches: Iterable) -> Iterator:
        """The batches of one epoch, until the budget runs out: after each batch (its
        training step done) the clock is read, and every process stops at the same batch."""
        deadline = time.monotonic() + self.max_seconds - self.used()
        for batch in batches:
            yield batch
            time_up = time.monotonic() >= deadline
            if self.ctx is not None:
                time_up = self.ctx.any(time_up)
            if time_up:
                return


class BudgetCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """Cosine annealing over a training-time budget instead of a fixed number of epochs.

    A run stopped by a time budget with an epoch-based cosine schedule stops half-way down
    the curve, at a still-large learning rate, and its last weights are noisy. This
    schedule follows the share of the budget used so far::

        progress = max(elapsed / max_seconds, epochs_done / epochs)     # 0 -> 1
        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2

    so the learning rate reaches ``min_lr`` when the time runs out on a slow machine, or
    when the last epoch ends on a fast one. ``step(elapsed)`` is called after each epoch
    with the training seconds so far; with ``clock`` (e.g. a :class:`TimeBudget`'s
    ``used``) a plain ``step()`` reads them from it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_seconds: float, epochs: int,
                 min_lr: float = 0.0, clock: Callable[[], float] | None = None) -> None:
        if max_seconds <= 0 or epochs <= 0:
            raise ValueError(f"BudgetCosineLR: max_seconds ({max_seconds}) and epochs "
                             f"({epochs}) must be positive")
        self.max_seconds = float(max_seconds)
        self.epochs = int(epochs)
        self.min_lr = float(min_lr)
        self.progress = 0.0
        self.clock = None  # the scheduler's first step, while it is built, is at progress 0
        super().__init__(optimizer)
        self.clock = clock

    def get_lr(self) -> list[float]:
        factor = (1 + math.cos(math.pi * self.progress)) / 2
        return [self.min_lr + (base - self.min_lr) * factor for base in self.base_lrs]

    def step(self, elapsed: float | None = None) -> None:  # type: ignore[override]
        """Move to the next epoch; ``elapsed``: training seconds used so far (default:
        the clock's; neither: the epochs alone)."""
        if elapsed is None and self.clock is not None:
            elapsed = self.clock()
        if elapsed is not None:
            by_epochs = (self.last_epoch + 1) / self.epochs
            self.progress = min(1.0, max(elapsed / self.max_seconds, by_epochs))
        super().step()

    def state_dict(self) -> dict:
        """The schedule's state without its clock (a checkpoint holds plain data only)."""
        return {k: v for k, v in super().state_dict().items() if k != "clock"}
