"""Which device to train on, and seeding for reproducible runs.

The course runs on a laptop CPU, an Apple-silicon Mac (MPS) and a Colab GPU (CUDA).
``pick_device()`` chooses the fastest one that is there; ``seed_everything()`` makes a
run repeatable on the same machine.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device to train on: CUDA if present, else Apple MPS, else CPU.

    ``prefer`` ("cuda", "mps", "cpu" or "auto"/None) forces a choice; asking for a device
    that is not there raises ``RuntimeError`` saying what *is* available. The environment
    variable ``SEGKIT_DEVICE`` overrides the automatic choice (useful in CI: ``cpu``).
    """
    choice = (prefer or os.environ.get("SEGKIT_DEVICE") or "auto").lower()
    available = available_devices()
    if choice == "auto":
        return torch.device(available[0])
    if choice not in ("cuda", "mps", "cpu"):
        raise ValueError(f"unknown device {prefer!r}: use 'auto', 'cuda', 'mps' or 'cpu'")
    if choice not in available:
        raise RuntimeError(
            f"device {choice!r} was asked for but is not available here; "
            f"available: {', '.join(available)}"
        )
    return torch.device(choice)


def available_devices() -> list[str]:
    """Names of the devices PyTorch can use here, fastest first, e.g. ``['cuda', 'cpu']``."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def describe_device(device: torch.device | str) -> str:
    """One line a student can read: what the device is and what it means for speed."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        mem = torch.cuda.get_device_properties(device).total_memory / 2**30
        return f"CUDA GPU: {name} ({mem:.0f} GiB) - fast"
    if device.type == "mps":
        return "Apple GPU (MPS) - several times faster than the CPU"
    return f"CPU ({torch.get_num_threads()} threads) - fine for the course's small models and images"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices). Returns a ``torch.Generator`` seeded
    with ``seed`` to give to a DataLoader (``DataLoader(..., generator=g)``) so the
    shuffling order is repeatable too.

    Same seed + same machine + same thread count -> the same numbers. A different
    thread count or CPU changes the low-order bits (see the course's NOTEBOOK-CI notes).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    g = torch.Generator()
    g.manual_seed(seed)
    return g
