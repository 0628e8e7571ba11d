"""How well the exercise checks judge the corpus of student forms, per lesson.

The corpus is every right solution and every wrong form the check tests hold (registered in
tests/check_helpers.py by tests/test_checks_*.py). Each form runs through its check on
fresh draws; a right form counts as accepted when it passes every draw, a wrong form as
caught when every draw fails it with its own mistake id (or the general hint, for a form no
catalogued mistake explains), a stub as caught when every draw says "not done"::

    python benchmarks/check_corpus.py                     # 20 draws per form
    python benchmarks/check_corpus.py --draws 100 --jobs 2
    python benchmarks/check_corpus.py --lessons 04 10     # some lessons only
    python benchmarks/check_corpus.py --checks-from DIR   # the segkit of another checkout

``--checks-from DIR`` imports ``segkit`` from DIR instead (an older version of the checks,
e.g. a ``git archive`` of main): checks without draws run once per form. Prints one line
per lesson and the forms that missed, with the seeds that repeat the misses.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS_MODULES = ["test_checks_lesson00", "test_checks_lesson01", "test_checks_lesson02",
                  "test_checks_lesson03", "test_checks_lesson04", "test_checks_lesson05",
                  "test_checks_lesson06", "test_checks_lesson07", "test_checks_lesson08",
                  "test_checks_lesson09", "test_checks_lesson10", "test_checks_variants",
                  "test_checks_mistakes", "test_checks_forms"]


def load_corpus() -> tuple[list, list[str]]:
    """The registered forms, and the corpus modules that could not be imported."""
    failed = []
    for name in CORPUS_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an older segkit may lack what a file uses
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    from check_helpers import CORPUS
    return CORPUS, failed


def run_shard(args: argparse.Namespace) -> list[dict]:
    """Judge this process's share of the corpus; one record per form."""
    import contextlib
    import io

    from check_helpers import expected, lesson_of, outcome

    corpus, failed = load_corpus()
    for line in failed:
        print(f"not loaded: {line}", file=sys.stderr)
    draws = [random.Random(f"{args.seed}-{k}").randrange(100_000) for k in range(args.draws)]
    shard, shards = args.shard
    records = []
    for i, form in enumerate(corpus):
        lesson = lesson_of(form)
        if i % shards != shard or (args.lessons and lesson not in args.lessons):
            continue
        seeds = draws if hasattr(form.check, "draw") else [None]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            got = {seed: outcome(form.check, form.student, seed) for seed in seeds}
        want = expected(form)
        records.append({"lesson": lesson, "id": form.id, "expect": want,
                        "misses": {str(s): g for s, g in got.items() if g != want},
                        "runs": len(seeds)})
    return records


def report(records: list[dict], elapsed: float, draws: int) -> None:
    table: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"right": [0, 0], "wrong": [0, 0], "stub": [0, 0]})
    for r in records:
        kind = "right" if r["expect"] == "passed" else "stub" if r["expect"] == "not-done" \
            else "wrong"
        cell = table[r["lesson"]][kind]
        cell[1] += 1
        cell[0] += not r["misses"]
    print(f"{'lesson':>6}  {'right accepted':>15}  {'wrong caught (right id)':>24}  "
          f"{'stubs not done':>14}")
    totals = {"right": [0, 0], "wrong": [0, 0], "stub": [0, 0]}
    for lesson in sorted(table):
        cells = table[lesson]
        for kind in totals:
            totals[kind][0] += cells[kind][0]
            totals[kind][1] += cells[kind][1]
        print(f"{lesson:>6}  {'%d/%d' % tuple(cells['right']):>15}  "
              f"{'%d/%d' % tuple(cells['wrong']):>24}  {'%d/%d' % tuple(cells['stub']):>14}")
    print(f"{'all':>6}  {'%d/%d' % tuple(totals['right']):>15}  "
          f"{'%d/%d' % tuple(totals['wrong']):>24}  {'%d/%d' % tuple(totals['stub']):>14}")
    runs = sum(r["runs"] for r in records)
    print(f"{len(records)} forms, {runs} check runs ({draws} draws per form where the check "
          f"draws), {elapsed:.0f} s")
    misses = [r for r in records if r["misses"]]
    if misses:
        print("\nmisses (form: seed -> what the check said, expected):")
        for r in misses:
            shown = ", ".join(f"{s}: {g}" for s, g in list(r["misses"].items())[:4])
            print(f"  {r['id']}: {shown} ({len(r['misses'])} of {r['runs']}; expected "
                  f"{r['expect']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", default="corpus", help="names the draws (default: corpus)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--lessons", nargs="*", default=[])
    parser.add_argument("--checks-from", type=Path, default=None,
                        help="a folder holding another version of segkit/ to judge with")
    parser.add_argument("--shard", default="0/1", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.shard = tuple(int(n) for n in args.shard.split("/"))
    sys.path.insert(0, str((args.checks_from or ROOT).resolve()))
    sys.path.insert(0, str(ROOT / "tests"))
    if args.json:
        print(json.dumps(run_shard(args)))
        return
    start = time.monotonic()
    if args.jobs == 1:
        records = run_shard(args)
    else:
        base = [sys.executable, __file__, "--json", "--draws", str(args.draws), "--seed",
                args.seed, *(["--lessons", *args.lessons] if args.lessons else []),
                *(["--checks-from", str(args.checks_from)] if args.checks_from else [])]
        procs = [subprocess.Popen(base + ["--shard", f"{k}/{args.jobs}"], stdout=subprocess.PIPE,
                                  text=True) for k in range(args.jobs)]
        records = [r for p in procs for r in json.loads(p.communicate()[0])]
    report(records, time.monotonic() - start, args.draws)


if __name__ == "__main__":
    main()
