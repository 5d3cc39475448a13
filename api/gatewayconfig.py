"""GatewayConfig: the versioned document the operator writes and the gateway reads.

This is the only thing that crosses between the two planes (see docs/architecture.md). The
operator renders it into a ConfigMap; the gateway loads it from a mounted file (or a hand-written
file with no cluster at all), validates it whole and swaps its routing table. Credentials never
appear here: an upstream names an environment variable or a mounted-Secret file path instead.

Bump ``version`` on any change an older gateway could misread; the gateway refuses versions it
does not know and keeps its last good config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from switchman.api.edge import Edge, UpstreamTLS, header_problems, value_problem
from switchman.api.resilience import (
    Balance,
    CircuitBreaker,
    Discovery,
    HealthCheck,
    Retry,
    Scrape,
)
from switchman.api.routes import MidStream, Name, Route
from switchman.api.tenancy import Tenancy, check_references
from switchman.api.validation import Strict, problems

CONFIG_VERSION = 1


class CredentialRef(Strict):
    """Where the gateway finds a secret: exactly one of an env var name or a file path."""

    env: str | None = Field(default=None, description="Environment variable holding the secret.")
    file: str | None = Field(
        default=None, description="File holding the secret (e.g. a mounted Secret key)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("set exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """A log-safe description of the reference (never the secret itself)."""
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"


class Timeouts(Strict):
    """Per-upstream time limits, in seconds.

    A stream is bounded by ``first_byte_s`` (to its headers), ``idle_s`` (between chunks) and
    ``total_s``; a whole (non-streamed) answer by ``total_s`` alone, its generation timeout: a
    server sends its headers only once it has generated it. The operator's defaults differ for
    in-cluster vLLM and external providers (docs/reliability.md).
    """

    connect_s: float = Field(default=5.0, gt=0, description="TCP (and TLS) connect.")
    first_byte_s: float = Field(
        default=60.0,
        gt=0,
        description="A stream: from sending the request to the response headers.",
    )
    idle_s: float = Field(
        default=30.0, gt=0, description="Longest silence between two chunks of a stream."
    )
    total_s: float = Field(
        default=600.0,
        gt=0,
        description="Generation timeout: a whole answer, or a whole stream, from one upstream.",
    )


class AzureSettings(Strict):
    """Azure OpenAI specifics: the deployment is part of the URL, the version a query arg."""

    deployment: str = Field(min_length=1, description="Deployment name in the Azure resource.")
    api_version: str = Field(default="2024-10-21", description="The `api-version` query value.")

    @field_validator("deployment", "api_version")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if (problem := value_problem(value)) is not None:
            raise ValueError(f"the value {problem}")
        return value


class AnthropicSettings(Strict):
    """Anthropic Messages API specifics."""

    version: str = Field(default="2023-06-01", description="The `anthropic-version` header.")

    @field_validator("version")
    @classmethod
    def _header_safe(cls, value: str) -> str:
        if (problem := value_problem(value)) is not None:
            raise ValueError(f"the value {problem}")
        return value

    default_max_tokens: int = Field(
        default=4096,
        gt=0,
        description="max_tokens sent when the client gave none (Anthropic requires it).",
    )


UpstreamKind = Literal["openai", "azure-openai", "anthropic"]
# OpenAI endpoints beyond chat/completions/embeddings that a model may serve; the gateway passes
# them through untouched to models that declare them (``gateway/inbound/passthrough``).
PassthroughEndpoint = Literal[
    "images/generations", "audio/transcriptions", "audio/speech", "moderations", "rerank"
]


class Upstream(Strict):
    """One API endpoint the gateway sends requests to, with its own pooled client session.

    ``kind`` picks the wire protocol: ``openai`` covers every OpenAI-compatible server (vLLM,
    OpenAI, Mistral, Groq, Together, the HF router, OpenRouter, ...).
    """

    name: Name
    kind: UpstreamKind = "openai"
    base_url: HttpUrl = Field(
        description=(
            "Base URL. openai: up to and including /v1 (e.g. http://svc:8000/v1); "
            "azure-openai: the resource (https://NAME.openai.azure.com); anthropic: "
            "https://api.anthropic.com."
        )
    )
    api_key: CredentialRef | None = Field(default=None, description="Credential reference.")
    provider_name: str | None = Field(
        default=None,
        description=(
            "gen_ai.provider.name in traces (e.g. mistral_ai, groq); defaults from kind: "
            "openai, azure.ai.openai or anthropic."
        ),
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra non-secret headers sent on every request."
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    tls: UpstreamTLS = Field(default_factory=UpstreamTLS)
    max_connections: int = Field(default=256, gt=0, description="Connection pool size.")
    azure: AzureSettings | None = None
    anthropic: AnthropicSettings | None = None
    discovery: Discovery | None = Field(
        default=None, description="Replicas; without it base_url's host is the only endpoint."
    )
    scrape: Scrape | None = Field(
        default=None, description="Read replica load from vLLM /metrics (in-cluster models)."
    )
    balance: Balance = Field(default_factory=Balance)
    health_check: HealthCheck | None = Field(
        default=None, description="Active checks of each replica (vLLM: GET /health)."
    )
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    continuation: Literal["vllm", "prefill", "instruct"] | None = Field(
        default=None,
        description=(
            "How this upstream continues a cut stream's partial answer: vllm "
            "(continue_final_message), prefill (a trailing assistant message is continued, as "
            "Anthropic does) or instruct (an extra user turn asks to go on). Default: prefill "
            "for anthropic, instruct otherwise."
        ),
    )

    @property
    def continues_by(self) -> str:
        if self.continuation is not None:
            return self.continuation
        return "prefill" if self.kind == "anthropic" else "instruct"

    @model_validator(mode="after")
    def _kind_settings(self) -> Upstream:
        if self.kind == "azure-openai" and self.azure is None:
            raise ValueError("kind 'azure-openai' needs an 'azure' block with the deployment")
        if self.kind != "azure-openai" and self.azure is not None:
            raise ValueError("'azure' is only valid with kind 'azure-openai'")
        if self.kind != "anthropic" and self.anthropic is not None:
            raise ValueError("'anthropic' is only valid with kind 'anthropic'")
        return self

    @field_validator("base_url")
    @classmethod
    def _no_userinfo(cls, value: HttpUrl) -> HttpUrl:
        if value.username or value.password:
            # Said without echoing the URL: it holds a secret.
            raise ValueError(
                "base_url must not carry a user or password; reference the credential in "
                "'api_key' instead"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        found = header_problems(value)
        if found:
            raise ValueError("; ".join(found))
        return value


class Capabilities(Strict):
    """What a model can do; routing filters on these.

    Unset (null) means unknown: not filtered. Set ``false`` and requests needing it never reach
    the model (the operator always renders explicit values).
    """

    vision: bool | None = Field(default=None, description="Accepts image parts.")
    tools: bool | None = Field(default=None, description="Accepts tools (function calling).")
    json_schema: bool | None = Field(
        default=None, description="Honours response_format json_schema."
    )
    context_window: int | None = Field(
        default=None,
        gt=0,
        description="Prompt + completion tokens; unset: unknown (never filtered on it).",
    )
    endpoints: list[PassthroughEndpoint] = Field(
        default_factory=list,
        description="Other OpenAI endpoints it serves (images/generations, audio/transcriptions, "
        "audio/speech, moderations, rerank), passed through to it untouched; only "
        "OpenAI-compatible upstreams. Undeclared: those endpoints never reach it.",
    )


class Price(Strict):
    """USD per one million tokens."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    cached_input_per_mtok: float | None = Field(
        default=None, ge=0, description="Cache-read input tokens; unset: the input price."
    )
    reasoning_per_mtok: float | None = Field(
        default=None, ge=0, description="Reasoning output tokens; unset: the output price."
    )


class Model(Strict):
    """A model clients may name, served by one upstream."""

    name: Name = Field(description="The name clients send as `model`.")
    upstream: Name = Field(description="The upstream that serves it.")
    upstream_model: str | None = Field(
        default=None, description="Model id sent upstream; defaults to `name`."
    )
    capabilities: Capabilities = Field(default_factory=Capabilities)
    price: Price | None = Field(
        default=None,
        description="Unset: unknown, not free (see docs/routing.md for how strategies treat it).",
    )
    tier: str = Field(default="default", description="Quality tier, e.g. small or large.")

    @property
    def target(self) -> str:
        return self.upstream_model or self.name


class Server(Strict):
    """Gateway-wide settings."""

    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    edge: Edge = Field(default_factory=Edge, description="Edge limits and what clients are shown.")
    retry: Retry = Field(
        default_factory=Retry, description="Retries for requests naming a model directly."
    )
    mid_stream: MidStream = Field(
        default="continue",
        description="Mid-stream policy for requests naming a model directly (see routes).",
    )
    debug_decisions: int = Field(
        default=256, ge=0, le=100000, description="Recent decisions kept for /debug/decisions."
    )
    admin_token: CredentialRef | None = Field(
        default=None,
        description=(
            "Bearer token for /debug/*; without it those answer only loopback clients "
            "(kubectl port-forward, a sidecar)."
        ),
    )


class GatewayConfig(Strict):
    """The whole routing table, swapped atomically by the gateway."""

    version: Literal[1] = Field(description="Document version; this gateway reads 1.")
    server: Server = Field(default_factory=Server)
    upstreams: list[Upstream] = Field(min_length=1)
    models: list[Model] = Field(min_length=1)
    routes: list[Route] = Field(default_factory=list)
    tenancy: Tenancy | None = Field(
        default=None,
        description="Keys, tenants, limits and budgets; without it the gateway is keyless.",
    )

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        upstreams = _unique_names("upstream", [u.name for u in self.upstreams])
        models = _unique_names("model", [m.name for m in self.models])
        routes = _unique_names("route", [r.name for r in self.routes])
        clash = sorted(models & routes)
        if clash:
            raise ValueError(f"names used by both a model and a route: {clash}")
        for model in self.models:
            if model.upstream not in upstreams:
                raise ValueError(f"model {model.name!r}: unknown upstream {model.upstream!r}")
        tiers = {model.name: model.tier for model in self.models}
        for route in self.routes:
            missing = [c for c in route.candidates if c not in models]
            if route.shadow is not None and route.shadow.model not in models:
                missing.append(route.shadow.model)
            if missing:
                raise ValueError(f"route {route.name!r}: unknown models {missing}")
            if route.complexity is not None and route.complexity.tiers is not None:
                known = {t.tier for t in route.complexity.tiers}
                strays = sorted({tiers[c] for c in route.candidates} - known)
                if strays:
                    raise ValueError(
                        f"route {route.name!r}: candidate tiers {strays} are not in "
                        "complexity.tiers"
                    )
        if self.tenancy is not None:
            check_references(self.tenancy, routes, models)
        return self


def _unique_names(kind: str, names: list[str]) -> set[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {kind} name {name!r}")
        seen.add(name)
    return seen


class ConfigError(ValueError):
    """A GatewayConfig document that cannot be used; the message says what to fix."""


def parse(text: str | bytes, *, source: str = "<config>") -> GatewayConfig:
    """Parse YAML or JSON text into a validated GatewayConfig."""
    try:
        data: Any = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    version = data.get("version")
    if type(version) is not int or version != CONFIG_VERSION:  # True == 1 in Python
        raise ConfigError(
            f"{source}: unsupported version {data.get('version')!r}; "
            f"this gateway reads version {CONFIG_VERSION}"
        )
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        # Never pydantic's default text: it echoes input values, which may hold secrets.
        found = problems(exc, lambda loc: ".".join(str(p) for p in loc) or "config")
        raise ConfigError(f"{source}: {'; '.join(found)}") from None


def read(path: str | Path) -> bytes:
    """The raw bytes of a GatewayConfig file; ConfigError when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def load(path: str | Path) -> GatewayConfig:
    """Read and validate a GatewayConfig file (YAML or JSON)."""
    return parse(read(path), source=str(path))


def dump(config: GatewayConfig) -> str:
    """Serialise for a ConfigMap: JSON (a YAML subset), stable key order, defaults included."""
    return json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
