"""The checks of lesson 06 pass the solutions, stop at the stubs, and name each mistake."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from check_helpers import NOT_DONE, exercise_of, expect_mistake, register, register_wrong
from segkit import experiments
from segkit.checks import ExerciseNotDone, lesson06, passed, reset


# =========================================================================== log_spaced


def log_spaced(low, high, n):
    ### the solution of the notebook
    return (10 ** np.linspace(np.log10(low), np.log10(high), n)).tolist()


def test_log_spaced_passes_the_solution_and_the_reference(capsys):
    lesson06.check_log_spaced(log_spaced)
    assert capsys.readouterr().out == "✅ log_spaced on 3 grids — passed (3 grids)\n"
    assert passed("log_spaced")
    lesson06.check_log_spaced(lesson06.reference_log_spaced)
    lesson06.check_log_spaced(lambda lo, hi, n: np.geomspace(lo, hi, n))  # an array is fine


def test_log_spaced_stub_is_not_done():
    def stub(low, high, n):
        raise NotImplementedError("Exercise log_spaced: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson06.check_log_spaced(stub)
    assert not passed("log_spaced")


LOG_MISTAKES = [
    (lambda lo, hi, n: list(np.linspace(lo, hi, n)), "linear-spacing", ["linear", "log10"]),
    (lambda lo, hi, n: np.logspace(lo, hi, n).tolist(), "logspace-takes-exponents",
     ["EXPONENTS", "np.log10(low)"]),
    (lambda lo, hi, n: [lo * (hi / lo) ** (i / n) for i in range(n)], "endpoint-excluded",
     ["`high` itself"]),
    (lambda lo, hi, n: list(np.linspace(math.log10(lo), math.log10(hi), n)),
     "exponents-not-values", ["10 ** exponent"]),
    (lambda lo, hi, n: np.logspace(math.log10(lo), math.log10(hi), n - 1), "wrong-count",
     ["exactly n"]),
]


@pytest.mark.parametrize("wrong, mistake, words", LOG_MISTAKES)
def test_log_spaced_names_the_mistake(wrong, mistake, words):
    expect_mistake(lesson06.check_log_spaced, wrong, mistake, *words)


def test_log_spaced_returning_nothing():
    def no_return(low, high, n):
        np.geomspace(low, high, n)

    expect_mistake(lesson06.check_log_spaced, no_return, "returns-none", "return")


# =========================================================================== EarlyStopping


class EarlyStopping:
    ### the solution of the notebook
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best, self.best_epoch, self.bad_epochs, self.epoch = None, 0, 0, 0

    def step(self, value):
        self.epoch += 1
        if self.best is None:
            better = True
        elif self.mode == "max":
            better = value > self.best + self.min_delta
        else:
            better = value < self.best - self.min_delta
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def _variant(**changes):
    """A student's EarlyStopping with one of the catalogued mistakes."""

    class Wrong(EarlyStopping):
        def step(self, value):
            self.epoch += 1
            reference = self.last if changes.get("last") and self.epoch > 1 else self.best
            delta = 0.0 if changes.get("no_delta") else self.min_delta
            if reference is None:
                better = True
            elif self.mode == "max" or changes.get("always_max"):
                better = value >= reference + delta if changes.get("ties") \
                    else value > reference + delta
            else:
                better = value < reference - delta
            self.last = value
            if better:
                self.best, self.best_epoch = value, self.epoch
                if not changes.get("no_reset"):
                    self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            if changes.get("first"):
                return self.bad_epochs > 0
            if changes.get("late"):
                return self.bad_epochs > self.patience
            return self.bad_epochs >= self.patience

    return Wrong


def test_early_stopping_passes_the_solution_and_the_reference(capsys):
    lesson06.check_early_stopping(EarlyStopping)
    assert capsys.readouterr().out == \
        "✅ EarlyStopping on 6 validation curves — passed (6 curves)\n"
    assert passed("EarlyStopping")
    lesson06.check_early_stopping(lesson06.reference_early_stopping)


def test_early_stopping_stub_is_not_done():
    class Stub:
        def __init__(self, patience=3, min_delta=0.0, mode="max"):
            raise NotImplementedError("Exercise EarlyStopping: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson06.check_early_stopping(Stub)


STOP_MISTAKES = [
    ({"first": True}, "stops-at-first-bad-epoch", ["patience", "in a row"]),
    ({"last": True}, "compares-with-last", ["PREVIOUS", "best value so far"]),
    ({"no_reset": True}, "counter-not-reset", ["reset", "IN A ROW"]),
    ({"late": True}, "patience-off-by-one", ["one epoch late"]),
    ({"always_max": True}, "wrong-direction", ["LOWER is better", "loss"]),
    ({"no_delta": True}, "min-delta-ignored", ["min_delta"]),
    ({"ties": True}, "ties-count-as-improvement", ["strict"]),
]


@pytest.mark.parametrize("changes, mistake, words", STOP_MISTAKES)
def test_early_stopping_names_the_mistake(changes, mistake, words):
    expect_mistake(lesson06.check_early_stopping, _variant(**changes), mistake, *words)


def test_early_stopping_that_forgets_the_best_value():
    class NoBest(EarlyStopping):
        def step(self, value):
            stop = super().step(value)
            self.best_epoch = self.epoch  # overwritten every epoch
            return stop

    expect_mistake(lesson06.check_early_stopping, NoBest, "best-not-tracked", "best_epoch")


def test_early_stopping_returning_nothing():
    class Silent(EarlyStopping):
        def step(self, value):
            super().step(value)

    expect_mistake(lesson06.check_early_stopping, Silent, "returns-none", "return")


def test_the_reference_stops_the_colab_projects_curve_where_the_lesson_says():
    dice = [0.9810, 0.8296, 0.9846, 0.9880, 0.9876, 0.7070, 0.9882, 0.9895, 0.9891, 0.9885]
    for patience, stop_at in [(1, 2), (2, 6), (3, None)]:
        stopper = experiments.EarlyStopping(patience=patience)
        stops = [epoch for epoch, d in enumerate(dice, 1) if stopper.step(d)]
        assert (stops[0] if stops else None) == stop_at


# =========================================================================== summarize_runs


def summarize_runs(rows, by, key="val_dice"):
    ### the solution of the notebook
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[b] for b in by), []).append(row[key])
    summary = []
    for setting, values in groups.items():
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        summary.append({**dict(zip(by, setting)), "mean": statistics.mean(values),
                        "std": std, "n": len(values)})
    return summary


def test_summarize_runs_passes_the_solution_and_the_reference(capsys):
    lesson06.check_summarize_runs(summarize_runs)
    assert capsys.readouterr().out == \
        "✅ summarize_runs on 3 tables of runs — passed (3 tables of runs)\n"
    assert passed("summarize_runs")
    lesson06.check_summarize_runs(lesson06.reference_summarize_runs)


def test_summarize_runs_stub_is_not_done():
    def stub(rows, by, key="val_dice"):
        raise NotImplementedError("Exercise summarize_runs: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson06.check_summarize_runs(stub)


def _population_std(rows, by, key="val_dice"):
    out = summarize_runs(rows, by, key)
    for r in out:
        values = [row[key] for row in rows if tuple(row[b] for b in by) ==
                  tuple(r[b] for b in by)]
        r["std"] = float(np.std(values))
    return out


def _zero_for_one_run(rows, by, key="val_dice"):
    out = summarize_runs(rows, by, key)
    for r in out:
        if r["n"] == 1:
            r["std"] = 0.0
    return out


def _not_grouped(rows, by, key="val_dice"):
    values = [r[key] for r in rows]
    return [{"mean": statistics.mean(values), "std": statistics.stdev(values), "n": len(values)}]


def _by_seed(rows, by, key="val_dice"):
    return summarize_runs(rows, ("seed",), key)


def _groupby_unsorted(rows, by, key="val_dice"):
    out = []
    for setting, group in itertools.groupby(rows, key=lambda r: tuple(r[b] for b in by)):
        values = [r[key] for r in group]
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        out.append({**dict(zip(by, setting)), "mean": statistics.mean(values), "std": std,
                    "n": len(values)})
    return out


def _key_ignored(rows, by, key="val_dice"):
    return summarize_runs(rows, by, "val_dice")


def _no_n(rows, by, key="val_dice"):
    return [{k: v for k, v in r.items() if k != "n"} for r in summarize_runs(rows, by, key)]


def _sum_not_mean(rows, by, key="val_dice"):
    out = summarize_runs(rows, by, key)
    for r in out:
        r["mean"] = r["mean"] * r["n"]
    return out


SUMMARY_MISTAKES = [
    (_population_std, "population-std", ["n - 1", "ddof=1"]),
    (_zero_for_one_run, "single-run-std-zero", ["ONE run", "NaN"]),
    (_not_grouped, "not-grouped", ["each setting"]),
    (_by_seed, "grouped-by-wrong-key", ["seed"]),
    (_groupby_unsorted, "groupby-needs-sorting", ["NEIGHBOURING", "dict"]),
    (_key_ignored, "key-ignored", ["`key`"]),
    (_no_n, "missing-columns", ["'n'"]),
    (_sum_not_mean, None, ["no mistake the course knows"]),
]


@pytest.mark.parametrize("wrong, mistake, words", SUMMARY_MISTAKES)
def test_summarize_runs_names_the_mistake(wrong, mistake, words):
    expect_mistake(lesson06.check_summarize_runs, wrong, mistake, *words)


def test_summarize_runs_returning_nothing():
    def no_return(rows, by, key="val_dice"):
        summarize_runs(rows, by, key)

    expect_mistake(lesson06.check_summarize_runs, no_return, "returns-none", "return")


# =========================================================================== the corpus


def _stub(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return stub


class StoppingStub:
    def __init__(self, patience=3, min_delta=0.0, mode="max"):
        raise NotImplementedError("Exercise EarlyStopping: write your code here")


for _check, _rights, _stub_form in [
        (lesson06.check_log_spaced, [log_spaced, lesson06.reference_log_spaced],
         _stub("log_spaced")),
        (lesson06.check_early_stopping, [EarlyStopping, lesson06.reference_early_stopping],
         StoppingStub),
        (lesson06.check_summarize_runs, [summarize_runs, lesson06.reference_summarize_runs],
         _stub("summarize_runs"))]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub_form, NOT_DONE, f"stub_{exercise_of(_check)}")
for _i, (_fn, _mistake, _) in enumerate(LOG_MISTAKES):
    register_wrong(lesson06.check_log_spaced, _fn, _mistake, f"log_spaced_{_i}")
for _i, (_changes, _mistake, _) in enumerate(STOP_MISTAKES):
    register_wrong(lesson06.check_early_stopping, _variant(**_changes), _mistake, f"stopping_{_i}")
for _i, (_fn, _mistake, _) in enumerate(SUMMARY_MISTAKES):
    register_wrong(lesson06.check_summarize_runs, _fn, _mistake, f"summary_{_i}")
