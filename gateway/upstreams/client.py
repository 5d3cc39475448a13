"""One client per configured upstream: its connection pool, provider adapter, replicas
(``endpoints``, whose breakers also hold a model's 429s) and live state (in-flight count, latency
EWMAs).

Built by ``runtime`` for each loaded config and reused across reloads while the upstream's spec
and credential are unchanged, so connection pools, breakers and latency history survive hot
reloads. Proxied requests go through ``wire`` (``pool.Pool``, the lean HTTP/1.1 client of the
request path); health checks, load scraping, passthrough and token counting use an aiohttp
session, created lazily inside the event loop. Both are closed by ``runtime`` once no request
uses them. ``routing`` reads the client through its ``UpstreamView`` protocol.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from switchman.api.edge import Edge
from switchman.api.gatewayconfig import AnthropicSettings, Upstream
from switchman.gateway.providers.anthropic import Anthropic
from switchman.gateway.providers.azure import AzureOpenAI
from switchman.gateway.providers.exchange import Operation, ResponseInfo, UpstreamCall, Usage
from switchman.gateway.providers.openai_compat import OpenAICompatible
from switchman.gateway.providers.sse import Event
from switchman.gateway.replicas.endpoints import EndpointSet
from switchman.gateway.upstreams import credentials
from switchman.gateway.upstreams.latency import Latency
from switchman.gateway.upstreams.pool import Pool


class StreamDecoder(Protocol):
    """Turns upstream SSE events into the bytes the client receives (OpenAI chunks)."""

    @property
    def done(self) -> bool: ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def model(self) -> str | None: ...

    @property
    def finish_reasons(self) -> list[str]: ...

    def feed(self, event: Event) -> bytes: ...

    def finish(self) -> bytes: ...


class Provider(Protocol):
    """What one attempt (``serve.attempt``, ``serve.relay``) needs from a wire protocol (openai,
    azure-openai, anthropic)."""

    name: str

    def supports(self, op: Operation) -> bool: ...

    def prepare(
        self, op: Operation, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall: ...

    def decode(self, op: Operation, payload: bytes) -> tuple[bytes, ResponseInfo]: ...

    def stream(self, op: Operation, model_id: str, wants_usage: bool) -> StreamDecoder: ...

    def error(self, status: int, payload: bytes) -> dict[str, Any]: ...


def _provider(spec: Upstream, secret: str | None) -> Provider:
    if spec.kind == "azure-openai":
        assert spec.azure is not None
        return AzureOpenAI(spec.azure, secret)
    if spec.kind == "anthropic":
        return Anthropic(spec.anthropic or AnthropicSettings(), secret)
    return OpenAICompatible(OpenAICompatible.bearer(secret))


def _tls(spec: Upstream) -> tuple[ssl.SSLContext | bool, str | None]:
    """Certificates are always verified; ``tls.ca_file`` adds the CAs to trust (or a problem)."""
    if spec.tls.ca_file is None:
        return True, None
    try:
        return ssl.create_default_context(cafile=spec.tls.ca_file), None
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return True, f"tls.ca_file {spec.tls.ca_file} cannot be loaded: {reason}"


class UpstreamClient:
    """Session, provider and bookkeeping for one upstream of the current config."""

    def __init__(
        self,
        spec: Upstream,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.base = str(spec.base_url).rstrip("/")
        parts = urlsplit(self.base)
        # Host and port only: a base URL may carry userinfo, which must never reach a header.
        self.endpoint = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self._secret, self.problem = credentials.resolve(spec.api_key, environ)
        # Set by ``runtime`` for the config being served: every resolved credential of the
        # Runtime (its own until then) and ``server.edge`` (caps on what is read from upstream).
        self.redactor = credentials.Redactor([self._secret])
        self.edge = Edge()
        self._tls, tls_problem = _tls(spec)
        self.problem = self.problem or tls_problem
        self.provider = _provider(spec, self._secret)
        self.inflight = 0
        self.holders = 0  # Runtimes using this client; closed by the last one to let go
        self.latency = Latency()
        self.endpoints = EndpointSet(spec, clock=clock)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self.wire = Pool(
            size=spec.max_connections,
            connect_s=spec.timeouts.connect_s,
            tls=self._tls if isinstance(self._tls, ssl.SSLContext) else None,
        )

    def start(self) -> None:
        """Start replica discovery, load scraping and health checks (inside the event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.endpoints.start(self.session)

    def unusable(self, model: str | None = None) -> str | None:
        """Why routing should pass it over now (for ``model``, an upstream model id), or None."""
        if self.problem:
            return "unconfigured"
        return self.endpoints.refusal(model)

    def load(self) -> float:
        return self.endpoints.load()

    def latency_estimate(self, output_tokens: int) -> float | None:
        return self.latency.estimate(output_tokens)

    def same_as(self, spec: Upstream, environ: Mapping[str, str]) -> bool:
        """True when a reload can keep this client (same spec, same credential)."""
        return spec == self.spec and credentials.resolve(spec.api_key, environ)[0] == self._secret

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session of health checks, load scraping, passthrough and token counting
        (off the proxied request path, which uses ``wire``)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.spec.max_connections,
                ttl_dns_cache=5,
                enable_cleanup_closed=True,
                ssl=self._tls,
            )
            timeout = aiohttp.ClientTimeout(total=None, connect=self.spec.timeouts.connect_s)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                # Identity encoding upstream: streams are parsed event by event as they arrive.
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def close(self) -> None:
        self.wire.close()
        await self.endpoints.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
