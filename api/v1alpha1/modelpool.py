"""``ModelPool`` (short name ``mp``): the models a team serves, in-cluster with vLLM or external.

The operator renders each ``vllm`` model into a Deployment on GPU nodes, a headless Service, a
PodDisruptionBudget and (with ``autoscaling``) a HorizontalPodAutoscaler; ``external`` models
become gateway upstreams whose credentials come from a Secret. The CRD schema in ``crds/`` is
generated from these models (``switchman.api.v1alpha1.crdgen``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from switchman.api.v1alpha1.spec import (
    MODEL_NAME,
    Capabilities,
    Condition,
    Price,
    SecretKeyRef,
    Spec,
    cel,
)

DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"


class HuggingFaceSource(Spec):
    """A model repository on the Hugging Face Hub."""

    repo: str = Field(min_length=1, max_length=256, description="Repository id, e.g. org/name.")
    revision: str = Field(default="main", min_length=1, description="Branch, tag or commit.")


class PVCSource(Spec):
    """Weights already on a PersistentVolumeClaim."""

    claim_name: str = Field(min_length=1, max_length=253, description="The claim's name.")
    path: str = Field(default="/", pattern=r"^/", description="Directory inside the volume.")


class ModelSource(Spec):
    """Where the weights come from: exactly one of huggingFace, pvc or uri."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "(has(self.huggingFace) ? 1 : 0) + (has(self.pvc) ? 1 : 0) + "
                "(has(self.uri) ? 1 : 0) == 1",
                "set exactly one of huggingFace, pvc or uri",
            )
        )
    }

    hugging_face: HuggingFaceSource | None = Field(
        default=None, alias="huggingFace", description="A Hugging Face Hub repository."
    )
    pvc: PVCSource | None = Field(default=None, description="A PersistentVolumeClaim path.")
    uri: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9+.-]+://",
        description="Any URI vLLM can load (s3://, gs://, https://...).",
    )

    @model_validator(mode="after")
    def _one(self) -> ModelSource:
        if sum(x is not None for x in (self.hugging_face, self.pvc, self.uri)) != 1:
            raise ValueError("set exactly one of huggingFace, pvc or uri")
        return self


class Autoscaling(Spec):
    """A HorizontalPodAutoscaler on vLLM's queue depth (needs a metrics adapter)."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must be <= maxReplicas")
        )
    }

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target_queue_depth: float = Field(
        default=4.0, gt=0, description="vllm:num_requests_waiting per replica to aim for."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must be <= maxReplicas")
        return self


class GPU(Spec):
    """GPUs per replica and where they are."""

    count: int = Field(
        default=1, ge=0, le=16, description="nvidia.com/gpu per replica; tensor parallel size."
    )
    type: str | None = Field(
        default=None,
        description="GPU product label value (nvidia.com/gpu.product), e.g. NVIDIA-L4.",
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Pod tolerations; nvidia.com/gpu NoSchedule is added when count > 0.",
    )
    affinity: dict[str, Any] | None = Field(default=None, description="Pod affinity rules.")
    runtime_class_name: str | None = Field(default=None, description="RuntimeClass, e.g. nvidia.")


class LoRAAdapter(Spec):
    """A LoRA adapter served next to the base model."""

    name: str = Field(pattern=MODEL_NAME, description="Name clients send as model.")
    source: str = Field(min_length=1, description="Hub repo id or path of the adapter.")


class MultimodalLimits(Spec):
    """Most items of each kind one prompt may carry (vLLM's --limit-mm-per-prompt); a kind left
    unset keeps vLLM's default. Each allowed item reserves encoder memory at start-up."""

    image: int | None = Field(default=None, ge=0, le=256, description="Images per prompt.")
    video: int | None = Field(default=None, ge=0, le=64, description="Videos per prompt.")
    audio: int | None = Field(default=None, ge=0, le=64, description="Audio clips per prompt.")


class Engine(Spec):
    """vLLM engine arguments."""

    max_model_len: int | None = Field(default=None, ge=16, description="--max-model-len.")
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = Field(
        default="auto", description="--dtype."
    )
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="--gpu-memory-utilization."
    )
    enable_prefix_caching: bool = Field(default=True, description="--enable-prefix-caching.")
    quantization: str | None = Field(default=None, description="--quantization (awq, gptq...).")
    lora_adapters: list[LoRAAdapter] = Field(
        default_factory=list, description="--enable-lora with --lora-modules."
    )
    tokenizer_mode: Literal["auto", "slow", "mistral", "custom"] | None = Field(
        default=None, description="--tokenizer-mode; mistral for Mistral's own (tekken) tokenizer."
    )
    config_format: Literal["auto", "hf", "mistral"] | None = Field(
        default=None, description="--config-format; mistral reads Mistral's params.json."
    )
    load_format: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=32,
        description="--load-format, e.g. mistral (consolidated weights), safetensors, gguf.",
    )
    tool_call_parser: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=32,
        description="--enable-auto-tool-choice with --tool-call-parser (mistral, hermes, "
        "llama3_json...): what makes OpenAI tools work with the model.",
    )
    limit_mm_per_prompt: MultimodalLimits | None = Field(
        default=None, description="--limit-mm-per-prompt: images, videos, audio per prompt."
    )
    extra_args: list[str] = Field(default_factory=list, description="Appended to vLLM's args.")


class ModelCache(Spec):
    """Where downloaded weights are kept: an existing claim, a new one of a size, or emptyDir."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            ("!(has(self.claimName) && has(self.size))", "set claimName or size, not both")
        )
    }

    claim_name: str | None = Field(default=None, description="Existing PVC to mount.")
    size: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$",
        description="emptyDir size limit when no claim is given, e.g. 50Gi.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> ModelCache:
        if self.claim_name is not None and self.size is not None:
            raise ValueError("set claimName or size, not both")
        return self


class EnvVar(Spec):
    """A plain environment variable (use Secrets for secrets)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Variable name.")
    value: str = Field(default="", description="Value.")


class VLLM(Spec):
    """A model served in the cluster by vLLM's OpenAI server."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "!(has(self.autoscaling) && has(self.replicas))",
                "set replicas or autoscaling, not both",
            )
        )
    }

    source: ModelSource = Field(description="Where the weights come from.")
    image: str = Field(default=DEFAULT_VLLM_IMAGE, description="vLLM OpenAI server image.")
    replicas: int | None = Field(default=None, ge=0, le=1000, description="Fixed replicas.")
    autoscaling: Autoscaling | None = Field(default=None, description="Scale on queue depth.")
    gpu: GPU = Field(default_factory=GPU, description="GPUs and their placement.")
    resources: dict[str, Any] = Field(
        default_factory=dict, description="Container resources (requests/limits) besides GPUs."
    )
    engine: Engine = Field(default_factory=Engine, description="vLLM engine arguments.")
    cache: ModelCache = Field(default_factory=ModelCache, description="Weights cache volume.")
    hf_token_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding HF_TOKEN for gated models."
    )
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment.")

    @model_validator(mode="after")
    def _scale(self) -> VLLM:
        if self.autoscaling is not None and self.replicas is not None:
            raise ValueError("set replicas or autoscaling, not both")
        return self


Provider = Literal[
    "openai", "azure-openai", "anthropic", "mistral", "hf-router", "openai-compatible"
]


class AzureOpenAI(Spec):
    """Azure OpenAI specifics."""

    deployment: str = Field(min_length=1, description="Deployment name in the Azure resource.")
    api_version: str = Field(default="2024-10-21", description="The api-version query value.")


class External(Spec):
    """A model served by a provider's API."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "self.provider != 'azure-openai' || has(self.azure)",
                "provider azure-openai needs azure.deployment",
            ),
            (
                "self.provider == 'azure-openai' || !has(self.azure)",
                "azure is only for provider azure-openai",
            ),
            (
                "!(self.provider in ['openai-compatible', 'azure-openai']) || has(self.baseURL)",
                "providers openai-compatible and azure-openai need baseURL",
            ),
        )
    }

    provider: Provider = Field(description="Wire protocol and defaults.")
    base_url: str | None = Field(
        default=None,
        alias="baseURL",
        pattern=r"^https?://[^@/]+(/.*)?$",
        description="API base URL; defaults per provider (Azure: the resource URL).",
    )
    model: str | None = Field(default=None, description="Provider's model id; default: name.")
    azure: AzureOpenAI | None = Field(default=None, description="Azure OpenAI deployment.")
    credentials_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API key."
    )

    @model_validator(mode="after")
    def _needs(self) -> External:
        if self.provider == "azure-openai" and self.azure is None:
            raise ValueError("provider azure-openai needs azure.deployment")
        if self.provider != "azure-openai" and self.azure is not None:
            raise ValueError("azure is only for provider azure-openai")
        if self.provider in ("openai-compatible", "azure-openai") and self.base_url is None:
            raise ValueError("providers openai-compatible and azure-openai need baseURL")
        return self


class PoolModel(Spec):
    """One model: exactly one of vllm or external."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            ("has(self.vllm) != has(self.external)", "set exactly one of vllm or external")
        )
    }

    name: str = Field(
        min_length=1, max_length=63, pattern=MODEL_NAME, description="Name clients send."
    )
    vllm: VLLM | None = Field(default=None, description="Served in the cluster by vLLM.")
    external: External | None = Field(default=None, description="Served by a provider.")
    capabilities: Capabilities = Field(default_factory=Capabilities)
    price: Price | None = Field(default=None, description="Unset: unpriced (unknown, not free).")
    tier: str = Field(default="default", min_length=1, max_length=63, description="Quality tier.")

    @model_validator(mode="after")
    def _one_kind(self) -> PoolModel:
        if (self.vllm is None) == (self.external is None):
            raise ValueError("set exactly one of vllm or external")
        return self


class ModelPoolSpec(Spec):
    """The models of one pool."""

    models: list[PoolModel] = Field(
        min_length=1,
        max_length=64,
        description="Models, unique by name.",
        # Atomic with a CEL uniqueness rule, not a list-map: server-side apply of a list-map
        # with a duplicate key fails before validation, as an API-server 500.
        json_schema_extra={
            "x-kubernetes-list-type": "atomic",
            **cel(
                (
                    "self.all(a, self.exists_one(b, b.name == a.name))",
                    "model names must be unique within a pool",
                )
            ),
        },
    )

    @model_validator(mode="after")
    def _unique(self) -> ModelPoolSpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique within a pool")
        return self


class ModelStatus(Spec):
    """Per model: what serves it and how ready it is."""

    name: str
    kind: Literal["vllm", "external"]
    ready_replicas: int = 0
    desired_replicas: int = 0
    endpoint: str | None = None


class ModelPoolStatus(Spec):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    models: list[ModelStatus] = Field(default_factory=list)
