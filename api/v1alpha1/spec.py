"""Shared spec parts of the ``switchman.dev/v1alpha1`` custom resources: the strict ``Spec`` base,
the group and version, Secret references, capabilities, prices and status conditions.

Used by ``modelpool`` and ``routingpolicy``; ``crdgen`` turns the models into CRD schemas.
Field names are the Kubernetes API's camelCase (pydantic aliases), every field has a description
(it becomes the schema's, shown by ``kubectl explain``), and cross-field rules that a schema can
say are attached as CEL ``x-kubernetes-validations`` via ``cel``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from switchman.api.gatewayconfig import PassthroughEndpoint

GROUP = "switchman.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules: (expression, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": msg} for rule, msg in rules]}


class Spec(BaseModel):
    """Base of every spec object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class SecretKeyRef(Spec):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class Capabilities(Spec):
    """What a model can do; the gateway filters on these (requests needing a capability the
    model lacks never reach it)."""

    vision: bool = Field(default=False, description="Accepts image parts.")
    tools: bool = Field(default=False, description="Accepts tools (function calling).")
    json_schema: bool = Field(default=False, description="Honours response_format json_schema.")
    context_window: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Prompt plus completion tokens. Unset: unknown (never filtered on), or vLLM's "
        "maxModelLen for an in-cluster model.",
    )
    endpoints: list[PassthroughEndpoint] = Field(
        default_factory=list,
        max_length=5,
        description="Other OpenAI endpoints the model serves, passed through to it untouched "
        "(images/generations, audio/transcriptions, audio/speech, moderations, rerank).",
    )


class Price(Spec):
    """USD per one million tokens; the gateway's cost scorer and spend metrics use it. A model
    without a price is unpriced (unknown, not free): ``cheapest`` ranks it after priced ones and
    its spend is not billed."""

    input_per_m_tok: float = Field(
        ge=0, alias="inputPerMTok", description="USD per 1M input tokens."
    )
    output_per_m_tok: float = Field(
        ge=0, alias="outputPerMTok", description="USD per 1M output tokens."
    )


class Condition(Spec):
    """A standard Kubernetes status condition."""

    type: str = Field(description="Ready, Progressing or Degraded.")
    status: Literal["True", "False", "Unknown"] = Field(description="Condition status.")
    reason: str = Field(description="One CamelCase word.")
    message: str = Field(default="", description="What happened and what to do next.")
    last_transition_time: str | None = Field(default=None, description="RFC 3339 time.")
    observed_generation: int | None = Field(default=None, description="Generation seen.")
