"""Authentication: the one check every ``/v1/*`` request passes, whatever its endpoint.

``app.Front`` calls ``authenticate`` for every route whose path is ``protected``, before the
route's handler, so a new endpoint under ``/v1/`` (any client format) needs a key without doing
anything. When the current config has a ``tenancy`` block the request must carry a known key
(``Authorization: Bearer``, ``api-key`` or ``x-api-key``), else a 401; the key's tenant is
stored in the request (``TENANT``) for ``serve.proxy`` to admit and bill. Without a ``tenancy``
block the gateway is keyless and this does nothing. Health, readiness, metrics and the OpenAPI
document never need a key.

``response_headers`` (called by ``app`` as each response is prepared) adds the admitted
request's rate-limit and budget headers (``TICKET``, set by the proxy) to whatever response the
request gets, streamed or not, and ``x-switchman-cost-usd`` to a whole response (``COST``: a
stream's headers leave before its cost is known; its cost is in the access log and metrics).
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDictProxy

from switchman.api.tenancy import Tenancy as TenancySettings
from switchman.gateway.errors import Unauthenticated
from switchman.gateway.tenancy.admission import Tenancy, Ticket
from switchman.gateway.tenancy.keys import presented_key

TENANT = web.RequestKey("tenant", str)
TICKET = web.RequestKey("tenancy_ticket", Ticket)
COST = web.RequestKey("cost_usd", float)

PROTECTED = "/v1/"


def protected(path: str) -> bool:
    """Whether a request to ``path`` needs a key (when the gateway has a ``tenancy`` block)."""
    return path.startswith(PROTECTED)


def authenticate(
    request: web.Request, tenancy: Tenancy, settings: TenancySettings | None
) -> str | None:
    """The tenant of the key ``request`` carries, also stored in ``request[TENANT]``; None when
    the gateway is keyless (``settings``, the current ``tenancy`` block, is None). Raises
    ``Unauthenticated`` (401) for a missing or unknown key. The caller checks ``protected``."""
    if settings is not tenancy.settings:  # the same config's block: nothing to follow
        tenancy.configure(settings)
    if settings is None:
        return None
    headers = request.headers
    tenant = tenancy.bearer(headers.get("authorization"))  # a client's usual, known value
    if tenant is None:
        tenant = _tenant(tenancy, headers)
    request[TENANT] = tenant
    return tenant


def _tenant(tenancy: Tenancy, headers: CIMultiDictProxy[str]) -> str:
    """The tenant of the key in ``headers``, else ``Unauthenticated``; a key found in the
    ``Authorization`` header is remembered by its value (``Tenancy.bearer``)."""
    key = presented_key(headers)
    if key is None:
        tenancy.metrics.tenant_rejections.labels("none", "unauthenticated").inc()
        raise Unauthenticated(
            "this gateway needs an API key: send it as 'Authorization: Bearer KEY', "
            "'api-key: KEY' or 'x-api-key: KEY'"
        )
    tenant = tenancy.tenant_of(key)
    if tenant is None:
        tenancy.metrics.tenant_rejections.labels("none", "unauthenticated").inc()
        raise Unauthenticated("the API key is not valid (unknown, revoked or rotated)")
    authorization = headers.get("authorization")
    if authorization is not None and presented_key({"authorization": authorization}) == key:
        tenancy.remember(authorization, key)
    return tenant


def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    ticket = request.get(TICKET)
    if ticket is not None:
        response.headers.update(ticket.headers)
    cost = request.get(COST)
    if cost is not None:
        response.headers["x-switchman-cost-usd"] = f"{cost:.8f}"
