"""Prove, without running it, that a lesson runs to the end with its stubs in place.

In a lesson every exercise cell holds stubs: a function or class whose body raises
``NotImplementedError("Exercise dice_score: write your code here")`` (see
:mod:`segkit_course.build`). The lesson runs to the end, with only its check cells
raising, when no other cell touches a stub until the lesson has rebound it::

    dice_score = checks.use("dice_score", dice_score, segkit.metrics.dice_score)

``stub_call_problems`` reads the code cells in order with :mod:`ast` (it runs nothing)
and reports, naming the cell (number from 1, id, first line), the line, the stub and
the fix:

1. a cell other than a check cell that reads a stub before it is rebound: a call, or
   any other use of the name (an alias, an argument), at the top level or inside a
   function or class defined in that cell (which would raise when called later),
   exercise cells of later exercises included. Passing the stub to ``checks.use`` as
   the student's object is the one allowed read. A rebinding counts for the statements
   after it in its cell and for every later cell;
2. a cell other than a check cell that rebinds a stub's name another way (def, class,
   assignment, import, loop target...): that hides the stub, so the lesson would never
   use the student's version nor say that it uses segkit's;
3. an exercise cell whose stub raises when the cell runs (not inside a function), or
   whose stub is in no top-level function or class (so no name can be followed);
4. a check cell that never reads a stub of its exercise, so its check cannot raise
   ``ExerciseNotDone`` (``tests/test_checks_lessonNN.py`` proves that every check raises
   it on a stub);
5. a cell that is not Python once its IPython ``%magic`` and ``!shell`` lines are
   blanked out.

Check cells may read stubs (they are expected to raise); what they define or rebind is
ignored, since a check cell stops at its check.

Limits (plain lesson code never meets them):

- code in magics and shell lines (``%time f(x)``), ``eval``/``exec``, ``globals()``
  and ``getattr`` on names are not read;
- functions defined in check cells and called later are not followed;
- inside a function, a name is local (and shadows a stub) when it is a parameter or is
  assigned, imported, or a loop, ``with`` or ``except`` target in that function or an
  enclosing one, or a comprehension's target; a name assigned in a class body shadows
  nothing (its reads are reported), and a ``global`` statement rebinding a stub from
  inside a function is not followed;
- only a top-level statement ``name = checks.use(...)`` (also ``use(...)``,
  ``segkit.checks.use(...)``) rebinds; one inside an ``if`` or ``try`` is reported
  as a rebinding without ``checks.use``;
- a stub's name is the top-level function or class whose body holds the stub; a
  factory returning a stub is itself taken for the stub.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from nbformat import NotebookNode

from segkit_course.build import check_name, describe_cell, exercise_name, is_check_cell

__all__ = ["stub_call_problems"]

# The stub's message, as the build writes it (build.CODE_STUB).
STUB_MESSAGE = re.compile(r"Exercise \w+: write your code here")
USE_CALLS = ("use", "checks.use", "segkit.checks.use")

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPES = _FUNCTIONS + _COMPREHENSIONS + (ast.ClassDef,)


@dataclass(frozen=True)
class Stub:
    """A name that holds a stub: defined in code cell ``cell`` (0-based) of ``exercise``."""

    name: str
    exercise: str
    cell: int


@dataclass(frozen=True)
class ParsedCell:
    """A code cell (``index`` 0-based), the source that was parsed (``text``: magics
    blanked out) and its syntax tree; ``tree`` is None and ``error`` says why when the
    cell is not Python."""

    index: int
    cell: NotebookNode
    text: str
    tree: ast.Module | None
    error: str | None


# --------------------------------------------------------------------------- parsing


def python_source(source: str) -> str:
    """``source`` with IPython's ``%magic`` and ``!shell`` lines replaced by ``pass``.

    Lines keep their number and indentation, so line numbers still match the cell.
    """
    lines = []
    for line in source.split("\n"):
        code = line.lstrip()
        if code.startswith("%") or (code.startswith("!") and not code.startswith("!=")):
            line = line[:len(line) - len(code)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def parse_cells(nb: NotebookNode) -> list[ParsedCell]:
    """Every code cell of ``nb``, parsed."""
    parsed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = python_source(cell.source)
        try:
            parsed.append(ParsedCell(index, cell, text, ast.parse(text), None))
        except SyntaxError as exc:
            parsed.append(ParsedCell(index, cell, text, None, f"line {exc.lineno}: {exc.msg}"))
    return parsed


# --------------------------------------------------------------------------- names


def _dotted(node: ast.expr) -> str:
    """'segkit.checks.use' for that expression; '' for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _is_use_call(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in USE_CALLS


def _student_argument(call: ast.Call) -> ast.expr | None:
    """The ``student_obj`` argument of ``checks.use(exercise, student_obj, reference_obj)``."""
    if len(call.args) > 1:
        return call.args[1]
    return next((k.value for k in call.keywords if k.arg == "student_obj"), None)


def _rebound_by_use(statement: ast.stmt) -> str | None:
    """``name`` when ``statement`` is ``name = checks.use(...)``, else None."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign):
        target = statement.target
    else:
        return None
    if isinstance(target, ast.Name) and _is_use_call(statement.value):
        return target.id
    return None


def _same_scope(nodes: list[ast.AST]):
    """The nodes and everything under them, without going into nested functions,
    lambdas, classes or comprehensions (those nodes are yielded, not their insides)."""
    todo = list(nodes)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def _names_bound_by(node: ast.AST) -> list[str]:
    """The names one node binds in its scope (a def's name, an assignment's target...)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, ast.alias) and node.name != "*":
        return [node.asname or node.name.split(".")[0]]
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
        return [node.name]
    return []


def _bindings(nodes: list[ast.AST]) -> list[tuple[str, int]]:
    """(name, line) of every name the statements bind in their own scope."""
    found = []
    for node in _same_scope(nodes):
        line = getattr(node, "lineno", None)
        found += [(name, line) for name in _names_bound_by(node)]
    return found


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """The names local to a function: its parameters and what its body binds."""
    args = function.args
    params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    if isinstance(function, ast.Lambda):
        return set(params)
    declared = {name for node in _same_scope(function.body)
                if isinstance(node, (ast.Global, ast.Nonlocal)) for name in node.names}
    return (set(params) | {name for name, _ in _bindings(function.body)}) - declared


def _reads(node: ast.AST, local: frozenset[str] = frozenset()):
    """Every name ``node`` reads from the notebook's globals (``ast.Name`` loads), less
    the names local to an enclosing function, lambda or comprehension."""
    if isinstance(node, _FUNCTIONS):
        outside = [*getattr(node, "decorator_list", []), node.args]  # run at def time
        if getattr(node, "returns", None) is not None:
            outside.append(node.returns)
        for child in outside:
            yield from _reads(child, local)
        inside = local | _local_names(node)
        for child in (node.body if isinstance(node.body, list) else [node.body]):
            yield from _reads(child, inside)
        return
    if isinstance(node, _COMPREHENSIONS):
        first = node.generators[0]
        yield from _reads(first.iter, local)  # the first iterable is read outside
        inside = local | {name for g in node.generators for name, _ in _bindings([g.target])}
        rest = [c for c in ast.iter_child_nodes(node) if c is not first]
        for child in rest + [first.target, *first.ifs]:
            yield from _reads(child, inside)
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
        yield node
    for child in ast.iter_child_nodes(node):
        yield from _reads(child, local)


# --------------------------------------------------------------------------- stubs


def _is_stub_raise(node: ast.AST) -> bool:
    """True for ``raise NotImplementedError("Exercise x: write your code here")``."""
    if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
        return False
    call = node.exc
    return (_dotted(call.func) == "NotImplementedError" and len(call.args) == 1
            and isinstance(call.args[0], ast.Constant)
            and STUB_MESSAGE.fullmatch(str(call.args[0].value)) is not None)


def _holds_stub(statement: ast.stmt) -> bool:
    """True when ``statement`` is a def or class whose body holds a stub (methods too)."""
    return (isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and any(_is_stub_raise(node) for node in ast.walk(statement)))


def _raised_when_run(tree: ast.Module) -> list[ast.Raise]:
    """The stubs that raise as soon as the cell runs: those in no function body."""
    found = []
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if _is_stub_raise(node):
            found.append(node)
        if not isinstance(node, _FUNCTIONS):
            todo.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda node: node.lineno)


def _lesson_rebindings(cells: list[ParsedCell]) -> dict[str, tuple[int, str]]:
    """name -> (cell index, text) of the lesson's first ``name = checks.use(...)``."""
    found: dict[str, tuple[int, str]] = {}
    for parsed in cells:
        if parsed.tree is None or is_check_cell(parsed.cell):
            continue
        for statement in parsed.tree.body:
            name = _rebound_by_use(statement)
            if name and name not in found:
                text = ast.get_source_segment(parsed.text, statement) or ""
                found[name] = (parsed.index, " ".join(text.split()))
    return found


def _fix(stub: Stub, rebindings: dict[str, tuple[int, str]]) -> str:
    """How to rebind ``stub``: the lesson's own ``checks.use`` line, or a template."""
    if stub.name in rebindings:
        at, text = rebindings[stub.name]
        return f"rebind it first with `{text}` (the lesson does so in cell {at + 1})"
    return (f'rebind it first with `{stub.name} = checks.use("{stub.exercise}", {stub.name}, '
            "<segkit's version>)`")


# --------------------------------------------------------------------------- problems


def _stub_reads(where: str, statement: ast.stmt, stubs: dict[str, Stub],
                rebindings: dict[str, tuple[int, str]]) -> list[str]:
    """A problem for every read of a stub in ``statement`` (see the module's docstring)."""
    calls = [node for node in ast.walk(statement) if isinstance(node, ast.Call)]
    given_to_use = {id(_student_argument(call)) for call in calls if _is_use_call(call)}
    called = {id(call.func) for call in calls}
    problems = []
    for name in _reads(statement):
        if name.id not in stubs or id(name) in given_to_use:
            continue
        stub = stubs[name.id]
        verb = "calls" if id(name) in called else "uses"
        problems.append(f"{where}, line {name.lineno}: {verb} `{name.id}`, a stub in the "
                        f"lesson (exercise `{stub.exercise}`, cell {stub.cell + 1}) that "
                        "raises NotImplementedError until the student writes it: "
                        f"{_fix(stub, rebindings)}")
    return problems


def _stub_rebinds(where: str, statement: ast.stmt, stubs: dict[str, Stub],
                  rebindings: dict[str, tuple[int, str]]) -> list[str]:
    """Apply ``statement``'s bindings to ``stubs``; a problem for each stub it hides."""
    problems = []
    by_use = _rebound_by_use(statement)
    for name, line in _bindings([statement]):
        if name not in stubs:
            continue
        stub = stubs.pop(name)
        if name != by_use:
            fix = _fix(stub, rebindings).replace("rebind it first with", "write")
            problems.append(f"{where}, line {line}: rebinds `{name}`, a stub in the lesson "
                            f"(exercise `{stub.exercise}`, cell {stub.cell + 1}), without "
                            "`checks.use`: that hides the stub, so the lesson would never use "
                            f"the student's version nor say it uses segkit's. Instead, {fix}")
    return problems


def _exercise_cell_problems(where: str, tree: ast.Module, exercise: str) -> list[str]:
    """Stubs that raise when the exercise cell runs, or that no name can be followed to."""
    at_once = _raised_when_run(tree)
    if at_once:
        return [f"{where}, line {node.lineno}: the stub of `{exercise}` raises as soon as the "
                "cell runs: put the exercise inside a function or method (def ...:), so that "
                "it raises only when the check calls it" for node in at_once]
    if not any(_holds_stub(statement) for statement in tree.body):
        return [f"{where} is exercise `{exercise}`, but no top-level function or class holds "
                "its stub: define the exercise with `def` or `class` at the top level of the "
                "cell, so that the check and later cells refer to it by name"]
    return []


def _check_cell_problems(where: str, tree: ast.Module, exercise: str,
                         stubs: dict[str, Stub], defined: dict[str, list[str]]) -> list[str]:
    """A problem when a check cell never reads a stub of its exercise."""
    names = defined.get(exercise, [])
    if not names:
        return []  # the exercise cell's problem says why
    read = {name.id for name in _reads(tree)}
    if any(name in read and name in stubs for name in names):
        return []
    shown = ", ".join(f"`{name}`" for name in names)
    example = f"checks.lessonNN.check_...({names[0]})"
    return [f"{where} is the check of `{exercise}` but never reads the stub {shown}: call the "
            f"lesson's check with the student's object, e.g. `{example}`, so that it raises "
            "ExerciseNotDone until the exercise is written"]


def stub_call_problems(nb: NotebookNode, name: str) -> list[str]:
    """Why the lesson ``name`` would not run to the end with its stubs in place.

    Empty when it would: only check cells can reach a stub (what the module's docstring
    lists is checked; its limits are listed there too). ``nb`` is the lesson, i.e. the
    notebook ``build_lesson`` makes; ``name`` (e.g. ``"04_metrics"``) starts every
    problem.
    """
    cells = parse_cells(nb)
    rebindings = _lesson_rebindings(cells)
    stubs: dict[str, Stub] = {}  # the names that hold a stub now
    defined: dict[str, list[str]] = {}  # exercise -> its stubs' names
    problems: list[str] = []
    for parsed in cells:
        where = describe_cell(parsed.index, parsed.cell)
        if parsed.tree is None:
            problems.append(f"{where} is not Python ({parsed.error}), even with its %magic and "
                            "!shell lines left out: fix it, so that its use of the stubs can "
                            "be checked")
            continue
        check = check_name(parsed.cell)
        if check is not None:
            problems += _check_cell_problems(where, parsed.tree, check, stubs, defined)
            continue
        exercise = exercise_name(parsed.cell)
        if exercise is not None:
            problems += _exercise_cell_problems(where, parsed.tree, exercise)
        for statement in parsed.tree.body:
            problems += _stub_reads(where, statement, stubs, rebindings)
            problems += _stub_rebinds(where, statement, stubs, rebindings)
            if exercise is not None and _holds_stub(statement):
                stubs[statement.name] = Stub(statement.name, exercise, parsed.index)
                defined.setdefault(exercise, []).append(statement.name)
    return [f"{name}: {problem}" for problem in problems]
