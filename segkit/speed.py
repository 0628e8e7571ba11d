"""Speed settings: mixed precision, memory layout, compilation, cuDNN autotuning.

Four switches make the same training step faster without changing what it computes
(up to rounding):

- **mixed precision** (``torch.autocast``): convolutions run in a 16-bit float type.
  On CUDA that is bfloat16 where the GPU has it (Ampere and newer: no loss scaling
  needed) and float16 with a ``GradScaler`` otherwise (float16's small range would
  let small gradients underflow to 0 without scaling). On a CPU with bfloat16
  instructions (``avx512_bf16`` or AMX) autocast to bfloat16 is about 2x faster
  with ``channels_last``; on other CPUs it is slower, so segkit stays in float32.
- **channels_last**: images and weights stored as (N, H, W, C) in memory (the shape
  stays (N, C, H, W)): the layout oneDNN and cuDNN's fastest kernels read.
- **torch.compile**: traces the model once and fuses small operations (opt-in: the
  first steps are slow while it compiles).
- **cudnn.benchmark**: cuDNN times its algorithms once per input shape and keeps the
  fastest (the course's images all have one size).

``precision`` names used everywhere (CLI ``--precision``): "auto", "fp32", "bf16", "fp16".

They wrap the training loop from outside, which stays lesson 03's
(``segkit.training.train_one_epoch``): :func:`prepare_model` returns the model to train,
a :class:`FastModel` around yours that takes the images in channels_last, runs the forward
pass under autocast and hands float32 logits to the loss; :func:`prepare_optimizer`
returns the optimizer to step, a :class:`ScaledOptimizer` for float16's GradScaler.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from segkit.errors import SegkitError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(SegkitError, ValueError):
    """A precision that this device cannot run."""


def cpu_has_bf16() -> bool:
    """True when this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that oneDNN uses.

    Without them bfloat16 is emulated and slower than float32."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None and torch.backends.mkldnn.is_available():
        try:
            if not bool(check()):
                return False
        except RuntimeError:
            return False
    flags = _cpu_flags()
    if flags is None:  # not Linux: trust oneDNN's answer when there was one
        return check is not None
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags of /proc/cpuinfo (Linux), or None elsewhere."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``: None means plain float32.

    "auto": CUDA -> bfloat16 if the GPU supports it, else float16; CPU -> bfloat16 if
    :func:`cpu_has_bf16`, else float32; MPS -> float32. Asking for "bf16" or "fp16"
    where it cannot run raises :class:`PrecisionError`.
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_bf16():
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type != "cuda":
        raise PrecisionError(f"precision fp16 needs a CUDA GPU (device here: {device.type}); "
                             "use bf16 (CPUs with avx512_bf16/AMX) or fp32.")
    if precision == "bf16" and device.type == "mps":
        raise PrecisionError("precision bf16 is not supported on Apple MPS here; use fp32.")
    return _DTYPES[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """"fp32", "bf16" or "fp16" for an autocast dtype (None = fp32)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def precision_note(dtype: torch.dtype | None, device: torch.device | str) -> str:
    """One line saying which precision training uses on ``device`` and why."""
    device = torch.device(device)
    if dtype is None:
        if device.type == "cpu" and not cpu_has_bf16():
            return "precision: fp32 (this CPU has no bfloat16 instructions)"
        return "precision: fp32"
    if dtype == torch.float16:
        return "precision: fp16 autocast with a GradScaler (this GPU has no bfloat16)"
    where = "this CPU has avx512_bf16/AMX" if device.type == "cpu" else "this GPU supports it"
    return f"precision: bf16 autocast ({where}; --precision fp32 to turn it off)"


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``, or a context that does nothing (None)."""
    device = torch.device(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for float16 on CUDA (bfloat16 needs no loss scaling)."""
    device = torch.device(device)
    enabled = dtype == torch.float16 and device.type == "cuda"
    return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=enabled)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A 4-d tensor in channels_last memory layout (same shape); other tensors unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


@dataclass
class SpeedSettings:
    """The speed switches of one run (see the module docstring).

    Build it with :func:`speed_settings`; ``dtype`` None means float32. ``scaler`` is the
    run's GradScaler, enabled for float16 on CUDA only.
    """

    device: torch.device
    dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False
    scaler: torch.amp.GradScaler | None = None

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    @property
    def scales_gradients(self) -> bool:
        return self.scaler is not None and self.scaler.is_enabled()

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "contiguous (NCHW)"
        extra = ", torch.compile" if self.compile else ""
        return f"{precision_note(self.dtype, self.device)}; memory layout {layout}{extra}"


def speed_settings(device: torch.device | str, precision: str = "fp32",
                   channels_last: bool = False, compile: bool = False) -> SpeedSettings:
    """Resolve ``precision`` for ``device`` (see :func:`resolve_precision`)."""
    device = torch.device(device)
    dtype = resolve_precision(precision, device)
    return SpeedSettings(device, dtype, bool(channels_last), bool(compile),
                         make_scaler(device, dtype))


class FastModel(nn.Module):
    """``model`` as a run with speed settings calls it; the training loop stays as it is.

    The forward pass takes the images in channels_last layout (if set), runs the model
    under autocast to the settings' 16-bit type (if any) and returns the logits in
    float32, so the loss is computed in float32. With float16 (a GradScaler) the
    gradient that flows back into the model is multiplied by the scale, as if the loss
    had been (:func:`prepare_optimizer` unscales it before the step). Its weights are
    ``model``'s: checkpoints of ``model`` stay plain.
    """

    def __init__(self, model: nn.Module, settings: SpeedSettings) -> None:
        super().__init__()
        self.model, self.settings = model, settings

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.settings.channels_last:
            images = to_channels_last(images)
        with autocast(self.settings.device, self.settings.dtype):
            logits = self.model(images)
        logits = logits.float()
        if self.settings.scales_gradients and logits.requires_grad:
            logits.register_hook(self.settings.scaler.scale)
        return logits


class ScaledOptimizer:
    """``optimizer`` whose ``step()`` goes through float16's GradScaler: the gradients are
    unscaled, the step is skipped when one of them overflowed, and the scale adapts."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        self.optimizer, self.scaler = optimizer, scaler

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


def prepare_model(model: nn.Module, settings: SpeedSettings, wrap=None) -> nn.Module:
    """Move ``model`` to the settings' device and layout; return the model to train.

    The returned model is ``model`` itself in float32 and the default layout, else a
    :class:`FastModel` around it; ``wrap(model)`` (e.g. DistributedDataParallel, see
    ``segkit.distributed.wrap_model``) goes around that, and ``torch.compile`` around
    everything if asked. Also turns on ``cudnn.benchmark`` on CUDA. The weights are always
    ``model``'s, so checkpoints of ``model`` stay plain.
    """
    model = model.to(settings.device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if settings.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if settings.dtype is not None or settings.channels_last:
        model = FastModel(model, settings)
    if wrap is not None:
        model = wrap(model)
    if settings.compile:
        model = torch.compile(model)
    return model


def prepare_optimizer(optimizer: torch.optim.Optimizer, settings: SpeedSettings):
    """``optimizer`` as the settings need it: a :class:`ScaledOptimizer` for float16 on
    CUDA, else ``optimizer`` itself."""
    if settings.scales_gradients:
        return ScaledOptimizer(optimizer, settings.scaler)
    return optimizer


def unwrap(model: nn.Module) -> nn.Module:
    """The model under a ``torch.compile`` and/or DistributedDataParallel wrapper (a
    :class:`FastModel` stays: it is how this process runs the model)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's wrapper
            model = model._orig_mod
        else:
            return model


@dataclass
class LoaderSettings:
    """DataLoader options for a device: ``DataLoader(..., **settings.as_kwargs())``."""

    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False

    def as_kwargs(self) -> dict:
        return {"num_workers": self.num_workers, "pin_memory": self.pin_memory,
                "persistent_workers": self.persistent_workers}


def usable_cpus() -> int:
    """CPU cores this process may run on (a container's share, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def loader_settings(device: torch.device | str, num_workers: int | str = "auto",
                    cpus: int | None = None) -> LoaderSettings:
    """Sensible DataLoader options for training on ``device``.

    - CUDA: the GPU computes and the CPU only loads, so up to 8 worker processes (one
      core left for the main process), pinned memory (faster, asynchronous copies to the
      GPU), persistent workers (no restart, and their caches survive, between epochs).
    - MPS: up to 4 workers, no pinned memory.
    - CPU: the same cores also train, and a worker takes them from the model: no workers
      on machines with 4 cores or fewer, else a quarter of the cores (at most 4).

    ``num_workers`` given as an int overrides the count.
    """
    device = torch.device(device)
    cpus = cpus or usable_cpus()
    if num_workers == "auto":
        if device.type == "cuda":
            num_workers = min(8, cpus - 1)
        elif device.type == "mps":
            num_workers = min(4, cpus - 1)
        else:
            num_workers = 0 if cpus <= 4 else min(4, cpus // 4)
    num_workers = max(0, int(num_workers))
    return LoaderSettings(num_workers, pin_memory=device.type == "cuda",
                          persistent_workers=num_workers > 0)
