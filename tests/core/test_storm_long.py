"""Restart storms over hours of fake time: the storm guard, the backoff sequence, and reset.

The RecoveryManager is driven as the engine drives it (on_check for every check, on_failed when a
service reaches max_failures), by a fake monitor loop on a FakeClock and a fake restart runner: no
sockets, no sleeping, six hours in well under a second of real time. The device "reboots and fails
again at once": after each restart it answers healthy for exactly `verify_checks` checks (so the
restart verifies), then fails for good until the next restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.actions import ActionResult
from core.backoff import delay_for
from core.clock import FakeClock
from core.config import RecoveryConfig
from core.events import Event, FailureType, RecoveryEvent, RecoveryOutcome
from core.ratelimit import KeyedLimiter, per_minute
from core.backoff import AttemptTracker
from core.recovery import RecoveryManager, RecoverySlot, RecoveryTarget
from core.storm import StormGuard

INTERVAL = 5.0
MAX_FAILURES = 3
HOUR = 3600.0

CFG = RecoveryConfig(
    max_restart_attempts=3, restart_backoff_strategy="exponential", restart_base_delay_seconds=2.0,
    restart_max_delay_seconds=60.0, reset_after_stable_seconds=600.0, verify_checks=2,
    verify_timeout_seconds=60.0, storm_max_restarts=5, storm_period_seconds=600.0,
    group_storm_max_restarts=20)


@dataclass
class FakeDevice:
    sid: str
    group: str
    healthy_left: int = 0  # healthy answers left before it falls over again
    heals_every: float | None = None  # flaps back to healthy on its own this often (None: never)
    failures: int = 0
    failed: bool = False
    restarts: list[float] = field(default_factory=list)


class Harness:
    """A fake fleet, a fake monitor loop per device, and the real RecoveryManager."""

    def __init__(self, devices: list[FakeDevice], cfg: RecoveryConfig = CFG, *,
                 group_per_minute: float = 60.0) -> None:
        self.clock = FakeClock(start=0.0)
        self.cfg = cfg
        self.devices = {d.sid: d for d in devices}
        self.events: list[RecoveryEvent] = []
        self.storms: list[tuple[float, str, str]] = []
        self.storm_keys: list[str] = []
        self.restart_log: list[tuple[float, str, str]] = []  # (time, service, group)
        self._tasks: list[asyncio.Task[None]] = []
        per_service = KeyedLimiter(*per_minute(6.0), self.clock)
        self.slots = {sid: RecoverySlot(AttemptTracker(self.clock, self.cfg.reset_after_stable_seconds))
                      for sid in self.devices}
        self.rm = RecoveryManager(
            self.clock, self._emit, run_restart=self._restart, run_failover=self._failover,
            target=self._target, slot=self.slots.get, restart_wait=per_service.time_until,
            take_restart=per_service.try_acquire,
            group_limiter=KeyedLimiter(*per_minute(group_per_minute), self.clock), on_storm=self._storm)

    # ---- the RecoveryManager's collaborators

    def _emit(self, event: Event) -> None:
        assert isinstance(event, RecoveryEvent)
        self.events.append(event)

    def _target(self, sid: str) -> RecoveryTarget | None:
        d = self.devices.get(sid)
        if d is None:
            return None
        return RecoveryTarget(sid, d.group, self.cfg, can_restart=True, can_failover=False, on_primary=True)

    async def _restart(self, sid: str) -> ActionResult:
        d = self.devices[sid]
        now = self.clock.monotonic()
        d.restarts.append(now)
        self.restart_log.append((now, sid, d.group))
        d.healthy_left = self.cfg.verify_checks
        return ActionResult(True, "HTTP 200", 0.0)

    async def _failover(self, sid: str) -> str | None:  # pragma: no cover - no backups here
        raise AssertionError("no failover configured")

    def _storm(self, sid: str, key: str, reason: str) -> None:
        self.storms.append((self.clock.monotonic(), sid, reason))
        self.storm_keys.append(key)

    # ---- the fake monitor (what core.monitor does with a check result)

    async def _monitor(self, d: FakeDevice) -> None:
        last_heal = 0.0
        while True:
            await self.clock.sleep(INTERVAL)
            now = self.clock.monotonic()
            if d.heals_every is not None and now - last_heal >= d.heals_every:
                last_heal = now
                d.healthy_left = max(d.healthy_left, 1)
            healthy = d.healthy_left > 0
            if healthy:
                d.healthy_left -= 1
            self.rm.on_check(d.sid, healthy)
            if healthy:
                d.failures, d.failed = 0, False
                continue
            d.failures += 1
            if d.failures >= MAX_FAILURES and not d.failed:
                d.failed = True
                self._tasks.append(asyncio.ensure_future(self.rm.on_failed(d.sid, FailureType.SERVICE_UNAVAILABLE, False)))

    def start(self) -> None:
        self._tasks += [asyncio.ensure_future(self._monitor(d)) for d in self.devices.values()]

    def operator_reset(self, sid: str) -> bool:
        """What an operator's reset means: clear the guard and re-arm detection for the service."""
        d = self.devices[sid]
        cleared = self.rm.reset(sid, d.group)
        d.failures, d.failed = 0, False
        return cleared

    async def close(self) -> None:
        await self.rm.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- reading the record

    def started(self, sid: str | None = None) -> list[RecoveryEvent]:
        return [e for e in self.events if e.outcome is RecoveryOutcome.STARTED and e.strategy == "restart"
                and (sid is None or e.service == sid)]


def max_in_window(times: list[float], period: float) -> int:
    """The most restarts inside any window (t - period, t] (the storm guard's own window)."""
    times = sorted(times)
    best = 0
    lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - period:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_six_hours_of_a_device_that_fails_again_after_every_restart() -> None:
    dev = FakeDevice("plc-1", "line-1")
    h = Harness([dev])
    h.start()
    try:
        await h.clock.advance(3 * HOUR)
        # The guard tripped once, after exactly storm_max_restarts restarts inside one period.
        assert len(h.storms) == 1, h.storms
        trip_time, sid, reason = h.storms[0]
        assert sid == "plc-1" and reason == "more than 5 restarts in 600 s"
        assert len(dev.restarts) == CFG.storm_max_restarts
        assert max_in_window(dev.restarts, CFG.storm_period_seconds) <= CFG.storm_max_restarts
        # ...and automatic restarts stopped: nothing for the rest of the three hours.
        assert all(t < trip_time for t in dev.restarts)
        gave_up = [e for e in h.events if e.outcome is RecoveryOutcome.GAVE_UP]
        assert [e.detail for e in gave_up] == ["storm guard: more than 5 restarts in 600 s"]
        assert h.rm.storm.blocked("plc-1", "line-1") == reason
        # Backoff: attempts keep counting across the short-lived recoveries (the device never
        # stayed healthy for reset_after_stable_seconds), so delays follow 2, 4, 8, 16, 32 s.
        delays = [e.delay_s for e in h.started("plc-1")]
        assert delays == [delay_for(CFG, n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
        # Every restart verified (healthy checks), yet the storm guard counts restarts, not failures.
        assert sum(e.outcome is RecoveryOutcome.SUCCEEDED for e in h.events) == 5

        # The operator resets: restarts resume, from the first backoff step.
        assert h.operator_reset("plc-1") is True
        assert h.rm.storm.blocked("plc-1", "line-1") is None
        reset_at = h.clock.monotonic()
        await h.clock.advance(3 * HOUR)
        after = [t for t in dev.restarts if t > reset_at]
        assert len(after) == CFG.storm_max_restarts, "restarts must resume after a reset, until the next storm"
        assert [e.delay_s for e in h.started("plc-1")][5:] == [2.0, 4.0, 8.0, 16.0, 32.0]
        # A second storm is a second trip: one callback per trip, never a restart past the limit.
        assert [s[1] for s in h.storms] == ["plc-1", "plc-1"]
        assert max_in_window(dev.restarts, CFG.storm_period_seconds) <= CFG.storm_max_restarts
    finally:
        await h.close()


@pytest.mark.parametrize("strategy", ["fixed", "linear", "exponential"])
async def test_backoff_sequence_follows_the_strategy(strategy: str) -> None:
    # A storm limit high enough never to trip, and a long run: the delay of each automatic attempt
    # is delay_for(cfg, n), capped at restart_max_delay_seconds.
    cfg = dataclasses.replace(CFG, restart_backoff_strategy=strategy, restart_base_delay_seconds=3.0,
                              restart_max_delay_seconds=20.0, storm_max_restarts=10_000,
                              group_storm_max_restarts=10_000)
    dev = FakeDevice("plc-1", "line-1")
    h = Harness([dev], cfg)
    h.start()
    try:
        await h.clock.advance(2 * HOUR)
        delays = [e.delay_s for e in h.started()]
        assert len(delays) >= 20
        assert delays == [delay_for(cfg, n) for n in range(1, len(delays) + 1)]
        assert max(delays) == (3.0 if strategy == "fixed" else 20.0)
        assert h.storms == []
    finally:
        await h.close()


async def test_group_storm_guard_across_a_rack() -> None:
    # 30 devices of one rack fail together and fail again after each restart; their own limit (5)
    # is never reached, but the group's (20 per 600 s) is. A second rack is not held back.
    rack = [FakeDevice(f"r1-d{i:02d}", "rack-1") for i in range(30)]
    other = [FakeDevice(f"r2-d{i:02d}", "rack-2") for i in range(3)]
    h = Harness(rack + other)
    h.start()
    try:
        await h.clock.advance(2 * HOUR)
        rack_times = [t for t, _, g in h.restart_log if g == "rack-1"]
        assert len(rack_times) == CFG.group_storm_max_restarts
        assert max_in_window(rack_times, CFG.storm_period_seconds) <= CFG.group_storm_max_restarts
        group_trip = h.rm.storm.tripped.get(StormGuard.group_key("rack-1"))
        assert group_trip == "group rack-1: more than 20 restarts in 600 s"
        assert h.storms and h.storms[0][2] == group_trip
        # the trip is reported under the key that tripped, so the engine persists the group's trip
        assert h.storm_keys[0] == "group:rack-1"
        for d in rack:
            assert len(d.restarts) <= CFG.storm_max_restarts
        first_trip = h.storms[0][0]
        assert all(t <= first_trip for t in rack_times), "a restart in the tripped group"
        # The other rack's devices still restart (until their own per-service guard trips).
        for d in other:
            assert len(d.restarts) == CFG.storm_max_restarts
            assert h.rm.storm.tripped.get(d.sid) == "more than 5 restarts in 600 s"

        # Resetting one device of the rack clears the group trip, so the rack restarts again.
        before = len(rack_times)
        h.operator_reset("r1-d00")
        for d in rack[1:]:
            d.failures, d.failed = 0, False  # their monitors fail them again at the next checks
        await h.clock.advance(HOUR)
        rack_times = [t for t, _, g in h.restart_log if g == "rack-1"]
        assert len(rack_times) > before
        assert max_in_window(rack_times, CFG.storm_period_seconds) <= CFG.group_storm_max_restarts
    finally:
        await h.close()


async def test_on_storm_fires_once_while_a_flapping_device_stays_tripped() -> None:
    # The device also heals on its own every 2 minutes and falls over again (a flapping device), so
    # the monitor reports a new failure episode every 2 minutes, for hours after the trip.
    dev = FakeDevice("plc-1", "line-1", heals_every=120.0)
    h = Harness([dev])
    h.start()
    try:
        await h.clock.advance(3 * HOUR)
        assert len(dev.restarts) == CFG.storm_max_restarts
        assert len(h.storms) == 1, f"on_storm fired {len(h.storms)} times for one trip"
        assert sum(e.outcome is RecoveryOutcome.GAVE_UP for e in h.events) == 1
    finally:
        await h.close()


async def test_group_storm_cap_holds_when_the_rate_limiter_queues_restarts() -> None:
    # Same rack storm, but the group rate limit (5 a minute) is tighter than the storm guard's burst:
    # restarts queue behind the limiter. The guard must still allow at most 20 per 600 s.
    rack = [FakeDevice(f"r1-d{i:02d}", "rack-1") for i in range(30)]
    h = Harness(rack, group_per_minute=5.0)
    h.start()
    try:
        await h.clock.advance(HOUR)
        rack_times = [t for t, _, _ in h.restart_log]
        assert max_in_window(rack_times, CFG.storm_period_seconds) <= CFG.group_storm_max_restarts
    finally:
        await h.close()
