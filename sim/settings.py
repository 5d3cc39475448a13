"""Settings of one simulated vLLM server: served names, latency model, capacity, start-up faults.

Built by ``switchman.sim.cli`` from command-line flags, or directly by tests and the demo, and
passed to ``switchman.sim.server.create_app``. Immutable: run-time changes go through the fault
state (``switchman.sim.faults``), never through settings. Defaults are small so tests run fast.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from switchman.sim.faults import Faults


class SimSettings(BaseModel):
    """What one simulator serves and how it behaves. Times are in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(
        default="sim-model", min_length=1, description="model path (the card's root)"
    )
    served_model_names: tuple[str, ...] = Field(
        default=(), description="names clients may ask for; empty → just `model`"
    )
    max_model_len: int = Field(default=8192, ge=1, description="context length in tokens")
    output_tokens: int = Field(
        default=16, ge=1, description="natural answer length; max_tokens below it caps the answer"
    )
    ttft_s: float = Field(
        default=0.02, ge=0.0, description="time to first token, before prefill cost"
    )
    prefill_s_per_token: float = Field(
        default=0.00005, ge=0.0, description="prefill cost per prompt token not in the prefix cache"
    )
    itl_s: float = Field(default=0.005, ge=0.0, description="inter-token latency")
    max_num_seqs: int = Field(
        default=256, ge=1, description="requests running at once; others queue"
    )
    kv_cache_tokens: int = Field(default=65536, ge=1, description="KV-cache budget in tokens")
    block_size: int = Field(default=16, ge=1, description="prefix-cache block size in tokens")
    prefix_cache_blocks: int = Field(
        default=4096, ge=0, description="blocks the prefix cache remembers (LRU); 0 disables it"
    )
    embedding_dims: int = Field(default=8, ge=1, description="length of embedding vectors")
    record_requests: int = Field(
        default=100,
        ge=0,
        description="how many received requests /admin/requests keeps; 0 disables",
    )
    legacy_kv_metric: bool = Field(
        default=False,
        description="name the KV gauge vllm:gpu_cache_usage_perc, as vLLM before 0.9 did",
    )
    seed: int = Field(default=0, description="seed of the fault-injection random sequence")
    faults: Faults = Field(
        default_factory=lambda: Faults(), description="faults active from the start"
    )

    @property
    def served_names(self) -> tuple[str, ...]:
        """The names this server answers to; the first one labels metrics."""
        return self.served_model_names or (self.model,)
