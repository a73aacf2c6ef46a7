"""Wall-clock steps (an NTP correction of ±1 h) never trip a breaker or disturb backoff.

Each timing rule is driven twice through the same scenario on a FakeClock: once with a steady wall
clock, once with the wall clock stepped an hour forward and back at awkward moments (while a
breaker is open, during a backoff wait, in the middle of a stable period). Everything measured on
monotonic time — transitions, restart times, delays, resets, retries — must come out identical;
only the wall timestamps people read may differ, and they must, or the steps did not happen.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core.actions import ActionResult
from core.backoff import AttemptTracker, delay_for
from core.breaker import CircuitBreaker, CircuitOpen
from core.clock import FakeClock
from core.config import CircuitBreakerConfig, HeartbeatConfig, JournalConfig, RecoveryConfig
from core.events import (
    BreakerEvent,
    BreakerState,
    Event,
    FailureType,
    ProbeEvent,
    RecoveryEvent,
    RecoveryOutcome,
    ServiceStatus,
)
from core.heartbeat import HeartbeatMonitor
from core.journal import Journal
from core.journal_guard import LOCKED, RetrySchedule
from core.ratelimit import KeyedLimiter, TokenBucket, per_minute
from core.recovery import RecoveryManager, RecoverySlot, RecoveryTarget

HOUR = 3600.0

# (monotonic second, wall step): forward and back, twice, plus a lone step that is never undone.
STEPS: dict[int, float] = {7: +HOUR, 31: -HOUR, 62: -HOUR, 63: +HOUR, 95: +HOUR, 140: -HOUR, 333: +HOUR}


def test_fake_clock_steps_wall_time_alone() -> None:
    clock = FakeClock(start=10.0, start_wall=1_000_000.0)
    clock.step_wall(+HOUR)
    assert (clock.monotonic(), clock.wall()) == (10.0, 1_000_000.0 + HOUR)
    clock.step_wall(-2 * HOUR)
    assert (clock.monotonic(), clock.wall()) == (10.0, 1_000_000.0 - HOUR)
    clock.advance_sync(5.0)
    assert (clock.monotonic(), clock.wall()) == (15.0, 1_000_005.0 - HOUR)


# ---------------------------------------------------------------- circuit breaker

def breaker_run(window: str, steps: dict[int, float]) -> tuple[list[tuple[float, BreakerState, BreakerState]],
                                                                  list[float]]:
    """600 s of one call a second: failing for 0–99 s and 300–349 s, healthy otherwise.

    Returns the transitions (monotonic time, from, to) and the wall times the events carried.
    """
    clock = FakeClock(start=0.0)
    events: list[BreakerEvent] = []
    config = CircuitBreakerConfig(failure_threshold=5, success_threshold=3, timeout_seconds=60.0,
                                  window=window, window_size=20, minimum_calls=10)  # type: ignore[arg-type]
    breaker = CircuitBreaker("api", config, clock, events.append)
    for second in range(600):
        if second in steps:
            clock.step_wall(steps[second])
        breaker.poll()
        failing = second < 100 or 300 <= second < 350
        try:
            permit = breaker.acquire()
        except CircuitOpen:
            pass
        else:
            if failing:
                breaker.record_failure(permit, 0.01, "refused")
            else:
                breaker.record_success(permit, 0.01)
        clock.advance_sync(1.0)
    return [(e.mono, e.from_state, e.to_state) for e in events], [e.wall for e in events]


@pytest.mark.parametrize("window", ["consecutive", "count", "time"])
def test_breaker_ignores_wall_steps(window: str) -> None:
    steady, steady_walls = breaker_run(window, {})
    stepped, stepped_walls = breaker_run(window, STEPS)
    assert stepped == steady
    # The scenario does exercise the timeout: opened, then half-open exactly 60 s later, and back.
    opens = [t for t, _, to in steady if to is BreakerState.OPEN]
    half = [t for t, _, to in steady if to is BreakerState.HALF_OPEN]
    assert opens and half and half[0] == opens[0] + 60.0
    assert any(to is BreakerState.CLOSED for _, _, to in steady)
    # …and the steps happened: the timestamps people read moved with the wall clock.
    assert stepped_walls != steady_walls


def test_breaker_open_for_an_hour_of_wall_time_stays_open() -> None:
    """An hour forward while open is not an hour open: the trial waits for 60 s of monotonic time."""
    clock = FakeClock(start=0.0)
    breaker = CircuitBreaker("api", CircuitBreakerConfig(failure_threshold=1, timeout_seconds=60.0), clock)
    breaker.record_failure(breaker.acquire(), None, "refused")
    assert breaker.state is BreakerState.OPEN
    clock.step_wall(+HOUR)
    breaker.poll()  # what the engine's tick does
    assert breaker.state is BreakerState.OPEN
    assert breaker.view().reopen_in_s == 60.0 and breaker.next_transition_at() == 60.0
    clock.advance_sync(30.0)
    clock.step_wall(-HOUR)
    breaker.poll()
    assert breaker.state is BreakerState.OPEN and breaker.view().reopen_in_s == 30.0
    clock.advance_sync(30.0)
    breaker.poll()
    assert breaker.state is BreakerState.HALF_OPEN


# ---------------------------------------------------------------- backoff and recovery

def test_attempt_tracker_stable_period_ignores_wall_steps() -> None:
    clock = FakeClock(start=0.0)
    tracker = AttemptTracker(clock, reset_after_stable_s=600.0)
    tracker.next_attempt()
    tracker.next_attempt()
    assert tracker.note_healthy() is None
    clock.step_wall(+HOUR)  # an hour "passes" on the wall clock: not a stable hour
    assert tracker.note_healthy() is None and tracker.attempts == 2
    clock.advance_sync(599.0)
    clock.step_wall(-HOUR)
    assert tracker.note_healthy() is None and tracker.attempts == 2
    clock.advance_sync(1.0)
    assert tracker.note_healthy() == "backoff reset after 600 s healthy"
    assert tracker.attempts == 0


RECOVERY = RecoveryConfig(max_restart_attempts=4, restart_backoff_strategy="exponential",
                          restart_base_delay_seconds=2.0, restart_max_delay_seconds=60.0,
                          reset_after_stable_seconds=120.0, verify_checks=2, verify_timeout_seconds=20.0,
                          storm_max_restarts=100, storm_period_seconds=600.0, group_storm_max_restarts=100)


async def recovery_run(steps: dict[int, float]) -> tuple[list[tuple[Any, ...]], list[float], list[float]]:
    """A device that fails, is restarted with backoff until the manager gives up, then heals.

    Returns the recovery events (on monotonic time), the restart times, and the events' wall times.
    """
    clock = FakeClock(start=0.0)
    events: list[RecoveryEvent] = []
    restarts: list[float] = []
    target = RecoveryTarget("pump", "plant", RECOVERY, can_restart=True, can_failover=False, on_primary=True)

    async def restart(service: str) -> ActionResult:
        restarts.append(clock.monotonic())
        return ActionResult(True, "HTTP 200", 0.0)

    async def failover(service: str) -> str | None:  # pragma: no cover - none configured
        raise AssertionError("no failover")

    def emit(event: Event) -> None:
        assert isinstance(event, RecoveryEvent)
        events.append(event)

    per_service = KeyedLimiter(*per_minute(600.0), clock)
    slot = RecoverySlot(AttemptTracker(clock, RECOVERY.reset_after_stable_seconds))
    manager = RecoveryManager(
        clock, emit, run_restart=restart, run_failover=failover, target=lambda s: target,
        slot=lambda s: slot, restart_wait=per_service.time_until, take_restart=per_service.try_acquire,
        group_limiter=KeyedLimiter(*per_minute(600.0), clock), on_storm=lambda s, k, r: None)

    views: list[tuple[float, tuple[str, int, str] | None]] = []

    async def monitor() -> None:
        failures = 0
        for second in range(1, 400):
            await clock.sleep(1.0)
            healthy = second >= 250  # fails until 250 s (restarts never help), then heals
            manager.on_check("pump", healthy)
            # What the console shows, on monotonic time; the recovery is forgotten (view None)
            # when its attempt count resets after `reset_after_stable_seconds` healthy.
            view = slot.view()
            shown = None if view is None else (view.state, view.attempt, view.detail)
            if not views or views[-1][1] != shown:
                views.append((clock.monotonic(), shown))
            failures = 0 if healthy else failures + 1
            if failures == 3:
                asyncio.ensure_future(manager.on_failed("pump", FailureType.SERVICE_UNAVAILABLE, False))

    async def stepper() -> None:
        now = 0
        for at, delta in sorted(steps.items()):
            await clock.sleep(at - now)
            now = at
            clock.step_wall(delta)

    resets: list[tuple[float, str]] = []

    class ResetLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "backoff reset" in record.getMessage():
                resets.append((clock.monotonic(), record.getMessage()))

    handler = ResetLog()
    logger = logging.getLogger("core.recovery")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        tasks = [asyncio.ensure_future(monitor()), asyncio.ensure_future(stepper())]
        await clock.advance(400.0)
        await asyncio.gather(*tasks)
        await manager.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    trace: list[tuple[Any, ...]] = [(e.mono, e.outcome, e.attempt, e.delay_s) for e in events]
    return trace + [("shown", *v) for v in views] + [("reset", *r) for r in resets], restarts, \
        [e.wall for e in events]


async def test_restart_backoff_ignores_wall_steps() -> None:
    steady, steady_restarts, steady_walls = await recovery_run({})
    stepped, stepped_restarts, stepped_walls = await recovery_run(STEPS)
    assert stepped == steady and stepped_restarts == steady_restarts
    assert stepped_walls != steady_walls
    # The scenario does exercise backoff: 4 restarts, each after the configured exponential delay
    # counted from the previous verification's failure, then gave up; the count reset after healing.
    recovery = [e for e in steady if e[0] not in ("shown", "reset")]
    started = [(t, delay) for t, outcome, _, delay in recovery if outcome is RecoveryOutcome.STARTED]
    assert [delay for _, delay in started] == [delay_for(RECOVERY, n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert [t for t, _ in started] == steady_restarts
    assert any(outcome is RecoveryOutcome.GAVE_UP for _, outcome, _, _ in recovery)
    # Healthy from 250 s: the attempt count resets after exactly 120 s of stable checks.
    assert [e for e in steady if e[0] == "reset"] == [
        ("reset", 250.0 + RECOVERY.reset_after_stable_seconds, "pump: backoff reset after 120 s healthy")]


# ---------------------------------------------------------------- other clocks of the engine

def test_rate_limits_and_heartbeats_ignore_wall_steps() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(1.0, 2, clock)
    assert bucket.try_acquire(2)
    clock.step_wall(+HOUR)  # an hour of "refill" that never happened
    assert not bucket.try_acquire()
    assert bucket.time_until() == 1.0
    clock.step_wall(-HOUR)
    assert bucket.time_until() == 1.0

    heartbeats = HeartbeatMonitor(clock, HeartbeatConfig())
    heartbeats.configure("sensor", 30.0)
    heartbeats.beat("sensor")
    clock.step_wall(+HOUR)
    assert [e.status for e in heartbeats.poll()] == []
    assert heartbeats.status("sensor") != "missed"


def test_journal_retry_schedule_ignores_wall_steps(tmp_path: Path) -> None:
    """A degraded journal retries on monotonic time: a step forward does not hasten the retry,
    a step back does not postpone it."""
    clock = FakeClock(start=0.0)
    db = tmp_path / "faultwatch.db"
    journal = Journal.open(db, JournalConfig(), clock, recover=True)
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        first = journal.append(_probe(clock))
        assert journal.health().condition == LOCKED and first.seq == 1
        blocker.execute("COMMIT")
        clock.step_wall(+HOUR)
        journal.flush()
        assert not journal.health().ok  # first retry is 1 s of monotonic time away
        clock.step_wall(-2 * HOUR)
        clock.advance_sync(1.0)
        journal.flush()
        assert journal.health().ok
        assert [e.seq for e in journal.events()] == [1]
    finally:
        blocker.close()
        journal.close()

    schedule = RetrySchedule(base_s=1.0, max_s=30.0)
    assert [schedule.failed(0.0) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert not schedule.due(29.9) and schedule.due(30.0)


def _probe(clock: FakeClock) -> ProbeEvent:
    return ProbeEvent(service="api", mono=clock.monotonic(), wall=clock.wall(), status=ServiceStatus.UNHEALTHY,
                      latency_ms=None, error="refused", consecutive_failures=3)
