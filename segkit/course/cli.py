"""The course's subcommands: ``build-lessons`` and ``run-course``.

``register(subparsers)`` adds them to the ``segkit`` command line; every subcommand sets
``func`` (it takes the parsed arguments and returns the exit code). Standalone:
``python -m segkit.course.cli build-lessons --check``.
"""

from __future__ import annotations

import argparse
import sys

from segkit.errors import SegkitError


def cmd_build_lessons(args: argparse.Namespace) -> int:
    from segkit.course.build import annotate_all, build_all

    if args.annotate:
        changed = annotate_all(args.solutions)
        print(f"{len(changed)} solution(s) annotated. Next: store their outputs with "
              "`python -m segkit.course.run --inplace solutions/NN_name.ipynb`, "
              "then run `segkit build-lessons`.")
        return 0
    reported = build_all(args.solutions, args.lessons, check=args.check)
    if args.check:
        if reported:
            print(f"{len(reported)} lesson(s) not in sync with {args.solutions}/: "
                  "run `segkit build-lessons`", file=sys.stderr)
            return 1
        print(f"{args.lessons}/ is in sync with {args.solutions}/")
    return 0


def cmd_run_course(args: argparse.Namespace) -> int:
    from segkit.course.run import run_course, store_outputs

    if args.inplace:
        runs = [store_outputs(path, timeout=args.timeout) for path in args.inplace]
        return 0 if all(run.ok for run in runs) else 1
    results = run_course(args.solutions, args.out, only=args.only, timeout=args.timeout)
    return 0 if all(r.ok for r in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``build-lessons`` and ``run-course`` to a ``segkit`` command line."""
    p = subparsers.add_parser(
        "build-lessons", help="write lessons/ from solutions/ (or --check that they are in sync)",
        description="Build the student notebooks lessons/NN_name.ipynb from the solution "
                    "notebooks solutions/NN_name.ipynb: solution blocks become stubs, outputs "
                    "are cleared, the set-up cell and Colab badge are refreshed. The "
                    "conventions are in the docstring of segkit.course.")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a lesson is out of date, missing or extra")
    p.add_argument("--annotate", action="store_true",
                   help="instead of building, complete the solutions' metadata in place "
                        "(nbgrader metadata from the segkit metadata, tags, cell ids, set-up "
                        "cell, badge)")
    p.add_argument("--solutions", default="solutions", metavar="DIR",
                   help="folder of solution notebooks (default: solutions)")
    p.add_argument("--lessons", default="lessons", metavar="DIR",
                   help="folder of lesson notebooks (default: lessons)")
    p.set_defaults(func=cmd_build_lessons)

    p = subparsers.add_parser(
        "run-course", help="execute every solution notebook headless and sum up",
        description="Execute the solution notebooks in fresh kernels (working folder: the "
                    "course folder), write each executed notebook and its HTML page to --out, "
                    "and print per lesson: status, seconds and key figures (📌 lines). Exit 1 "
                    "if a lesson fails. With --inplace NOTEBOOK..., execute those notebooks "
                    "and store their outputs in them instead (the reference nbval compares "
                    "against; runs with OMP_NUM_THREADS=2).")
    p.add_argument("--only", nargs="+", metavar="NN",
                   help="run only these lessons (numbers like 04, or names like 04_metrics)")
    p.add_argument("--out", default="build/course", metavar="DIR",
                   help="where to write executed notebooks and HTML (default: build/course)")
    p.add_argument("--solutions", default="solutions", metavar="DIR",
                   help="folder of solution notebooks (default: solutions)")
    p.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                   help="time allowed per cell (default: 600)")
    p.add_argument("--inplace", nargs="+", metavar="NOTEBOOK",
                   help="execute these notebooks and write their outputs back into them")
    p.set_defaults(func=cmd_run_course)


def main(argv: list[str] | None = None) -> int:
    """Standalone command line with just the course's subcommands."""
    parser = argparse.ArgumentParser(prog="python -m segkit.course.cli",
                                     description="segkit course tooling")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (SegkitError, FileNotFoundError, ValueError) as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
