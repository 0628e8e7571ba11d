"""The course's public address: the one place it is written, and how to change it.

The address is the GitHub repository a student's Colab clones and every "Open in Colab"
badge points into. It is written once, in ``pyproject.toml``::

    [project.urls]
    Repository = "https://github.com/<owner>/<name>"

``segkit build-lessons`` stamps it into the set-up cell and the badge of every notebook,
and ``segkit build-site`` into the website's launch buttons. An instructor who publishes
their own copy runs one command::

    segkit build-lessons --course-url https://github.com/<owner>/<name>

which rewrites that line of ``pyproject.toml``, re-stamps the solutions and rebuilds the
lessons (nothing else in the notebooks changes, so no output has to be stored again).
"""

from __future__ import annotations

import re
from pathlib import Path

from segkit.errors import SegkitError

URL_KEY = "Repository"
BRANCH = "main"  # the branch Colab opens the lessons from
GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/"
                    r"(?P<name>[A-Za-z0-9._-]+?)(\.git)?/?")
_URL_LINE = re.compile(rf'^(?P<key>{URL_KEY}\s*=\s*)"(?P<url>[^"]*)"', re.MULTILINE)


class CourseAddressError(SegkitError, ValueError):
    """The course's address is missing from pyproject.toml or is not a GitHub repository."""


def course_root() -> Path:
    """The course folder: the current folder when it is one (it holds ``pyproject.toml``
    and ``solutions/``, as when you run ``segkit build-lessons`` in a copy of the course),
    otherwise the folder this segkit was imported from."""
    here = Path.cwd()
    if (here / "pyproject.toml").is_file() and (here / "solutions").is_dir():
        return here
    return Path(__file__).resolve().parents[1]


def check_url(url: str, where: str = "the course address") -> str:
    """``url`` without a trailing ``/`` or ``.git``; CourseAddressError unless it is
    ``https://github.com/<owner>/<name>`` (Colab opens notebooks from GitHub only)."""
    match = GITHUB.fullmatch(url.strip())
    if not match:
        raise CourseAddressError(
            f"{where} is {url!r}, which is not a GitHub repository address. Colab opens "
            "notebooks from GitHub only: give it as https://github.com/<owner>/<name>, "
            "e.g. https://github.com/my-school/segkit")
    return f"https://github.com/{match['owner']}/{match['name']}"


def _pyproject_section(text: str) -> str:
    """The text of the ``[project.urls]`` table of a pyproject.toml ('' when absent)."""
    match = re.search(r"^\[project\.urls\][ \t]*\n(?P<body>(?:(?!\[).*\n?)*)", text,
                      re.MULTILINE)
    return match["body"] if match else ""


def course_url(root: str | Path | None = None) -> str:
    """The course's GitHub address, read from ``root/pyproject.toml`` (default: the course
    folder, see ``course_root``); from the installed package's metadata when there is none.

    Raises:
        CourseAddressError: neither names a ``Repository`` URL, or it is not on GitHub.
    """
    pyproject = Path(root if root is not None else course_root()) / "pyproject.toml"
    if pyproject.is_file():
        match = _URL_LINE.search(_pyproject_section(pyproject.read_text(encoding="utf-8")))
        if not match:
            raise CourseAddressError(
                f"{pyproject} has no `{URL_KEY} = \"https://github.com/<owner>/<name>\"` line "
                "under [project.urls]: add one (it is the course's address), or run "
                "`segkit build-lessons --course-url https://github.com/<owner>/<name>`")
        return check_url(match["url"], f"{URL_KEY} in {pyproject}")
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("segkit").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip() == URL_KEY:
            return check_url(url, f"{URL_KEY} in the installed segkit's metadata")
    raise CourseAddressError(f"no {pyproject} and no {URL_KEY} URL in the installed segkit's "
                             "metadata: run segkit from the course folder")


def set_course_url(url: str, root: str | Path | None = None) -> tuple[str, str]:
    """Write ``url`` as the course's address into ``root/pyproject.toml`` (only that line
    changes). Returns ``(old, new)`` addresses."""
    new = check_url(url, "--course-url")
    pyproject = Path(root if root is not None else course_root()) / "pyproject.toml"
    old = course_url(pyproject.parent)
    text = pyproject.read_text(encoding="utf-8")
    section = _pyproject_section(text)
    start = text.index(section)
    changed = _URL_LINE.sub(lambda m: f'{m["key"]}"{new}"', section, count=1)
    pyproject.write_text(text[:start] + changed + text[start + len(section):], encoding="utf-8")
    return old, new


def colab_url(path: str, url: str | None = None) -> str:
    """Colab's address of the file ``path`` (e.g. ``lessons/04_metrics.ipynb``) in the
    course's repository on GitHub."""
    repo = url or course_url()
    return (repo.replace("https://github.com/", "https://colab.research.google.com/github/")
            + f"/blob/{BRANCH}/{path}")
