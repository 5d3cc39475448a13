"""Resolves credential references (env var or mounted-Secret file) into secret values.

Called by ``upstreams`` when a config is loaded. Problems are described by the reference
(``env:NAME`` / ``file:PATH``), never by value, so they are safe to log and show in ``/readyz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from switchman.api.gatewayconfig import CredentialRef


def resolve(ref: CredentialRef | None, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return ``(secret, problem)``: exactly one is set when ``ref`` is given, both None if not."""
    if ref is None:
        return None, None
    if ref.env is not None:
        value = environ.get(ref.env, "").strip()
        if not value:
            return None, f"credential {ref.describe()} is not set"
        return value, None
    assert ref.file is not None
    try:
        value = Path(ref.file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        return None, f"credential {ref.describe()} cannot be read: {exc.strerror}"
    except UnicodeDecodeError:
        return None, f"credential {ref.describe()} is not UTF-8 text"
    if not value:
        return None, f"credential {ref.describe()} is empty"
    return value, None
