"""Shared by the browser tests: the system's Chromium driven by Playwright, a local server.

Playwright's own browser download cannot be reached from CI, so the tests drive the
Chromium of the system's packages (Debian: ``apt-get install chromium``; ``.ci/run``
installs it) through ``executable_path``. Set ``SEGKIT_CHROMIUM`` to use another binary.
Without Chromium or Playwright (a developer machine) the tests skip and say why.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def skip_unless_present(reason: str) -> None:
    """Skip with ``reason``; fail instead where SEGKIT_NO_SKIP=1 (CI sets it: there the
    tools are installed, so a missing one is a broken set-up, not a developer machine)."""
    if os.environ.get("SEGKIT_NO_SKIP") == "1":
        pytest.fail(f"{reason} (SEGKIT_NO_SKIP=1: this test must run here)")
    pytest.skip(reason)


def chromium_path() -> str:
    """The system Chromium's path; skips the test (saying how to install it) when absent."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_unless_present("Playwright is not installed: pip install -e \".[test]\"")
    explicit = os.environ.get("SEGKIT_CHROMIUM")
    found = explicit or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not found or not Path(found).exists():
        skip_unless_present("no Chromium on this machine (Debian/Ubuntu: apt-get install "
                            "chromium; or set SEGKIT_CHROMIUM to a Chromium binary). CI "
                            "installs it.")
    return found


@contextlib.contextmanager
def chromium_browser():
    """A headless Chromium (Playwright ``Browser``) from the system's packages."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = playwright.chromium.launch(executable_path=path, headless=True,
                                             args=["--no-sandbox", "--disable-gpu",
                                                   "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    # Chromium opens several connections at once; the default backlog of 5 refuses some
    # of them on a busy machine, which would show up as failed requests.
    request_queue_size = 64
    daemon_threads = True


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _Server(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
