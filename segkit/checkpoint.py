"""Checkpoints: save a run so it can be evaluated, used for prediction, or resumed.

A checkpoint is a plain ``dict`` saved with ``torch.save``:

- ``model_config``: the U-Net's constructor arguments (``UNet(**model_config)`` rebuilds it)
- ``model_state``: the weights (``model.state_dict()``)
- ``optimizer_state``, ``scheduler_state``, ``scaler_state``: to resume training (optional)
- ``epoch``: the last finished epoch (int)
- ``history``: per-epoch figures (list of dicts of floats)
- ``metrics``: the figures of the last epoch
- ``data``: what prediction needs to prepare an image: ``size`` (H, W), ``mean``, ``std``,
  ``image_mode`` ("RGB"/"L"), ``task`` ("binary"/"multiclass"), ``num_classes``
- ``train_config``: the settings of the run (plain values), ``segkit_version``

Saving is atomic: the file is written to a temporary name in the same folder, flushed to
disk, then renamed over the old one. A save interrupted half-way (Ctrl-C, a full disk, a
Colab disconnect) leaves the previous good checkpoint untouched.

Loading uses ``torch.load(..., weights_only=True)``: only tensors and plain Python values
are unpickled, so a checkpoint from the internet cannot run code on your machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import segkit
from segkit.errors import SegkitError


class CheckpointError(SegkitError):
    """A checkpoint file is missing, damaged or not a segkit checkpoint."""


def save_checkpoint(path: str | Path, *, model: nn.Module, epoch: int,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, scaler: Any = None,
                    history: list[dict[str, float]] | None = None,
                    metrics: dict[str, float] | None = None,
                    data: dict[str, Any] | None = None,
                    train_config: dict[str, Any] | None = None,
                    rng_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Atomically write a checkpoint of ``model`` (and optionally the optimizer etc.) to ``path``.

    ``rng_state``: random-number states to restore on resume, e.g.
    ``{"torch": torch.get_rng_state(), "loader": train_loader.generator.get_state()}``
    (uint8 tensors), so that a resumed run draws the same shuffles and augmentations.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt: dict[str, Any] = {
        "format": "segkit-checkpoint-1",
        "segkit_version": segkit.__version__,
        "model_config": dict(getattr(model, "config", {})),
        "model_state": model.state_dict(),
        "epoch": int(epoch),
        "history": list(history or []),
        "metrics": dict(metrics or {}),
        "data": dict(data or {}),
        "train_config": dict(train_config or {}),
    }
    if optimizer is not None:
        ckpt["optimizer_state"] = optimizer.state_dict()
    if scheduler is not None:
        ckpt["scheduler_state"] = scheduler.state_dict()
    if scaler is not None:
        ckpt["scaler_state"] = scaler.state_dict()
    if rng_state is not None:
        ckpt["rng_state"] = dict(rng_state)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)  # atomic on POSIX and Windows
    except BaseException:
        # Interrupted or failed: remove the half-written file, keep the old checkpoint.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only=True``), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (train a model first, e.g. "
                              "`segkit train`, or check the path)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # damaged zip, truncated file, unsafe pickle content
        raise CheckpointError(
            f"could not load checkpoint {path}: {type(exc).__name__}: {exc}. The file may be "
            "truncated (an interrupted copy or download) or not a PyTorch checkpoint."
        ) from exc
    if not isinstance(ckpt, dict) or "model_state" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{path} is not a segkit checkpoint (no model_state/model_config); "
                              "a bare state_dict can be loaded with model.load_state_dict(torch.load(...))")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path,
                          device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the U-Net stored in a checkpoint, load its weights, move it to ``device``, eval mode."""
    from segkit.unet import UNet

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt, map_location="cpu")
    model = UNet(**ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval()
