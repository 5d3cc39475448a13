"""Sustained concurrent load through the gateway, and what each client saw (the chaos figures).

Used by ``test_chaos``: ``Load(base_url, expected)`` runs ``concurrency`` workers, each sending
requests one after the other with the official ``openai`` SDK, alternating streamed (with
``include_usage``) and whole answers, until ``stop()`` or ``limit`` requests. Every backend of a
scenario answers the same deterministic text (``misbehaving.answer_text``), so each request's
outcome is exact:

- ``ok``: a complete answer equal to the expected text (a stream: content deltas joined, a
  finish reason, then the end of the stream);
- ``error``: one clean ``openai.APIError`` (what a client can handle);
- ``corrupt``: anything presented as success that is not the expected text (duplicated,
  spliced, truncated), or an exception that is not the SDK's clean error (a crashed parser);
- ``lost``: no answer within ``timeout`` seconds.

``Tally`` sums them into a scenario's figures, with which model served each ok request and
when (``time_back``: seconds from a recovery to the first request started after it that the
primary served).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import openai

MESSAGES: Any = [{"role": "user", "content": "Tell me the words."}]


@dataclass(slots=True)
class Result:
    kind: str  # ok | error | corrupt | lost
    stream: bool
    started: float
    ended: float
    model: str | None = None
    detail: str = ""


@dataclass
class Tally:
    """The results of one scenario's load."""

    results: list[Result] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.results if r.kind == kind)

    def details(self, kind: str) -> list[str]:
        return [r.detail for r in self.results if r.kind == kind][:5]

    def time_back(self, primary: str, since: float) -> float | None:
        """Seconds from ``since`` to the end of the first request started after it and served
        by ``primary``; None when none was."""
        served = [r.ended for r in self.results if r.model == primary and r.started >= since]
        return round(min(served) - since, 3) if served else None


class Load:
    """Concurrent clients of one route (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        expected: str,
        *,
        route: str = "chat",
        concurrency: int = 6,
        limit: int = 400,
        timeout: float = 20.0,
    ) -> None:
        self.expected = expected
        self.route = route
        self.limit = limit
        self.timeout = timeout
        self.tally = Tally()
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key="sk-chaos", max_retries=0, timeout=timeout
        )
        self._stopping = asyncio.Event()
        self._sent = 0
        self._workers = [asyncio.create_task(self._worker(i)) for i in range(concurrency)]

    async def stop(self) -> Tally:
        """Let the requests in flight finish (each is bounded by ``timeout``); the tally."""
        self._stopping.set()
        await asyncio.gather(*self._workers)
        await self._client.close()
        return self.tally

    async def _worker(self, index: int) -> None:
        stream = index % 2 == 0
        while not self._stopping.is_set() and self._sent < self.limit:
            self._sent += 1
            self.tally.results.append(await self.one(stream))
            stream = not stream

    async def one(self, stream: bool) -> Result:
        started = time.monotonic()
        result = Result("ok", stream, started, started)
        try:
            async with asyncio.timeout(self.timeout):
                if stream:
                    text, finished, result.model = await self._streamed()
                else:
                    text, finished, result.model = await self._whole()
            if not finished or text != self.expected:
                result.kind = "corrupt"
                result.detail = f"finished={finished} text={text[:80]!r}...{text[-40:]!r}"
        except TimeoutError:
            result.kind, result.detail = "lost", f"no answer within {self.timeout}s"
        except openai.APIError as exc:
            result.kind, result.detail = "error", f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # the SDK crashed on what it was sent: worse than an error
            result.kind, result.detail = "corrupt", f"{type(exc).__name__}: {exc}"[:300]
        result.ended = time.monotonic()
        return result

    async def _streamed(self) -> tuple[str, bool, str | None]:
        raw = await self._client.chat.completions.with_raw_response.create(
            model=self.route,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        finished = False
        async for chunk in raw.parse():
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                finished = finished or choice.finish_reason is not None
        return "".join(parts), finished, raw.headers.get("x-switchman-model")

    async def _whole(self) -> tuple[str, bool, str | None]:
        raw = await self._client.chat.completions.with_raw_response.create(
            model=self.route, messages=MESSAGES
        )
        answer = raw.parse()
        choice = answer.choices[0]
        text = choice.message.content or ""
        return text, choice.finish_reason is not None, raw.headers.get("x-switchman-model")
