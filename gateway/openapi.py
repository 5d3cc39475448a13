"""The gateway's OpenAPI 3.1 document, served at ``/openapi.json``.

Describes the surface clients and tools see; request bodies are the OpenAI and Anthropic APIs'
(documented by them; the inbound formats in ``docs/anthropic-messages.md`` and
``docs/responses-api.md``), so only the fields the gateway itself validates are spelled out here.
"""

from __future__ import annotations

from typing import Any, get_args

from switchman.api.gatewayconfig import PassthroughEndpoint

_ERROR = {"$ref": "#/components/schemas/Error"}
# GatewayConfig's PassthroughEndpoint values (gateway/inbound/passthrough.py serves them).
_PASSTHROUGH = get_args(PassthroughEndpoint)
_ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def _proxied(
    summary: str, required: list[str], streams: bool, shape: str = "OpenAI"
) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/AnthropicError"} if shape == "Anthropic" else _ERROR
    responses: dict[str, Any] = {
        "200": {
            "description": f"The answer, {shape}-shaped"
            + ("; text/event-stream when stream is true" if streams else ""),
            "headers": {
                name: {"schema": {"type": "string"}, "description": text}
                for name, text in _HEADERS.items()
            },
        }
    }
    for status, text in _ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": error}},
        }
    properties: dict[str, Any] = {"model": {"type": "string", "description": "Route or model."}}
    if streams:
        properties["stream"] = {"type": "boolean"}
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", *required],
                            "properties": properties,
                            "additionalProperties": True,
                        }
                    }
                },
            },
            "responses": responses,
        }
    }


_HEADERS = {
    "x-request-id": "Request id (the client's, or generated).",
    "x-switchman-model": "The model that served the request.",
    "x-switchman-upstream": "Upstream name and endpoint.",
    "x-switchman-route": "Route and the reason for the choice.",
    "x-switchman-attempts": "Upstream attempts made.",
}
_ERRORS = {
    "400": "Malformed JSON or a missing field.",
    "404": "Unknown model or route.",
    "408": "The request body did not arrive within server.edge.body_timeout_s.",
    "413": "Request body over the limit (before 100 Continue when the client expects one).",
    "417": "An Expect header other than 100-continue.",
    "429": "Every candidate is rate limited (Retry-After passed on).",
    "502": "No candidate could be reached or all failed.",
    "504": "A candidate timed out.",
}


def _get(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}


def _inbound() -> dict[str, Any]:
    """The other client formats (``gateway/inbound``) and model lookup."""
    return {
        "/v1/messages": _proxied(
            "Anthropic Messages (docs/anthropic-messages.md)",
            ["max_tokens", "messages"],
            True,
            "Anthropic",
        ),
        "/v1/messages/count_tokens": _proxied(
            "Input tokens of a Messages request", ["messages"], False, "Anthropic"
        ),
        "/v1/responses": _proxied(
            "OpenAI Responses, stateless (docs/responses-api.md)", ["input"], True
        ),
        **{
            f"/v1/{capability}": _proxied(
                f"Passed through to models declaring '{capability}' (docs/passthrough.md)",
                [],
                False,
            )
            for capability in _PASSTHROUGH
        },
        "/v1/models/{id}": {
            "get": {
                "summary": "One route or model (Anthropic's shape with anthropic-version)",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "OK"},
                    "404": {
                        "description": "Unknown model or route.",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            }
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchman gateway", "version": "1"},
        "paths": {
            "/v1/chat/completions": _proxied("Chat completion", ["messages"], True),
            "/v1/completions": _proxied("Text completion", ["prompt"], True),
            "/v1/embeddings": _proxied("Embeddings", ["input"], False),
            **_inbound(),
            "/v1/models": _get("Routes and models served"),
            "/healthz": _get("Liveness"),
            "/readyz": {
                "get": {
                    "summary": "Readiness, config generation and upstream state",
                    "responses": {
                        "200": {"description": "A config is loaded"},
                        "503": {"description": "No valid config yet"},
                    },
                }
            },
            "/metrics": _get("Prometheus metrics"),
        },
        "components": {
            "schemas": {
                "AnthropicError": _ANTHROPIC_ERROR,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"]},
                            },
                        }
                    },
                },
            }
        },
    }
