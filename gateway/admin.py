"""Admin rights for the debugging endpoints (``GET /debug/decisions``), and what only admins see.

Called by ``handlers`` and, for response headers, by ``app`` (``exposed_headers``: the replica
address in ``x-switchman-upstream`` and the version in ``Server``, per ``server.edge``). The
decision log (``decisions``) shows, per recent request, the candidates, their scores and the
filters that removed them, the attempts and the outcome. Admin only: with ``server.admin_token``
set a matching bearer token is required; without it only loopback clients are answered
(``kubectl port-forward`` arrives on loopback inside the pod).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from switchman.api.edge import Edge
from switchman.api.gatewayconfig import CredentialRef
from switchman.gateway.errors import GatewayError, NotReady
from switchman.gateway.upstreams import credentials


class Forbidden(GatewayError):
    """An admin endpoint called without admin rights."""

    status = 403
    type = "permission_error"
    code = "forbidden"


def _loopback(request: web.BaseRequest) -> bool:
    return _is_loopback(request.remote or "")


@lru_cache(maxsize=4096)
def _is_loopback(address: str) -> bool:
    """Parsed once per client address: it was on every response's path (``exposed_headers``)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _server_version() -> str:
    try:
        return f"switchman/{version('switchman')}"
    except PackageNotFoundError:
        return "switchman"


SERVER_VERSION = _server_version()


def exposed_headers(
    request: web.BaseRequest,
    response: web.StreamResponse,
    edge: Edge,
    token: CredentialRef | None,
    environ: Mapping[str, str],
) -> None:
    """Set ``Server`` and cut the replica address from ``x-switchman-upstream`` unless allowed:
    ``upstream_address: local`` shows it to loopback clients and admin-token holders only."""
    headers = response.headers
    headers["Server"] = SERVER_VERSION if edge.server_version else "switchman"
    upstream = headers.get("x-switchman-upstream")
    if upstream is None or (shown := edge.upstream_address) == "always":
        return
    if shown == "local" and (_loopback(request) or _holds_token(request, token, environ)):
        return
    headers["x-switchman-upstream"] = upstream.partition(" ")[0]


def _holds_token(
    request: web.BaseRequest, token: CredentialRef | None, environ: Mapping[str, str]
) -> bool:
    secret = credentials.resolve(token, environ)[0] if token is not None else None
    supplied = request.headers.get("Authorization", "")
    return secret is not None and hmac.compare_digest(
        supplied.encode(), f"Bearer {secret}".encode()
    )


def check_admin(
    request: web.Request, token: CredentialRef | None, environ: Mapping[str, str]
) -> None:
    """Raise Forbidden unless the caller may use admin endpoints."""
    if token is None:
        if not _loopback(request):
            raise Forbidden(
                "/debug is served to loopback clients only; set server.admin_token to allow "
                "remote callers with a bearer token"
            )
        return
    secret, problem = credentials.resolve(token, environ)
    if secret is None:
        raise NotReady(f"admin token unavailable: {problem}")
    supplied = request.headers.get("Authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {secret}".encode()):
        raise Forbidden("/debug needs 'Authorization: Bearer <server.admin_token>'")
