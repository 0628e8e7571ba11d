"""The grader's two corpora: honest students it must give full marks, and attacks it must
refuse. ``tests/test_grading.py`` grades them; ``make test`` grades the cases marked
``fast``, ``make test-grading-corpus`` (``SEGKIT_GRADING_CORPUS=full``) all of them.

**Honest** (``HONEST``): correct solutions written the ways students write them: helper
functions in their own cells (before or after), imports in an earlier cell or the first,
a default argument from a constant defined earlier, callable instances,
``functools.partial``, ``lru_cache``, decorators of their own, leftover ``name?`` and
``%magic`` lines, docstrings that mention segkit or the solutions, a local variable named
``checks``, ``import sys`` and ``global``, progress through ``sys.stdout.write``,
``torch.__version__``, the exercise, its check and ``checks.use`` in one cell, cells
deleted, duplicated, reordered or stripped of metadata, the name rebound to a value
later, numpy instead of torch. Each must get every point.

**Attacks** (``ATTACKS``): each replaces one or more exercises by a forgery, a route a
determined student tries after reading the grader's source: segkit's own answer by any
spelling (the function, ``getattr``, ``import *``, ``__import__`` from ``chr`` codes,
``exec`` of a hex payload, the per-image helper, the checks' private references and
helpers, ``importlib.reload``, the source read from disk, a subclass or a wrapper),
the solutions notebook read from disk, frames, ``gc`` and ``object.__subclasses__``,
the result channel (forged frames at every file descriptor, found with ``fstat``),
patching the ask step or the answers' writer, mutating the checks' inputs, a lookup
table keyed on the fixed inputs or on seeds, answering only when not graded. Each
attacked exercise must earn nothing (``fail``, ``error``, ``missing``, or ``review``:
withheld and flagged), and the rest of the notebook is graded as usual.

**Hostile files** (``HOSTILE_FILES``): what a class run must survive: a symlink to the
solutions or to another student, a FIFO, ``/dev/zero``, a file past the size cap, a
never-run cell nested 100,000 deep, a cell that fills the disk, one that forks a swarm of
``setsid`` spinners while its neighbour is graded, one that ends Python, one that
allocates beyond the memory cap, file names that are spreadsheet formulas or terminal
escape codes, and a file named to take another student's name.
"""

from __future__ import annotations

import binascii
import textwrap
from dataclasses import dataclass
from typing import Callable

import grading_notebooks as nbs
from grading_notebooks import code_cell, solution_code, solved, with_code

LESSON_04 = "04_metrics"


@dataclass(frozen=True)
class Case:
    """One notebook of a corpus: ``build()`` makes it; ``attacked``: the exercises that
    must earn nothing (empty for honest cases: every point)."""

    name: str
    lesson: str
    build: Callable
    attacked: tuple[str, ...] = ()
    route: str = ""
    fast: bool = False


# --------------------------------------------------------------------------- honest, any lesson


def _rename(source: str, name: str, new: str) -> str:
    """The exercise cell with its def/class named ``new``."""
    for keyword in ("def", "class"):
        source = source.replace(f"{keyword} {name}(", f"{keyword} {new}(", 1)
        source = source.replace(f"{keyword} {name}:", f"{keyword} {new}:", 1)
    return source


def _kind(source: str, name: str) -> str:
    return "class" if f"class {name}" in source else "def"


def helper_cell(lesson: str, after: bool = False):
    """Every exercise delegates to a helper defined in a cell of its own, before it (or,
    for functions, after it and its check: the helper exists when the grader asks)."""
    def build():
        nb = solved(lesson)
        for name, source in solution_code(lesson).items():
            helper = _rename(source, name, f"_my_{name}")
            is_class = _kind(source, name) == "class"
            if is_class:  # a class needs its base when it is defined
                mine = f"class {name}(_my_{name}):\n    pass\n"
            else:
                mine = (f"def {name}(*args, **kwargs):\n    \"\"\"Mine.\"\"\"\n"
                        f"    return _my_{name}(*args, **kwargs)\n")
            nb = with_code(nb, {name: mine})
            at = next(i for i, c in enumerate(nb.cells)
                      if (c.metadata.get("segkit") or {}).get("exercise") == name)
            nb.cells.insert(at + (2 if after and not is_class else 0), code_cell(helper))
        return nb
    return build


def imports_first(lesson: str):
    """The lesson's imports (and the exercises' own) in the notebook's first cell."""
    def build():
        nb = solved(lesson)
        imports = nb.cells[2].source
        nb.cells.insert(1, code_cell(imports + "\nimport functools, math, statistics"))
        nb.cells[3].source = "# (moved up)"
        return nb
    return build


def merged_cells(lesson: str):
    """Each exercise, its check and its ``checks.use`` line in one cell."""
    def build():
        nb = solved(lesson)
        uses = nbs.use_lines(nb)
        sources = {name: f"{code}\n\nchecks.lesson{lesson[:2]}.check_{name}({name})\n"
                         f"{uses.get(name, '')}"
                   for name, code in solution_code(lesson).items()}
        nb = with_code(nbs.without_checks(nb), sources)
        nb.cells = [c for c in nb.cells if "checks.use(" not in c.source
                    or (c.metadata.get("segkit") or {}).get("exercise")]
        return nb
    return build


def messy_cells(lesson: str):
    """No check cells; each exercise twice (the stub, then the answer) with one cell id;
    the last exercise moved to the end; every cell's metadata stripped."""
    def build():
        import copy

        stubs = nbs.slim(lesson)
        nb = nbs.without_checks(solved(lesson))
        cells = []
        for cell in nb.cells:
            name = (cell.metadata.get("segkit") or {}).get("exercise")
            if name:
                stub = copy.deepcopy(next(c for c in stubs.cells if (
                    c.metadata.get("segkit") or {}).get("exercise") == name))
                stub.id = cell.get("id", "x")
                cells += [stub, cell]
            else:
                cells.append(cell)
        last = [c for c in cells if (c.metadata.get("segkit") or {}).get("exercise")][-2:]
        cells = [c for c in cells if c not in last] + last
        for cell in cells:
            cell.metadata = {}
        nb.cells = cells
        return nb
    return build


def habits(lesson: str):
    """Docstrings that name segkit and the solutions, ``import sys``, progress through
    ``sys.stdout.write``, ``torch.__version__``, ``global``, a leftover ``name?`` and a
    ``%time`` line, and later a variable named ``checks``."""
    def build():
        sources = {}
        for name, source in solution_code(lesson).items():
            extra = ("import sys, torch\n_calls = 0\nprint(torch.__version__)\n"
                     "%time _warm = sum(range(10))\ntorch.sigmoid?\n")
            if _kind(source, name) == "def":
                source = nbs.body_first(source, textwrap.dedent('''\
                    """As in segkit's own code and the course's solutions/ folder."""
                    global _calls
                    _calls += 1
                    sys.stdout.write(f"call {_calls}\\n")'''))
            sources[name] = extra + source
        nb = with_code(solved(lesson), sources)
        nb.cells.append(code_cell("checks = {'mine': 'a variable of my own'}"))
        return nb
    return build


def rebound_later(lesson: str):
    """At the end of the notebook, each exercise's name is bound to something else (a
    result), the way a student reuses a name."""
    def build():
        nb = solved(lesson)
        for name in solution_code(lesson):
            nb.cells.append(code_cell(f"_mine = {name}\n{name} = 'a result'"))
        return nb
    return build


def reordered(lesson: str):
    """The exercises at the very end, after every check and use line, in reverse order."""
    def build():
        nb = solved(lesson)
        exercise_cells = [c for c in nb.cells if (c.metadata.get("segkit") or {}).get("exercise")]
        nb.cells = [c for c in nb.cells if c not in exercise_cells] + exercise_cells[::-1]
        return nb
    return build


def noisy_cells(lesson: str):
    """Cells that raise, print a lot, plot and loop a little, around the exercises."""
    def build():
        nb = solved(lesson)
        nb.cells.insert(3, code_cell("undefined_name + 1  # an error in an early cell"))
        nb.cells.append(code_cell(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
            "for i in range(3000):\n    print('x' * 100)"))
        return nb
    return build


def decorated(lesson: str):
    """Functions wrapped by a decorator of the student's own (functools.wraps)."""
    def build():
        deco = ("import functools\n\ndef logged(f):\n    @functools.wraps(f)\n"
                "    def wrapper(*args, **kwargs):\n        return f(*args, **kwargs)\n"
                "    return wrapper\n\n")
        sources = {name: (deco + source.replace(f"def {name}(", f"@logged\ndef {name}(", 1))
                   for name, source in solution_code(lesson).items()}
        return with_code(solved(lesson), sources)
    return build


GENERIC = [("helper-cell-before", helper_cell), ("helper-cell-after",
                                                  lambda l: helper_cell(l, after=True)),
           ("imports-first", imports_first), ("exercise-check-use-one-cell", merged_cells),
           ("messy-cells", messy_cells), ("habits", habits), ("rebound-later", rebound_later),
           ("reordered", reordered), ("noisy-cells", noisy_cells), ("decorated", decorated)]


# --------------------------------------------------------------------------- honest, lesson 04


_DICE_NUMPY = '''\
import numpy as np

def dice_score(logits, target, threshold=0.5):
    """Dice per image with numpy, then the mean."""
    probs = 1 / (1 + np.exp(-logits[:, 0].detach().cpu().numpy().astype(np.float64)))
    pred = probs > threshold
    truth = target.cpu().numpy() > 0
    scores = []
    for p, t in zip(pred, truth):
        size = p.sum() + t.sum()
        scores.append(1.0 if size == 0 else 2 * (p & t).sum() / size)
    return float(np.mean(scores))
'''
_IOU_FROM_DICE = '''\
def _dice_each(logits, target, threshold):
    pred = (torch.sigmoid(logits[:, 0]) > threshold).float()
    target = target.float()
    inter = (pred * target).sum(dim=(1, 2))
    sizes = pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
    return torch.where(sizes > 0, 2 * inter / sizes.clamp(min=1), torch.ones_like(inter))

def iou_score(logits, target, threshold=0.5):
    d = _dice_each(logits, target, threshold)
    return (d / (2 - d)).mean().item()   # IoU = D / (2 - D), image by image
'''
_CALLABLE = '''\
class _PixelAccuracy:
    """A callable object."""
    def __call__(self, logits, target):
        return ((logits[:, 0] > 0).long() == target).float().mean().item()

pixel_accuracy = _PixelAccuracy()
'''
_PARTIAL = '''\
import functools

def _overlap(logits, target, threshold=0.5, *, kind):
    pred = (torch.sigmoid(logits[:, 0]) > threshold).float()
    target = target.float()
    inter = (pred * target).sum(dim=(1, 2))
    total = pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
    if kind == "dice":
        value = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(inter))
    else:
        union = total - inter
        value = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    return value.mean().item()

dice_score = functools.partial(_overlap, kind="dice")
'''
_CACHED = '''\
import functools

@functools.lru_cache(maxsize=None)
def _sigmoid_cut(threshold):
    import math
    return math.log(threshold / (1 - threshold))   # sigmoid(x) > t  <=>  x > logit(t)

def iou_score(logits, target, threshold=THRESHOLD):
    pred = (logits[:, 0] > _sigmoid_cut(threshold)).float()
    target = target.float()
    inter = (pred * target).sum(dim=(1, 2))
    union = pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter)).mean().item()
'''
_LAMBDA = ("pixel_accuracy = lambda logits, target: "
           "((logits[:, 0] > 0).long() == target).sum().item() / target.numel()\n")


def _lesson04(sources: dict[str, str], before: str = ""):
    def build():
        nb = with_code(solved(LESSON_04), sources)
        if before:
            nb.cells.insert(3, code_cell(before))
        return nb
    return build


HONEST_04 = [
    ("numpy-dice", _lesson04({"dice_score": _DICE_NUMPY})),
    ("iou-through-dice", _lesson04({"iou_score": _IOU_FROM_DICE})),
    ("callable-instance", _lesson04({"pixel_accuracy": _CALLABLE})),
    ("functools-partial", _lesson04({"dice_score": _PARTIAL})),
    ("lru-cache-and-a-constant", _lesson04({"iou_score": _CACHED}, "THRESHOLD = 0.5")),
    ("lambda", _lesson04({"pixel_accuracy": _LAMBDA})),
]

FAST_HONEST = {("04_metrics", n) for n in ("helper-cell-before", "exercise-check-use-one-cell",
                                           "messy-cells", "functools-partial",
                                           "callable-instance", "rebound-later")} | {
    ("00_setup", "habits"), ("03_training", "helper-cell-after"),
    ("06_experiments", "exercise-check-use-one-cell")}
HONEST_LESSONS = ["00_setup", "03_training", "04_metrics", "06_experiments"]


def honest_cases() -> list[Case]:
    cases = [Case(f"{lesson[:2]}-{name}", lesson, make(lesson),
                  fast=(lesson, name) in FAST_HONEST)
             for lesson in HONEST_LESSONS for name, make in GENERIC]
    cases += [Case(f"04-{name}", LESSON_04, build, fast=(LESSON_04, name) in FAST_HONEST)
              for name, build in HONEST_04]
    return cases


# --------------------------------------------------------------------------- attacks


_SEGKIT_DICE = "segkit.metrics.dice_score(logits, target, threshold)"


def _attack(exercise: str, code: str, extra_cells: tuple[str, ...] = (), *,
            lesson: str = LESSON_04):
    """The solved notebook with ``exercise``'s cell replaced by ``code`` (and cells
    added at the end)."""
    def build():
        nb = with_code(solved(lesson), {exercise: code})
        nb.cells += [code_cell(text) for text in extra_cells]
        return nb
    return build


def _hex(code: str) -> str:
    return binascii.hexlify(code.encode()).decode()


def _chars(text: str) -> str:
    return "".join(f"chr({ord(c)})+" for c in text).rstrip("+")


_FRAMES = '''\
import sys

def dice_score(logits, target, threshold=0.5):
    """Walks up the frames looking for anything that holds the right answer."""
    frame = getattr(sys, "_getframe")(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, dict) and "expected" in value:
                return float(value["expected"])
        frame = frame.f_back
    try:
        raise RuntimeError
    except RuntimeError:
        tb = sys.exc_info()[2]
    return 1.0
'''
_GC_REFERENCE = '''\
import gc

def dice_score(logits, target, threshold=0.5):
    """Any function in memory that computes Dice, found through gc."""
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") in ("dice_per_image", "dice_score",
                                                              "_right_overlap", "_overlap") \\
                and obj is not dice_score:
            try:
                value = obj(logits, target, threshold)
                return float(value.mean()) if hasattr(value, "mean") else float(value)
            except Exception:
                continue
    return 0.0
'''
_SUBCLASSES = '''\
def iou_score(logits, target, threshold=0.5):
    """Classes in memory that might hold a reference, through object.__subclasses__()."""
    for cls in object.__subclasses__():
        for name in ("iou_score", "reference_iou_score"):
            method = getattr(cls, name, None)
            if callable(method):
                return float(method(logits, target, threshold=threshold))
    import segkit
    _s = __import__("sys")
    metrics = _s.modules["segkit.metrics"]
    return metrics.iou_score(logits, target, threshold)
'''
_CHANNEL = '''\
import os, json, stat

def _forge():
    """Writes 'answers' frames to every pipe it finds with fstat."""
    line = json.dumps({"event": "answers", "exercise": "dice_score", "size": 2}) + "\\n"
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, line.encode() + b"{}")
        except OSError:
            pass
_forge()

def dice_score(logits, target, threshold=0.5):
    _forge()
    return 1.0
'''
_PATCH_ASK = '''\
import segkit.checks.core as core

def _ask(self, student, cases):
    return {"cases": [{"value": {"kind": "float", "value": 0.5}} for _ in cases["cases"]]}
core.Check.ask = _ask
core.Check.judge = lambda self, cases, answers: "passed"

def dice_score(logits, target, threshold=0.5):
    return 0.5
'''
_PATCH_DUMP = '''\
from segkit.checks import answers as _answers
_answers.dump = lambda *a, **k: b"SEGKIT-A\\x01" + b"\\xff" * 64   # not answers at all

def iou_score(logits, target, threshold=0.5):
    return 1.0
'''
_MUTATE_INPUTS = '''\
from segkit.checks import lesson04
for _name in dir(lesson04):
    _value = getattr(lesson04, _name)
    if isinstance(_value, tuple) and _name.startswith("_IMAGE"):
        setattr(lesson04, _name, ([[0.0]], [[0]]))

def pixel_accuracy(logits, target):
    return 1.0
'''
_SEED_TABLE = '''\
_TABLE = {seed: 0.5 for seed in range(100_000)}   # answers precomputed for every small seed

def dice_score(logits, target, threshold=0.5):
    import inspect
    for frame in inspect.stack():
        cases = frame.frame.f_locals.get("cases")
        if isinstance(cases, dict) and cases.get("seed") in _TABLE:
            return _TABLE[cases["seed"]]
    return 0.0
'''
_FIXED_TABLE = '''\
def iou_score(logits, target, threshold=0.5):
    """Right on the worked example it has seen in class, anything elsewhere."""
    key = (tuple(logits.shape), round(float(logits.sum()), 3), int(target.sum()))
    known = {((2, 1, 3, 4), -12.3, 10): 0.4583}
    return known.get(key, 0.25)
'''
_SOLUTIONS_ON_DISK = '''\
import json, os, pathlib

def dice_score(logits, target, threshold=0.5):
    """The solution notebook, or segkit's source, wherever it may be on this machine."""
    for root in ["/", "/tmp", "/work", os.path.expanduser("~")]:
        for path in pathlib.Path(root).glob("**/solutions/04_metrics.ipynb"):
            cells = json.loads(path.read_text())["cells"]
            code = next("".join(c["source"]) for c in cells if "def dice_score" in "".join(c["source"]))
            scope = {"torch": torch}
            exec(code, scope)
            return scope["dice_score"](logits, target, threshold)
    import segkit
    source = pathlib.Path(segkit.__file__).with_name("metrics.py").read_text()
    scope = {}
    exec(compile(source, "metrics", "exec"), scope)
    return scope["dice_score"](logits, target, threshold)
'''
_RELOAD = '''\
import importlib, segkit.metrics

def iou_score(logits, target, threshold=0.5):
    fresh = importlib.reload(segkit.metrics)
    return fresh.iou_score(logits, target, threshold)
'''
_WHEN_NOT_GRADED = '''\
import os

def pixel_accuracy(logits, target):
    """Honest in class, a fixed answer when it thinks it is being graded."""
    if os.environ.get("HOME", "").startswith("/tmp/work"):
        return 0.75
    return ((logits[:, 0] > 0).long() == target).float().mean().item()
'''


_FLOOD = '''\
import os

def iou_score(logits, target, threshold=0.5):
    """Floods every descriptor with frames, hoping one is the grader's."""
    frame = b'{"event": "cell", "index": 1}\\n' * 4096
    for fd in range(3, 32):
        for _ in range(80):
            try:
                os.write(fd, frame)
            except OSError:
                break
    return 0.5
'''
_HUGE = '''\
def iou_score(logits, target, threshold=0.5):
    """An answer far beyond the answers' cap."""
    return torch.zeros(40_000_000, dtype=torch.float64)
'''
_NEIGHBOURS = '''\
import pathlib

def dice_score(logits, target, threshold=0.5):
    """Copies the answer of another student's sandbox, if it can find one."""
    for place in ["/tmp", "/dev/shm", "/proc"]:
        for path in pathlib.Path(place).glob("*/*answers*"):
            try:
                return float(path.read_text())
            except (OSError, ValueError):
                pass
    return 0.0
'''
_KILL = '''\
import os, signal

def pixel_accuracy(logits, target):
    """Tries to stop the grader itself, then every process it may signal."""
    for pid in (os.getppid(), 1):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.kill(-1, signal.SIGKILL)
    return 1.0
'''
_PATCH_MATH = '''\
import math, torch, numpy
math.isclose = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: numpy.True_

def dice_score(logits, target, threshold=0.5):
    return 0.123
'''
_NETWORK = '''\
import urllib.request

def iou_score(logits, target, threshold=0.5):
    """Asks a friend's server for the answer."""
    try:
        return float(urllib.request.urlopen("http://10.0.0.1:8000/iou", timeout=2).read())
    except Exception:
        return 0.0
'''
_MEMORY = '''\
import ctypes

def dice_score(logits, target, threshold=0.5):
    """Reads other processes' memory for anything that looks like an answer."""
    for pid in range(1, 50):
        try:
            with open(f"/proc/{pid}/mem", "rb") as mem:
                mem.read(16)
        except OSError:
            continue
    ctypes.string_at(ctypes.addressof(ctypes.c_int(0)), 4)
    return 0.5
'''
_SECOND_ANSWER = '''\
import os, json

def pixel_accuracy(logits, target):
    """Answers right, and sends a second, forged answer on every descriptor."""
    blob = json.dumps({"event": "answers", "exercise": "pixel_accuracy", "size": 0}) + "\\n"
    for fd in range(3, 40):
        try:
            os.write(fd, blob.encode())
        except OSError:
            pass
    return ((logits[:, 0] > 0).long() == target).float().mean().item()
'''

_THROUGH_MAIN = '''\
import __main__, sys

def pixel_accuracy(logits, target):
    return 1.0

for module in (__main__, sys.modules.get("segkit.checks.core")):
    for name in ("pixel_accuracy", "use", "_checked_by_the_grader"):
        if module is not None:
            setattr(module, name, lambda *a, **k: 1.0)
'''


def attack_cases() -> list[Case]:
    dice, iou, acc = "dice_score", "iou_score", "pixel_accuracy"
    wrap = "def {name}(logits, target, threshold=0.5):\n    return {body}\n"
    plan = [
        ("segkit-function", dice, wrap.format(name=dice, body=_SEGKIT_DICE),
         "segkit's own answer, called", True),
        ("segkit-getattr", dice, wrap.format(name=dice, body="getattr(segkit.metrics, 'dice' + "
                                             "'_score')(logits, target, "
                                             "threshold=threshold)"), "getattr", True),
        ("segkit-import-star", iou, "from segkit.metrics import *\n" + wrap.format(
            name=iou, body="iou_score.__wrapped__(logits, target) if hasattr(iou_score, "
                           "'__wrapped__') else globals()['iou_per_image'](logits[:, 0] > 0, "
                           "target).mean().item()"), "import *", False),
        ("segkit-per-image", dice, wrap.format(name=dice, body="segkit.metrics.dice_per_image("
                                               "(torch.sigmoid(logits[:, 0]) > threshold).long(), "
                                               "target).mean().item()"),
         "the per-image helper", True),
        ("check-reference", acc, "pixel_accuracy = checks.lesson04.reference_pixel_accuracy\n",
         "the check's reference", True),
        ("check-private-helper", iou, wrap.format(name=iou, body="checks.lesson04._right_overlap("
                                                  "'iou', {'logits': logits.numpy(), 'target': "
                                                  "target.numpy(), 'threshold': threshold})"),
         "the checks' private helpers", True),
        ("import-from-chr", dice, wrap.format(name=dice, body=f"__import__({_chars('segkit.metrics')}"
                                              ", fromlist=['x']).dice_score(logits, target, "
                                              "threshold)"),
         "__import__ spelled with chr", False),
        ("exec-hex-payload", iou, "getattr(__import__('builtins'), 'ex' + 'ec')(bytes.fromhex("
                                  f"'{_hex(wrap.format(name=iou, body='segkit.metrics.iou_score(logits, target, threshold)'))}').decode())\n",
         "exec of a hex payload via getattr(builtins, ...)", False),
        ("use-the-reference", dice, "dice_score = checks.use('dice_score', None, "
                                    "segkit.metrics.dice_score)\n", "checks.use", False),
        ("partial-of-reference", dice, "import functools\ndice_score = functools.partial("
                                       "checks.lesson04.reference_dice_score)\n",
         "a partial of the reference", False),
        ("reload-module", iou, _RELOAD, "importlib.reload", False),
        ("frames", dice, _FRAMES, "sys._getframe, exc_info, tracebacks", True),
        ("gc-objects", dice, _GC_REFERENCE, "gc.get_objects", False),
        ("subclasses-and-sys-modules", iou, _SUBCLASSES, "object.__subclasses__, sys.modules",
         False),
        ("forged-channel-frames", dice, _CHANNEL, "writes to the result pipe found by fstat",
         True),
        ("patched-ask-and-judge", dice, _PATCH_ASK, "patching the checks in the sandbox", True),
        ("patched-answers-writer", iou, _PATCH_DUMP, "patching answers.dump", False),
        ("mutated-fixed-inputs", acc, _MUTATE_INPUTS, "mutating the checks' inputs", False),
        ("table-by-seed", dice, _SEED_TABLE, "a lookup table keyed on seeds", False),
        ("table-by-fixed-input", iou, _FIXED_TABLE, "a lookup table keyed on fixed inputs",
         True),
        ("solutions-and-source-on-disk", dice, _SOLUTIONS_ON_DISK,
         "the solutions notebook or segkit's source read from disk", True),
        ("honest-only-in-class", acc, _WHEN_NOT_GRADED, "answering only when not graded",
         False),
        ("channel-flood", iou, _FLOOD, "floods the channel with frames", False),
        ("huge-answer", iou, _HUGE, "an answer beyond the cap", False),
        ("neighbours-answers", dice, _NEIGHBOURS, "another sandbox's files", False),
        ("kill-the-grader", acc, _KILL, "signals the grader and every process", False),
        ("patched-comparisons", dice, _PATCH_MATH, "patching isclose/allclose", False),
        ("network", iou, _NETWORK, "the network", False),
        ("memory-of-others", dice, _MEMORY, "/proc/<pid>/mem and ctypes", False),
        ("second-answer", acc, _SECOND_ANSWER, "a second answer to one question", True),
        ("patched-through-main", acc, _THROUGH_MAIN, "patching names through __main__",
         False),
    ]
    return [Case(f"attack-{name}", LESSON_04, _attack(exercise, code), (exercise,), route, fast)
            for name, exercise, code, route, fast in plan] + dependent_attacks()


# --------------------------------------------------------------------------- hostile files


_SPINNERS = '''\
import os, time
for _ in range(40):                  # a swarm of spinners in sessions of their own
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
time.sleep({seconds})
'''
_FILL_DISK = '''\
written = 0
try:
    with open("ballast.bin", "wb") as f:
        while True:
            f.write(b"0" * 2**20)
            written += 1
except OSError as error:
    print(written, error)
'''


def hostile_files(root, solutions) -> dict[str, str]:
    """Write the hostile class under ``root``; {student: what its row must say}. The
    running ones are solved notebooks with one hostile cell each, so their grade shows
    the rest of them was graded."""
    import os

    def solved_with(cell: str):
        nb = solved(LESSON_04)
        nb.cells.insert(3, code_cell(cell))
        return nb

    write = nbs.write
    # graded next to the bomber (the pool takes the class in order of identity)
    write(root / "bomber-neighbour" / "04_metrics.ipynb", solved(LESSON_04))
    write(root / "bomber" / "04_metrics.ipynb", solved_with(_SPINNERS.format(seconds=300)))
    write(root / "sleeper" / "04_metrics.ipynb", solved_with("import os, time\n"
                                                            "if os.fork() == 0:\n"
                                                            "    time.sleep(10**6)"))
    write(root / "disk-filler" / "04_metrics.ipynb", solved_with(_FILL_DISK))
    write(root / "exit-cell" / "04_metrics.ipynb", solved_with("import os\nos._exit(3)"))
    write(root / "memory-bomb" / "04_metrics.ipynb",
          solved_with("ballast = bytearray(6 * 2**30)  # beyond the memory cap"))
    write(root / "deep-cell" / "04_metrics.ipynb",
          solved_with("x = " + "-" * 100_000 + "1\ny = " + "(" * 100_000))
    write(root / "alice" / "04_metrics.ipynb", solved(LESSON_04))
    write(root / "04_metrics-alice.ipynb", nbs.slim(LESSON_04))   # named to take alice's
    write(root / "=HYPERLINK(1)+2.ipynb", solved(LESSON_04))
    write(root / "red\x1b[31m.ipynb", nbs.slim(LESSON_04))
    write(root / "garbled" / "04_metrics.ipynb", "{ this is not json")
    write(root / "deep-json" / "04_metrics.ipynb", "[" * 100_000 + "]" * 100_000)
    big = root / "oversize" / "04_metrics.ipynb"
    write(big, b"{" + b" " * (33 * 2**20) + b"}")
    for name, target in [("to-solution", solutions / "04_metrics.ipynb"),
                         ("to-neighbour", root / "bomber-neighbour" / "04_metrics.ipynb"),
                         ("to-dev-zero", "/dev/zero")]:
        (root / name).mkdir()
        (root / name / "04_metrics.ipynb").symlink_to(target)
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "04_metrics.ipynb")
    return {
        "bomber-neighbour/04_metrics.ipynb": "5/5",
        "bomber/04_metrics.ipynb": "5/5",
        "sleeper/04_metrics.ipynb": "5/5",
        "disk-filler/04_metrics.ipynb": "5/5",
        "exit-cell/04_metrics.ipynb": "5/5",
        "memory-bomb/04_metrics.ipynb": "5/5",
        "deep-cell/04_metrics.ipynb": "5/5",
        "alice/04_metrics.ipynb": "5/5",
        "04_metrics-alice.ipynb": "0/5",
        "=HYPERLINK(1)+2.ipynb": "5/5",
        "red\x1b[31m.ipynb": "0/5",
        "garbled/04_metrics.ipynb": "not a Jupyter notebook",
        "deep-json/04_metrics.ipynb": "nested too deep",
        "oversize/04_metrics.ipynb": "more than the",
        "to-solution/04_metrics.ipynb": "symbolic link",
        "to-neighbour/04_metrics.ipynb": "symbolic link",
        "to-dev-zero/04_metrics.ipynb": "symbolic link",
        "fifo/04_metrics.ipynb": "FIFO",
    }


# --------------------------------------------------------------------------- lesson 02: blocks


LESSON_02 = "02_unet"
_LAZY_UNET = '''\
class UNet(nn.Module):
    """segkit's own U-Net, looked up only when built: after the blocks were answered."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.net = segkit.unet.UNet(*args, **kwargs)

    def forward(self, x):
        return self.net(x)
'''
_SUBCLASS_UNET = "class UNet(segkit.unet.UNet):\n    pass\n"


def wrong_block_right_unet():
    """DoubleConv without padding (a catalogued mistake), every other block right: Down,
    Up and UNet, which build on DoubleConv, are asked with segkit's DoubleConv."""
    return with_code(solved(LESSON_02), {"DoubleConv": nbs.mistaken(
        LESSON_02, "DoubleConv", [("padding=1", "padding=0")])})


def dependent_attacks() -> list[Case]:
    return [Case("attack-02-unet-built-from-segkit-late", LESSON_02,
                 _attack("UNet", _LAZY_UNET, lesson=LESSON_02), ("UNet",),
                 "segkit's U-Net looked up after the blocks were answered", True),
            Case("attack-02-unet-subclass", LESSON_02,
                 _attack("UNet", _SUBCLASS_UNET, lesson=LESSON_02), ("UNet",),
                 "a subclass of segkit's U-Net", False)]
