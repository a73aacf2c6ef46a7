"""Token buckets: burst, refill rate, waiting, and per-key buckets, on a FakeClock."""

from __future__ import annotations

import asyncio
import math

import pytest

from core.clock import FakeClock
from core.ratelimit import KeyedLimiter, TokenBucket, per_minute


def test_burst_then_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [b.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance_sync(0.4)
    assert not b.try_acquire()
    clock.advance_sync(0.1)
    assert b.try_acquire()
    assert not b.try_acquire()


def test_refill_caps_at_burst() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=10.0, burst=2, clock=clock)
    b.try_acquire(2)
    clock.advance_sync(3600)
    assert b.try_acquire(2)
    assert not b.try_acquire()


def test_time_until() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert b.time_until(2) == 0.0
    b.try_acquire(2)
    assert b.time_until() == pytest.approx(2.0)
    assert b.time_until(2) == pytest.approx(4.0)
    clock.advance_sync(1.5)
    assert b.time_until() == pytest.approx(0.5)
    assert b.time_until(3) == math.inf


def test_fractional_tokens() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1.0, burst=1, clock=clock)
    assert b.try_acquire(0.5)
    assert b.try_acquire(0.5)
    assert not b.try_acquire(0.5)


def test_invalid_arguments() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, clock=clock)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0, clock=clock)
    b = TokenBucket(rate=1, burst=2, clock=clock)
    assert not b.try_acquire(3)


async def test_acquire_more_than_burst_raises() -> None:
    b = TokenBucket(rate=1, burst=2, clock=FakeClock())
    with pytest.raises(ValueError):
        await b.acquire(3)


async def test_acquire_immediate_when_tokens_present() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1.0, burst=1, clock=clock)
    await b.acquire()
    assert clock.monotonic() == 1000.0


async def test_acquire_wakes_at_the_right_fake_time() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=0.1, burst=1, clock=clock)  # one token every 10 s
    await b.acquire()
    task = asyncio.create_task(b.acquire())
    await clock.advance(9.9)
    assert not task.done()
    await clock.advance(0.1)
    assert task.done()
    await task


async def test_waiters_are_served_in_order_at_the_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1.0, burst=1, clock=clock)
    b.try_acquire()
    woke: list[tuple[int, float]] = []

    async def waiter(i: int) -> None:
        await b.acquire()
        woke.append((i, clock.monotonic()))

    tasks = [asyncio.create_task(waiter(i)) for i in range(4)]
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert [i for i, _ in woke] == [0, 1, 2, 3]
    assert [t - 1000.0 for _, t in woke] == pytest.approx([1.0, 2.0, 3.0, 4.0])


async def test_cancelled_waiter_hands_over() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1.0, burst=1, clock=clock)
    b.try_acquire()
    first = asyncio.create_task(b.acquire())
    second = asyncio.create_task(b.acquire())
    await clock.advance(0.5)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await clock.advance(0.5)
    assert second.done()
    await second


async def test_set_rate_wakes_waiter_early() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1 / 60, burst=1, clock=clock)
    b.try_acquire()
    task = asyncio.create_task(b.acquire())
    await clock.advance(1)
    assert not task.done()
    b.set_rate(1.0, 1)  # 1/60 token accrued; the rest now takes 59/60 s, not 59 s
    await clock.advance(0.9)
    assert not task.done()
    await clock.advance(0.1)
    assert task.done()
    await task


async def test_set_rate_shrinks_burst() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1.0, burst=5, clock=clock)
    b.set_rate(1.0, 2)
    assert b.try_acquire(2)
    assert not b.try_acquire()


def test_keyed_limiter_separates_keys() -> None:
    clock = FakeClock()
    k = KeyedLimiter(rate=1.0, burst=1, clock=clock)
    assert k.try_acquire("a")
    assert not k.try_acquire("a")
    assert k.try_acquire("b")
    assert k.time_until("a") == pytest.approx(1.0)
    assert k.time_until("c") == 0.0
    clock.advance_sync(1.0)
    assert k.try_acquire("a")


async def test_keyed_limiter_acquire_and_set_rate() -> None:
    clock = FakeClock()
    k = KeyedLimiter(rate=1.0, burst=1, clock=clock)
    await k.acquire("a")
    k.set_rate(0.5, 1)
    assert k.time_until("a") == pytest.approx(2.0)
    assert k.bucket("new").rate == 0.5


def test_per_minute_helper() -> None:
    clock = FakeClock()
    rate, burst = per_minute(6)
    assert (rate, burst) == (0.1, 6)
    assert per_minute(0.5) == (0.5 / 60, 1)
    b = TokenBucket(rate, burst, clock)
    assert sum(b.try_acquire() for _ in range(10)) == 6
    clock.advance_sync(10)
    assert b.try_acquire()
    assert not b.try_acquire()
