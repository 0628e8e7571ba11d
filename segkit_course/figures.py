"""Trained figures in stored outputs: compared within a tolerance declared in the cell.

A solution notebook's stored outputs are the reference CI compares a fresh run against
(nbval). Most outputs are exact: shapes, dtypes, parameter counts, dataset counts, check
results, error messages. Figures that come out of training or of long floating-point
reductions are not: another torch build, CPU or thread count changes their low bits,
and training amplifies that into the printed digits (lesson 03's val Dice moved from
0.9458 to 0.9608 between two torch builds). Such a cell declares its tolerance in its
metadata, next to the outputs it covers::

    {"segkit": {"tolerance": {"abs": 0.03}}}              # every decimal within 0.03
    {"segkit": {"tolerance": {"abs": 0.02, "rel": 0.5}}}  # within 0.02 or within 50 %
    {"segkit": {"tolerance": {"abs": 0.03, "integers": 2}}}
                                                          # integers too, within 2
    {"segkit": {"tolerance": {"abs": 0.02, "lines": {"chosen threshold": {"abs": 0.05}}}}}
                                                          # one figure's own tolerance

A cell with a tolerance is compared here instead of by nbval's exact comparison: its
text with every number taken out (the *skeleton*) must be identical, and each number
must lie within the tolerance of the stored one. A decimal is any number written with a
point or an exponent (``0.9458``, ``3e-3``); integers (epochs, pixel counts) stay exact
unless the tolerance gives ``integers``. Cells without a tolerance are nbval's, exactly.

The measured spread behind every tolerance, and how to measure it again, is in
``docs/TOLERANCES.md`` (``benchmarks/figure_spread.py``).

Used as a pytest plugin next to nbval::

    pytest --nbval -p segkit_course.figures solutions/03_training.ipynb
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbformat import NotebookNode

# A number as printed: 0.9458, -222.007, 1.00e-03, 3e-3, 245760, 31,037,698.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
                    r"(?![\w])")
PLACEHOLDER = "#"


@dataclass(frozen=True)
class Tolerance:
    """How far a fresh figure may lie from the stored one.

    A decimal passes when ``|fresh - stored| <= abs`` or ``<= rel * |stored|``; an
    integer must be equal unless ``integers`` is set, then within ``integers``.
    """

    abs: float = 0.0
    rel: float = 0.0
    integers: int = 0

    def allows(self, stored: float, fresh: float, is_integer: bool) -> bool:
        difference = abs(fresh - stored)
        if is_integer:
            return difference <= self.integers
        # 1e-12: the float error of the subtraction itself (0.60 - 0.55 > 0.05)
        return difference <= max(self.abs, self.rel * abs(stored)) + 1e-12

    def describe(self) -> str:
        parts = []
        if self.abs:
            parts.append(f"±{self.abs:g}")
        if self.rel:
            parts.append(f"±{self.rel:.0%}")
        return " or ".join(parts) or "exact"


@dataclass(frozen=True)
class CellTolerance:
    """A cell's tolerance: ``default`` for every line, ``lines`` for lines holding a label.

    ``lines`` maps a piece of text (the figure's label, e.g. ``"chosen threshold"``) to
    the tolerance of the lines that contain it; when several labels are in one line, the
    longest wins ("mIoU no bg" over "mIoU").
    """

    default: Tolerance
    lines: tuple[tuple[str, Tolerance], ...] = ()

    def for_line(self, line: str) -> Tolerance:
        found = [(len(label), tolerance) for label, tolerance in self.lines if label in line]
        return max(found, key=lambda pair: pair[0])[1] if found else self.default


def _tolerance(declared, where: str, allowed=("abs", "rel", "integers")) -> Tolerance:
    """A Tolerance from ``{"abs": 0.03, "rel": 0.1, "integers": 2}`` (any of the keys)."""
    if not isinstance(declared, dict):
        raise ValueError(f"{where}: a tolerance is a mapping such as {{\"abs\": 0.03}}, "
                         f"not {declared!r}")
    unknown = set(declared) - set(allowed)
    if unknown:
        raise ValueError(f"{where}: unknown tolerance key(s) {sorted(unknown)}; "
                         f"use {', '.join(allowed)}")
    for key in ("abs", "rel", "integers"):
        value = declared.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{where}: tolerance {key} must be a number >= 0, not {value!r}")
    return Tolerance(float(declared.get("abs", 0)), float(declared.get("rel", 0)),
                     int(declared.get("integers", 0)))


def cell_tolerance(cell: NotebookNode) -> CellTolerance | None:
    """The tolerance a cell declares in ``metadata.segkit.tolerance``, or None.

    ``{"abs": 0.02, "lines": {"chosen threshold": {"abs": 0.05}}}``: every figure within
    0.02, except on lines that contain "chosen threshold". Raises ValueError naming the
    cell when the declaration is malformed.
    """
    declared = cell.get("metadata", {}).get("segkit", {}).get("tolerance")
    if declared is None:
        return None
    where = f"cell {cell.get('id', '?')}"
    default = _tolerance(declared, where, ("abs", "rel", "integers", "lines"))
    lines = declared.get("lines", {})
    if not isinstance(lines, dict):
        raise ValueError(f"{where}: tolerance lines must map a label to a tolerance")
    return CellTolerance(default, tuple((label, _tolerance(value, f"{where}, {label!r}"))
                                        for label, value in lines.items()))


# --------------------------------------------------------------------------- text


def printed_value(token: str) -> tuple[float, bool]:
    """A printed number as (value, is_integer): "31,037,698" -> (31037698.0, True)."""
    plain = token.replace(",", "")
    is_integer = not any(c in plain for c in ".eE")
    return float(plain), is_integer


def split_numbers(text: str) -> tuple[str, list[str]]:
    """``text`` with every number replaced by ``#``, and the numbers in order.

    >>> split_numbers("epoch 3/5  val Dice 0.9147")
    ('epoch #/#  val Dice #', ['3', '5', '0.9147'])
    """
    return NUMBER.sub(PLACEHOLDER, text), NUMBER.findall(text)


def compare_text(stored: str, fresh: str, tolerance: CellTolerance) -> list[str]:
    """What differs between two texts beyond the tolerance, one line per difference.

    The texts are compared line by line: each line's skeleton must be the same and each
    number within the tolerance. A difference names the stored line, the figure's
    stored and fresh values and the tolerance.
    """
    stored_lines, fresh_lines = stored.splitlines(), fresh.splitlines()
    problems = []
    if len(stored_lines) != len(fresh_lines):
        problems.append(f"{len(fresh_lines)} lines instead of the stored {len(stored_lines)}")
    for old, new in zip(stored_lines, fresh_lines):
        old_skeleton, old_numbers = split_numbers(old)
        new_skeleton, new_numbers = split_numbers(new)
        if old_skeleton != new_skeleton:
            problems.append(f"line changed: stored {old.strip()!r}, now {new.strip()!r}")
            continue
        line_tolerance = tolerance.for_line(old)
        for a, b in zip(old_numbers, new_numbers):
            (va, a_int), (vb, b_int) = printed_value(a), printed_value(b)
            if a_int != b_int or not line_tolerance.allows(va, vb, a_int and b_int):
                allowed = (f"±{line_tolerance.integers}" if a_int and b_int
                           else line_tolerance.describe())
                problems.append(f"{old.strip()!r}: {a} stored, {b} now "
                                f"(tolerance {allowed})")
    return problems


# --------------------------------------------------------------------------- outputs


def output_text(output: NotebookNode) -> tuple[str, str]:
    """(kind, text) of one output: the stream name or the text/plain of a result."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("name", "stdout"), output.get("text", "")
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/plain" in data:
            return "text/plain", data["text/plain"]
        return "+".join(sorted(data)), ""
    if kind == "error":
        return "error", f"{output.get('ename')}: {output.get('evalue')}"
    return str(kind), ""


def merged_outputs(outputs: list[NotebookNode]) -> list[tuple[str, str]]:
    """Outputs as (kind, text), consecutive streams of one name joined (as Jupyter shows)."""
    merged: list[tuple[str, str]] = []
    for output in outputs:
        kind, text = output_text(output)
        if output.get("output_type") == "stream" and merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def compare_outputs(stored: list[NotebookNode], fresh: list[NotebookNode],
                    tolerance: CellTolerance) -> list[str]:
    """Differences between a cell's stored and fresh outputs (empty when they agree).

    Each output is compared by its text form (a stream's text, a result's text/plain, an
    error's name and value) with :func:`compare_text`; images and HTML are not compared.
    The sanitizer of nbval is not applied here: keep paths and addresses out of such cells.
    """
    old, new = merged_outputs(stored), merged_outputs(fresh)
    old_kinds, new_kinds = [k for k, _ in old], [k for k, _ in new]
    if old_kinds != new_kinds:
        return [f"outputs {new_kinds} instead of the stored {old_kinds}"]
    problems = []
    for (kind, a), (_, b) in zip(old, new):
        problems += [f"[{kind}] {p}" for p in compare_text(a, b, tolerance)]
    return problems


# --------------------------------------------------------------------------- pytest plugin


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell")


def pytest_collection_modifyitems(session, config, items):
    """Cells with a tolerance are compared by this plugin, not exactly by nbval."""
    for item in items:
        if _is_nbval_cell(item) and cell_tolerance(item.cell) is not None:
            item.options["check"] = False
            item.segkit_tolerance = cell_tolerance(item.cell)


class FigureMismatch(AssertionError):
    """A figure of a cell with a tolerance lies outside it (or the text around it changed)."""


def mismatch_message(item, problems: list[str]) -> str:
    """The failure of an nbval item: the cell as Jupyter numbers it, its id, the problems."""
    cells = getattr(getattr(item, "parent", None), "nb", {"cells": []})["cells"]
    number = next((i + 1 for i, cell in enumerate(cells) if cell is item.cell), "?")
    return (f"cell {number} (id {item.cell.get('id', '?')}) differs from its stored "
            "outputs beyond its tolerance:\n  " + "\n  ".join(problems))


try:  # pytest is only needed when this module is used as a plugin
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item):
        """After nbval ran a cell with a tolerance, compare its figures."""
        result = yield  # re-raises when the cell itself failed
        tolerance = getattr(item, "segkit_tolerance", None)
        if tolerance is not None and item.test_outputs is not None:
            problems = compare_outputs(item.cell.get("outputs", []), item.test_outputs,
                                       tolerance)
            if problems:
                raise FigureMismatch(mismatch_message(item, problems))
        return result
