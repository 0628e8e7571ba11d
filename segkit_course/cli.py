"""The course's subcommands: ``build-lessons``, ``build-site``, ``run-course``, ``grade``,
``grade-merge`` and ``verify``.

``register(subparsers)`` adds them to the ``segkit`` command line (``segkit.cli``, the one
entry point); every subcommand sets ``func`` (it takes the parsed arguments and returns
the exit code).
"""

from __future__ import annotations

import argparse
import functools
import sys

from segkit.errors import SegkitError


def cmd_build_lessons(args: argparse.Namespace) -> int:
    from segkit_course.build import annotate_all, build_all

    if getattr(args, "course_url", None):
        return publish_as(args)
    if args.annotate:
        changed = annotate_all(args.solutions)
        print(f"{len(changed)} solution(s) annotated. Next: store their outputs with "
              "`python -m segkit_course.run --inplace solutions/NN_name.ipynb`, "
              "then run `segkit build-lessons`.")
        return 0
    reported = build_all(args.solutions, args.lessons, dry_run=args.dry_run)
    if args.dry_run:
        if reported:
            print(f"{len(reported)} lesson(s) not in sync with {args.solutions}/: "
                  "run `segkit build-lessons`", file=sys.stderr)
            return 1
        print(f"{args.lessons}/ is in sync with {args.solutions}/")
    return 0


def publish_as(args: argparse.Namespace) -> int:
    """``segkit build-lessons --course-url URL``: make URL the course's address (in
    pyproject.toml), stamp it into the solutions' set-up cells and badges, rebuild lessons/."""
    from segkit_course.address import check_url, set_course_url
    from segkit_course.build import (NotebookSourceError, annotate_all, build_all, build_lesson,
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
    from segkit_course.site import main as site_main

    return site_main(["--course", args.course, "--out", args.out])


def cmd_run_course(args: argparse.Namespace) -> int:
    from segkit_course.run import run_course, store_outputs

    if args.inplace:
        runs = [store_outputs(path, timeout=args.timeout) for path in args.inplace]
        return 0 if all(run.ok for run in runs) else 1
    results = run_course(args.solutions, args.out, only=args.only, timeout=args.timeout)
    return 0 if all(r.ok for r in results) else 1


def cmd_grade(args: argparse.Namespace) -> int:
    from segkit_course.grading import grade
    from segkit_course.grading.execute import Limits

    given = {"cell_cpu": args.cell_timeout, "notebook_cpu": args.notebook_timeout,
             "ask_cpu": args.check_timeout, "output_limit": args.output_limit,
             "threads": args.threads}
    if args.memory_gib is not None:
        given["memory_bytes"] = int(args.memory_gib * 2**30)
    if args.disk_mib is not None:
        given["disk_bytes"] = int(args.disk_mib * 2**20)
    limits = Limits(**{name: value for name, value in given.items() if value is not None})
    grade(args.notebooks, lesson=args.lesson, solutions=args.solutions, out=args.out,
          limits=limits, jobs=args.jobs, isolation=args.isolation, shard=args.shard,
          fresh=args.fresh, seed=args.seed)
    return 0


def cmd_grade_merge(args: argparse.Namespace) -> int:
    from segkit_course.grading import merge

    merge(args.folders, args.out)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from segkit_course.verify import verify_course

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


#: What the course tools import that a student's install (``pip install segkit``) lacks.
COURSE_EXTRA = ("nbformat", "nbclient", "nbconvert", "ipykernel", "jupyter_client", "sphinx",
                "myst_nb", "sphinx_book_theme")


class CourseToolsMissing(SegkitError):
    """A course command needs a package of the ``course`` extra that is not installed."""


def needs_course_extra(func):
    """``func`` (a command), with a missing package of :data:`COURSE_EXTRA` said as one
    clear message: which package, and the one install command that brings them all."""
    @functools.wraps(func)
    def command(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in COURSE_EXTRA:
                raise
            raise CourseToolsMissing(
                f"segkit {args.command} is one of the course tools and needs {exc.name}, "
                "which is not installed here (a student's install leaves the tools out). "
                "In the course folder: pip install -e \".[course]\"") from exc
    return command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``build-lessons``, ``build-site``, ``run-course``, ``grade``, ``grade-merge`` and
    ``verify`` to a command line (the ``segkit.commands`` entry point of pyproject.toml)."""
    for add in (_add_build_lessons, _add_build_site, _add_run_course, _add_grade,
                _add_grade_merge, _add_verify):
        parser = add(subparsers)
        parser.set_defaults(func=needs_course_extra(parser.get_default("func")))


def _add_build_lessons(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build-lessons", help="write lessons/ from solutions/ (or --dry-run: are they in sync?)",
        description="Build the student notebooks lessons/NN_name.ipynb from the solution "
                    "notebooks solutions/NN_name.ipynb: solution blocks become stubs, outputs "
                    "are cleared, the set-up cell and Colab badge are refreshed. The "
                    "conventions are in the docstring of segkit_course.")
    p.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                   help="write nothing; exit 1 if a lesson is out of date, missing or extra "
                        "(is lessons/ in sync with solutions/?)")
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
    return p


def _add_build_site(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    return p


def _add_run_course(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    return p


def _add_grade(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "grade", help="grade students' notebooks: a table per student and exercise, CSV, JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade each student's notebook with the course's own checks. Exercises,\n"
                    "points and checks come from the solution notebook, so deleted,\n"
                    "duplicated or edited cells do not matter. Each notebook runs as its\n"
                    "author wrote it, every code cell in order (heavy cells the solution\n"
                    "tags skip-when-grading are skipped), in a bubblewrap sandbox of its own\n"
                    "on Linux (no network, no other files, disk, memory, CPU and process\n"
                    "caps) where segkit lacks the lesson's answers; then each exercise is\n"
                    "asked questions drawn fresh for this run, and the answers are judged\n"
                    "outside the sandbox. Prints a table (pass, fail, not done, missing,\n"
                    "error, timeout, review; points; hints) and writes grades.csv,\n"
                    "grades.json, mistakes.csv and mistakes.png (the class's mistakes),\n"
                    "gradebook.csv (Canvas, Moodle), gradescope/ and feedback/ to a folder\n"
                    "of its own: --out, or the next free name after it. Notebooks graded\n"
                    "before with the same content are not graded again. See INSTRUCTORS.md.",
        epilog="examples:\n"
               "  segkit grade submissions/ --lesson 03\n"
               "  segkit grade 'submissions/*/04_metrics.ipynb' --out grades/04\n"
               "  segkit grade alice.ipynb bob.ipynb --lesson 02 --jobs 2\n"
               "  segkit grade submissions/ --lesson 04 --shard 1/4   (then grade-merge)\n"
               "a student is their notebook's path relative to the folder given\n"
               "(alice/03_training.ipynb); the gradebook's login is their folder's name.")
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                   help="student notebooks, folders (searched recursively) or glob patterns")
    p.add_argument("--lesson", metavar="NN",
                   help="the lesson (e.g. 03); by default read from the notebooks' names "
                        "(03_training*.ipynb). With a folder, notebooks of other lessons "
                        "are left out")
    add_solutions_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="the folder for the reports (default: grades/NN_name); when it "
                        "holds an earlier grading, the next free name (DIR-2, ...)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks graded at once (default: the CPU cores divided by "
                        "--threads, at most 8 and 3 GiB of memory each)")
    # The defaults are segkit_course.grading.execute.Limits' (not imported here: it is slow to
    # import); an option left out keeps Limits' value.
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch/BLAS threads of each notebook (default: 1)")
    p.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                   help="CPU seconds one cell of a notebook may use (default: 120)")
    p.add_argument("--check-timeout", type=float, metavar="SECONDS",
                   help="CPU seconds answering one exercise's questions may use (default: 60)")
    p.add_argument("--notebook-timeout", type=float, metavar="SECONDS",
                   help="CPU seconds a whole notebook's sandbox may use (default: 900)")
    p.add_argument("--output-limit", type=int, metavar="CHARS",
                   help="characters kept of each hint and message (default: 20000)")
    p.add_argument("--memory-gib", type=float, metavar="GIB",
                   help="memory (heap) each process of a notebook may use (default: 4)")
    p.add_argument("--disk-mib", type=float, metavar="MIB",
                   help="disk space a notebook's sandbox may fill (default: 512)")
    p.add_argument("--isolation", choices=["auto", "bwrap", "off"], default="auto",
                   help="auto: a bubblewrap sandbox per notebook when it works here, "
                        "else the in-process guard (reports say 'isolation: off'); "
                        "bwrap: stop if it does not work; off: never (with auto, "
                        "SEGKIT_ISOLATION=off/bwrap decides)")
    p.add_argument("--shard", metavar="K/N",
                   help="grade only the K-th of N parts of the class (reports in "
                        "OUT/shard-K-of-N); join them with `segkit grade-merge`")
    p.add_argument("--fresh", action="store_true",
                   help="grade every notebook again, even those graded before with the "
                        "same content (default: reuse the earlier runs' caches)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="the run's seed, to repeat a grading exactly (default: a fresh one, "
                        "recorded in grades.json)")
    p.set_defaults(func=cmd_grade)
    return p


def _add_grade_merge(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "grade-merge", help="join the reports of `segkit grade --shard` runs into one",
        description="Read grades.json of each shard folder, check that they are every shard "
                    "K of N of one grading (the same class, lesson and checks), once each, "
                    "and write one set of reports (grades.csv, grades.json, mistakes.csv, "
                    "mistakes.png, gradebook.csv, gradescope/, feedback/) to --out, or to "
                    "the next free name after it: never into a shard.")
    p.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="the shards' output folders (e.g. grades/04_metrics/shard-*-of-8)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the joined reports go")
    p.set_defaults(func=cmd_grade_merge)
    return p


def _add_verify(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    return p


def main(argv: list[str] | None = None) -> int:
    """``segkit``'s command line (``segkit.cli.main``): the one entry point, kept here so
    that ``cli.main(["build-lessons", ...])`` reads as the command it runs."""
    from segkit.cli import main as segkit_main

    return segkit_main(argv)
