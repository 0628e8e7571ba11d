"""CSV files a spreadsheet opens safely: every cell escaped against formula injection.

    with open(path, "x", newline="", encoding="utf-8") as f:
        write = csv_writer(f)
        write(["student", "points"])       # each cell through csv_cell

A value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their
full-width forms) is what Excel, LibreOffice and Google Sheets take for a formula: a
file named ``=HYPERLINK(...)`` would run in the instructor's spreadsheet. Such a value
gets a leading ``'`` (OWASP's advice); numbers stay numbers.
"""

from __future__ import annotations

import csv

__all__ = ["csv_cell", "csv_writer"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value):
    """``value`` safe for a spreadsheet (see the module's docstring)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_writer(f):
    """A function that writes one row of escaped cells (:func:`csv_cell`) to ``f``."""
    writer = csv.writer(f)
    return lambda row: writer.writerow([csv_cell(v) for v in row])
