"""What the request path's upstream client writes (``upstreams.pool``), without sockets.

Scenarios:
- a base URL's origin: the Host header carries the port only when it is not the scheme's
  default, IPv6 hosts are bracketed, userinfo never reaches it, the base path is the prefix;
- the request head: the request line, Host first, the caller's headers as given, a default
  ``Accept``, ``Content-Length``; a caller's Host, Content-Length, Transfer-Encoding or Connection
  never overrides the client's own; a header value holding a line break is refused, not sent.
"""

from __future__ import annotations

import pytest

from switchman.gateway.upstreams.pool import origin, request_head
from switchman.gateway.upstreams.wire import ConnectFailed


@pytest.mark.parametrize(
    ("base", "key", "authority", "prefix", "tls"),
    [
        (
            "https://api.example.com/v1",
            "https://api.example.com:443",
            "api.example.com",
            "/v1",
            True,
        ),
        ("http://10.0.0.7:8000/v1/", "http://10.0.0.7:8000", "10.0.0.7:8000", "/v1", False),
        ("http://user:secret@vllm:80", "http://vllm:80", "vllm", "", False),
        ("http://[::1]:8000/v1", "http://[::1]:8000", "[::1]:8000", "/v1", False),
        (
            "https://api.example.com:8443",
            "https://api.example.com:8443",
            "api.example.com:8443",
            "",
            True,
        ),
    ],
)
def test_origin_of_a_base_url(base: str, key: str, authority: str, prefix: str, tls: bool) -> None:
    where, path = origin(base)
    assert (where.key, where.authority, where.prefix, where.tls) == (key, authority, prefix, tls)
    assert path == prefix
    assert "secret" not in repr(where)


def test_request_head_keeps_its_own_framing_headers() -> None:
    where, _ = origin("http://10.0.0.7:8000/v1")
    headers = {
        "Authorization": "Bearer k",
        "host": "evil.example",
        "Content-Length": "1",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
    }
    head = request_head("POST", where, "/v1/chat/completions", headers, 42).decode()
    assert head == (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        "Host: 10.0.0.7:8000\r\n"
        "Authorization: Bearer k\r\n"
        "Accept: */*\r\n"
        "Content-Length: 42\r\n\r\n"
    )


def test_request_head_sends_ordinary_headers_in_order() -> None:
    where, _ = origin("https://api.example/v1")
    headers = {"Authorization": "Bearer k", "x-request-id": "r1", "Content-Type": "a/b"}
    head = request_head("POST", where, "/v1/chat/completions", headers, 7).decode()
    assert head == (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        "Host: api.example\r\n"
        "Authorization: Bearer k\r\n"
        "x-request-id: r1\r\n"
        "Content-Type: a/b\r\n"
        "Accept: */*\r\n"
        "Content-Length: 7\r\n\r\n"
    )


def test_a_callers_accept_replaces_the_default() -> None:
    where, _ = origin("http://vllm/v1")
    head = request_head("POST", where, "/", {"accept": "text/event-stream"}, 0).decode()
    assert "accept: text/event-stream\r\n" in head
    assert "*/*" not in head


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb"])
def test_a_line_break_in_a_header_is_refused(value: str) -> None:
    where, _ = origin("http://vllm/v1")
    with pytest.raises(ConnectFailed, match="line break"):
        request_head("POST", where, "/", {"x-request-id": value}, 0)
