"""Where a grading writes, and classes of any size: resume, shards, merge.

    segkit grade submissions/ --lesson 04                    # grades/04_metrics/
    segkit grade submissions/ --lesson 04                    # again: grades/04_metrics-2/
    segkit grade submissions/ --lesson 04 --shard 2/8        # grades/04_metrics/shard-2-of-8/
    segkit grade-merge grades/04_metrics/shard-*-of-8 --out grades/04_metrics-all

**A folder of its own.** Every grading and every merge writes into a folder that no
other run writes into: the folder asked for if it does not exist (created atomically,
``mkdir``) or is empty (claimed by creating its marker file ``.segkit-grading``
exclusively), else the first free one of ``NAME-2``, ``NAME-3``, ...; it says where. A
link in the way is never written through. So two shards, two runs, or a merge whose
``--out`` is one of its inputs never replace each other's files.

**Resume.** Each notebook's grade is saved as soon as it is known, in the run's
``cache/<key>.json``, where the key is a hash of the notebook's bytes, of the lesson (its
solution, segkit and the grader: :attr:`Lesson.fingerprint`) and of the isolation. A
run reads the caches of the earlier gradings of the same folder (``NAME``, ``NAME-2``,
..., and the shards in them) and takes a grade from them instead of grading again: an
interrupted run goes on where it stopped, a run after a few late submissions grades
only those. ``--fresh`` reads no cache.

**Shards.** ``--shard K/N`` grades every N-th notebook, starting with the K-th, of the
sorted class: N machines given the same folder and the same N grade disjoint parts of
the class, together all of it. Each writes only its own ``shard-K-of-N`` folder, and
records K, N and the class it split (how many notebooks, and a hash of their paths).
:func:`merge` knows N: it refuses a missing shard, a shard given twice, shards of
different classes, lessons or checks.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import time
from pathlib import Path

from segkit_course.grading.discover import GradingInputError, Lesson, Submission
from segkit_course.grading.execute import ExerciseResult, StudentResult

__all__ = ["MARKER", "ResultCache", "class_key", "claim_folder", "earlier_caches", "merge",
           "parse_shard", "read_report", "shard"]

MARKER = ".segkit-grading"
_MAX_REPORT = 512 * 2**20


def parse_shard(text: str) -> tuple[int, int]:
    """(K, N) for "K/N", 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise GradingInputError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. 2/8 for "
                                "the second of eight shards")
    return int(match.group(1)), int(match.group(2))


def shard(submissions: list[Submission], k: int, n: int) -> list[Submission]:
    """The K-th of N disjoint parts of ``submissions`` (sorted by identity)."""
    ordered = sorted(submissions, key=lambda s: s.student)
    return [sub for i, sub in enumerate(ordered) if i % n == k - 1]


def class_key(submissions: list[Submission]) -> dict:
    """What a shard records of the whole class it was split from."""
    names = "\n".join(sorted(s.student for s in submissions))
    return {"count": len(submissions), "digest": hashlib.sha256(names.encode()).hexdigest()[:16]}


# --------------------------------------------------------------------------- folders


def _claim(candidate: Path, what: str) -> bool:
    """Take ``candidate`` for this run: a new folder, or an empty one whose marker this
    run creates first. Never through a link."""
    marker = json.dumps({"what": what, "pid": os.getpid(), "time": time.time()})
    try:
        candidate.mkdir()
    except FileExistsError:
        if candidate.is_symlink() or not candidate.is_dir():
            return False
        try:
            if any(True for _ in os.scandir(candidate)):
                return False
        except OSError:
            return False
    except OSError as exc:
        raise GradingInputError(f"{candidate}: cannot create the folder ({exc.strerror}): "
                                "give another --out") from None
    try:
        fd = os.open(candidate / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return False  # another run claimed it a moment ago
    with os.fdopen(fd, "w") as f:
        f.write(marker + "\n")
    return True


def claim_folder(wanted: str | Path, what: str = "segkit grade") -> Path:
    """``wanted``, or the first free ``wanted-2``, ``wanted-3``, ...: a folder this run
    alone writes into (see the module's docstring)."""
    wanted = Path(wanted)
    try:
        wanted.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GradingInputError(f"{wanted.parent}: cannot create the folder "
                                f"({exc.strerror}): give another --out") from None
    for n in range(1, 10_000):
        candidate = wanted if n == 1 else wanted.with_name(f"{wanted.name}-{n}")
        if _claim(candidate, what):
            return candidate
    raise GradingInputError(f"{wanted}: no free name left after {wanted.name}-9999")


def earlier_caches(wanted: str | Path, mine: str | Path) -> list[Path]:
    """The ``cache`` folders of the earlier gradings of the same class: the folder
    asked for and its ``-N`` siblings, and the shards inside them (for a shard: the
    folder it is in, and its siblings). Never ``mine``'s own."""
    wanted, mine = Path(wanted), Path(mine)
    base = wanted.parent if re.fullmatch(r"shard-\d+-of-\d+", wanted.name) else wanted
    family = [base, *base.parent.glob(f"{glob.escape(base.name)}-*")]
    family = [f for f in family if re.fullmatch(re.escape(base.name) + r"(-\d+)?", f.name)]
    folders = family + [shard for f in family for shard in f.glob("shard-*-of-*")]
    return [f / "cache" for f in sorted(folders)
            if f != mine and (f / "cache").is_dir() and not (f / "cache").is_symlink()
            and not f.is_symlink()]


# --------------------------------------------------------------------------- resume


def _result_json(result: StudentResult) -> dict:
    return {"notes": result.notes, "seconds": result.seconds, "cpu_seconds": result.cpu_seconds,
            "exercises": {name: vars(res) for name, res in result.exercises.items()},
            "cell_errors": sorted(result.cell_errors)}


class ResultCache:
    """Grades already known, one JSON file per (notebook content, lesson, isolation):
    written in this run's ``folder``, read from it and from ``earlier`` runs' caches."""

    def __init__(self, folder: str | Path, lesson: Lesson, isolation: str,
                 earlier: list[Path] = (), limits=None) -> None:
        self.folder = Path(folder)
        self.earlier = [Path(e) for e in earlier]
        self.lesson = lesson
        self.isolation = isolation
        self.notebook_bytes = getattr(limits, "notebook_bytes", 32 * 2**20)

    def _name(self, digest: str) -> str:
        key = hashlib.sha256(f"{digest}|{self.lesson.fingerprint}|{self.isolation}".encode())
        return f"{key.hexdigest()[:32]}.json"

    def get(self, submission: Submission) -> StudentResult | None:
        """The saved grade of a notebook with these bytes, under this student's name."""
        from segkit_course.grading.execute import notebook_digest
        from segkit_course.grading.notebook import NotebookError, read_submission
        from segkit_course.sandbox.files import UnsafeFile, read_regular

        try:
            digest = notebook_digest(read_submission(submission.path, self.notebook_bytes))
        except NotebookError:
            return None
        for folder in [self.folder, *self.earlier]:
            try:
                data = json.loads(read_regular(folder / self._name(digest), 2**24))
                exercises = {name: ExerciseResult(**fields)
                             for name, fields in data["exercises"].items()}
            except (UnsafeFile, ValueError, TypeError, KeyError, RecursionError):
                continue
            if list(exercises) != [ex.name for ex in self.lesson.exercises]:
                continue
            errors = {tuple(pair) for pair in data.get("cell_errors", []) if len(pair) == 2}
            return StudentResult(submission.student, submission.path, exercises,
                                 list(data["notes"]), float(data["seconds"]), self.isolation,
                                 digest, float(data.get("cpu_seconds", 0.0)), submission.login,
                                 cell_errors=errors)
        return None

    def put(self, result: StudentResult) -> None:
        if not result.digest:
            return  # not readable: nothing to key it by
        self.folder.mkdir(exist_ok=True)
        path = self.folder / self._name(result.digest)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(_result_json(result)), encoding="utf-8")
        temporary.replace(path)  # whole or not at all, even if the run is killed


# --------------------------------------------------------------------------- merge


def read_report(folder: str | Path) -> dict:
    """The ``grades.json`` of a grading folder, read as a regular file with a cap."""
    from segkit_course.sandbox.files import UnsafeFile, read_regular

    path = Path(folder) / "grades.json"
    try:
        return json.loads(read_regular(path, _MAX_REPORT))
    except (UnsafeFile, ValueError, RecursionError) as exc:
        raise GradingInputError(f"{path}: cannot be read ({exc}); give the folders that "
                                "`segkit grade --shard` wrote") from None


def _agree(folder: Path, report: dict, other: Path, first: dict) -> None:
    """Two shards of one grading: the same N, class, lesson and checks."""
    differences = [("the number of shards", report["shard"].get("n"), first["shard"].get("n")),
                   ("the class they split", report.get("class"), first.get("class")),
                   ("the lesson or its checks", (report.get("lesson"), report.get("fingerprint")),
                    (first.get("lesson"), first.get("fingerprint")))]
    for what, mine, theirs in differences:
        if mine != theirs:
            raise GradingInputError(f"{folder} and {other} differ in {what}: give the shards "
                                    "of one grading, made with the same course")


def _shards(folders: list[str | Path]) -> dict[int, tuple[Path, dict]]:
    """K -> (folder, report) for every shard given, checked to be of one grading."""
    found: dict[int, tuple[Path, dict]] = {}
    for folder in map(Path, folders):
        report = read_report(folder)
        if not isinstance(report.get("shard"), dict):
            raise GradingInputError(f"{folder} is not a shard (it was graded without "
                                    "--shard K/N): nothing to merge")
        if found:
            _agree(folder, report, *next(iter(found.values())))
        k = report["shard"].get("k")
        if k in found:
            raise GradingInputError(f"shard {k} of {report['shard'].get('n')} is given "
                                    f"twice: {found[k][0]} and {folder}; give one of them")
        found[k] = (folder, report)
    return found


def merge(folders: list[str | Path], out: str | Path
          ) -> tuple[Lesson, list[StudentResult], Path]:
    """Join the reports of shards into a folder of its own (``out`` or the next free
    name: never one of the shards). Every shard 1..N must be there, once."""
    from segkit_course.grading.report import from_json, write_reports

    if not folders:
        raise GradingInputError("give the shard folders to merge")
    found = _shards(folders)
    n = next(iter(found.values()))[1]["shard"]["n"]
    missing = [k for k in range(1, n + 1) if k not in found]
    if missing:
        raise GradingInputError(f"shard(s) {', '.join(map(str, missing))} of {n} missing: "
                                f"give every shard-K-of-{n} folder")
    results, seen, lesson, meta = [], {}, None, None
    for k in sorted(found):
        folder, report = found[k]
        lesson, part = from_json(report)
        meta = meta or {"class": report.get("class"), "seeds": []}
        meta["seeds"].append(report.get("seed"))
        for result in part:
            if result.student in seen:
                raise GradingInputError(f"{result.student} was graded in {seen[result.student]} "
                                        f"and in {folder}: the shards overlap")
            seen[result.student] = folder
            results.append(result)
    if len(results) != (meta["class"] or {}).get("count", len(results)):
        raise GradingInputError(f"the shards hold {len(results)} notebooks, the class "
                                f"{meta['class'].get('count')}: a shard is incomplete")
    results.sort(key=lambda r: r.student)  # as one run orders them
    target = claim_folder(out, "segkit grade-merge")
    write_reports(target, lesson, results, {"merged": [str(f) for f, _ in found.values()],
                                            "class": meta["class"], "seed": meta["seeds"]})
    return lesson, results, target
