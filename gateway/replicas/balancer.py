"""Replica picking, purely: round-robin, random, least-loaded and affinity with bounded load.

``endpoints.EndpointSet.pick`` composes these; they do no I/O and read replicas only through the
small ``Replica`` protocol, so they are unit-tested with plain fakes.

Affinity keeps a request where its prompt prefix (or its session) went before, but never onto a
replica loaded beyond ``bound = load_factor * mean + 1`` (the ``+ 1`` leaves an idle cluster room
for the request itself). Two mechanisms, tried in order by ``EndpointSet``: the ``PrefixIndex``
(block hash -> address of the replica that last served it, LRU-bounded), then a ``HashRing`` of
virtual nodes walked clockwise from the key's position to the first replica under the bound
("consistent hashing with bounded loads", Mirrokni et al. 2018): removing a replica remaps only
the keys that lived on it.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

VIRTUAL_NODES = 64
_MASK64 = (1 << 64) - 1


class Replica(Protocol):
    """What picking reads from an endpoint."""

    @property
    def address(self) -> str: ...

    def available(self) -> bool: ...

    def load_value(self) -> float: ...


R = TypeVar("R", bound=Replica)


def eligible(replicas: Sequence[R], exclude: Collection[R]) -> list[R]:
    """The available replicas not in ``exclude``, in order."""
    if exclude:
        return [r for r in replicas if r.available() and r not in exclude]
    return [r for r in replicas if r.available()]


def round_robin(candidates: Sequence[R], turn: int) -> R:
    return candidates[turn % len(candidates)]


def random_choice(candidates: Sequence[R], rng: random.Random) -> R:
    return candidates[rng.randrange(len(candidates))]


def least_loaded(candidates: Sequence[R], loads: Sequence[float], turn: int) -> R:
    """The lowest load; among equals, the first from position ``turn`` on (ties rotate)."""
    count = len(candidates)
    start = turn % count
    best = start
    best_load = loads[start]
    for offset in range(1, count):
        index = (start + offset) % count
        if loads[index] < best_load:
            best, best_load = index, loads[index]
    return candidates[best]


def load_bound(loads: Sequence[float], load_factor: float) -> float:
    """The most load an affinity pick may carry: ``load_factor`` times the mean, plus one."""
    mean = sum(loads) / len(loads) if loads else 0.0
    return load_factor * mean + 1.0


def mix(key: int) -> int:
    """Spread a 32-bit hash over the 64-bit ring (splitmix64's finaliser)."""
    key = (key + 0x9E3779B97F4A7C15) & _MASK64
    key = ((key ^ (key >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    key = ((key ^ (key >> 27)) * 0x94D049BB133111EB) & _MASK64
    return key ^ (key >> 31)


def _point(address: str, index: int) -> int:
    digest = hashlib.blake2b(f"{address}#{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class HashRing(Generic[R]):
    """Virtual nodes of each replica on a 64-bit ring; immutable, rebuilt when replicas change.

    Positions depend only on addresses, so every gateway process (and every restart) agrees.
    """

    __slots__ = ("_owners", "_points")

    def __init__(self, replicas: Iterable[R], vnodes: int = VIRTUAL_NODES) -> None:
        nodes = sorted((_point(r.address, i), r) for r in replicas for i in range(vnodes))
        self._points = [point for point, _ in nodes]
        self._owners = [owner for _, owner in nodes]

    def pick(self, key: int, bound: float, exclude: Collection[R] = ()) -> R | None:
        """The first available replica clockwise from ``key`` whose load is within ``bound``."""
        owners = self._owners
        if not owners:
            return None
        size = len(owners)
        start = bisect.bisect_left(self._points, mix(key))
        tried: set[int] | None = None  # allocated only once the first choice is refused
        for step in range(size):
            owner = owners[(start + step) % size]
            if tried is not None:
                if id(owner) in tried:
                    continue
                tried.add(id(owner))
            if owner.available() and owner not in exclude and owner.load_value() <= bound:
                return owner
            if tried is None:
                tried = {id(owner)}
        return None


class PrefixIndex:
    """Which replica last served each prompt-prefix block hash; least recently used evicted."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, blocks: Sequence[int], address: str) -> None:
        entries = self._entries
        for block in blocks:
            entries[block] = address
            entries.move_to_end(block)
        while len(entries) > self._capacity:
            entries.popitem(last=False)

    def matches(self, blocks: Sequence[int]) -> Iterator[str]:
        """Addresses holding the request's prefix, longest match first."""
        entries = self._entries
        for index in range(len(blocks) - 1, -1, -1):
            address = entries.get(blocks[index])
            if address is not None:
                yield address

    def forget(self, address: str) -> None:
        """Drop a removed replica's entries (they would only ever miss)."""
        stale = [block for block, owner in self._entries.items() if owner == address]
        for block in stale:
            del self._entries[block]
