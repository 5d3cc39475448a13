"""Support shared by the e2e fixtures (``conftest``, ``conftest_prometheus``, ``cluster/``): free
ports, log tails for failure messages, stopping a server's whole process group, and progress
lines written past pytest's output capture, because a silent minute of server start-up looks like
a hang.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Say = Callable[[str], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def progress(config: pytest.Config) -> Say:
    """A function that writes one line straight to the terminal, even while output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(text: str) -> None:
        if reporter is None or capture is None:
            print(text, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)

    return say


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process's group (servers fork workers), then SIGKILL after ``grace`` s.

    Once the leader is gone its lingering children get SIGKILL too.
    """
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            os.killpg(pgid, signal.SIGKILL)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            pass
        return
