"""Azure OpenAI upstreams: OpenAI's wire format behind a deployment URL.

``POST {resource}/openai/deployments/{deployment}/{operation}?api-version=...`` with the key in
an ``api-key`` header (not ``Authorization``). Bodies, streams and errors are OpenAI's, so this
only changes the URL and auth; everything else is inherited from ``openai_compat``.
"""

from __future__ import annotations

from typing import Any

from switchman.api.gatewayconfig import AzureSettings
from switchman.gateway.providers.exchange import Operation, UpstreamCall
from switchman.gateway.providers.openai_compat import PATHS, OpenAICompatible, upstream_body


class AzureOpenAI(OpenAICompatible):
    """Provider adapter for ``kind: azure-openai`` upstreams."""

    name = "azure-openai"

    def __init__(self, settings: AzureSettings, api_key: str | None) -> None:
        super().__init__({"api-key": api_key} if api_key else {})
        self._prefix = f"/openai/deployments/{settings.deployment}"
        self._params = {"api-version": settings.api_version}

    def passthrough(self, endpoint: str, body: bytes, content_type: str) -> UpstreamCall:
        call = super().passthrough(endpoint, body, content_type)
        return UpstreamCall(
            path=self._prefix + call.path, body=body, headers=call.headers, params=self._params
        )

    def prepare(
        self, op: Operation, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall:
        return UpstreamCall(
            path=self._prefix + PATHS[op],
            body=upstream_body(body, model_id, stream),
            headers=self._auth,
            params=self._params,
        )
