"""The retry and failover loop (``serve.failover.Walk``) with plain fakes: no sockets, no servers.

The attempt functions (``attempt.unary`` / ``attempt.stream``) are replaced by a script per model;
replicas record every breaker call; the client is a recorder of what was committed and written.
Each row is a failure class x streaming or not x the failing model being the last candidate or
not, and says the attempts made (model per attempt), the breaker calls, and what the client got:
a whole answer from a model, an SSE stream (its writes, then ``[DONE]`` or one error event), or
an error raised before anything was sent (the error middleware's to answer).

Plan: ``a`` then ``b`` (``a`` not last), or ``a`` alone (last). Each upstream has one replica;
``per_candidate`` 2, ``max_attempts`` 3, no backoff. The failing model fails every attempt the
same way; ``b`` answers. Rows beyond the matrix cover a cut stream (continued on the next model,
or on the same one again when it is the last), ``mid_stream: terminate``, a continuation target
refusing its first mechanism (the next mechanism on the same model) or every mechanism (the
client's error event is the original break, never the refusal), an unverifiable join (stop at
once), a refused admission (circuit open: no attempt, no outcome reported) and the lease's
exactly-one rule when the attempt is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from switchman.api.gatewayconfig import Balance, Capabilities, Model
from switchman.api.resilience import Retry
from switchman.gateway.errors import (
    GatewayError,
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchman.gateway.providers.exchange import ResponseInfo
from switchman.gateway.routing.table import Plan
from switchman.gateway.serve import failover
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.backoff import RetryBudget
from switchman.gateway.serve.continuation import Sent
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.failures import Failure
from switchman.gateway.serve.lease import Lease
from switchman.gateway.serve.relay import Cut
from switchman.gateway.serve.request import REQUEST_ID, parse
from switchman.gateway.telemetry.metrics import Metrics

# --- fakes ------------------------------------------------------------------------------------


class Replica:
    """One replica: records the breaker calls the loop makes on it."""

    def __init__(self, name: str, calls: list[tuple[Any, ...]], *, admits: bool = True) -> None:
        self.address = self.base = name
        self.calls = calls
        self.admits = admits
        self.inflight = 0

    def admit(self, model: str, *, force: bool = False) -> bool:
        self.calls.append(("admit", self.address))
        return self.admits

    def succeeded(self, model: str) -> None:
        self.calls.append(("succeeded", self.address))

    def failed(self, model: str, blame: str, hold_s: float | None = None) -> None:
        self.calls.append(("failed", self.address, blame))

    def release(self, model: str) -> None:
        self.calls.append(("release", self.address))


class Replicas:
    def __init__(self, replicas: list[Replica]) -> None:
        self.endpoints = replicas

    def pick(
        self, key: Any, exclude: Any = (), *, model: str | None = None, panic: bool = False
    ) -> Replica | None:
        return next((r for r in self.endpoints if r not in exclude), None)

    def served(self, endpoint: Replica, key: Any) -> None:
        pass


def upstream(name: str, calls: list[tuple[Any, ...]], continuation: str | None = None) -> Any:
    return SimpleNamespace(
        name=name,
        problem=None,
        endpoint=name,
        spec=SimpleNamespace(kind="openai", continuation=continuation, balance=Balance()),
        endpoints=Replicas([Replica(f"{name}-1", calls)]),
        provider=SimpleNamespace(prepare=lambda op, body, model, stream: body),
        latency=SimpleNamespace(observe_unary=lambda *a: None, observe_stream=lambda *a: None),
    )


class Observation:
    """The per-request observation, as far as the loop calls it."""

    inter_chunk_s: float | None = None

    def attempt(self, *args: Any) -> None: ...

    def attempt_failed(self, *args: Any) -> None: ...

    def moved_on(self, *args: Any) -> None: ...

    def attempt_ended(self, *args: Any) -> None: ...

    def first_chunk(self, *args: Any) -> None: ...


@dataclass
class Client:
    """Stands in for ``downstream.ClientStream``: what the client was sent, in order."""

    recorder: Any
    got: list[Any] = field(default_factory=list)
    response: web.StreamResponse | None = None
    ended: bool = False
    gaps: list[float] = field(default_factory=list)
    wants_usage: bool = False

    @property
    def committed(self) -> bool:
        return self.response is not None

    def native(self, provider: Any) -> bool:
        return False

    async def commit(self, headers: dict[str, str]) -> None:
        self.response = web.StreamResponse()
        self.got.append("commit")

    async def write(self, data: bytes) -> None:
        self.got.append(json.loads(data.removeprefix(b"data: "))["choices"][0]["delta"]["content"])
        if self.recorder is not None:
            self.recorder.add(data)

    async def finish(self, tail: bytes) -> str:
        assert not self.ended, "a stream ended twice"
        self.ended = True
        self.got.append("[DONE]")
        return "ok"

    async def fail(self, reason: str, error: GatewayError) -> str:
        assert not self.ended, "a stream ended twice"
        self.ended = True
        self.got.append(("error", error.message))
        return reason

    def whole(self, payload: bytes, headers: dict[str, str]) -> web.Response:
        return web.Response(body=payload)


def chunk(text: str) -> bytes:
    payload = {"id": "c", "choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


# What an attempt does: "ok", "cut" (commit, write, break), set an event and hang (until
# cancelled), or raise the exception given.
Act = str | BaseException | asyncio.Event


class Script:
    """The attempt functions, scripted per model; records each attempt (model, mechanism)."""

    def __init__(self, acts: dict[str, list[Act]]) -> None:
        self.acts = acts
        self.attempts: list[str] = []

    def _next(self, target: Any, resume: Any = None) -> Act:
        name = target.model.name
        self.attempts.append(name if resume is None else f"{name}+{resume[1]}")
        acts = self.acts[name]
        act = acts.pop(0) if len(acts) > 1 else acts[0]
        if isinstance(act, BaseException):
            raise act
        return act

    async def unary(
        self,
        metrics: Any,
        target: Any,
        op: Any,
        call: Any,
        headers: Any,
        native: bool = False,
        *,
        deadlines: Any,
    ) -> Any:
        act = self._next(target)
        if isinstance(act, asyncio.Event):
            act.set()
            await asyncio.sleep(3600)
        return json.dumps({"model": target.model.name}).encode(), ResponseInfo()

    async def stream(
        self,
        metrics: Any,
        target: Any,
        op: Any,
        call: Any,
        headers: Any,
        client: Client,
        resume: tuple[Sent, str] | None,
        commit: Any,
        hold: Any = None,
        *,
        deadlines: Any,
    ) -> Any:
        act = self._next(target, resume)
        if not client.committed:
            await client.commit(commit())
        await client.write(chunk(f"{target.model.name}-text "))
        if act == "cut":
            raise Cut("stream_broken", UpstreamUnavailable(f"{target.model.name} broke off"))
        return await client.finish(b"data: [DONE]\n\n"), ResponseInfo(), 0.0


def model(name: str, window: int) -> Model:
    return Model(name=name, upstream=name, capabilities=Capabilities(context_window=window))


@dataclass
class Result:
    attempts: list[str]
    calls: list[tuple[Any, ...]]
    got: Any  # the whole answer's model, the stream's events, or the raised error's class


async def walk(
    acts: dict[str, list[Act]],
    *,
    stream: bool,
    order: tuple[str, ...] = ("a", "b"),
    mid_stream: str = "continue",
    continuation: str | None = None,
    calls: list[tuple[Any, ...]] | None = None,
    monkeypatch: pytest.MonkeyPatch,
) -> Result:
    calls = [] if calls is None else calls
    script = Script(acts)
    monkeypatch.setattr(failover.forward, "unary", script.unary)
    monkeypatch.setattr(failover.forward, "stream", script.stream)
    models = {"a": model("a", 8192), "b": model("b", 32768)}
    upstreams = {"a": upstream("a", calls), "b": upstream("b", calls, continuation)}
    body = {"model": "r", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    request = _Request({REQUEST_ID: "r1"})
    w = failover.Walk(
        metrics=Metrics(),
        rng=random.Random(1),
        budget=RetryBudget(0.2, 5.0),
        policy=Retry(per_candidate=2, max_attempts=3, backoff_base_s=0, backoff_max_s=0),
        request=request,  # type: ignore[arg-type]
        runtime=SimpleNamespace(  # type: ignore[arg-type]
            upstreams=upstreams,
            table=SimpleNamespace(models=models),
            config=SimpleNamespace(server=SimpleNamespace(mid_stream=mid_stream)),
        ),
        creq=parse("chat", json.dumps(body).encode()),
        plan=Plan("r", "priority", [models[n] for n in order], "", [], None),
        decision=Decision("r", "priority", len(order)),
        obs=Observation(),  # type: ignore[arg-type]
        deadlines=Deadlines(),
    )
    client = Client(w.transcript)
    w.client = client  # type: ignore[assignment]
    try:
        response, _ = await w.run()
    except GatewayError as exc:
        assert not client.got, "an error raised after the stream was committed"
        return Result(script.attempts, calls, type(exc))
    if stream:
        return Result(script.attempts, calls, client.got)
    assert isinstance(response, web.Response)
    assert response.body is not None
    return Result(script.attempts, calls, json.loads(response.body)["model"])  # type: ignore[arg-type]


class _Request(dict[Any, Any]):
    headers: dict[str, str] = {}


# --- the matrix ---------------------------------------------------------------------------------


def unreachable() -> Failure:
    return Failure("unreachable", UpstreamUnavailable("a is unreachable"))


def status_5xx() -> Failure:
    return Failure("status_5xx", UpstreamUnavailable("a answered 503"))


def timeout() -> Failure:
    return Failure("timeout", UpstreamTimeout("a sent nothing"))


def rate_limited() -> Failure:
    return Failure("rate_limited", RateLimited("a is limited"), scope="model", retry_after=0.0)


def context_length() -> Failure:
    rejected = UpstreamRejected(400, {"error": {"message": "context length exceeded"}})
    return Failure("context_length", rejected, scope="context")


def content_filter() -> Failure:
    rejected = UpstreamRejected(400, {"error": {"message": "filtered", "code": "content_filter"}})
    return Failure("content_filter", rejected, scope="content")


def rejected() -> UpstreamRejected:
    return UpstreamRejected(400, {"error": {"message": "bad temperature"}})


A1, B1 = "a-1", "b-1"
B_WHOLE = ["commit", "b-text ", "[DONE]"]  # what a stream served whole by b shows the client

# failure, last, attempts, breaker calls, what the client got (whole: the serving model; stream:
# the same attempts and calls, with B_WHOLE for "b", and the same error class when raised).
MATRIX: list[tuple[Any, bool, list[str], list[tuple[Any, ...]], Any]] = [
    (
        unreachable,
        False,
        ["a", "b"],
        [("admit", A1), ("failed", A1, "replica"), ("admit", B1), ("succeeded", B1)],
        "b",
    ),
    (
        unreachable,
        True,
        ["a", "a"],
        [("admit", A1), ("failed", A1, "replica")] * 2,
        UpstreamUnavailable,
    ),
    (
        status_5xx,
        False,
        ["a", "b"],
        [("admit", A1), ("failed", A1, "model"), ("admit", B1), ("succeeded", B1)],
        "b",
    ),
    (
        status_5xx,
        True,
        ["a", "a"],
        [("admit", A1), ("failed", A1, "model")] * 2,
        UpstreamUnavailable,
    ),
    (
        timeout,
        False,
        ["a", "b"],
        [("admit", A1), ("failed", A1, "replica"), ("admit", B1), ("succeeded", B1)],
        "b",
    ),
    (timeout, True, ["a", "a"], [("admit", A1), ("failed", A1, "replica")] * 2, UpstreamTimeout),
    (
        rate_limited,
        False,
        ["a", "b"],
        [("admit", A1), ("failed", A1, "model"), ("admit", B1), ("succeeded", B1)],
        "b",
    ),
    # The last candidate's short Retry-After is waited out once, then the 429 goes back.
    (rate_limited, True, ["a", "a"], [("admit", A1), ("failed", A1, "model")] * 2, RateLimited),
    (
        context_length,
        False,
        ["a", "b"],  # b's window is larger
        [("admit", A1), ("failed", A1, "none"), ("admit", B1), ("succeeded", B1)],
        "b",
    ),
    (context_length, True, ["a"], [("admit", A1), ("failed", A1, "none")], UpstreamRejected),
    # Without a route that allows the next model, a content filter's refusal is the answer.
    (content_filter, False, ["a"], [("admit", A1), ("failed", A1, "none")], UpstreamRejected),
    (content_filter, True, ["a"], [("admit", A1), ("failed", A1, "none")], UpstreamRejected),
    (rejected, False, ["a"], [("admit", A1), ("succeeded", A1)], UpstreamRejected),
    (rejected, True, ["a"], [("admit", A1), ("succeeded", A1)], UpstreamRejected),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("failure", "last", "attempts", "calls", "got"),
    MATRIX,
    ids=[f"{row[0].__name__}-{'last' if row[1] else 'not_last'}" for row in MATRIX],
)
async def test_a_failure_before_anything_was_sent(
    monkeypatch: pytest.MonkeyPatch,
    failure: Any,
    last: bool,
    attempts: list[str],
    calls: list[tuple[Any, ...]],
    got: Any,
    stream: bool,
) -> None:
    order = ("a",) if last else ("a", "b")
    result = await walk(
        {"a": [failure()], "b": ["ok"]}, stream=stream, order=order, monkeypatch=monkeypatch
    )

    assert result.attempts == attempts
    assert result.calls == calls
    if stream and got == "b":
        got = B_WHOLE
    assert result.got == got


# --- after the stream was committed -------------------------------------------------------------


async def test_a_cut_stream_is_continued_on_the_next_model(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await walk({"a": ["cut"], "b": ["ok"]}, stream=True, monkeypatch=monkeypatch)

    assert result.attempts == ["a", "b+instruct"]
    assert result.calls == [
        ("admit", A1),
        ("failed", A1, "replica"),
        ("admit", B1),
        ("succeeded", B1),
    ]
    assert result.got == ["commit", "a-text ", "b-text ", "[DONE]"]


async def test_a_cut_stream_of_the_last_model_is_continued_on_it_again_then_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await walk({"a": ["cut"]}, stream=True, order=("a",), monkeypatch=monkeypatch)

    assert result.attempts == ["a", "a+instruct"]
    assert result.calls == [("admit", A1), ("failed", A1, "replica")] * 2
    assert result.got == ["commit", "a-text ", "a-text ", ("error", "a broke off")]


async def test_mid_stream_terminate_ends_a_cut_stream_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await walk(
        {"a": ["cut"], "b": ["ok"]}, stream=True, mid_stream="terminate", monkeypatch=monkeypatch
    )

    assert result.attempts == ["a"]
    assert result.calls == [("admit", A1), ("failed", A1, "replica")]
    assert result.got == ["commit", "a-text ", ("error", "a broke off")]


def refused() -> Failure:
    error = UpstreamUnavailable("b refused to continue the stream (400)")
    return Failure("continuation_rejected", error, scope="continuation")


async def test_a_refused_mechanism_is_followed_by_the_next_one_on_the_same_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await walk(
        {"a": ["cut"], "b": [refused(), "ok"]},
        stream=True,
        continuation="vllm",
        monkeypatch=monkeypatch,
    )

    assert result.attempts == ["a", "b+vllm", "b+instruct"]
    assert result.calls[2:] == [
        ("admit", B1),
        ("failed", B1, "none"),
        ("admit", B1),
        ("succeeded", B1),
    ]
    assert result.got == ["commit", "a-text ", "b-text ", "[DONE]"]


async def test_a_refusal_never_masks_the_break_nor_becomes_a_second_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await walk({"a": ["cut"], "b": [refused()]}, stream=True, monkeypatch=monkeypatch)

    assert result.attempts == ["a", "b+instruct"]  # b has no other mechanism
    assert result.got == ["commit", "a-text ", ("error", "a broke off")]


async def test_an_unverifiable_join_ends_the_stream_without_another_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unverified = Cut("join_unverified", UpstreamUnavailable("cannot join"), scope="continuation")
    result = await walk(
        {"a": ["cut", "ok"], "b": [unverified]}, stream=True, monkeypatch=monkeypatch
    )

    assert result.attempts == ["a", "b+instruct"]
    assert result.calls[2:] == [("admit", B1), ("failed", B1, "none")]
    assert result.got == ["commit", "a-text ", ("error", "cannot join")]


async def test_an_open_circuit_makes_no_attempt_and_reports_no_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, ...]] = []
    closed = Replica("a-1", calls, admits=False)
    lease = Lease(closed, "m")  # type: ignore[arg-type]
    with lease:
        assert not lease.granted
    assert calls == [("admit", "a-1")]


async def test_a_cancelled_attempt_releases_its_admission_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, ...]] = []
    hanging = asyncio.Event()
    task = asyncio.create_task(
        walk({"a": [hanging]}, stream=False, order=("a",), calls=calls, monkeypatch=monkeypatch)
    )
    await asyncio.wait_for(hanging.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == [("admit", A1), ("release", A1)]
