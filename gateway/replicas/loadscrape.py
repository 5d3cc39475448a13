"""Replica load from vLLM's Prometheus ``/metrics``: the parser and one scrape round.

``endpoints.EndpointSet`` runs ``scrape_round`` every ``scrape.interval_s`` over its current
endpoints; each answer becomes that endpoint's ``ReplicaLoad``. A replica that does not answer
keeps its previous sample, which the endpoint ignores once it is older than
``scrape.stale_after_s``. The parser reads only the three scheduler gauges from the text
exposition format (``# HELP``/``# TYPE`` lines, labels, ``1.0e+00``, ``NaN``) and never raises:
a junk page is "load unknown", not an error on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

import aiohttp

from switchman.api.resilience import Scrape

logger = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # vLLM >= 0.9, older
MAX_BYTES = 8 * 1024 * 1024
_ACCEPT = {"Accept": "text/plain;version=0.0.4"}


def parse_vllm_metrics(text: str) -> tuple[float, float, float] | None:
    """``(running, waiting, kv_usage)`` from vLLM's exposition, or None without both counts.

    Running and waiting are summed over label sets (several engines or served names); KV usage
    is the fullest label set's, clamped to [0, 1], and 0 when absent. NaN and infinite samples
    are skipped.
    """
    running = waiting = kv = 0.0
    seen_running = seen_waiting = False
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue  # comments, blank lines, other families
        brace = line.find("{")
        if brace >= 0:
            name = line[:brace]
            close = line.rfind("}")
            if close < brace:
                continue
            rest = line[close + 1 :]
        else:
            name, _, rest = line.partition(" ")
        if name != RUNNING and name != WAITING and name not in KV_USAGE:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        if name == RUNNING:
            running += value
            seen_running = True
        elif name == WAITING:
            waiting += value
            seen_waiting = True
        else:
            kv = max(kv, value)
    if not (seen_running and seen_waiting):
        return None
    return max(running, 0.0), max(waiting, 0.0), min(max(kv, 0.0), 1.0)


class Scraped(Protocol):
    """What a scrape round reads and writes on an endpoint."""

    @property
    def address(self) -> str: ...

    def record_load(self, running: float, waiting: float, kv_usage: float) -> None: ...


async def scrape(
    session: aiohttp.ClientSession, url: str, timeout_s: float
) -> tuple[float, float, float] | None:
    """Fetch and parse one replica's metrics; None on any failure (logged at debug)."""
    try:
        async with session.get(
            url,
            headers=_ACCEPT,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            if response.status != 200:
                logger.debug("scrape %s: HTTP %s", url, response.status)
                return None
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > MAX_BYTES:
                    logger.debug("scrape %s: more than %d bytes", url, MAX_BYTES)
                    return None
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        logger.debug("scrape %s failed: %r", url, exc)
        return None
    return parse_vllm_metrics(body.decode("utf-8", "replace"))


async def scrape_round(
    session: aiohttp.ClientSession,
    endpoints: Sequence[Scraped],
    spec: Scrape,
    scheme: str,
) -> int:
    """Scrape every endpoint concurrently; returns how many answered with usable metrics."""
    urls = [f"{scheme}://{endpoint.address}{spec.path}" for endpoint in endpoints]
    results = await asyncio.gather(*(scrape(session, url, spec.timeout_s) for url in urls))
    fresh = 0
    for endpoint, result in zip(endpoints, results, strict=True):
        if result is not None:
            endpoint.record_load(*result)
            fresh += 1
    return fresh


async def scrape_forever(
    session: Callable[[], aiohttp.ClientSession],
    endpoints: Callable[[], Sequence[Scraped]],
    spec: Scrape,
    scheme: str,
) -> None:
    """Scrape rounds every ``spec.interval_s`` until cancelled."""
    while True:
        try:
            await scrape_round(session(), endpoints(), spec, scheme)
        except Exception:  # a bug here must not stop load tracking for good
            logger.exception("scrape round failed")
        await asyncio.sleep(spec.interval_s)
