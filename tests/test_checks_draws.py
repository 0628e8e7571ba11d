"""The checks judged as a student would meet them: on fresh draws.

Every right solution and wrong form of the corpus (registered by the lesson files, see
tests/check_helpers.py) runs through its check on several draws of the check's cases: a
right solution must pass every draw, a wrong form must fail every draw with its own
mistake id (or be "not done", for a stub). ``make test`` runs a slice: each right solution
and stub on 2 draws, each wrong form on 1, with seeds fixed by the form's name (so the
suite is deterministic and different forms see different cases);
``pytest tests/test_checks_draws.py --check-draws 100`` runs each on 100 fresh draws and
names the seeds of any miss (``make check-draws`` counts them per lesson).
"""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path

import pytest

from check_helpers import CORPUS, expected, outcome
from segkit.checks import core

for _path in sorted(Path(__file__).parent.glob("test_checks_*.py")):
    if _path.stem != Path(__file__).stem:
        importlib.import_module(_path.stem)  # registers the lesson's forms


def _seeds(form, draws: int) -> list[int]:
    """``draws`` fresh seeds; by default (the slice ``make test`` runs) seeds fixed by the
    form's name: 2 for a right solution or a stub, 1 for a wrong form (its lesson's test
    runs it once more on a fresh seed)."""
    if draws:
        return [core.fresh_seed() for _ in range(draws)]
    first = zlib.crc32(form.id.encode()) % 100_000
    if form.expect not in (None, "not-done"):
        return [first]
    return [first, (first + 50_021) % 100_000]


@pytest.mark.parametrize("form", CORPUS, ids=[form.id for form in CORPUS])
def test_each_form_gets_its_answer_on_every_draw(form, request, capsys):
    seeds = _seeds(form, request.config.getoption("--check-draws"))
    misses = {}
    for seed in seeds:
        got = outcome(form.check, form.student, seed)
        if got != expected(form):
            misses[seed] = got
    capsys.readouterr()  # the ✅ lines
    assert not misses, (f"{form.id}: expected {expected(form)} on every draw; "
                        f"{len(misses)} of {len(seeds)} draws differ: {misses}")
