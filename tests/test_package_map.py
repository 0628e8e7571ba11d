"""segkit's docstring maps every module to the lessons that use it."""

from __future__ import annotations

import re
from pathlib import Path

import segkit

PACKAGE = Path(segkit.__file__).parent


def test_every_module_is_on_the_map():
    listed = set(re.findall(r"``segkit\.(\w+)``", segkit.__doc__))
    modules = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert modules | packages == listed


def test_each_entry_says_where_it_is_used():
    entries = re.split(r"\n- ", segkit.__doc__.split("\n\n", 2)[2])
    for entry in entries:
        assert re.search(r"\[(\d\d[^\]]*|all|tools[^\]]*|via \w+)\]", entry), entry
