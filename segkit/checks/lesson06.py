"""Checks of lesson 06 (experiments): ``log_spaced``, ``EarlyStopping``, ``summarize_runs``.

The references (what ``checks.use`` falls back to) are segkit's own:
:func:`segkit.experiments.log_spaced`, :class:`segkit.experiments.EarlyStopping` and
:func:`segkit.experiments.summarize`.

Each check runs the lesson's worked example and cases drawn fresh from a seed (grids of
drawn bounds and lengths; validation curves of the lesson's shapes with drawn values;
tables of runs with drawn scores) and, when an answer differs, runs small wrong versions
(one per catalogued mistake) on the same cases: the mistake whose answers are the
student's on every case names the hint; otherwise the general hint. Mistake ids:

================================  ==========================================================
``returns-none``                  the function has no ``return``
``linear-spacing``                ``np.linspace``: evenly spaced values, most of them near ``high``
``logspace-takes-exponents``      ``np.logspace(low, high, n)``: numpy wants the exponents
                                  (-4, -1), so the values are all close to 1
``endpoint-excluded``             the last value is below ``high`` (``endpoint=False``, ``range``)
``wrong-count``                   not ``n`` values
``exponents-not-values``          the exponents (-4, -3 ...) returned instead of 10**exponent
``stops-at-first-bad-epoch``      early stopping ignores ``patience``: the first epoch without
                                  improvement stops training
``compares-with-last``            an epoch is compared with the previous epoch, not the best one
``counter-not-reset``             an improvement does not reset the count of bad epochs
``patience-off-by-one``           stops one epoch late (``bad_epochs > patience``)
``wrong-direction``               ``mode="min"`` (a loss) treated like a score: lower counts as worse
``min-delta-ignored``             a gain smaller than ``min_delta`` counts as an improvement
``ties-count-as-improvement``     a value equal to the best resets the count (``>=``)
``best-not-tracked``              ``best`` / ``best_epoch`` do not hold the best value and its epoch
``population-std``                std divides by n, not n - 1 (``np.std``'s default, ``pstdev``)
``single-run-std-zero``           a setting with one run gets std 0 instead of NaN
``not-grouped``                   one summary for all the rows: ``by`` ignored
``grouped-by-wrong-key``          grouped by another column (e.g. the seed)
``groupby-needs-sorting``         ``itertools.groupby`` on unsorted rows: a setting split in parts
``key-ignored``                   the ``key`` argument is not used (always ``val_dice``)
``missing-columns``               a summary row lacks ``mean``, ``std``, ``n`` or a ``by`` column
================================  ==========================================================
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from segkit import experiments
from segkit.checks import values
from segkit.checks.core import GENERAL_HINT, Check, close, fail, judge_each, judging

__all__ = [
    "check_log_spaced",
    "check_early_stopping",
    "check_summarize_runs",
    "reference_log_spaced",
    "reference_early_stopping",
    "reference_summarize_runs",
]

reference_log_spaced = experiments.log_spaced
reference_early_stopping = experiments.EarlyStopping
reference_summarize_runs = experiments.summarize


# =========================================================================== log_spaced

def _draw_log(rng: np.random.Generator) -> dict[str, Any]:
    """The worked grid (1e-4 to 1e-1 in 4), one between two drawn powers of ten, and one
    between two drawn values that are no powers of ten; drawn lengths."""
    a = int(rng.integers(-6, -2))
    b = a + int(rng.integers(2, 4))
    low = float(f"{10 ** rng.uniform(-6, -3):.2g}")
    high = float(f"{low * 10 ** rng.uniform(1.5, 3):.2g}")
    return {"cases": [[1e-4, 1e-1, 4, False], [10.0 ** a, 10.0 ** b, int(rng.integers(3, 8)), True],
                      [low, high, int(rng.integers(3, 8)), True]]}


def _wrong_log_spaced() -> dict[str, list[Callable[[float, float, int], list[float]]]]:
    log = np.log10
    return {
        "linear-spacing": [lambda lo, hi, n: np.linspace(lo, hi, n).tolist()],
        "logspace-takes-exponents": [lambda lo, hi, n: np.logspace(lo, hi, n).tolist()],
        "endpoint-excluded": [
            lambda lo, hi, n: np.logspace(log(lo), log(hi), n, endpoint=False).tolist()],
        "exponents-not-values": [lambda lo, hi, n: np.linspace(log(lo), log(hi), n).tolist()],
        "wrong-count": [lambda lo, hi, n: np.logspace(log(lo), log(hi), n - 1).tolist(),
                        lambda lo, hi, n: np.logspace(log(lo), log(hi), n + 1).tolist()],
    }


def _as_floats(desc: dict[str, Any], name: str) -> list[float] | None:
    """The student's values as floats; None (a failure later) when they are no numbers."""
    if desc["kind"] == "none":
        fail(f"{name} returned None", mistake="returns-none",
             hint="the function computes the values but does not `return` them.")
    found = values.python(desc, None)
    if isinstance(found, np.ndarray):
        found = found.tolist()
    if not isinstance(found, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in found):
        fail(f"{name} should be a list of numbers, but it is {values.shown(desc)}",
             hint="return a list of floats (a NumPy array or tensor is fine too).")
    return [float(v) for v in found]


def _same_values(got: list[float], want: list[float]) -> bool:
    return close(got, want, abs_tol=1e-12, rel_tol=6e-3)  # segkit rounds to 3 digits


def _ask_log(log_spaced: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(log_spaced(low, high, n))
                      for low, high, n, _ in cases["cases"]]}


def _judge_log(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    grids = list(zip(cases["cases"], answers["cases"], strict=True))
    got = []
    for (low, high, n, drawn), desc in grids:
        with judging(drawn):
            got.append(_as_floats(desc, f"log_spaced({low:g}, {high:g}, {n})"))
    for ((low, high, n, drawn), _), mine in zip(grids, got):
        want = experiments.log_spaced(low, high, n)
        if _same_values(mine, want):
            continue
        call = f"log_spaced({low:g}, {high:g}, {n})"
        message = (f"{call} is {[f'{v:.3g}' for v in mine]}, expected "
                   f"{[f'{v:.3g}' for v in want]}")
        mistake = next((m for m, forms in _wrong_log_spaced().items() for form in forms
                        if all(_same_values(g, form(lo, hi, k))
                               for ((lo, hi, k, _), _), g in zip(grids, got))), None)
        with judging(drawn):
            fail(message, mistake=mistake, hint=None if mistake else GENERAL_HINT)
    return "3 grids"


check_log_spaced = Check(
    "06", "log_spaced", "log_spaced on 3 grids",
    references=("segkit.experiments.log_spaced",),
    draw_cases=_draw_log, ask_student=_ask_log, judge_answers=_judge_log)


# =========================================================================== EarlyStopping

# (constructor arguments, values fed to step(), what the case shows)
_STOP_CASES: list[tuple[dict[str, Any], list[float], str]] = [
    ({"patience": 2, "mode": "max"}, [0.50, 0.60, 0.55, 0.58, 0.57, 0.56],
     "Dice that dips, recovers a little, then stalls"),
    ({"patience": 2, "mode": "max"}, [0.50, 0.40, 0.60, 0.55, 0.70, 0.65, 0.75],
     "Dice with a dip after every improvement"),
    ({"patience": 2, "mode": "min"}, [1.00, 0.80, 0.90, 0.95, 0.85],
     "a validation loss (lower is better)"),
    ({"patience": 2, "mode": "max", "min_delta": 0.01}, [0.800, 0.805, 0.808, 0.900],
     "Dice gaining less than min_delta"),
    ({"patience": 2, "mode": "max"}, [0.50, 0.50, 0.50, 0.50], "a flat Dice"),
    ({"patience": 3, "mode": "max"}, [0.9810, 0.8296, 0.9846, 0.9880, 0.9876, 0.7070, 0.9882,
                                      0.9895, 0.9891, 0.9885],
     "the Colab project's Dice at lr 1e-4"),
]


class _Stopper:
    """A configurable early stopper: each flag switches on one catalogued mistake."""

    def __init__(self, patience=3, min_delta=0.0, mode="max", *, first=False, last=False,
                 no_reset=False, late=False, always_max=False, no_delta=False, ties=False):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.first, self.last, self.no_reset, self.late = first, last, no_reset, late
        self.always_max, self.no_delta, self.ties = always_max, no_delta, ties
        self.best, self.ref, self.best_epoch, self.bad, self.epoch = None, None, 0, 0, 0

    def step(self, value):
        self.epoch += 1
        delta = 0.0 if self.no_delta else self.min_delta
        ref = self.ref
        if ref is None:
            better = True
        elif self.mode == "max" or self.always_max:
            better = value >= ref + delta if self.ties else value > ref + delta
        else:
            better = value <= ref - delta if self.ties else value < ref - delta
        if better:
            self.best, self.best_epoch = value, self.epoch
            if not self.no_reset:
                self.bad = 0
        else:
            self.bad += 1
        self.ref = value if self.last else self.best
        if self.first:
            return self.bad >= 1
        return self.bad > self.patience if self.late else self.bad >= self.patience


_STOP_MISTAKES: dict[str, dict[str, bool]] = {
    "stops-at-first-bad-epoch": {"first": True},
    "compares-with-last": {"last": True},
    "counter-not-reset": {"no_reset": True},
    "patience-off-by-one": {"late": True},
    "wrong-direction": {"always_max": True},
    "min-delta-ignored": {"no_delta": True},
    "ties-count-as-improvement": {"ties": True},
}


def _run_stopper(make: Callable[..., Any], kwargs: dict[str, Any], curve: list[float]):
    stopper = make(**kwargs)
    decisions = []
    for value in curve:
        decision = stopper.step(value)
        decisions.append(decision)
        if decision is True or (isinstance(decision, (bool, np.bool_)) and bool(decision)):
            break
    return stopper, decisions


def _stop_epoch(decisions: list[Any]) -> int | None:
    return len(decisions) if decisions and bool(decisions[-1]) else None


def _say_stop(epoch: int | None, n: int) -> str:
    return f"stopped after epoch {epoch}" if epoch else f"ran all {n} epochs"


def _draw_stopping(rng: np.random.Generator) -> dict[str, Any]:
    """The lesson's 6 curves: the first as the lesson shows it (the worked example), the
    others with drawn values of the same shape (an affine map v -> a + b v with b > 0
    keeps every comparison, ties included; min_delta is scaled with it)."""
    cases = []
    for k, (kwargs, curve, what) in enumerate(_STOP_CASES):
        if k == 0:
            a, b = 0.0, 1.0
        else:
            b = float(rng.uniform(0.5, 1.2))
            a = float(rng.uniform(-0.1, 0.1)) if kwargs["mode"] == "max" else \
                float(rng.uniform(0.0, 0.5))
        args = dict(kwargs)
        if "min_delta" in args:
            args["min_delta"] = round(args["min_delta"] * b, 6)
        cases.append({"kwargs": args, "curve": [round(a + b * v, 6) for v in curve],
                      "what": what, "drawn": k > 0})
    return {"cases": cases}


def _ask_stopping(EarlyStopping: Any, cases: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
    answers = []
    for case in cases["cases"]:
        stopper, decisions = _run_stopper(EarlyStopping, case["kwargs"], case["curve"])
        answers.append({"decisions": [values.describe(d) for d in decisions],
                        "best": values.describe(getattr(stopper, "best", None)),
                        "best_epoch": values.describe(getattr(stopper, "best_epoch", None))})
    return {"cases": answers}


def _student_stop(answer: dict[str, Any]) -> int | None:
    decisions = answer["decisions"]
    return len(decisions) if decisions and decisions[-1].get("value") is True else None


def _judge_stopping(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    items = list(zip(cases["cases"], answers["cases"], strict=True))
    for case, answer in items:
        for d in answer["decisions"]:
            if d["kind"] != "bool" and not (d["kind"] == "numpy-scalar" and d["dtype"] == "bool"):
                with judging(case["drawn"]):
                    fail(f"step() returned {values.shown(d)}; it should return True (stop) or "
                         "False", mistake="returns-none" if d["kind"] == "none" else None,
                         hint="step() returns whether training should stop now.")
    got = [_student_stop(a) for _, a in items]
    for (case, answer), mine in zip(items, got):
        ref, ref_decisions = _run_stopper(experiments.EarlyStopping, case["kwargs"], case["curve"])
        want = _stop_epoch(ref_decisions)
        args = ", ".join(f"{k}={v!r}" for k, v in case["kwargs"].items())
        with judging(case["drawn"]):
            if mine != want:
                n = len(case["curve"])
                message = (f"EarlyStopping({args}) fed {case['what']} {case['curve']}: it "
                           f"{_say_stop(mine, n)}; it should have {_say_stop(want, n)}")
                mistake = next((m for m, flags in _STOP_MISTAKES.items() if all(
                    _stop_epoch(_run_stopper(lambda **kw: _Stopper(**kw, **flags), c["kwargs"],
                                             c["curve"])[1]) == g
                    for (c, _), g in zip(items, got))), None)
                fail(message, mistake=mistake, hint=None if mistake else GENERAL_HINT)
            best, best_epoch = values.number(answer["best"]), values.python(
                answer["best_epoch"], None)
            if best is None or not math.isclose(best, ref.best) or best_epoch != ref.best_epoch:
                fail(f"after {case['what']} {case['curve'][:len(answer['decisions'])]}, best is "
                     f"{values.shown(answer['best'])} at best_epoch "
                     f"{values.shown(answer['best_epoch'])}; expected {ref.best:g} at epoch "
                     f"{ref.best_epoch}", mistake="best-not-tracked")
    return f"{len(items)} curves"


check_early_stopping = Check(
    "06", "EarlyStopping", "EarlyStopping on 6 validation curves",
    references=("segkit.experiments.EarlyStopping",), name="check_early_stopping",
    draw_cases=_draw_stopping, ask_student=_ask_stopping, judge_answers=_judge_stopping)


# =========================================================================== summarize_runs

_ROWS_LR = [
    {"lr": 0.01, "seed": 0, "val_dice": 0.80, "best_val_dice": 0.82},
    {"lr": 0.01, "seed": 1, "val_dice": 0.90, "best_val_dice": 0.91},
    {"lr": 0.001, "seed": 0, "val_dice": 0.70, "best_val_dice": 0.75},
    {"lr": 0.01, "seed": 2, "val_dice": 0.85, "best_val_dice": 0.88},
    {"lr": 0.001, "seed": 1, "val_dice": 0.60, "best_val_dice": 0.72},
    {"lr": 0.1, "seed": 0, "val_dice": 0.50, "best_val_dice": 0.61},
]
_ROWS_GRID = [
    {"batch_size": 8, "kernel_size": 3, "seed": 0, "val_dice": 0.90},
    {"batch_size": 8, "kernel_size": 5, "seed": 0, "val_dice": 0.80},
    {"batch_size": 32, "kernel_size": 3, "seed": 0, "val_dice": 0.40},
    {"batch_size": 8, "kernel_size": 3, "seed": 1, "val_dice": 0.70},
    {"batch_size": 8, "kernel_size": 5, "seed": 1, "val_dice": 0.84},
    {"batch_size": 32, "kernel_size": 3, "seed": 1, "val_dice": 0.50},
]


def _group_rows(rows, by, key, *, pstd=False, zero=False, groupby=False):
    """A summary like the reference's, with switches for catalogued mistakes."""
    if groupby:
        pairs = [(k, [float(r[key]) for r in g])
                 for k, g in itertools.groupby(rows, key=lambda r: tuple(r[b] for b in by))]
    else:
        groups: dict[tuple, list[float]] = {}
        for r in rows:
            groups.setdefault(tuple(r[b] for b in by), []).append(float(r[key]))
        pairs = list(groups.items())
    out = []
    for k, scores in pairs:
        if len(scores) == 1:
            std = 0.0 if zero or pstd else math.nan
        else:
            std = statistics.pstdev(scores) if pstd else statistics.stdev(scores)
        out.append({**dict(zip(by, k)), "mean": statistics.fmean(scores), "std": std,
                    "n": len(scores)})
    return out


def _summary_of(result: Any, by: tuple[str, ...], call: str) -> dict[tuple, dict[str, Any]]:
    if result is None:
        fail(f"{call} returned None", mistake="returns-none",
             hint="build the list of summary rows and `return` it.")
    if not isinstance(result, (list, tuple)) or not all(isinstance(r, dict) for r in result):
        fail(f"{call} should return a list of dicts (one per setting), but it returned "
             f"{result!r}"[:200], hint="return a list of dicts, one per setting.")
    table: dict[tuple, list[dict[str, Any]]] = {}
    for r in result:
        missing = [c for c in (*by, "mean", "std", "n") if c not in r]
        if missing:
            fail(f"{call}: the summary row {r!r} has no {missing}", mistake="missing-columns",
                 hint=f"each summary row holds the `by` columns {list(by)} and 'mean', 'std' "
                      "and 'n'.")
        table.setdefault(tuple(r[b] for b in by), []).append(r)
    return table


def _matches(result_table: dict[tuple, list[dict]], expected: list[dict], by) -> bool:
    if len(result_table) != len(expected) or any(len(v) != 1 for v in result_table.values()):
        return False
    for e in expected:
        got = result_table.get(tuple(e[b] for b in by))
        if not got:
            return False
        g = got[0]
        try:
            mean, std, n = float(g["mean"]), float(g["std"]), g["n"]
        except (TypeError, ValueError):
            return False
        if not math.isclose(mean, e["mean"], abs_tol=1e-6) or n != e["n"]:
            return False
        if math.isnan(e["std"]) != math.isnan(std):
            return False
        if not math.isnan(std) and not math.isclose(std, e["std"], abs_tol=1e-6):
            return False
    return True


def _fail_split_settings(call: str, result: list[dict], rows: list[dict], by: tuple[str, ...],
                         key: str, n_settings: int) -> None:
    """One setting in several summary rows: groupby on unsorted rows, an extra grouping
    column, or no grouping at all?"""
    message = (f"{call} gave {len(result)} summary rows for {n_settings} settings: one "
               "setting appears in several rows")
    groups = sorted((tuple(r[b] for b in by), r["n"]) for r in
                    _group_rows(rows, by, key, groupby=True))
    if sorted((tuple(r[b] for b in by), r.get("n")) for r in result) == groups:
        fail(message, mistake="groupby-needs-sorting")
    extra = [c for c in rows[0] if c not in by and c != key and all(c in r for r in result)]
    if extra:
        fail(message, mistake="grouped-by-wrong-key",
             hint=f"group by the `by` columns {list(by)} only, not also by {extra[0]!r}: the "
                  "runs of one setting differ only in their seed, and those are the runs to "
                  "average.")
    if len(result) == len(rows):
        fail(message, mistake="not-grouped")
    fail(message, hint="collect the runs of each setting in one group (a dict keyed by "
                       "tuple(row[b] for b in by)) and give one summary row per group.")


def _draw_summary(rng: np.random.Generator) -> dict[str, Any]:
    """The worked table (learning rates, val_dice), then the same runs with drawn scores
    summarised by best_val_dice, and a grid of two columns with drawn scores. The runs of a
    setting are never all neighbours (a groupby without sorting splits them) and one
    setting has a single run (its std is NaN)."""
    def drawn(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
        out = [dict(r) for r in rows]
        for r in out:
            for key in keys:
                r[key] = round(float(rng.uniform(0.3, 0.95)), 3)
        return out
    return {"cases": [
        {"rows": _ROWS_LR, "by": ["lr"], "key": "val_dice", "drawn": False},
        {"rows": drawn(_ROWS_LR, ("val_dice", "best_val_dice")), "by": ["lr"],
         "key": "best_val_dice", "drawn": True},
        {"rows": drawn(_ROWS_GRID, ("val_dice",)), "by": ["batch_size", "kernel_size"],
         "key": "val_dice", "drawn": True}]}


def _ask_summary(summarize_runs: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(summarize_runs([dict(r) for r in c["rows"]],
                                                     tuple(c["by"]), c["key"]))
                      for c in cases["cases"]]}


def _judge_summary_case(case: dict[str, Any], desc: dict[str, Any]) -> None:
    rows, by, key = case["rows"], tuple(case["by"]), case["key"]
    call = f"summarize_runs(rows, by={by!r}, key={key!r})"
    result = values.python(desc, None)
    expected = experiments.summarize(rows, by, key)
    if desc["kind"] == "none":
        fail(f"{call} returned None", mistake="returns-none",
             hint="build the list of summary rows and `return` it.")
    if not isinstance(result, (list, tuple)) or not all(isinstance(r, dict) for r in result):
        fail(f"{call} should return a list of dicts (one per setting), but it returned "
             f"{values.shown(desc)}", hint="return a list of dicts, one per setting, like "
                                           "[{'lr': 0.01, 'mean': 0.85, 'std': 0.05, "
                                           "'n': 3}, ...].")
    if len(result) == 1 and len(expected) > 1:
        fail(f"{call} gave one summary row for {len(rows)} runs of {len(expected)} settings",
             mistake="not-grouped")
    if result and not any(b in r for r in result for b in by):
        others = [c for c in rows[0] if c not in by and c != key and all(c in r for r in result)]
        if others:
            fail(f"{call} grouped the runs by {others[0]!r}, not by {list(by)}",
                 mistake="grouped-by-wrong-key",
                 hint=f"group by the `by` columns {list(by)}: the runs of one setting differ "
                      "only in their seed, and those are the runs to average.")
    table = _summary_of(result, by, call)
    if any(len(v) > 1 for v in table.values()):
        _fail_split_settings(call, result, rows, by, key, len(expected))
    if _matches(table, expected, by):
        return
    wrong_versions = [
        ("population-std", _group_rows(rows, by, key, pstd=True)),
        ("single-run-std-zero", _group_rows(rows, by, key, zero=True)),
        ("key-ignored", _group_rows(rows, by, "val_dice") if key != "val_dice" else []),
    ]
    for mistake, wrong in wrong_versions:
        if wrong and _matches(table, wrong, by):
            fail(_summary_message(call, table, expected, by), mistake=mistake)
    fail(_summary_message(call, table, expected, by), hint=GENERAL_HINT)


def _judge_summary(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_summary_case)
    return "3 tables of runs"


check_summarize_runs = Check(
    "06", "summarize_runs", "summarize_runs on 3 tables of runs",
    references=("segkit.experiments.summarize",),
    draw_cases=_draw_summary, ask_student=_ask_summary, judge_answers=_judge_summary)


def _summary_message(call, table, expected, by) -> str:
    for e in expected:
        got = table.get(tuple(e[b] for b in by))
        name = ", ".join(f"{b}={e[b]!r}" for b in by)
        if not got:
            return f"{call} has no summary row for {name}"
        g = got[0]
        return_std = g.get("std")
        if (not math.isclose(float(g["mean"]), e["mean"], abs_tol=1e-6) or g["n"] != e["n"]
                or math.isnan(e["std"]) != math.isnan(float(return_std))
                or (not math.isnan(e["std"])
                    and not math.isclose(float(return_std), e["std"], abs_tol=1e-6))):
            return (f"{call}: for {name} got mean {g['mean']!r}, std {return_std!r}, "
                    f"n {g['n']!r}; expected mean {e['mean']:.4f}, std "
                    f"{'nan' if math.isnan(e['std']) else format(e['std'], '.4f')}, "
                    f"n {e['n']}")
    return f"{call} differs from the expected summary"
