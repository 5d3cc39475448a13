"""The ledger in Redis, shared by every gateway replica: two Lua scripts run with EVALSHA.

Strict mode (``sync_s: 0``): every request round-trips here. The default synchronised mode
writes the same keys in batches instead (``syncer``).

``admit`` and ``settle`` have ``ledger.LocalLedger``'s semantics, each as one script, so a
request's checks and reservations are atomic across replicas and cost one round trip. Time is
Redis's own (``TIME``), so replicas with skewed clocks share one bucket. Every key of a tenant
carries the tenant as a hash tag (``PREFIX:{team-a}:...``): one slot per tenant should the Redis
be a cluster. Keys: ``rpm`` and ``tpm`` (buckets: level and stamp), ``budget:KIND:ID`` (spent and
reserved nano-dollars), ``reservations`` (a sorted set of open reservations by deadline: one a
dead gateway never settled is released by the next admission) and ``usage:DAY`` (counters per
route and model, read by ``switchman usage``). Used by ``store``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from switchman.gateway.tenancy.ledger import Ask, Bill, Grant, usage_fields

# KEYS: rpm, tpm, reservations, period books...  ARGV: rpm, tpm, tokens, amount, member, ttl_ms,
# then per period: hard, keep_s.  Returns ok, reason, requests left, requests reset ms, tokens
# left, tokens reset ms, retry ms, then per period spent + reserved.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, amount, member, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)
for _, m in ipairs(stale) do
  local parts = {}
  for p in string.gmatch(m, '[^|]+') do parts[#parts + 1] = p end
  for i = 3, #parts do redis.call('HINCRBY', parts[i], 'reserved', -tonumber(parts[2])) end
  redis.call('ZREM', KEYS[3], m)
end
local function level(key, cap)
  if cap <= 0 then return 0 end
  local v = redis.call('HMGET', key, 'level', 'stamp')
  if not v[1] then return cap end
  return math.min(cap, tonumber(v[1]) + math.max(now - tonumber(v[2]), 0) * cap / 60000)
end
local function wait(missing, cap)
  if cap <= 0 or missing <= 0 then return 0 end
  return math.ceil(missing * 60000 / cap)
end
local r, k = level(KEYS[1], rpm), level(KEYS[2], tpm)
local used = {}
for i = 4, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  used[#used + 1] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
local reason, retry = '', 0
if rpm > 0 and r < 1 then
  reason, retry = 'rpm', wait(1 - r, rpm)
elseif tpm > 0 and k < math.min(tokens, tpm) then
  reason, retry = 'tpm', wait(math.min(tokens, tpm) - k, tpm)
else
  for i = 1, #used do
    local hard = tonumber(ARGV[5 + 2 * i])
    if hard > 0 and used[i] + amount > hard then reason = 'period' .. i break end
  end
end
if reason == '' then
  if rpm > 0 then
    r = r - 1
    redis.call('HSET', KEYS[1], 'level', string.format('%.6f', r), 'stamp', now)
    redis.call('PEXPIRE', KEYS[1], 120000)
  end
  if tpm > 0 then
    k = k - tokens
    redis.call('HSET', KEYS[2], 'level', string.format('%.6f', k), 'stamp', now)
    redis.call('PEXPIRE', KEYS[2], 120000 + wait(-k, tpm))
  end
  if amount > 0 and #KEYS > 3 then
    for i = 4, #KEYS do
      redis.call('HINCRBY', KEYS[i], 'reserved', amount)
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[6 + 2 * (i - 3)]))
      used[i - 3] = used[i - 3] + amount
    end
    redis.call('ZADD', KEYS[3], now + ttl, member)
    redis.call('PEXPIRE', KEYS[3], ttl + 60000)
  end
end
local out = {reason == '' and 1 or 0, reason, math.max(math.floor(r), 0), wait(rpm - r, rpm),
  math.max(math.floor(k), 0), wait(tpm - k, tpm), retry}
for i = 1, #used do out[#out + 1] = used[i] end
return out
"""

# KEYS: tpm, reservations, usage, period books...  ARGV: member, actual, tpm, tokens reserved,
# tokens actual, usage field prefix, usage keep_s, then the usage counters (name, value)...
SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, actual, tpm = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local held = 0
if redis.call('ZREM', KEYS[2], member) == 1 then
  local parts = {}
  for p in string.gmatch(member, '[^|]+') do parts[#parts + 1] = p end
  held = tonumber(parts[2])
end
for i = 4, #KEYS do
  if held > 0 then redis.call('HINCRBY', KEYS[i], 'reserved', -held) end
  if actual > 0 then redis.call('HINCRBY', KEYS[i], 'spent', actual) end
end
if tpm > 0 then
  local v = redis.call('HMGET', KEYS[1], 'level', 'stamp')
  local k = tpm
  if v[1] then
    k = math.min(tpm, tonumber(v[1]) + math.max(now - tonumber(v[2]), 0) * tpm / 60000)
  end
  k = math.min(tpm, k + tonumber(ARGV[4]) - tonumber(ARGV[5]))
  redis.call('HSET', KEYS[1], 'level', string.format('%.6f', k), 'stamp', now)
  redis.call('PEXPIRE', KEYS[1], 120000 + math.max(math.ceil(-k * 60000 / tpm), 0))
end
for i = 8, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[3], ARGV[6] .. ARGV[i], tonumber(ARGV[i + 1]))
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
return held
"""


class RedisLedger:
    """``admit`` and ``settle`` in Redis (see the module docstring)."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    def key(self, tenant: str, *parts: str) -> str:
        return ":".join((self.prefix, "{" + tenant + "}", *parts))

    def _books(self, ask: Ask) -> list[str]:
        return [self.key(ask.tenant, "budget", p.kind, p.id) for p in ask.periods]

    def _member(self, ask: Ask) -> str:
        return "|".join((ask.member, str(ask.amount), *self._books(ask)))

    async def admit(self, ask: Ask) -> Grant:
        keys = [
            self.key(ask.tenant, "rpm"),
            self.key(ask.tenant, "tpm"),
            self.key(ask.tenant, "reservations"),
            *self._books(ask),
        ]
        args: list[Any] = [ask.rpm, ask.tpm, ask.tokens, ask.amount, self._member(ask), ask.ttl_ms]
        for period in ask.periods:
            args += [period.hard, period.keep_s]
        out = await self._admit(keys=keys, args=args)
        reason = out[1].decode() if isinstance(out[1], bytes) else str(out[1])
        if reason.startswith("period"):
            reason = ask.periods[int(reason[6:]) - 1].kind
        return Grant(
            ok=out[0] == 1,
            reason=reason,
            requests_left=int(out[2]),
            requests_reset_ms=int(out[3]),
            tokens_left=int(out[4]),
            tokens_reset_ms=int(out[5]),
            retry_ms=int(out[6]),
            used=tuple(int(v) for v in out[7:]),
        )

    async def settle(self, bill: Bill) -> None:
        ask = bill.ask
        keys = [
            self.key(ask.tenant, "tpm"),
            self.key(ask.tenant, "reservations"),
            self.key(ask.tenant, "usage", bill.day),
            *self._books(ask),
        ]
        args: list[Any] = [
            self._member(ask),
            bill.actual,
            ask.tpm,
            ask.tokens,
            bill.tokens,
            f"{bill.route}|{bill.model}|",
            bill.keep_s,
        ]
        for name, value in usage_fields(bill):
            args += [name, value]
        await self._settle(keys=keys, args=args)

    async def ping(self) -> None:
        await self.client.ping()
