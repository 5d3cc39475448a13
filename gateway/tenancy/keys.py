"""Client keys: which header carries one, and which tenant a presented key belongs to.

``KeyRing`` holds the SHA-256 hashes of the keys from the keys file (a mounted Secret: the plaintext
keys never reach the gateway's disk or config), re-reads it when it changes (checked at most once a
second, on use: a rotated or revoked key takes effect within seconds, no restart) and keeps the last
good set when a new file is invalid. Lookup hashes the presented key and compares the digests in
constant time (``hmac.compare_digest``); a key found is remembered (in memory only, up to
``REMEMBERED`` keys, forgotten when the file changes) so a client's next requests skip the hashing,
and by the whole ``Authorization`` value it came in (``bearer``: nor any parsing). Unknown keys are
never remembered: a flood of them cannot grow the memory. Used by ``gate`` (the authentication of
``/v1/*`` requests); ``new_key``/``hash_key`` are used by ``switchman demo --tenants``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("switchman.gateway.tenancy.keys")

_HEX = re.compile(r"^[0-9a-f]{64}$")
REMEMBERED = 4096


def new_key() -> str:
    """A fresh random client key (256 bits)."""
    return "sk-sw-" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The hex SHA-256 a keys file stores for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``Authorization: Bearer`` (openai), ``api-key`` (Azure) or
    ``x-api-key`` (anthropic); None when it sent none."""
    auth = headers.get("authorization")
    if auth:
        words = auth.split()  # "Bearer KEY", any case, any whitespace around and between
        if len(words) == 2 and words[0].lower() == "bearer":
            return words[1]
    for name in ("api-key", "x-api-key"):
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message never quotes the file's content."""


def parse_keys(text: str, source: str) -> dict[bytes, str]:
    """``{digest: tenant}`` from a keys file's text."""
    try:
        data: Any = yaml.safe_load(text) if text.strip() else {"keys": []}
    except yaml.YAMLError:
        raise KeysFileError(f"{source}: not valid YAML/JSON") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KeysFileError(f"{source}: expected a mapping with a 'keys' list")
    found: dict[bytes, str] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise KeysFileError(f"{source}: keys[{index}] must be a mapping")
        tenant, digest = entry.get("tenant"), entry.get("sha256")
        if not isinstance(tenant, str) or not tenant:
            raise KeysFileError(f"{source}: keys[{index}].tenant must be a non-empty string")
        if not isinstance(digest, str) or not _HEX.match(digest.lower()):
            raise KeysFileError(
                f"{source}: keys[{index}].sha256 must be 64 hex digits (the key's SHA-256, "
                "never the key itself)"
            )
        found[bytes.fromhex(digest)] = tenant
    return found


class KeyRing:
    """The keys of one keys file, reloaded when the file changes."""

    def __init__(
        self,
        path: str | Path,
        *,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_every_s = check_every_s
        self.clock = clock
        self.last_error: str | None = None
        self._buckets: dict[bytes, list[tuple[bytes, str]]] = {}
        self._known: dict[str, str] = {}  # presented key: tenant, for keys found
        self._bearers: dict[str, str] = {}  # the same by the ``Authorization`` value it came in
        self._count = 0
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self.refresh(force=True)

    @property
    def count(self) -> int:
        return self._count

    def bearer(self, authorization: str | None) -> str | None:
        """The tenant of a key found before, by the whole ``Authorization`` value it came in
        (``Bearer KEY``: nothing to parse nor hash), else None (``lookup`` answers)."""
        if self.clock() - self._checked >= self.check_every_s:
            self.refresh()
        return self._bearers.get(authorization) if authorization is not None else None

    def remember(self, authorization: str, key: str) -> None:
        """``authorization`` carried ``key``, found (``bearer`` answers it from now on)."""
        tenant = self._known.get(key)
        if tenant is not None:
            if len(self._bearers) >= REMEMBERED:
                self._bearers.clear()
            self._bearers[authorization] = tenant

    def lookup(self, key: str) -> str | None:
        """The tenant ``key`` belongs to, or None."""
        if self.clock() - self._checked >= self.check_every_s:
            self.refresh()
        known = self._known.get(key)
        if known is not None:
            return known
        digest = hashlib.sha256(key.encode()).digest()
        found: str | None = None
        # Bucketed by a digest prefix (a fact about the client's own guess, not about any
        # stored key); the full digests are compared in constant time.
        for stored, tenant in self._buckets.get(digest[:4], ()):
            if hmac.compare_digest(stored, digest):
                found = tenant
        if found is not None:
            if len(self._known) >= REMEMBERED:
                self._known.clear()
            self._known[key] = found
        return found

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the file when its identity or modification time changed."""
        now = self.clock()
        if not force and now - self._checked < self.check_every_s:
            return
        self._checked = now
        try:
            st = os.stat(self.path)  # follows a Secret mount's ..data symlink swap
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            text = self.path.read_text(encoding="utf-8")
            keys = parse_keys(text, str(self.path))
        except OSError as exc:
            self._failed(f"{self.path}: cannot read: {exc.strerror}")
            return
        except (KeysFileError, UnicodeDecodeError) as exc:
            self._failed(str(exc) if isinstance(exc, KeysFileError) else f"{self.path}: not UTF-8")
            return
        self._stamp = stamp
        buckets: dict[bytes, list[tuple[bytes, str]]] = {}
        for digest, tenant in keys.items():
            buckets.setdefault(digest[:4], []).append((digest, tenant))
        self._buckets, self._count = buckets, len(keys)
        self._known, self._bearers = {}, {}
        self.last_error = None
        log.info("keys loaded from %s: %d keys", self.path, len(keys))

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.error("keys file kept at its last good version: %s", message)
        self.last_error = message
