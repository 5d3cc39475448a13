"""The ``model`` of a passthrough request body, read and rewritten without re-encoding the rest.

Used by ``passthrough``: JSON bodies (images, speech, moderations, rerank) are parsed as chat
bodies are (strict JSON) and re-serialised with the upstream's model id only when it differs;
``multipart/form-data`` bodies (audio transcriptions: the audio file plus form fields) are
scanned for the ``model`` field, whose value is replaced in place, so the file's bytes are never
copied into a new structure. Malformed bodies are a 400 naming ``model``.
"""

from __future__ import annotations

import json

from aiohttp.helpers import parse_mimetype

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.serve.request import loads


def _boundary(content_type: str) -> bytes | None:
    mime = parse_mimetype(content_type)
    if (mime.type, mime.subtype) != ("multipart", "form-data"):
        return None
    boundary = mime.parameters.get("boundary")
    if not boundary:
        raise InvalidRequest("a multipart body needs a boundary in its Content-Type")
    return boundary.encode()


def _field(raw: bytes, boundary: bytes, name: str) -> tuple[int, int] | None:
    """Where the value of form field ``name`` lies in ``raw`` (start, end)."""
    delimiter = b"--" + boundary
    wanted = f'name="{name}"'.encode()
    pos = raw.find(delimiter)
    while pos >= 0:
        head = pos + len(delimiter) + 2  # past the delimiter's CRLF
        head_end = raw.find(b"\r\n\r\n", head)
        if head_end < 0:
            return None
        value = head_end + 4
        end = raw.find(b"\r\n" + delimiter, value)
        if end < 0:
            return None
        headers = raw[head:head_end]
        if wanted in headers and b"filename=" not in headers:
            return value, end
        pos = end + 2
    return None


def model_of(raw: bytes, content_type: str) -> str:
    """The route or model the client named."""
    boundary = _boundary(content_type)
    if boundary is None:
        body = loads(raw) if raw else None
        model = body.get("model") if isinstance(body, dict) else None
    else:
        where = _field(raw, boundary, "model")
        model = raw[where[0] : where[1]].decode("utf-8", "replace") if where else None
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    return model


def with_model(raw: bytes, content_type: str, target: str) -> bytes:
    """``raw`` naming ``target`` as its model (unchanged bytes when it already does)."""
    boundary = _boundary(content_type)
    if boundary is None:
        body = loads(raw)
        if body.get("model") == target:
            return raw
        body["model"] = target
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    where = _field(raw, boundary, "model")
    assert where is not None  # model_of found it
    if raw[where[0] : where[1]] == target.encode():
        return raw
    return raw[: where[0]] + target.encode() + raw[where[1] :]
