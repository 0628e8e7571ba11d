"""The grader's corpora, graded and counted: the figures of the grading's threat model.

    python benchmarks/grading_corpus.py                 # every case (15-25 min, 2 cores)
    python benchmarks/grading_corpus.py --only honest   # or: attacks

Grades the honest and the hostile notebooks of ``tests/grading_corpus.py`` (the same
cases ``make test-grading-corpus`` asserts on) and prints, per case, what each graded
exercise got, then the counts: honest notebooks graded right (every point), attacks
refused (each attacked exercise earned nothing) and, of those, withheld for review.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import grading_corpus as corpus  # noqa: E402 - the tests' corpus
import grading_notebooks as nbs  # noqa: E402

from segkit_course.grading import grade_all  # noqa: E402
from segkit_course.grading.discover import submissions_for  # noqa: E402
from segkit_course.grading.execute import Limits  # noqa: E402


def grade_cases(cases: list, root: Path, jobs: int) -> dict:
    """{case name: StudentResult}, one grading run per lesson."""
    results = {}
    for lesson in sorted({case.lesson for case in cases}):
        for case in [c for c in cases if c.lesson == lesson]:
            nbs.write(root / lesson / case.name / f"{lesson}.ipynb", case.build())
        spec, subs, _ = submissions_for([root / lesson], solutions_dir=ROOT / "solutions")
        for result in grade_all(subs, spec, Limits(), jobs=jobs):
            results[result.student.split("/")[0]] = result
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["honest", "attacks"])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    honest = corpus.honest_cases() if args.only != "attacks" else []
    attacks = corpus.attack_cases() if args.only != "honest" else []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segkit-corpus-") as tmp:
        results = grade_cases(honest + attacks, Path(tmp), args.jobs)
    right = [c.name for c in honest if results[c.name].points == results[c.name].max_points]
    for case in honest:
        r = results[case.name]
        print(f"honest  {case.name:40s} {r.points}/{r.max_points}")
    refused, outcomes = [], Counter()
    for case in attacks:
        got = {name: results[case.name].exercises[name] for name in case.attacked}
        if all(res.points == 0 for res in got.values()):
            refused.append(case.name)
        outcomes.update(res.status for res in got.values())
        print(f"attack  {case.name:40s} " + ", ".join(f"{n}: {res.status}"
                                                       for n, res in got.items())
              + f"   ({case.route})")
    print(f"\nhonest notebooks graded right: {len(right)}/{len(honest)} "
          f"(lessons {', '.join(sorted({c.lesson[:2] for c in honest}))})")
    print(f"attacks refused: {len(refused)}/{len(attacks)} "
          f"(attacked exercises: {dict(sorted(outcomes.items()))})")
    print(f"graded in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
