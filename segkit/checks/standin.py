"""A device for checks on a machine without an accelerator: batches that know whether
they were moved.

A training loop must move each batch to the device it is given (``images.to(device)``):
on a GPU a loop that forgets fails, on a CPU nothing shows it. The checks of such loops
hand the student's code a loader whose tensors are :class:`HostTensor` s: a tensor that
behaves like any other, except that ``.to(<a device>)`` (or ``.cuda()``) returns a plain
tensor. The check's model and loss then look at what reaches them: a ``HostTensor`` is a
batch that was never moved (:func:`unmoved`). With a real accelerator the same tensors
are used and the device is the accelerator (:func:`check_device`).

``.to(torch.float32)`` changes only the dtype and keeps the tensor a ``HostTensor``;
arithmetic on it does too (``images * 2`` was still never moved).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["HostTensor", "check_device", "host", "moved", "unmoved"]


def _names_a_device(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Do these ``Tensor.to`` arguments say where the tensor goes (not only its dtype)?"""
    if "device" in kwargs and kwargs["device"] is not None:
        return True
    for arg in args:
        if isinstance(arg, (torch.device, str, int)) and not isinstance(arg, bool):
            return True
        if isinstance(arg, torch.Tensor):  # .to(other): other's device and dtype
            return True
    return False


class HostTensor(torch.Tensor):
    """A batch tensor that has not been moved to the check's device (see the module)."""

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        moving = (func is torch.Tensor.cuda
                  or (func is torch.Tensor.to and _names_a_device(args[1:], kwargs)))
        if moving:
            with torch._C.DisableTorchFunctionSubclass():
                result = func(*args, **kwargs)
                return result.as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) \
                    else result
        return super().__torch_function__(func, types, args, kwargs)

    def __repr__(self, *, tensor_contents: Any = None) -> str:
        return moved(self).__repr__()


def host(t: torch.Tensor) -> HostTensor:
    """``t`` as a batch tensor still on the host (a fresh copy)."""
    return t.detach().clone().as_subclass(HostTensor)


def unmoved(t: Any) -> bool:
    """True when ``t`` is (or was computed only from) a batch never moved to the device."""
    return isinstance(t, HostTensor)


def moved(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a plain tensor (what the check's own computations use)."""
    return t.as_subclass(torch.Tensor) if isinstance(t, HostTensor) else t


def check_device() -> tuple[torch.device, str]:
    """``(device, label)``: the accelerator when there is one (CUDA, then Apple's MPS),
    else the CPU standing in for it, with :class:`HostTensor` batches showing the moves."""
    if torch.cuda.is_available():
        return torch.device("cuda"), "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps"), "mps"
    return torch.device("cpu"), "stand-in"
