"""Failure classes: what an upstream's failure means for the next attempt.

Used by ``failover`` when an attempt fails. Every failure is a ``Failure`` with a bounded ``reason``
label; its ``scope`` says where to go next:

- ``endpoint``: this replica is in trouble (refused, reset, 5xx, timeout, stall, a stream cut):
  counts against its circuit breaker; retry the same model on another replica, then move on.
- ``model``: the model cannot serve this request now (429, no credential, no replica): skip it.
- ``context``: the prompt is too long for it: only models with a larger window may follow.
- ``content``: a content filter refused it: the next model, if the route allows.
- ``continuation``: asked to continue a committed stream, the model refused (a 4xx): its next
  continuation mechanism, else the next model; never the client's answer, never a cool-down.

Any other upstream 4xx is ``UpstreamRejected`` and goes back to the client unchanged. A 3xx is
never followed (it would re-send the prompt, and the credential, to another origin): it is the
attempt's ``redirect`` failure, like a 5xx. A non-streamed answer over
``server.edge.max_response_bytes`` is ``response_too_large`` (scope ``model``: the next model
may answer shorter); a stream past ``max_stream_bytes`` is ``stream_too_large``, which ends the
stream (a continuation would only make it longer).

Separately, ``blame`` says which circuit breaker the failure counts against (breakers are scoped
by failure class, ``replicas.replica``): ``replica`` for what says the replica is in trouble
(unreachable, timeouts, stalls, broken streams), ``model`` for what one model on it answered (an
error status, an unparseable answer, an in-band error; a 429 is held for ``hold_s``), ``none``
for what the request itself caused (context length, content filter).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from switchman.gateway.errors import (
    GatewayError,
    RateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from switchman.gateway.replicas.replica import Blame
from switchman.gateway.serve.backoff import retry_after_seconds

Scope = Literal["endpoint", "model", "context", "content", "continuation"]

_CONTEXT_CUES = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "prompt is too long",
    "too many tokens",
    "maximum number of tokens",
    "reduce the length",
)
_CONTENT_CODES = {"content_filter", "content_policy_violation", "responsible_ai_policy_violation"}
# Answers the replica gave that are wrong for this model: its breaker, not the replica's.
_MODEL_REASONS = {"rate_limited", "bad_response", "upstream_error", "malformed_chunk"}
# A non-streamed answer ran past timeouts.total_s: sent again only Retry.regenerations times.
GENERATION_TIMEOUT = "generation_timeout"
REDIRECT = "redirect"
RESPONSE_TOO_LARGE = "response_too_large"
STREAM_TOO_LARGE = "stream_too_large"
DEFAULT_HOLD_S = 1.0  # a 429 without Retry-After keeps the model off that replica this long


class Failure(Exception):
    """An attempt failed in a way another attempt may not: try one.

    ``reason`` is a bounded label (metrics, headers); ``error`` is what the client sees if no
    attempt succeeds; ``retry_after`` is a 429's wait in seconds.
    """

    def __init__(
        self,
        reason: str,
        error: GatewayError,
        *,
        scope: Scope = "endpoint",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error
        self.scope = scope
        self.retry_after = retry_after

    @property
    def blame(self) -> Blame:
        """Which breaker it counts against: the replica's, the (replica, model)'s, or none."""
        if self.scope in ("context", "content"):
            return "none"
        if self.reason in _MODEL_REASONS or self.reason.startswith("status_"):
            return "model"
        return "replica" if self.scope == "endpoint" else "none"

    @property
    def hold_s(self) -> float | None:
        """How long a 429 keeps the model off that replica; None for other failures."""
        if self.reason != "rate_limited":
            return None
        return self.retry_after if self.retry_after is not None else DEFAULT_HOLD_S


def status_failure(
    upstream: str, status: int, body: dict[str, Any], headers: Mapping[str, str]
) -> Failure | UpstreamRejected:
    """Classify an upstream error status and its (OpenAI-shaped) body."""
    found = body.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    message = str(error.get("message", ""))[:500]
    if 300 <= status < 400:
        return Failure(
            REDIRECT,
            UpstreamUnavailable(
                f"upstream '{upstream}' answered a redirect ({status}); redirects are not followed"
            ),
        )
    if status == 429:
        header = headers.get("Retry-After")
        wait = retry_after_seconds(header, time.time())
        return Failure(
            "rate_limited",
            RateLimited(
                f"upstream '{upstream}' is rate limited: {message}",
                headers={"Retry-After": str(header)} if header else {},
            ),
            scope="model",
            retry_after=wait,
        )
    if status >= 500 or status in (408, 409):
        return Failure(
            f"status_{status // 100}xx" if status >= 500 else f"status_{status}",
            UpstreamUnavailable(f"upstream '{upstream}' answered {status}: {message}"),
        )
    rejected = UpstreamRejected(status, body)
    code = str(error.get("code") or "").lower()
    if code in _CONTENT_CODES:
        return Failure("content_filter", rejected, scope="content")
    lowered = message.lower()
    if status in (400, 413, 422) and (
        code == "context_length_exceeded" or any(cue in lowered for cue in _CONTEXT_CUES)
    ):
        return Failure("context_length", rejected, scope="context")
    return rejected
