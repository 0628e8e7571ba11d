"""The two layers: segkit (the student runtime) never imports segkit_course (the course
machinery), nothing imports in a circle, and a student's install needs none of the
machinery's packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME, MACHINERY = "segkit", "segkit_course"
#: Packages only the course machinery needs (the ``course`` extra of pyproject.toml).
MACHINERY_ONLY = ("nbformat", "nbclient", "nbconvert", "sphinx", "myst_nb", "playwright")


def modules() -> dict[str, Path]:
    """Every module of both layers: dotted name -> file."""
    found = {}
    for package in (RUNTIME, MACHINERY):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that the module ``name`` imports (anywhere in its body:
    imports inside functions count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name`, pkg
            targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                        for alias in node.names}
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def loops(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other in a circle (Tarjan's strongly connected
    components of more than one module, or a module that imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_nothing_imports_in_a_circle():
    assert loops(graph()) == []


def test_the_runtime_never_imports_the_machinery():
    arrows = sorted(f"{a} -> {b}" for a, targets in graph().items() if a.split(".")[0] == RUNTIME
                    for b in targets if b.split(".")[0] == MACHINERY)
    assert arrows == []


def test_the_loop_finder_finds_a_loop():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []


def test_the_runtime_loads_none_of_the_machinerys_packages():
    runtime = sorted(name for name in modules() if name.split(".")[0] == RUNTIME
                     and not name.endswith("__main__"))
    probe = (f"import importlib, sys\nfor m in {runtime!r}: importlib.import_module(m)\n"
             f"print(' '.join(m for m in {MACHINERY_ONLY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_a_course_command_without_the_course_extra_says_what_to_install(monkeypatch, capsys):
    from segkit import cli

    real_import = __import__

    def without_nbclient(name, *args, **kwargs):
        if name.partition(".")[0] in ("nbclient", "nbformat"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for cached in [m for m in sys.modules if m.startswith("segkit_course.run")]:
        monkeypatch.delitem(sys.modules, cached)
    monkeypatch.setattr("builtins.__import__", without_nbclient)
    assert cli.main(["run-course", "--only", "00"]) == 1
    err = capsys.readouterr().err
    assert "segkit run-course is one of the course tools" in err
    assert 'pip install -e ".[course]"' in err


@pytest.mark.parametrize("command", ["build-lessons", "run-course", "grade", "grade-merge",
                                     "build-site", "verify"])
def test_the_machinerys_commands_join_the_segkit_command(command):
    from segkit import cli

    parser = cli.build_parser()
    with pytest.raises(SystemExit) as done:
        parser.parse_args([command, "--help"])
    assert done.value.code == 0


def private_names_used_elsewhere() -> list[str]:
    """``module._name`` or ``from module import _name`` where module is another module of
    the two layers: a private name that has become part of another module's code."""
    known = modules()
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}  # local name -> the module of ours it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in known and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in known:
                        aliases[alias.asname or alias.name] = full
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{name}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and aliases.get(node.value.id, name) != name
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_no_private_name_is_used_outside_its_module():
    """A name with a leading underscore belongs to its module; another module that needs
    it needs a public name (or the job moved to where it belongs)."""
    assert private_names_used_elsewhere() == []
