"""The simulator's errors, shaped exactly like vLLM's ``ErrorResponse``.

vLLM answers ``{"error": {"message", "type", "param", "code"}}`` where ``type`` is an exception
name (``BadRequestError``, ``NotFoundError``, ``InternalServerError``) and ``code`` is the HTTP
status as an integer. Handlers raise ``SimError``; the error middleware in
``switchman.sim.server`` is the one place that turns it into a response. The context-length
messages reproduce vLLM's wording (``OpenAIServing._validate_input``) so clients and the gateway
can be tested against the real text.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class SimError(Exception):
    """An error answered as vLLM-shaped JSON with ``status``."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.status,
            }
        }

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=json.dumps(self.body()).encode(),
            content_type="application/json",
            headers=self.headers,
        )


def bad_request(message: str, param: str | None = None) -> SimError:
    return SimError(400, "BadRequestError", message, param=param)


def model_not_found(model: str) -> SimError:
    return SimError(404, "NotFoundError", f"The model `{model}` does not exist.", param="model")


def internal_error() -> SimError:
    return SimError(500, "InternalServerError", "Internal server error")


def rate_limited(retry_after_s: int) -> SimError:
    return SimError(
        429,
        "RateLimitError",
        "Too many requests: the simulator is rate limiting (injected fault).",
        headers={"Retry-After": str(retry_after_s)},
    )


def unavailable() -> SimError:
    return SimError(503, "ServiceUnavailableError", "The server is down (injected fault).")


def prompt_too_long(limit: int, prompt_tokens: int) -> SimError:
    return bad_request(
        f"This model's maximum context length is {limit} tokens. However, your request has "
        f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
        param="input_tokens",
    )


def max_tokens_too_large(limit: int, prompt_tokens: int, max_tokens: int) -> SimError:
    return bad_request(
        f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
        f"maximum context length is {limit} tokens and your request has {prompt_tokens} input "
        f"tokens ({max_tokens} > {limit} - {prompt_tokens}).",
        param="max_tokens",
    )


def embedding_input_too_long(limit: int, prompt_tokens: int) -> SimError:
    return bad_request(
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{prompt_tokens} tokens in the input for embedding generation. Please reduce the "
        "length of the input.",
        param="input_tokens",
    )
