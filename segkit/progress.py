"""Progress bars: a widget in Jupyter, a text bar in a terminal, silent in CI.

In Jupyter the bar is tqdm's notebook widget (this needs ipywidgets, which the course
installs) while it runs; when it closes, its output is replaced by text: the bar's last
line, or nothing for a bar that does not stay (``leave=False``, the default). A saved
notebook then holds no widget whose state is gone: reopened, or viewed on GitHub or the
course website, it shows text instead of "Error displaying widget: model not found".
Elsewhere ``tqdm.auto`` gives the plain text bar. When the environment variable ``CI``
is set (or ``SEGKIT_PROGRESS=0``) bars are off in terminals, so CI logs stay short.

A bar takes part in the run's random numbers: ``tqdm.auto`` starts an iterator of the
loader when the bar is made (even a disabled one), and a DataLoader draws a seed from its
generator for every iterator. So a shuffled loader iterated through ``progress`` gives
other batches than the same loader iterated bare; every figure the lessons store was made
through ``progress`` (``segkit.training.fit`` puts it around both loaders). Keep it so,
or store the trained figures again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm
from tqdm.notebook import tqdm_notebook

T = TypeVar("T")


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (not merely when ipykernel happens to be imported)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_disabled() -> bool:
    """True when bars should stay quiet: ``SEGKIT_PROGRESS=0``, or ``CI`` set outside a notebook."""
    flag = os.environ.get("SEGKIT_PROGRESS")
    if flag is not None:
        return flag.strip().lower() in ("0", "false", "no", "off")
    return bool(os.environ.get("CI")) and not _in_notebook()


class NotebookBar(tqdm_notebook):
    """tqdm's notebook bar, shown through a display handle so that, when it closes, its
    output becomes text: the last line of the bar (``leave=True``, or a loop that stopped
    early), else an empty line. The widget is closed then, so nothing of it is saved."""

    def __init__(self, *args, **kwargs):
        from IPython.display import display

        super().__init__(*args, display=False, **kwargs)
        self.handle = None
        if not self.disable:
            self.handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self) -> None:
        if self.disable:
            return
        stopped_early = bool(self.total and self.n < self.total)
        super().close()
        text = self.format_meter(**self.format_dict) if self.leave or stopped_early else ""
        self.handle.update({"text/plain": text}, raw=True)
        self.container.close()


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None,
             leave: bool = False, enabled: bool | None = None) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar (in Jupyter a widget that turns into text
    when done, :class:`NotebookBar`).

    ``enabled=None`` follows :func:`progress_disabled`; ``False`` returns a silent bar.
    """
    disable = progress_disabled() if enabled is None else not enabled
    bar = NotebookBar if _in_notebook() and not disable else tqdm
    return bar(iterable, desc=desc, total=total, leave=leave, disable=disable,
               dynamic_ncols=True)

