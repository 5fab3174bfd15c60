"""The Redis limiter: every instance shares the counters; one Lua script per reserve and per settle.

Why scripts: the check and the reservation must be one atomic step on the server, or N instances
each read "under the limit" and all reserve (LiteLLM #6938, #34732, #40291). A script runs alone on
Redis; it reads every counter of the request, and only if all pass writes all of them. The reply
says which checks refused and when they can admit again. The script asks Redis for the time
(``TIME``), so every instance agrees on windows whatever their clocks say.

Keys (``prefix`` defaults to ``trioproxy:lim:``; one Redis database may hold several proxies):

============================  ======================================================================
``{p}rpm:{key}``              ZSET, the sliding log: member ``{request_id}|1``, score = admission ms
``{p}tpm:{key}:log``          ZSET, member ``{request_id}|{tokens}``; ``{p}tpm:{key}:log:sum`` their total
``{p}max_parallel:{key}``     integer, requests in flight
``{p}budget:{key}``           HASH, field = window id, value = micro-USD spent + reserved in it
``{p}resv:{request_id}``      the reservation record (JSON: what was taken where), deleted by settle
``{p}open``                   ZSET of open reservations, score = lease deadline (ms, server time)
============================  ======================================================================

Logs expire by score (and the keys by TTL once idle); budget hashes keep the current and previous
window (the TTL runs one duration past the window's end). Redis must not evict these keys
(``maxmemory-policy noeviction``, or a database of their own): an evicted reservation record
would leak its parallel slot. Redis Cluster is not supported (the keys of one request would
need one hash slot); see ``docs/deploy.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .limiter import (
    DEFAULT_LEASE,
    DEFAULT_MAX_RESERVATION_AGE,
    Admission,
    Check,
    Kind,
    LimiterService,
    combine_retry_after,
    validate_checks,
)
from .redis import RedisClient, Script

__all__ = ["RedisLimiter"]

_PRELUDE = r"""
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end
local function amount_of(member) return tonumber(string.match(member, '|(%-?%d+)$')) end
local function window_id(now, window_ms, anchor_ms)
  if window_ms == 0 then return 0 end
  return math.floor((now - anchor_ms) / window_ms)
end
-- sliding log: drop the entries admitted at or before `cutoff`
local function expire_log(key, is_tpm, cutoff)
  if is_tpm then
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff)
    if #old == 0 then return end
    local s = 0
    for _, m in ipairs(old) do s = s + amount_of(m) end
    if s ~= 0 then redis.call('DECRBY', key .. ':sum', fmt(s)) end
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
end
local function used_of(kind, key, now, window_ms, anchor_ms, seed, seed_window)
  if kind == 'rpm' then
    expire_log(key, false, now - window_ms)
    return redis.call('ZCARD', key)
  elseif kind == 'tpm' then
    expire_log(key, true, now - window_ms)
    return tonumber(redis.call('GET', key .. ':sum') or '0')
  elseif kind == 'max_parallel' then
    return tonumber(redis.call('GET', key) or '0')
  end
  local wid = window_id(now, window_ms, anchor_ms)
  local v = redis.call('HGET', key, fmt(wid))
  if v then return tonumber(v) end
  if seed ~= '' and (seed_window == '' or tonumber(seed_window) == wid) then return tonumber(seed) end
  return 0
end
-- ms until the check could admit again; -1 = unknown or never
local function wait_of(kind, key, limit, now, window_ms, anchor_ms)
  if kind == 'max_parallel' then return -1 end
  if kind == 'budget' then
    if window_ms == 0 then return -1 end
    return anchor_ms + (window_id(now, window_ms, anchor_ms) + 1) * window_ms - now
  end
  if kind == 'rpm' then
    local n = redis.call('ZCARD', key)
    local idx = n - limit
    if limit == 0 or idx >= n then return -1 end
    local e = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
    return tonumber(e[2]) + window_ms - now
  end
  local left = tonumber(redis.call('GET', key .. ':sum') or '0')
  local es = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #es, 2 do
    left = left - amount_of(es[i])
    if left < limit then return tonumber(es[i + 1]) + window_ms - now end
  end
  return -1
end
-- give back what a reservation took, with the actuals (tokens, cost); release = actuals 0
local function settle_items(items, rid, now, tokens, cost)
  for _, t in ipairs(items) do
    local kind, key, amount, pos, window_ms, anchor_ms = t[1], t[2], t[3], t[4], t[5], t[6]
    if kind == 'tpm' then
      local member = rid .. '|' .. fmt(amount)
      if redis.call('ZSCORE', key, member) then
        redis.call('ZREM', key, member)
        redis.call('ZADD', key, fmt(pos), rid .. '|' .. fmt(tokens))
        redis.call('INCRBY', key .. ':sum', fmt(tokens - amount))
      end
    elseif kind == 'max_parallel' then
      if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
    elseif kind == 'budget' then
      local cur = window_id(now, window_ms, anchor_ms)
      if cur == pos then
        if redis.call('HEXISTS', key, fmt(pos)) == 1 then
          redis.call('HINCRBY', key, fmt(pos), fmt(cost - amount))
        end
      else
        if redis.call('HEXISTS', key, fmt(pos)) == 1 then redis.call('HINCRBY', key, fmt(pos), fmt(-amount)) end
        if redis.call('HEXISTS', key, fmt(cur)) == 1 then redis.call('HINCRBY', key, fmt(cur), fmt(cost)) end
      end
    end
  end
end
"""

#: KEYS: record, open set, one counter per check.
#: ARGV: request id, now ms ('' = server TIME), lease ms, then 7 per check:
#:   kind, limit, amount, window ms, anchor ms, seed (''), seed window ('')
#: → {1, 0, used...} admitted; {2, 0, used...} already reserved (a retry);
#:   {0, n, refused index..., wait ms..., used...} refused (nothing written)
RESERVE = Script(_PRELUDE + r"""
local rid = ARGV[1]
local now = now_ms(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local n = #KEYS - 2
local function arg(i, j) return ARGV[3 + (i - 1) * 7 + j] end
local repeated = redis.call('EXISTS', KEYS[1]) == 1
local used, refused, waits = {}, {}, {}
for i = 1, n do
  local kind, limit = arg(i, 1), tonumber(arg(i, 2))
  local window_ms, anchor_ms = tonumber(arg(i, 4)), tonumber(arg(i, 5))
  used[i] = used_of(kind, KEYS[2 + i], now, window_ms, anchor_ms, arg(i, 6), arg(i, 7))
  if not repeated and used[i] >= limit then
    refused[#refused + 1] = i
    waits[#waits + 1] = wait_of(kind, KEYS[2 + i], limit, now, window_ms, anchor_ms)
  end
end
if repeated then return {2, 0, unpack(used)} end
if #refused > 0 then
  local out = {0, #refused}
  for _, v in ipairs(refused) do out[#out + 1] = v end
  for _, v in ipairs(waits) do out[#out + 1] = v end
  for _, v in ipairs(used) do out[#out + 1] = v end
  return out
end
local taken = {}
for i = 1, n do
  local kind, key, amount = arg(i, 1), KEYS[2 + i], tonumber(arg(i, 3))
  local window_ms, anchor_ms = tonumber(arg(i, 4)), tonumber(arg(i, 5))
  local pos = 0
  if kind == 'rpm' or kind == 'tpm' then
    if kind == 'rpm' then amount = 1 end
    redis.call('ZADD', key, fmt(now), rid .. '|' .. fmt(amount))
    redis.call('PEXPIRE', key, fmt(window_ms + 1000))
    if kind == 'tpm' then
      redis.call('INCRBY', key .. ':sum', fmt(amount))
      redis.call('PEXPIRE', key .. ':sum', fmt(window_ms + 1000))
    end
    pos = now
  elseif kind == 'max_parallel' then
    amount = 1
    redis.call('INCR', key)
  else
    local wid = window_id(now, window_ms, anchor_ms)
    local field = fmt(wid)
    if redis.call('HEXISTS', key, field) == 0 then
      redis.call('HSET', key, field, fmt(used[i]))      -- seeded once: the value read above
      if window_ms > 0 then
        for _, f in ipairs(redis.call('HKEYS', key)) do
          if tonumber(f) < wid - 1 then redis.call('HDEL', key, f) end
        end
      end
    end
    redis.call('HINCRBY', key, field, fmt(amount))
    if window_ms > 0 then
      redis.call('PEXPIRE', key, fmt(anchor_ms + (wid + 1) * window_ms - now + window_ms))
    end
    pos = wid
  end
  used[i] = used[i] + amount
  taken[#taken + 1] = {kind, key, amount, pos, window_ms, anchor_ms}
end
redis.call('SET', KEYS[1], cjson.encode(taken))
redis.call('ZADD', KEYS[2], fmt(now + lease_ms), rid)
return {1, 0, unpack(used)}
""")

#: KEYS: record, open set. ARGV: request id, now ms (''), tokens, cost → 1 applied, 0 no record
SETTLE = Script(_PRELUDE + r"""
local rec = redis.call('GET', KEYS[1])
if not rec then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
settle_items(cjson.decode(rec), ARGV[1], now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
""")

#: KEYS: open set. ARGV: record key prefix, now ms (''), max → how many were released
SWEEP = Script(_PRELUDE + r"""
local now = now_ms(ARGV[2])
local rids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[3]))
for _, rid in ipairs(rids) do
  local rk = ARGV[1] .. rid
  local rec = redis.call('GET', rk)
  if rec then
    redis.call('DEL', rk)
    settle_items(cjson.decode(rec), rid, now, 0, 0)
  end
  redis.call('ZREM', KEYS[1], rid)
end
return #rids
""")

#: KEYS: open set. ARGV: now ms (''), lease ms, request ids... (only those still open are renewed)
RENEW = Script(_PRELUDE + r"""
local deadline = fmt(now_ms(ARGV[1]) + tonumber(ARGV[2]))
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
return #ARGV - 2
""")

#: KEYS: one counter per check. ARGV: now ms (''), then 7 per check as RESERVE → used...
USAGE = Script(_PRELUDE + r"""
local now = now_ms(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 7
  out[i] = used_of(ARGV[b + 1], KEYS[i], now, tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]),
                   ARGV[b + 6], ARGV[b + 7])
end
return out
""")

SWEEP_BATCH = 500


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


class RedisLimiter(LimiterService):
    """:class:`~trioproxy.coordination.limiter.Limiter` shared by every instance on one Redis.

    ``clock`` is for tests only: it replaces the server's ``TIME`` by the caller's clock (unix
    seconds), so windows can be driven deterministically. In production leave it None.
    """

    def __init__(self, client: RedisClient, *, prefix: str = "trioproxy:lim:",
                 clock: Callable[[], float] | None = None, lease: float = DEFAULT_LEASE,
                 sweep_interval: float = 1.0, timeout: float | None = None,
                 max_age: float = DEFAULT_MAX_RESERVATION_AGE) -> None:
        super().__init__(lease=lease, sweep_interval=sweep_interval, max_age=max_age)
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self.timeout = timeout
        self._open_key = prefix + "open"
        self._record_prefix = prefix + "resv:"

    def _now(self) -> str:
        return "" if self.clock is None else str(_ms(self.clock()))

    def _counter(self, kind: Kind, key: str) -> str:
        # a tpm log ends in ":log" and its total (the script appends ":sum") in ":log:sum", so no
        # client-chosen id (a customer named "x:sum") can name another counter's total
        return f"{self.prefix}{kind.value}:{key}" + (":log" if kind is Kind.TPM else "")

    @staticmethod
    def _check_args(check: Check) -> list[object]:
        return [check.kind.value, check.limit, check.cost, check.window_ms, check.anchor_ms,
                "" if check.seed is None else check.seed,
                "" if check.seed_window is None else check.seed_window]

    async def reserve(self, request_id: str, checks: Sequence[Check], *,
                      lease: float | None = None) -> Admission:
        checks = validate_checks(checks)
        keys = [self._record_prefix + request_id, self._open_key]
        args: list[object] = [request_id, self._now(), _ms(self.lease if lease is None else lease)]
        for check in checks:
            keys.append(self._counter(check.kind, check.key))
            args += self._check_args(check)
        self._own[request_id] = 0
        try:
            reply = await self.client.evalsha(RESERVE, keys, args, timeout=self.timeout)
        except BaseException:
            # outcome unknown: the caller's release (or the lease) settles it; stop renewing it
            self._own.pop(request_id, None)
            raise
        status, refused_count = reply[0], reply[1]
        if status:
            return Admission(True, checks, tuple(reply[2:]))
        self._own.pop(request_id, None)
        refused = tuple(i - 1 for i in reply[2:2 + refused_count])
        waits = [None if w < 0 else w / 1000 for w in reply[2 + refused_count:2 + 2 * refused_count]]
        used = tuple(reply[2 + 2 * refused_count:])
        retry = combine_retry_after(waits, [checks[i].kind for i in refused],
                                    [checks[i].window for i in refused])
        return Admission(False, checks, used, refused, retry)

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        self._own.pop(request_id, None)
        applied = await self.client.evalsha(
            SETTLE, [self._record_prefix + request_id, self._open_key],
            [request_id, self._now(), int(tokens), int(cost)], timeout=self.timeout)
        return applied == 1

    async def release(self, request_id: str) -> bool:
        return await self.settle(request_id, tokens=0, cost=0)

    async def usage(self, checks: Sequence[Check]) -> tuple[int, ...]:
        checks = validate_checks(checks)
        args: list[object] = [self._now()]
        for check in checks:
            args += self._check_args(check)
        reply = await self.client.evalsha(USAGE, [self._counter(c.kind, c.key) for c in checks], args,
                                          timeout=self.timeout)
        return tuple(reply)

    async def forget(self, kind: Kind, key: str) -> None:
        counter = self._counter(kind, key)
        await self.client.execute("DEL", counter, *([counter + ":sum"] if kind is Kind.TPM else []),
                                  timeout=self.timeout)

    async def sweep(self) -> int:
        total = 0
        while True:
            swept = await self.client.evalsha(SWEEP, [self._open_key],
                                              [self._record_prefix, self._now(), SWEEP_BATCH],
                                              timeout=self.timeout)
            total += swept
            if swept < SWEEP_BATCH:
                return total

    async def _renew(self, request_ids: Sequence[str], lease: float) -> None:
        await self.client.evalsha(RENEW, [self._open_key], [self._now(), _ms(lease), *request_ids],
                                  timeout=self.timeout)

    async def open_reservations(self) -> int:
        return await self.client.execute("ZCARD", self._open_key, timeout=self.timeout)
