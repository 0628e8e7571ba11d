"""One command line: ``segkit`` (segkit.cli.main); the course's subcommands and their
``python -m`` spellings go through it, and grading limits have one set of defaults."""

from __future__ import annotations

import dataclasses
import re

import pytest

from segkit import cli
from segkit_course import build, run
from segkit_course import cli as course_cli
from segkit_course.grading.execute import Limits


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_the_course_commands_are_segkit_commands(capsys):
    for command in ("build-lessons", "run-course", "grade", "verify"):
        assert _help(command, capsys).startswith(f"usage: segkit {command}")


@pytest.mark.parametrize("module_main, command", [(build.main, "build-lessons"),
                                                   (run.main, "run-course"),
                                                   (course_cli.main, "build-lessons")])
def test_other_spellings_run_segkits_main(module_main, command, capsys):
    with pytest.raises(SystemExit):
        module_main([command, "--help"] if module_main is course_cli.main else ["--help"])
    assert capsys.readouterr().out.startswith(f"usage: segkit {command}")


def test_grade_options_default_to_the_grading_limits(capsys):
    text = " ".join(_help("grade", capsys).split())
    for field in dataclasses.fields(Limits):
        option = "--" + field.name.replace("_", "-")
        if option not in text:
            continue  # not a command-line option
        said = re.search(re.escape(option) + r" \w+ .*?\(default: ([\d.]+)\)", text).group(1)
        assert float(said) == float(field.default), option
    args = cli.build_parser().parse_args(["grade", "x.ipynb"])
    assert args.cell_timeout is None  # left out: Limits' own default applies
