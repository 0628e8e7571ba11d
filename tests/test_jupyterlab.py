"""The solutions run in JupyterLab as a student runs them: in a real browser, through menus.

A JupyterLab server (with a token) serves a temporary copy of the course; the system's
headless Chromium opens a solution with its outputs cleared, runs "Run All Cells" from
the Run menu and waits for every cell to finish. Lesson 00: every check cell shows its
"passed" line and no cell shows an error. Lesson 04: the same, then the threshold slider
is moved with the keyboard and the widget's caption shows another Dice. And lesson 00 as
students get it (stubs in place) stops at its first unfinished exercise, as its text says.

Set SEGKIT_SCREENSHOTS=<folder> to keep a PNG of each notebook after its run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from browser_helpers import chromium_browser, chromium_path, free_port
from notebook_helpers import LESSONS, REPO_ROOT, SOLUTIONS
from segkit_course.build import is_check_cell

pytestmark = pytest.mark.notebooks

# JupyterLab settings for a quiet, fully rendered notebook: every cell in the page (no
# windowing), no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the notebook on show
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
RUN_SECONDS = 600  # a guard against a hang; lesson 04 takes about a minute on 2 quiet cores


def stripped_copy(name: str, folder: Path, source: Path = SOLUTIONS) -> list[str]:
    """Copy ``source``/<name>.ipynb into ``folder`` with its outputs cleared; returns the
    names of its check cells' exercises."""
    nb = nbformat.read(source / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return [cell.metadata["segkit"]["check"] for cell in nb.cells if is_check_cell(cell)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(URL of a JupyterLab on a temporary copy of the course, its token)."""
    chromium_path()  # skip before starting anything when there is no browser
    course = tmp_path_factory.mktemp("course")
    for part in ("segkit", "datasets", "pyproject.toml"):
        (course / part).symlink_to(REPO_ROOT / part)
    (course / "solutions").mkdir()
    (course / "lessons").mkdir()
    settings = course.parent / f"{course.name}-lab-settings"
    for path, values in LAB_SETTINGS.items():
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    private = course.parent / f"{course.name}-jupyter"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(private / "config"),
               JUPYTER_RUNTIME_DIR=str(private / "runtime"))
    log = (course.parent / f"{course.name}-lab.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={course}", f"--LabApp.user_settings_dir={settings}",
         f"--LabServerApp.workspaces_dir={settings}"],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    log.seek(0)
                    pytest.fail(f"JupyterLab did not start:\n{log.read()[-2000:]}")
                time.sleep(0.5)
        yield course, url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


def run_all(browser, lab, name: str, source: Path = SOLUTIONS, until_error: bool = False):
    """Open <name>.ipynb of ``source`` (solutions/ or lessons/, outputs cleared) in
    JupyterLab, Run All Cells from the Run menu, wait until every code cell has run (or,
    ``until_error``, until the run stopped at a cell that raised); returns (page, check
    exercise names)."""
    course, url, token = lab
    checks = stripped_copy(name, course / source.name, source)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # reset: open only this notebook (not the tabs an earlier test left in the workspace)
    page.goto(f"{url}/lab/tree/{source.name}/{name}.ipynb?token={token}&reset")
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=60_000)
    # the kernel has started and JupyterLab is connected to it
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"Python 3.*\| Idle")).wait_for(
        timeout=60_000)
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    code_cells = page.locator(f"{NOTEBOOK} .jp-CodeCell")
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        prompts = code_cells.locator(".jp-InputArea-prompt").all_inner_texts()
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            break
        if until_error and prompts and not any("*" in p for p in prompts) \
                and page.locator(f"{NOTEBOOK} {STDERR}").count():
            break
        assert time.monotonic() < deadline, f"{name}: not done after {RUN_SECONDS} s: {prompts}"
        page.wait_for_timeout(500)
    shots = os.environ.get("SEGKIT_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"lab-{source.name}-{name}.png"))
    return page, checks


def assert_checks_passed_and_no_errors(page, checks: list[str], name: str) -> None:
    errors = page.locator(f"{NOTEBOOK} {STDERR}")
    assert errors.count() == 0, f"{name}: {errors.all_inner_texts()}"
    text = page.locator(NOTEBOOK).inner_text()
    for exercise in checks:
        assert re.search(rf"✅ {exercise}\b.*passed", text), f"{name}: no passed line for {exercise}"


def test_lesson00_runs_all_in_jupyterlab_with_every_check_passing(browser, lab):
    page, checks = run_all(browser, lab, "00_setup")
    assert checks == ["float32_mib", "foreground_fraction", "list_pairs"]
    assert_checks_passed_and_no_errors(page, checks, "00_setup")
    page.close()


def test_lesson00_with_its_stubs_run_all_stops_at_the_first_unfinished_exercise(browser, lab):
    """What lesson 00 tells students: Run All stops at the first check cell whose exercise
    is not done, with one line saying so, as Colab's Run all does (Colab has no cell tags,
    so no tag may let JupyterLab run past it)."""
    page, checks = run_all(browser, lab, "00_setup", LESSONS, until_error=True)
    errors = page.locator(f"{NOTEBOOK} {STDERR}").all_inner_texts()
    assert len(errors) == 1 and f"Exercise `{checks[0]}` is not done yet" in errors[0], errors
    assert "192 pairs: 48 cars" not in page.locator(NOTEBOOK).inner_text()  # not run
    page.close()


def test_lesson04_threshold_slider_changes_the_dice_in_the_caption(browser, lab):
    page, checks = run_all(browser, lab, "04_metrics")
    assert_checks_passed_and_no_errors(page, checks, "04_metrics")
    slider = page.locator(".widget-slider", has_text="threshold")
    caption = page.locator(".widget-html", has_text="val Dice")
    try:
        caption.wait_for(timeout=30_000)
    except Exception:  # playwright's TimeoutError: say what the output area shows instead
        shown = page.locator(".jp-OutputArea-output", has_text="widget").all_inner_texts()
        pytest.fail(f"the threshold widget did not render (is jupyterlab_widgets' lab "
                    f"extension installed?); widget outputs show: {shown}")
    before = caption.inner_text()
    assert "threshold 0.50" in before
    slider.locator(".noUi-handle").focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")  # 0.50 -> 0.35 in steps of 0.05
    page.wait_for_function(
        "el => el.innerText.includes('threshold 0.35')", arg=caption.element_handle(),
        timeout=30_000)
    after = caption.inner_text()
    shots = os.environ.get("SEGKIT_SCREENSHOTS")
    if shots:
        caption.scroll_into_view_if_needed()
        page.screenshot(path=str(Path(shots) / "lab-04_metrics-slider.png"))
    dice = [re.search(r"val Dice = ([\d.]+)", text)[1] for text in (before, after)]
    assert dice[0] != dice[1], (before, after)
    page.close()
