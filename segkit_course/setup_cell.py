"""The set-up cell every course notebook opens with, and its "Open in Colab" badge.

The course's address (the set-up cell's ``git clone`` and the badges) is read from
``pyproject.toml`` (:mod:`segkit_course.address`); pass ``url=`` to use another. The build
(``segkit build-lessons``) writes the current set-up cell and badge into every lesson,
replacing older versions, so changing them here changes every notebook.
"""

from __future__ import annotations

from segkit_course.address import colab_url, course_url

COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

SETUP_TAG = "setup"
SETUP_METADATA = {"setup": True}  # stored under the cell's metadata "segkit" key
SETUP_CELL_ID = "segkit-setup"  # id of a set-up cell the build has to insert

_SETUP_TEMPLATE = '''\
# Set-up: run this cell first. It puts you in the course folder and imports segkit.
import importlib.metadata, os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/segkit"):  # first run in this Colab session
        url = "{url}"
        clone = subprocess.run(["git", "clone", "--quiet", "--depth=1", url, "/content/segkit"],
                               capture_output=True, text=True,
                               env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        if clone.returncode != 0:
            why = (clone.stderr.strip().splitlines() or ["git failed"])[0]
            raise RuntimeError(f"The course could not be downloaded ({why}): put your "
                               "course's GitHub address in `url` above and run this cell again.")
        # Colab's own torch and torchvision stay as they are (reinstalling them is slow and
        # can break the GPU build): the constraints file pins them at their versions.
        pins = [f"{name}=={importlib.metadata.version(name)}\\n" for name in ("torch", "torchvision")]
        with open("/content/keep-torch.txt", "w") as keep:
            keep.writelines(pins)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "-c", "/content/keep-torch.txt", "-e", "/content/segkit"], check=True)
    os.chdir("/content/segkit")
elif not os.path.isdir("segkit") and os.path.isdir("../segkit"):
    os.chdir("..")  # opened from lessons/ or solutions/: work from the course folder
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())  # so that `import segkit` finds the course's copy
import segkit
from segkit import checks'''


def setup_cell_source(url: str | None = None) -> str:
    """The source of the set-up cell (the first code cell of every notebook).

    In Colab (``"google.colab" in sys.modules``) it clones the course (``url``, by default
    the course's address) once and installs segkit with what it needs but torch and
    torchvision pinned at Colab's versions, then moves into the course folder. A clone
    that fails (an address not published yet, no network) stops with one sentence: what
    failed, git's own words, and what to do (no traceback of subprocess's; git is told
    not to wait for a password nobody can type there). The
    dependency ranges in pyproject.toml admit Colab's package set, so pip installs
    nothing but segkit there and prints nothing.
    Elsewhere it moves from ``lessons/`` or ``solutions/`` up to the course folder (so
    relative paths such as ``data/...`` mean the same in Jupyter, Colab, nbval and
    ``segkit run-course``) and imports segkit. It prints nothing.
    """
    return _SETUP_TEMPLATE.replace("{url}", url or course_url())


def badge_url(notebook_name: str, url: str | None = None) -> str:
    """Colab address of ``lessons/<notebook_name>`` (``.ipynb`` added when missing) in the
    course ``url`` (by default the course's address)."""
    name = notebook_name if notebook_name.endswith(".ipynb") else notebook_name + ".ipynb"
    return colab_url(f"lessons/{name}", url)


def badge_markdown(notebook_name: str, url: str | None = None) -> str:
    """The "Open in Colab" badge (one markdown line) for ``lessons/<notebook_name>``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({badge_url(notebook_name, url)})"
