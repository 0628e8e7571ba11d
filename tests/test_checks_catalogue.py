"""The mistake catalogue holds every mistake the checks name, and INSTRUCTORS.md shows it."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from segkit.checks import catalogue
from segkit.checks.catalogue import MISTAKES, SOURCES, hint_for
from segkit_course import mistakes

ROOT = Path(__file__).resolve().parents[1]
CHECKS = sorted((ROOT / "segkit" / "checks").glob("lesson[0-9][0-9].py")) + [
    ROOT / "segkit" / "checks" / "core.py"]


def _literal_ids() -> set[str]:
    """Every id written as ``mistake="..."`` in the checks."""
    found = set()
    for path in CHECKS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "mistake" \
                    and isinstance(node.value, ast.Constant) and node.value.value:
                found.add(node.value.value)
    return found


def test_every_mistake_a_check_names_is_catalogued():
    assert _literal_ids() - set(MISTAKES) == set()


def test_every_catalogued_mistake_is_named_by_a_check():
    sources = "\n".join(path.read_text(encoding="utf-8") for path in CHECKS)
    unused = []
    for mistake in MISTAKES:
        # Dice and IoU share their checks: "dice-pooled" is written f"{kind}-pooled"
        generic = re.sub(r"^(dice|iou)-", "{kind}-", mistake)
        if f'"{mistake}"' not in sources and f'f"{generic}"' not in sources:
            unused.append(mistake)
    assert unused == []


def test_each_entry_is_complete_and_readable():
    solutions = Path(__file__).parents[1] / "solutions"
    lessons = {p.name[:2] for p in solutions.glob("[0-9][0-9]_*.ipynb")} | {"all"}
    for m in MISTAKES.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9.]+)*", m.id), m.id
        assert m.lessons and set(m.lessons) <= lessons, m.id
        assert m.exercises and all(m.exercises), m.id
        assert m.what and "\n" not in m.what and len(m.what) <= 130, m.id
        assert m.source in SOURCES, m.id
        fields = {f for _, f, _, _ in string.Formatter().parse(m.hint) if f}
        assert hint_for(m.id, **dict.fromkeys(fields, "X")), m.id


def test_sources_are_described_in_words_never_by_file():
    text = Path(catalogue.__file__).read_text(encoding="utf-8")
    assert not re.search(r"seed \d|\d{3}_[0-9a-f]{6}|\.txt|seeds/", text)


def test_a_hint_with_fields_needs_them():
    assert hint_for("empty-zero", title="IoU").endswith("the IoU 1.0, not 0.")
    with pytest.raises(KeyError):
        hint_for("empty-zero")
    with pytest.raises(KeyError, match="not in segkit/checks/catalogue.py"):
        hint_for("no-such-mistake")


def test_instructors_md_shows_the_catalogue_as_generated():
    text = (ROOT / "INSTRUCTORS.md").read_text(encoding="utf-8")
    assert mistakes.with_table(text) == text, (
        "INSTRUCTORS.md's mistake table is out of date: run "
        "`python -m segkit_course.mistakes --write INSTRUCTORS.md`")
    assert f"| `{next(iter(MISTAKES))}` |" in text


@pytest.mark.parametrize("module", ["segkit.checks", "segkit.checks.core",
                                    "segkit.checks.catalogue"]
                         + [f"segkit.checks.{p.stem}" for p in CHECKS if p.stem != "core"])
def test_every_name_in_all_exists(module):
    namespace: dict = {}
    exec(f"from {module} import *", namespace)  # an AttributeError names a stale __all__
