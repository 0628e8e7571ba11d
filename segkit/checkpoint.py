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
Colab disconnect, even ``kill -9``) leaves the previous good checkpoint untouched; a temporary
file such a crash leaves behind is removed by the next save of the same checkpoint. The file
gets ordinary permissions (your umask), so a classmate or a TA sharing the folder can read it.

Loading uses ``torch.load(..., weights_only=True)``: only tensors and plain Python values
are unpickled, so a checkpoint from the internet cannot run code on your machine. Files that
are not checkpoints at all (a text file, a git-lfs pointer, a web page saved under a ``.pt``
name, a truncated download) are named as such.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import secrets
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

import segkit
from segkit.errors import SegkitError
from segkit.failures import describe_os_error


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

    _write_atomically(ckpt, path)
    return path


def _write_atomically(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, rename it over ``path``.

    Temporary files left by an earlier save of the same checkpoint that was killed are removed
    first. The file is created with mode 0o666 minus the umask, like any file the user writes.
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as exc:
        # Interrupted or failed: remove the half-written file, keep the old checkpoint.
        tmp.unlink(missing_ok=True)
        problem = _write_problem(exc, path)
        if problem is not None:
            raise problem from exc
        raise


def _write_problem(exc: BaseException, path: Path) -> CheckpointError | None:
    """A clear error for a save that failed while writing (disk full, folder gone), else None."""
    try:
        free = f"{_size(shutil.disk_usage(path.parent).free)} free in {path.parent}"
    except OSError:
        free = f"{path.parent} is no longer there"
    keep = "The previous checkpoint is intact."
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) \
            or "no space left" in str(exc).lower():
        return CheckpointError(f"could not save {path}: no space left on the device ({free}). "
                               f"Free some space or train with --out-dir on another disk. {keep}")
    if isinstance(exc, RuntimeError) and "inline_container" in str(exc):
        # PyTorch's zip writer reports a failed write as "enforce fail at inline_container.cc".
        return CheckpointError(f"could not save {path}: the write stopped part-way ({free}). "
                               f"The usual causes are a full disk or a removed folder. {keep}")
    return None


def _size(n_bytes: float) -> str:
    """1536 -> "1.5 KB": a file or disk size as people read it."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} B" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TB"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only=True``), with clear errors."""
    path = Path(path)
    _check_readable(path)
    not_a_checkpoint = _what_else(path)
    if not_a_checkpoint:
        raise CheckpointError(f"{path} is not a checkpoint: {not_a_checkpoint}")
    try:
        with warnings.catch_warnings():  # PyTorch warns about pickle protocols it half-supports
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        raise CheckpointError(
            f"refused to load {path}: it is unsafe. It contains code"
            + (f" ({found.group(1)})" if found else "") + ", which segkit never runs; a "
            "checkpoint segkit writes holds only tensors and plain values. Delete the file "
            "unless you know exactly who made it and why.") from None
    except Exception as exc:  # a damaged zip: truncated copy or download
        raise CheckpointError(
            f"could not load checkpoint {path} ({_size(path.stat().st_size)}): it is damaged or "
            f"truncated "
            f"({str(exc).split('. ')[0]}). The usual cause is an interrupted copy or download: "
            "copy it again, or use the run's other checkpoint (last.pt / best.pt).") from None
    if not isinstance(ckpt, dict) or "model_state" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{path} is not a segkit checkpoint (no model_state/model_config); "
                              "a bare state_dict can be loaded with model.load_state_dict(torch.load(...))")
    return ckpt


def _check_readable(path: Path) -> None:
    """Raise a CheckpointError when ``path`` is missing, a folder or a broken link."""
    try:
        path.stat()
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not path.is_symlink():
            raise CheckpointError(f"checkpoint not found: {path} (train a model first, e.g. "
                                  "`segkit train`, or check the path)") from None
        raise CheckpointError(describe_os_error(exc)) from None  # a broken link, a loop...
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file inside it, e.g. "
                              f"{path / 'best.pt'}")


def _what_else(path: Path) -> str | None:
    """What the file is when it is plainly not a PyTorch checkpoint (empty, text, HTML...), else None.

    ``torch.save`` writes a zip archive (starts with ``PK``); very old files are a bare pickle
    (starts with byte 0x80).
    """
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "the file is empty (0 bytes); an interrupted copy or save leaves such a file"
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return None
    if head.startswith(b"version https://git-lfs"):
        return ("it is a git-lfs pointer, a small text file that stands in for the real one. "
                "Run `git lfs pull` in the repository to download the checkpoint itself")
    text = head.decode("utf-8", errors="replace").lstrip().lower()
    if text.startswith(("<!doctype html", "<html", "<?xml", "<head")):
        return ("it is a web page (HTML), saved instead of the file it links to; download it "
                "again from the file's direct link (cloud drives show such a page for large files)")
    if b"\0" not in head:
        first = head.decode("utf-8", errors="replace").strip().splitlines()[:1]
        return f"it is a text file (it starts with {first[0][:40]!r})" if first else "it is a text file"
    return "it is neither a zip archive nor a pickle, the two formats torch.save writes"


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path,
                          device: str | torch.device = "cpu", name: str | None = None) -> nn.Module:
    """Rebuild the U-Net stored in a checkpoint, load its weights, move it to ``device``, eval mode.

    Refuses, with both facts, a checkpoint whose settings (``model_config``, ``data``) disagree
    with its own weights: such a file would otherwise predict with the wrong input or classes.
    """
    if not isinstance(ckpt, dict):
        name = name or str(ckpt)
        ckpt = load_checkpoint(ckpt, map_location="cpu")
    name = name or "the checkpoint"
    model = build_model(ckpt["model_config"], name)
    check_weights_match(model.config, ckpt, name)
    load_weights(model, ckpt["model_state"], name)
    return model.to(device).eval()


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """``model.load_state_dict(state)``, with one clear line when the weights do not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][1:2]
        raise CheckpointError(f"{name}: its weights do not fit the U-Net its settings describe"
                              + (f" ({detail[0]})" if detail else "") + ". The file was "
                              "probably edited or written by another program.") from None


def check_resume(config: dict[str, Any], ckpt: dict[str, Any], name: str) -> None:
    """Raise a CheckpointError when the model asked for differs from the checkpoint's model."""
    saved = ckpt.get("model_config") or {}
    wrong = [f"{key} {saved[key]!r} (this run: {config[key]!r})" for key in config
             if key in saved and saved[key] != config[key]]
    if wrong:
        raise CheckpointError(
            f"cannot resume {name}: it was trained with " + ", ".join(wrong) + ". A resumed run "
            "keeps its model: leave out the options that change it, or start a new run "
            "without --resume.")


def build_model(config: dict[str, Any], name: str = "the checkpoint") -> nn.Module:
    """``UNet(**config)``, with a clear error for a key or value the U-Net does not take."""
    from segkit.unet import UNet

    try:
        return UNet(**config)
    except TypeError as exc:
        known = ", ".join(UNet().config)
        raise CheckpointError(f"{name}: its model_config cannot build a U-Net ({exc}); the keys "
                              f"segkit knows are {known}. It was probably written by another "
                              "program or another segkit version.") from None
    except ValueError as exc:
        raise CheckpointError(f"{name}: its model_config is invalid: {exc}") from None


def architecture_of(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What the weights themselves say: in_channels, num_classes, base, depth (missing keys skipped).

    Read from the first conv ``inc.double_conv.0.weight`` (base, in_channels, k, k), the last
    ``outc.conv.weight`` (num_classes, base, 1, 1) and the number of ``downs.<i>`` blocks.
    """
    found: dict[str, Any] = {}
    first, last = state.get("inc.double_conv.0.weight"), state.get("outc.conv.weight")
    if first is not None and first.dim() == 4:
        found.update(base=first.shape[0], in_channels=first.shape[1], kernel_size=first.shape[2])
    if last is not None and last.dim() == 4:
        found["num_classes"] = last.shape[0]
    downs = {key.split(".")[1] for key in state if key.startswith("downs.")}
    if downs:
        found["depth"] = len(downs)
    return found


def check_weights_match(config: dict[str, Any], ckpt: dict[str, Any],
                        name: str = "the checkpoint") -> None:
    """Raise a CheckpointError when ``config`` or ``ckpt["data"]`` disagrees with the weights."""
    weights = architecture_of(ckpt["model_state"])
    data = ckpt.get("data") or {}
    said = dict(config)
    if data.get("image_mode") in ("L", "RGB"):
        said["image_mode channels"] = 1 if data["image_mode"] == "L" else 3
        weights["image_mode channels"] = weights.get("in_channels")
    if "num_classes" in data:
        said["data num_classes"] = data["num_classes"]
        weights["data num_classes"] = weights.get("num_classes")
    wrong = [f"{key} {said[key]!r} (weights: {weights[key]!r})" for key in weights
             if key in said and weights[key] is not None and said[key] != weights[key]]
    if wrong:
        raise CheckpointError(
            f"{name} disagrees with itself: its settings say " + ", ".join(wrong) + ". The "
            "settings and the weights come from different models (a hand-edited or merged "
            "file); segkit will not guess which one is right. Use the run's original file.")
