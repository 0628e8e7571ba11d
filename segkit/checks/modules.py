"""A student's ``nn.Module`` as plain data: its layers, their weights, what ran in what order.

The checks of lesson 02 (and of other module exercises) ask a student's block questions in
the student's kernel and judge the answers elsewhere, against segkit's block. "Known
weights" make outputs comparable: ``ask`` gives the student's convolutions, transposed
convolutions and BatchNorms random weights (and BatchNorm statistics) **in the order its
``forward`` runs them**, reports them with :func:`weights_of`, and reports the output; the
judge copies the same weights into segkit's block, layer by layer in segkit's run order
(:func:`load_weights`), and compares the outputs. Attribute names and the order of
``__init__`` never matter, only what runs.

:func:`describe_module` also finds layers a block keeps in a plain Python list, tuple or
dict: PyTorch does not register those (no parameters, not moved by ``.to()``, not in the
``state_dict``), a mistake with its own hint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["LAYERS", "describe_layer", "describe_module", "layers_of", "load_weights",
           "pairable", "randomize", "run_order", "unregistered", "weights_of"]

LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)


def layers_of(module: nn.Module) -> list[nn.Module]:
    """The convolution, transposed convolution and BatchNorm layers of ``module``, in the
    order they were registered."""
    return [m for m in module.modules() if isinstance(m, LAYERS)]


def describe_layer(layer: nn.Module) -> dict[str, Any]:
    """A layer's kind and configuration as plain data."""
    if isinstance(layer, nn.BatchNorm2d):
        return {"kind": "BatchNorm2d", "features": int(layer.num_features),
                "eps": float(layer.eps), "affine": bool(layer.affine),
                "running": layer.running_mean is not None,
                "params": sum(p.numel() for p in layer.parameters())}
    padding = layer.padding if isinstance(layer.padding, str) else [int(p) for p in layer.padding]
    kind = "ConvTranspose2d" if isinstance(layer, nn.ConvTranspose2d) else "Conv2d"
    return {"kind": kind,
            "in": int(layer.in_channels), "out": int(layer.out_channels),
            "kernel": [int(k) for k in layer.kernel_size], "stride": [int(s) for s in layer.stride],
            "padding": padding, "groups": int(layer.groups), "bias": layer.bias is not None,
            "params": sum(p.numel() for p in layer.parameters())}


def unregistered(module: nn.Module, limit: int = 20) -> list[str]:
    """Attribute paths where ``module`` keeps layers in a plain list, tuple or dict
    ('self.layers', 'self.ups[0].convs'): PyTorch does not register them."""
    registered = {id(m) for m in module.modules()}
    found = []
    for path, sub in module.named_modules():
        for name, value in vars(sub).items():
            items = value.values() if isinstance(value, dict) else value \
                if isinstance(value, (list, tuple)) else ()
            if not name.startswith("_") and any(isinstance(v, nn.Module) and id(v) not in registered
                                                for v in items):
                found.append(f"self.{path + '.' if path else ''}{name}")
                if len(found) >= limit:
                    return found
    return found


def describe_module(module: Any) -> dict[str, Any]:
    """What a built block is: an nn.Module or not, its layers, parameters, unregistered
    layers."""
    if not isinstance(module, nn.Module):
        return {"module": False, "type": type(module).__name__}
    return {"module": True, "type": type(module).__name__,
            "layers": [describe_layer(m) for m in layers_of(module)],
            "params": int(sum(p.numel() for p in module.parameters())),
            "unregistered": unregistered(module)}


def run_order(module: nn.Module, *inputs: torch.Tensor) -> list[int] | None:
    """Indices (into :func:`layers_of`) of the layers ``forward`` runs, in that order (eval
    mode, no gradients); None when a layer runs twice or never. Exceptions go on."""
    layers = layers_of(module)
    position = {id(m): i for i, m in enumerate(layers)}
    seen: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(position[id(m)]))
             for m in layers]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    if len(set(seen)) != len(seen) or len(seen) != len(layers):
        return None
    return seen


def randomize(layers: list[nn.Module], generator: torch.Generator) -> None:
    """Random weights and BatchNorm statistics, layer after layer in the given order."""
    def normal(t: torch.Tensor, std: float) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std)

    def uniform(t: torch.Tensor, low: float, high: float) -> None:
        t.copy_(low + (high - low) * torch.rand(t.shape, generator=generator))

    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.BatchNorm2d):
                if m.weight is not None:
                    uniform(m.weight, 0.5, 1.5)
                    normal(m.bias, 0.2)
                if m.running_mean is not None:
                    normal(m.running_mean, 0.2)
                    uniform(m.running_var, 0.5, 1.5)
                continue
            if isinstance(m, nn.ConvTranspose2d):  # weight (in, out, k, k)
                fan_in = m.weight.shape[0] * m.weight[0, 0].numel()
            else:                                  # weight (out, in, k, k)
                fan_in = m.weight[0].numel()
            normal(m.weight, (2.0 / max(fan_in, 1)) ** 0.5)
            if m.bias is not None:
                normal(m.bias, 0.1)


def _array(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().float().cpu().numpy().copy()


def weights_of(layers: list[nn.Module]) -> list[dict[str, Any]]:
    """The weights of ``layers`` as arrays (``weight``, ``bias``, ``running_mean``,
    ``running_var``; None where a layer has none)."""
    return [{"weight": _array(m.weight), "bias": _array(m.bias),
             "running_mean": _array(getattr(m, "running_mean", None)),
             "running_var": _array(getattr(m, "running_var", None))} for m in layers]


def pairable(desc: dict[str, Any], weights: dict[str, Any], layer: nn.Module) -> bool:
    """Can the student's layer (``desc``, ``weights``) stand for segkit's ``layer``?"""
    if desc["kind"] != type(layer).__name__ or weights["weight"] is None:
        return False
    if tuple(np.shape(weights["weight"])) != tuple(layer.weight.shape):
        return False
    if isinstance(layer, nn.BatchNorm2d):
        return weights["running_mean"] is not None and abs(desc["eps"] - layer.eps) <= 1e-12
    same_padding = desc["padding"] == [int(p) for p in layer.padding] or (
        desc["padding"] == "same" and all(2 * p + 1 == k for p, k in
                                           zip(layer.padding, layer.kernel_size)))
    return (desc["stride"] == [int(s) for s in layer.stride] and same_padding
            and (layer.bias is None) == (not desc["bias"]))


def load_weights(layers: list[nn.Module], descs: list[dict[str, Any]],
                 weights: list[dict[str, Any]]) -> bool:
    """Copy the student's weights into segkit's ``layers`` (both in run order); False (and
    nothing copied) when the layers do not pair one to one."""
    if len(layers) != len(descs) or len(descs) != len(weights):
        return False
    if not all(pairable(d, w, m) for d, w, m in zip(descs, weights, layers)):
        return False
    with torch.no_grad():
        for m, w in zip(layers, weights):
            m.weight.copy_(torch.from_numpy(np.asarray(w["weight"], np.float32)))
            if m.bias is not None:
                m.bias.copy_(torch.from_numpy(np.asarray(w["bias"], np.float32)))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.from_numpy(np.asarray(w["running_mean"], np.float32)))
                m.running_var.copy_(torch.from_numpy(np.asarray(w["running_var"], np.float32)))
    return True
