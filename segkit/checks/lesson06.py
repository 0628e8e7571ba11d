"""Checks of lesson 06 (experiments): ``log_spaced``, ``EarlyStopping``, ``summarize_runs``.

The references (what ``checks.use`` falls back to) are segkit's own:
:func:`segkit.experiments.log_spaced`, :class:`segkit.experiments.EarlyStopping` and
:func:`segkit.experiments.summarize`.

Each check runs the student's code on a few fixed cases and, when an answer differs, runs
small wrong versions (one per catalogued mistake) on the same cases: the mistake whose
answers are the student's names the hint. Mistake ids:

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
from segkit.checks.core import check, close, fail, show

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

_LOG_CASES = [(1e-4, 1e-1, 4), (1e-5, 1e-3, 3), (1e-3, 1e-1, 5)]


def _wrong_log_spaced() -> dict[str, Callable[[float, float, int], list[float]]]:
    return {
        "linear-spacing": lambda lo, hi, n: np.linspace(lo, hi, n).tolist(),
        "logspace-takes-exponents": lambda lo, hi, n: np.logspace(lo, hi, n).tolist(),
        "endpoint-excluded": lambda lo, hi, n: np.logspace(np.log10(lo), np.log10(hi), n,
                                                           endpoint=False).tolist(),
        "exponents-not-values": lambda lo, hi, n: np.linspace(np.log10(lo), np.log10(hi),
                                                              n).tolist(),
        "wrong-count": lambda lo, hi, n: np.logspace(np.log10(lo), np.log10(hi), n - 1).tolist(),
    }


def _as_floats(value: Any, name: str) -> list[float]:
    if value is None:
        fail(f"{name} returned None", mistake="returns-none",
             hint="the function computes the values but does not `return` them.")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        fail(f"{name} should be a list of numbers, but it is {show(value)}",
             hint="return a list of floats (a NumPy array or tensor is fine too).")
    return [float(v) for v in value]


def _same_values(got: list[float], want: list[float]) -> bool:
    return close(got, want, abs_tol=1e-12, rel_tol=2e-3)


@check("log_spaced", "log_spaced on 3 grids")
def check_log_spaced(log_spaced: Callable[[float, float, int], Any]):
    """``log_spaced(low, high, n)``: n values from low to high, evenly spaced on a log scale."""
    for low, high, n in _LOG_CASES:
        call = f"log_spaced({low:g}, {high:g}, {n})"
        got = _as_floats(log_spaced(low, high, n), call)
        want = experiments.log_spaced(low, high, n)
        if _same_values(got, want):
            continue
        for mistake, wrong in _wrong_log_spaced().items():
            if _same_values(got, wrong(low, high, n)):
                fail(f"{call} is {[f'{v:.3g}' for v in got]}, expected "
                     f"{[f'{v:.3g}' for v in want]}", mistake=mistake)
        fail(f"{call} is {[f'{v:.3g}' for v in got]}, expected "
             f"{[f'{v:.3g}' for v in want]}",
             hint="each value should be the previous one times the same factor "
                  "(high / low) ** (1 / (n - 1)), starting at low and ending at high.")
    return "3 grids"


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


def _run_stopper(make: Callable[..., Any], kwargs: dict[str, Any], values: list[float]):
    stopper = make(**kwargs)
    decisions = []
    for value in values:
        decision = stopper.step(value)
        decisions.append(decision)
        if decision is True or (isinstance(decision, (bool, np.bool_)) and bool(decision)):
            break
    return stopper, decisions


def _stop_epoch(decisions: list[Any]) -> int | None:
    return len(decisions) if decisions and bool(decisions[-1]) else None


def _say_stop(epoch: int | None, n: int) -> str:
    return f"stopped after epoch {epoch}" if epoch else f"ran all {n} epochs"


@check("EarlyStopping", "EarlyStopping on 6 validation curves")
def check_early_stopping(EarlyStopping: type):
    """``EarlyStopping(patience, min_delta=0.0, mode="max")`` with ``step(value) -> bool``,
    ``best`` and ``best_epoch``."""
    for kwargs, values, what in _STOP_CASES:
        stopper, decisions = _run_stopper(EarlyStopping, kwargs, values)
        for d in decisions:
            if not isinstance(d, (bool, np.bool_)):
                fail(f"step() returned {show(d)}; it should return True (stop) or False",
                     mistake="returns-none" if d is None else None,
                     hint="end step() with `return self.bad_epochs >= self.patience`.")
        ref, ref_decisions = _run_stopper(experiments.EarlyStopping, kwargs, values)
        got, want = _stop_epoch(decisions), _stop_epoch(ref_decisions)
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        if got != want:
            message = (f"EarlyStopping({args}) fed {what} {values}: it "
                       f"{_say_stop(got, len(values))}; it should have "
                       f"{_say_stop(want, len(values))}")
            for mistake, flags in _STOP_MISTAKES.items():
                _, wrong = _run_stopper(lambda **kw: _Stopper(**kw, **flags), kwargs, values)
                if _stop_epoch(wrong) == got:
                    # the mistake must explain every case, not just this one
                    if all(_stop_epoch(_run_stopper(lambda **kw: _Stopper(**kw, **flags),
                                                    k, v)[1])
                           == _stop_epoch(_run_stopper(EarlyStopping, k, v)[1])
                           for k, v, _ in _STOP_CASES):
                        fail(message, mistake=mistake)
            fail(message, hint="count the epochs in a row without improvement over the "
                               "BEST value so far, and stop when that count reaches "
                               "patience.")
        best = getattr(stopper, "best", None)
        best_epoch = getattr(stopper, "best_epoch", None)
        if not (isinstance(best, (int, float)) and math.isclose(best, ref.best)
                and best_epoch == ref.best_epoch):
            fail(f"after {what} {values[:len(decisions)]}, best is {show(best)} at "
                 f"best_epoch {show(best_epoch)}; expected {ref.best:g} at epoch "
                 f"{ref.best_epoch}", mistake="best-not-tracked")
    return f"{len(_STOP_CASES)} curves"


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
_SUMMARY_CASES = [
    (_ROWS_LR, ("lr",), "val_dice"),
    (_ROWS_LR, ("lr",), "best_val_dice"),
    (_ROWS_GRID, ("batch_size", "kernel_size"), "val_dice"),
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
             f"{show(result)}", hint="return a list like [{'lr': 0.01, 'mean': 0.85, "
                                      "'std': 0.05, 'n': 3}, ...].")
    table: dict[tuple, list[dict[str, Any]]] = {}
    for r in result:
        missing = [c for c in (*by, "mean", "std", "n") if c not in r]
        if missing:
            fail(f"{call}: the summary row {show(r)} has no {missing}", mistake="missing-columns",
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


@check("summarize_runs", "summarize_runs on 3 tables of runs")
def check_summarize_runs(summarize_runs: Callable[..., Any]):
    """``summarize_runs(rows, by, key)``: mean, sample std and n of ``key`` per setting."""
    for rows, by, key in _SUMMARY_CASES:
        call = f"summarize_runs(rows, by={by!r}, key={key!r})"
        result = summarize_runs([dict(r) for r in rows], by, key)
        expected = _group_rows(rows, by, key)
        if result is None:
            fail(f"{call} returned None", mistake="returns-none",
                 hint="build the list of summary rows and `return` it.")
        if not isinstance(result, (list, tuple)) or not all(isinstance(r, dict)
                                                            for r in result):
            fail(f"{call} should return a list of dicts (one per setting), but it "
                 f"returned {show(result)}",
                 hint="return a list like [{'lr': 0.01, 'mean': 0.85, 'std': 0.05, "
                      "'n': 3}, ...].")
        if len(result) == 1 and len(expected) > 1:
            fail(f"{call} gave one summary row for {len(rows)} runs of {len(expected)} "
                 "settings", mistake="not-grouped")
        if result and not any(b in r for r in result for b in by):
            others = [c for c in rows[0] if c not in by and c != key
                      and all(c in r for r in result)]
            if others:
                fail(f"{call} grouped the runs by {others[0]!r}, not by {list(by)}",
                     mistake="grouped-by-wrong-key",
                     hint=f"group by the `by` columns {list(by)}: the runs of one setting "
                          "differ only in their seed, and those are the runs to average.")
        table = _summary_of(result, by, call)
        if any(len(v) > 1 for v in table.values()):
            _fail_split_settings(call, result, rows, by, key, len(expected))
        if _matches(table, expected, by):
            continue
        wrong_versions = [
            ("population-std", _group_rows(rows, by, key, pstd=True)),
            ("single-run-std-zero", _group_rows(rows, by, key, zero=True)),
            ("key-ignored", _group_rows(rows, by, "val_dice") if key != "val_dice" else []),
        ]
        for mistake, wrong in wrong_versions:
            if wrong and _matches(table, wrong, by):
                fail(_summary_message(call, table, expected, by), mistake=mistake)
        fail(_summary_message(call, table, expected, by),
             hint="per setting: mean = sum / n, std = sqrt(sum((x - mean)**2) / (n - 1)), "
                  "NaN when n == 1 (statistics.mean and statistics.stdev do it).")
    return "3 tables of runs"


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
            return (f"{call}: for {name} got mean {show(g['mean'])}, std {show(return_std)}, "
                    f"n {show(g['n'])}; expected mean {e['mean']:.4f}, std "
                    f"{'nan' if math.isnan(e['std']) else format(e['std'], '.4f')}, "
                    f"n {e['n']}")
    return f"{call} differs from the expected summary"
