"""A token bucket in front of every MTurk call, shared by all Celery workers through Redis when one is
configured (one bucket per account), else local to the process."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

# KEYS[1] bucket; ARGV: rate per second, burst, now (s). Returns seconds to wait (0: a token was taken).
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
return tostring(wait)
"""


class Bucket(Protocol):
    def acquire(self) -> float: ...


class LocalBucket:
    """Process-local: correct for one worker process, a fallback when no Redis is configured."""

    def __init__(self, *, rate: float, burst: int, clock: Any = time.monotonic, sleep: Any = time.sleep) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._tokens, self._at = float(self.burst), clock()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Take a token if one is there; else return how long until one is."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> float:
        waited = 0.0
        while (wait := self.try_take()) > 0:
            self._sleep(wait)
            waited += wait
        return waited


class RedisBucket:
    """One bucket for every process that shares ``key`` on the Redis server (atomic through a Lua script)."""

    def __init__(self, *, url: str, rate: float, burst: int, key: str = "crowdops:mturk:bucket") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_LUA)
        self.rate, self.burst, self.key = rate, max(1, burst), key

    def try_take(self) -> float:
        return float(self._script(keys=[self.key], args=[self.rate, self.burst, time.time()]))

    def acquire(self) -> float:
        waited = 0.0
        while (wait := self.try_take()) > 0:
            time.sleep(wait)
            waited += wait
        return waited


_buckets: dict[tuple[str, float, int], Bucket] = {}
_lock = threading.Lock()


def shared_bucket(*, redis_url: str, rate: float, burst: int) -> Bucket:
    """The bucket for these settings (one object per process, so its local state is shared too)."""
    key = (redis_url, rate, burst)
    with _lock:
        if key not in _buckets:
            _buckets[key] = (
                RedisBucket(url=redis_url, rate=rate, burst=burst) if redis_url else LocalBucket(rate=rate, burst=burst)
            )
        return _buckets[key]
