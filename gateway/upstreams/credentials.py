"""Resolves credential references (env var or mounted-Secret file) into secret values, and
redacts the resolved values from text the gateway passes on.

Called by ``upstreams`` when a config is loaded. Problems are described by the reference
(``env:NAME`` / ``file:PATH``), never by value, so they are safe to log and show in ``/readyz``.
A value must be sendable in a header: a file may end in one newline (stripped, as ``kubectl
create secret --from-file`` often leaves one); any other whitespace or control character in a
file, or a control character inside an env value, makes the credential unusable (the upstream is
then passed over by routing) instead of failing every request. ``Redactor`` is built by
``runtime`` from every resolved credential and used by ``serve`` on upstream bodies, stream
events and error messages before they reach a client or a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from switchman.api.gatewayconfig import CredentialRef

MASK = "[redacted]"
MIN_REDACTED = 8  # shorter values would mask ordinary words; no real API key is this short
_UNSENDABLE = re.compile(r"[\x00-\x1f\x7f]")


def resolve(ref: CredentialRef | None, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return ``(secret, problem)``: exactly one is set when ``ref`` is given, both None if not."""
    if ref is None:
        return None, None
    if ref.env is not None:
        value = environ.get(ref.env, "").strip()
        if not value:
            return None, f"credential {ref.describe()} is not set"
        if _UNSENDABLE.search(value):
            return None, f"credential {ref.describe()} holds a newline or control character"
        return value, None
    assert ref.file is not None
    try:
        value = Path(ref.file).read_bytes().decode("utf-8")  # bytes: no newline translation
    except OSError as exc:
        return None, f"credential {ref.describe()} cannot be read: {exc.strerror}"
    except UnicodeDecodeError:
        return None, f"credential {ref.describe()} is not UTF-8 text"
    value = value.removesuffix("\n")
    if not value:
        return None, f"credential {ref.describe()} is empty"
    if _UNSENDABLE.search(value) or value != value.strip():
        return None, (
            f"credential {ref.describe()} holds whitespace or a control character (only one "
            "trailing newline is allowed)"
        )
    return value, None


class Redactor:
    """Replaces every known secret in text with ``[redacted]``."""

    __slots__ = ("_bytes", "_text")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        found = sorted({s for s in secrets if s and len(s) >= MIN_REDACTED}, key=len, reverse=True)
        self._text = tuple(found)
        self._bytes = tuple(s.encode() for s in found)

    @classmethod
    def joined(cls, redactors: Iterable[Redactor], *more: str | None) -> Redactor:
        """One redactor for the secrets of all ``redactors`` and ``more``."""
        return cls([*(secret for r in redactors for secret in r._text), *more])

    def __bool__(self) -> bool:
        return bool(self._text)

    def data(self, data: bytes) -> bytes:
        for secret in self._bytes:
            if secret in data:
                data = data.replace(secret, MASK.encode())
        return data

    def text(self, text: str) -> str:
        for secret in self._text:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
