"""Data-parallel training on several processes, launched by PyTorch's ``torchrun``.

    torchrun --nproc_per_node=4 -m segkit train ...                     # 4 GPUs, one machine
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
             --rdzv-endpoint=node0.example:29400 --rdzv-id=run1 -m segkit train ...
    torchrun --standalone --nproc_per_node=2 -m segkit train --device cpu  # 2 CPU processes

``torchrun`` starts one process per device and tells each its ``RANK`` (0 .. N-1 over all
machines), ``LOCAL_RANK`` (its GPU on this machine) and ``WORLD_SIZE`` (N) through
environment variables. ``segkit train`` notices them and then, in every process:

- joins the process group: NCCL between CUDA GPUs, gloo between CPU processes;
- builds the same U-Net (DistributedDataParallel copies rank 0's weights to all);
- trains on its own share of each epoch's shuffled images (``DistributedSampler``):
  ``--batch-size`` is the *global* batch, split evenly, so N processes take the same steps
  as one process with that batch (only BatchNorm sees the smaller per-process batch);
- averages the gradients over all processes in ``backward()`` (DDP does this), so every
  copy of the model takes the same optimizer step and stays identical;
- reports the training loss as the mean over all processes (:func:`averaged_over_processes`);
- validates on rank 0 alone, over the whole validation set, and gets its figures
  (:func:`validated_on_main`), so every process logs and schedules with the same figures;
- agrees with the others on when the time budget is used up (``segkit.budget``).

These wrap :func:`segkit.training.train_one_epoch` and :func:`segkit.training.validate`
from outside: the loop itself is the same with one process or many.

Only rank 0 prints, and writes checkpoints, the history and the figure. ``--resume``
works as without torchrun: every process loads the checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from segkit.errors import SegkitError


class DistributedSetupError(SegkitError, RuntimeError):
    """torchrun's settings do not fit this machine or this run."""


@dataclass
class DistContext:
    """Where this process stands in a torchrun job, and the reductions ``fit`` needs.

    rank: 0 .. world_size - 1 over all machines; local_rank: index on this machine.
    device: this process's device (``cuda:<local_rank>`` or ``cpu``); reductions use it.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0

    def mean_float(self, value: float) -> float:
        """The mean of ``value`` over all processes."""
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def max_float(self, value: float) -> float:
        """The largest ``value`` over all processes."""
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true in at least one process."""
        return self.max_float(1.0 if flag else 0.0) > 0

    def from_main(self, value):
        """Rank 0's ``value`` (plain Python data), in every process."""
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


def launched_by_torchrun() -> bool:
    """True in a process that torchrun (or another launcher with its variables) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> DistContext:
    """Join the process group that torchrun set up; returns this process's context.

    ``device``: the device chosen as without torchrun ("cuda" or "cpu"); on CUDA each
    process takes GPU ``LOCAL_RANK``.
    """
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"torchrun started process {local_rank} on this machine but it has "
                f"{torch.cuda.device_count()} GPU(s): give --nproc_per_node at most "
                f"{torch.cuda.device_count()}.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise DistributedSetupError(f"torchrun training runs on CUDA (NCCL) or CPU (gloo), "
                                    f"not on {device.type}: add --device cpu.")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return DistContext(rank, world, local_rank, device)


def cleanup() -> None:
    """Leave the process group (after the last collective call)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def per_process_batch(global_batch: int, ctx: DistContext) -> int:
    """The batch each process takes so that all together take ``global_batch``."""
    if global_batch % ctx.world_size:
        raise DistributedSetupError(
            f"--batch-size {global_batch} cannot be split evenly over {ctx.world_size} "
            f"processes: use a multiple of {ctx.world_size} (e.g. "
            f"{ctx.world_size * max(1, global_batch // ctx.world_size)}).")
    return global_batch // ctx.world_size


def train_sampler(train_ds: Dataset, ctx: DistContext, seed: int) -> DistributedSampler:
    """This process's share of a new shuffle of ``train_ds`` each epoch, seeded with ``seed``.

    Every process gets the same number of images (a few are repeated to even out the
    shares), so all take the same number of steps and batches of the same size."""
    return DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank,
                              shuffle=True, seed=seed, drop_last=False)


def averaged_over_processes(train_epoch, ctx: DistContext):
    """``train_epoch`` (e.g. ``segkit.training.train_one_epoch``) returning the mean loss
    per sample over all processes, not this process's share alone.

    The processes train on shares of equal size (:func:`train_sampler`), so the mean of
    their means is the mean over every sample of the epoch."""
    def train_shared(model, loader, loss_fn, optimizer, device) -> float:
        return ctx.mean_float(train_epoch(model, loader, loss_fn, optimizer, device))
    return train_shared


def validated_on_main(validate_epoch, ctx: DistContext):
    """``validate_epoch`` (e.g. ``segkit.training.validate``) run by rank 0 alone, on the
    model without its DistributedDataParallel wrapper, over the whole validation set; the
    other processes wait and get rank 0's figures. Rank 0's weights are the ones its
    checkpoints save, so the figures are those of the saved model."""
    from segkit.speed import unwrap

    def validate_shared(model, loader, loss_fn, device, **options) -> dict[str, float]:
        figures = validate_epoch(unwrap(model), loader, loss_fn, device, **options) \
            if ctx.is_main else None
        return ctx.from_main(figures)
    return validate_shared


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``model`` in DistributedDataParallel: rank 0's weights copied to every process,
    gradients averaged over all of them in ``backward()``."""
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
