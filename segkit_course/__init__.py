"""Course tooling: build lessons from solutions, run the course headless.

This docstring is the authoring guide for the course's notebooks.

The one source: ``solutions/``
==============================

Every lesson is written once, as a solution notebook ``solutions/NN_name.ipynb``
(``NN`` two digits: ``04_metrics.ipynb``) with its outputs stored. The student notebook
``lessons/NN_name.ipynb`` is generated from it and never edited by hand::

    segkit build-lessons --annotate        # complete metadata in solutions/ (see below)
    python -m segkit_course.run --inplace solutions/04_metrics.ipynb
                                           # execute it in place: store the outputs
    segkit build-lessons                   # regenerate lessons/
    .venv/bin/python -m pytest tests/test_notebooks_meta.py tests/test_stubs.py \\
        tests/test_regression.py -k 04 -q  # conventions, sync, stubs, regression

(``python -m segkit_course.build [--dry-run] [--annotate]`` is ``segkit build-lessons``.)

Layout of a notebook
====================

1. A markdown title cell: ``# 04 · Metrics`` and an introduction. The build puts the
   "Open in Colab" badge (pointing at ``lessons/04_metrics.ipynb``) under the title.
2. The set-up cell, right after the title: the source of
   :func:`segkit_course.setup_cell.setup_cell_source`, metadata
   ``{"segkit": {"setup": true}}`` and tag ``setup``. Do not write it yourself:
   ``--annotate`` inserts or refreshes it (in Colab it clones the course from its
   address in pyproject.toml and installs segkit with torch and torchvision pinned at
   Colab's versions; everywhere it moves to the course folder and runs
   ``import segkit`` and ``from segkit import checks``). After it, the working folder is
   the course folder, in Jupyter, Colab, nbval and ``segkit run-course`` alike: write
   paths relative to it (``data/...``), never absolute ones.
3. Text, code, exercises and their checks.

Exercises
=========

An exercise is a code cell whose solution sits between the nbgrader markers, inside a
function or class (indented: the lesson's stub must raise when the check *calls* the
code, not when the cell runs; the build refuses unindented blocks)::

    def dice_score(pred, target):
        \"\"\"Dice of binary masks. pred, target: (N, H, W) int64 of 0/1 -> float.\"\"\"
        ### BEGIN SOLUTION
        inter = (pred * target).sum()
        return float(2 * inter / (pred.sum() + target.sum()))
        ### END SOLUTION

Several blocks per cell are allowed; markers may be indented and must stand alone on
their line, written exactly like this. The cell's metadata (JupyterLab: the property
inspector, gear icon, "Cell Metadata")::

    {"segkit": {"exercise": "dice_score", "points": 2}}

``exercise`` is a Python identifier, unique in the notebook; ``points`` defaults to 1.
In the lesson every block becomes, at the BEGIN marker's indentation::

    # YOUR CODE HERE
    raise NotImplementedError("Exercise dice_score: write your code here")

The check cell
--------------

The next code cell after an exercise (markdown cells may come between) is its check
cell, metadata ``{"segkit": {"check": "dice_score"}}``. It calls the lesson's check and
nothing else::

    checks.lesson04.check_dice_score(dice_score)

In the solution it prints ``✅ <title> — passed``. In the lesson it raises
``ExerciseNotDone`` until the student writes the code, and Run all stops there. Check
cells are not tagged ``raises-exception``: Colab has no cell tags, and its kernel
(ipykernel) stops a Run all at the first error, so JupyterLab must stop there too for the
lessons to run the same in both. ``segkit verify`` runs every cell of a lesson and
expects each check cell to raise ``ExerciseNotDone``. Checks live in
``segkit/checks/lessonNN.py``, each a :class:`segkit.checks.core.Check` that draws fresh
cases, asks the student's code and judges its answers (read the module's docstring; the
grader runs the same three steps, asking in the sandbox and judging outside it). A check
passes the solution and its right variants on every draw, raises ``ExerciseNotDone`` on
the stub and fails each catalogued mistake with the hint that names it (the corpus in
``tests/test_checks_forms.py``).

Later cells that need the exercise's result go through ``checks.use``, so a skipped
exercise is said clearly and segkit's reference version is used instead::

    dice_score = checks.use("dice_score", dice_score, segkit.metrics.dice_score)

No other cell may call a stub: in a lesson, only check cells may raise.

nbgrader metadata
-----------------

Write only the ``segkit`` metadata. ``segkit build-lessons --annotate`` (and the build,
on the lesson) adds from it the nbgrader metadata, the tag ``check`` on check cells, and
cell ids where missing::

    exercise: {"grade": false, "solution": true, "locked": false,
               "grade_id": "ex-04-dice_score", "schema_version": 3}
    check:    {"grade": true, "solution": false, "locked": true, "points": 2,
               "grade_id": "check-04-dice_score", "schema_version": 3}

Written answers
---------------

A markdown cell may hold ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines around a
model answer; the lesson shows ``YOUR ANSWER HERE`` instead. Optional metadata
``{"segkit": {"answer": "why_accuracy", "points": 1}}`` names it (nbgrader: manually
graded answer ``answer-04-why_accuracy``).

Solution-only cells
-------------------

Cells tagged ``solution-only`` (notes for instructors, extra demonstrations) are left
out of the lesson. Exercise, check and set-up cells cannot be solution-only.

Heavy cells and grading
-----------------------

``segkit grade`` runs every code cell of a student's notebook in its sandbox, except
cells that hold the same code as a solution cell tagged ``skip-when-grading`` (a long
training run). Such a cell may give a cheap stand-in for grading, so that the cells
after it still find the names it defines::

    {"tags": ["skip-when-grading"], "segkit": {"when_grading": "run = ..."}}

While a lesson is graded its references (segkit's answers to its exercises) are not
there: a cell that needs them, directly or through segkit, raises. Each grading run
grades the solution first and stops if it does not get every point. See "Grade a
class" in INSTRUCTORS.md.

Key figures
-----------

The figures a lesson is about (final Dice, validation loss, mIoU) are printed with
``checks.key_figure("val Dice", dice)`` -> ``📌 val Dice: 0.8123``. ``segkit
run-course`` lists them per lesson.

Stored outputs and nbval
========================

CI executes every solution and compares its outputs with the stored ones (nbval:
text, stdout, stderr and errors, after the sanitizer ``tests/nbval_sanitize.cfg``;
images and widgets are not compared). Exactly, except in cells that declare a
tolerance for figures that come out of training (:mod:`segkit_course.figures`)::

    {"segkit": {"tolerance": {"abs": 0.02, "lines": {"chosen threshold": {"abs": 0.05}}}}}

There the words around the numbers must match exactly and each number must lie within
the tolerance of the stored one. So:

- Store outputs only with ``python -m segkit_course.run --inplace solutions/NN_x.ipynb``:
  it executes top to bottom in a fresh kernel with ``OMP_NUM_THREADS=2
  MKL_NUM_THREADS=2 SEGKIT_PROGRESS=0``, in the notebook's folder as nbval does,
  without widget state or timing metadata, and writes the file only if every cell ran.
  Any machine will do; the tests compare at one and at two threads. Never save a
  solution from Jupyter after running cells out of order: every code cell must have an
  execution count, in order (a cell without one is never compared; the tests refuse it).
- A cell that prints trained figures gets a tolerance sized from a measured spread
  (``benchmarks/figure_spread.py``; the figures and how they were measured are in
  ``docs/TOLERANCES.md``). If the spread is as large as the effect the lesson shows,
  steady the lesson (a learning-rate schedule, more validation data) instead.
- Seed everything, give DataLoaders a seeded ``generator``, print 3-4 decimals.
- Print no paths, times, memory addresses or dates. End plotting cells with
  ``plt.show()`` (a trailing ``;`` does not hide ``<AxesImage at 0x...>`` under nbval).
- Tag long training logs ``nbval-ignore-output`` and print the key figure in a later
  cell with a tolerance, in particular when the log's length depends on the run (early
  stopping). Live-updating cells
  (``clear_output``) also need ``nbval-ignore-output``.
- Use tags, not ``# NBVAL_`` comments. ``skip-execution`` must be paired with
  ``nbval-skip``. Never tag a check cell ``raises-exception`` (see "The check
  cell").
- Progress bars: ``segkit.progress`` (``tqdm.auto``); never plain ``tqdm`` writing
  rates to stderr.
- Nothing may download; stay within the lesson's CPU time budget.

Modules
=======

- :mod:`segkit_course.address`: the course's address (``[project.urls] Repository``
  in pyproject.toml), ``course_url()``, ``set_course_url(url)``
  (``segkit build-lessons --course-url URL``).
- :mod:`segkit_course.setup_cell`: ``setup_cell_source()``, ``badge_markdown(name)``.
- :mod:`segkit_course.build`: ``build_lesson``, ``build_all``, ``lint``,
  ``annotate``, ``annotate_all``.
- :mod:`segkit_course.run`: ``run_course`` (the headless main job),
  ``execute_notebook``, ``store_outputs`` (``--inplace``).
- :mod:`segkit_course.site`: ``build_site`` (the course website, ``make site``,
  ``segkit build-site``), ``site_page``.
- :mod:`segkit_course.cli`: ``register(subparsers)`` adds ``build-lessons`` and
  ``run-course`` to the ``segkit`` command.
"""
