"""The course's subcommands: ``build-lessons``, ``build-site``, ``run-course``, ``grade``
and ``verify``.

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

    if getattr(args, "course_url", None):
        return publish_as(args)
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


def publish_as(args: argparse.Namespace) -> int:
    """``segkit build-lessons --course-url URL``: make URL the course's address (in
    pyproject.toml), stamp it into the solutions' set-up cells and badges, rebuild lessons/."""
    from segkit.course.address import check_url, set_course_url
    from segkit.course.build import (NotebookSourceError, annotate_all, build_all, build_lesson,
                                     solution_paths)

    url = check_url(args.course_url, "--course-url")
    paths = solution_paths(args.solutions)
    if not paths:
        raise NotebookSourceError(f"no NN_name.ipynb notebook in {args.solutions} (--solutions): "
                                  "run from the course's root folder; nothing was changed")
    for path in paths:  # every convention problem comes out before anything is written
        build_lesson(path, url=url)
    old, new = set_course_url(url)
    print(f"course address: {new} (was {old}), written to pyproject.toml [project.urls]")
    annotate_all(args.solutions)
    build_all(args.solutions, args.lessons)
    print("Badges and set-up cells now point at the new address. Push the course there; "
          "`segkit build-site` rebuilds the website with it.")
    return 0


def cmd_build_site(args: argparse.Namespace) -> int:
    from segkit.course.site import main as site_main

    return site_main(["--course", args.course, "--out", args.out])


def cmd_run_course(args: argparse.Namespace) -> int:
    from segkit.course.run import run_course, store_outputs

    if args.inplace:
        runs = [store_outputs(path, timeout=args.timeout) for path in args.inplace]
        return 0 if all(run.ok for run in runs) else 1
    results = run_course(args.solutions, args.out, only=args.only, timeout=args.timeout)
    return 0 if all(r.ok for r in results) else 1


def cmd_grade(args: argparse.Namespace) -> int:
    from segkit.grading import grade
    from segkit.grading.execute import Limits

    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    check_timeout=args.check_timeout, output_limit=args.output_limit)
    grade(args.notebooks, lesson=args.lesson, solutions=args.solutions, out=args.out,
          limits=limits, jobs=args.jobs)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from segkit.course.verify import verify_course

    report = verify_course(args.course, budget_seconds=args.budget_seconds, jobs=args.jobs,
                           only=args.only)
    return 0 if report.ok else 1


def add_solutions_option(p: argparse.ArgumentParser) -> None:
    """``--solutions DIR``, shared by every course command."""
    p.add_argument("--solutions", default="solutions", metavar="DIR",
                   help="folder of solution notebooks (default: solutions)")


def add_only_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--only NN ...``: lessons by number (04) or name (04_metrics)."""
    p.add_argument("--only", nargs="+", metavar="NN",
                   help=f"{what} (numbers like 04, or names like 04_metrics)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``build-lessons``, ``run-course``, ``grade`` and ``verify`` to a command line."""
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
    add_solutions_option(p)
    p.add_argument("--lessons", default="lessons", metavar="DIR",
                   help="folder of lesson notebooks (default: lessons)")
    p.add_argument("--course-url", metavar="URL",
                   help="publish the course from your own GitHub repository: write URL "
                        "(https://github.com/<owner>/<name>) into pyproject.toml as the "
                        "course's address, stamp it into every badge and set-up cell of "
                        "solutions/ and rebuild lessons/")
    p.set_defaults(func=cmd_build_lessons)

    p = subparsers.add_parser(
        "build-site", help="build the course website (build/site) from the stored outputs",
        description="Build the course website with Sphinx, MyST-NB and the book theme: one "
                    "page per solution notebook with its stored outputs (nothing is executed), "
                    "exercise solutions folded, launch buttons to Colab at the course's "
                    "address (pyproject.toml), downloads, navigation and search. Open "
                    "OUT/index.html.")
    p.add_argument("--course", default=".", metavar="DIR",
                   help="the course folder holding site/ and solutions/ (default: .)")
    p.add_argument("--out", default="build/site", metavar="DIR",
                   help="where to write the HTML (default: build/site)")
    p.set_defaults(func=cmd_build_site)

    p = subparsers.add_parser(
        "run-course", help="execute every solution notebook headless and sum up",
        description="Execute the solution notebooks in fresh kernels (working folder: the "
                    "course folder), write each executed notebook and its HTML page to --out, "
                    "and print per lesson: status, seconds and key figures (📌 lines). Exit 1 "
                    "if a lesson fails. With --inplace NOTEBOOK..., execute those notebooks "
                    "and store their outputs in them instead (the reference nbval compares "
                    "against; runs with OMP_NUM_THREADS=2).")
    add_only_option(p, "run only these lessons")
    p.add_argument("--out", default="build/course", metavar="DIR",
                   help="where to write executed notebooks and HTML (default: build/course)")
    add_solutions_option(p)
    p.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                   help="time allowed per cell (default: 600)")
    p.add_argument("--inplace", nargs="+", metavar="NOTEBOOK",
                   help="execute these notebooks and write their outputs back into them")
    p.set_defaults(func=cmd_run_course)

    p = subparsers.add_parser(
        "grade", help="grade students' notebooks: a table per student and exercise, CSV, JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run each student's notebook in a fresh kernel in a temporary folder\n"
                    "(time limits per cell and per notebook; endless loops, crashes, huge\n"
                    "output, writes outside the folder, programs and network are dealt\n"
                    "with), then check every exercise of the lesson with the course's own\n"
                    "checks. Exercises, points and checks come from the solution notebook,\n"
                    "so deleted, duplicated or edited cells do not matter. Prints a table\n"
                    "(pass, fail, not done, missing, error, timeout; points; the checks'\n"
                    "hints) and writes grades.csv and grades.json. See INSTRUCTORS.md.",
        epilog="examples:\n"
               "  segkit grade submissions/ --lesson 03\n"
               "  segkit grade 'submissions/*/04_metrics.ipynb' --out grades/04\n"
               "  segkit grade alice.ipynb bob.ipynb --lesson 02 --jobs 2\n"
               "a student is named after their folder (submissions/alice/03_training.ipynb)\n"
               "or their file (submissions/03_training_alice.ipynb, alice.ipynb).")
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                   help="student notebooks, folders (searched recursively) or glob patterns")
    p.add_argument("--lesson", metavar="NN",
                   help="the lesson (e.g. 03); by default read from the notebooks' names "
                        "(03_training*.ipynb). With a folder, notebooks of other lessons "
                        "are left out")
    add_solutions_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="where to write grades.csv and grades.json (default: grades/NN_name)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks graded at once (default: half the CPU cores, at most 4)")
    p.add_argument("--cell-timeout", type=float, default=120, metavar="SECONDS",
                   help="time one cell may run before it is interrupted (default: 120)")
    p.add_argument("--notebook-timeout", type=float, default=900, metavar="SECONDS",
                   help="time all of a notebook's cells may take (default: 900)")
    p.add_argument("--check-timeout", type=float, default=60, metavar="SECONDS",
                   help="time one exercise's check may take (default: 60)")
    p.add_argument("--output-limit", type=int, default=20_000, metavar="CHARS",
                   help="output characters kept per cell (default: 20000)")
    p.set_defaults(func=cmd_grade)

    p = subparsers.add_parser(
        "verify", help="check the whole course before a term (sync, checks, stubs, time, network)",
        description="Verify the course: lessons/ is in sync with solutions/; every solution "
                    "runs to the end and passes every check; every lesson runs with only its "
                    "check cells raising, each with ExerciseNotDone (a check that passes the "
                    "stub would pass an empty exercise); every notebook runs within the time "
                    "budget; no notebook tries to reach the network (connections are "
                    "blocked and reported). Prints a report; exits 1 on any problem.")
    p.add_argument("--course", default=".", metavar="DIR",
                   help="the course folder holding solutions/ and lessons/ (default: .)")
    p.add_argument("--budget-seconds", type=float, default=120, metavar="SECONDS",
                   help="time each notebook may take to run (default: 120)")
    add_only_option(p, "verify only these lessons; the sync check still covers all")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="notebooks run at once (default: 1; more makes timings less reliable)")
    p.set_defaults(func=cmd_verify)


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
