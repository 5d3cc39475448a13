"""The gateway's edge: limits on what clients and upstreams may send, what clients are shown,
and the rules for extra upstream headers and TLS.

Part of GatewayConfig (``server.edge``, ``upstreams[].headers``, ``upstreams[].tls``); read by the
gateway's listener (timeouts, connection cap), request reader (body timeout), attempts
(response caps) and response headers (what is exposed). Header rules are checked when a config is
loaded, so a header that could never be sent (CR/LF, a control character) or should never be set
by configuration (hop-by-hop, credential-bearing) is a config error with its path, not a 500 on
every request.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from switchman.api.validation import Strict

# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Control characters other than horizontal tab, and DEL: never valid in a header value.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Headers configuration may not set: hop-by-hop (RFC 9110 section 7.6.1) and framing headers the
# HTTP client owns, and every header that carries a credential (those go in ``api_key``, a
# reference, so they never sit in a ConfigMap).
DENIED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "expect",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
    }
)


def header_problems(headers: dict[str, str]) -> list[str]:
    """What is wrong with configured extra headers, naming each header but never its value."""
    found = []
    for name, value in headers.items():
        if not _TOKEN.match(name):
            found.append(f"header name {name.encode('unicode_escape').decode()!r} is not a token")
        elif name.lower() in DENIED_HEADERS:
            found.append(
                f"header {name!r} may not be configured (hop-by-hop or credential-bearing; "
                "credentials go in 'api_key', a reference)"
            )
        elif _CONTROL.search(value):
            found.append(f"header {name!r}: the value holds CR, LF or another control character")
        elif value != value.strip(" \t"):
            found.append(f"header {name!r}: the value has leading or trailing whitespace")
    return found


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent in a header (used for settings that become headers)."""
    if _CONTROL.search(value):
        return "holds CR, LF or another control character"
    return None


class UpstreamTLS(Strict):
    """TLS to one upstream. Certificates are always verified; this only adds trust."""

    ca_file: str | None = Field(
        default=None,
        description=(
            "PEM bundle of CA certificates to trust for this upstream (e.g. a mounted Secret "
            "or ConfigMap key); unset: the system's trust store."
        ),
    )


class Edge(Strict):
    """Limits at the gateway's edge (per worker process) and what clients are shown.

    The listener's settings (``header_timeout_s``, ``keepalive_timeout_s``, ``max_connections``)
    are read when a connection opens; the others per request, so all follow a hot reload.
    """

    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request line and headers must arrive within this time of their first "
        "byte (or of the connection opening); else the connection is closed (slow-loris).",
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="A request body must arrive in full within this time."
    )
    keepalive_timeout_s: float = Field(
        default=75.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        default=4096,
        gt=0,
        description="Open client connections; above it a new one gets a 503 and is closed.",
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="Largest non-streamed upstream answer; a bigger one fails the attempt.",
    )
    max_stream_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Most bytes read from one upstream stream; past it the stream ends with an "
        "error event.",
    )
    upstream_address: Literal["local", "always", "never"] = Field(
        default="local",
        description="Whether x-switchman-upstream names the replica's address: to loopback "
        "clients and holders of the admin token only (local), to everyone, or to nobody.",
    )
    server_version: bool = Field(
        default=False,
        description="Send the gateway's version in the Server header (default: 'switchman').",
    )
