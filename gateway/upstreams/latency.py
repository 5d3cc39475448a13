"""Per-upstream latency estimates: EWMAs of time to first token and of time per output token.

Owned by each ``UpstreamClient`` (so they survive hot reloads with the client) and fed by the
failover loop (``serve.failover``) after every successful attempt; read by the ``fastest`` scorer in
``routing``.
"""

from __future__ import annotations


class Latency:
    """Exponentially weighted moving averages; None until the first sample."""

    __slots__ = ("alpha", "per_token", "ttft")

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.ttft: float | None = None
        self.per_token: float | None = None

    def _mix(self, old: float | None, sample: float) -> float:
        return sample if old is None else old + self.alpha * (sample - old)

    def observe_stream(self, ttft: float, duration: float, tokens: int | None) -> None:
        """A streamed answer: first chunk after ``ttft`` s, done after ``duration`` s."""
        self.ttft = self._mix(self.ttft, max(ttft, 0.0))
        if tokens and tokens > 1 and duration > ttft:
            self.per_token = self._mix(self.per_token, (duration - ttft) / (tokens - 1))

    def observe_unary(self, duration: float, tokens: int | None) -> None:
        """A whole answer: only the per-token time is learnt (TTFT is hidden in ``duration``)."""
        if tokens and tokens > 0:
            ttft = self.ttft or 0.0
            self.per_token = self._mix(self.per_token, max(duration - ttft, 0.0) / tokens)
        elif self.ttft is None:
            self.ttft = duration

    def estimate(self, output_tokens: int) -> float | None:
        """Seconds to answer with ``output_tokens`` tokens, or None before any sample."""
        if self.ttft is None and self.per_token is None:
            return None
        return (self.ttft or 0.0) + (self.per_token or 0.0) * output_tokens
