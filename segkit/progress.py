"""Progress bars: a widget in Jupyter, a text bar in a terminal, silent in CI.

``tqdm.auto`` picks the notebook widget when running in Jupyter (this needs ipywidgets,
which the course installs) and the plain text bar elsewhere. When the environment
variable ``CI`` is set (or ``SEGKIT_PROGRESS=0``) bars are off in terminals, so CI logs
stay short. In notebooks the widget is kept: nbval does not compare widget views.

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

