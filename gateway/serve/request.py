"""Reads and validates a client's request body: only the fields routing and proxying need.

Called by ``handlers`` for each proxied endpoint. Everything else in the body is kept as-is and
passed through to the upstream. Errors are ``InvalidRequest`` / ``PayloadTooLarge`` /
``RequestTimeout`` with a ``param`` pointing at the offending field where there is one.

The body must be strict JSON (RFC 8259) in UTF-8: no ``NaN``/``Infinity`` (nor numbers that
overflow to them), no lone surrogate escapes (``"\\ud800"``: they cannot be re-encoded for the
upstream), integers of at most ``MAX_INT_DIGITS`` digits and nesting of at most ``MAX_DEPTH``
arrays/objects. The checks that need a walk of the parsed body run only when a cheap scan of
the raw bytes says they might fail, so ordinary requests pay next to nothing for them.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from switchman.gateway.errors import (
    ClientClosed,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
)
from switchman.gateway.providers.exchange import Operation, UpstreamCall
from switchman.gateway.upstreams.client import Provider, StreamDecoder

# Per-request values set by the app's front (``app.Front``), read by the proxy.
REQUEST_ID = web.RequestKey("request_id", str)
STARTED = web.RequestKey("started", float)

MAX_DEPTH = 100  # nested arrays/objects; tool schemas rarely pass 30
MAX_INT_DIGITS = 64  # a JSON integer longer than this is no count, id or seed anybody sends
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONG_DIGITS = re.compile(rb"[0-9]{19}")

_REQUIRED: dict[Operation, str] = {
    "chat": "messages",
    "completions": "prompt",
    "embeddings": "input",
}


class ClientFormat(Protocol):
    """A client API other than OpenAI's, met at the edges of the chat pipeline (``inbound``).

    ``to_chat`` reads the client's raw body as a chat.completions body (``InvalidRequest`` if
    malformed); ``prepare`` makes each attempt's upstream call, ``body`` being that chat body or
    a continuation of it; ``stream_response`` and ``whole`` are the client's answer (what
    ``downstream.Presentation`` asks of it, ``decoder`` included).
    """

    def decoder(self, provider: Provider, model_id: str) -> StreamDecoder | None: ...

    def native(self, provider: Provider) -> bool: ...

    def stream_response(self, headers: dict[str, str]) -> web.StreamResponse: ...

    def whole(self, payload: bytes) -> bytes: ...

    def to_chat(self, raw: bytes) -> dict[str, Any]: ...

    def prepare(
        self, provider: Provider, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall: ...


@dataclass(slots=True)  # not frozen: a frozen init costs twice as much, per request
class ClientRequest:
    """A parsed request: the operation, the body, and what routing reads from it."""

    op: Operation
    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool
    size: int = 0  # bytes of the raw body
    format: ClientFormat | None = None  # None: the body is OpenAI's own

    def prepare(self, provider: Provider, body: dict[str, Any], model_id: str) -> UpstreamCall:
        """One attempt's upstream call for ``body`` (``self.body`` or a continuation of it)."""
        if self.format is not None:
            return self.format.prepare(provider, body, model_id, self.stream)
        return provider.prepare(self.op, body, model_id, self.stream)


def check_length(content_length: int | None, limit: int) -> None:
    """Refuse a declared length over ``limit`` (also before ``100 Continue`` is sent)."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"request body is {content_length} bytes; the limit is {limit}")


async def read_body(request: web.Request, limit: int, within_s: float | None = None) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all, and a body
    that takes longer than ``within_s`` seconds to arrive (a slow or stalled upload)."""
    check_length(request.content_length, limit)
    content = request.content
    if content.is_eof():  # the whole body came with the headers (the common case): no timer
        raw = content.read_nowait()
        if len(raw) > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        return raw
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within_s):
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {within_s:g}s; send it at once"
        ) from None
    except ConnectionError:  # aiohttp's "Connection lost": the client gave up mid-upload
        raise ClientClosed("the client closed the connection while sending its request") from None
    return b"".join(chunks)


def parse(op: Operation, raw: bytes, format: ClientFormat | None = None) -> ClientRequest:
    """Validate the fields the gateway relies on; raise InvalidRequest naming the field.

    With a ``format`` the raw body is the client's own API's, read as chat by ``to_chat``.
    """
    if not raw and format is None:
        raise InvalidRequest("request body is empty; send a JSON object")
    body = loads(raw) if format is None else format.to_chat(raw)
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
        op=op,
        body=body,
        model=model,
        stream=stream,
        wants_usage=wants_usage,
        size=len(raw),
        format=format,
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


def loads(raw: bytes) -> Any:
    """Strict JSON from UTF-8 bytes (see the module docstring); InvalidRequest otherwise.

    orjson parses first (several times faster on long prompts, and as strict on UTF-8, lone
    surrogates and non-finite numbers); a body it refuses is parsed again by the standard
    library's parser, whose error names the line and column. Bodies with 19+ digit runs skip
    orjson, which reads integers past 64 bits as floats instead of exactly.
    """
    if not _LONG_DIGITS.search(raw):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
                _walk(value)
            return value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid UTF-8 (at byte {exc.start}); send UTF-8 JSON"
        ) from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except RecursionError:
        raise _too_deep(None) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    # Cheap scans decide whether the walk is needed: depth cannot pass MAX_DEPTH with fewer
    # brackets, and a lone surrogate can only come from a \\uD800-\\uDFFF escape.
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if deep or _SURROGATE_ESCAPE.search(raw):
        _walk(value)
    return value


def _constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not a JSON number; send a finite number or null")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidRequest(f"an integer in the request body has over {MAX_INT_DIGITS} digits")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest("a number in the request body is too large to be a finite double")
    return value


def _too_deep(param: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"request body nests arrays/objects over {MAX_DEPTH} levels deep",
        param=param[:200] if param else None,
    )


def _walk(value: Any) -> None:
    """Check nesting depth and that every string (keys too) can be encoded as UTF-8."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise _too_deep(path or None)
            for key, item in node.items():
                _encodable(key, path)  # named by its parent: the key itself cannot be shown
                child = f"{path}.{key}" if path else str(key)
                stack.append((item, child, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise _too_deep(path or None)
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
        elif isinstance(node, str):
            _encodable(node, path)


def _encodable(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            "request body holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF without its pair)",
            param=path[:200] or None,
        ) from None
