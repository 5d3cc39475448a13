"""Pure replica picking, with plain fake replicas (no I/O).

Scenario matrix:
- eligible: unavailable and excluded replicas are left out, order kept
- round-robin cycles; random follows the seeded generator; least-loaded takes the minimum and
  rotates among equals
- load bound: load_factor x mean + 1 (an idle cluster still has room)
- hash ring: same key -> same replica while under the bound; spills clockwise when over it and
  comes back when the load drops; skips unavailable / excluded replicas; None when nothing fits;
  removing a replica remaps only its keys (ring property); keys spread over all replicas;
  positions are the same for every ring built from the same addresses
- prefix index: longest match first; LRU eviction at capacity (recently served kept); forget
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from switchman.gateway.replicas import balancer
from switchman.gateway.replicas.balancer import HashRing, PrefixIndex


@dataclass(eq=False)
class Fake:
    address: str
    load: float = 0.0
    up: bool = True

    def available(self) -> bool:
        return self.up

    def load_value(self) -> float:
        return self.load


def fakes(count: int) -> list[Fake]:
    return [Fake(f"10.0.0.{i}:8000") for i in range(count)]


KEYS = range(1, 2001)


def test_eligible_skips_unavailable_and_excluded() -> None:
    a, b, c, d = fakes(4)
    b.up = False
    assert balancer.eligible([a, b, c, d], ()) == [a, c, d]
    assert balancer.eligible([a, b, c, d], (c,)) == [a, d]


def test_round_robin_cycles() -> None:
    replicas = fakes(3)
    picked = [balancer.round_robin(replicas, turn) for turn in range(6)]
    assert picked == replicas + replicas


def test_random_follows_the_seeded_generator() -> None:
    replicas = fakes(4)
    first = [balancer.random_choice(replicas, rng) for rng in [random.Random(7)] for _ in range(9)]
    again = [balancer.random_choice(replicas, rng) for rng in [random.Random(7)] for _ in range(9)]
    assert first == again
    rng = random.Random(1)
    counts = Counter(balancer.random_choice(replicas, rng).address for _ in range(4000))
    assert len(counts) == 4
    assert min(counts.values()) > 800


def test_least_loaded_takes_the_minimum() -> None:
    replicas = fakes(3)
    loads = [3.0, 1.0, 2.0]
    for turn in range(3):
        assert balancer.least_loaded(replicas, loads, turn) is replicas[1]


def test_least_loaded_rotates_among_equals() -> None:
    replicas = fakes(4)
    loads = [1.0, 0.0, 0.0, 0.0]
    picked = Counter(balancer.least_loaded(replicas, loads, turn).address for turn in range(8))
    assert set(picked) == {r.address for r in replicas[1:]}
    assert max(picked.values()) <= 4


def test_load_bound_is_factor_times_mean_plus_one() -> None:
    assert balancer.load_bound([0.0, 0.0], 1.25) == 1.0
    assert balancer.load_bound([2.0, 6.0], 1.25) == 6.0
    assert balancer.load_bound([], 2.0) == 1.0


def test_same_key_stays_on_one_replica_while_under_the_bound() -> None:
    replicas = fakes(5)
    ring = HashRing(replicas)
    home = ring.pick(42, bound=1.0)
    assert home is not None
    home.load = 1.0  # exactly at the bound: still allowed
    assert all(ring.pick(42, bound=1.0) is home for _ in range(10))


def test_key_spills_clockwise_when_over_the_bound_and_returns() -> None:
    replicas = fakes(5)
    ring = HashRing(replicas)
    home = ring.pick(42, bound=2.0)
    assert home is not None
    home.load = 3.0
    spill = ring.pick(42, bound=2.0)
    assert spill is not None
    assert spill is not home
    # The spill target is stable (the next replica clockwise), not random.
    assert ring.pick(42, bound=2.0) is spill
    home.load = 0.0
    assert ring.pick(42, bound=2.0) is home


def test_ring_skips_unavailable_and_excluded_replicas() -> None:
    replicas = fakes(4)
    ring = HashRing(replicas)
    home = ring.pick(7, bound=10.0)
    assert home is not None
    home.up = False
    moved = ring.pick(7, bound=10.0)
    assert moved is not None
    assert moved is not home
    home.up = True
    assert ring.pick(7, bound=10.0, exclude=(home,)) is moved


def test_ring_returns_none_when_every_replica_is_over_the_bound() -> None:
    replicas = fakes(3)
    for replica in replicas:
        replica.load = 5.0
    assert HashRing(replicas).pick(1, bound=4.0) is None
    assert HashRing([]).pick(1, bound=4.0) is None


def test_removing_a_replica_remaps_only_its_keys() -> None:
    replicas = fakes(5)
    ring = HashRing(replicas)
    before = {key: ring.pick(key, float("inf")) for key in KEYS}
    gone = replicas[2]
    after_ring = HashRing([r for r in replicas if r is not gone])
    moved = 0
    for key in KEYS:
        after = after_ring.pick(key, float("inf"))
        if before[key] is gone:
            assert after is not gone
            moved += 1
        else:
            assert after is before[key]
    assert moved > 0


def test_adding_a_replica_takes_keys_only_for_itself() -> None:
    replicas = fakes(4)
    ring = HashRing(replicas)
    before = {key: ring.pick(key, float("inf")) for key in KEYS}
    newcomer = Fake("10.0.0.99:8000")
    grown = HashRing([*replicas, newcomer])
    for key in KEYS:
        after = grown.pick(key, float("inf"))
        assert after is before[key] or after is newcomer


def test_keys_spread_over_all_replicas() -> None:
    replicas = fakes(5)
    ring = HashRing(replicas)
    counts = Counter(ring.pick(key, float("inf")).address for key in KEYS)  # type: ignore[union-attr]
    assert len(counts) == 5
    share = len(KEYS) / 5
    assert min(counts.values()) > 0.5 * share
    assert max(counts.values()) < 1.6 * share


def test_positions_depend_only_on_addresses() -> None:
    one = HashRing(fakes(4))
    two = HashRing(list(reversed(fakes(4))))
    for key in range(200):
        a, b = one.pick(key, float("inf")), two.pick(key, float("inf"))
        assert a is not None
        assert b is not None
        assert a.address == b.address


def test_prefix_index_matches_longest_first() -> None:
    index = PrefixIndex(100)
    index.record((1, 2), "a:1")
    index.record((1, 2, 3, 4), "b:1")  # block 1 and 2 now last served by b
    index.record((9,), "c:1")
    assert list(index.matches((1, 2, 3, 4, 5))) == ["b:1", "b:1", "b:1", "b:1"]
    assert list(index.matches((9, 7))) == ["c:1"]
    assert list(index.matches((8,))) == []


def test_prefix_index_evicts_least_recently_served() -> None:
    index = PrefixIndex(3)
    index.record((1,), "a:1")
    index.record((2,), "b:1")
    index.record((3,), "c:1")
    index.record((1,), "a:1")  # refreshes block 1
    index.record((4,), "d:1")
    assert len(index) == 3
    assert list(index.matches((2,))) == []
    assert list(index.matches((1,))) == ["a:1"]


def test_prefix_index_forgets_an_address() -> None:
    index = PrefixIndex(10)
    index.record((1, 2), "a:1")
    index.record((3,), "b:1")
    index.forget("a:1")
    assert list(index.matches((1, 2, 3))) == ["b:1"]
    assert len(index) == 1
