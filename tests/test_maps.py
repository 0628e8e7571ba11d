"""README's and CONTRIBUTING's maps of the repository are true and complete.

A maintainer reads CONTRIBUTING's map to find where a job is done, and README's to learn
what the course holds: a module, benchmark or folder that is missing from them, or one
they name that no longer exists, misleads both.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("segkit", "segkit_course")


def section(markdown: str, heading: str) -> str:
    """The text of one ``## heading`` section of a Markdown file."""
    start = markdown.index(f"## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


def contributing_map() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    return section(text, "How the repository fits together")


def readme_box() -> str:
    return section((ROOT / "README.md").read_text(encoding="utf-8"), "What is in the box")


def tracked_top_level() -> set[str]:
    """The repository's top-level folders, as a clean clone has them."""
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and p.name not in ignored and p.name != ".git"
        and not p.name.endswith(".egg-info") and not p.name.startswith(".")
    } | {".ci"}


def subpackages(package: str) -> set[str]:
    return {p.parent.name for p in (ROOT / package).glob("*/__init__.py")}


def test_readme_names_every_top_level_folder_and_subpackage():
    box = readme_box()
    for folder in sorted(tracked_top_level()):
        assert f"`{folder}/" in box, f"README's 'What is in the box' leaves out {folder}/"
    for package in PACKAGES:
        for sub in sorted(subpackages(package)):
            assert f"`{package}/{sub}/`" in box, f"README leaves out {package}/{sub}/"


def test_readme_command_list_names_every_segkit_command():
    from segkit.cli import build_parser

    parser = build_parser()
    choices = next(a.choices for a in parser._actions if getattr(a, "choices", None))
    box = readme_box()
    for command in choices:
        assert re.search(rf"segkit {re.escape(command)}\b", box), (
            f"README's command list leaves out `segkit {command}`"
        )


@pytest.mark.parametrize("package", PACKAGES)
def test_contributing_maps_every_module_of_the_machinery_and_checks(package):
    """Every file of segkit_course, segkit/checks and segkit/toydata is on the map.

    segkit's own top-level modules are mapped in segkit/__init__.py's docstring
    (tests/test_package_map.py); the map here points there.
    """
    mapped = contributing_map()
    folders = [ROOT / package] if package == "segkit_course" else []
    folders += [ROOT / package / sub for sub in subpackages(package)]
    for folder in folders:
        for module in sorted(folder.glob("*.py")):
            if module.name == "__init__.py" or module.name.startswith("lesson"):
                continue
            assert re.search(rf"\b{re.escape(module.name)}\b", mapped), (
                f"CONTRIBUTING's map leaves out {module.relative_to(ROOT)}"
            )


def test_contributing_maps_every_benchmark_and_folder():
    mapped = contributing_map()
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        assert re.search(rf"\b{re.escape(script.name)}\b", mapped), (
            f"CONTRIBUTING's map leaves out benchmarks/{script.name}"
        )
    for folder in sorted(tracked_top_level()):
        assert re.search(rf"^{re.escape(folder)}/", mapped, re.M), (
            f"CONTRIBUTING's map leaves out {folder}/"
        )


def test_every_file_the_maps_name_exists():
    """No stale names: each ``name.py`` on CONTRIBUTING's map is a file of the repository."""
    mapped = contributing_map()
    named = set(re.findall(r"\b([a-z_0-9]+\.py)\b", mapped)) - {"lessonNN.py", "conf.py"}
    files = {p.name for p in ROOT.glob("segkit*/**/*.py")} | {
        p.name for p in (ROOT / "benchmarks").glob("*.py")
    } | {p.name for p in (ROOT / "tests").glob("*.py")}
    assert sorted(named - files) == [], "CONTRIBUTING's map names files that do not exist"
    for path in re.findall(r"`((?:segkit|segkit_course|tests|benchmarks)/[\w/.]+)`", readme_box()):
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"


def test_the_maps_agree_with_git_where_there_is_one():
    """In a git checkout, every tracked top-level folder is one the maps were checked for."""
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    folders = {path.split("/", 1)[0] for path in listed if "/" in path}
    assert folders <= tracked_top_level()
