"""The lessons' widget code works with ipywidgets 7.7.1, the floor in pyproject.toml.

Colab ships ipywidgets 7.7.1; the course declares ``ipywidgets>=7.7`` so that installing
it there changes nothing and pip prints no resolver error. This test holds that promise:
lesson 04's threshold widget (its cell, verbatim from the solution) and segkit's progress
bar run in a kernel that imports ipywidgets 7.7.1 from a separate folder, which
``.ci/run`` fills (`pip install --no-deps --target build/compat/ipywidgets-7.7.1 ...`);
nothing is downloaded here.

The other half of the promise, that every range in pyproject.toml admits Colab's package
set, is checked without a kernel against the versions listed in
``tests/fixtures/colab_packages.txt``.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from browser_helpers import skip_unless_present
from notebook_helpers import REPO_ROOT, SOLUTIONS
from segkit_course.run import execute_notebook

FLOOR = "7.7.1"
COMPAT = REPO_ROOT / "build" / "compat" / f"ipywidgets-{FLOOR}"
INSTALL = (f"python -m pip install --no-deps --target build/compat/ipywidgets-{FLOOR} "
           f"ipywidgets=={FLOOR} ipython_genutils==0.2.0")
COLAB_PACKAGES = REPO_ROOT / "tests" / "fixtures" / "colab_packages.txt"


def declared_dependencies() -> list[Requirement]:
    """The ``dependencies`` of pyproject.toml, as packaging Requirements."""
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL)[1]
    return [Requirement(spec) for spec in re.findall(r'"([^"]+)"', block)]


def colab_versions() -> dict[str, Version]:
    versions = {}
    for line in COLAB_PACKAGES.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            versions[name.lower()] = Version(version)
    return versions


def test_every_dependency_range_admits_colabs_packages():
    colab = colab_versions()
    assert Version(FLOOR) == colab["ipywidgets"]
    for requirement in declared_dependencies():
        name = requirement.name.lower()
        assert name in colab, f"{name}: add Colab's version to {COLAB_PACKAGES.name}"
        assert requirement.specifier.contains(colab[name], prereleases=True), (
            f"pyproject.toml asks for {requirement}, Colab has {name} {colab[name]}: the set-up "
            "cell's pip would print a resolver error (or replace Colab's package)")


def widget_cell_source() -> str:
    nb = nbformat.read(SOLUTIONS / "04_metrics.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == "threshold-widget")
    return cell.source


def floor_notebook() -> nbformat.NotebookNode:
    new = nbformat.v4.new_code_cell
    cells = [
        new(f"import sys\nsys.path.insert(0, {str(COMPAT)!r})\n"
            "import ipywidgets as widgets\n"
            "print(widgets.__version__)"),
        new("import torch\n"
            "from segkit import checks, viz\n"
            "torch.manual_seed(0)\n"
            "images = torch.rand(3, 3, 16, 24)            # (N, 3, H, W) float32\n"
            "masks = (torch.rand(3, 16, 24) > 0.6).long()  # (N, H, W) int64, 0/1\n"
            "logits = torch.randn(3, 1, 16, 24) * 3        # (N, 1, H, W) float32\n"
            "stats = {'mean': [0.5] * 3, 'std': [0.25] * 3}\n"
            "dice_score = checks.lesson04.reference_dice_score\n"
            "def error_colors(pred, target):\n"
            "    return torch.zeros(*target.shape, 3)"),
        new(widget_cell_source()),
        new("before = caption.value\n"
            "threshold_slider.value = 0.2\n"
            "assert caption.value != before, (before, caption.value)\n"
            "print(before)\nprint(caption.value)"),
        new("from tqdm.notebook import tqdm_notebook\n"
            "from segkit.progress import progress\n"
            "bar = progress(range(3), desc='epochs', enabled=True)\n"
            "print(isinstance(bar, tqdm_notebook), isinstance(bar.container, widgets.HBox), sum(bar))"),
    ]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.notebooks
def test_lesson04_widget_and_progress_bars_work_with_ipywidgets_floor(tmp_path):
    if not (COMPAT / "ipywidgets").is_dir():
        skip_unless_present(f"ipywidgets {FLOOR} is not in {COMPAT.relative_to(REPO_ROOT)} "
                            f"(`.ci/run` puts it there; by hand: {INSTALL})")
    run = execute_notebook(floor_notebook(), cwd=REPO_ROOT, timeout=120)
    assert run.ok, run.error
    text = ["".join(o.get("text", "") for o in cell.outputs) for cell in run.nb.cells]
    assert text[0].strip() == FLOOR
    before, after = text[3].strip().splitlines()
    assert "threshold 0.50" in before and "threshold 0.20" in after
    assert text[4].split() == ["True", "True", "3"]  # the widget bar, not the text one
    # the widget was displayed: the run stores what it showed, its caption and picture
    shown = [sorted(o.get("data", {})) for o in run.nb.cells[2].outputs]
    assert shown == [["text/html"], ["image/png"]], f"the threshold widget showed {shown}"
