"""Progress bars: a widget in Jupyter, a text bar in a terminal, silent in CI.

``tqdm.auto`` picks the notebook widget when running in Jupyter (this needs ipywidgets,
which the course installs) and the plain text bar elsewhere. When the environment
variable ``CI`` is set (or ``SEGKIT_PROGRESS=0``) bars are off in terminals, so CI logs
stay short. In notebooks the widget is kept: nbval does not compare widget views.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

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


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None,
             leave: bool = False, enabled: bool | None = None) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar (widget in Jupyter).

    ``enabled=None`` follows :func:`progress_disabled`; ``False`` returns a silent bar.
    """
    disable = progress_disabled() if enabled is None else not enabled
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable,
                dynamic_ncols=True)


class ProgressLoader:
    """``loader`` with a new progress bar each time it is iterated (once per epoch)."""

    def __init__(self, loader: Iterable[T], desc: str = "", enabled: bool | None = None) -> None:
        self.loader, self.desc, self.enabled = loader, desc, enabled

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(progress(self.loader, desc=self.desc, enabled=self.enabled))
