"""Circuit breaker rules, one test per rule, with a FakeClock (no sleeping)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from core.breaker import CircuitBreaker, CircuitOpen, Permit
from core.clock import FakeClock
from core.config import CircuitBreakerConfig
from core.events import BreakerEvent, BreakerState

S = BreakerState


def cfg(**kw: Any) -> CircuitBreakerConfig:
    base = dict(failure_threshold=5, success_threshold=3, timeout_seconds=60.0, half_open_max_calls=1)
    base.update(kw)
    return CircuitBreakerConfig(**base)


class Recorder:
    def __init__(self) -> None:
        self.events: list[BreakerEvent] = []

    def __call__(self, event: BreakerEvent) -> None:
        self.events.append(event)

    @property
    def edges(self) -> list[tuple[S, S]]:
        return [(e.from_state, e.to_state) for e in self.events]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make(clock: FakeClock, rec: Recorder | None = None, **kw: Any) -> CircuitBreaker:
    return CircuitBreaker("svc", cfg(**kw), clock, listener=rec)


def fail(b: CircuitBreaker, n: int, reason: str = "boom") -> None:
    for _ in range(n):
        b.record_failure(b.acquire(), reason=reason)


def succeed(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        b.record_success(b.acquire())


def open_breaker(b: CircuitBreaker) -> None:
    fail(b, b.config.failure_threshold)
    assert b.state is S.OPEN


def half_open(b: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(b)
    clock.advance_sync(b.config.timeout_seconds)
    b.poll()
    assert b.state is S.HALF_OPEN


# ---------------------------------------------------------------- closed

def test_starts_closed_and_admits(clock: FakeClock) -> None:
    b = make(clock)
    assert b.state is S.CLOSED
    permit = b.acquire()
    assert permit == Permit(generation=b.generation, trial=False)


def test_threshold_consecutive_failures_open(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    fail(b, 4)
    assert b.state is S.CLOSED
    assert b.consecutive_failures == 4
    fail(b, 1, reason="HTTP 503")
    assert b.state is S.OPEN
    assert rec.edges == [(S.CLOSED, S.OPEN)]
    assert rec.events[0].reason.startswith("5 consecutive failures")
    assert "HTTP 503" in rec.events[0].reason


def test_success_resets_consecutive_count(clock: FakeClock) -> None:
    b = make(clock)
    fail(b, 4)
    succeed(b, 1)
    assert b.consecutive_failures == 0
    fail(b, 4)
    assert b.state is S.CLOSED


def test_results_without_permit_count(clock: FakeClock) -> None:
    b = make(clock, failure_threshold=2)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is S.CLOSED
    b.record_failure()
    assert b.state is S.OPEN


# ---------------------------------------------------------------- open and the timeout

def test_open_rejects_with_retry_hint(clock: FakeClock) -> None:
    b = make(clock)
    open_breaker(b)
    clock.advance_sync(10)
    with pytest.raises(CircuitOpen) as info:
        b.acquire()
    err = info.value
    assert err.service == "svc"
    assert err.state is S.OPEN
    assert err.retry_after_s == pytest.approx(50.0)
    assert str(err).startswith("circuit for svc is open")
    assert "retry in 50.0 s" in str(err)


def test_timeout_expires_by_poll_without_calls(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    open_breaker(b)
    opened = clock.monotonic()
    assert b.next_transition_at() == pytest.approx(opened + 60)
    clock.advance_sync(59.9)
    b.poll()
    assert b.state is S.OPEN
    assert b.view().reopen_in_s == pytest.approx(0.1)
    clock.advance_sync(0.1)
    b.poll()  # nobody calls acquire: the timer alone moves it
    assert rec.edges[-1] == (S.OPEN, S.HALF_OPEN)
    assert rec.events[-1].reason == "open timeout 60s elapsed"
    assert rec.events[-1].mono == clock.monotonic()
    assert b.next_transition_at() is None
    assert b.view().reopen_in_s is None


def test_reading_state_never_moves_the_breaker(clock: FakeClock) -> None:
    # Reads that write were a bug: building a snapshot could journal and publish a transition.
    rec = Recorder()
    b = make(clock, rec)
    open_breaker(b)
    rec.events.clear()
    clock.advance_sync(60)
    assert b.state is S.OPEN and b.view().state is S.OPEN and rec.events == []
    b.poll()
    assert b.state is S.HALF_OPEN and rec.edges == [(S.OPEN, S.HALF_OPEN)]


def test_acquire_after_timeout_is_a_trial(clock: FakeClock) -> None:
    b = make(clock)
    open_breaker(b)
    clock.advance_sync(60)
    permit = b.acquire()
    assert permit.trial
    assert b.half_open_in_flight == 1


def test_results_while_open_change_nothing(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    open_breaker(b)
    b.record_success()
    b.record_failure()
    clock.advance_sync(59)
    assert b.state is S.OPEN
    assert len(rec.events) == 1
    clock.advance_sync(1)
    b.poll()
    assert b.state is S.HALF_OPEN  # the failure above did not restart the timeout


def test_initial_open_times_out_from_construction(clock: FakeClock) -> None:
    b = CircuitBreaker("svc", cfg(), clock, initial=S.OPEN)
    clock.advance_sync(60)
    b.poll()
    assert b.state is S.HALF_OPEN


# ---------------------------------------------------------------- half-open

def test_half_open_trial_budget(clock: FakeClock) -> None:
    b = make(clock, half_open_max_calls=2)
    half_open(b, clock)
    p1, p2 = b.acquire(), b.acquire()
    assert p1.trial and p2.trial
    with pytest.raises(CircuitOpen) as info:
        b.acquire()
    assert info.value.state is S.HALF_OPEN
    assert info.value.retry_after_s is None
    assert "2 of 2 trial calls in flight" in str(info.value)
    b.record_success(p1)
    assert b.half_open_in_flight == 1
    b.acquire()  # the freed slot is usable again
    assert b.half_open_in_flight == 2


def test_half_open_successes_close(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    half_open(b, clock)
    succeed(b, 2)
    assert b.state is S.HALF_OPEN
    assert b.half_open_successes == 2
    succeed(b, 1)
    assert b.state is S.CLOSED
    assert rec.edges[-1] == (S.HALF_OPEN, S.CLOSED)
    assert rec.events[-1].reason == "3 successes in half-open"
    assert b.consecutive_failures == 0


def test_half_open_failure_reopens_with_fresh_timeout(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    half_open(b, clock)
    succeed(b, 2)
    clock.advance_sync(30)
    b.record_failure(b.acquire(), reason="timeout")
    assert b.state is S.OPEN
    assert rec.edges[-1] == (S.HALF_OPEN, S.OPEN)
    assert rec.events[-1].reason == "failure in half-open: timeout"
    assert b.next_transition_at() == pytest.approx(clock.monotonic() + 60)
    clock.advance_sync(59.9)
    assert b.state is S.OPEN
    clock.advance_sync(0.1)
    b.poll()
    assert b.state is S.HALF_OPEN
    assert b.half_open_successes == 0  # the earlier successes do not carry over


# ---------------------------------------------------------------- stale permits

def test_stale_permit_from_closed_does_not_move_state(clock: FakeClock) -> None:
    b = make(clock)
    slow_call = b.acquire()
    open_breaker(b)
    clock.advance_sync(60)
    b.poll()
    assert b.state is S.HALF_OPEN
    for _ in range(5):
        b.record_success(slow_call)
    b.record_failure(slow_call)
    assert b.state is S.HALF_OPEN
    assert b.half_open_successes == 0


def test_stale_failure_does_not_reopen_closed(clock: FakeClock) -> None:
    b = make(clock, failure_threshold=1, success_threshold=1)
    old = b.acquire()
    b.record_failure(b.acquire())
    clock.advance_sync(60)
    b.record_success(b.acquire())
    assert b.state is S.CLOSED
    b.record_failure(old)
    assert b.state is S.CLOSED
    assert b.consecutive_failures == 0


def test_trial_slot_released_for_current_generation_only(clock: FakeClock) -> None:
    b = make(clock, half_open_max_calls=1)
    half_open(b, clock)
    trial = b.acquire()
    b.force_open()
    b.reset()
    open_breaker(b)
    clock.advance_sync(60)
    new_trial = b.acquire()
    b.record_success(trial)  # stale: must not free the new trial's slot nor count
    assert b.half_open_in_flight == 1
    assert b.half_open_successes == 0
    b.record_success(new_trial)
    assert b.half_open_in_flight == 0
    assert b.half_open_successes == 1


def test_release_frees_trial_without_counting(clock: FakeClock) -> None:
    b = make(clock)
    half_open(b, clock)
    p = b.acquire()
    b.release(p)
    assert b.half_open_in_flight == 0
    assert b.half_open_successes == 0
    assert b.state is S.HALF_OPEN


# ---------------------------------------------------------------- forced states and reset

def test_forced_open_rejects_everything_and_never_moves(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    b.force_open()
    assert rec.edges == [(S.CLOSED, S.FORCED_OPEN)]
    assert rec.events[0].reason == "forced by operator"
    with pytest.raises(CircuitOpen) as info:
        b.acquire()
    assert info.value.state is S.FORCED_OPEN
    assert info.value.retry_after_s is None
    assert "forced_open" in str(info.value)
    clock.advance_sync(10_000)
    for _ in range(10):
        b.record_success()
    b.poll()
    assert b.state is S.FORCED_OPEN
    assert len(rec.events) == 1


def test_forced_closed_admits_everything_and_never_moves(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec, failure_threshold=1)
    b.force_close("maintenance")
    for _ in range(20):
        b.record_failure(b.acquire())
    clock.advance_sync(1000)
    assert b.state is S.FORCED_CLOSED
    assert rec.edges == [(S.CLOSED, S.FORCED_CLOSED)]
    assert rec.events[0].reason == "maintenance"


def test_force_is_idempotent_and_forced_states_switch(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    b.force_open()
    b.force_open()
    b.force_close()
    b.force_open()
    assert rec.edges == [(S.CLOSED, S.FORCED_OPEN), (S.FORCED_OPEN, S.FORCED_CLOSED),
                         (S.FORCED_CLOSED, S.FORCED_OPEN)]


@pytest.mark.parametrize("setup", ["open", "half_open", "forced_open", "forced_closed"])
def test_reset_closes_and_clears_counters(clock: FakeClock, rec: Recorder, setup: str) -> None:
    b = make(clock, rec)
    if setup == "open":
        open_breaker(b)
    elif setup == "half_open":
        half_open(b, clock)
        b.record_success(b.acquire())
        b.acquire()
    elif setup == "forced_open":
        fail(b, 3)
        b.force_open()
    else:
        fail(b, 3)
        b.force_close()
    b.reset()
    assert b.state is S.CLOSED
    assert rec.events[-1].to_state is S.CLOSED
    assert rec.events[-1].reason == "reset by operator"
    assert (b.consecutive_failures, b.half_open_successes, b.half_open_in_flight) == (0, 0, 0)
    fail(b, 4)
    assert b.state is S.CLOSED  # the count really started over


def test_reset_when_closed_clears_count_without_event(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    fail(b, 4)
    b.reset()
    assert b.consecutive_failures == 0
    assert rec.events == []


# ---------------------------------------------------------------- live config

def test_set_config_keeps_state_and_applies_new_rules(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec)
    open_breaker(b)
    b.set_config(cfg(timeout_seconds=10.0, success_threshold=1))
    assert b.state is S.OPEN
    assert b.next_transition_at() == pytest.approx(clock.monotonic() + 10)
    clock.advance_sync(10)
    b.poll()
    assert b.state is S.HALF_OPEN
    succeed(b, 1)
    assert b.state is S.CLOSED
    b.set_config(cfg(failure_threshold=2))
    fail(b, 2)
    assert b.state is S.OPEN


def test_set_config_half_open_budget(clock: FakeClock) -> None:
    b = make(clock, half_open_max_calls=1)
    half_open(b, clock)
    b.acquire()
    b.set_config(cfg(half_open_max_calls=2))
    assert b.state is S.HALF_OPEN
    b.acquire()
    with pytest.raises(CircuitOpen):
        b.acquire()


def test_set_config_to_window_mode_from_closed(clock: FakeClock) -> None:
    b = make(clock)
    b.set_config(cfg(window="count", window_size=4, minimum_calls=4, failure_rate_threshold=50))
    b.record_success(b.acquire())
    b.record_success(b.acquire())
    fail(b, 2)
    assert b.state is S.OPEN


# ---------------------------------------------------------------- sliding windows

def test_count_window_failure_rate(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec, window="count", window_size=10, minimum_calls=10, failure_rate_threshold=50)
    # Alternating results never make 5 *consecutive* failures, but the rate is 50 %.
    for i in range(9):
        if i % 2:
            b.record_failure(b.acquire())
        else:
            b.record_success(b.acquire())
    assert b.state is S.CLOSED  # 9 calls < minimum_calls
    b.record_failure(b.acquire())
    assert b.state is S.OPEN
    assert rec.events[-1].reason == "failure rate 50% ≥ 50% over 10 calls"


def test_count_window_below_threshold_stays_closed(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=10, minimum_calls=10, failure_rate_threshold=50)
    for i in range(100):
        if i % 3 == 0:
            b.record_failure(b.acquire())
        else:
            b.record_success(b.acquire())
    assert b.state is S.CLOSED


def test_count_window_forgets_old_calls(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=4, minimum_calls=4, failure_rate_threshold=75)
    fail(b, 2)
    succeed(b, 4)  # pushes both failures out
    fail(b, 2)
    assert b.state is S.CLOSED  # 2 of the last 4 = 50 %
    fail(b, 1)
    assert b.state is S.OPEN  # 3 of the last 4


def test_minimum_calls_gate(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=20, minimum_calls=5, failure_rate_threshold=50)
    fail(b, 4)
    assert b.state is S.CLOSED
    fail(b, 1)
    assert b.state is S.OPEN


def test_zero_failure_threshold_does_not_open_healthy_breaker(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=5, minimum_calls=1, failure_rate_threshold=0,
             slow_call_rate_threshold=0)
    succeed(b, 10)
    assert b.state is S.CLOSED


def test_time_window_counts_only_recent_calls(clock: FakeClock) -> None:
    b = make(clock, window="time", window_size=10, minimum_calls=4, failure_rate_threshold=50)
    fail(b, 3)
    clock.advance_sync(10)  # those three are now outside the last 10 s
    b.record_success(b.acquire())
    b.record_failure(b.acquire())
    b.record_success(b.acquire())
    assert b.state is S.CLOSED  # only 3 calls in the window
    b.record_success(b.acquire())
    assert b.state is S.CLOSED  # 1 of 4
    clock.advance_sync(9.9)
    fail(b, 2)
    assert b.state is S.OPEN  # 3 of 6, the earlier four still inside


def test_slow_call_rate_opens(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec, window="count", window_size=10, minimum_calls=4,
             slow_call_rate_threshold=50, slow_call_duration_ms=200)
    b.record_success(b.acquire(), duration_s=0.5)
    b.record_success(b.acquire(), duration_s=0.2)  # not above the limit: not slow
    b.record_success(b.acquire(), duration_s=0.01)
    b.record_success(b.acquire())  # no duration: not slow
    assert b.state is S.CLOSED
    b.record_success(b.acquire(), duration_s=0.3)
    assert b.state is S.CLOSED  # 2 of 5
    b.record_success(b.acquire(), duration_s=0.3)
    assert b.state is S.OPEN  # 3 of 6
    assert rec.events[-1].reason.startswith("slow-call rate 50% ≥ 50% over 6 calls")


def test_slow_calls_ignored_in_consecutive_mode(clock: FakeClock) -> None:
    b = make(clock, slow_call_rate_threshold=1, slow_call_duration_ms=1)
    for _ in range(50):
        b.record_success(b.acquire(), duration_s=10)
    assert b.state is S.CLOSED


def test_window_starts_fresh_after_closing(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=10, minimum_calls=4, failure_rate_threshold=50,
             success_threshold=1)
    fail(b, 4)
    clock.advance_sync(60)
    succeed(b, 1)
    assert b.state is S.CLOSED
    fail(b, 3)
    assert b.state is S.CLOSED  # the 4 old failures are not in the new window


async def test_call_measures_duration_for_slow_rule(clock: FakeClock) -> None:
    b = make(clock, window="count", window_size=2, minimum_calls=2,
             slow_call_rate_threshold=100, slow_call_duration_ms=1000)

    async def slow_op() -> str:
        await clock.sleep(2)
        return "ok"

    for _ in range(2):
        task = asyncio.create_task(b.call(slow_op))
        await clock.advance(2)
        assert await task == "ok"
    assert b.state is S.OPEN


# ---------------------------------------------------------------- call()

async def test_call_success_and_failure(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec, failure_threshold=2)

    async def ok() -> int:
        return 42

    async def bad() -> int:
        raise ConnectionError("refused")

    assert await b.call(ok) == 42
    with pytest.raises(ConnectionError):
        await b.call(bad)
    assert b.consecutive_failures == 1
    with pytest.raises(ConnectionError):
        await b.call(bad)
    assert b.state is S.OPEN
    assert "ConnectionError: refused" in rec.events[-1].reason
    with pytest.raises(CircuitOpen):
        await b.call(ok)


async def test_call_cancelled_releases_trial_without_counting(clock: FakeClock) -> None:
    b = make(clock)
    half_open(b, clock)

    async def hang() -> None:
        await clock.sleep(1000)

    task = asyncio.create_task(b.call(hang))
    await asyncio.sleep(0)
    assert b.half_open_in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.half_open_in_flight == 0
    assert b.half_open_successes == 0
    assert b.state is S.HALF_OPEN


async def test_call_cancelled_in_closed_does_not_count(clock: FakeClock) -> None:
    b = make(clock, failure_threshold=1)

    async def hang() -> None:
        await clock.sleep(1000)

    task = asyncio.create_task(b.call(hang))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is S.CLOSED
    assert b.consecutive_failures == 0


async def test_call_result_after_transition_is_stale(clock: FakeClock) -> None:
    b = make(clock, failure_threshold=1)

    async def slow_ok() -> str:
        await clock.sleep(5)
        return "late"

    task = asyncio.create_task(b.call(slow_ok))
    await asyncio.sleep(0)
    b.record_failure()  # opens while the slow call is in flight
    assert b.state is S.OPEN
    await clock.advance(60)
    assert await task == "late"
    b.poll()
    assert b.state is S.HALF_OPEN
    assert b.half_open_successes == 0


# ---------------------------------------------------------------- events and listeners

def test_event_fields(clock: FakeClock, rec: Recorder) -> None:
    b = make(clock, rec, failure_threshold=1)
    clock.advance_sync(3)
    b.record_failure(reason="x")
    (event,) = rec.events
    assert event.service == "svc"
    assert event.mono == clock.monotonic()
    assert event.wall == clock.wall()
    assert event.to_record()["from"] == "closed"
    assert event.to_record()["to"] == "open"


def test_listener_exception_does_not_break_breaker(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[BreakerEvent] = []

    def broken(event: BreakerEvent) -> None:
        calls.append(event)
        raise RuntimeError("listener bug")

    b = CircuitBreaker("svc", cfg(failure_threshold=1, success_threshold=1), clock, listener=broken)
    with caplog.at_level(logging.ERROR, logger="core.breaker"):
        b.record_failure()
    assert b.state is S.OPEN
    clock.advance_sync(60)
    b.poll()
    assert b.state is S.HALF_OPEN
    b.record_success(b.acquire())
    assert b.state is S.CLOSED
    assert len(calls) == 3
    errors = [r for r in caplog.records if r.name == "core.breaker" and r.levelno == logging.ERROR]
    assert errors and "listener bug" in (errors[0].exc_text or "")


def test_listener_may_read_breaker(clock: FakeClock) -> None:
    seen: list[tuple[BreakerState, BreakerState]] = []
    b: CircuitBreaker

    def reader(event: BreakerEvent) -> None:
        seen.append((event.to_state, b.view().state))

    b = CircuitBreaker("svc", cfg(failure_threshold=1), clock, listener=reader)
    b.record_failure()
    assert seen == [(S.OPEN, S.OPEN)]


def test_view(clock: FakeClock) -> None:
    b = make(clock, half_open_max_calls=2)
    fail(b, 2)
    v = b.view()
    assert (v.state, v.consecutive_failures, v.failure_threshold, v.reopen_in_s) == (S.CLOSED, 2, 5, None)
    fail(b, 3)
    assert b.view().state is S.OPEN
    clock.advance_sync(15)
    assert b.view().reopen_in_s == pytest.approx(45)
    clock.advance_sync(45)
    b.acquire()
    v = b.view()
    assert (v.state, v.half_open_in_flight, v.half_open_max_calls, v.success_threshold) == (
        S.HALF_OPEN, 1, 2, 3)


def test_permit_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Permit(1, False).generation = 2  # type: ignore[misc]
