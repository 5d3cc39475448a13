"""The background exchange between this process's ``SharedBooks`` and Redis, every ``sync_s``.

Each sync is one pipelined round trip: one ``SYNC`` script per tenant with deltas or recent
activity (one script keeps a tenant's keys, which share its hash tag, in one cluster slot), or a
``PING`` when there is none (so ``/readyz`` and ``on_redis_down: closed`` know Redis answers).
The script applies a batch only if its number is above the last this replica had applied for the
tenant (``PREFIX:{TENANT}:applied:REPLICA``, one key per replica id, which expires two days
after that replica's last batch, so the marks of replicas gone with a restart do not pile up): a
batch resent after a lost reply is applied once. It writes the same keys as ``redisledger``
(buckets, ``budget:KIND:ID`` spent, ``usage:DAY``), so ``switchman usage`` and strict replicas
read the same books. A bucket's debt (replicas together took more than it held) is kept down to
one bucket below empty, so a backlog sent after an outage never blocks a tenant for longer than
a minute. Used by ``store``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from switchman.gateway.tenancy.ledger import USAGE
from switchman.gateway.tenancy.shared import Batch, SharedBooks

# KEYS: rpm, tpm, applied (this replica's), period books..., usage days...  ARGV: replica (its
# key carries it), seq, rpm, tpm, requests taken, tokens taken, number of books, then per book:
# spent, keep_s; then per usage day: keep_s, number of fields, then (field, value)...  Returns the
# bucket levels (strings: Lua numbers would be truncated), then per book spent + reserved.
SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = tonumber(ARGV[2])
local fresh = false
if seq > 0 then
  fresh = tonumber(redis.call('GET', KEYS[3]) or '0') < seq
  if fresh then redis.call('SET', KEYS[3], seq, 'EX', 172800) end
end
local function bucket(key, cap, taken)
  if cap <= 0 then return '0' end
  local v = redis.call('HMGET', key, 'level', 'stamp')
  local level = cap
  if v[1] then
    level = math.min(cap, tonumber(v[1]) + math.max(now - tonumber(v[2]), 0) * cap / 60000)
  end
  if fresh and taken ~= 0 then
    level = math.max(math.min(cap, level - taken), -cap)
    redis.call('HSET', key, 'level', string.format('%.6f', level), 'stamp', now)
    redis.call('PEXPIRE', key, 120000 + math.max(math.ceil(-level * 60000 / cap), 0))
  end
  return string.format('%.6f', level)
end
local out = {bucket(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[5])),
  bucket(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[6]))}
local nbooks = tonumber(ARGV[7])
local a = 8
for i = 1, nbooks do
  local key, spent = KEYS[3 + i], tonumber(ARGV[a])
  if fresh and spent ~= 0 then
    redis.call('HINCRBY', key, 'spent', spent)
    redis.call('EXPIRE', key, tonumber(ARGV[a + 1]))
  end
  local v = redis.call('HMGET', key, 'spent', 'reserved')
  out[#out + 1] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  a = a + 2
end
for i = 4 + nbooks, #KEYS do
  local keep, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  for j = 1, n do
    if fresh then redis.call('HINCRBY', KEYS[i], ARGV[a], tonumber(ARGV[a + 1])) end
    a = a + 2
  end
  if fresh then redis.call('EXPIRE', KEYS[i], keep) end
end
return out
"""


class Syncer:
    """Sends ``books``' batches to Redis and applies the answers (see the module docstring)."""

    def __init__(self, client: Redis, prefix: str, replica: str, books: SharedBooks) -> None:
        self.client = client
        self.prefix = prefix
        self.replica = replica
        self.books = books
        self.sha = client.register_script(SYNC).sha

    def key(self, tenant: str, *parts: str) -> str:
        return ":".join((self.prefix, "{" + tenant + "}", *parts))

    def command(self, batch: Batch) -> tuple[Any, ...]:
        """One tenant's EVALSHA arguments: numkeys, keys, args."""
        t, delta = batch.tenant, batch.delta
        keys = [self.key(t, "rpm"), self.key(t, "tpm"), self.key(t, "applied", self.replica)]
        args: list[Any] = [self.replica, batch.seq, batch.rpm, batch.tpm]
        args += [delta.requests, delta.tokens, len(batch.books)]
        for book, keep in zip(batch.books, batch.keep, strict=True):
            keys.append(self.key(t, "budget", *book))
            args += [delta.spent.get(book, 0), delta.keep.get(book, keep)]
        days: dict[str, list[Any]] = {}
        for (day, route, model), row in delta.usage.items():
            fields = days.setdefault(day, [])
            for name, value in zip(USAGE, row, strict=True):
                if value:
                    fields += [f"{route}|{model}|{name}", value]
        for day, fields in days.items():
            keys.append(self.key(t, "usage", day))
            args += [delta.usage_keep.get(day, 400 * 86400), len(fields) // 2, *fields]
        return (len(keys), *keys, *args)

    async def sync(self) -> None:
        """One round trip: every batch, or a PING. Raises ``RedisError``/``OSError`` when Redis
        does not answer (the batches stay in flight)."""
        batches = self.books.cut()
        if not batches:
            await self.client.ping()
            return
        commands = [self.command(b) for b in batches]
        replies = await self._run(commands)
        if any(isinstance(r, NoScriptError) for r in replies):
            await self.client.script_load(SYNC)
            replies = await self._run(commands)
        failed: BaseException | None = None
        for batch, reply in zip(batches, replies, strict=True):
            if isinstance(reply, BaseException):
                failed = failed or reply
                continue
            levels = (float(reply[0]), float(reply[1]))
            self.books.applied(batch, levels, tuple(int(v) for v in reply[2:]))
        if failed is not None:
            raise failed

    async def _run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.evalsha(self.sha, *command)
        return list(await pipe.execute(raise_on_error=False))
