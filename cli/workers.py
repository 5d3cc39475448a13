"""``switchman gateway --workers N``: a supervisor running N gateway processes on one port.

Called by ``cli.gateway`` when N > 1. Python runs one event loop per process, so one process
uses one core; N workers each bind the same address with SO_REUSEPORT and the kernel spreads
incoming connections over them. The supervisor holds no socket and serves nothing: it makes a
private 0700 directory for the workers' sockets (``gateway.workers``: the merged ``/metrics``
and ``/debug/decisions``), starts each worker with the gateway's own command line and
``SWITCHMAN_WORKER=<index>/<count>/<directory>`` in its environment, passes SIGTERM/SIGINT on
to all of them (a second one too: a worker then exits at once, as one gateway process does),
and waits for them to drain (each within its own ``--shutdown-grace``). Each worker runs in a
process group of its own, so a terminal's Ctrl-C reaches it once, through the supervisor.

A worker that exits while the gateway runs is started again after a second (doubling, up to
30 s, while it keeps dying within 30 s of its start). One that exits before it listened (bad
config, port taken: it never touched its ``worker-<index>.ready`` file) stops the gateway with
its exit code, since the next one would fail alike. Workers get SIGTERM if the supervisor
itself dies, so none outlives it holding the port.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from switchman.gateway.workers import Workers

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
STABLE_S = 30.0  # a worker that dies sooner after its start backs the next restart off


WORKER_ENV = "SWITCHMAN_WORKER"  # "<index>/<count>/<socket directory>", set for each worker


def worker_identity(environ: Mapping[str, str]) -> tuple[int, int, Path] | None:
    """(index, count, directory) when this process is a worker started by the supervisor."""
    value = environ.get(WORKER_ENV)
    if not value:
        return None
    index, count, directory = value.split("/", 2)
    return int(index), int(count), Path(directory)


def _die_with_parent() -> None:
    """In the worker before exec: SIGTERM when the supervisor dies, even by SIGKILL (Linux
    prctl PR_SET_PDEATHSIG), so that no worker outlives it holding the port."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Starts, restarts and stops the workers (see the module docstring)."""

    def __init__(self, argv: list[str], count: int, grace_s: float) -> None:
        self.argv = argv
        self.count = count
        self.grace_s = grace_s
        self.directory = Path(tempfile.mkdtemp(prefix="switchman-workers-"))
        os.chmod(self.directory, 0o700)
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.quick_deaths: dict[int, int] = {}
        self.stopping = False

    def _ready_file(self, index: int) -> Path:
        return Workers(index, self.count, self.directory).ready_file(index)

    def _start(self, index: int) -> None:
        self._ready_file(index).unlink(missing_ok=True)
        command = [sys.executable, "-m", "switchman.cli.main", *self.argv]
        env = {**os.environ, WORKER_ENV: f"{index}/{self.count}/{self.directory}"}
        # A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group)
        # reaches the workers once, through ``_signal``, never twice (a worker exits at once on
        # a second signal while it drains).
        proc = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent, process_group=0)
        self.workers[index] = proc
        self.started[index] = time.monotonic()

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signal)
        try:
            for index in range(self.count):
                self._start(index)
            return self._watch()
        finally:
            self._stop()
            shutil.rmtree(self.directory, ignore_errors=True)

    def _watch(self) -> int:
        due: dict[int, float] = {}  # worker index -> when to start it again
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for index, when in list(due.items()):
                if when <= now:
                    del due[index]
                    self._start(index)
            for index, proc in list(self.workers.items()):
                code = proc.poll()
                if code is None or index in due or self.stopping:
                    continue
                if not self._ready_file(index).exists():
                    print(
                        f"switchman gateway: worker {index} failed to start (exit {code}); "
                        "stopping the other workers",
                        file=sys.stderr,
                    )
                    return code or 1
                delay = self._backoff(index, now)
                print(
                    f"switchman gateway: worker {index} exited ({code}); "
                    f"starting it again in {delay:g} s",
                    file=sys.stderr,
                )
                due[index] = now + delay
        return 0

    def _backoff(self, index: int, now: float) -> float:
        """1 s, doubled for each death within ``STABLE_S`` of the last start, up to 30 s."""
        quick = now - self.started.get(index, now) < STABLE_S
        self.quick_deaths[index] = self.quick_deaths.get(index, 0) + 1 if quick else 0
        return min(RESTART_DELAY_S * 2.0 ** self.quick_deaths[index], MAX_RESTART_DELAY_S)

    def _stop(self) -> None:
        for proc in self.workers.values():
            # Signalled workers are draining: a second signal would stop them at once.
            if proc.poll() is None and not self.stopping:
                proc.terminate()
        deadline = time.monotonic() + self.grace_s + 5
        for proc in self.workers.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def supervise(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``args.workers`` gateway workers until signalled; the exit code of the gateway."""
    return Supervisor(argv, args.workers, args.shutdown_grace).run()
