"""The check framework every lesson check is written with.

An exercise's check has three steps, so that the lesson and the grader share one code path
(:class:`Check`):

- ``draw(seed) -> cases``: the inputs, drawn fresh from a seed (shapes, sizes, counts...)
  from a space that includes the edges a mistake hides behind, plus the lesson's worked
  example (the same on every run, so that a failure there reads the same for everyone).
  Plain data (NumPy arrays, numbers, lists, dicts); no reference implementation.
- ``ask(student, cases) -> answers``: runs the student's function or class on the cases
  and returns plain data (:mod:`segkit.checks.values` describes what came back;
  :mod:`segkit.checks.answers` carries it as bytes without pickle). What the student's code
  raised is data too (:func:`error_record`). It runs where the student's code runs: the
  notebook's kernel, or the grader's sandbox.
- ``judge(cases, answers)``: computes the right answers itself (segkit's implementation, or
  the lesson module's ``reference_*``), and passes or raises :class:`ExerciseNotDone` /
  :class:`CheckFailed` with a catalogued mistake id. It never calls the student's code. A
  mistake is named only when it explains the answers (:func:`explained_by`: one of its
  written forms gives the student's answers on every case); a wrong answer nothing
  explains gets :data:`GENERAL_HINT`, never another mistake's hint.

A lesson module defines, e.g. in ``segkit/checks/lesson04.py``::

    check_dice_score = Check(
        "04", "dice_score", "dice_score on 5 small batches",
        references=("segkit.checks.lesson04.reference_dice_score", "segkit.metrics.dice_score"),
        draw_cases=_draw_overlap,        # rng -> {"cases": [...]}
        ask_student=_ask,                # (student, cases) -> plain data
        judge_answers=_judge_dice)       # (cases, answers) -> the ✅ line's detail

The notebook calls ``checks.lesson04.check_dice_score(dice_score)``: a fresh seed, the
three steps, one line ``✅ <title> — passed (<detail>)``. The detail quotes the worked
example only, so the line is the same on every run. A failure on drawn cases shows its seed
and the call that repeats it (``check_dice_score(dice_score, seed=8123)``); a judge marks
which case it is judging with :class:`judging`. ``checks_of("04")`` lists a lesson's
checks for the grader, each with its ``references`` (what the grading sandbox hides).

A mistake is named by its id only: its hint comes from the mistake catalogue,
:mod:`segkit.checks.catalogue`. A check passes its own ``hint=`` only when it has values to
add (the student's parameter count, say). Hints say what is wrong and where to look, not
the code to write.

``run_check`` turns what happens into one of three outcomes a student understands:

- the student's code still raises the stub's ``NotImplementedError``
  -> :class:`ExerciseNotDone` ("Exercise `dice_score` is not done yet: ...");
- a check found a mistake -> :class:`CheckFailed`, whose message says what went wrong
  with the values and a ``Hint:`` line that names the mistake and the fix;
- it passed -> one line ``✅ <title> — passed`` is printed and the pass is remembered,
  so :func:`use` knows it may use the student's version later in the notebook.

Mistake ids (``mistake=``) are short kebab-case names from the course's mistake
catalogue (``segkit/checks/catalogue.py``), e.g. ``"loss-tensor-accumulator"``,
``"dice-on-logits"``. Two are given by the framework itself: ``"crashed"`` (the student's
code raised an exception) and ``"check-error"`` (the check could not use what the student's
code returned; usually a value of the wrong kind, possibly a bug in the check).

"The student's code" is any code outside segkit, the standard library and installed
packages: notebook cells, and in unit tests the functions the test file defines. So a
check belongs in ``segkit/checks/lessonNN.py``, never in a notebook.

In IPython (JupyterLab, Colab, headless runs) a failed check shows only its ❌ line, hint
and seed, a not-done exercise one line (``_render_traceback_``): no traceback, no check
source.

Rules for check authors:

- a check prints nothing but the ✅ line; it never changes the student's objects in a way
  the notebook can see (``ask`` hands the student fresh copies; the notebook's random
  state is saved and put back);
- ``judge`` validates the answers' structure (``zip(..., strict=True)``): answers that skip
  questions never pass;
- it passes the solution, raises :class:`ExerciseNotDone` on the stub, and fails each
  catalogued mistake with its ``mistake`` id; register the forms in
  ``tests/test_checks_lessonNN.py`` (``tests/check_helpers.py``): the draws tests run each
  on fresh draws.

The older one-step form (the :func:`check` decorator, ``run_check`` with ``expect_*``
helpers on fixed inputs) still works, for checks written outside the course's lessons.
"""

from __future__ import annotations

import functools
import re
import sysconfig
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "Check",
    "CheckFailed",
    "check",
    "checks_of",
    "CheckResult",
    "ExerciseNotDone",
    "GENERAL_HINT",
    "expect",
    "expect_close",
    "expect_dtype",
    "expect_equal",
    "expect_shape",
    "expect_type",
    "explained_by",
    "fail",
    "fresh_seed",
    "judge_each",
    "judging",
    "key_figure",
    "passed",
    "reset",
    "run_check",
    "show",
    "use",
]


# --------------------------------------------------------------------------- errors


def _catalogued_hint(mistake: str, **fields: object) -> str:
    """The hint of ``mistake`` in segkit/checks/catalogue.py (imported when first needed,
    so that ``python -m segkit.checks.catalogue`` runs cleanly)."""
    from segkit.checks.catalogue import hint_for

    return hint_for(mistake, **fields)


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(text.split())


class ExerciseNotDone(NotImplementedError):
    """The exercise still contains the stub's ``raise NotImplementedError``.

    ``exercise`` is the exercise's name, e.g. ``"dice_score"``.
    """

    def __init__(self, message: str = "", exercise: str | None = None) -> None:
        super().__init__(message)
        self.exercise = exercise

    def _render_traceback_(self) -> list[str]:
        """What IPython (JupyterLab, Colab, headless runs) shows instead of a traceback:
        one line, without the check's source or the stub's chained error."""
        return [f"⏳ {_one_line(str(self))}"]


class CheckFailed(AssertionError):
    """A check found a mistake in the student's code.

    Attributes:
        exercise: the exercise's name, e.g. ``"dice_score"`` (``run_check`` fills it in
            when a helper raised without it).
        message: what went wrong, with the values.
        mistake: short id of the catalogued mistake (e.g. ``"loss-tensor-accumulator"``,
            see :mod:`segkit.checks.catalogue`) or None when the check cannot tell which
            mistake it is.
        hint: names the mistake and points at the fix. Left out, it is the catalogue's
            hint for ``mistake``; a check passes one only when it has values to add.

    ``str(error)`` is the message a student reads::

        ❌ dice_score: dice_score(pred, target) is 0.3333, expected 0.6667 (within ±1e-06)
        Hint: Dice = 2|P ∩ T| / (|P| + |T|): did you forget the 2?
    """

    def __init__(self, exercise: str | None = None, message: str = "", *,
                 mistake: str | None = None, hint: str | None = None) -> None:
        super().__init__(exercise, message)
        self.exercise = exercise
        self.message = message
        self.mistake = mistake
        if hint is None and mistake is not None:
            hint = _catalogued_hint(mistake)
        self.hint = hint
        #: True when the failing answer came from cases drawn at random, False when from
        #: the check's worked example (the same on every run), None when not known
        self.drawn: bool | None = None
        #: the seed the cases were drawn with, and the call that repeats them (set when
        #: the failure is on drawn cases)
        self.seed: int | None = None
        self.repeat: str | None = None

    def _repeat_line(self) -> str | None:
        if self.seed is None:
            return None
        call = f": `{self.repeat}` runs them again" if self.repeat else ""
        return f"Seed: these cases were drawn with seed {self.seed}{call}."

    def __str__(self) -> str:
        text = f"❌ {self.exercise or 'check'}: {self.message}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        if self._repeat_line():
            text += f"\n{self._repeat_line()}"
        return text

    def _render_traceback_(self) -> list[str]:
        """What IPython (JupyterLab, Colab, headless runs) shows instead of a traceback.

        The ❌ line and the hint, each on one line: no traceback, so neither the check's
        source (with the hints of other mistakes) nor segkit's frames appear. When the
        student's own code crashed, the hint quotes the line of their code that failed.
        """
        lines = [f"❌ {self.exercise or 'check'}: {_one_line(self.message)}"]
        if self.hint:
            lines.append(f"Hint: {_one_line(self.hint)}")
        if self._repeat_line():
            lines.append(self._repeat_line())
        return lines


@dataclass(frozen=True)
class CheckResult:
    """What ``run_check`` returns when a check passed.

    ``detail`` is the optional short text the check's body returned (already printed
    on the ✅ line).
    """

    exercise: str
    title: str
    detail: str | None = None
    passed: bool = True

    def _ipython_display_(self) -> None:
        # A check cell usually ends with `checks.lessonNN.check_x(x)`, whose value is this
        # result. Jupyter would print its repr under the ✅ line; the ✅ line says it all.
        pass


# --------------------------------------------------------------------------- registry

_passed: set[str] = set()


def passed(exercise: str) -> bool:
    """True when ``exercise``'s check passed in this kernel (and has not failed since)."""
    return exercise in _passed


def reset() -> None:
    """Forget every pass (used by tests; a fresh kernel starts empty anyway)."""
    _passed.clear()


def use(exercise: str, student_obj: Any, reference_obj: Any) -> Any:
    """The student's version if its check passed in this kernel, else segkit's reference.

    Lessons write, after an exercise and its check::

        dice_score = checks.use("dice_score", dice_score, segkit.metrics.dice_score)

    so the rest of the notebook runs even when the exercise was skipped, and says so.
    """
    if passed(exercise):
        return student_obj
    print(f"⚠️ `{exercise}` has not passed its check yet, so this cell uses segkit's "
          "reference version. Come back to it when you're ready.")
    return reference_obj


def key_figure(name: str, value: float, digits: int = 4) -> None:
    """Print ``📌 {name}: {value}`` rounded to ``digits`` decimals.

    The headless course runner (``segkit run-course``) collects these lines into its
    summary table. ``value`` may be a Python number or a 1-element tensor / array.
    """
    if hasattr(value, "item"):  # a tensor or array holding one number
        value = value.item()
    print(f"📌 {name}: {float(value):.{digits}f}")


# --------------------------------------------------------------------------- run_check

_STUB_MESSAGE = re.compile(r"Exercise (\w+): write your code here")


def _library_dirs() -> list[str]:
    """Folders whose code is not the student's: segkit, the standard library, packages."""
    dirs = [str(Path(__file__).resolve().parents[1])]  # the segkit package
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.append(str(Path(path).resolve()))
    return dirs


_LIBRARY_DIRS = _library_dirs()


def _is_student_frame(filename: str) -> bool:
    """True for code the student wrote: a notebook cell or a file outside the libraries."""
    if filename.startswith("<frozen") or filename == "<string>":
        return False
    if filename.startswith("<"):  # "<ipython-input-3-...>" in older IPython
        return True
    resolved = Path(filename).resolve()
    if {"site-packages", "dist-packages"} & set(resolved.parts):  # any installed package
        return False
    path = str(resolved)
    return not any(path == d or path.startswith(d + "/") or path.startswith(d + "\\")
                   for d in _LIBRARY_DIRS)


def _student_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__) if _is_student_frame(f.filename)]


def _where(frame: traceback.FrameSummary) -> str:
    """'line 3: `return a / b`' (plus the file name when it is a real file)."""
    in_cell = "ipykernel_" in frame.filename or frame.filename.startswith("<")
    place = f"line {frame.lineno}" if in_cell else f"{Path(frame.filename).name}, line {frame.lineno}"
    code = (frame.line or "").strip()
    return f"{place}: `{code}`" if code else place


def _is_stub(exc: NotImplementedError) -> bool:
    """True when the error is a lesson stub, not e.g. torch lacking an operation on MPS.

    A stub says "Exercise <name>: write your code here", or is a
    ``raise NotImplementedError`` line in the student's own code.
    """
    if _STUB_MESSAGE.search(str(exc)):
        return True
    innermost = traceback.extract_tb(exc.__traceback__)[-1]
    return (_is_student_frame(innermost.filename)
            and "raise NotImplementedError" in (innermost.line or ""))


def _not_done(exercise: str, exc: NotImplementedError) -> ExerciseNotDone:
    found = _STUB_MESSAGE.search(str(exc))
    other = found.group(1) if found else None
    if other and other != exercise:
        message = (f"Exercise `{exercise}` uses exercise `{other}`, which is not done yet: "
                   f"replace the `raise NotImplementedError` line of `{other}` with your code, "
                   "run that cell, then run this cell again.")
    else:
        message = (f"Exercise `{exercise}` is not done yet: replace the "
                   "`raise NotImplementedError` line with your code, then run this cell again.")
    return ExerciseNotDone(message, exercise=exercise)


def _crashed(exercise: str, exc: Exception) -> CheckFailed:
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = _student_frames(exc)
    if frames:
        return CheckFailed(
            exercise, f"your code raised {type(exc).__name__} while the check was running it.",
            mistake="crashed",
            hint=f"the error was `{what}` at {_where(frames[-1])}. Read the error, fix that "
                 "line, run your exercise cell again, then this cell.")
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    at = f" ({Path(last[0].filename).name}, line {last[0].lineno})" if last else ""
    return CheckFailed(
        exercise, f"the check could not use what your code returned: `{what}`{at}.",
        mistake="check-error",
        hint="check what your code returns (its type, shape and dtype) against the "
             "exercise's description. If it looks right, tell your instructor: the check "
             "itself may be wrong.")


def in_fixed_rng(body: Callable[[], str | None]) -> Callable[[], str | None]:
    """``body`` run with torch seeded to 0, leaving the notebook's random state untouched.

    For checks that build their own models and data: the same weights on every run, and
    the student's next random numbers are the ones they would have been without the check.
    """
    import torch

    def wrapped() -> str | None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return body()
    return wrapped


def run_check(exercise: str, title: str, body: Callable[[], None | str]) -> CheckResult:
    """Run a check's ``body`` and report it to the student.

    Args:
        exercise: the exercise's name, e.g. ``"dice_score"`` (as in the cell metadata).
        title: what is checked, printed on the ✅ line, e.g. ``"dice_score on 4 cases"``.
        body: calls the student's code and raises :class:`CheckFailed` (through the
            ``expect_*`` helpers) on a mistake. It may return a short, deterministic,
            one-line text that is added to the ✅ line.

    Returns:
        a :class:`CheckResult` after printing exactly one line ``✅ {title} — passed``.

    Raises:
        ExerciseNotDone: the student's code raised ``NotImplementedError`` (the stub);
            the original error is chained.
        CheckFailed: a mistake was found, or the student's code crashed
            (``mistake="crashed"``, the hint quotes the error and the line).
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame from tracebacks
    _passed.discard(exercise)  # a failing re-run must not keep an earlier pass
    try:
        detail = body()
    except ExerciseNotDone:
        raise
    except CheckFailed as exc:
        if exc.exercise is None:
            exc.exercise = exercise
        raise
    except NotImplementedError as exc:
        if _is_stub(exc):
            raise _not_done(exercise, exc) from exc
        raise _crashed(exercise, exc) from exc  # e.g. an operation torch lacks on this device
    except Exception as exc:
        raise _crashed(exercise, exc) from exc
    line = f"✅ {title} — passed"
    if detail:
        line += f" ({' '.join(str(detail).split())})"  # keep it on one line
    print(line)
    _passed.add(exercise)
    return CheckResult(exercise, title, str(detail) if detail else None)


def check(exercise: str, title: str, *, fixed_rng: bool = False
          ) -> Callable[[Callable[..., str | None]], Callable[..., CheckResult]]:
    """Make a lesson check from a function that judges the student's code::

        @check("dice_score", "dice_score on 5 small batches")
        def check_dice_score(dice_score):
            ...                      # expect_* / fail on a mistake
            return "0.6786 on ..."   # optional: a short detail for the ✅ line

    Calling ``check_dice_score(student_function)`` runs the decorated body through
    :func:`run_check` (with ``fixed_rng=True``, inside :func:`in_fixed_rng`, for checks
    that build models or random data) and returns its :class:`CheckResult`.
    """
    def decorate(judge: Callable[..., str | None]) -> Callable[..., CheckResult]:
        @functools.wraps(judge)
        def run(*student: Any) -> CheckResult:
            __tracebackhide__ = True
            body = functools.partial(judge, *student)
            return run_check(exercise, title, in_fixed_rng(body) if fixed_rng else body)
        return run
    return decorate


# --------------------------------------------------------------------------- helpers


def fail(message: str, *, hint: str | None = None, mistake: str | None = None,
         **fields: object) -> NoReturn:
    """Raise :class:`CheckFailed` (inside ``run_check``, which fills in the exercise).

    Without ``hint`` the student reads the catalogue's hint for ``mistake``, its
    ``{fields}`` filled in from ``fields`` (``fail(..., mistake="empty-zero", title="Dice")``).
    """
    __tracebackhide__ = True
    if hint is None and mistake is not None:
        hint = _catalogued_hint(mistake, **fields)
    raise CheckFailed(None, message, mistake=mistake, hint=hint)


def expect(condition: bool, message: str, *, hint: str | None = None,
           mistake: str | None = None, **fields: object) -> None:
    """Fail with ``message`` unless ``condition`` is true."""
    __tracebackhide__ = True
    if not condition:
        fail(message, hint=hint, mistake=mistake, **fields)


def show(value: Any) -> str:
    """A short, deterministic text for a value in a message (numbers rounded to 6 digits)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return f"{value:.6g}" if isinstance(value, float) else str(value)
    shape = getattr(value, "shape", None)
    if shape is not None:
        kind = "tensor" if hasattr(value, "detach") else type(value).__name__
        dtype = str(getattr(value, "dtype", "")).replace("torch.", "")
        size = 1
        for n in shape:
            size *= int(n)
        if size == 1 and hasattr(value, "item"):
            extra = ", requires_grad=True" if getattr(value, "requires_grad", False) else ""
            return f"{kind}({show(value.item())}, dtype={dtype}{extra})"
        return f"a {kind} of shape {tuple(int(n) for n in shape)} and dtype {dtype}"
    text = repr(value)
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # no memory addresses: outputs must not change
    return text if len(text) <= 80 else text[:77] + "..."


def _type_names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


def expect_type(value: Any, expected_type: type | tuple[type, ...], *, name: str,
                hint: str | None = None, mistake: str | None = None) -> None:
    """Fail unless ``isinstance(value, expected_type)``.

    ``bool`` is not accepted where a number (``int``/``float``) is expected.
    """
    __tracebackhide__ = True
    ok = isinstance(value, expected_type)
    if isinstance(value, bool) and bool not in (expected_type if isinstance(expected_type, tuple)
                                                else (expected_type,)):
        ok = False
    if not ok:
        fail(f"{name} should be of type {_type_names(expected_type)}, but it is of type "
             f"{type(value).__name__}: {show(value)}", hint=hint, mistake=mistake)


def expect_shape(value: Any, expected_shape: tuple[int | None, ...], *, name: str,
                 hint: str | None = None, mistake: str | None = None) -> None:
    """Fail unless ``value.shape`` matches ``expected_shape`` (None matches any size)."""
    __tracebackhide__ = True
    shape = getattr(value, "shape", None)
    wanted = "(" + ", ".join("any" if n is None else str(n) for n in expected_shape) + \
        ("," if len(expected_shape) == 1 else "") + ")"
    if shape is None:
        fail(f"{name} should be a tensor of shape {wanted}, but it is a "
             f"{type(value).__name__}: {show(value)}", hint=hint, mistake=mistake)
    shape = tuple(int(n) for n in shape)
    same = len(shape) == len(expected_shape) and all(
        want is None or want == got for want, got in zip(expected_shape, shape))
    if not same:
        fail(f"{name} should have shape {wanted}, but it has shape {shape}",
             hint=hint, mistake=mistake)


def expect_dtype(value: Any, dtype: Any, *, name: str, hint: str | None = None,
                 mistake: str | None = None) -> None:
    """Fail unless ``value.dtype == dtype`` (a torch or numpy dtype)."""
    __tracebackhide__ = True
    got = getattr(value, "dtype", None)
    if got != dtype:
        clean = lambda d: str(d).replace("torch.", "")  # noqa: E731
        fail(f"{name} should have dtype {clean(dtype)}, but it has dtype {clean(got)}",
             hint=hint, mistake=mistake)


def expect_equal(actual: Any, expected: Any, *, name: str, hint: str | None = None,
                 mistake: str | None = None) -> None:
    """Fail unless ``actual == expected`` (plain Python values: ints, strings, tuples...)."""
    __tracebackhide__ = True
    if not (actual == expected):
        fail(f"{name} is {show(actual)}, expected {show(expected)}", hint=hint, mistake=mistake)


def _to_numpy(value: Any):
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor, maybe on a GPU, maybe with a graph
        value = value.detach().cpu()
    return np.asarray(value, dtype=np.float64)


def expect_close(actual: Any, expected: Any, *, name: str, tol: float = 1e-4,
                 hint: str | None = None, mistake: str | None = None) -> None:
    """Fail unless ``actual`` is within ``tol`` (absolute) of ``expected``.

    Works for Python numbers, tensors and arrays (same shape, compared elementwise).
    A NaN matches only a NaN.
    """
    __tracebackhide__ = True
    try:
        got = _to_numpy(actual)
    except (TypeError, ValueError):
        fail(f"{name} should be a number (or numbers), but it is a {type(actual).__name__}: "
             f"{show(actual)}", hint=hint, mistake=mistake)
    want = _to_numpy(expected)
    if got.shape != want.shape:
        fail(f"{name} should have shape {want.shape}, but it has shape {got.shape}",
             hint=hint, mistake=mistake)
    import numpy as np

    bad = ~((got == want) | (np.abs(got - want) <= tol) | (np.isnan(got) & np.isnan(want)))
    if not bad.any():
        return
    if got.ndim == 0:
        fail(f"{name} is {show(float(got))}, expected {show(float(want))} (within ±{tol:g})",
             hint=hint, mistake=mistake)
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    fail(f"{name} differs from the expected values at {int(bad.sum())} of {bad.size} places; "
         f"first at index {index}: {show(float(got[index]))} instead of "
         f"{show(float(want[index]))} (tolerance ±{tol:g})", hint=hint, mistake=mistake)




# --------------------------------------------------------------------------- diagnosis

#: The hint for a wrong answer that no catalogued mistake explains: honest, and never
#: another mistake's hint.
GENERAL_HINT = ("no mistake the course knows gives these values, so the check cannot say "
                "which step went wrong: run your function on this case yourself and compare "
                "each step with the exercise's description.")


def explained_by(got: Sequence[Any], forms: Sequence[dict[str, Sequence[Any]]], *,
                 abs_tol: float = 1e-5, rel_tol: float = 0.0) -> str | None:
    """The first catalogued mistake that gives the student's answers on every case.

    ``got[i]`` is the student's answer on case i; ``forms[i]`` maps each mistake id to the
    answers its written forms give on case i (every case lists the same ids and the same
    number of forms, in the order of the diagnosis). A mistake explains the answers when
    one of its forms matches on every case: matching one case by chance is not enough.
    """
    if not forms:
        return None
    for mistake, first in forms[0].items():
        for k in range(len(first)):
            if all(close(g, f[mistake][k], abs_tol=abs_tol, rel_tol=rel_tol)
                   for g, f in zip(got, forms)):
                return mistake
    return None

# --------------------------------------------------------------------------- shared by lessons


def close(actual: Any, expected: Any, *, abs_tol: float = 1e-6, rel_tol: float = 0.0) -> bool:
    """Do ``actual`` and ``expected`` hold the same numbers, within a tolerance?

    Both may be Python numbers, lists of numbers, tensors or arrays; they must have the
    same shape, and every value may differ by at most ``abs_tol + rel_tol * |expected|``.
    A NaN matches only a NaN. Anything that is not numbers (None, a string) is not close.
    This is the one closeness test of the checks; :func:`expect_close` fails with a message
    where this answers True or False.
    """
    import numpy as np

    try:
        got, want = _to_numpy(actual), _to_numpy(expected)
    except (TypeError, ValueError, RuntimeError):
        return False
    if got.shape != want.shape:
        return False
    near = np.abs(got - want) <= abs_tol + rel_tol * np.abs(want)
    ok = near | (np.isnan(got) & np.isnan(want))
    return bool(ok.all())


def shape_of(value: Any) -> tuple[int, ...] | None:
    """``value.shape`` as a tuple of ints, or None when ``value`` has no shape."""
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(n) for n in shape)


def shape_text(shape: Any) -> str:
    """'(2, 3, 17, 23)' for a shape (a tuple, a torch.Size) or a value that has one;
    'None' for None."""
    if shape is not None and not isinstance(shape, (tuple, list)):
        shape = shape_of(shape) if hasattr(shape, "shape") else tuple(shape)
    return "None" if shape is None else "(" + ", ".join(str(int(n)) for n in shape) + ")"


def write_tiny_carvana(root: Path, images: dict[str, Any], masks: dict[str, Any]) -> None:
    """Carvana's layout under ``root``: ``train/<stem>.jpg`` and ``train_masks/<stem>_mask.gif``.

    ``images`` maps a stem to a PIL image (saved as JPEG, quality 95); ``masks`` maps a
    stem to an (H, W) array of 0/1, saved as a palette GIF (black 0, white 1), as Carvana's
    masks are. A stem without a mask is an image without a mask. Files are written in the
    dicts' order: a check that scrambles it tests that the student sorts.
    """
    import numpy as np
    from PIL import Image

    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    for stem, image in images.items():
        image.save(root / "train" / f"{stem}.jpg", quality=95)
    for stem, mask in masks.items():
        mask = np.asarray(mask, dtype=np.uint8)
        gif = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
        gif.putpalette([0, 0, 0, 255, 255, 255])
        gif.save(root / "train_masks" / f"{stem}_mask.gif")


# --------------------------------------------------------------------------- draw, ask, judge
#
# An exercise check in three steps, so that the lessons and the grader share one code path:
#
#   cases   = check.draw(seed)             inputs drawn fresh from a seed: plain data
#   answers = check.ask(student, cases)    the student's code run on them: plain data
#   check.judge(cases, answers)            the reference computed here, and the diagnosis
#
# ``ask`` runs where the student's code runs (the notebook's kernel; in grading, the
# sandbox) and uses no reference implementation; what the student's code raised becomes
# data too (:func:`error_record`). ``judge`` never calls the student's code: it reads the
# answers, computes the right ones itself and raises ExerciseNotDone or CheckFailed. In a
# lesson, ``check(student)`` runs the three with a fresh seed and prints the ✅ line.

RAISED = "$raised"  # the key of an answer that is an error record


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the student's code raised, as plain data (for the answers).

    ``type`` and ``message`` of the exception (``types``: its class and base classes,
    ``["DataError", "SegkitError", "ValueError", ...]``); ``where``: the student's line that raised
    it ('line 3: `return a / b`'), None when no frame of the traceback is the student's
    (the check's own code failed on what it was given); ``stub``: it is the lesson's
    stub (``raise NotImplementedError``); ``stub_of``: the exercise the stub names.
    """
    frames = _student_frames(exc)
    found = _STUB_MESSAGE.search(str(exc))
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    return {
        "type": type(exc).__name__,
        "types": [t.__name__ for t in type(exc).__mro__ if issubclass(t, BaseException)],
        "message": _one_line(str(exc))[:600],
        "where": _where(frames[-1]) if frames else None,
        "library_where": (f"{Path(last[0].filename).name}, line {last[0].lineno}"
                          if last else None),
        "stub": isinstance(exc, NotImplementedError) and _is_stub(exc),
        "stub_of": found.group(1) if found else None,
    }


def raised(answer: Any) -> dict[str, Any] | None:
    """The error record if ``answer`` is one (see :func:`error_record`), else None."""
    if isinstance(answer, dict) and isinstance(answer.get(RAISED), dict):
        return answer[RAISED]
    return None


def fail_for(record: dict[str, Any], exercise: str | None = None) -> NoReturn:
    """Raise what a student reads for an error their code raised: ExerciseNotDone for
    the stub, CheckFailed "crashed" quoting their line, or "check-error"."""
    __tracebackhide__ = True
    exercise = exercise or "this exercise"
    what = f"{record.get('type')}: {record.get('message')}" if record.get("message") \
        else str(record.get("type"))
    if record.get("stub"):
        other = record.get("stub_of")
        if other and other != exercise:
            raise ExerciseNotDone(
                f"Exercise `{exercise}` uses exercise `{other}`, which is not done yet: "
                f"replace the `raise NotImplementedError` line of `{other}` with your code, "
                "run that cell, then run this cell again.", exercise=exercise)
        raise ExerciseNotDone(
            f"Exercise `{exercise}` is not done yet: replace the `raise NotImplementedError` "
            "line with your code, then run this cell again.", exercise=exercise)
    if record.get("where"):
        raise CheckFailed(
            exercise, f"your code raised {record.get('type')} while the check was running it.",
            mistake="crashed",
            hint=f"the error was `{what}` at {record['where']}. Read the error, fix that "
                 "line, run your exercise cell again, then this cell.")
    at = f" ({record['library_where']})" if record.get("library_where") else ""
    raise CheckFailed(
        exercise, f"the check could not use what your code returned: `{what}`{at}.",
        mistake="check-error",
        hint="check what your code returns (its type, shape and dtype) against the "
             "exercise's description. If it looks right, tell your instructor: the check "
             "itself may be wrong.")


def value_of(answer: Any, exercise: str | None = None) -> Any:
    """``answer``, or the failure its error record stands for (see :func:`fail_for`)."""
    __tracebackhide__ = True
    record = raised(answer)
    if record is not None:
        fail_for(record, exercise)
    return answer


def fresh_seed() -> int:
    """A seed for one run of a check, from the operating system (the notebook's random
    state is neither used nor changed)."""
    import secrets

    return secrets.randbelow(100_000)


class _RandomState:
    """Seeds torch, NumPy's and Python's global generators, and puts back the notebook's
    states afterwards: a check neither depends on nor changes the student's random numbers."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        import random

        import numpy as np
        import torch

        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        self._saved = (random.getstate(), np.random.get_state())
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)

    def __exit__(self, *exc: object) -> None:
        import random

        import numpy as np

        random.setstate(self._saved[0])
        np.random.set_state(self._saved[1])
        self._fork.__exit__(*exc)


class judging:  # noqa: N801 - used as a context manager, like a function
    """Tags the failures raised inside it as on drawn cases or on the worked example::

        with judging(drawn=case["drawn"]):
            ...   # expect / fail on this case

    A failure on the worked example (the same on every run) is shown without a seed;
    one on drawn cases shows the seed that repeats them. Untagged failures count as drawn.
    """

    def __init__(self, drawn: bool = True) -> None:
        self.drawn = bool(drawn)

    def __enter__(self) -> judging:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, CheckFailed) and exc.drawn is None:
            exc.drawn = self.drawn
        return False


def judge_each(cases: Sequence[Any], answers: Sequence[Any],
               judge_case: Callable[[Any, Any], Any]) -> list[Any]:
    """``judge_case(case, answer)`` for each case and its answer, in order, a failure
    tagged with its case's ``"drawn"``; what each returned. Answers that are fewer or
    more than the cases are refused (a ValueError the judge turns into check-error)."""
    results = []
    for case, answer in zip(cases, answers, strict=True):
        with judging(case["drawn"]):
            results.append(judge_case(case, answer))
    return results


@dataclass(eq=False)
class Check:
    """The check of one exercise: draw, ask, judge (see the comment above).

    Attributes:
        lesson: "04"; exercise: "dice_score" (the name in the notebook's metadata);
        title: what the ✅ line says ("dice_score on 5 small batches");
        references: dotted names of the code that answers the exercise (segkit's version
            handed to ``checks.use`` in the solution, and any check-private reference);
        name: the function name a notebook calls ("check_dice_score").

    ``draw_cases(rng)`` gets a ``numpy.random.Generator`` and returns a dict of plain data
    (the framework adds ``"seed"``); ``ask_student(student, cases)`` and
    ``judge_answers(cases, answers)`` are the lesson's two other steps.
    """

    lesson: str
    exercise: str
    title: str
    references: tuple[str, ...]
    draw_cases: Callable[[Any], dict[str, Any]]
    ask_student: Callable[[Any, dict[str, Any]], Any]
    judge_answers: Callable[[dict[str, Any], Any], str | None]
    name: str = ""

    def __post_init__(self) -> None:
        self.lesson = f"{int(self.lesson):02d}"
        self.name = self.name or f"check_{self.exercise}"
        self.__name__ = self.name
        self.__qualname__ = self.name
        self.__doc__ = f"Check of exercise `{self.exercise}` (lesson {self.lesson}): {self.title}."
        _REGISTRY.setdefault(self.lesson, {})[self.exercise] = self

    def __repr__(self) -> str:
        return f"<check of {self.exercise} (lesson {self.lesson})>"

    # ------------------------------------------------------------------ the three steps

    def draw(self, seed: int) -> dict[str, Any]:
        """The cases for ``seed``: plain data, the same for the same seed anywhere."""
        import numpy as np

        cases = self.draw_cases(np.random.default_rng(int(seed)))
        cases["seed"] = int(seed)
        return cases

    def ask(self, student: Any, cases: dict[str, Any]) -> Any:
        """The student's answers to ``cases`` (plain data). Never raises: what the
        student's code raised becomes ``{RAISED: error_record(...)}``."""
        try:
            with _RandomState(cases["seed"]):
                return self.ask_student(student, cases)
        except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
            return {RAISED: error_record(exc)}

    def judge(self, cases: dict[str, Any], answers: Any) -> str | None:
        """Judge ``answers``: returns the ✅ line's detail, or raises ExerciseNotDone or
        CheckFailed (with the seed when the failing answers are on drawn cases)."""
        __tracebackhide__ = True
        try:
            value_of(answers, self.exercise)
            with _RandomState(cases["seed"]):
                return self.judge_answers(cases, answers)
        except ExerciseNotDone as exc:
            exc.exercise = self.exercise
            raise
        except CheckFailed as exc:
            exc.exercise = exc.exercise or self.exercise
            if exc.drawn is not False:
                exc.seed = cases["seed"]
                exc.repeat = self.repeat_call(cases["seed"])
            raise
        except Exception as exc:  # a bug in the judge, or answers it cannot read
            raise CheckFailed(
                self.exercise, "the check could not judge what your code returned "
                f"(`{type(exc).__name__}: {_one_line(str(exc))[:200]}`).",
                mistake="check-error",
                hint="check what your code returns (its type, shape and dtype) against the "
                     "exercise's description. If it looks right, tell your instructor: the "
                     "check itself may be wrong.") from exc

    def repeat_call(self, seed: int) -> str:
        """The notebook call that repeats the cases of ``seed``."""
        return f"checks.lesson{self.lesson}.{self.name}({self.exercise}, seed={seed})"

    # ------------------------------------------------------------------ in a lesson

    def __call__(self, student: Any, *, seed: int | None = None) -> CheckResult:
        """Draw (a fresh seed unless given), ask, judge; print ``✅ {title} — passed``."""
        __tracebackhide__ = True
        from segkit.checks import answers as plain

        seed = fresh_seed() if seed is None else int(seed)
        cases = self.draw(seed)
        found = self.ask(student, cases)
        try:
            found = plain.load(plain.dump(found))  # exactly what a grader's judge reads
        except plain.AnswersError as exc:
            found = {RAISED: {"type": "AnswersError", "message": str(exc), "where": None,
                              "library_where": None, "stub": False, "stub_of": None}}
        return run_check(self.exercise, self.title, lambda: self.judge(cases, found))


_REGISTRY: dict[str, dict[str, Check]] = {}


def checks_of(lesson: str | int) -> dict[str, Check]:
    """The checks of a lesson, ``{exercise: Check}`` in the lesson's order
    (``checks_of("04")`` -> ``{"pixel_accuracy": ..., "dice_score": ..., ...}``)."""
    import importlib

    number = f"{int(str(lesson).removeprefix('lesson')):02d}"
    importlib.import_module(f"segkit.checks.lesson{number}")
    return dict(_REGISTRY.get(number, {}))
