"""The access log: one structured line per request, written when the request is accounted.

Used by ``observe``. Fields are fixed and bounded (ids, route, model, upstream, attempts, status,
latency, time to first token, tokens, cost); never prompt or completion text, never headers.
``json`` writes one JSON object per line; ``text`` a ``key=value`` line for humans; ``off``
nothing. The level of the ``switchman.access`` logger decides whether lines are emitted.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

Format = Literal["json", "text", "off"]


class AccessLog:
    """Formats and emits access records."""

    def __init__(self, fmt: Format = "json", logger: logging.Logger | None = None) -> None:
        self.format = fmt
        self.logger = logger or logging.getLogger("switchman.access")

    @classmethod
    def to_stdout(cls, fmt: Format) -> AccessLog:
        """Lines on stdout, bare (the gateway's own log goes to stderr)."""
        logger = logging.getLogger("switchman.access")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        if not any(getattr(h, "switchman_stdout", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.switchman_stdout = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        return cls(fmt, logger)

    @property
    def enabled(self) -> bool:
        return self.format != "off" and self.logger.isEnabledFor(logging.INFO)

    def write(self, record: dict[str, Any]) -> None:
        if self.format == "json":
            self.logger.info(json.dumps(record, separators=(",", ":")))
        elif self.format == "text":
            self.logger.info(" ".join(f"{k}={v}" for k, v in record.items() if v is not None))
