"""Answers cross from the student's kernel to the judge as plain data, never as a program."""

from __future__ import annotations

import io
import math
import pickle
import struct

import numpy as np
import pytest

from segkit.checks import answers
from segkit.checks.answers import AnswersError, dump, load


def test_plain_data_comes_back_the_same():
    value = {
        "none": None, "flag": True, "n": -3, "x": 0.25, "nan": math.nan, "inf": -math.inf,
        "text": "déjà vu ✅", "list": [1, [2.5, "a"]], "tuple": (1, (2, None)),
        "int_keys": {0: "a", 3: (1, 2), (1, "b"): None}, "dollar": {"$array": "not an array"},
        "arrays": [np.arange(6, dtype=np.int16).reshape(2, 3), np.zeros((0, 4), np.float32),
                   np.array([True, False]), np.float64(2.5), np.arange(12).reshape(3, 4).T],
    }
    back = load(dump(value))
    assert back["none"] is None and back["flag"] is True and back["n"] == -3
    assert back["x"] == 0.25 and math.isnan(back["nan"]) and back["inf"] == -math.inf
    assert back["text"] == "déjà vu ✅" and back["list"] == [1, [2.5, "a"]]
    assert back["tuple"] == (1, (2, None)) and isinstance(back["tuple"][1], tuple)
    assert back["int_keys"] == {0: "a", 3: (1, 2), (1, "b"): None}
    assert back["dollar"] == {"$array": "not an array"}
    for got, want in zip(back["arrays"], value["arrays"]):
        assert isinstance(got, np.ndarray) and got.dtype == np.asarray(want).dtype
        assert got.shape == np.asarray(want).shape and np.array_equal(got, want)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", np.array([object()]),
                                   np.array(["text"]), print])
def test_anything_but_plain_data_is_refused_when_written(value):
    with pytest.raises(AnswersError):
        dump({"answer": value})


def test_the_size_cap_holds_both_ways():
    big = {"a": np.zeros(1000, np.float64)}
    blob = dump(big)
    with pytest.raises(AnswersError, match="more than the cap"):
        dump(big, max_bytes=len(blob) - 1)
    with pytest.raises(AnswersError, match="more than the cap"):
        load(blob, max_bytes=len(blob) - 1)
    assert np.array_equal(load(blob, max_bytes=len(blob))["a"], big["a"])


def _frame(document: bytes, *arrays: bytes) -> bytes:
    out = bytearray(answers.MAGIC) + bytes([answers.VERSION])
    for part in (document, *arrays):
        out += struct.pack("<Q", len(part)) + part
    return bytes(out)


def _npy_header_claiming(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                   "shape": shape})
    return buffer.getvalue()


def test_hostile_bytes_are_refused_without_running_anything():
    pickled = pickle.dumps(np.array([object()], dtype=object))
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    cases = [
        pickled,                                                   # a pickle, no header
        b"SEGKIT-A",                                               # nothing after the header
        _frame(b'{"a": NaN}'),                                     # a bare NaN
        _frame(b'{"a": {"$array": 0}}'),                           # an array it does not hold
        _frame(b'{"a": {"$array": 0}}', buffer.getvalue()),        # an object (pickled) array
        _frame(b'{"a": {"$array": 0}}', _npy_header_claiming((10**9,))),  # a huge claim
        _frame(b"[" * 100_000 + b"]" * 100_000),                   # nested beyond reason
        _frame(b'{"$eval": "1"}'),                                 # an unknown marker
        _frame(b'{"a": 1}')[:-3],                                  # cut short
        _frame(b"\xff\xfe"),                                       # not UTF-8
    ]
    for blob in cases:
        with pytest.raises(AnswersError):
            load(blob, max_bytes=2**20)


def test_a_load_is_json_and_npy_only():
    """No pickle anywhere in the module: the bytes are JSON and .npy read with
    allow_pickle=False."""
    source = open(answers.__file__, encoding="utf-8").read()
    assert "import pickle" not in source and "allow_pickle=True" not in source
