"""Admin rights for the debugging endpoints (``GET /debug/decisions``).

Called by ``handlers``. The decision log (``decisions``) shows, per recent request, the
candidates, their scores and the filters that removed them, the attempts and the outcome. Admin
only: with ``server.admin_token`` set a matching bearer token is required; without it only
loopback clients are answered (``kubectl port-forward`` arrives on loopback inside the pod).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from aiohttp import web

from switchman.api.gatewayconfig import CredentialRef
from switchman.gateway.errors import GatewayError, NotReady
from switchman.gateway.upstreams import credentials


class Forbidden(GatewayError):
    """An admin endpoint called without admin rights."""

    status = 403
    type = "permission_error"
    code = "forbidden"


def check_admin(
    request: web.Request, token: CredentialRef | None, environ: Mapping[str, str]
) -> None:
    """Raise Forbidden unless the caller may use admin endpoints."""
    if token is None:
        try:
            loopback = ipaddress.ip_address(request.remote or "").is_loopback
        except ValueError:
            loopback = False
        if not loopback:
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
