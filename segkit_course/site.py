"""The course website: every lesson as a page, built from the stored outputs.

    make site                                   # or: segkit build-site, or:
    python -m segkit_course.site [--out build/site]

Nothing is executed: each page is a solution notebook with the outputs stored in it
(``python -m segkit_course.run --inplace`` stores them). The pages are built by Sphinx
with MyST-NB and the book theme (the engine of Jupyter Book 1: launch buttons, search,
navigation), configured in ``site/conf.py``; ``site/index.md`` is the home page.

What a page adds to its solution notebook (``site_page``):

- under the title, a "run this lesson" box: Colab (the course's address), JupyterLab on
  your computer, downloads of the lesson notebook (exercises to do) and of the page's
  notebook (solutions included);
- before each exercise, the cell as the lesson shows it (the stub); the solution follows,
  folded behind "Show the solution"; a written answer likewise behind "Show the answer";
- the set-up cell is folded; widgets (which need a running kernel) become a note;
- the Colab badge image is dropped (the link is in the box and in the launch button), so
  a page loads nothing from other sites.

The staged sources go to ``build/site-src`` (written only where they change, so a second
build is quick), the HTML to ``build/site`` (open ``build/site/index.html``).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from segkit_course.address import colab_url, course_url
from segkit_course.build import (
    BEGIN,
    END,
    SOLUTION_ONLY_TAG,
    annotate,
    build_lesson,
    exercise_name,
    find_solution_blocks,
    is_setup_cell,
    notebook_text,
    read_notebook,
    solution_paths,
    tags,
)
from segkit_course.setup_cell import COLAB_BADGE_IMAGE
from segkit.errors import SegkitError

# The notebooks to download, copied to the site's notebooks/ (site/conf.py: html_extra_path)
NOTEBOOKS = Path("_extra") / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("*An interactive widget: it works when the notebook runs (in Colab or "
               "JupyterLab), not on this page.*")


class SiteBuildError(SegkitError, RuntimeError):
    """Sphinx could not build the website; the message holds its last lines."""


def launch_box(name: str, url: str) -> NotebookNode:
    """The markdown cell under a page's title: where and how to run the lesson."""
    folder = url.rstrip("/").rsplit("/", 1)[-1]
    lesson = f"lessons/{name}.ipynb"
    text = "\n".join([
        ":::{admonition} Run this lesson",
        ":class: tip course-launch",
        f"**In Colab**: [open `{lesson}` in Colab]({colab_url(lesson, url)}), then run its "
        "first cell (it installs the course).",
        "",
        "**On your computer** (Windows, macOS or Linux), once:",
        "",
        "```",
        f"git clone {url}",
        f"cd {folder}",
        'pip install -e ".[lab]"',
        "```",
        "",
        f"then `jupyter lab {lesson}` in that folder.",
        "",
        f'**Download**: <a href="../notebooks/{name}.ipynb" download>the lesson notebook</a> '
        f'(exercises to do), <a href="../notebooks/{name}-solutions.ipynb" download>this '
        "page's notebook</a> (solutions and outputs included).",
        ":::",
    ])
    return nbformat.v4.new_markdown_cell(text, id=f"{name}-launch"[:64])


def _fold_answer(source: str) -> str:
    """A markdown answer's solution blocks wrapped in a <details> toggle."""
    lines, out, inside = source.split("\n"), [], False
    for line in lines:
        if BEGIN.match(line):
            out += ["<details class=\"course-answer\"><summary>Show the answer</summary>", ""]
            inside = True
        elif END.match(line) and inside:
            out += ["", "</details>"]
            inside = False
        else:
            out.append(line)
    return "\n".join(out)


def _fold(cell: NotebookNode, prompt: str) -> None:
    cell.metadata["tags"] = tags(cell) + ["hide-input"]
    cell.metadata["mystnb"] = {"code_prompt_show": prompt, "code_prompt_hide": "Hide it"}


def _page_outputs(cell: NotebookNode) -> None:
    """Widget views become a note (their state is not stored, so they cannot render)."""
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if WIDGET_MIME in data:
            output["data"] = {"text/markdown": WIDGET_NOTE}


def site_page(solution: NotebookNode, name: str, url: str) -> NotebookNode:
    """The page of the solution notebook ``name`` (e.g. "04_metrics"), for a site whose
    course address is ``url``. See the module docstring for what it adds."""
    nb = annotate(solution, name, url)
    stubs = {cell.get("id"): cell.source for cell in build_lesson(solution, name, url).cells}
    cells = []
    for cell in nb.cells:
        if SOLUTION_ONLY_TAG in tags(cell):
            continue
        cell = copy.deepcopy(cell)
        cell.metadata.pop("execution", None)
        if not cells:  # the title cell
            cell.source = "\n".join(line for line in cell.source.split("\n")
                                    if COLAB_BADGE_IMAGE not in line)
            cells += [cell, launch_box(name, url)]
            continue
        if cell.cell_type == "markdown" and find_solution_blocks(cell.source)[0]:
            cell.source = _fold_answer(cell.source)
        elif is_setup_cell(cell):
            _fold(cell, "Show the set-up cell")
        elif exercise_name(cell):
            stub = nbformat.v4.new_code_cell(stubs[cell.get("id")], id=f"{cell['id']}-stub")
            cells.append(stub)
            cell.source = "\n".join(line for line in cell.source.split("\n")
                                   if not (BEGIN.match(line) or END.match(line)))
            _fold(cell, "Show the solution")
        _page_outputs(cell)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def stage(course: Path, stage_dir: Path, url: str) -> list[str]:
    """Write the site's sources into ``stage_dir``: site/ (the address filled in), one
    page per solution under lessons/, the notebooks to download under _extra/notebooks/
    (the lesson, and the solution with its outputs). Returns the page names."""
    site = course / "site"
    if not (site / "conf.py").is_file():
        raise SiteBuildError(f"{site / 'conf.py'} is missing: the website's configuration "
                             "lives there (restore it from the course repository)")
    folder = url.rstrip("/").rsplit("/", 1)[-1]
    for source in sorted(site.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            data = source.read_bytes()
            if source.suffix == ".md":
                text = data.decode("utf-8").replace("{{course_url}}", url)
                data = text.replace("{{course_folder}}", folder).encode("utf-8")
            _write_if_changed(stage_dir / source.relative_to(site), data)
    names = []
    for path in solution_paths(course / "solutions"):
        solution = read_notebook(path)
        name = path.stem
        lesson = build_lesson(solution, name, url)
        page = site_page(solution, name, url)
        _write_if_changed(stage_dir / "lessons" / path.name, notebook_text(page).encode())
        _write_if_changed(stage_dir / NOTEBOOKS / path.name, notebook_text(lesson).encode())
        _write_if_changed(stage_dir / NOTEBOOKS / f"{name}-solutions.ipynb",
                          notebook_text(annotate(solution, name, url)).encode())
        names.append(name)
    for old in (stage_dir / "lessons").glob("*.ipynb"):
        if old.stem not in names:
            old.unlink()
    return names


def build_site(course: str | Path = ".", out: str | Path = "build/site",
               stage_dir: str | Path | None = None, quiet: bool = True) -> Path:
    """Build the website of the course folder ``course`` into ``out``; returns
    ``out/index.html``. Raises SiteBuildError with Sphinx's messages when it fails
    (warnings count as failures: a broken link or a missing image is a bug)."""
    course, out = Path(course).resolve(), Path(out).resolve()
    stage_dir = Path(stage_dir).resolve() if stage_dir else out.parent / "site-src"
    url = course_url(course)
    stage(course, stage_dir, url)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going",
               "-d", str(stage_dir / "_doctrees"), str(stage_dir), str(out)]
    if quiet:
        command.insert(3, "-q")
    env = dict(os.environ, SEGKIT_COURSE_URL=url)  # site/conf.py's launch buttons
    done = subprocess.run(command, cwd=course, env=env, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = "\n".join(((done.stderr or "") + (done.stdout or "")).splitlines()[-30:])
        raise SiteBuildError(f"sphinx failed to build the site from {stage_dir} (exit "
                             f"{done.returncode}):\n{tail}")
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segkit_course.site",
        description="Build the course website (build/site) from the solutions' stored "
                    "outputs, without executing anything.")
    parser.add_argument("--course", default=".", metavar="DIR",
                        help="the course folder (default: .)")
    parser.add_argument("--out", default="build/site", metavar="DIR",
                        help="where to write the HTML (default: build/site)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = build_site(args.course, args.out)
    except (SegkitError, FileNotFoundError) as exc:
        print(f"site: error: {exc}", file=sys.stderr)
        return 1
    print(f"built {index} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
