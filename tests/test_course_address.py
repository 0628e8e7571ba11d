"""The course's address is written once (pyproject.toml) and every notebook agrees with it;
``segkit build-lessons --course-url URL`` moves the whole course to another address."""

from __future__ import annotations

import shutil

import pytest

from notebook_helpers import FIXTURE_SOLUTIONS, LESSONS, REPO_ROOT, SOLUTIONS
from segkit_course import address
from segkit_course import cli
from segkit_course.address import CourseAddressError, course_url, set_course_url
from segkit_course.build import read_notebook, solution_paths
from segkit_course.setup_cell import COLAB_BADGE_IMAGE

OTHER = "https://github.com/my-school/segmentation-course"


def test_the_address_is_the_repository_url_of_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML")
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["urls"]["Repository"]
    assert course_url() == declared


@pytest.mark.parametrize("folder", [SOLUTIONS, LESSONS], ids=["solutions", "lessons"])
def test_every_badge_and_setup_cell_carries_the_address(folder):
    url = course_url()
    colab = url.replace("https://github.com/", "https://colab.research.google.com/github/")
    for path in solution_paths(folder):
        nb = read_notebook(path)
        badges = [line for cell in nb.cells if cell.cell_type == "markdown"
                  for line in cell.source.splitlines() if COLAB_BADGE_IMAGE in line]
        assert badges == [f"[![Open In Colab]({COLAB_BADGE_IMAGE})]"
                          f"({colab}/blob/main/lessons/{path.name})"], path.name
        setup = nb.cells[1].source
        assert f'url = "{url}"' in setup, path.name
        assert "github.com" not in setup.replace(url, ""), path.name


def test_set_course_url_changes_only_that_line(tmp_path):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    before = (tmp_path / "pyproject.toml").read_text().splitlines()
    old, new = set_course_url(OTHER + ".git/", tmp_path)
    after = (tmp_path / "pyproject.toml").read_text().splitlines()
    assert (old, new) == (course_url(), OTHER)
    assert course_url(tmp_path) == OTHER
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and changed == [
        (f'Repository = "{old}"', f'Repository = "{OTHER}"')]


@pytest.mark.parametrize("bad", ["https://gitlab.com/me/course", "github.com/me/course",
                                 "https://github.com/me", "my-school/course"])
def test_an_address_colab_cannot_open_is_refused_with_the_form_to_use(tmp_path, bad):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    with pytest.raises(CourseAddressError) as info:
        set_course_url(bad, tmp_path)
    assert repr(bad) in str(info.value)
    assert "https://github.com/<owner>/<name>" in str(info.value)
    assert course_url(tmp_path) == course_url()  # nothing written


def test_a_pyproject_without_the_address_says_how_to_add_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "segkit"\n')
    with pytest.raises(CourseAddressError, match=r"\[project\.urls\]"):
        course_url(tmp_path)


def test_course_url_option_moves_every_notebook_to_the_new_address(tmp_path, monkeypatch,
                                                                   capsys):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(FIXTURE_SOLUTIONS, tmp_path / "solutions")
    monkeypatch.setattr(address, "course_root", lambda: tmp_path)
    outputs_before = [c.get("outputs") for c in read_notebook(
        tmp_path / "solutions" / "00_demo.ipynb").cells]

    assert cli.main(["build-lessons", "--course-url", OTHER,
                     "--solutions", str(tmp_path / "solutions"),
                     "--lessons", str(tmp_path / "lessons")]) == 0

    assert OTHER in capsys.readouterr().out
    assert course_url(tmp_path) == OTHER
    for folder in ("solutions", "lessons"):
        for path in solution_paths(tmp_path / folder):
            nb = read_notebook(path)
            assert f"my-school/segmentation-course/blob/main/lessons/{path.name}" \
                in nb.cells[0].source
            assert f'url = "{OTHER}"' in nb.cells[1].source
    solution = read_notebook(tmp_path / "solutions" / "00_demo.ipynb")
    assert [c.get("outputs") for c in solution.cells] == outputs_before  # nothing re-run
    assert cli.main(["build-lessons", "--check", "--solutions", str(tmp_path / "solutions"),
                     "--lessons", str(tmp_path / "lessons")]) == 0


def test_course_url_option_changes_nothing_when_the_solutions_are_missing(tmp_path, monkeypatch,
                                                                          capsys):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    monkeypatch.setattr(address, "course_root", lambda: tmp_path)
    assert cli.main(["build-lessons", "--course-url", OTHER,
                     "--solutions", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert course_url(tmp_path) == course_url()


def test_a_copy_of_the_course_is_its_own_course_folder(tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "solutions").mkdir()
    monkeypatch.chdir(tmp_path)
    assert address.course_root() == tmp_path
    set_course_url(OTHER)
    assert course_url() == OTHER  # the copy's address; the original is left alone
    monkeypatch.chdir(tmp_path / "solutions")
    assert address.course_root() == REPO_ROOT


def test_in_colab_a_clone_that_fails_says_so_in_one_sentence(tmp_path):
    """An address that is not published yet (or no network): the set-up cell stops with
    what failed, git's words and what to do, not a subprocess traceback or a password
    prompt nobody can answer."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    from segkit_course.setup_cell import setup_cell_source

    if Path("/content/segkit").exists():
        pytest.skip("/content/segkit exists here: the set-up cell would not clone")
    missing = (tmp_path / "no-such-course").as_uri()  # fails at once, without a network
    runner = textwrap.dedent("""
        import sys, types
        sys.modules["google.colab"] = types.ModuleType("google.colab")  # as in Colab
        try:
            exec(sys.stdin.read())
        except RuntimeError as err:
            print("RuntimeError:", err)
    """)
    done = subprocess.run([sys.executable, "-c", runner], input=setup_cell_source(missing),
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    message = done.stdout.strip()
    assert message.startswith("RuntimeError: The course could not be downloaded (fatal: "), \
        (done.stdout, done.stderr)
    assert "no-such-course" in message  # git's words name the address
    assert message.endswith("put your course's GitHub address in `url` above and run this "
                            "cell again.")
    assert "\n" not in message and not Path("/content/segkit").exists()
