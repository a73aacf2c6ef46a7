"""Rate limiting: token buckets, alone or one per key (service, group).

A bucket holds up to `burst` tokens and refills at `rate` tokens per second of the injected clock's
monotonic time. `try_acquire()` never waits; `acquire()` waits its turn (first come, first served among
waiters) and then until enough tokens have accrued.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from core.clock import Clock

# Float refills (elapsed × rate) land a hair short of a whole token; without slack a waiter that
# slept exactly `time_until()` would wake, find 0.9999999 tokens, and sleep again for nanoseconds.
_EPSILON = 1e-9
# Waiters re-check at least this often, so a sleep computed under an old rate cannot stall them.
_MAX_NAP_S = 3600.0


def _check_rate(rate: float, burst: int) -> None:
    if not rate > 0 or math.isinf(rate):
        raise ValueError(f"rate must be a positive number of tokens per second, got {rate}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst}")


class TokenBucket:
    """A token bucket that starts full.

    Attributes:
        rate: tokens added per second.
        burst: capacity.
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        _check_rate(rate, burst)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock.monotonic()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._nap: asyncio.Task[None] | None = None

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if they are there now. Never waits; False also when n > burst."""
        if n < 0:
            raise ValueError(f"cannot take a negative number of tokens ({n})")
        self._refill()
        if self._tokens + _EPSILON >= n:
            self._tokens = max(0.0, self._tokens - n)
            return True
        return False

    def time_until(self, n: float = 1) -> float:
        """Seconds until `n` tokens are available (0 if now; infinity if n exceeds the burst)."""
        if n > self.burst:
            return math.inf
        self._refill()
        missing = n - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    async def acquire(self, n: float = 1) -> None:
        """Wait until `n` tokens can be taken, then take them. ValueError if n > burst."""
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst}")
        if not self._waiters and self.try_acquire(n):
            return
        me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(me)
        try:
            if self._waiters[0] is not me:
                await me  # the waiter ahead hands over when it leaves
            while not self.try_acquire(n):
                if n > self.burst:  # set_rate() shrank the bucket under us
                    raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst}")
                await self._sleep(min(self.time_until(n), _MAX_NAP_S))
        finally:
            was_head = self._waiters[0] is me
            self._waiters.remove(me)
            if was_head and self._waiters and not self._waiters[0].done():
                self._waiters[0].set_result(None)

    async def _sleep(self, seconds: float) -> None:
        # A separate task so set_rate() can cut the nap short without cancelling the waiter itself.
        nap = asyncio.ensure_future(self._clock.sleep(seconds))
        self._nap = nap
        try:
            await asyncio.wait((nap,))
        finally:
            if not nap.done():
                nap.cancel()
            if self._nap is nap:
                self._nap = None

    def set_rate(self, rate: float, burst: int) -> None:
        """Change rate and capacity; tokens accrued so far are kept (up to the new burst)."""
        _check_rate(rate, burst)
        self._refill()
        self.rate = rate
        self.burst = burst
        self._tokens = min(self._tokens, float(burst))
        if self._nap is not None and not self._nap.done():
            self._nap.cancel()  # the head waiter recomputes its wait under the new rate


class KeyedLimiter:
    """One `TokenBucket` per key, created on first use, all with the same rate and burst."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        _check_rate(rate, burst)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        return found

    def try_acquire(self, key: str, n: float = 1) -> bool:
        return self.bucket(key).try_acquire(n)

    def time_until(self, key: str, n: float = 1) -> float:
        return self.bucket(key).time_until(n)

    async def acquire(self, key: str, n: float = 1) -> None:
        await self.bucket(key).acquire(n)

    def set_rate(self, rate: float, burst: int) -> None:
        """Change every bucket, existing and future."""
        _check_rate(rate, burst)
        self.rate = rate
        self.burst = burst
        for bucket in self._buckets.values():
            bucket.set_rate(rate, burst)

    def forget(self, key: str) -> None:
        """Drop a key's bucket (service removed); it comes back full if used again."""
        self._buckets.pop(key, None)


def per_minute(per_minute: float) -> tuple[float, int]:
    """(rate, burst) for "N per minute": N/60 tokens a second, a burst of ⌈N⌉ (at least 1)."""
    return per_minute / 60.0, max(1, math.ceil(per_minute))


__all__ = ["KeyedLimiter", "TokenBucket", "per_minute"]
