"""Reads and validates a client's request body: only the fields routing and proxying need.

Called by ``handlers`` for each proxied endpoint. Everything else in the body is kept as-is and
passed through to the upstream. Errors are ``InvalidRequest`` / ``PayloadTooLarge`` with a
``param`` pointing at the offending field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from switchman.gateway.errors import InvalidRequest, PayloadTooLarge
from switchman.gateway.providers.exchange import Operation

# Per-request values set by the error middleware, read by the proxy.
REQUEST_ID = web.RequestKey("request_id", str)
STARTED = web.RequestKey("started", float)

_REQUIRED: dict[Operation, str] = {
    "chat": "messages",
    "completions": "prompt",
    "embeddings": "input",
}


@dataclass(slots=True, frozen=True)
class ClientRequest:
    """A parsed request: the operation, the body, and what routing reads from it."""

    op: Operation
    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool
    size: int = 0  # bytes of the raw body


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"request body is {request.content_length} bytes; the limit is {limit}"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse(op: Operation, raw: bytes) -> ClientRequest:
    """Validate the fields the gateway relies on; raise InvalidRequest naming the field."""
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    field = _REQUIRED[op]
    if field not in body:
        raise InvalidRequest(f"'{field}' is required", param=field)
    if op == "chat":
        _check_messages(body["messages"])
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    if stream and op == "embeddings":
        raise InvalidRequest("embeddings cannot be streamed", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    wants_usage = bool(options.get("include_usage")) if options else False
    return ClientRequest(
        op=op, body=body, model=model, stream=stream, wants_usage=wants_usage, size=len(raw)
    )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest("each message must be an object", param=f"messages[{index}]")
        if not isinstance(message.get("role"), str):
            raise InvalidRequest(
                "each message needs a string 'role'", param=f"messages[{index}].role"
            )
