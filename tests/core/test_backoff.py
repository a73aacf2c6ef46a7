"""Backoff delays and the attempt tracker's reset-after-stable rule."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backoff import AttemptTracker, backoff_delay, delay_for
from core.clock import FakeClock
from core.config import RecoveryConfig


@pytest.mark.parametrize(("strategy", "expected"), [
    ("fixed", [2, 2, 2, 2, 2]),
    ("linear", [2, 4, 6, 8, 10]),
    ("exponential", [2, 4, 8, 16, 32]),
])
def test_strategies(strategy: str, expected: list[float]) -> None:
    assert [backoff_delay(strategy, a, 2.0, 1000.0) for a in range(1, 6)] == expected


@pytest.mark.parametrize("strategy", ["fixed", "linear", "exponential"])
def test_cap(strategy: str) -> None:
    assert backoff_delay(strategy, 50, 7.0, 5.0) == 5.0
    assert backoff_delay("exponential", 7, 1.0, 60.0) == 60.0  # 64 capped


@pytest.mark.parametrize("strategy", ["linear", "exponential"])
def test_huge_attempts_do_not_overflow(strategy: str) -> None:
    assert backoff_delay(strategy, 10**6, 1.0, 60.0) == 60.0
    assert backoff_delay(strategy, 10**400, 0.5, 60.0) == 60.0


def test_zero_base() -> None:
    assert backoff_delay("exponential", 2000, 0.0, 60.0) == 0.0


@pytest.mark.parametrize(("args", "message"), [
    (("quadratic", 1, 1.0, 10.0), "strategy"),
    (("fixed", 0, 1.0, 10.0), "1-based"),
    (("fixed", -3, 1.0, 10.0), "1-based"),
    (("fixed", 1, -1.0, 10.0), "negative"),
])
def test_invalid(args: tuple[str, int, float, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backoff_delay(*args)


def test_invalid_jitter() -> None:
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay("fixed", 1, 1.0, 10.0, jitter="half")


def test_full_jitter_bounds_and_spread() -> None:
    rng = random.Random(42)
    values = [backoff_delay("exponential", 4, 1.0, 60.0, "full", rng) for _ in range(2000)]
    assert all(0.0 <= v <= 8.0 for v in values)
    assert min(values) < 1.0 and max(values) > 7.0  # really spread over [0, d]


def test_equal_jitter_bounds_and_spread() -> None:
    rng = random.Random(7)
    values = [backoff_delay("linear", 3, 2.0, 60.0, "equal", rng) for _ in range(2000)]
    assert all(3.0 <= v <= 6.0 for v in values)
    assert min(values) < 3.3 and max(values) > 5.7


def test_jitter_respects_cap() -> None:
    rng = random.Random(1)
    assert all(backoff_delay("exponential", 30, 1.0, 10.0, j, rng) <= 10.0
               for j in ("full", "equal") for _ in range(500))


def test_seeded_jitter_is_reproducible() -> None:
    a = [backoff_delay("exponential", 3, 1.0, 60.0, "full", random.Random(5)) for _ in range(3)]
    assert len(set(a)) == 1


def test_delay_for_reads_recovery_config() -> None:
    config = RecoveryConfig(restart_backoff_strategy="linear", restart_base_delay_seconds=3.0,
                            restart_max_delay_seconds=10.0, restart_jitter="none")
    assert [delay_for(config, a) for a in (1, 2, 3, 4)] == [3.0, 6.0, 9.0, 10.0]
    jittered = RecoveryConfig(restart_jitter="equal")  # exponential 1..60 by default
    assert 4.0 <= delay_for(jittered, 4, random.Random(0)) <= 8.0


@settings(max_examples=200, deadline=None)
@given(strategy=st.sampled_from(["fixed", "linear", "exponential"]),
       base=st.floats(0, 1e6, allow_nan=False), cap=st.floats(0, 1e6, allow_nan=False),
       attempts=st.lists(st.integers(1, 5000), min_size=2, max_size=20))
def test_never_above_cap_and_non_decreasing(strategy: str, base: float, cap: float, attempts: list[int]) -> None:
    attempts.sort()
    delays = [backoff_delay(strategy, a, base, cap) for a in attempts]
    assert all(0.0 <= d <= cap for d in delays)
    assert all(x <= y for x, y in zip(delays, delays[1:]))


@settings(max_examples=200, deadline=None)
@given(strategy=st.sampled_from(["fixed", "linear", "exponential"]), jitter=st.sampled_from(["full", "equal"]),
       base=st.floats(0, 100, allow_nan=False), cap=st.floats(0, 100, allow_nan=False),
       attempt=st.integers(1, 2000), seed=st.integers(0, 2**32))
def test_jittered_within_zero_and_plain_delay(strategy: str, jitter: str, base: float, cap: float,
                                              attempt: int, seed: int) -> None:
    plain = backoff_delay(strategy, attempt, base, cap)
    d = backoff_delay(strategy, attempt, base, cap, jitter, random.Random(seed))
    low = 0.0 if jitter == "full" else plain / 2
    assert low <= d <= plain <= cap


# ---------------------------------------------------------------- AttemptTracker

def test_next_attempt_counts() -> None:
    t = AttemptTracker(FakeClock(), 600)
    assert [t.next_attempt() for _ in range(3)] == [1, 2, 3]
    assert t.attempts == 3


def test_resets_after_stable_period_not_before() -> None:
    clock = FakeClock()
    t = AttemptTracker(clock, 600)
    t.next_attempt()
    t.next_attempt()
    assert t.note_healthy() is None  # the stable period starts here
    clock.advance_sync(599.9)
    assert t.note_healthy() is None
    assert t.attempts == 2
    clock.advance_sync(0.1)
    assert t.note_healthy() == "backoff reset after 600 s healthy"
    assert t.attempts == 0
    assert t.last_reset_reason == "backoff reset after 600 s healthy"
    assert t.note_healthy() is None  # nothing left to reset
    assert t.next_attempt() == 1


def test_unhealthy_interrupts_stable_period() -> None:
    clock = FakeClock()
    t = AttemptTracker(clock, 600)
    t.next_attempt()
    t.note_healthy()
    clock.advance_sync(500)
    t.note_unhealthy()
    clock.advance_sync(200)
    assert t.note_healthy() is None  # 700 s since the first healthy, but only 0 s since the failure
    clock.advance_sync(599)
    assert t.note_healthy() is None
    assert t.attempts == 1
    clock.advance_sync(1)
    assert t.note_healthy() is not None
    assert t.attempts == 0


def test_new_attempt_interrupts_stable_period() -> None:
    clock = FakeClock()
    t = AttemptTracker(clock, 60)
    t.next_attempt()
    t.note_healthy()
    clock.advance_sync(50)
    t.next_attempt()
    clock.advance_sync(20)
    assert t.note_healthy() is None
    assert t.attempts == 2


def test_time_without_checks_is_not_proof_of_health() -> None:
    clock = FakeClock()
    t = AttemptTracker(clock, 60)
    t.next_attempt()
    clock.advance_sync(1000)  # no healthy check yet: the period has not started
    assert t.note_healthy() is None
    assert t.attempts == 1


def test_manual_reset() -> None:
    clock = FakeClock()
    t = AttemptTracker(clock, 60)
    t.next_attempt()
    t.note_healthy()
    t.reset("reset by operator")
    assert t.attempts == 0
    assert t.last_reset_reason == "reset by operator"
    t.next_attempt()
    clock.advance_sync(59)
    assert t.note_healthy() is None  # the reset also restarted the stable period


def test_zero_stable_period_resets_on_first_healthy() -> None:
    t = AttemptTracker(FakeClock(), 0)
    t.next_attempt()
    assert t.note_healthy() == "backoff reset after 0 s healthy"
