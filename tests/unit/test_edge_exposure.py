"""What clients are shown at the edge (``admin.exposed_headers``), per ``server.edge``.

Scenario matrix: ``upstream_address`` local (default) / always / never x client loopback,
remote, remote with the admin token, remote with a wrong token; ``Server`` is ``switchman``
unless ``server_version`` is on; a response without ``x-switchman-upstream`` gets none.
"""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from switchman.api.edge import Edge
from switchman.api.gatewayconfig import CredentialRef
from switchman.gateway.admin import exposed_headers

TOKEN = "admin-token-0123456789"
UPSTREAM = "vllm 10.0.3.7:8000"


def shown(peer: str, edge: Edge, authorization: str | None = None) -> web.StreamResponse:
    headers = {"Authorization": authorization} if authorization else {}
    request = make_mocked_request("POST", "/v1/chat/completions", headers=headers)
    request = request.clone(remote=peer)
    response = web.StreamResponse(headers={"x-switchman-upstream": UPSTREAM})
    token = CredentialRef(env="ADMIN")
    exposed_headers(request, response, edge, token, {"ADMIN": TOKEN})
    return response


@pytest.mark.parametrize(
    ("peer", "authorization", "expected"),
    [
        ("127.0.0.1", None, UPSTREAM),
        ("::1", None, UPSTREAM),
        ("10.1.2.3", None, "vllm"),
        ("10.1.2.3", f"Bearer {TOKEN}", UPSTREAM),
        ("10.1.2.3", "Bearer wrong-token", "vllm"),
    ],
)
def test_address_is_shown_to_loopback_and_admins_only_by_default(
    peer: str, authorization: str | None, expected: str
) -> None:
    assert shown(peer, Edge(), authorization).headers["x-switchman-upstream"] == expected


def test_always_and_never() -> None:
    always, never = Edge(upstream_address="always"), Edge(upstream_address="never")

    assert shown("10.1.2.3", always).headers["x-switchman-upstream"] == UPSTREAM
    assert shown("127.0.0.1", never).headers["x-switchman-upstream"] == "vllm"


def test_server_header_carries_the_version_only_when_asked() -> None:
    assert shown("10.1.2.3", Edge()).headers["Server"] == "switchman"
    assert shown("10.1.2.3", Edge(server_version=True)).headers["Server"].startswith("switchman/")


def test_response_without_an_upstream_header_gets_none() -> None:
    request = make_mocked_request("GET", "/healthz").clone(remote="10.1.2.3")
    response = web.StreamResponse()

    exposed_headers(request, response, Edge(), None, {})

    assert "x-switchman-upstream" not in response.headers
