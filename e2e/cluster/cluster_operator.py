"""The operator under test as a subprocess: ``python -m switchman.cli.main operator --namespace
NS``, exactly as a person runs it, with its log in a file.

Used by ``conftest``'s ``operator`` fixture, which starts one per test namespace and appends the
log's tail to a failed test's report. The process runs in a scratch directory, never the
repository root (the root's ``operator/`` folder would shadow the standard library's module for
``python -m``), in a process group of its own so a stop reaches anything it forked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from terminal import stop_group, tail


@dataclass(frozen=True)
class Operator:
    """A running operator watching one namespace."""

    namespace: str
    log: Path
    process: subprocess.Popen[bytes]

    def ensure_running(self) -> None:
        """Fail the test at once, with the log, when the operator has exited."""
        code = self.process.poll()
        if code is not None:
            pytest.fail(
                f"the operator exited with code {code}; log {self.log}, last lines:\n"
                f"{tail(self.log)}",
                pytrace=False,
            )

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group (kopf finishes its handlers), then SIGKILL."""
        stop_group(self.process, grace)


def start_operator(namespace: str, workdir: Path) -> Operator:
    """Start the operator for ``namespace``; it logs to ``workdir/operator.log``."""
    log = workdir / "operator.log"
    argv = [sys.executable, "-m", "switchman.cli.main", "operator", "--namespace", namespace]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        sink.write(f"$ {' '.join(argv)}\n".encode())
        sink.flush()
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Operator(namespace=namespace, log=log, process=process)
