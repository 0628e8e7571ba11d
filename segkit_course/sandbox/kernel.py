"""Jupyter kernels for the course's tools: guarded kernels, and the current Python's.

    with KernelSession(cwd, kernel_env(block_network=True, log_path=log)) as kernel:
        run = kernel.run("print(1 + 1)", timeout=10)    # run.output == "2\\n"

``segkit verify`` runs the course's notebooks cell by cell in a :class:`KernelSession`:
a kernel of this Python started as ``python -m segkit_course.sandbox.kernel``, which installs
the guard of :mod:`segkit_course.sandbox.guard` from the ``SEGKIT_GUARD_*`` variables that
:func:`kernel_env` sets (no network, optionally no writes outside a folder and no
programs) before any notebook code runs. ``segkit run-course`` executes notebooks with
nbclient in a kernel of the current Python (:class:`CurrentPythonKernelSpecs`).

``segkit grade`` does not use Jupyter kernels: it runs each notebook in an IPython shell
inside a plain Python process (:mod:`segkit_course.grading.runner`), sandboxed by
:mod:`segkit_course.sandbox.bwrap`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import ipykernel.kernelspec
import zmq
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

import segkit
from segkit_course.sandbox import guard

__all__ = ["CURRENT_PYTHON_KERNEL", "CellRun", "CurrentPythonKernelSpecs", "KernelSession",
           "kernel_env", "thread_env"]

GUARDED_KERNEL = "segkit-guarded"
CURRENT_PYTHON_KERNEL = "segkit-current-python"
SEGKIT_PARENT = str(Path(segkit.__file__).resolve().parents[1])
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The variables that make numpy, torch and their BLAS use ``threads`` threads."""
    return {name: str(threads) for name in _THREAD_VARIABLES}


class CurrentPythonKernelSpecs(KernelSpecManager):
    """Kernel specs in which ``segkit-current-python`` is ipykernel on ``sys.executable``.

    So notebooks run with the interpreter (and the packages) that runs this code, whatever
    kernel the notebook's metadata names or the machine has installed.
    """

    def get_kernel_spec(self, kernel_name: str):
        if kernel_name == CURRENT_PYTHON_KERNEL:
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


class _GuardedKernelSpecs(KernelSpecManager):
    """``segkit-guarded``: ipykernel on this Python, started by this module's ``main``."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == GUARDED_KERNEL:
            return KernelSpec(
                argv=[sys.executable, "-m", "segkit_course.sandbox.kernel", "-f", "{connection_file}",
                      "--HistoryManager.hist_file=:memory:"],
                display_name="segkit guarded (Python 3)", language="python",
                interrupt_mode="signal", metadata={"debugger": False})
        return super().get_kernel_spec(kernel_name)


def _matplotlib_cache() -> Path:
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "matplotlib"


def kernel_env(*, sandbox: str | Path | None = None, block_network: bool = True,
               block_processes: bool = False, log_path: str | Path | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a guarded kernel.

    Args:
        sandbox: a folder the kernel may write in, and nowhere else; it gets the
            kernel's ``HOME``, ``TMPDIR`` and caches (matplotlib's font list is copied
            in, so that it is not rebuilt). None: writes are not restricted.
        block_network: refuse connections beyond this machine.
        block_processes: refuse starting programs.
        log_path: where the guard logs what it refused.
        base: the environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [SEGKIT_PARENT, env.get("PYTHONPATH")] if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("SEGKIT_PROGRESS", "0")
    for name, value in thread_env(int(env.get("OMP_NUM_THREADS") or 1)).items():
        env.setdefault(name, value)  # several notebooks may run at once: one thread each
    env.pop(guard.ENV_WRITE_ROOT, None)
    if sandbox is not None:
        sandbox = Path(sandbox)
        folders = {"HOME": "home", "TMPDIR": "tmp", "MPLCONFIGDIR": "matplotlib",
                   "IPYTHONDIR": "ipython", "XDG_CACHE_HOME": "cache",
                   "XDG_CONFIG_HOME": "config", "TORCH_HOME": "cache/torch"}
        for variable, folder in folders.items():
            (sandbox / folder).mkdir(parents=True, exist_ok=True)
            env[variable] = str(sandbox / folder)
        for font_list in _matplotlib_cache().glob("fontlist-*.json"):
            shutil.copy(font_list, sandbox / "matplotlib")
        env[guard.ENV_WRITE_ROOT] = str(sandbox)
    env[guard.ENV_NETWORK] = "block" if block_network else "allow"
    env[guard.ENV_PROCESSES] = "block" if block_processes else "allow"
    if log_path is not None:
        env[guard.ENV_LOG] = str(log_path)
    return env


@dataclass
class CellRun:
    """What running one piece of code in the kernel gave.

    ``status``: "ok", "error" (it raised: ``ename``/``evalue``), "timeout" (interrupted;
    ``stuck`` when the kernel did not answer the interrupt) or "died" (the kernel
    process ended). ``output`` holds the first characters of stdout, stderr and results;
    ``dropped`` counts the characters left out; ``marked`` holds the output lines that
    contain ``marker``, whatever their place.
    """

    status: str
    seconds: float
    output: str = ""
    dropped: int = 0
    ename: str | None = None
    evalue: str | None = None
    marked: list[str] = field(default_factory=list)
    stuck: bool = False


class KernelSession:
    """One guarded kernel: start it, run code in it with a time limit, restart it.

    Use it as a context manager so the kernel is always shut down::

        with KernelSession(cwd, kernel_env(sandbox=tmp)) as kernel:
            run = kernel.run("print(1 + 1)", timeout=10)   # run.output == "2\\n"
    """

    def __init__(self, cwd: str | Path, env: dict[str, str], *, output_limit: int = 20_000,
                 startup_timeout: float = 120.0, interrupt_grace: float = 5.0) -> None:
        self.cwd = str(cwd)
        self.env = env
        self.output_limit = output_limit
        self.startup_timeout = startup_timeout
        self.interrupt_grace = interrupt_grace
        self.km: KernelManager | None = None
        self.kc = None

    def __enter__(self) -> KernelSession:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def start(self) -> None:
        km = KernelManager(kernel_name=GUARDED_KERNEL, kernel_spec_manager=_GuardedKernelSpecs())
        if km.has_trait("transport_encryption") and zmq.has("curve"):
            km.transport_encryption = "auto"
        # The kernel's own stdout/stderr (not the notebook's output, which comes through
        # Jupyter's messages) would only add noise to the tool's report.
        km.start_kernel(cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
        self.km, self.kc = km, kc

    def shutdown(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.km.cleanup_resources()
        self.km = self.kc = None

    def restart(self) -> None:
        """A fresh kernel in place of this one (whatever state that one was in)."""
        self.shutdown()
        self.start()

    @property
    def alive(self) -> bool:
        return self.km is not None and self.km.is_alive()

    def run(self, code: str, timeout: float, *, silent: bool = False,
            marker: str | None = None) -> CellRun:
        """Run ``code``; wait at most ``timeout`` seconds, then interrupt it."""
        assert self.kc is not None and self.km is not None, "start the kernel first"
        start = time.monotonic()
        result = CellRun("ok", 0.0)
        pending = [""]  # the unfinished last line, to find marked lines split across messages
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent,
                                 allow_stdin=False, stop_on_error=False)
        deadline = start + max(0.0, timeout)
        interrupted_at: float | None = None
        last_alive_check = start
        while True:
            now = time.monotonic()
            if interrupted_at is None and now >= deadline:
                try:
                    self.km.interrupt_kernel()
                except Exception:  # noqa: BLE001 - the kernel is already gone
                    pass
                interrupted_at = now
            if interrupted_at is not None and now >= interrupted_at + self.interrupt_grace:
                result.status, result.stuck = "timeout", True
                break
            if now - last_alive_check >= 1.0:
                last_alive_check = now
                if not self.km.is_alive():
                    result.status = "died"
                    break
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if self._take(msg, result, interrupted_at is not None, marker, pending):
                break
        if marker is not None and pending[0] and marker in pending[0]:
            result.marked.append(pending[0][pending[0].index(marker):])
        self._drain_shell()
        result.seconds = time.monotonic() - start
        return result

    def _take(self, msg: dict, result: CellRun, interrupted: bool, marker: str | None,
              pending: list[str]) -> bool:
        """Add one of the cell's messages to ``result``; True when the cell is over."""
        kind, content = msg["msg_type"], msg["content"]
        text = ""
        if kind == "stream":
            text = content.get("text", "")
        elif kind in ("execute_result", "display_data"):
            text = str(content.get("data", {}).get("text/plain", "")) + "\n"
        elif kind == "error":
            result.ename, result.evalue = content.get("ename"), content.get("evalue")
            text = f"{result.ename}: {result.evalue}\n"
            if not interrupted:
                result.status = "error"
        elif kind == "status" and content.get("execution_state") == "idle":
            if interrupted:
                result.status = "timeout"
            return True
        if text:
            room = self.output_limit - len(result.output)
            result.output += text[:max(room, 0)]
            result.dropped += max(len(text) - max(room, 0), 0)
            if marker is not None:
                lines = (pending[0] + text).split("\n")
                pending[0] = lines.pop()[-4096:]
                result.marked += [line[line.index(marker):] for line in lines if marker in line]
        return False

    def _drain_shell(self) -> None:
        while True:
            try:
                self.kc.get_shell_msg(timeout=0)
            except Empty:
                return
            except Exception:  # noqa: BLE001 - channel closed with a dead kernel
                return


def main() -> None:
    """``python -m segkit_course.sandbox.kernel -f CONNECTION_FILE``: ipykernel, guard first."""
    guard.install_from_env()

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    app.start()


if __name__ == "__main__":
    main()
