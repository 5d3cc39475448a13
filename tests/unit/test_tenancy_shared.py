"""``SharedBooks``: this process's admission and billing against the shared state, without Redis.

- the same semantics as ``LocalLedger`` (buckets, token give-back, budgets reserved then billed)
- deltas: what admission and billing took is pending until ``cut`` numbers it into a batch; a
  batch stays in flight (resent, same number) until applied; new deltas wait for the next number
- ``applied`` restarts the view from the shared state, minus what was taken meanwhile
- a tenant is synced while it has deltas or was active recently, then no more
- ``adopt`` (a reload) keeps the view, not the deltas
- tokens given back are added at once (no refill first): the levels stay those of
  ``LocalLedger``, which refills then adds, through refills, the cap and usage above the estimate
- the usual admission (``take``: the view on the ask's periods and caps) and bill (``give``:
  spend and reservations summed, folded into the per-period books by the next ``cut``) answer as
  ``LocalLedger`` does, through refusals of every kind, refills and usage above the estimate;
  the batches carry every bill's spend; a ticket of the periods before a day change settles
  against those
"""

from __future__ import annotations

import random

import pytest

from switchman.gateway.tenancy.ledger import Ask, Bill, LocalLedger, Period
from switchman.gateway.tenancy.shared import Batch, SharedBooks

DAY, MONTH = ("daily", "20261206"), ("monthly", "202612")


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000.0

    def __call__(self) -> float:
        return self.ms


def ask(rpm: int = 0, tpm: int = 0, tokens: int = 10, amount: int = 0, hard: int = 0) -> Ask:
    periods = (Period(*DAY, hard, 3600), Period(*MONTH, 0, 7200))
    return Ask("t", rpm, tpm, tokens, amount, periods, "m", 60_000)


def bill(a: Ask, actual: int, tokens: int = 0) -> Bill:
    return Bill(a, "auto", "small", actual, tokens, 4, 6, 2, "20261206")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def books(clock: Clock) -> SharedBooks:
    return SharedBooks(recent_ms=1000, clock_ms=clock)


def test_requests_bucket_refuses_then_refills(books: SharedBooks, clock: Clock) -> None:
    grants = [books.admit_now(ask(rpm=3)) for _ in range(4)]
    assert [g.ok for g in grants] == [True, True, True, False]
    assert [g.requests_left for g in grants] == [2, 1, 0, 0]
    assert (grants[3].reason, grants[3].retry_ms) == ("rpm", 20_000)
    clock.ms += 20_000
    assert books.admit_now(ask(rpm=3)).ok


def test_tokens_come_back_when_the_usage_is_below_the_estimate(books: SharedBooks) -> None:
    first = ask(tpm=1000, tokens=800)
    assert books.admit_now(first).ok
    assert books.admit_now(ask(tpm=1000, tokens=800)).reason == "tpm"
    books.settle_now(bill(first, 0, tokens=100))
    assert books.admit_now(ask(tpm=1000, tokens=800)).ok
    assert books.views["t"].pending.tokens == 800 - 700 + 800


def test_given_back_tokens_leave_the_levels_of_the_local_ledger(clock: Clock) -> None:
    books = SharedBooks(clock_ms=clock)
    local = LocalLedger(clock_ms=lambda: int(clock.ms))
    # (ms to wait, then: admit this many tokens | settle the oldest ticket at this many tokens)
    script = [
        (0, "admit", 700),
        (0, "admit", 250),
        (15_000, "settle", 100),  # 600 back, 250 refilled meanwhile: capped at 1000
        (1_000, "admit", 900),
        (2_000, "settle", 100),  # 150 back onto a refilling bucket
        (7_000, "admit", 300),
        (0, "settle", 1_200),  # 300 more than the estimate: taken now
        (3_000, "admit", 10),
        (30_000, "settle", 0),
        (500, "admit", 10),
    ]
    open_tickets: list[Ask] = []
    for wait_ms, action, tokens in script:
        clock.ms += wait_ms
        if action == "admit":
            a = ask(rpm=60, tpm=1000, tokens=tokens)
            synced, alone = books.admit_now(a), local.admit_now(a)
            assert (synced.ok, synced.reason, synced.requests_left) == (
                alone.ok,
                alone.reason,
                alone.requests_left,
            )
            # The same level but for float rounding (the sums are done in another order).
            level = local.buckets[("t", "tpm")].level
            assert books.views["t"].tokens == pytest.approx(level, abs=1e-6)
            assert abs(synced.tokens_reset_ms - alone.tokens_reset_ms) <= 1
            if synced.ok:
                open_tickets.append(a)
        else:
            done = bill(open_tickets.pop(0), 0, tokens=tokens)
            books.settle_now(done)
            local.settle_now(done)


def test_budget_reserves_the_worst_case_and_bills_the_actual(books: SharedBooks) -> None:
    first = ask(amount=600, hard=1000)
    assert books.admit_now(first).used == (600, 600)
    assert books.admit_now(ask(amount=600, hard=1000)).reason == "daily"
    books.settle_now(bill(first, 150))
    assert books.admit_now(ask(amount=600, hard=1000)).used == (750, 750)
    assert books.views["t"].pending.spent == {DAY: 150, MONTH: 150}


def test_deltas_are_numbered_once_and_resent_until_applied(books: SharedBooks) -> None:
    a = ask(rpm=10, amount=5)
    books.admit_now(a)
    books.settle_now(bill(a, 3))
    [first] = books.cut()
    assert (first.seq, first.delta.requests, first.delta.spent[DAY]) == (1, 1, 3)
    assert first.delta.usage[("20261206", "auto", "small")] == [3, 1, 4, 6, 2]
    assert first.books == (DAY, MONTH)
    books.admit_now(ask(rpm=10))  # while the batch is unanswered
    [again] = books.cut()
    assert again.seq == 1
    assert again.delta is first.delta  # the same batch, not merged with the new request
    books.applied(again, (7.0, 0.0), (100, 200))
    assert books.owed()
    [second] = books.cut()
    assert (second.seq, second.delta.requests) == (2, 1)
    books.applied(second, (6.0, 0.0), (100, 200))
    assert not books.owed()


def test_applied_restarts_the_view_from_the_shared_state(books: SharedBooks) -> None:
    books.admit_now(ask(rpm=10, amount=50, hard=1000))
    [batch] = books.cut()
    books.admit_now(ask(rpm=10))  # taken after the batch was cut: not in Redis's answer
    books.applied(batch, (4.0, 0.0), (900, 900))  # other replicas took 5, spent 900
    grant = books.admit_now(ask(rpm=10, amount=60, hard=2000))
    assert grant.requests_left == 2  # 4 shared - 1 pending - this one
    assert grant.used == (900 + 50 + 60, 900 + 50 + 60)  # reservations still in flight
    assert books.admit_now(ask(amount=100, hard=1000)).reason == "daily"


def test_a_recently_active_tenant_is_read_then_left_alone(books: SharedBooks, clock: Clock) -> None:
    a = ask(rpm=10)
    books.admit_now(a)
    [batch] = books.cut()
    books.applied(batch, (9.0, 0.0), (0, 0))
    clock.ms += 500
    [read] = books.cut()
    assert (read.seq, read.delta.empty()) == (0, True)
    books.applied(read, (3.0, 0.0), (0, 0))  # another replica took 6
    assert books.views["t"].seq == 1
    assert books.admit_now(a).requests_left == 2
    clock.ms += 1500
    [last] = books.cut()  # the new request's delta
    books.applied(last, (2.0, 0.0), (0, 0))
    assert books.cut() == []


def test_a_period_that_ended_is_forgotten(books: SharedBooks) -> None:
    books.admit_now(ask(amount=5))
    [batch] = books.cut()
    books.applied(batch, (0.0, 0.0), (10, 10))
    periods = (Period("daily", "20261207", 0, 1), Period(*MONTH, 0, 1))
    tomorrow = Ask("t", 0, 0, 1, 5, periods, "m", 1)
    books.admit_now(tomorrow)
    [batch] = books.cut()
    assert batch.books == (("daily", "20261207"), MONTH)
    books.applied(batch, (0.0, 0.0), (0, 10))
    assert set(books.views["t"].shared) == {("daily", "20261207"), MONTH}


def test_adopt_keeps_the_view_not_the_deltas(books: SharedBooks, clock: Clock) -> None:
    for _ in range(3):
        books.admit_now(ask(rpm=10, amount=5))
    new = SharedBooks(clock_ms=clock)
    new.adopt(books)
    assert new.admit_now(ask(rpm=10)).requests_left == 6
    assert new.views["t"].shared[DAY] == 15  # the old store's reservations count until a sync
    assert [b.delta.requests for b in new.cut()] == [1]


def test_an_empty_batch_is_a_read(books: SharedBooks) -> None:
    books.admit_now(ask())
    [batch] = books.cut()
    assert isinstance(batch, Batch)
    assert batch.seq == 0  # no limits, no bill yet: nothing to send, only read


def admit(books: SharedBooks, a: Ask) -> tuple[bool, str, int, int, tuple[int, ...]]:
    """(ok, reason, requests left, tokens left, used) of an admission as ``Tenancy.admit`` asks
    the books: ``take``, else ``admit_now``."""
    view = books.take(a)
    if view is None:
        g = books.admit_now(a)
        return g.ok, g.reason, g.requests_left, g.tokens_left, g.used
    assert view.requests is not None
    assert view.tokens is not None
    return True, "", int(view.requests), int(view.tokens), tuple(view.use())


def test_the_usual_path_answers_as_the_local_ledger(clock: Clock) -> None:
    rng = random.Random(15)
    books = SharedBooks(clock_ms=clock)
    local = LocalLedger(clock_ms=lambda: int(clock.ms))
    periods = (Period(*DAY, 10_000, 3600), Period(*MONTH, 90_000, 7200))  # one tuple, as admission
    open_asks: list[Ask] = []
    answers: list[str] = []
    spent = 0
    for step in range(600):
        clock.ms += rng.choice((0, 0, 0, 50, 400, 3_000))
        if open_asks and rng.random() < 0.45:
            a = open_asks.pop(rng.randrange(len(open_asks)))
            actual, tokens = rng.randrange(0, 2 * a.amount + 1), rng.randrange(0, 2 * a.tokens + 1)
            done = Bill(
                a, "auto", "small", actual, tokens, tokens // 2, tokens - tokens // 2, 0, DAY[1]
            )
            books.settle_now(done)
            local.settle_now(done)
            spent += actual
            continue
        a = Ask(
            "t", 10, 2_000, rng.randrange(1, 900), rng.randrange(0, 400), periods, str(step), 60_000
        )
        synced = admit(books, a)
        alone = local.admit_now(a)
        assert (synced[0], synced[1], synced[4]) == (alone.ok, alone.reason, alone.used)
        # The same levels but for float rounding (refills and tokens given back are added in
        # another order): a count left can be one less.
        assert abs(synced[2] - alone.requests_left) <= 1
        assert abs(synced[3] - alone.tokens_left) <= 1
        answers.append(alone.reason)
        if alone.ok:
            open_asks.append(a)
    assert {"", "rpm", "tpm", "daily"} <= set(answers)  # every kind of answer was compared
    [batch] = books.cut()
    assert batch.delta.spent == {DAY: spent, MONTH: spent}
    view = books.views["t"]
    assert (view.reserving, view.spending) == (0, 0)  # folded into the books by the cut
    held = sum(a.amount for a in open_asks)
    assert (view.reserved.get(DAY, 0), view.reserved.get(MONTH, 0)) == (held, held)


def test_a_ticket_of_yesterday_settles_against_yesterdays_periods(books: SharedBooks) -> None:
    today = (Period(*DAY, 1000, 3600), Period(*MONTH, 0, 7200))
    tomorrow = (Period("daily", "20261207", 1000, 3600), Period(*MONTH, 0, 7200))
    late = Ask("t", 0, 0, 1, 400, today, "", 1)
    assert books.take(late) is None  # a new view: admit_now sets it up
    assert books.admit_now(late).ok
    assert books.take(Ask("t", 0, 0, 1, 100, today, "", 1)) is not None
    assert books.admit_now(Ask("t", 0, 0, 1, 700, tomorrow, "", 1)).used == (700, 1200)
    books.settle_now(bill(late, 250))
    view = books.views["t"]
    assert view.reserved == {DAY: 100, ("daily", "20261207"): 700, MONTH: 800}
    assert view.use() == [700, 1050]  # tomorrow's day, the month: 250 spent, 800 reserved
    [batch] = books.cut()
    assert batch.delta.spent == {DAY: 250, MONTH: 250}
