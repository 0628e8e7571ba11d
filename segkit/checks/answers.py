"""Answers as bytes, and back, without pickle: what crosses from the student's kernel to
the process that judges them.

An exercise check asks the student's code questions (``Check.ask``) and gets back plain
data: ``None``, ``bool``, ``int``, ``float``, ``str``, lists, tuples and dicts of these,
and NumPy arrays of numbers. :func:`dump` turns such a value into bytes; :func:`load`
turns bytes into the same value, refusing anything else::

    blob = answers.dump({"value": 0.5, "mask": np.zeros((2, 3), np.int64)})
    answers.load(blob, max_bytes=2**20)   # -> the same dict

The layout: the 8 bytes ``SEGKIT-A``, a version byte, then length-prefixed parts (8-byte
little-endian lengths): one JSON document for the structure, then each array as the raw
bytes of a ``.npy`` file. JSON holds the arrays as ``{"$array": i}`` (the i-th part) and
what JSON cannot say on its own as one-key objects: ``{"$tuple": [...]}``, ``{"$float":
"nan"}`` (NaN and the infinities), ``{"$dict": [[key, value], ...]}`` (a dict whose keys
are not all strings). Arrays are read with ``numpy.load(..., allow_pickle=False)``: an
object array, or anything that is not a number array, is refused.

Nothing here executes code found in the bytes: a hostile kernel can send wrong answers,
never a program. ``max_bytes`` caps the input, and the arrays' declared sizes are summed
against the same cap before any of them is read.
"""

from __future__ import annotations

import io
import json
import math
import struct
from typing import Any

import numpy as np

__all__ = ["AnswersError", "MAX_BYTES", "dump", "load"]

MAGIC = b"SEGKIT-A"
VERSION = 1
#: the default cap for one exercise's answers (dump refuses more, load refuses more)
MAX_BYTES = 64 * 2**20
_MAX_DEPTH = 40
_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex: numbers only
_LENGTH = struct.Struct("<Q")


class AnswersError(ValueError):
    """The answers cannot be written or read: not plain data, too large, or not answers."""


# --------------------------------------------------------------------------- dump


def _encode(value: Any, arrays: list[np.ndarray], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise AnswersError(f"answers nested more than {_MAX_DEPTH} deep")
    if isinstance(value, np.generic):  # a NumPy scalar keeps its dtype as a 0-d array
        value = np.asarray(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"$float": repr(float(value))}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _KINDS or value.dtype.hasobject:
            raise AnswersError(f"an array of dtype {value.dtype} is not plain data")
        arrays.append(value)
        return {"$array": len(arrays) - 1}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, depth + 1) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v, arrays, depth + 1) for k, v in value.items()}
        return {"$dict": [[_encode(k, arrays, depth + 1), _encode(v, arrays, depth + 1)]
                          for k, v in value.items()]}
    raise AnswersError(f"a {type(value).__name__} is not plain data (answers hold None, "
                       "bool, int, float, str, lists, tuples, dicts and number arrays)")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def dump(answers: Any, max_bytes: int = MAX_BYTES) -> bytes:
    """``answers`` (plain data, see the module's docstring) as bytes.

    Raises :class:`AnswersError` for anything that is not plain data, or when the bytes
    would exceed ``max_bytes``.
    """
    arrays: list[np.ndarray] = []
    document = json.dumps(_encode(answers, arrays, 0), allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
    parts = [document] + [_npy(a) for a in arrays]
    size = len(MAGIC) + 1 + sum(_LENGTH.size + len(p) for p in parts)
    if size > max_bytes:
        raise AnswersError(f"the answers take {size:,} bytes, more than the cap of "
                           f"{max_bytes:,}")
    out = bytearray(MAGIC)
    out.append(VERSION)
    for part in parts:
        out += _LENGTH.pack(len(part)) + part
    return bytes(out)


# --------------------------------------------------------------------------- load


def _parts(blob: bytes) -> list[memoryview]:
    if blob[:len(MAGIC)] != MAGIC or len(blob) <= len(MAGIC):
        raise AnswersError("these bytes are not segkit answers (no SEGKIT-A header)")
    if blob[len(MAGIC)] != VERSION:
        raise AnswersError(f"answers of version {blob[len(MAGIC)]}, expected {VERSION}")
    view, at, parts = memoryview(blob), len(MAGIC) + 1, []
    while at < len(blob):
        if at + _LENGTH.size > len(blob):
            raise AnswersError("the answers end inside a length")
        (length,) = _LENGTH.unpack_from(blob, at)
        at += _LENGTH.size
        if length > len(blob) - at:
            raise AnswersError("a part of the answers is longer than the bytes left")
        parts.append(view[at:at + length])
        at += length
    if not parts:
        raise AnswersError("the answers hold no structure")
    return parts


def _read_array(part: memoryview, budget: list[int]) -> np.ndarray:
    buffer = io.BytesIO(part)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(buffer)
        read_header = {(1, 0): fmt.read_array_header_1_0,
                       (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy version {version}")
        shape, _, dtype = read_header(buffer)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise AnswersError(f"an array of the answers has a bad header: {exc}") from None
    if dtype.hasobject or dtype.kind not in _KINDS:
        raise AnswersError(f"an array of dtype {dtype} is not plain data")
    size = dtype.itemsize * math.prod(shape)
    budget[0] -= size
    if budget[0] < 0:
        raise AnswersError("the answers' arrays are larger than the cap")
    try:
        return np.load(io.BytesIO(part), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise AnswersError(f"an array of the answers cannot be read: {exc}") from None


def _decode(value: Any, arrays: list[np.ndarray], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise AnswersError(f"answers nested more than {_MAX_DEPTH} deep")
    if isinstance(value, list):
        return [_decode(v, arrays, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, inner), = value.items()
        if key == "$array":
            if not isinstance(inner, int) or isinstance(inner, bool) \
                    or not 0 <= inner < len(arrays):
                raise AnswersError(f"the answers name an array {inner!r} they do not hold")
            return arrays[inner]
        if key == "$tuple" and isinstance(inner, list):
            return tuple(_decode(v, arrays, depth + 1) for v in inner)
        if key == "$float" and inner in ("nan", "inf", "-inf"):
            return float(inner)
        if key == "$dict" and isinstance(inner, list):
            out = {}
            for pair in inner:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise AnswersError("a $dict entry of the answers is not a pair")
                k = _decode(pair[0], arrays, depth + 1)
                if isinstance(k, (list, dict, np.ndarray)):
                    raise AnswersError("a dict key of the answers is not hashable")
                out[k] = _decode(pair[1], arrays, depth + 1)
            return out
    if any(k.startswith("$") for k in value):
        raise AnswersError(f"unknown marker in the answers: {sorted(value)[0]!r}")
    return {k: _decode(v, arrays, depth + 1) for k, v in value.items()}


def load(blob: bytes, max_bytes: int = MAX_BYTES) -> Any:
    """The answers :func:`dump` wrote into ``blob``.

    Raises :class:`AnswersError` when ``blob`` is longer than ``max_bytes``, is not
    answers, or holds anything but plain data (no pickle is ever read).
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise AnswersError(f"answers are bytes, not a {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) > max_bytes:
        raise AnswersError(f"the answers take {len(blob):,} bytes, more than the cap of "
                           f"{max_bytes:,}")
    document, *array_parts = _parts(blob)
    budget = [max_bytes]
    arrays = [_read_array(part, budget) for part in array_parts]
    try:
        structure = json.loads(bytes(document).decode("utf-8"),
                               parse_constant=lambda name: _refuse_constant(name))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AnswersError(f"the answers' structure is not JSON: {exc}") from None
    return _decode(structure, arrays, 0)


def _refuse_constant(name: str) -> None:
    raise AnswersError(f"bare {name} in the answers (NaN and infinities are written "
                       "as {\"$float\": ...})")
