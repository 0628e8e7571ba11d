"""What a student's code returned, as plain data the judge can read.

``ask`` (in the student's kernel) turns what the student's code returns into a plain
description with :func:`describe`; ``judge`` (anywhere) reads it with :func:`number`,
:func:`array` and :func:`shown`. A description is a dict with a ``kind``::

    describe(0.5)                      -> {"kind": "float", "type": "float", "value": 0.5}
    describe(torch.tensor([1, 2]))     -> {"kind": "tensor", "dtype": "int64", "shape": [2],
                                           "values": array([1, 2]), "grad_fn": None, ...}
    describe(np.zeros((2, 3), bool))   -> {"kind": "ndarray", "dtype": "bool", ...}
    describe(None)                     -> {"kind": "none", "type": "NoneType"}
    describe([1, "a"])                 -> {"kind": "list", "items": [{...}, {...}]}

Kinds: none, bool, int, float, str, path, list, tuple, dict, tensor, ndarray,
numpy-scalar, iterator, callable, other. Big tensors and arrays keep their shape and
dtype but not their values (``"values": None``).

:func:`call` runs the student's code and returns ``(result, None)`` or ``(None, error
record)``, for the questions whose error is itself a diagnosis (torch.cat refusing two
sizes in ``Up``, say); other errors simply end ``ask``, which records them.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import numpy as np

from segkit.checks.core import RAISED, error_record

__all__ = ["array", "call", "describe", "is_number", "number", "python", "shown", "tensor"]

MAX_VALUES = 1 << 20  # values kept per tensor or array
MAX_ITEMS = 200       # items kept per list, tuple or dict


def _text(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a student's __repr__ may raise
        text = f"<{type(value).__name__}>"
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _tensor(value: Any) -> dict[str, Any]:
    import torch

    t = value.detach()
    dtype = str(t.dtype).replace("torch.", "")
    out: dict[str, Any] = {
        "kind": "tensor", "type": type(value).__name__, "dtype": dtype,
        "shape": [int(n) for n in t.shape], "device": t.device.type,
        "requires_grad": bool(value.requires_grad),
        "grad_fn": type(value.grad_fn).__name__ if value.grad_fn is not None else None,
        "stride": [int(n) for n in t.stride()] if t.layout == torch.strided else None,
        "channels_last": bool(t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
                              and not t.is_contiguous()),
        "values": None,
    }
    if t.numel() <= MAX_VALUES and t.layout == torch.strided and t.device.type != "meta" \
            and not t.is_complex():
        cpu = t.cpu().contiguous()
        try:
            out["values"] = cpu.numpy().copy()
        except TypeError:  # bfloat16, float8, uint32...: NumPy has no such dtype
            wider = cpu.float() if cpu.is_floating_point() else cpu.to(torch.int64)
            out["values"] = wider.numpy().copy()
    return out


def _ndarray(value: np.ndarray) -> dict[str, Any]:
    out = {"kind": "ndarray", "type": type(value).__name__, "dtype": str(value.dtype),
           "shape": [int(n) for n in value.shape], "values": None}
    if value.dtype.kind in "biuf" and not value.dtype.hasobject and value.size <= MAX_VALUES:
        out["values"] = np.array(value, copy=True)
    return out


def describe(value: Any, depth: int = 0) -> dict[str, Any]:
    """A plain description of ``value`` (see the module's docstring). Never raises."""
    try:
        return _describe(value, depth)
    except Exception:  # noqa: BLE001 - a student's object may break anything we touch
        return {"kind": "other", "type": type(value).__name__, "repr": _text(value)}


def _describe(value: Any, depth: int) -> dict[str, Any]:
    kind_of = type(value).__name__
    if value is None:
        return {"kind": "none", "type": "NoneType"}
    if isinstance(value, (bool, np.bool_)):
        return {"kind": "bool", "type": kind_of, "value": bool(value)}
    if hasattr(value, "detach") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return _tensor(value)
    if isinstance(value, np.ndarray):
        return _ndarray(value)
    if isinstance(value, np.generic):
        number_value = value.item() if value.dtype.kind in "biuf" else None
        return {"kind": "numpy-scalar", "type": kind_of, "dtype": str(value.dtype),
                "value": number_value}
    if isinstance(value, numbers.Integral):
        return {"kind": "int", "type": kind_of, "value": int(value)}
    if isinstance(value, numbers.Real):
        return {"kind": "float", "type": kind_of, "value": float(value)}
    if isinstance(value, str):
        return {"kind": "str", "type": kind_of, "value": value[:2000]}
    if isinstance(value, PurePath):
        return {"kind": "path", "type": kind_of, "value": str(value)}
    if depth < 6 and isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"kind": kind, "type": kind_of, "length": len(value),
                "items": [describe(v, depth + 1) for v in list(value)[:MAX_ITEMS]]}
    if depth < 6 and isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return {"kind": "dict", "type": kind_of, "length": len(value),
                "items": [[describe(k, depth + 1), describe(v, depth + 1)] for k, v in items]}
    if hasattr(value, "__next__"):
        return {"kind": "iterator", "type": kind_of, "repr": _text(value)}
    if callable(value):
        return {"kind": "callable", "type": kind_of, "repr": _text(value)}
    return {"kind": "other", "type": kind_of, "repr": _text(value)}


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, dict | None]:
    """``(fn(*args, **kwargs), None)``, or ``(None, error record)`` when it raised."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - recorded, judged on the other side
        return None, {RAISED: error_record(exc)}


def tensor(values: Any, dtype: Any = None) -> Any:
    """A fresh torch tensor from a case's array (the student may change it freely)."""
    import torch

    out = torch.from_numpy(np.array(values, copy=True))
    return out if dtype is None else out.to(dtype)


# --------------------------------------------------------------------------- judge side


def is_number(desc: dict[str, Any]) -> bool:
    """A Python or NumPy number, or a tensor / array holding exactly one number."""
    return number(desc) is not None


def number(desc: dict[str, Any]) -> float | None:
    """The one number ``desc`` holds (a bool is not a number), else None."""
    kind = desc.get("kind")
    if kind in ("int", "float"):
        return float(desc["value"])
    if kind == "numpy-scalar" and desc.get("value") is not None \
            and not str(desc.get("dtype")).startswith("bool"):
        return float(desc["value"])
    if kind in ("tensor", "ndarray") and desc.get("values") is not None \
            and math.prod(desc["shape"]) == 1 and desc["dtype"] != "bool":
        return float(np.asarray(desc["values"]).reshape(-1)[0])
    return None


def array(desc: dict[str, Any]) -> np.ndarray | None:
    """The values of a described tensor or array, or of a list of numbers; else None."""
    kind = desc.get("kind")
    if kind in ("tensor", "ndarray"):
        return None if desc.get("values") is None else np.asarray(desc["values"])
    if kind in ("list", "tuple") and len(desc["items"]) == desc["length"]:
        values = [number(item) for item in desc["items"]]
        if all(v is not None for v in values):
            return np.asarray(values, dtype=np.float64)
    if kind in ("int", "float", "numpy-scalar"):
        value = number(desc)
        return None if value is None else np.asarray(value)
    return None


def shown(desc: dict[str, Any]) -> str:
    """A short, deterministic text for a described value, for a message."""
    kind = desc.get("kind")
    if kind == "none":
        return "None"
    if kind == "bool":
        return repr(desc["value"])
    if kind in ("int", "float"):
        value = desc["value"]
        return f"{value:.6g}" if kind == "float" else str(value)
    if kind == "numpy-scalar":
        return f"{desc['type']}({desc['value']})"
    if kind in ("tensor", "ndarray"):
        name = "tensor" if kind == "tensor" else "array"
        shape = tuple(desc["shape"])
        if math.prod(shape) == 1 and desc.get("values") is not None:
            value = np.asarray(desc["values"]).reshape(-1)[0]
            value = f"{float(value):.6g}" if desc["dtype"] != "bool" else str(bool(value))
            grad = ", requires_grad=True" if desc.get("requires_grad") else ""
            return f"{name}({value}, dtype={desc['dtype']}{grad})"
        return f"a {name} of shape {shape} and dtype {desc['dtype']}"
    if kind in ("str", "path"):
        return _text(desc["value"])
    if kind in ("list", "tuple"):
        inner = ", ".join(shown(item) for item in desc["items"][:4])
        more = ", ..." if desc["length"] > 4 else ""
        return f"[{inner}{more}]" if kind == "list" else f"({inner}{more})"
    if kind == "dict":
        inner = ", ".join(f"{shown(k)}: {shown(v)}" for k, v in desc["items"][:4])
        return "{" + inner + (", ..." if desc["length"] > 4 else "") + "}"
    return desc.get("repr") or f"a {desc.get('type')}"


_MISSING = object()


def python(desc: dict[str, Any], default: Any = _MISSING) -> Any:
    """The plain Python value a description stands for: None, bool, int, float, str (a
    path as its text), lists, tuples, dicts, NumPy arrays (for tensors and arrays, their
    values). Anything else gives ``default``, or raises ValueError without one."""
    kind = desc.get("kind")
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str", "path"):
        return desc["value"]
    if kind == "numpy-scalar" and desc.get("value") is not None:
        return desc["value"]
    if kind in ("tensor", "ndarray") and desc.get("values") is not None:
        return np.asarray(desc["values"])
    if kind in ("list", "tuple") and desc["length"] == len(desc["items"]):
        items = [python(item, default) for item in desc["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict" and desc["length"] == len(desc["items"]):
        out = {}
        for k, v in desc["items"]:
            key = python(k, default)
            out[key if not isinstance(key, (list, np.ndarray)) else repr(key)] = python(v, default)
        return out
    if default is _MISSING:
        raise ValueError(f"no plain value for {shown(desc)}")
    return default
