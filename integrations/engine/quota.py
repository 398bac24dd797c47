"""One quota per provider app, shared by every worker and tenant: a moving window kept in Redis.

The provider counts requests per app, not per tenant or worker, so the limiter must be global: Celery's
per-worker `rate_limit` cannot keep twenty tenants on four workers inside one provider's quota. The moving
window admits at most Q requests in any interval of the window's length, hence in the provider's fixed or
rolling windows too; a small slack absorbs the time between our count and the provider's. (The `limits`
package is not used: its windows are whole multiples of a second, so the slack-widened window, 10 s becoming
10.1 s, cannot be said; and it has no way to stop every worker until a 429's Retry-After has passed.)
"""

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from integrations.catalog import PROVIDERS

# A rate limit without a usable reset time (Salesforce's 403 REQUEST_LIMIT_EXCEEDED, a 429 with no Retry-After)
# blocks the provider for a short backoff that doubles with each such answer in a row, capped at minutes:
# never the catalogue's whole window (24 h for Salesforce). The count of strikes forgets itself after
# STRIKE_MEMORY_SECONDS without a new one.
NO_RESET_BACKOFF_BASE_SECONDS = 5.0
NO_RESET_BACKOFF_CAP_SECONDS = 300.0
STRIKE_MEMORY_SECONDS = 900


def no_reset_backoff(strikes: int) -> float:
    return min(NO_RESET_BACKOFF_CAP_SECONDS, NO_RESET_BACKOFF_BASE_SECONDS * 2 ** max(0, strikes - 1))


# Requests reach the provider a little after we count them; widen our window by this much.
WINDOW_SLACK = 0.01
WINDOW_SLACK_MIN_SECONDS = 0.05

# Waiters are served in order: first those waiting for a priority call ("Sync now"), then the others by how
# long they have waited. Without an order, every waiter wakes when a slot frees and the quickest takes it: one
# tenant's run could lose the race for the whole of its quota wait while others won twice, and a "Sync now"
# waited behind the backlog. A waiter looks again at least every POLL_SECONDS (that is its heartbeat); one not
# seen for STALE_SECONDS (a killed worker, a caller that gave up) loses its place.
POLL_SECONDS = 0.5
STALE_SECONDS = 2.0
AHEAD_POLL_SECONDS = 0.01  # a slot is free but a waiter ahead takes it: look again this soon
PRIORITY_AHEAD_MS = 10**12

# Atomically: place the waiter in line; drop hits older than the window and waiters not seen lately; admit if
# a slot is free for the waiter's place in line, else say how long to wait (-1: a waiter ahead takes the slot).
# Time comes from Redis so that workers on several hosts share one clock.
_HIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local ticket = ARGV[4]
local stale = tonumber(ARGV[6])
if not redis.call('ZSCORE', KEYS[3], ticket) then
  local rank = now
  if ARGV[5] == '1' then rank = now - tonumber(ARGV[7]) end
  redis.call('ZADD', KEYS[3], rank, ticket)
end
redis.call('ZADD', KEYS[4], now, ticket)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - stale)) do
  redis.call('ZREM', KEYS[3], gone)
  redis.call('ZREM', KEYS[4], gone)
end
redis.call('PEXPIRE', KEYS[3], stale * 2)
redis.call('PEXPIRE', KEYS[4], stale * 2)
local block = redis.call('PTTL', KEYS[2])
if block > 0 then return block end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local free = limit - redis.call('ZCARD', KEYS[1])
if free > 0 then
  if redis.call('ZRANK', KEYS[3], ticket) < free then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    redis.call('ZREM', KEYS[3], ticket)
    redis.call('ZREM', KEYS[4], ticket)
    return 0
  end
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@dataclass(frozen=True)
class Quota:
    limit: int
    window_seconds: float


def configured_quota(provider: str) -> Quota:
    """The catalogue's quota, overridden by settings.PROVIDER_QUOTAS ({"hubspot": (100, 10)})."""
    override = getattr(settings, "PROVIDER_QUOTAS", {}).get(provider)
    if override:
        return Quota(int(override[0]), float(override[1]))
    info = PROVIDERS[provider]
    return Quota(info.quota, float(info.window_seconds))


def _window_ms(provider: str) -> tuple[int, int]:
    q = configured_quota(provider)
    window = q.window_seconds + max(WINDOW_SLACK_MIN_SECONDS, q.window_seconds * WINDOW_SLACK)
    return int(window * 1000), q.limit


_USED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
"""


class RedisWindow:
    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url)
        self._hit = self._redis.register_script(_HIT_LUA)
        self._used = self._redis.register_script(_USED_LUA)

    def used(self, provider: str) -> int:
        """Calls admitted within the window now."""
        window_ms, _ = _window_ms(provider)
        return int(self._used(keys=[f"lineup:quota:{provider}"], args=[window_ms]))

    def try_hit(self, provider: str, ticket: str | None = None, *, priority: bool = False) -> float:
        """0 when admitted, else the seconds to wait; the waiter keeps its place in line under its ticket."""
        window_ms, limit = _window_ms(provider)
        wait_ms = int(
            self._hit(
                keys=[
                    f"lineup:quota:{provider}",
                    f"lineup:quota-block:{provider}",
                    f"lineup:quota-line:{provider}",
                    f"lineup:quota-seen:{provider}",
                ],
                args=[
                    window_ms,
                    limit,
                    uuid.uuid4().hex,
                    ticket or uuid.uuid4().hex,
                    int(priority),
                    int(STALE_SECONDS * 1000),
                    PRIORITY_AHEAD_MS,
                ],
            )
        )
        return AHEAD_POLL_SECONDS if wait_ms < 0 else wait_ms / 1000

    def leave(self, provider: str, ticket: str) -> None:
        pipe = self._redis.pipeline()
        pipe.zrem(f"lineup:quota-line:{provider}", ticket)
        pipe.zrem(f"lineup:quota-seen:{provider}", ticket)
        pipe.execute()

    def block(self, provider: str, seconds: float) -> None:
        key, ms = f"lineup:quota-block:{provider}", max(1, int(seconds * 1000))
        current = self._redis.pttl(key)
        if current is None or current < ms:
            self._redis.set(key, b"1", px=ms)

    def blocked_for(self, provider: str) -> float:
        ttl = self._redis.pttl(f"lineup:quota-block:{provider}")
        return ttl / 1000 if ttl and ttl > 0 else 0.0

    def strike(self, provider: str) -> int:
        key = f"lineup:quota-strikes:{provider}"
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, STRIKE_MEMORY_SECONDS)
        return int(pipe.execute()[0])

    def unblock(self, provider: str) -> None:
        self._redis.delete(f"lineup:quota-block:{provider}", f"lineup:quota-strikes:{provider}")

    def reset(self, provider: str) -> None:
        self._redis.delete(
            f"lineup:quota:{provider}",
            f"lineup:quota-block:{provider}",
            f"lineup:quota-strikes:{provider}",
            f"lineup:quota-line:{provider}",
            f"lineup:quota-seen:{provider}",
        )


class MemoryWindow:
    """The same window inside one process: the demo's single worker, and unit tests."""

    def __init__(self):
        self._hits: dict[str, deque] = {}
        self._blocked_until: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}
        self._line: dict[str, dict[str, list[float]]] = {}  # provider -> ticket -> [rank, last seen]
        self._lock = threading.Lock()

    def try_hit(self, provider: str, ticket: str | None = None, *, priority: bool = False) -> float:
        window_ms, limit = _window_ms(provider)
        window = window_ms / 1000
        ticket = ticket or uuid.uuid4().hex
        with self._lock:
            now = time.monotonic()
            line = self._line.setdefault(provider, {})
            place = line.setdefault(ticket, [now - PRIORITY_AHEAD_MS / 1000 if priority else now, now])
            place[1] = now
            for gone in [t for t, (_, seen) in line.items() if seen <= now - STALE_SECONDS]:
                del line[gone]
            blocked = self._blocked_until.get(provider, 0.0) - now
            if blocked > 0:
                return blocked
            hits = self._hits.setdefault(provider, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            free = limit - len(hits)
            if free > 0:
                ahead = sum(1 for rank, _ in line.values() if rank < place[0])
                if ahead < free:
                    hits.append(now)
                    del line[ticket]
                    return 0.0
                return AHEAD_POLL_SECONDS
            return max(0.001, hits[0] + window - now)

    def leave(self, provider: str, ticket: str) -> None:
        with self._lock:
            self._line.get(provider, {}).pop(ticket, None)

    def used(self, provider: str) -> int:
        window_ms, _ = _window_ms(provider)
        with self._lock:
            now = time.monotonic()
            return sum(1 for hit in self._hits.get(provider, ()) if hit > now - window_ms / 1000)

    def block(self, provider: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._blocked_until[provider] = max(self._blocked_until.get(provider, 0.0), until)

    def blocked_for(self, provider: str) -> float:
        with self._lock:
            return max(0.0, self._blocked_until.get(provider, 0.0) - time.monotonic())

    def strike(self, provider: str) -> int:
        with self._lock:
            now = time.monotonic()
            n, at = self._strikes.get(provider, (0, now))
            n = 1 if now - at > STRIKE_MEMORY_SECONDS else n + 1
            self._strikes[provider] = (n, now)
            return n

    def unblock(self, provider: str) -> None:
        with self._lock:
            self._blocked_until.pop(provider, None)
            self._strikes.pop(provider, None)

    def reset(self, provider: str) -> None:
        with self._lock:
            self._hits.pop(provider, None)
            self._line.pop(provider, None)
            self._blocked_until.pop(provider, None)
            self._strikes.pop(provider, None)


class ProviderQuota:
    """acquire() before every provider call; observe() after, with what the provider said of its quota."""

    def __init__(self, url: str):
        self.url = url
        self._window = RedisWindow(url) if url.startswith(("redis://", "rediss://")) else MemoryWindow()

    def acquire(
        self, provider: str, *, timeout: float = 30.0, ticket: str | None = None, priority: bool = False
    ) -> bool:
        """Wait for a free slot in the provider's quota, in line behind those who waited longer (behind priority
        waiters only, with `priority`); False if none came within `timeout` seconds.

        A caller that waits in several steps passes the same `ticket` to each and keeps its place in line; it
        calls leave() if it gives up. Without a ticket, a waiter that times out leaves the line itself.
        """
        own = ticket is None
        ticket = ticket or uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while True:
            wait = self._window.try_hit(provider, ticket, priority=priority)
            if wait <= 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                if own:
                    self._window.leave(provider, ticket)
                return False
            time.sleep(min(wait, left, POLL_SECONDS))

    def leave(self, provider: str, ticket: str) -> None:
        """A waiter gives up its place in line."""
        self._window.leave(provider, ticket)

    def observe(
        self,
        provider: str,
        *,
        retry_after: float | None = None,
        remaining: int | None = None,
        reset_seconds: float | None = None,
    ) -> None:
        """Stop every worker until the provider's quota resets: after a 429, or when it says none remains."""
        if retry_after:
            self._window.block(provider, retry_after)
        elif remaining is not None and remaining <= 0 and reset_seconds:
            # A drain that uses the quota to the full hears "0 remaining" on the last call of every provider
            # window. When our own window is full too, that last call was ours and the window already holds
            # every worker until the next slot; blocking for the provider's whole interval on top left up to a
            # window of the quota unused each time. Only a provider that ran out before us (another client of
            # the same app) blocks everyone.
            if self._window.used(provider) >= configured_quota(provider).limit:
                return
            self._window.block(provider, reset_seconds)

    def block_without_reset(self, provider: str) -> float:
        """The provider said "no quota" without saying until when: block it until its window ends when that
        window is short (seconds), else for the next step of a short growing backoff (never a day)."""
        window = configured_quota(provider).window_seconds
        if window <= NO_RESET_BACKOFF_CAP_SECONDS:
            self._window.block(provider, window)
            return window
        seconds = no_reset_backoff(self._window.strike(provider))
        self._window.block(provider, seconds)
        return seconds

    def blocked_for(self, provider: str) -> float:
        return self._window.blocked_for(provider)

    def unblock(self, provider: str) -> None:
        """An operator says the quota is back ("Quota is back"): the block and its backoff are forgotten."""
        self._window.unblock(provider)

    def reset(self, provider: str) -> None:
        self._window.reset(provider)


@lru_cache(maxsize=4)
def _quota_for(url: str) -> ProviderQuota:
    return ProviderQuota(url)


def provider_quota() -> ProviderQuota:
    return _quota_for(settings.RATE_LIMIT_STORAGE_URL)
