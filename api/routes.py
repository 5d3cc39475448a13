"""GatewayConfig routes: a virtual model name, its candidates, and how one is chosen per request.

Part of the GatewayConfig contract (``gatewayconfig`` holds the list). A route filters its
candidates (capabilities the request needs, context window, health), scores the rest with
weighted scorers, and tries them best first. ``strategy`` names a preset of scorer weights so
users need not learn them; ``scorers`` overrides single weights.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from switchman.api.resilience import Retry
from switchman.api.validation import Strict

Name = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"),
]

# The choice lists both planes share: RoutingPolicy (``v1alpha1.routingpolicy``) imports them.
Strategy = Literal["priority", "cheapest", "fastest", "least-loaded", "complexity", "weighted"]
MidStream = Literal["continue", "terminate"]
OnContentFilter = Literal["fail", "next"]
QualityMode = Literal["quality", "balanced", "cost"]  # the classifier's thresholds, by name


class Scorers(Strict):
    """Weights of the scorers (each scores a candidate in [0, 1]); unset ones keep the preset."""

    cost: float | None = Field(default=None, ge=0, description="Price x estimated tokens.")
    latency: float | None = Field(
        default=None, ge=0, description="EWMA time to first token plus per-token time."
    )
    load: float | None = Field(
        default=None, ge=0, description="In-flight requests, vLLM queue depth and KV-cache use."
    )
    quality: float | None = Field(
        default=None, ge=0, description="The model's tier against the prompt's complexity."
    )
    preference: float | None = Field(
        default=None, ge=0, description="The route's explicit per-candidate preference."
    )
    priority: float | None = Field(
        default=None, ge=0, description="Earlier in the candidate list scores higher."
    )


class Tier(Strict):
    """Prompts scoring at least ``min_complexity`` want this tier (the highest such one)."""

    tier: str = Field(min_length=1)
    min_complexity: float = Field(ge=0, le=1)


class Complexity(Strict):
    """How the classifier's score picks a tier: a quality mode, or explicit thresholds.

    Without ``tiers`` the route runs a quality mode: the candidates' lowest tier below the
    mode's threshold, their highest at or above it (tiers between, if any, spread evenly below
    it). ``quality`` sends the most to the top tier, ``cost`` the least; the thresholds come
    from the weights file (``switchman classifier calibrate`` fits them to your own labels).
    """

    mode: QualityMode | None = Field(
        default=None,
        description=(
            "quality | balanced | cost: which of the weights file's thresholds sends a prompt "
            "to the top tier. Default balanced; not with tiers."
        ),
    )
    max_large_percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description=(
            "Send at most this percent of requests to the top tier: the threshold rises to the "
            "matching percentile of this gateway process's recent scores on the route."
        ),
    )
    window: int = Field(
        default=1000,
        ge=50,
        le=100_000,
        description="Recent scores (per gateway process) that max_large_percent is taken over.",
    )
    weights: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Path of a weights file (switchman classifier calibrate) for this route; default: "
            "the classifier packaged with the gateway."
        ),
    )
    tiers: list[Tier] | None = Field(
        default=None, min_length=1, description="Explicit thresholds, ascending from 0."
    )

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, value: list[Tier] | None) -> list[Tier] | None:
        if value is None:
            return value
        if value[0].min_complexity != 0:
            raise ValueError("the first tier must start at min_complexity 0")
        for lower, upper in pairwise(value):
            if upper.min_complexity <= lower.min_complexity:
                raise ValueError("tiers must have strictly ascending min_complexity")
        names = [t.tier for t in value]
        if len(set(names)) != len(names):
            raise ValueError("each tier may appear once")
        return value

    @model_validator(mode="after")
    def _mode_or_tiers(self) -> Complexity:
        if self.tiers is not None and (self.mode is not None or self.max_large_percent):
            raise ValueError("tiers are explicit thresholds: not with mode or max_large_percent")
        return self


class Guard(Strict):
    """When a lower tier's non-streamed answer is escalated to a higher tier (a cascade).

    Checked on each answer from a model whose tier is below a later candidate's; the first
    check that fires escalates. Streams only with ``hold_stream_chunks`` (refusal, empty).
    """

    min_mean_logprob: float | None = Field(
        default=None,
        le=0,
        description=(
            "Escalate when the mean token log-probability of the answer is below this (only "
            "when the upstream returns logprobs)."
        ),
    )
    request_logprobs: bool = Field(
        default=False,
        description="Ask guarded attempts for logprobs (logprobs: true) when the client did not.",
    )
    empty: bool = Field(default=True, description="Escalate an empty answer (no text, no tools).")
    refusal: bool = Field(default=True, description="Escalate a refusal.")
    truncated: bool = Field(
        default=True,
        description="Escalate an answer cut at the length limit the client did not set.",
    )
    invalid_json: bool = Field(
        default=True,
        description="Escalate invalid JSON answering a json_object/json_schema request.",
    )
    hold_stream_chunks: int = Field(
        default=0,
        ge=0,
        le=256,
        description=(
            "Streams: hold this many chunks before sending anything and escalate a refusal or "
            "an empty answer among them (0: streams are not guarded)."
        ),
    )


class Shadow(Strict):
    """Mirror a share of requests to another model; its answer is recorded and discarded."""

    model: Name
    percent: float = Field(gt=0, le=100)
    max_in_flight: int = Field(
        default=32, ge=1, le=10000, description="Mirrors beyond this are skipped, not queued."
    )


class Route(Strict):
    """A virtual model name that resolves to one of several models.

    ``candidates`` is the allow-list and the fallback order: no other model serves this route.
    """

    name: Name
    candidates: list[Name] = Field(min_length=1, description="Model names, most preferred first.")
    strategy: Strategy = Field(default="priority", description="Preset of scorer weights.")
    scorers: Scorers = Field(default_factory=Scorers, description="Override preset weights.")
    split: dict[Name, float] = Field(
        default_factory=dict,
        description="strategy weighted: percent of requests each candidate serves first.",
    )
    preference: dict[Name, float] = Field(
        default_factory=dict, description="Explicit per-candidate preference in [0, 1]."
    )
    complexity: Complexity | None = Field(
        default=None,
        description=(
            "Quality mode or tier thresholds; strategy complexity without it runs the "
            "balanced mode."
        ),
    )
    shadow: Shadow | None = None
    retry: Retry = Field(default_factory=Retry)
    mid_stream: MidStream = Field(
        default="continue",
        description=(
            "After tokens reached the client and the upstream dies: continue the same stream "
            "from the next candidate, or end it with an error event."
        ),
    )
    on_content_filter: OnContentFilter = Field(
        default="fail", description="A content-filter refusal: answer it, or try the next model."
    )
    guard: Guard | None = Field(
        default=None,
        description=(
            "Quality guard (cascade): a non-streamed answer from a lower tier that shows low "
            "confidence is escalated to the next candidate of a higher tier."
        ),
    )

    @field_validator("candidates")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("candidates must be unique")
        return value

    @field_validator("preference")
    @classmethod
    def _unit(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, v in value.items() if not 0 <= v <= 1)
        if bad:
            raise ValueError(f"preference values must be in [0, 1]: {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        members = set(self.candidates)
        for field, names in (("split", self.split), ("preference", self.preference)):
            strangers = sorted(set(names) - members)
            if strangers:
                raise ValueError(f"{field} names models that are not candidates: {strangers}")
        if self.strategy == "weighted":
            if not self.split:
                raise ValueError("strategy weighted needs 'split' (percent per candidate)")
            if any(v < 0 for v in self.split.values()) or sum(self.split.values()) <= 0:
                raise ValueError("split values must be >= 0 and not all 0")
        elif self.split:
            raise ValueError("'split' is only used by strategy weighted")
        if self.shadow is not None and self.shadow.model in members:
            raise ValueError("the shadow model must not be a candidate of the same route")
        return self
