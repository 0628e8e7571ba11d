"""The notebook regression: each solution's stored outputs against a fresh run.

nbval executes every solution and compares its outputs: exactly, except in cells that
declare a tolerance for their trained figures, which segkit_course.figures compares
(the text around the numbers exactly, each number within the tolerance). Each notebook
runs once, in a course folder of its own, so that two pytest workers never share
``runs/`` or ``build/``; under ``make test`` with one thread per worker, and one
training notebook at two threads as well (threads change float low bits).

It must also catch real changes: deliberate regressions applied to copies of solutions
(a learning rate, a threshold, a loss, a model) must fail, naming the cell and the
figure. A tolerance so wide that one of them passes is a test that cannot fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from notebook_helpers import (
    FIXTURE_SOLUTIONS,
    REPO_ROOT,
    SOLUTIONS,
    notebook_params,
    run_nbval,
)
from segkit_course.build import notebook_text, read_notebook

pytestmark = pytest.mark.notebooks


def course_copy(root: Path, notebooks: dict[str, object]) -> list[Path]:
    """A course folder at ``root``: segkit and datasets linked, the notebooks written.

    ``notebooks`` maps a file name to a notebook node; they go to ``root/solutions/``,
    where the set-up cell finds the course folder one level up, as in the repository.
    """
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("segkit", "datasets"):
        (root / folder).symlink_to(REPO_ROOT / folder, target_is_directory=True)
    (root / "solutions").mkdir()
    paths = []
    for name, nb in notebooks.items():
        path = root / "solutions" / name
        path.write_text(notebook_text(nb), encoding="utf-8")
        paths.append(path)
    return paths


def failed_cells(stdout: str) -> list[str]:
    """The cells an nbval run failed, as ``"Cell N"`` (N counts code cells from 0)."""
    return re.findall(r"^FAILED \S+::(Cell \d+)", stdout, flags=re.MULTILINE)


# --------------------------------------------------------------------------- solutions


@pytest.mark.parametrize("solution", notebook_params(SOLUTIONS, "solution"))
def test_solution_regresses(solution, tmp_path):
    """A fresh run of the solution matches its stored outputs (threads: the environment's)."""
    [path] = course_copy(tmp_path, {solution.name: read_notebook(solution)})
    result = run_nbval([path], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_a_training_notebook_regresses_at_two_threads(tmp_path):
    """Lesson 04 trains a model: its stored figures hold at 2 threads as at 1."""
    solution = SOLUTIONS / "04_metrics.ipynb"
    [path] = course_copy(tmp_path, {solution.name: read_notebook(solution)})
    result = run_nbval([path], cwd=tmp_path, threads=2)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# --------------------------------------------------------------------------- regressions


@dataclass(frozen=True)
class Regression:
    """A deliberate change to one cell of a solution, and where it must show.

    The notebook is cut after ``stop_after`` (a cell id) to save time; ``failing`` maps
    the cell ids that must fail to a piece of text the failure must name (the figure).
    """

    name: str
    lesson: str
    cell: str
    old: str
    new: str
    stop_after: str
    failing: dict[str, str]


REGRESSIONS = [
    Regression("lesson 03 at the laptop project's learning rate 1e-5", "03_training.ipynb",
               "bdbf8a8e", "torch.optim.AdamW(model.parameters(), lr=3e-3)",
               "torch.optim.AdamW(model.parameters(), lr=1e-5)", "bdbf8a8e",
               {"bdbf8a8e": "val Dice"}),
    Regression("lesson 04 with the threshold at 0.9", "04_metrics.ipynb",
               "use-dice-iou", "dice_05 = dice_score(logits, masks)",
               "dice_05 = dice_score(logits, masks, threshold=0.9)", "use-dice-iou",
               {"use-dice-iou": "val Dice"}),
    Regression("lesson 05 without class weights", "05_multiclass.ipynb",
               "9a4e4763", "nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE)",
               "nn.CrossEntropyLoss(ignore_index=IGNORE)", "ec83e7a8",
               {"9a4e4763": "train loss", "ec83e7a8": "mIoU"}),
    Regression("lesson 07 with a U-Net of one level fewer", "07_inference.ipynb",
               "3d9a03d3", 'TrainConfig(dataset="carvana", base=8,',
               'TrainConfig(dataset="carvana", base=8, depth=3,', "d84a2c56",
               {"d84a2c56": "'depth': 4, 'kernel_size': 3, 'bilinear': False}\": 4 stored, "
                            "3 now"}),
]


def regressed(regression: Regression):
    """The solution with the regression applied, cut after ``stop_after``."""
    nb = read_notebook(SOLUTIONS / regression.lesson)
    ids = [cell.get("id") for cell in nb.cells]
    cell = nb.cells[ids.index(regression.cell)]
    assert cell.source.count(regression.old) == 1, \
        f"{regression.name}: {regression.old!r} is not in cell {regression.cell} any more"
    cell.source = cell.source.replace(regression.old, regression.new)
    nb.cells = nb.cells[:ids.index(regression.stop_after) + 1]
    return nb


def code_cell_number(nb, cell_id: str) -> int:
    """nbval's number of a cell: its index among the code cells."""
    code_ids = [cell.get("id") for cell in nb.cells if cell.cell_type == "code"]
    return code_ids.index(cell_id)


@pytest.mark.parametrize("regression", REGRESSIONS, ids=[r.lesson[:2] for r in REGRESSIONS])
def test_a_deliberate_regression_fails_naming_the_figure(regression, tmp_path):
    nb = regressed(regression)
    [path] = course_copy(tmp_path, {regression.lesson: nb})
    result = run_nbval([path], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{regression.name} passed the regression:\n{output[-3000:]}"
    failed = failed_cells(result.stdout)
    for cell_id, figure in regression.failing.items():
        assert f"Cell {code_cell_number(nb, cell_id)}" in failed, \
            f"{regression.name}: cell {cell_id} did not fail ({failed}):\n{output[-4000:]}"
        assert figure in output, f"{regression.name}: {figure!r} not named:\n{output[-4000:]}"


# --------------------------------------------------------------------------- the comparator


def test_a_tolerance_lets_a_figure_move_within_it_and_not_beyond(tmp_path):
    """On the fixture course: a stored figure nudged within its tolerance passes, beyond
    it fails naming the line; the text around it stays exact."""
    stored = read_notebook(FIXTURE_SOLUTIONS / "00_demo.ipynb")
    cell_index = [c.get("id") for c in stored.cells].index("ex1-use")
    assert stored.cells[cell_index].outputs[0].text == "total = 44\n📌 total: 44.0000\n"

    def variant(text: str, tolerance: dict | None):
        nb = read_notebook(FIXTURE_SOLUTIONS / "00_demo.ipynb")
        cell = nb.cells[cell_index]
        cell.outputs[0].text = text
        if tolerance is not None:
            cell.metadata.setdefault("segkit", {})["tolerance"] = tolerance
        return nb

    cases = {
        "within.ipynb": variant("total = 44\n📌 total: 44.0300\n", {"abs": 0.05}),
        "beyond.ipynb": variant("total = 44\n📌 total: 44.0600\n", {"abs": 0.05}),
        "exact.ipynb": variant("total = 44\n📌 total: 44.0300\n", None),
        "integer.ipynb": variant("total = 45\n📌 total: 44.0000\n", {"abs": 0.05}),
        "integers.ipynb": variant("total = 45\n📌 total: 44.0000\n", {"abs": 0.05,
                                                                     "integers": 1}),
        "text.ipynb": variant("sum = 44\n📌 total: 44.0000\n", {"abs": 0.05}),
        "line.ipynb": variant("total = 44\n📌 total: 44.2000\n",
                              {"abs": 0.05, "lines": {"📌 total": {"abs": 0.5}}}),
    }
    paths = course_copy(tmp_path, cases)
    result = run_nbval(paths, cwd=tmp_path)
    failed = {line.split("::")[0].split("/")[-1] for line in result.stdout.splitlines()
              if line.startswith("FAILED")}
    assert failed == {"beyond.ipynb", "exact.ipynb", "integer.ipynb", "text.ipynb"}, \
        result.stdout[-5000:]
    assert "'📌 total: 44.0600': 44.0600 stored, 44.0000 now (tolerance ±0.05)" \
        in result.stdout
    assert "line changed: stored 'sum = 44', now 'total = 44'" in result.stdout
