"""Rate-limit counters: the `limits` library's strategies, over Redis when `REDIS_URL` is set
(shared by every server process) and in this process's memory otherwise.

- In memory, limits' *synchronous* `MemoryStorage` is called directly (no I/O, so no await
  needed). Its asyncio twin was measured at ~0.5 ms a hit once 5,000 keys (client IPs) were
  stored: every hit starts a task that walks every key to expire old ones (and the moving
  window hops to a thread per key). The synchronous one sweeps from a timer thread instead.
- Redis is limits' async `RedisStorage` (coredis), keys under `REDIS_KEY_PREFIX:`. When Redis
  fails, the counters fall back to this process's memory for `REDIS_RETRY_S`, with one warning
  per outage: limits stay on (per process) rather than off, and no request fails for Redis.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem
from limits import strategies as sync_strategies
from limits.aio import strategies as aio_strategies
from limits.aio.storage import Storage as AsyncStorage
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string

logger = logging.getLogger(__name__)

Strategy = Literal["fixed-window", "sliding-window-counter", "moving-window"]
REDIS_RETRY_S = 5.0  # after a Redis failure, memory counters for this long before trying again
REDIS_TIMEOUT_S = 0.25  # a Redis that does not answer must not hold a request up for long

_SYNC: dict[str, Callable[[MemoryStorage], sync_strategies.RateLimiter]] = {
    "fixed-window": sync_strategies.FixedWindowRateLimiter,
    "sliding-window-counter": sync_strategies.SlidingWindowCounterRateLimiter,
    "moving-window": sync_strategies.MovingWindowRateLimiter,
}
_ASYNC: dict[str, Callable[[AsyncStorage], aio_strategies.RateLimiter]] = {
    "fixed-window": aio_strategies.FixedWindowRateLimiter,
    "sliding-window-counter": aio_strategies.SlidingWindowCounterRateLimiter,
    "moving-window": aio_strategies.MovingWindowRateLimiter,
}


@dataclass(frozen=True, slots=True)
class Window:
    """One limit's state after a hit: whether the hit fit, and what is left until when."""

    allowed: bool
    item: RateLimitItem
    remaining: int
    reset_at: float  # seconds since the epoch


class Counters:
    """The storage every limit of one app counts in, with the Redis-to-memory fallback."""

    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        self.memory = MemoryStorage()
        self.redis: AsyncStorage | None = None
        if redis_url:
            uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            storage = storage_from_string(
                uri,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                connect_timeout=REDIS_TIMEOUT_S,
                stream_timeout=REDIS_TIMEOUT_S,
            )
            assert isinstance(storage, AsyncStorage)
            self.redis = storage
        self._redis_down_until = 0.0

    @property
    def shared(self) -> bool:
        """Whether the counters are in Redis right now (shared by every process)."""
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    def redis_failed(self, exc: Exception) -> None:
        """Count in memory for a while; warn once per outage."""
        if time.monotonic() >= self._redis_down_until:
            logger.warning(
                "rate limits: Redis failed (%s); counting in this process's memory for %.0f s",
                exc,
                REDIS_RETRY_S,
            )
        self._redis_down_until = time.monotonic() + REDIS_RETRY_S

    def close(self) -> None:
        """Close the Redis connections (at app shutdown).

        limits has no close of its own: this reaches its bridge's coredis client, and does
        nothing should that move (tests/ratelimit would then see unclosed sockets).
        """
        client = getattr(getattr(self.redis, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    def limiter(self, strategy: Strategy) -> "Limiter":
        return Limiter(self, strategy)

    # Plain counters (the sign-in backoff): an expiring integer per key --------------------

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add `amount` to `key` (created to expire after `expiry` seconds); the new value."""
        if self.redis is not None and self.shared:
            try:
                return await self.redis.incr(key, int(expiry) + 1, amount)
            except StorageError as exc:
                self.redis_failed(exc)
        return self.memory.incr(key, expiry, amount)

    async def get(self, key: str) -> int:
        """The value of `key`, 0 when absent or expired."""
        if self.redis is not None and self.shared:
            try:
                return await self.redis.get(key)
            except StorageError as exc:
                self.redis_failed(exc)
        return self.memory.get(key)

    async def clear(self, key: str) -> None:
        if self.redis is not None and self.shared:
            try:
                await self.redis.clear(key)
                return
            except StorageError as exc:
                self.redis_failed(exc)
        self.memory.clear(key)


class Limiter:
    """One strategy of `limits` over the app's counters."""

    def __init__(self, counters: Counters, strategy: Strategy) -> None:
        self.counters = counters
        self.memory = _SYNC[strategy](counters.memory)
        self.redis = None if counters.redis is None else _ASYNC[strategy](counters.redis)

    async def hit(self, item: RateLimitItem, *key: str) -> Window:
        """Count one request against `item` for `key`; the window as it stands after."""
        if self.redis is not None and self.counters.shared:
            try:
                allowed = await self.redis.hit(item, *key)
                stats = await self.redis.get_window_stats(item, *key)
                return Window(allowed, item, stats.remaining, stats.reset_time)
            except StorageError as exc:
                self.counters.redis_failed(exc)
        allowed = self.memory.hit(item, *key)
        stats = self.memory.get_window_stats(item, *key)
        return Window(allowed, item, stats.remaining, stats.reset_time)

    async def allowed(self, item: RateLimitItem, *key: str) -> bool:
        """Count one request against `item` for `key`; whether it fits (no window stats)."""
        if self.redis is not None and self.counters.shared:
            try:
                return await self.redis.hit(item, *key)
            except StorageError as exc:
                self.counters.redis_failed(exc)
        return self.memory.hit(item, *key)

    async def window(self, item: RateLimitItem, *key: str) -> Window:
        """The window of `item` for `key` as it stands, without counting a request."""
        if self.redis is not None and self.counters.shared:
            try:
                stats = await self.redis.get_window_stats(item, *key)
                return Window(stats.remaining > 0, item, stats.remaining, stats.reset_time)
            except StorageError as exc:
                self.counters.redis_failed(exc)
        stats = self.memory.get_window_stats(item, *key)
        return Window(stats.remaining > 0, item, stats.remaining, stats.reset_time)
