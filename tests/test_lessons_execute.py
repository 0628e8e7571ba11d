"""The lesson-running mechanism on the fixture course; the course runs headless.

Lessons built from the fixture course (tests/fixtures/course) are executed in a fresh
kernel to the end (``execute_lesson``, as ``segkit verify`` runs them): the only cells that
raise are check cells, with ExerciseNotDone, and every check cell does raise (a check that passes a stub would pass
an empty exercise); ``lesson_run_problems`` catches lessons that break this.

The real lessons in lessons/ are not executed here: tests/test_stubs.py proves statically
that they run to the end with their stubs (only check cells reach a stub), and
``segkit verify`` (segkit_course/verify.py) executes them for real, stubs in place.
Every test here starts Jupyter kernels (marker ``notebooks``; ``make test-fast`` skips them).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import shutil

import nbformat
import pytest

from notebook_helpers import FIXTURE_SOLUTIONS, REPO_ROOT, execute_lesson, lesson_run_problems
from segkit_course import cli
from segkit_course.build import build_all, notebook_text, read_notebook
from segkit_course.run import execute_notebook, key_figures, run_course, store_outputs


pytestmark = pytest.mark.notebooks


# --------------------------------------------------------------------------- fixture course


@pytest.fixture(scope="module")
def fixture_lessons(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    build_all(FIXTURE_SOLUTIONS, root / "lessons")
    return root


@pytest.mark.parametrize("name", ["00_demo", "01_quick"])
def test_fixture_lesson_runs_with_only_check_cells_raising(fixture_lessons, name):
    nb = read_notebook(fixture_lessons / "lessons" / f"{name}.ipynb")
    run = execute_lesson(nb, cwd=fixture_lessons, timeout=60)
    assert lesson_run_problems(run) == []
    raised = [c for c in run.nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert {o.ename for c in raised for o in c.outputs if o.output_type == "error"} == {
        "ExerciseNotDone"}
    assert len(raised) == (2 if name == "00_demo" else 1)
    # the cell after a skipped exercise says it uses the reference, and still runs
    text = "".join(o.get("text", "") for c in run.nb.cells for o in c.get("outputs", []))
    assert "has not passed its check yet, so this cell uses segkit's reference" in text


def test_lesson_checks_catch_bad_lessons(fixture_lessons):
    """The lesson test fails a lesson whose check passes the stub or whose cell calls a stub."""
    nb = read_notebook(fixture_lessons / "lessons" / "01_quick.ipynb")
    lenient = copy.deepcopy(nb)
    lenient.cells[3].source = 'print("no real check")'
    calls_stub = copy.deepcopy(nb)
    calls_stub.cells[4].source = "mean([1, 2])"
    lenient_problems = lesson_run_problems(execute_lesson(lenient, cwd=fixture_lessons,
                                                          timeout=60))
    assert lenient_problems == ["check cell 4 passed the stub: a check must raise "
                                "ExerciseNotDone until the exercise is written"]
    stub_problems = lesson_run_problems(execute_lesson(calls_stub, cwd=fixture_lessons,
                                                       timeout=60))
    assert stub_problems[0].startswith("stopped at cell 5: NotImplementedError")
    assert any("is not a check cell but raised NotImplementedError" in p for p in stub_problems)


# --------------------------------------------------------------------------- run_course


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_run_course_executes_exports_and_sums_up(tmp_path, capsys):
    solutions = tmp_path / "solutions"
    shutil.copytree(FIXTURE_SOLUTIONS, solutions)
    broken = read_notebook(solutions / "01_quick.ipynb")
    broken.cells[2].source = "def mean(values):\n    return sum(values) // len(values)"
    (solutions / "02_broken.ipynb").write_text(notebook_text(broken))
    before = _digest(solutions)

    results = run_course(solutions, tmp_path / "out", timeout=60)
    out = capsys.readouterr().out

    assert _digest(solutions) == before  # solutions/ is only read
    assert [(r.lesson, r.ok) for r in results] == [
        ("00_demo", True), ("01_quick", True), ("02_broken", False)]
    assert results[0].key_figures == {"total": "44.0000"}
    assert results[1].key_figures == {"mean of 1..10": "5.50"}
    assert results[2].status == ("failed at cell 4 (id check): CheckFailed: ❌ mean: "
                                 "mean([1, 2, 3, 4]) is 2, expected 2.5 (within ±1e-09)")
    for r in results:
        assert r.executed.exists() and r.html.exists()
        assert "<html" in r.html.read_text()
    executed = read_notebook(results[0].executed)
    assert key_figures(executed) == {"total": "44.0000"}
    assert "📌 total: 44.0000" in out and "2 of 3 lessons ran to the end; 1 failed" in out
    assert "02_broken" in out and "failed at cell 4" in out

    assert cli.main(["run-course", "--solutions", str(solutions), "--only", "2",
                     "--out", str(tmp_path / "out2")]) == 1
    with pytest.raises(ValueError, match="no solution notebook matches '7'"):
        run_course(solutions, tmp_path / "out3", only=["7"])


def test_store_outputs_reproduces_the_stored_fixture(tmp_path):
    """`--inplace` is deterministic: re-executing the fixture gives the same bytes."""
    path = tmp_path / "01_quick.ipynb"
    stored = (FIXTURE_SOLUTIONS / "01_quick.ipynb").read_bytes()
    cleared = read_notebook(FIXTURE_SOLUTIONS / "01_quick.ipynb")
    for cell in cleared.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    path.write_text(notebook_text(cleared))
    assert cli.main(["run-course", "--inplace", str(path)]) == 0
    assert path.read_bytes() == stored

    failing = nbformat.reads(stored.decode(), as_version=4)
    failing.cells[4].source = "1 / 0"
    path.write_text(notebook_text(failing))
    before = path.read_bytes()
    run = store_outputs(path, timeout=60)
    assert not run.ok and run.failed_cell == 4 and run.error.startswith("ZeroDivisionError")
    assert path.read_bytes() == before  # a failed run writes nothing


def test_output_widgets_run_to_the_end_and_leave_no_widget_state(tmp_path):
    """`interact` (an Output widget) once hung the runner; its state must not be stored."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import ipywidgets as w\n"
        "out = w.Output()\n"
        "with out:\n"
        "    print('inside the output widget')\n"
        "w.interact(lambda t=0.5: print(f'threshold {t:.2f}'), t=(0.0, 1.0, 0.05))\n"
        "display(out)"),
        nbformat.v4.new_code_cell("print('after the widgets')")]
    run = execute_notebook(nb, cwd=tmp_path, timeout=60)
    assert run.ok, run.error
    assert "widgets" not in run.nb.metadata
    assert run.nb.cells[1].outputs[0].text == "after the widgets\n"
    # the Output widgets' views became what they captured
    shown = "".join(o.get("text", "") for o in run.nb.cells[0].outputs)
    assert "threshold 0.50" in shown and "inside the output widget" in shown
    path = tmp_path / "widgets.ipynb"
    path.write_text(notebook_text(nb))
    assert store_outputs(path, timeout=60).ok
    assert "widgets" not in read_notebook(path).metadata


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_a_stored_notebook_holds_what_widgets_showed_and_progress_as_text():
    """No output refers to widget state that is not saved: a box of sliders, a caption and
    a picture is stored as the caption and the picture (not ``VBox(children=...``, not
    "model not found" when reopened), and segkit's progress bars leave text."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import io\n"
        "import ipywidgets as w\n"
        "from matplotlib.figure import Figure\n"
        "fig = Figure(figsize=(2, 1))\n"
        "fig.subplots().plot([0, 1])\n"
        "png = io.BytesIO()\n"
        "fig.savefig(png, format='png')\n"
        "box = w.VBox([w.HBox([w.FloatSlider(value=0.5, description='threshold')]),\n"
        "              w.HTML('<b>threshold 0.50</b>'), w.Image(value=png.getvalue())])\n"
        "display(box)"),
        nbformat.v4.new_code_cell(
        "from segkit.progress import progress\n"
        "for epoch in range(2):\n"
        "    for batch in progress(range(4), desc='train'):\n"
        "        pass\n"
        "    print(f'epoch {epoch}')\n"
        "for batch in progress(range(4), desc='kept', leave=True):\n"
        "    pass")]
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "SEGKIT_PROGRESS")}
    run = execute_notebook(nb, cwd=REPO_ROOT, timeout=60, env=env)  # this copy of segkit
    assert run.ok, run.error
    outputs = [o for cell in run.nb.cells for o in cell.outputs]
    assert not [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    box = run.nb.cells[0].outputs
    assert [list(o.data) for o in box] == [["text/html"], ["image/png"]]
    assert box[0].data["text/html"] == "<b>threshold 0.50</b>"
    assert base64.b64decode(box[1].data["image/png"]).startswith(b"\x89PNG")
    texts = [o.data["text/plain"] for o in run.nb.cells[1].outputs if o.output_type == "display_data"]
    assert texts[:2] == ["", ""]  # the epochs' bars, gone when done
    assert texts[2].startswith("kept: 100%") and "4/4" in texts[2]
