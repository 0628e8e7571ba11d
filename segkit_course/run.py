"""Run the course headless: execute every solution notebook, export it, sum it up.

    segkit run-course                     # all of solutions/ -> build/course/
    segkit run-course --only 03 04        # some lessons
    python -m segkit_course.run --inplace solutions/04_metrics.ipynb
                                          # execute and STORE the outputs (for nbval)

``run_course`` executes each ``solutions/NN_name.ipynb`` in a fresh kernel of the
current Python (cwd: the course folder, the environment as it is, so
``OMP_NUM_THREADS`` is kept), writes the executed notebook and an HTML page to
``build/course/``, and prints one line per lesson: status, seconds and the key figures
(the ``📌 name: value`` lines that ``checks.key_figure`` prints). ``solutions/`` is only
read.

``--inplace`` is how a lesson author stores a solution's outputs, the reference nbval
compares against. It runs the kernel with ``REGRESSION_ENV`` (2 threads, progress bars
off, as the tests do), in the notebook's folder (as nbval does), without widget state or
timing metadata, and writes the notebook back only when every cell ran.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from segkit_course.build import notebook_text, read_notebook, solution_paths
from segkit_course.sandbox.kernel import CURRENT_PYTHON_KERNEL, CurrentPythonKernelSpecs

# The environment stored outputs are made in, and compared in. Thread counts change the
# low bits of float results (see NOTEBOOK-CI.md); progress bars are widgets whose
# state is not stored, so they are left out of stored outputs altogether.
REGRESSION_ENV = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "SEGKIT_PROGRESS": "0"}

KEY_FIGURE_PREFIX = "📌 "


# --------------------------------------------------------------------------- one notebook


@dataclass
class Execution:
    """The outcome of executing one notebook.

    ``nb`` is the executed copy (up to the failing cell); ``failed_cell`` is the 0-based
    index of the cell that failed and ``error`` one line saying why (both None when it ran
    to the end).
    """

    nb: NotebookNode
    seconds: float
    error: str | None = None
    failed_cell: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def execute_notebook(nb: NotebookNode, *, cwd: str | Path, timeout: int = 600,
                     env: dict[str, str] | None = None) -> Execution:
    """Execute a copy of ``nb`` in a fresh kernel of the current Python.

    Args:
        nb: the notebook (left unchanged).
        cwd: the kernel's working folder.
        timeout: seconds allowed per cell.
        env: the kernel's environment (default: this process's).

    Cells tagged ``raises-exception`` may raise; any other error stops the run.
    Streams are merged per cell, widget state and timings are not stored.

    Widget state is tracked *while* the notebook runs and dropped afterwards: nbclient's
    stand-in for the front end's Output widget (which ``ipywidgets.interact`` uses) needs
    that state, and without it the run hangs instead of finishing.
    """
    nb = copy.deepcopy(nb)
    km = AsyncKernelManager(kernel_name=CURRENT_PYTHON_KERNEL,
                            kernel_spec_manager=CurrentPythonKernelSpecs())
    if km.has_trait("transport_encryption") and zmq.has("curve"):
        # Newer jupyter_client: encrypt the local connection, which also spares the
        # kernel's "running over TCP without encryption" warning in every run's log.
        km.transport_encryption = "auto"
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=True,  # needed by Output widgets; removed below
        record_timing=False,
        coalesce_streams=True,
    )
    running = {"index": None}

    def remember(cell: NotebookNode, cell_index: int) -> None:
        running["index"] = cell_index

    client.on_cell_execute = remember
    error = None
    start = time.perf_counter()
    try:
        client.execute(cleanup_kc=True, env=dict(os.environ if env is None else env))
    except CellExecutionError as exc:
        evalue = (exc.evalue or "").strip().splitlines()
        error = f"{exc.ename}: {evalue[0]}" if evalue else str(exc.ename)
    except CellTimeoutError:
        error = f"the cell ran longer than {timeout} s"
    except DeadKernelError:
        error = "the kernel died (out of memory?)"
    except RuntimeError as exc:  # e.g. the kernel did not start
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    # Widget state would bloat the file and change on every run (NOTEBOOK-CI.md); the
    # widgets' views become what they showed, so no output refers to a missing state.
    static_widget_views(nb)
    nb.metadata.pop("widgets", None)
    return Execution(nb, seconds, error, running["index"] if error else None)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BOXES = ("BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel")


def static_widget_views(nb: NotebookNode) -> None:
    """Replace, in place, each widget view among ``nb``'s outputs by what the widget
    showed when the run ended, read from the widget state nbclient tracked
    (``nb.metadata.widgets``): an Image widget's picture, an HTML or Label widget's text,
    the outputs an Output widget captured, a box's children in order. Controls (sliders,
    buttons) leave nothing: the other parts show their values.

    Without this a stored notebook shows, where a widget was, "Error displaying widget:
    model not found" (JupyterLab) or its repr, ``VBox(children=(HBox(...`` (static
    views, the website)."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        if any(WIDGET_VIEW in output.get("data", {}) for output in outputs):
            cell.outputs = [static for output in outputs for static in (
                _widget_outputs(output["data"][WIDGET_VIEW]["model_id"], state)
                if WIDGET_VIEW in output.get("data", {}) else [output])]


def _widget_outputs(model_id: str, state: dict) -> list[NotebookNode]:
    """The outputs that stand for the widget ``model_id`` (see static_widget_views)."""
    model = state.get(model_id.removeprefix("IPY_MODEL_"))
    if model is None:
        return []
    name, values = model.get("model_name", ""), model.get("state", {})
    display = nbformat.v4.new_output
    if name in BOXES:
        return [out for child in values.get("children", []) for out in _widget_outputs(child, state)]
    if name == "ImageModel":
        picture = [b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]]
        kind = f"image/{values.get('format', 'png')}"
        return [display("display_data", data={kind: picture[0]})] if picture else []
    if name in ("HTMLModel", "HTMLMathModel") and values.get("value"):
        return [display("display_data", data={"text/html": values["value"]})]
    if name == "LabelModel" and values.get("value"):
        return [display("display_data", data={"text/plain": values["value"]})]
    if name == "OutputModel":
        return [nbformat.from_dict(output) for output in values.get("outputs", [])]
    return []


def key_figures(nb: NotebookNode) -> dict[str, str]:
    """The ``📌 name: value`` lines of a notebook's outputs, as {name: value}."""
    figures: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stdout":
                continue
            for line in output.get("text", "").splitlines():
                if line.startswith(KEY_FIGURE_PREFIX) and ": " in line:
                    name, value = line[len(KEY_FIGURE_PREFIX):].rsplit(": ", 1)
                    figures[name] = value
    return figures


# --------------------------------------------------------------------------- the course


@dataclass
class LessonResult:
    """One lesson of ``run_course``: ``status`` is "ok" or "failed at cell N: <error>"."""

    lesson: str
    ok: bool
    status: str
    seconds: float
    key_figures: dict[str, str] = field(default_factory=dict)
    executed: Path | None = None
    html: Path | None = None


def select_lessons(paths: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks named by ``only`` ("04", "4", "04_metrics" or a path); all if None."""
    if not only:
        return paths
    chosen = []
    for wanted in only:
        stem = Path(wanted).stem
        if stem.isdigit():
            matches = [p for p in paths if p.stem.startswith(f"{int(stem):02d}_")]
        else:
            matches = [p for p in paths if p.stem == stem]
        if not matches:
            available = ", ".join(p.stem for p in paths) or "none"
            raise ValueError(f"no solution notebook matches {wanted!r} (available: {available})")
        chosen += [p for p in matches if p not in chosen]
    return sorted(chosen)


def _export_html(nb: NotebookNode, path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")


def format_summary(results: list[LessonResult]) -> str:
    """The summary table ``run_course`` prints."""
    width = max([len("lesson")] + [len(r.lesson) for r in results])
    lines = [f"{'lesson':<{width}}  {'seconds':>7}  status / key figures"]
    for r in results:
        lines.append(f"{r.lesson:<{width}}  {r.seconds:7.1f}  {r.status}")
        for name, value in r.key_figures.items():
            lines.append(f"{'':<{width}}  {'':>7}  {KEY_FIGURE_PREFIX}{name}: {value}")
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} lessons ran to the end"
                 + (f"; {failed} failed" if failed else ""))
    return "\n".join(lines)


def run_course(solutions_dir: str | Path = "solutions", out_dir: str | Path = "build/course",
               only: list[str] | None = None, timeout: int = 600) -> list[LessonResult]:
    """Execute the solution notebooks, write them and their HTML to ``out_dir``, sum up.

    Each notebook runs in a fresh kernel of the current Python with the course folder
    (the folder holding ``solutions_dir``) as working folder and this process's
    environment. ``out_dir`` gets ``NN_name.ipynb`` (executed, also when it failed part
    way) and ``NN_name.html``. ``solutions_dir`` is not modified.
    """
    solutions_dir = Path(solutions_dir)
    out_dir = Path(out_dir)
    paths = select_lessons(solution_paths(solutions_dir), only)
    if not paths:
        raise ValueError(f"no solution notebooks NN_name.ipynb in {solutions_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    course_root = solutions_dir.resolve().parent
    results = []
    for path in paths:
        print(f"running {path} ...", flush=True)
        run = execute_notebook(read_notebook(path), cwd=course_root, timeout=timeout)
        if run.ok:
            status = "ok"
        else:
            cell = run.nb.cells[run.failed_cell] if run.failed_cell is not None else None
            where = f"cell {run.failed_cell + 1}" if cell is not None else "start-up"
            if cell is not None and cell.get("id"):
                where += f" (id {cell['id']})"
            status = f"failed at {where}: {run.error}"
        executed = out_dir / path.name
        executed.write_bytes(notebook_text(run.nb).encode("utf-8"))
        html = out_dir / f"{path.stem}.html"
        _export_html(run.nb, html)
        results.append(LessonResult(path.stem, run.ok, status, run.seconds,
                                    key_figures(run.nb), executed, html))
    print(format_summary(results))
    return results


# --------------------------------------------------------------------------- --inplace


def store_outputs(path: str | Path, timeout: int = 600) -> Execution:
    """Execute the notebook at ``path`` for nbval and write it back with its outputs.

    The kernel runs in the notebook's folder with ``REGRESSION_ENV`` (2 threads, progress
    bars off), which is what the notebook tests use. The file is written only if every
    cell ran; timing metadata and stored widget state are dropped.
    """
    path = Path(path)
    nb = read_notebook(path)
    env = {**os.environ, **REGRESSION_ENV}
    run = execute_notebook(nb, cwd=path.resolve().parent, timeout=timeout, env=env)
    if run.ok:
        for cell in run.nb.cells:
            cell.metadata.pop("execution", None)
        nbformat.validate(run.nb)
        path.write_bytes(notebook_text(run.nb).encode("utf-8"))
        print(f"stored the outputs of {path} ({run.seconds:.1f} s)")
    else:
        print(f"{path}: cell {run.failed_cell + 1 if run.failed_cell is not None else '?'} "
              f"failed: {run.error}\nthe file was not changed", file=sys.stderr)
    return run


def main(argv: list[str] | None = None) -> int:
    """``python -m segkit_course.run``: the same as ``segkit run-course``."""
    from segkit.cli import main as segkit_main

    return segkit_main(["run-course", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
