"""segkit as a student's sandbox sees it while a lesson is graded: without the answers.

    copy = StubbedSegkit.build(folder, lesson_plan)   # once per grading run
    copy.package                                      # bound at segkit's own path
    copy.release("dice_score")                        # the definitions to hand back

Handing back segkit's own implementation of a graded exercise is not doing the
exercise, by any spelling (``segkit.metrics.dice_score``, ``getattr`` of it, ``import *``,
a wrapper, a partial, a subclass). So the sandbox never holds it: the grader writes a
copy of the ``segkit`` package in which

- every **reference** of the lesson's checks (``Check.references``: segkit's version
  that the lesson hands to ``checks.use`` and any check-private reference) is a stub
  that raises :class:`ReferenceUnavailable` ("... is not available while grading");
- in the lesson's check module, every function or class that asking the student's
  code does not need (drawing cases, judging, the checks' private helpers that compute
  right answers) is such a stub too: the judge code is not there;
- ``checks.use(name, student, reference)`` returns the student's version: the notebook
  runs on as its author's code would, and the name keeps the student's object;
- the rest of segkit is unchanged, so every other cell of the notebook works.

Stubs take the place of the original lines (padded to the same number of lines), so
line numbers of everything else stay those of segkit's files. The copy's files are
compiled once and made read-only.

**Later exercises that build on earlier ones** (lesson 02's ``UNet`` on the student's
``DoubleConv``): once exercise ``j``'s answers have left the sandbox, :meth:`release`
gives the original source of ``j``'s references, which the sandbox puts back into its
modules; if ``j`` did not pass, the notebook's name ``j`` is also bound to segkit's
version, as the lesson's ``checks.use`` line does in class. So a later exercise is asked
with a correct ``DoubleConv`` when the student's was wrong, and no reference reaches the
sandbox before its own exercise has been answered.
"""

from __future__ import annotations

import ast
import compileall
import importlib
import os
import shutil
import stat
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import segkit

__all__ = ["ReferenceUnavailable", "StubbedSegkit", "definition_span", "stub_lines"]

_HELPER = '''\
"""Only in the copy of segkit a sandbox sees while a lesson is graded."""


class ReferenceUnavailable(RuntimeError):
    """segkit's own answer to a graded exercise is not there while it is graded."""


def unavailable(name):
    raise ReferenceUnavailable(
        f"{name} is not available while grading: the grader asks your own code, and "
        "segkit's version of a graded exercise is not part of it")
'''
_HELPER_NAME = "_grading_stub"
_STUB_CALL = f"__import__('segkit.{_HELPER_NAME}', fromlist=['x']).unavailable"


class ReferenceUnavailable(RuntimeError):
    """The host's name for the error the sandbox's stubs raise (same class name)."""


def definition_span(tree: ast.Module, name: str) -> tuple[int, int] | None:
    """(first line, last line), 1-based, of the top-level statement that defines
    ``name`` last (a def or class with its decorators, or an assignment); None if none."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = {node.name}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
        else:
            continue
        if name in names:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            found = (first, node.end_lineno)
    return found


def stub_lines(kind: str, name: str, dotted: str, length: int) -> list[str]:
    """The stub of a definition, ``length`` lines long (at least 2)."""
    if kind == "class":
        lines = [f"class {name}:",
                 f"    def __init__(self, *a, **k): {_STUB_CALL}({dotted!r})"]
    else:
        lines = [f"def {name}(*a, **k):", f"    {_STUB_CALL}({dotted!r})"]
    return lines + [""] * max(0, length - len(lines))


def _passthrough_use(tree: ast.Module, source_lines: list[str]) -> list[str] | None:
    """``checks.use`` made to return the student's object (its second parameter)."""
    span = definition_span(tree, "use")
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "use"),
                None)
    if span is None or node is None or len(node.args.args) < 2:
        return None
    student = node.args.args[1].arg
    first, last = span
    new = [f"def use(*args, **kwargs):",
           f"    return kwargs.get({student!r}, args[1] if len(args) > 1 else None)"]
    new += [""] * max(0, last - first + 1 - len(new))
    return source_lines[:first - 1] + new + source_lines[last:]


@dataclass
class _ModuleEdit:
    """The names of one segkit module to stub."""

    path: Path
    names: dict[str, str] = field(default_factory=dict)  # name -> dotted name

    def apply(self, text: str) -> str:
        tree = ast.parse(text)
        lines = text.split("\n")
        appended = []
        for name, dotted in sorted(self.names.items(), key=lambda kv: -(
                definition_span(tree, kv[0]) or (0, 0))[0]):
            span = definition_span(tree, name)
            if span is None:  # bound by an import: rebind it at the end of the module
                appended += stub_lines("def", name, dotted, 2)
                continue
            node = next(n for n in tree.body if span[0] <= n.lineno <= span[1])
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            first, last = span
            indent = lines[first - 1][:len(lines[first - 1]) - len(lines[first - 1].lstrip())]
            stub = [indent + line if line else line
                    for line in stub_lines(kind, name, dotted, last - first + 1)]
            lines[first - 1:last] = stub
        return "\n".join(lines + appended)


def _module_file(module: str) -> Path:
    """The source file of a segkit module, from its dotted name (not imported)."""
    parts = module.split(".")
    if parts[0] != "segkit":
        raise ValueError(f"{module} is not a segkit module")
    base = Path(segkit.__file__).resolve().parent.joinpath(*parts[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def split_dotted(dotted: str) -> tuple[str, str]:
    """('segkit.metrics', 'dice_score') for 'segkit.metrics.dice_score': the longest
    prefix that is a module file of segkit, and the name in it."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            if _module_file(module).is_file():
                return module, ".".join(parts[cut:])
        except ValueError:
            break
    raise ValueError(f"{dotted!r} does not name a definition in a segkit module")


class StubbedSegkit:
    """The copy of segkit a sandbox sees, and what may be handed back into it."""

    def __init__(self, root: Path, references: dict[str, tuple[str, ...]]) -> None:
        self.root = root
        self.package = root / "segkit"
        self.references = references   # exercise -> dotted names stubbed for it

    @classmethod
    def build(cls, folder: str | Path, references: dict[str, tuple[str, ...]],
              hidden_helpers: dict[str, set[str]] | None = None) -> StubbedSegkit:
        """Write the copy under ``folder`` (``folder/segkit``).

        ``references``: exercise -> the dotted names of its references.
        ``hidden_helpers``: module -> more top-level names to stub (the judge code).
        """
        copy = cls(Path(folder), dict(references))
        source = Path(segkit.__file__).resolve().parent
        shutil.copytree(source, copy.package, symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        edits: dict[str, _ModuleEdit] = {}
        wanted = [(split_dotted(d), d) for names in references.values() for d in names]
        for module, names in (hidden_helpers or {}).items():
            wanted += [((module, n), f"{module}.{n}") for n in names]
        for (module, name), dotted in wanted:
            if "." in name:
                raise ValueError(f"cannot stub {dotted!r}: only a module's own definitions "
                                 "(functions, classes, names) can be references")
            edit = edits.setdefault(module, _ModuleEdit(copy._file(module)))
            edit.names[name] = dotted
        for edit in edits.values():
            edit.path.write_text(edit.apply(edit.path.read_text(encoding="utf-8")),
                                 encoding="utf-8")
        copy._passthrough()
        (copy.package / f"{_HELPER_NAME}.py").write_text(_HELPER, encoding="utf-8")
        compileall.compile_dir(str(copy.package), quiet=1, workers=1)
        copy._read_only()
        return copy

    def _file(self, module: str) -> Path:
        relative = _module_file(module).relative_to(Path(segkit.__file__).resolve().parent)
        return self.package / relative

    def _passthrough(self) -> None:
        core = self._file("segkit.checks.core")
        text = core.read_text(encoding="utf-8")
        lines = _passthrough_use(ast.parse(text), text.split("\n"))
        if lines is None:
            raise ValueError("segkit.checks.core has no use(exercise, student, reference)")
        core.write_text("\n".join(lines), encoding="utf-8")

    def _read_only(self) -> None:
        for folder, dirs, files in os.walk(self.package):
            for name in files:
                os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.chmod(folder, 0o555)

    def remove(self) -> None:
        """Delete the copy (its folders are read-only: made writable first)."""
        for folder, dirs, files in os.walk(self.root):
            os.chmod(folder, 0o755)
        shutil.rmtree(self.root, ignore_errors=True)

    def release(self, exercise: str) -> list[dict[str, str]]:
        """The original definitions of ``exercise``'s references, to put back in the
        sandbox once its answers are in: [{"module": ..., "name": ..., "source": ...}]."""
        released = []
        for dotted in self.references.get(exercise, ()):
            module, name = split_dotted(dotted)
            text = _module_file(module).read_text(encoding="utf-8")
            tree = ast.parse(text)
            span = definition_span(tree, name)
            if span is None:  # an import binds it: import it again
                real = importlib.import_module(module)
                origin = getattr(getattr(real, name), "__module__", module)
                source = f"from {origin} import {getattr(getattr(real, name), '__name__', name)} as {name}"
            else:
                lines = text.split("\n")[span[0] - 1:span[1]]
                source = textwrap.dedent("\n".join(lines))
            released.append({"module": module, "name": name, "source": source})
        return released


# --------------------------------------------------------------------------- the judge code


def _names(nodes) -> set[str]:
    """Every name read anywhere in ``nodes``."""
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                found.add(sub.id)
    return found


def _walk_now(node: ast.AST):
    """Like ``ast.walk``, without the bodies of lambdas and functions: the code that
    runs when ``node`` runs (a lambda's body runs only when it is called)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if isinstance(current, ast.Lambda):
            todo += [*current.args.defaults, *[d for d in current.args.kw_defaults if d]]
        elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo += [*current.decorator_list, *current.args.defaults,
                     *[d for d in current.args.kw_defaults if d]]
        else:
            todo += list(ast.iter_child_nodes(current))


def _called(nodes) -> set[str]:
    """The names called (``f(...)``, ``f.g(...)``) when ``nodes`` run."""
    found = set()
    for node in nodes:
        for sub in _walk_now(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                while isinstance(func, ast.Attribute):
                    func = func.value
                if isinstance(func, ast.Name):
                    found.add(func.id)
    return found


def _import_time(node: ast.stmt) -> tuple[set[str], list[ast.AST]]:
    """What a top-level statement needs when the module is imported: (names called,
    nodes run). A def runs its decorators and defaults; a class its bases and body."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        run = [*node.decorator_list, *node.args.defaults,
               *[d for d in node.args.kw_defaults if d is not None]]
        return _called(run) | _names(node.decorator_list), run
    if isinstance(node, ast.ClassDef):
        run = [*node.decorator_list, *node.bases, *[k.value for k in node.keywords]]
        body = [n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        extra = set().union(*[_import_time(m)[0] for m in methods]) if methods else set()
        return _names(run) | _called(body) | extra, run + body
    return _called([node]), [node]


def _bindings(tree: ast.Module) -> dict[str, ast.stmt]:
    """Top-level name -> the statement that binds it (defs, classes, assignments)."""
    bound: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        bound[sub.id] = node
    return bound


def _ask_roots(tree: ast.Module, asks: list) -> set[str]:
    """The top-level names the ask functions live in (or, for a lambda or a function
    built at import, the names it reads)."""
    roots = set()
    for ask in asks:
        line = getattr(getattr(ask, "__code__", None), "co_firstlineno", None)
        top = next((n for n in tree.body if line and n.lineno <= line <= n.end_lineno), None)
        if top is None:
            continue
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            roots.add(top.name)
        inner = [n for n in ast.walk(top) if isinstance(n, (ast.Lambda, ast.FunctionDef))
                 and n.lineno == line]
        roots |= _names(inner)
    return roots


def judge_only(module: str, asks: list) -> set[str]:
    """The top-level functions and classes of the check module ``module`` that asking
    the student's code (the functions ``asks``) never needs: drawing, judging, and the
    private helpers that compute right answers. Stubbing them leaves the module
    importable: what its import runs (decorators, calls, class bodies) is kept."""
    tree = ast.parse(_module_file(module).read_text(encoding="utf-8"))
    bound = _bindings(tree)
    needed = set(_ask_roots(tree, asks))
    for node in tree.body:
        needed |= _import_time(node)[0]
    todo = list(needed)
    while todo:
        node = bound.get(todo.pop())
        if node is None:
            continue
        for name in _names([node]) - needed:
            needed.add(name)
            todo.append(name)
    return {name for name, node in bound.items()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and name not in needed}
