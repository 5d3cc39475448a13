"""Azure OpenAI upstreams: OpenAI's wire format behind a deployment URL.

``POST {resource}/openai/deployments/{deployment}/{operation}?api-version=...`` with the key in
an ``api-key`` header (not ``Authorization``). Bodies, streams and errors are OpenAI's, so this
only changes the URL and auth; everything else is ``openai_compat``.
"""

from __future__ import annotations

from typing import Any

from switchman.api.gatewayconfig import AzureSettings
from switchman.gateway.exchange import Operation, UpstreamCall, Usage
from switchman.gateway.providers.openai_compat import (
    PATHS,
    OpenAIStream,
    error_body,
    read_usage,
    upstream_body,
)


class AzureOpenAI:
    """Provider adapter for ``kind: azure-openai`` upstreams."""

    name = "azure-openai"

    def __init__(self, settings: AzureSettings, api_key: str | None) -> None:
        self._prefix = f"/openai/deployments/{settings.deployment}"
        self._params = {"api-version": settings.api_version}
        self._auth = {"api-key": api_key} if api_key else {}

    def supports(self, op: Operation) -> bool:
        return True

    def prepare(
        self, op: Operation, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall:
        return UpstreamCall(
            path=self._prefix + PATHS[op],
            body=upstream_body(body, model_id, stream),
            headers=self._auth,
            params=self._params,
        )

    def decode(self, op: Operation, payload: bytes) -> tuple[bytes, Usage | None]:
        return payload, read_usage(payload)

    def stream(self, op: Operation, model_id: str, wants_usage: bool) -> OpenAIStream:
        return OpenAIStream(wants_usage)

    def error(self, status: int, payload: bytes) -> dict[str, Any]:
        return error_body(status, payload)
