"""OpenAI-compatible upstreams: vLLM, OpenAI, Mistral, Groq, Together, the HF router, OpenRouter.

The request body is the client's own, with only ``model`` (and, for streams, ``stream_options``)
rewritten, so every field the gateway does not route on (tools, image parts, vendor extensions)
reaches the upstream untouched. Responses are relayed as the upstream's original bytes; only the
usage is read. Azure OpenAI reuses this with another URL and auth header (``azure``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from switchman.gateway.errors import UpstreamUnavailable, openai_error_body
from switchman.gateway.providers.exchange import Operation, ResponseInfo, UpstreamCall, Usage
from switchman.gateway.providers.sse import DONE, Event, block_events

PATHS: dict[Operation, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}

_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"([^"]+)"')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
_UNFINISHED = b'"finish_reason":null'
_DONE_AFTER = b"\n\n" + DONE  # ``[DONE]``, the last of several plain events


def upstream_body(body: dict[str, Any], model_id: str, stream: bool) -> bytes:
    """The client's body with the upstream model id; streams always ask for usage."""
    out = dict(body)
    out["model"] = model_id
    if stream:
        options = out.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        out["stream_options"] = options
    return dumps(out)


def dumps(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: orjson, or the standard library for what orjson refuses (integers
    past 64 bits, which the gateway accepts from clients up to 64 digits)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def summarize(payload: bytes) -> ResponseInfo:
    """Usage, model and finish reasons of a whole (non-streamed) OpenAI-shaped response.

    Raises ValueError when the payload is not a JSON object (an HTML error page from a proxy
    in front of the upstream, say): the gateway must not relay that as a 200.
    """
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = json.loads(payload)  # raises again, with the standard library's message
    if not isinstance(body, dict):
        raise ValueError("upstream response is not a JSON object")
    return ResponseInfo.from_openai(body)


def error_body(status: int, payload: bytes) -> dict[str, Any]:
    """The upstream's OpenAI-shaped error, or one describing a non-JSON answer."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        # Some servers (older vLLM, FastAPI defaults) put the message at the top level.
        return openai_error_body(body["message"], type_="invalid_request_error", code=str(status))
    excerpt = payload[:200].decode("utf-8", "replace").strip()
    return openai_error_body(
        f"upstream returned HTTP {status}: {excerpt}" if excerpt else f"upstream returned {status}",
        type_="api_error",
        code=str(status),
    )


def _loads(data: bytes) -> Any:
    """A JSON document: orjson, or the standard library for what orjson refuses (integers past
    64 bits, ``NaN``); ValueError when neither reads it."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _object_like(data: bytes) -> bool:
    stripped = data.strip()
    return stripped.startswith(b"{") and stripped.endswith(b"}")


def _is_error_event(data: bytes) -> bool:
    """An in-band ``data: {"error": ...}`` event (vLLM and several providers send one when a
    generation fails mid-way); its text is not relayed (it may quote the request)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    return isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices")


class OpenAIStream:
    """Relays an OpenAI-style SSE stream event by event, reading usage as it passes.

    A chunk that is not a JSON object raises ``ValueError`` and an in-band error event raises
    ``UpstreamUnavailable``: the relay treats both as the attempt's failure, never relays them.

    The gateway always asks upstream for usage; when the client did not, the extra usage-only
    chunk is dropped so the client sees exactly what it asked for.
    """

    __slots__ = ("done", "finish_reasons", "model", "usage", "wants_usage")

    def __init__(self, wants_usage: bool) -> None:
        self.wants_usage = wants_usage
        self.usage: Usage | None = None
        self.model: str | None = None
        self.finish_reasons: list[str] = []
        self.done = False

    def feed(self, event: Event) -> bytes:
        data = event.data
        if data == b"[DONE]":
            self.done = True
            return b""
        if not (data[:1] == b"{" and data[-1:] == b"}") and not _object_like(data):
            # Cheap, and enough for a cut or garbled chunk: never relayed to the client.
            raise ValueError("a stream chunk that is not a JSON object")
        # ``find`` rather than ``in`` (cheaper on bytes), ``rfind`` for what sits at a chunk's end:
        # a content chunk ("finish_reason":null, no usage) costs three scans and no regex.
        if data.find(b'"error"') >= 0 and _is_error_event(data):
            raise UpstreamUnavailable("the upstream reported an error in its stream")
        if self.model is None and (found := _MODEL.search(data)):
            self.model = found.group(1).decode("utf-8", "replace")
        if data.rfind(_UNFINISHED) < 0 and (reason := _FINISH.search(data)):
            self.finish_reasons.append(reason.group(1).decode("utf-8", "replace"))
        if data.find(b'"usage"') >= 0 and _USAGE.search(data):
            try:
                chunk = _loads(data)
            except ValueError:
                return event.raw
            self.usage = Usage.from_openai(chunk.get("usage")) or self.usage
            if not self.wants_usage and not chunk.get("choices"):
                return b""
        return event.raw

    def feed_block(self, block: bytes) -> bytes:
        """``feed`` for every event of a block at once (``sse.SSEParser.complete``: a read's
        whole events): the same bytes out and the same state as feeding them one by one. The
        common read (plain ``data: {...}`` events: content chunks, at the end maybe the finish,
        usage and ``[DONE]``) is decided by a few scans of the whole block, and only events that
        hold a finish reason or usage are looked at one by one; any other goes to ``feed``."""
        done = block == DONE or block.endswith(_DONE_AFTER)
        body = block[: -len(DONE)] if done else block
        scan = _scan(body, self.model is None) if body else (None, [], [])
        if scan is None:
            return b"".join([self.feed(event) for event in block_events(block)])
        model, reasons, usages = scan
        if model is not None:
            self.model = model
        if reasons:
            self.finish_reasons += reasons
        dropped = []
        for start, end in usages:
            try:
                chunk = _loads(body[start + 6 : end])
            except ValueError:
                continue
            self.usage = Usage.from_openai(chunk.get("usage")) or self.usage
            if not self.wants_usage and not chunk.get("choices"):
                dropped.append((start, end + 2))
        if done:
            self.done = True
        return _without(body, dropped) if dropped else body  # (as it is, mostly)

    def finish(self) -> bytes:
        return DONE


_Scan = tuple[str | None, list[str], list[tuple[int, int]]]
_SET_FINISH = re.compile(rb'finish_reason"(?!:null)')
_SET_USAGE = re.compile(rb'usage"(?!:null)')


def _scan(body: bytes, want_model: bool) -> _Scan | None:
    """The model (when wanted), finish reasons and usage events (start and end of their
    ``data: `` line) in a block of whole events without ``[DONE]``, as ``feed`` would find them
    one by one; None unless every event is a plain ``data: {...}`` line and none is an error."""
    if not body.startswith(b"data: {") or not body.endswith(b"}\n\n"):
        return None
    # Events of one line each: two line ends apiece, all of them between "}" and "data: {".
    if body.count(b"\n") != 2 * body.count(b"}\n\ndata: {") + 2 or body.find(b'"error"') >= 0:
        return None
    model = None
    if want_model and (found := _MODEL.search(body)):
        if found.group(1).find(b"\n") >= 0:  # (ran into the next event)
            return None
        model = found.group(1).decode("utf-8", "replace")
    reasons = []
    for start, key, end in _holding(body, _SET_FINISH):
        # As ``feed`` reads an event's finish reason; its first match is at the key or after.
        if body.find(_UNFINISHED, start, end) < 0 and (reason := _FINISH.search(body, key, end)):
            reasons.append(reason.group(1).decode("utf-8", "replace"))
    usages = [
        (start, end)
        for start, key, end in _holding(body, _SET_USAGE)
        if _USAGE.search(body, key, end)
    ]
    return model, reasons, usages


def _holding(body: bytes, key: re.Pattern[bytes]) -> list[tuple[int, int, int]]:
    """The events of a block of one-line events where ``key`` matches (those a finish reason or
    usage may be read from: a stream's last ones): the start of their ``data: `` line, of the
    first match less one (its opening quote) and the end of the line."""
    spans: list[tuple[int, int, int]] = []
    at = 0
    while found := key.search(body, at):
        at = body.find(b"\n", found.end())
        spans.append((body.rfind(b"\n", 0, found.start()) + 1, found.start() - 1, at))
    return spans


def _without(body: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``body`` less the ``spans`` (start, end) of it; the common one, its last event, cut off."""
    if len(spans) == 1 and spans[0][1] == len(body):
        return body[: spans[0][0]]
    parts = []
    at = 0
    for start, end in spans:
        parts.append(body[at:start])
        at = end
    parts.append(body[at:])
    return b"".join(parts)


class OpenAICompatible:
    """Provider adapter for ``kind: openai`` upstreams (bearer token auth)."""

    name = "openai"

    def __init__(self, auth_header: dict[str, str]) -> None:
        self._auth = auth_header

    @staticmethod
    def bearer(secret: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def passthrough(self, endpoint: str, body: bytes, content_type: str) -> UpstreamCall:
        """Another OpenAI endpoint (``images/generations``, ``rerank``, ...) with the client's
        body as it is (``inbound.passthrough`` rewrites only its model)."""
        headers = {**self._auth, "Content-Type": content_type}
        return UpstreamCall(path="/" + endpoint, body=body, headers=headers)

    def supports(self, op: Operation) -> bool:
        return True

    def prepare(
        self, op: Operation, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall:
        return UpstreamCall(
            path=PATHS[op], body=upstream_body(body, model_id, stream), headers=self._auth
        )

    def decode(self, op: Operation, payload: bytes) -> tuple[bytes, ResponseInfo]:
        return payload, summarize(payload)

    def stream(self, op: Operation, model_id: str, wants_usage: bool) -> OpenAIStream:
        return OpenAIStream(wants_usage)

    def error(self, status: int, payload: bytes) -> dict[str, Any]:
        return error_body(status, payload)
