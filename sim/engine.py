"""The simulated inference engine: admission scheduling, KV-cache budget and latency model.

A request becomes a ``Sequence``; entering it (``async with engine.sequence(...)``) waits in a
FIFO queue until fewer than ``max_num_seqs`` requests run and its KV reservation (prompt plus
``max_new_tokens``, capped at the budget) fits in ``kv_cache_tokens``; leaving it frees both and
admits whoever now fits, in arrival order. ``Sequence.generate`` sleeps for the next tokens:
the first costs ``ttft_s`` plus ``prefill_s_per_token`` for each prompt token the prefix cache
did not hold, later ones ``itl_s`` each. Running requests fill the KV cache with their prompt and
the tokens generated so far. The engine keeps cumulative counts that ``switchman.sim.metrics``
reads at scrape time, so the request path touches no metric objects. Called by
``switchman.sim.generation`` and ``switchman.sim.embeddings``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from collections.abc import Sequence as SequenceOf
from types import TracebackType

from switchman.sim.prefix_cache import PrefixCache, block_keys
from switchman.sim.settings import SimSettings


class Engine:
    """Admission, KV accounting and prefix cache of one simulated server."""

    def __init__(
        self,
        settings: SimSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.prefix_cache = PrefixCache(settings.block_size, settings.prefix_cache_blocks)
        self._waiting: deque[tuple[Sequence, asyncio.Future[None]]] = deque()
        self._reserved = 0
        self.num_running = 0
        self.kv_tokens_used = 0
        # Cumulative counts since start, in tokens (vLLM counts prefix-cache queries this way).
        self.prefix_cache_queries = 0
        self.prefix_cache_hits = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_cache_usage(self) -> float:
        """Fraction of the KV budget held by running requests, 0..1."""
        return min(1.0, self.kv_tokens_used / self.settings.kv_cache_tokens)

    def sequence(
        self, tokens: SequenceOf[str], max_new_tokens: int, *, cacheable: bool = True
    ) -> Sequence:
        """A request of ``tokens`` that will generate up to ``max_new_tokens``; enter it to run."""
        return Sequence(self, tokens, max_new_tokens, cacheable=cacheable)

    def _fits(self, need: int) -> bool:
        return (
            self.num_running < self.settings.max_num_seqs
            and self._reserved + need <= self.settings.kv_cache_tokens
        )

    async def _admit(self, seq: Sequence) -> None:
        if not self._waiting and self._fits(seq.need):
            self._start(seq)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, future)
        self._waiting.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(seq)  # admitted, but the caller went away before running
            else:
                if entry in self._waiting:  # else _wake already dropped it
                    self._waiting.remove(entry)
                self._wake()
            raise

    def _start(self, seq: Sequence) -> None:
        self.num_running += 1
        self._reserved += seq.need
        self.kv_tokens_used += seq.prompt_tokens
        self.prompt_tokens += seq.prompt_tokens
        if seq.keys:
            seq.cached_tokens = self.prefix_cache.lookup(seq.keys, seq.prompt_tokens)
        if seq.cacheable:
            self.prefix_cache_queries += seq.prompt_tokens
            self.prefix_cache_hits += seq.cached_tokens
        seq.admitted = True

    def _release(self, seq: Sequence) -> None:
        if not seq.admitted or seq.released:
            return
        seq.released = True
        self.num_running -= 1
        self._reserved -= seq.need
        self.kv_tokens_used -= seq.prompt_tokens + seq.generated
        self._wake()

    def _wake(self) -> None:
        waiting = self._waiting
        while waiting:
            seq, future = waiting[0]
            if future.done():  # cancelled while queued
                waiting.popleft()
                continue
            if not self._fits(seq.need):
                return
            waiting.popleft()
            self._start(seq)
            future.set_result(None)


class Sequence:
    """One request inside the engine: ``async with`` admits it, ``generate`` paces its tokens."""

    __slots__ = (
        "_engine",
        "admitted",
        "arrival",
        "cacheable",
        "cached_tokens",
        "first_token_at",
        "generated",
        "keys",
        "need",
        "prompt_tokens",
        "released",
    )

    def __init__(
        self, engine: Engine, tokens: SequenceOf[str], max_new_tokens: int, *, cacheable: bool
    ) -> None:
        settings = engine.settings
        self._engine = engine
        self.arrival = engine.clock()
        self.prompt_tokens = len(tokens)
        self.need = min(self.prompt_tokens + max_new_tokens, settings.kv_cache_tokens)
        self.cacheable = cacheable
        use_cache = cacheable and settings.prefix_cache_blocks > 0
        self.keys = block_keys(tokens, settings.block_size) if use_cache else []
        self.cached_tokens = 0
        self.generated = 0
        self.first_token_at: float | None = None
        self.admitted = False
        self.released = False

    async def __aenter__(self) -> Sequence:
        await self._engine._admit(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._engine._release(self)

    @property
    def ttft(self) -> float | None:
        """Seconds from arrival (queueing included) to the first token, once there is one."""
        return None if self.first_token_at is None else self.first_token_at - self.arrival

    def delay(self, count: int = 1) -> float:
        """How long the next ``count`` tokens take (``0`` on a fresh sequence: just the prefill)."""
        settings = self._engine.settings
        if self.generated:
            return count * settings.itl_s
        prefill = (self.prompt_tokens - self.cached_tokens) * settings.prefill_s_per_token
        return settings.ttft_s + prefill + max(count - 1, 0) * settings.itl_s

    async def generate(self, count: int = 1) -> None:
        """Wait for the next ``count`` tokens, then account them in the KV cache."""
        engine = self._engine
        delay = self.delay(count)
        if delay > 0:
            await engine.sleep(delay)
        if not self.generated:
            self.first_token_at = engine.clock()
            if self.keys:
                engine.prefix_cache.insert(self.keys)
        self.generated += count
        engine.kv_tokens_used += count
        engine.generation_tokens += count
