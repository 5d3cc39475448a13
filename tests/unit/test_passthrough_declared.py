"""Passthrough endpoints: declared per model, rendered by the operator, and the request body's
model read and rewritten without touching the rest.

Scenario matrix:
- a ModelPool model's ``capabilities.endpoints`` renders into its GatewayConfig capabilities
  (none declared: the key is left out, so existing rendered configs are unchanged); an unknown
  endpoint is refused by both the CRD model and GatewayConfig
- JSON bodies: the model read; rewritten to the upstream id (other fields kept), the same bytes
  when already right; no model -> 400 naming ``model``
- multipart bodies: the ``model`` form field read and replaced in place (the file part, whose
  bytes contain the word ``model``, untouched); a file field named ``model`` is not the model
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from switchman.api.gatewayconfig import Capabilities
from switchman.api.v1alpha1.modelpool import PoolModel
from switchman.gateway.errors import InvalidRequest
from switchman.gateway.inbound.passthrough_body import model_of, with_model
from switchman.operator.render.gatewayconfig import _models

EXTERNAL = {"provider": "openai", "model": "whisper-1"}


def test_declared_endpoints_are_rendered_and_undeclared_left_out() -> None:
    declared = PoolModel.model_validate(
        {"name": "w", "external": EXTERNAL, "capabilities": {"endpoints": ["audio/transcriptions"]}}
    )
    plain = PoolModel.model_validate({"name": "p", "external": EXTERNAL})
    (rendered,) = _models(declared, "up")
    assert rendered["capabilities"]["endpoints"] == ["audio/transcriptions"]
    assert "endpoints" not in _models(plain, "up")[0]["capabilities"]
    assert Capabilities.model_validate(rendered["capabilities"]).endpoints == [
        "audio/transcriptions"
    ]


def test_unknown_endpoints_are_refused() -> None:
    with pytest.raises(ValidationError):
        PoolModel.model_validate(
            {"name": "w", "external": EXTERNAL, "capabilities": {"endpoints": ["files"]}}
        )
    with pytest.raises(ValidationError):
        Capabilities.model_validate({"endpoints": ["assistants"]})


def test_json_model_read_and_rewritten() -> None:
    raw = json.dumps({"model": "auto", "input": "x", "extra": [1, 2]}).encode()
    assert model_of(raw, "application/json") == "auto"
    assert json.loads(with_model(raw, "application/json", "up-1")) == {
        "model": "up-1",
        "input": "x",
        "extra": [1, 2],
    }
    assert with_model(raw, "application/json", "auto") is raw
    with pytest.raises(InvalidRequest) as missing:
        model_of(b'{"input": "x"}', "application/json")
    assert missing.value.param == "model"


def _form(*parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--XyZ\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n"
        out += value + b"\r\n"
    return out + b"--XyZ--\r\n"


def test_multipart_model_field_replaced_in_place() -> None:
    audio = b'\x00name="model"\r\n\r\nfake\x01' * 3
    raw = _form(("file", audio, "a.wav"), ("model", b"auto", None), ("language", b"en", None))
    kind = "multipart/form-data; boundary=XyZ"
    assert model_of(raw, kind) == "auto"
    rewritten = with_model(raw, kind, "whisper-large")
    assert rewritten == _form(
        ("file", audio, "a.wav"), ("model", b"whisper-large", None), ("language", b"en", None)
    )
    with pytest.raises(InvalidRequest):
        model_of(_form(("model", b"x", "model.txt")), kind)  # a file, not the field
