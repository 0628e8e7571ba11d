"""The processes of a sandbox, seen from the grader: their CPU time, and how many.

    tree = ProcessTree(proc.pid)          # the sandbox's first process (bwrap)
    tree.cpu_seconds()                    # user + system CPU of it and every descendant
    tree.count()                          # how many processes it is now

A student's time limits count that student's CPU time, not the clock: a neighbour that
keeps every core busy slows a notebook down but cannot time it out. The grader reads
``/proc/<pid>/stat`` of the sandbox's processes (files the kernel writes, not the
sandbox), every second or so, and stops a sandbox whose tree has used up its CPU
budget (a fork bomb of spinners in one sandbox is stopped at its own budget). Processes
that ended and were waited for are counted in their parent's children's times; a
process that escaped its parent (``setsid``, a double fork) is adopted by the sandbox's
own first process, so it stays in the tree. Linux only; elsewhere both are 0.
"""

from __future__ import annotations

import os

__all__ = ["ProcessTree"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its waited-for children), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read(4096).decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name (field 2) may hold anything
    try:
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        return int(fields[1]), ticks / _TICKS
    except (IndexError, ValueError):
        return None


class ProcessTree:
    """The process ``root`` and its descendants, found again at each look."""

    def __init__(self, root: int) -> None:
        self.root = root

    def _members(self) -> dict[int, float]:
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            return {}
        stats = {pid: found for pid in pids if (found := _stat(pid)) is not None}
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in stats.items():
            children.setdefault(parent, []).append(pid)
        members, todo = {}, [self.root]
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in members:
                members[pid] = stats[pid][1]
                todo += children.get(pid, [])
        return members

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the tree (0 when it is gone)."""
        return sum(self._members().values())

    def count(self) -> int:
        """The number of processes in the tree now."""
        return len(self._members())
