"""The set-up cell every course notebook opens with, and its "Open in Colab" badge.

``COURSE_REPO_URL`` is the one place the course's address is written; the set-up
cell's ``git clone`` and the badges are derived from it. The build
(``segkit build-lessons``) writes the current set-up cell and badge into every lesson,
replacing older versions, so changing them here changes every notebook.
"""

from __future__ import annotations

COURSE_REPO_URL = "https://github.com/segkit-course/segkit"
COURSE_BRANCH = "main"
COLAB_BADGE_BASE = (
    COURSE_REPO_URL.replace("https://github.com/", "https://colab.research.google.com/github/")
    + f"/blob/{COURSE_BRANCH}/lessons/"
)
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

SETUP_TAG = "setup"
SETUP_METADATA = {"setup": True}  # stored under the cell's metadata "segkit" key
SETUP_CELL_ID = "segkit-setup"  # id of a set-up cell the build has to insert

_SETUP_TEMPLATE = '''\
# Set-up: run this cell first. It puts you in the course folder and imports segkit.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/segkit"):  # first run in this Colab session
        url = "{url}"
        subprocess.run(["git", "clone", "--quiet", "--depth=1", url, "/content/segkit"], check=True)
        # --no-deps keeps Colab's own torch and torchvision (reinstalling them is slow and
        # can break the GPU build); the few small packages segkit needs are named below.
        pip = [sys.executable, "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["--no-deps", "-e", "/content/segkit"], check=True)
        subprocess.run(pip + ["tqdm", "ipywidgets", "nbformat", "nbclient"], check=True)
    os.chdir("/content/segkit")
elif not os.path.isdir("segkit") and os.path.isdir("../segkit"):
    os.chdir("..")  # opened from lessons/ or solutions/: work from the course folder
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())  # so that `import segkit` finds the course's copy
import segkit
from segkit import checks'''


def setup_cell_source() -> str:
    """The source of the set-up cell (the first code cell of every notebook).

    In Colab (``"google.colab" in sys.modules``) it clones the course once and installs
    segkit without touching torch/torchvision, then moves into the course folder.
    Elsewhere it moves from ``lessons/`` or ``solutions/`` up to the course folder (so
    relative paths such as ``data/...`` mean the same in Jupyter, Colab, nbval and
    ``segkit run-course``) and imports segkit. It prints nothing.
    """
    return _SETUP_TEMPLATE.replace("{url}", COURSE_REPO_URL)


def badge_url(notebook_name: str) -> str:
    """Colab address of ``lessons/<notebook_name>`` (``.ipynb`` added when missing)."""
    name = notebook_name if notebook_name.endswith(".ipynb") else notebook_name + ".ipynb"
    return COLAB_BADGE_BASE + name


def badge_markdown(notebook_name: str) -> str:
    """The "Open in Colab" badge (one markdown line) for ``lessons/<notebook_name>``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({badge_url(notebook_name)})"
