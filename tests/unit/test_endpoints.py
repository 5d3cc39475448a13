"""EndpointSet and Endpoint without a network: fake resolver, fake clock, recorded loads.

Scenario matrix:
- replicas: base_url's host alone (base = base_url), a static list (IPv6 bracketed, duplicates
  dropped), DNS: the origin before the first resolution, then the resolved addresses
- DNS refresh: adds and removes replicas, keeps the Endpoint (breaker, streak, inflight) of kept
  addresses, replaces the list object (never mutates it); a failed or empty resolution keeps the
  last set, warning once per distinct problem
- load: no scrape -> own inflight; a scrape counted without double counting our own requests;
  queueing and a nearly full KV cache add; samples older than stale_after_s ignored (fake clock);
  load() over fresh samples / available replicas
- health verdicts: unhealthy after N failures in a row, healthy after M passes in a row
- picking: skips unhealthy / open-breaker / excluded replicas, None when none; round-robin and
  random policies; least-loaded rotates ties; prefix affinity sends a shared system prompt to
  few replicas while different prefixes spread; bounded load spills a hot prefix; the session
  key pins; an unavailable replica's keys move and come back; pick never acquires the breaker
- served() feeds the prefix index only under least-loaded with prefix affinity
- background tasks: none when nothing is configured; start is idempotent; close cancels
- snapshot: per-replica fields and scrape age, no secrets
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest

from switchman.api.gatewayconfig import Upstream
from switchman.api.resilience import Balance, HealthCheck
from switchman.gateway.replicas.affinity import AffinityKey, affinity_key
from switchman.gateway.replicas.endpoints import EndpointSet
from switchman.gateway.replicas.healthcheck import HealthStreak
from switchman.gateway.replicas.replica import Endpoint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Resolver:
    """A fake DNS: answers what the test sets, or raises it."""

    def __init__(self, *answers: str) -> None:
        self.answer: list[str] | Exception = list(answers)
        self.asked: list[tuple[str, int]] = []
        self.called = asyncio.Event()

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        self.called.set()
        if isinstance(self.answer, Exception):
            raise self.answer
        return list(self.answer)


def upstream(**fields: Any) -> Upstream:
    data: dict[str, Any] = {"name": "pool", "base_url": "http://model.ns.svc:8000/v1"}
    data.update(fields)
    return Upstream.model_validate(data)


def static_set(count: int, clock: Clock | None = None, **fields: Any) -> EndpointSet:
    addresses = [f"10.0.0.{i}:8000" for i in range(1, count + 1)]
    spec = upstream(discovery={"static": addresses}, **fields)
    return EndpointSet(spec, clock=clock or Clock(), rng=random.Random(3))


def chat_key(system: str, user: str, balance: Balance | None = None) -> AffinityKey | None:
    body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    return affinity_key("chat", body, {}, balance or Balance())


def addresses(endpoints: EndpointSet) -> list[str]:
    return [e.address for e in endpoints.endpoints]


# --- replicas and discovery -------------------------------------------------------------------


def test_without_discovery_base_urls_host_is_the_only_replica() -> None:
    endpoints = EndpointSet(upstream(base_url="https://api.openai.com/v1"))
    (only,) = endpoints.endpoints
    assert only.address == "api.openai.com:443"
    assert only.base == "https://api.openai.com/v1"


def test_static_list_with_ipv6_and_duplicates() -> None:
    spec = upstream(discovery={"static": ["10.0.0.7:8000", "[::1]:9000", "10.0.0.7:8000"]})
    endpoints = EndpointSet(spec)
    assert addresses(endpoints) == ["10.0.0.7:8000", "[::1]:9000"]
    assert [e.base for e in endpoints.endpoints] == [
        "http://10.0.0.7:8000/v1",
        "http://[::1]:9000/v1",
    ]


async def test_dns_holds_the_origin_until_the_first_resolution() -> None:
    resolve = Resolver("10.1.0.2", "10.1.0.1", "10.1.0.2", "fd00::5")
    spec = upstream(discovery={"dns": "model-headless.ns.svc", "port": 8001})
    endpoints = EndpointSet(spec, resolve=resolve)
    assert addresses(endpoints) == ["model.ns.svc:8000"]
    assert endpoints.endpoints[0].base == "http://model.ns.svc:8000/v1"
    assert await endpoints.refresh()
    assert resolve.asked == [("model-headless.ns.svc", 8001)]
    assert addresses(endpoints) == ["10.1.0.1:8001", "10.1.0.2:8001", "[fd00::5]:8001"]
    assert endpoints.endpoints[2].base == "http://[fd00::5]:8001/v1"


async def test_dns_port_defaults_to_base_urls() -> None:
    resolve = Resolver("10.1.0.1")
    endpoints = EndpointSet(upstream(discovery={"dns": "headless"}), resolve=resolve)
    await endpoints.refresh()
    assert addresses(endpoints) == ["10.1.0.1:8000"]


async def test_refresh_adds_and_removes_and_keeps_known_endpoints() -> None:
    resolve = Resolver("10.1.0.1", "10.1.0.2")
    endpoints = EndpointSet(upstream(discovery={"dns": "headless"}), resolve=resolve)
    await endpoints.refresh()
    kept = endpoints.endpoints[1]
    kept.inflight = 3
    kept.breaker.failure()
    breaker = kept.breaker
    before = endpoints.endpoints
    resolve.answer = ["10.1.0.2", "10.1.0.3"]
    await endpoints.refresh()
    assert addresses(endpoints) == ["10.1.0.2:8000", "10.1.0.3:8000"]
    assert endpoints.endpoints[0] is kept
    assert kept.breaker is breaker
    assert kept.inflight == 3
    assert endpoints.endpoints is not before
    assert [e.address for e in before] == ["10.1.0.1:8000", "10.1.0.2:8000"]  # not mutated


async def test_unchanged_resolution_keeps_the_same_list() -> None:
    resolve = Resolver("10.1.0.1", "10.1.0.2")
    endpoints = EndpointSet(upstream(discovery={"dns": "headless"}), resolve=resolve)
    await endpoints.refresh()
    before = endpoints.endpoints
    resolve.answer = ["10.1.0.2", "10.1.0.1"]
    await endpoints.refresh()
    assert endpoints.endpoints is before


async def test_failed_or_empty_resolution_keeps_the_last_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolve = Resolver("10.1.0.1", "10.1.0.2")
    endpoints = EndpointSet(upstream(discovery={"dns": "headless"}), resolve=resolve)
    await endpoints.refresh()
    before = endpoints.endpoints
    resolve.answer = OSError("Name or service not known")
    with caplog.at_level(logging.WARNING, logger="switchman.gateway.replicas.endpoints"):
        assert not await endpoints.refresh()
        assert not await endpoints.refresh()
        resolve.answer = []
        assert not await endpoints.refresh()
        assert not await endpoints.refresh()
    assert endpoints.endpoints is before
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Name or service not known" in warnings[0]
    assert "no addresses" in warnings[1]
    resolve.answer = ["10.1.0.3"]
    assert await endpoints.refresh()
    assert addresses(endpoints) == ["10.1.0.3:8000"]


async def test_failed_first_resolution_keeps_the_origin() -> None:
    resolve = Resolver()
    resolve.answer = OSError("no DNS")
    endpoints = EndpointSet(upstream(discovery={"dns": "headless"}), resolve=resolve)
    assert not await endpoints.refresh()
    assert addresses(endpoints) == ["model.ns.svc:8000"]


# --- load ------------------------------------------------------------------------------------


def test_load_without_scrape_is_own_inflight() -> None:
    endpoints = static_set(1)
    endpoint = endpoints.endpoints[0]
    endpoint.inflight = 4
    assert endpoint.load is None
    assert endpoint.load_value() == 4.0


def test_scraped_load_does_not_double_count_own_requests() -> None:
    clock = Clock()
    endpoint = static_set(1, clock, scrape={}).endpoints[0]
    endpoint.inflight = 2
    endpoint.record_load(running=5, waiting=0, kv_usage=0.1)  # includes our 2
    assert endpoint.load_value() == 5.0
    endpoint.inflight = 3  # one more of ours since the scrape
    assert endpoint.load_value() == 6.0
    endpoint.inflight = 0  # ours finished; the other 3 are still there
    assert endpoint.load_value() == 3.0


def test_scraped_load_never_below_own_inflight() -> None:
    endpoint = static_set(1, scrape={}).endpoints[0]
    endpoint.record_load(running=0, waiting=0, kv_usage=0.0)
    endpoint.inflight = 4  # a scrape that missed requests still has at least ours
    assert endpoint.load_value() == 4.0


def test_queueing_and_full_kv_cache_add_load() -> None:
    endpoint = static_set(1, scrape={}).endpoints[0]
    endpoint.record_load(running=4, waiting=0, kv_usage=0.5)
    calm = endpoint.load_value()
    endpoint.record_load(running=2, waiting=2, kv_usage=0.5)
    queued = endpoint.load_value()
    endpoint.record_load(running=4, waiting=0, kv_usage=0.99)
    full = endpoint.load_value()
    assert calm == 4.0
    assert queued > calm
    assert full > calm


def test_stale_scrapes_are_ignored() -> None:
    clock = Clock()
    endpoints = static_set(2, clock, scrape={"stale_after_s": 5.0})
    busy, idle = endpoints.endpoints
    busy.record_load(running=9, waiting=3, kv_usage=0.2)
    idle.record_load(running=0, waiting=1, kv_usage=0.2)
    clock.now += 5.0
    assert busy.load is not None
    assert idle.load is not None
    clock.now += 0.1
    assert busy.load is None
    assert busy.load_value() == 0.0
    assert idle.load is None
    idle.record_load(running=0, waiting=2, kv_usage=0.2)
    assert idle.load is not None
    assert idle.load.waiting == 2


def test_set_load_is_the_mean_over_available_replicas() -> None:
    endpoints = static_set(3)
    a, b, c = endpoints.endpoints
    a.inflight, b.inflight, c.inflight = 2, 4, 100
    c.healthy = False
    assert endpoints.load() == 3.0
    for endpoint in endpoints.endpoints:
        endpoint.healthy = False
    assert endpoints.load() == 0.0
    assert not endpoints.available()


# --- health verdicts -------------------------------------------------------------------------


def test_health_streak_needs_failures_and_passes_in_a_row() -> None:
    spec = HealthCheck(unhealthy_after=3, healthy_after=2)
    streak = HealthStreak()
    healthy = True
    verdicts = []
    for passed in (False, False, True, False, False, False, True, False, True, True, True):
        healthy = streak.observe(passed, healthy, spec)
        verdicts.append(healthy)
    assert verdicts == [True, True, True, True, True, False, False, False, False, True, True]


# --- picking ---------------------------------------------------------------------------------


def test_pick_skips_unavailable_and_excluded_replicas() -> None:
    endpoints = static_set(3, circuit_breaker={"consecutive_failures": 1})
    a, b, c = endpoints.endpoints
    a.healthy = False
    b.breaker.failure()  # opens
    assert {endpoints.pick(None) for _ in range(5)} == {c}
    assert endpoints.pick(None, exclude=(c,)) is None
    c.healthy = False
    assert not endpoints.available()
    assert endpoints.pick(None) is None


def test_pick_does_not_acquire_the_breaker() -> None:
    endpoints = static_set(1, circuit_breaker={"consecutive_failures": 1})
    endpoint = endpoints.endpoints[0]
    endpoint.breaker.failure()
    assert endpoints.pick(None) is None
    # half-open with one probe slot: picking twice leaves the slot free for the proxy
    clock = Clock()
    endpoints = static_set(1, clock, circuit_breaker={"consecutive_failures": 1, "open_s": 1.0})
    endpoint = endpoints.endpoints[0]
    endpoint.breaker.failure()
    clock.now += 1.0
    assert endpoints.pick(None) is endpoint
    assert endpoints.pick(None) is endpoint
    assert endpoint.breaker.acquire()


def test_round_robin_policy_cycles() -> None:
    endpoints = static_set(3, balance={"policy": "round-robin"})
    picks = [endpoints.pick(None) for _ in range(6)]
    assert picks[:3] == picks[3:]
    assert set(picks) == set(endpoints.endpoints)


def test_random_policy_uses_every_replica() -> None:
    endpoints = static_set(3, balance={"policy": "random"})
    counts = Counter(endpoints.pick(None) for _ in range(600))
    assert set(counts) == set(endpoints.endpoints)


def test_least_loaded_without_key_prefers_idle_and_rotates_ties() -> None:
    endpoints = static_set(3)
    a, b, c = endpoints.endpoints
    a.inflight = 2
    picks = Counter(endpoints.pick(None) for _ in range(10))
    assert set(picks) == {b, c}
    b.inflight = 1
    assert endpoints.pick(None) is c


def serve(endpoints: EndpointSet, key: AffinityKey | None) -> Endpoint:
    """Pick, count the request in flight, and record the prefix, as the proxy does."""
    endpoint = endpoints.pick(key)
    assert endpoint is not None
    endpoint.inflight += 1
    endpoints.served(endpoint, key)
    return endpoint


def test_shared_system_prompt_goes_to_few_replicas_and_different_prefixes_spread() -> None:
    system = "You are the support bot of ACME. Answer politely and briefly. " * 20
    shared = static_set(6)
    used = Counter()
    for i in range(60):
        endpoint = serve(shared, chat_key(system, f"question number {i}?"))
        used[endpoint.address] += 1
        endpoint.inflight -= 1  # finished before the next arrives
    assert len(used) == 1

    spread = static_set(6)
    used = Counter()
    for i in range(60):
        endpoint = serve(spread, chat_key(f"Persona {i}: " + "be helpful. " * 60, "hello"))
        used[endpoint.address] += 1
        endpoint.inflight -= 1
    assert len(used) >= 5


def test_bounded_load_spills_a_hot_prefix() -> None:
    system = "Shared instructions for every agent in this workflow. " * 20
    endpoints = static_set(4)
    used = Counter(serve(endpoints, chat_key(system, f"task {i}")) for i in range(40))
    # Requests stay in flight: the hot prefix must not pile onto one replica beyond the bound.
    # Each pick is within load_factor x mean + 1 of the loads before it, hence the + 2 here.
    assert max(e.inflight for e in endpoints.endpoints) <= 1.25 * (40 / 4) + 2
    assert len(used) >= 3


def test_longest_prefix_wins_over_the_ring() -> None:
    system = "A common preamble shared by two different conversations here. " * 10
    endpoints = static_set(4)
    first = chat_key(system + "conversation one. " * 40, "turn 1")
    assert first is not None
    home = serve(endpoints, first)
    home.inflight -= 1
    # Same conversation, a later turn: its longer prefix lives on `home`.
    later = chat_key(system + "conversation one. " * 40, "turn 1 answer, turn 2")
    assert serve(endpoints, later) is home


def test_session_key_pins_and_different_sessions_spread() -> None:
    balance = Balance(session_header="x-session-id")
    endpoints = static_set(5, balance=balance.model_dump())

    def key(session: str, prompt: str) -> AffinityKey | None:
        body = {"messages": [{"role": "user", "content": prompt}]}
        return affinity_key("chat", body, {"x-session-id": session}, balance)

    homes = set()
    for i in range(10):
        endpoint = serve(endpoints, key("alice", f"prompt {i} " * 50))
        homes.add(endpoint)
        endpoint.inflight -= 1
    assert len(homes) == 1
    sessions = {serve(endpoints, key(f"user-{i}", "hi")) for i in range(40)}
    assert len(sessions) >= 4


def test_unavailable_replicas_keys_move_and_come_back() -> None:
    endpoints = static_set(4)
    key = chat_key("A system prompt that is long enough. " * 20, "q")
    home = endpoints.pick(key)
    assert home is not None
    home.healthy = False
    moved = endpoints.pick(key)
    assert moved is not None
    assert moved is not home
    assert endpoints.pick(key, exclude=(moved,)) not in (home, moved)
    home.healthy = True
    assert endpoints.pick(key) is home


def test_served_is_ignored_without_prefix_affinity() -> None:
    endpoints = static_set(3, balance={"policy": "round-robin"})
    key = chat_key("x" * 600, "y")
    assert key is not None
    endpoints.served(endpoints.endpoints[0], key)
    assert endpoints.pick(key) is endpoints.endpoints[1]


# --- tasks and snapshot ----------------------------------------------------------------------


def no_session() -> aiohttp.ClientSession:
    raise AssertionError("nothing configured: no session needed")


async def test_start_without_anything_configured_runs_no_task() -> None:
    endpoints = static_set(2)
    endpoints.start(no_session)
    assert endpoints._tasks == []
    await endpoints.close()


async def test_start_is_idempotent_and_close_cancels() -> None:
    resolve = Resolver("10.1.0.1")
    spec = upstream(discovery={"dns": "headless", "refresh_s": 60})
    endpoints = EndpointSet(spec, resolve=resolve)
    endpoints.start(no_session)
    tasks = list(endpoints._tasks)
    endpoints.start(no_session)
    assert endpoints._tasks == tasks
    assert len(tasks) == 1
    await asyncio.wait_for(resolve.called.wait(), 5)
    assert addresses(endpoints) == ["10.1.0.1:8000"]
    await endpoints.close()
    assert all(task.done() for task in tasks)


def test_snapshot_reports_each_replica() -> None:
    clock = Clock()
    endpoints = static_set(2, clock, scrape={"stale_after_s": 5.0})
    a, b = endpoints.endpoints
    a.inflight = 1
    a.record_load(running=3, waiting=1, kv_usage=0.5)
    clock.now += 2.5
    b.healthy = False
    rows = endpoints.snapshot()
    assert rows[0]["address"] == "10.0.0.1:8000"
    assert rows[0]["breaker"] == "closed"
    assert rows[0]["inflight"] == 1
    assert rows[0]["scraped"] == {
        "running": 3,
        "waiting": 1,
        "kv_usage": 0.5,
        "age_s": 2.5,
        "stale": False,
    }
    assert rows[0]["load_value"] == 5.0
    assert rows[1]["healthy"] is False
    assert rows[1]["scraped"] is None
