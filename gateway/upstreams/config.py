"""Loads the GatewayConfig file, watches it, and swaps the live Runtime whole.

Used by ``app`` (start-up and a background watch task) and by handlers (``current``). Change
detection polls the file's identity (inode, mtime, size, resolved path), which also catches a
Kubernetes ConfigMap update: the kubelet swaps a ``..data`` symlink atomically. An invalid new file
is logged and counted, and the last good config keeps serving; ``/readyz`` shows the error. A file
that disappears (a deleted ConfigMap, an unmounted volume) is logged once, shown in ``/readyz``
(``config.file_present``) and in ``switchman_config_file_missing``; the last good config keeps
serving, and the file's return is loaded like any change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from switchman.api import gatewayconfig
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams import runtime

log = logging.getLogger("switchman.gateway.upstreams.config")

Signature = tuple[str, int, int, int, int]


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
        return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return None


class ConfigWatcher:
    """Owns the current Runtime and replaces it when the config file changes."""

    def __init__(
        self,
        path: str | Path,
        metrics: Metrics,
        environ: Mapping[str, str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.current: runtime.Runtime | None = None
        self.last_error: str | None = None
        self.file_missing = False
        self._metrics = metrics
        self.environ = os.environ if environ is None else environ
        self._signature: Signature | None = None
        self._digest: bytes | None = None
        self._generation = 0
        self._retired: list[runtime.Runtime] = []

    def load_initial(self) -> None:
        """Load at start-up; raises ConfigError so the gateway refuses to start on a bad file."""
        signature = _signature(self.path)
        text = gatewayconfig.read(self.path)
        config = gatewayconfig.parse(text, source=str(self.path))
        self._install(config, signature, hashlib.sha256(text).digest())

    async def check(self) -> bool:
        """Reload if the file changed; True when a new config was swapped in."""
        signature = _signature(self.path)
        self._note_presence(signature is not None)
        if signature is None or signature == self._signature:
            return False
        try:
            text = await asyncio.to_thread(self.path.read_bytes)
        except OSError:
            return False  # mid-swap; the next poll sees the new file
        digest = hashlib.sha256(text).digest()
        if digest == self._digest:
            self._signature = signature
            return False
        try:
            config = gatewayconfig.parse(text, source=str(self.path))
            self._install(config, signature, digest)  # a route's weights file can fail here
        except gatewayconfig.ConfigError as exc:
            self._signature, self._digest = signature, digest
            self.last_error = str(exc)
            self._metrics.config_reloads.labels("invalid").inc()
            self._metrics.config_last_reload_success.set(0)
            log.error("config reload rejected, keeping generation %d: %s", self._generation, exc)
            return False
        log.info("config reloaded: generation %d", self._generation)
        return True

    def _note_presence(self, present: bool) -> None:
        if present == (not self.file_missing):
            return
        self.file_missing = not present
        self._metrics.config_file_missing.set(0 if present else 1)
        if present:
            log.info("config file %s is back", self.path)
        else:
            log.warning(
                "config file %s is gone; generation %d keeps serving", self.path, self._generation
            )

    def _install(
        self, config: gatewayconfig.GatewayConfig, signature: Signature | None, digest: bytes
    ) -> None:
        previous = self.current
        current = runtime.build(config, self._generation + 1, previous, self.environ)
        self._generation += 1
        self.current = current
        self._signature, self._digest, self.last_error = signature, digest, None
        if previous is not None:
            previous.retire()
            self._retired.append(previous)
            self._retired = self._retired[-8:]
        self._metrics.config_reloads.labels("success").inc()
        self._metrics.config_last_reload_success.set(1)
        self._metrics.config_file_missing.set(0)
        self._metrics.config_generation.set(self._generation)
        self._metrics.prepare((m.upstream, m.name) for m in config.models)
        for client in self.current.upstreams.values():
            if client.problem:
                log.warning("upstream %s unusable: %s", client.name, client.problem)

    async def watch(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a watcher that dies would silently freeze the config
                log.exception("config watch failed; will retry")

    async def close(self) -> None:
        """Close every upstream session (at shutdown)."""
        clients = {}
        for rt in [*self._retired, *([self.current] if self.current else [])]:
            clients.update({id(c): c for c in rt.upstreams.values()})
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)
