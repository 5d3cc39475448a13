"""The gateway's closed set of client-facing errors, each mapped once to an HTTP status and an
OpenAI error type.

Handlers and the proxy raise these; the front in ``switchman.gateway.app`` (``Front``) is the only
place that turns them (and any unexpected exception) into an OpenAI-shaped JSON response:
``{"error": {"message", "type", "param", "code"}}``. Messages must never contain secrets.
"""

from __future__ import annotations

import json
from typing import Any


class GatewayError(Exception):
    """Base class: an error the client should see as OpenAI-shaped JSON."""

    status = 500
    type = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def payload(self) -> bytes:
        return json.dumps(self.body()).encode()


class InvalidRequest(GatewayError):
    """Malformed JSON, a missing or wrongly typed field."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ModelNotFound(GatewayError):
    """The ``model`` names neither a route nor a model in the current config."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(GatewayError):
    """Unknown path."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    """The request body is over ``server.max_body_bytes``."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class ExpectationFailed(GatewayError):
    """An ``Expect`` header other than ``100-continue``."""

    status = 417
    type = "invalid_request_error"
    code = "expectation_failed"


class RequestTimeout(GatewayError):
    """The client did not send its request body in time (a slow or stalled upload)."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class ClientClosed(GatewayError):
    """The client closed its connection before the answer was complete (during its upload, while
    waiting, or mid-stream). Nobody reads the answer; 499 is what the access log and metrics
    record (outcome ``client_closed``), never an error of the gateway."""

    status = 499
    type = "invalid_request_error"
    code = "client_closed"


class RateLimited(GatewayError):
    """Every candidate answered 429; ``Retry-After`` is passed on when upstream gave one."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamUnavailable(GatewayError):
    """No candidate could be reached, or all answered with server errors."""

    status = 502
    type = "api_error"
    code = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    """A candidate took too long (connect, first byte, between chunks or in total)."""

    status = 504
    type = "api_error"
    code = "upstream_timeout"


class NotReady(GatewayError):
    """The gateway has no valid config yet."""

    status = 503
    type = "api_error"
    code = "not_ready"


class Unauthenticated(GatewayError):
    """Tenancy is on and the request carries no key, or one the gateway does not know."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    """The key's tenant may not use the route or model the request names."""

    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class LimitExceeded(GatewayError):
    """A tenant's request or token rate, or its USD budget, is used up (``Retry-After`` set)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class LimitsUnavailable(GatewayError):
    """The shared limits store is unreachable and the config says to refuse meanwhile."""

    status = 503
    type = "api_error"
    code = "limits_unavailable"


class UpstreamRejected(GatewayError):
    """An upstream 4xx (other than 429) passed back to the client unchanged.

    The body is the upstream's own OpenAI-shaped error (translated for non-OpenAI upstreams),
    so clients see e.g. vLLM's context-length message as if they had called it directly.
    """

    type = "invalid_request_error"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(str(message or f"upstream returned {status}"))
        self.status = status
        self._body = body

    def body(self) -> dict[str, Any]:
        return self._body


def openai_error_body(
    message: str, *, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """Build an OpenAI error envelope (used by translators for upstream errors)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
