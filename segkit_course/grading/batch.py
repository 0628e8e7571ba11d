"""Classes of any size: resume an interrupted grading, split a class into shards, merge.

    segkit grade submissions/ --lesson 04                    # again: graded ones are kept
    segkit grade submissions/ --lesson 04 --shard 2/8        # the 2nd of 8 shards
    segkit grade-merge grades/04_metrics/shard-*-of-8 --out grades/04_metrics

**Resume.** Each notebook's grade is saved as soon as it is known, in
``<out>/cache/<key>.json``, where the key is a hash of the notebook's bytes, of the
lesson (its solution, segkit's checks and grader: :attr:`Lesson.fingerprint`) and of
the isolation. A run that finds the key reuses the grade instead of grading again, so
an interrupted run continues where it stopped and a re-run after a few late
submissions only grades those. ``--fresh`` ignores the cache.

**Shards.** ``--shard K/N`` grades every N-th notebook, starting with the K-th, of the
sorted list: N machines (a cluster job array, a CI matrix) given the same folder and
the same N grade disjoint parts of the class, together all of it. Each writes its own
reports (by default in ``<out>/shard-K-of-N``); :func:`merge` joins them into one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from segkit_course.grading.discover import GradingInputError, Lesson, Submission
from segkit_course.grading.execute import ExerciseResult, StudentResult

__all__ = ["ResultCache", "merge", "parse_shard", "shard"]


def parse_shard(text: str) -> tuple[int, int]:
    """(K, N) for "K/N", 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise GradingInputError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. 2/8 for "
                                "the second of eight shards")
    return int(match.group(1)), int(match.group(2))


def shard(submissions: list[Submission], k: int, n: int) -> list[Submission]:
    """The K-th of N disjoint parts of ``submissions`` (sorted by file)."""
    ordered = sorted(submissions, key=lambda s: str(s.path))
    return [sub for i, sub in enumerate(ordered) if i % n == k - 1]


def _result_json(result: StudentResult) -> dict:
    return {"notes": result.notes, "seconds": result.seconds, "cpu_seconds": result.cpu_seconds,
            "exercises": {name: vars(res) for name, res in result.exercises.items()}}


class ResultCache:
    """Grades already known, one JSON file per (notebook content, lesson, isolation)."""

    def __init__(self, folder: str | Path, lesson: Lesson, isolation: str) -> None:
        self.folder = Path(folder)
        self.lesson = lesson
        self.isolation = isolation

    def _path(self, digest: str) -> Path:
        key = hashlib.sha256(f"{digest}|{self.lesson.fingerprint}|{self.isolation}".encode())
        return self.folder / f"{key.hexdigest()[:32]}.json"

    def get(self, submission: Submission, digest: str) -> StudentResult | None:
        """The saved grade of a notebook with these bytes, under this student's name."""
        try:
            data = json.loads(self._path(digest).read_text(encoding="utf-8"))
            exercises = {name: ExerciseResult(**fields)
                         for name, fields in data["exercises"].items()}
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if list(exercises) != [ex.name for ex in self.lesson.exercises]:
            return None
        return StudentResult(submission.student, submission.path, exercises,
                             list(data["notes"]), float(data["seconds"]), self.isolation,
                             digest, float(data.get("cpu_seconds", 0.0)))

    def put(self, result: StudentResult) -> None:
        if not result.digest:
            return  # not readable: nothing to key it by
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(result.digest)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(_result_json(result)), encoding="utf-8")
        temporary.replace(path)  # whole or not at all, even if the run is killed


def merge(folders: list[str | Path], out: str | Path) -> tuple[Lesson, list[StudentResult]]:
    """Join the reports of shards (folders holding ``grades.json``) into ``out``.

    The shards must be of the same lesson, graded with the same solution and checks;
    a student found in two shards is an error (the shards overlapped).
    """
    from segkit_course.grading.report import from_json, write_reports

    lesson, results, seen = None, [], {}
    for folder in folders:
        path = Path(folder) / "grades.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GradingInputError(f"{path}: cannot be read ({exc}); give the folders "
                                    "that `segkit grade --shard` wrote") from None
        shard_lesson, shard_results = from_json(data)
        if lesson is None:
            lesson = shard_lesson
        elif (shard_lesson.name, shard_lesson.fingerprint) != (lesson.name, lesson.fingerprint):
            raise GradingInputError(f"{path} is lesson {shard_lesson.name} graded with other "
                                    f"checks than {folders[0]}: grade every shard with the "
                                    "same course version")
        for result in shard_results:
            if str(result.path) in seen:
                raise GradingInputError(f"{result.path} was graded in {seen[str(result.path)]} "
                                        f"and in {folder}: the shards overlap")
            seen[str(result.path)] = folder
            results.append(result)
    if lesson is None:
        raise GradingInputError("give at least one folder to merge")
    results.sort(key=lambda r: str(r.path))  # as one run orders them
    write_reports(out, lesson, results)
    return lesson, results
