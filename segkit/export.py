"""Export a trained U-Net for deployment, and check the export gives the same output.

An exported model is a file that runs the network **without its Python class**: a server
or an app loads it with PyTorch alone, without segkit. Two formats (lesson 07):

- ``.pt2``: ``torch.export`` (PyTorch's current way). It records the exact operations the
  model runs for an example input, as a graph; ``torch.export.load(path).module()`` runs it.
- ``.ts`` (TorchScript): ``torch.jit.trace`` runs the model once on the example and records
  the operations; ``torch.jit.load(path)`` runs it, also from C++ (LibTorch).
  ``torch.jit.script`` (which compiles the Python code instead) also works on segkit's
  UNet: its forward skips the student-friendly input checks when scripted
  (``torch.jit.is_scripting()``), and a scripted model keeps the padding logic for every
  input size. Tracing prints ``TracerWarning``\\ s for every ``if`` on a shape (the input checks of ``UNet``);
  they are expected and silenced here.

Both record the model **for the example's shape**: export with the shape prediction uses,
(1, C, H, W) at the training size (``segkit.predict.prepare_image`` resizes every image to
it). An ``.onnx`` file (for ONNX Runtime, TensorRT, browsers) needs the optional packages
``onnx`` and ``onnxruntime``, which are not segkit dependencies: see :func:`onnx_available`.

Always verify an export: run the original and the exported model on the same input and
compare (:func:`max_abs_difference`, :func:`verify_export`). Float32 outputs of the same
operations agree to about 1e-6; a larger difference means the export is not the model
(e.g. exported in train mode, so BatchNorm used the batch's statistics).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from segkit.errors import SegkitError

__all__ = ["ExportError", "export_model", "load_exported", "max_abs_difference",
           "verify_export", "onnx_available", "export_onnx", "onnx_max_abs_difference"]

#: File suffix -> format written by :func:`export_model`.
FORMATS = {".pt2": "torch.export", ".ts": "torchscript"}


class ExportError(SegkitError):
    """An export failed, or the exported model does not give the model's output."""


def _format_of(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise ExportError(f"cannot tell the export format from the file name {path.name!r}: "
                          f"use the suffix .pt2 (torch.export) or .ts (TorchScript); "
                          "ONNX files are written by export_onnx")
    return FORMATS[path.suffix]


def export_model(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` in eval mode for inputs shaped like ``example`` and save it to ``path``.

    Args:
        model: e.g. a ``UNet``; it is put in eval mode for the export (BatchNorm then uses
            its running statistics, as in prediction) and its mode is restored afterwards.
        example: an input, (1, C, H, W) float32 at the training size, on the model's device.
        path: ``*.pt2`` for ``torch.export``, ``*.ts`` for TorchScript (``torch.jit.trace``).

    Returns: the path written.
    """
    path = Path(path)
    kind = _format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if kind == "torch.export":
                program = torch.export.export(model, (example,))
                torch.export.save(program, path)
            else:
                with warnings.catch_warnings():
                    # TracerWarning: an `if` on a shape is recorded as a constant (expected:
                    # the export is for one input shape); FutureWarning: jit is deprecated.
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    traced = torch.jit.trace(model, example)
                    torch.jit.save(traced, str(path))
    finally:
        model.train(was_training)
    return path


def load_exported(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Load a ``.pt2`` or ``.ts`` export; returns a callable: (1, C, H, W) -> logits.

    Needs PyTorch only, not segkit's ``UNet`` class.
    """
    path = Path(path)
    kind = _format_of(path)
    if not path.is_file():
        raise ExportError(f"exported model not found: {path}")
    if kind == "torch.export":
        return torch.export.load(path).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def max_abs_difference(model: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor],
                       x: torch.Tensor) -> float:
    """Largest |model(x) - exported(x)| over all logits, as a float (model in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float((model(x) - exported(x)).abs().max())
    finally:
        model.train(was_training)


def verify_export(model: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor],
                  x: torch.Tensor, tol: float = 1e-4) -> float:
    """:func:`max_abs_difference`, raising :class:`ExportError` when it exceeds ``tol``."""
    diff = max_abs_difference(model, exported, x)
    if not diff <= tol:  # also catches NaN
        raise ExportError(
            f"the exported model's logits differ from the model's by up to {diff:.3g} "
            f"(allowed {tol:g}) on an input of shape {tuple(x.shape)}. Was the model exported "
            "in train mode (BatchNorm statistics), or changed after the export?")
    return diff


# --------------------------------------------------------------------------- ONNX (optional)


def onnx_available() -> bool:
    """True when the optional packages ``onnx`` and ``onnxruntime`` are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _need_onnx() -> None:
    if not onnx_available():
        raise ExportError("ONNX export needs the packages onnx and onnxruntime, which segkit "
                          "does not install: `pip install onnx onnxruntime`")


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Write ``model`` (eval mode, inputs shaped like ``example``) as an ONNX file."""
    _need_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings and deprecation notes, as above
            torch.onnx.export(model, (example,), str(path), input_names=["image"],
                              output_names=["logits"], dynamo=False)
    finally:
        model.train(was_training)
    return path


def onnx_max_abs_difference(model: nn.Module, path: str | Path, x: torch.Tensor) -> float:
    """Largest |model(x) - ONNX Runtime's output| for the ONNX file at ``path``."""
    _need_onnx()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": x.detach().cpu().numpy()})
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(x).cpu()
    finally:
        model.train(was_training)
    return float((expected - torch.from_numpy(logits)).abs().max())
