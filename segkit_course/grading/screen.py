"""Read a student's exercise code and FLAG what an exercise never needs.

    reasons = screen(cell, exercise)      # [] or ["imports `ctypes`", ...]

A flag is a note for the instructor, never a grade: an exercise the screen flags is
graded exactly as if it were not (its answers are judged like everyone's), and the
flag is listed next to it in ``grades.csv`` ("flags"). Security does not come from
this list: the notebook runs in its sandbox, segkit's references are not there, and
the answers are judged on questions drawn fresh for the run
(:mod:`segkit_course.grading.execute`). What the screen is good for is pointing the
instructor at the few notebooks worth a look: code that reaches for the machinery a
grader is made of, which an exercise of this course (a function or class computing with
numpy and torch) has no business with.

What is flagged, from the syntax tree of the cell that defines the exercise (nothing
runs):

- modules: ``importlib``, ``builtins``, ``pickle``, ``marshal``, ``inspect``, ``gc``,
  ``ctypes``, ``cffi``, ``subprocess``, ``_posixsubprocess``, ``multiprocessing``,
  ``signal``, ``socket``, ``sqlite3``, ``IPython``, ``ipykernel``, the course's
  ``segkit.checks`` internals and ``segkit_course``, ...;
- attributes: ``sys.modules``, ``sys._getframe`` and the other ``sys`` hooks,
  ``os.system``/``exec*``/``spawn*``/``fork``/``kill``, frame attributes (``f_back``,
  ``f_globals``, ``tb_frame``, ...), ``__subclasses__`` and the dunders beyond the
  ordinary object protocol;
- names: ``eval``, ``exec``, ``compile``, ``__import__``, ``globals``, ``vars``,
  ``get_ipython``, ``getattr``/``setattr`` with a computed name, anything called
  ``reference_*``, segkit's own version of the exercise (the one the lesson's
  ``checks.use`` line names, e.g. ``metrics.dice_score``);
- strings that name the machine's insides or a notebook file: ``/proc``, ``.ipynb``.

An honest solution may trip one (a student who imports ``inspect`` to print a
signature): it loses nothing.
"""

from __future__ import annotations

import ast
import re

from segkit_course.grading.discover import Exercise

__all__ = ["screen"]

_MODULES = {
    "importlib", "builtins", "__builtin__", "pickle", "marshal", "shelve", "inspect",
    "gc", "ctypes", "cffi", "_ctypes", "subprocess", "_posixsubprocess", "posix", "nt",
    "multiprocessing", "_thread", "signal", "socket", "ssl", "sqlite3", "IPython",
    "ipykernel", "jupyter_client", "zmq", "pty", "pdb", "code", "codeop", "runpy",
    "resource", "atexit", "urllib", "http", "requests", "faulthandler", "tracemalloc",
    "dis", "copyreg", "site",
}
_SEGKIT_INSIDES = ("segkit.checks", "segkit_course.grading", "segkit_course.sandbox", "segkit_course")
# attributes flagged whatever they are looked up on (no exercise needs them) ...
_ATTRIBUTES = {
    "_getframe", "settrace", "setprofile", "addaudithook", "meta_path", "path_hooks",
    "system", "popen", "fork", "forkpty", "kill", "killpg", "setsid", "dup2", "fork_exec",
    "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "tb_frame", "tb_next",
    "gi_frame", "cr_frame", "ag_frame", "co_code", "events", "input_transformers_post",
}
_ATTRIBUTE_PREFIXES = ("exec", "spawn", "posix_spawn")
# ... and these only as written here (``model.modules()`` is fine, ``sys.modules`` not)
_CHAINS = {"sys.modules", "sys.path", "os.write", "os.open", "os.environ"}
_PLAIN_DUNDERS = {
    "__init__", "__call__", "__len__", "__getitem__", "__setitem__", "__iter__", "__next__",
    "__repr__", "__str__", "__eq__", "__hash__", "__name__", "__enter__", "__exit__",
    "__contains__", "__add__", "__mul__", "__sub__", "__truediv__", "__lt__", "__le__",
    "__gt__", "__ge__", "__ne__", "__bool__", "__post_init__", "__class__", "__doc__",
    "__version__", "__module__", "__qualname__", "__dict__", "__wrapped__",
}
_NAMES = {"eval", "exec", "compile", "__import__", "globals", "vars", "breakpoint",
          "get_ipython", "__builtins__", "__loader__", "__spec__", "__file__", "delattr"}
_STRINGS = (".ipynb", "/proc", "reference_")


def _dotted(node: ast.AST) -> str | None:
    """'segkit.metrics.dice_score' for an attribute chain on a name; None otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _module_reason(module: str) -> str | None:
    top = module.split(".")[0]
    if module.startswith(_SEGKIT_INSIDES):
        return f"imports `{module}` (the course's checks and tools)"
    if top in _MODULES:
        return f"imports `{module}`"
    return None


def _reference_reasons(node: ast.AST, exercise: Exercise) -> list[str]:
    """Uses of segkit's own version of the exercise: ``metrics.dice_score``,
    ``from segkit.metrics import dice_score``, ``checks.lesson04.reference_dice_score``."""
    reference = exercise.reference or ""
    tail = ".".join(reference.split(".")[-2:]) if reference.count(".") >= 1 else None
    reasons = []
    if isinstance(node, ast.Attribute):
        chain = _dotted(node) or ""
        if node.attr.startswith("reference_"):
            reasons.append(f"uses the course's reference solution `{chain or node.attr}`")
        elif tail and "segkit.checks." not in reference and (
                chain == tail or chain.endswith("." + tail)):
            reasons.append(f"uses segkit's own `{reference}` for `{exercise.name}`")
        elif (chain.endswith("." + exercise.name) and chain.split(".")[0] != "self"
              and not reasons):
            reasons.append(f"uses `{chain}`, a library's own `{exercise.name}`")
    elif isinstance(node, ast.Name) and node.id.startswith("reference_"):
        reasons.append(f"uses the course's reference solution `{node.id}`")
    elif isinstance(node, ast.ImportFrom) and node.module:
        module, name = reference.rsplit(".", 1) if "." in reference else ("", "")
        names = {a.name for a in node.names}
        if (node.module == module and name in names) or (
                node.module.split(".")[0] == "segkit" and exercise.name in names):
            reasons.append(f"imports segkit's own `{exercise.name}` from `{node.module}`")
    return reasons


def _call_reasons(node: ast.Call) -> list[str]:
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "hasattr"):
        if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant):
            return [f"calls `{func.id}` with a computed attribute name"]
        name = str(node.args[1].value)
        if name.startswith("__") and name not in _PLAIN_DUNDERS:
            return [f"calls `{func.id}(..., {name!r})`"]
    return []


def _node_reasons(node: ast.AST, exercise: Exercise) -> list[str]:
    reasons = _reference_reasons(node, exercise)
    if isinstance(node, ast.Import):
        reasons += [r for a in node.names if (r := _module_reason(a.name))]
    elif isinstance(node, ast.ImportFrom):
        module = ("." * node.level) + (node.module or "")
        reasons += [r for r in [_module_reason(module)] if r]
        if node.level:
            reasons.append("uses a relative import")
        if module == "segkit" and any(a.name in ("checks", "grading", "sandbox", "course")
                                      for a in node.names):
            reasons.append("imports the course's checks and tools from segkit")
        if module == "torch" and any(a.name in ("save", "load") for a in node.names):
            reasons.append("imports `torch.save`/`torch.load` (files outside the exercise)")
    elif isinstance(node, ast.Attribute):
        attr, chain = node.attr, _dotted(node)
        if attr in _ATTRIBUTES or attr.startswith(_ATTRIBUTE_PREFIXES) or chain in _CHAINS:
            reasons.append(f"uses `{chain or '.' + attr}`")
        elif attr.startswith("__") and attr.endswith("__") and attr not in _PLAIN_DUNDERS:
            reasons.append(f"uses `{attr}`")
    elif isinstance(node, ast.Name) and node.id in _NAMES:
        reasons.append(f"uses `{node.id}`")
    elif isinstance(node, ast.Call):
        reasons += _call_reasons(node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
        reasons += [f"mentions {word!r} in a string" for word in _STRINGS if word in text]
    return reasons


_IPYTHON_LINE = re.compile(r"^([ \t]*)(?:[%!].*|.*\?\??[ \t]*)$", re.MULTILINE)


def _tree(source: str) -> ast.Module | None:
    """The syntax tree of ``source``, its IPython lines (``%magic``, ``!shell``,
    ``name?``) read as ``pass``; None when it does not parse, or is too deep or too
    large to."""
    for text in (source, _IPYTHON_LINE.sub(lambda m: f"{m.group(1)}pass", source)):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
        except (ValueError, RecursionError, MemoryError):
            return None
    return None


def _is_lesson_line(node: ast.stmt) -> bool:
    """The lesson's own lines a student may keep in an exercise cell: its check call
    (``checks.lesson04.check_x(x)``) and its ``checks.use`` line."""
    value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
    if not isinstance(value, ast.Call):
        return False
    called = ast.unparse(value.func)
    return _is_use(value) or re.fullmatch(r"checks\.lesson\d\d\.check_\w+", called) is not None


def _is_use(value) -> bool:
    """``checks.use(...)``: the lesson's line, which defines nothing new."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr == "use")


def defining_cells(cells: list, names: list[str]) -> dict[str, str]:
    """exercise name -> the source of the last code cell that defines it at its top
    level (``def``, ``class`` or an assignment other than the lesson's ``checks.use``
    line); ``cells`` have ``.source``."""
    found: dict[str, str] = {}
    for cell in cells:
        tree = _tree(cell.source)
        if tree is None:
            continue
        defined = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and not _is_use(node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        for name in names:
            if name in defined:
                found[name] = cell.source
    return found


def screen(source: str, exercise: Exercise) -> list[str]:
    """What in the code ``source`` of ``exercise`` is worth the instructor's look (each
    reason once, in the order found); [] when there is nothing to say."""
    tree = _tree(source)
    if tree is None:
        return []
    tree.body = [node for node in tree.body if not _is_lesson_line(node)]
    reasons: list[str] = []
    try:
        for node in ast.walk(tree):
            for reason in _node_reasons(node, exercise):
                if reason not in reasons:
                    reasons.append(reason)
    except (RecursionError, MemoryError):
        reasons.append("code too deeply nested to read")
    return reasons
