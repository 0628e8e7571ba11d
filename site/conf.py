"""Sphinx configuration of the course website (built by `make site`, i.e.
`python -m segkit_course.site`, which stages the notebooks next to this file first).

Pages are the solution notebooks with their stored outputs: nothing is executed. The
course's address (launch buttons, links) comes from pyproject.toml's [project.urls].

Formulas are typeset by MathJax from the site's own copy (`_static/mathjax`, taken from
the sphinx-mathjax-offline package), so the pages load nothing from other sites and work
offline; code has a copy button (sphinx-copybutton) and wraps instead of scrolling
(`_static/course.css`).
"""

import importlib.util
import os
import shutil
from pathlib import Path

from segkit_course.address import BRANCH, course_url

# `segkit build-site` passes the address it stamped into the pages; pyproject.toml's otherwise
URL = os.environ.get("SEGKIT_COURSE_URL") or course_url()

project = "segkit: image segmentation with U-Net in PyTorch"
author = "the segkit course authors"
copyright = "the segkit course authors"

extensions = ["myst_nb", "sphinx_copybutton"]
exclude_patterns = ["_build", "_extra/**", "downloads/**"]  # downloads/: older builds
nb_execution_mode = "off"  # pages show the stored outputs; nothing is re-run
nb_merge_streams = True
# $...$ and $$...$$ as the notebooks write them (JupyterLab renders the same cells)
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
myst_dmath_double_inline = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# the notebooks to download (lesson and solutions) are staged under _extra/notebooks/
html_extra_path = ["_extra"]
html_copy_source = False  # the page's own source is neither notebook: don't offer it
copybutton_selector = ":not(.output) > div.highlight pre"  # code, not its outputs
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static: the copy made below

html_theme = "sphinx_book_theme"
html_title = "segkit course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"
html_theme_options = {
    "repository_url": URL,
    "repository_branch": BRANCH,
    "path_to_docs": "",  # a page lessons/NN_name opens lessons/NN_name.ipynb in Colab
    "launch_buttons": {"colab_url": "https://colab.research.google.com",
                       "notebook_interface": "jupyterlab"},
    "use_repository_button": True,
    "use_download_button": True,
    "show_navbar_depth": 1,
    "home_page_in_toc": True,
    "navbar_persistent": [],  # the search field lives in the sidebar (one search box)
}
html_context = {"default_mode": "light"}  # the theme needs a mode; light is the default

# What MathJax's tex-chtml.js loads: itself, its TeX extensions, fonts, menu and the
# accessibility parts the menu offers (7 MB of the package's 24: no SVG or MathML input).
MATHJAX_PARTS = ["tex-chtml.js", "input/tex", "output/chtml", "ui", "a11y", "sre"]


def mathjax_folder() -> Path:
    """The MathJax 3 files of the sphinx-mathjax-offline package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the website needs MathJax from the package sphinx-mathjax-offline: "
                           "pip install -e \".[course]\" in the course folder")
    return Path(spec.origin).parent / "static" / "mathjax"


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_folder(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def lesson_downloads(app, pagename, templatename, context, doctree) -> None:
    """The theme's download menu offers the lesson notebook (exercises to do) and the
    notebook with the solutions, as the box under each lesson's title does."""
    buttons = context.get("header_buttons", [])
    group = next((b for b in buttons if b.get("label") == "download-buttons"), None)
    if group is None:
        return
    if not pagename.startswith("lessons/"):
        buttons.remove(group)  # the home page: nothing to download
        return
    name, pathto = pagename.split("/", 1)[1], context["pathto"]
    group["buttons"] = [
        {"type": "link", "url": pathto(f"notebooks/{name}.ipynb", 1), "text": "lesson .ipynb",
         "tooltip": "The lesson notebook, exercises to do", "icon": "fas fa-code",
         "label": "download-notebook-button"},
        {"type": "link", "url": pathto(f"notebooks/{name}-solutions.ipynb", 1),
         "text": "solutions .ipynb", "tooltip": "This page's notebook, solutions included",
         "icon": "fas fa-check", "label": "download-solutions-button"},
        *[b for b in group["buttons"] if b.get("label") == "download-pdf-button"],
    ]


def setup(app):
    mathjax_folder()  # fail at the start, saying what to install, rather than at the end
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", lesson_downloads, priority=900)  # after the theme's
