"""Monitor: one service's check loop and the verdict it draws from each check.

It owns the service's breaker, its latency and value windows, its anomaly detector, its active
endpoint (primary or a backup after failover) and its verdict. It decides nothing about recovery: it
tells the engine what it saw through `MonitorPorts`, the few things a monitor may do to the rest of
the engine, and never holds the engine itself.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import random
import zlib
from collections import deque
from typing import Protocol

from core.anomaly import LatencyAnomalyDetector
from core.breaker import CircuitBreaker, CircuitOpen
from core.checks.base import Check, CheckResult, execute
from core.clock import Clock
from core.config import AnomalyConfig, ServiceConfig
from core.events import (BreakerEvent, BreakerState, Event, FailureType, ProbeEvent, RebootEvent,
                         ServiceStatus)
from core.logs import CHECK as log

_WINDOW = 120  # latencies kept for p50/p95 and sparklines

# Check wake-ups are coalesced onto a fleet-wide grid: each wake-up of the loop (and of the devices'
# side) costs about as much again as the check it runs when checks are sparse, so checks that fall in
# one grid step are started together. Measured in docs/benchmarks.md ("Coalesced wake-ups"): at 1,000
# devices x 20 s a 0.25 s grid halved plain aiohttp's CPU per check. The step is chosen for about
# COALESCE_BATCH checks per wake-up, never longer than MAX_WAKE_GRID_S (the engine's tick), and not at
# all below COALESCE_MIN_RATE checks/s, where there is little to merge and the CPU is negligible.
COALESCE_BATCH = 16
COALESCE_MIN_RATE = 20.0
MAX_WAKE_GRID_S = 0.25


def wake_grid_s(checks_per_second: float) -> float:
    """The grid check wake-ups are moved to, for a fleet asking this many checks a second."""
    if checks_per_second < COALESCE_MIN_RATE:
        return 0.0
    return min(MAX_WAKE_GRID_S, COALESCE_BATCH / checks_per_second)


def on_grid(now: float, delay: float, grid: float) -> float:
    """`delay`, moved to the nearest point of the grid (by at most half a step), never to now or before.

    The monitor takes the move back from its next interval, so intervals stay right on average."""
    if grid <= 0.0:
        return delay
    at = round((now + delay) / grid) * grid
    if at <= now:
        at = (math.floor(now / grid) + 1) * grid
    return at - now


class MonitorPorts(Protocol):
    """What a monitor may ask of the engine: the whole of its outward reach."""

    async def admit_check(self) -> None:
        """Wait for the fleet-wide check rate limit."""

    def publish(self, event: Event) -> Event:
        """Journal and broadcast an event."""

    def record_check(self, service: str, wall: float, result: CheckResult) -> None:
        """Count the check and keep its latency (and value) in the journal's history."""

    def primary_checked(self, service: str, healthy: bool) -> None:
        """A check told something about the primary endpoint (recovery verifies restarts with it)."""

    def service_failed(self, service: str, failure_type: FailureType) -> None:
        """The service just reached max_failures."""

    def failed_back(self, service: str, detail: str) -> None:
        """Checks moved back to the primary endpoint."""

    def breaker_changed(self, event: BreakerEvent) -> None:
        """The breaker moved (journaled; forced states persisted)."""

    def changed(self, service: str) -> None:
        """Something shown about the service changed: its snapshot must be rebuilt."""


class ServiceMonitor:
    """Checks one service on its interval, through its breaker.

    Attributes:
        cfg: the service's effective settings.
        breaker: the service's circuit breaker (guards checks of the active endpoint).
        check: the service's check (made from cfg.check by the engine's check factory).
        active_index: 0 for the primary endpoint, n for backup_endpoints[n-1].
    """

    def __init__(self, cfg: ServiceConfig, anomaly: AnomalyConfig, *, clock: Clock, ports: MonitorPorts,
                 check: Check, initial_breaker: BreakerState = BreakerState.CLOSED) -> None:
        self.cfg = cfg
        self.check = check
        self._clock = clock
        self._ports = ports
        self.breaker = CircuitBreaker(cfg.id, cfg.circuit_breaker, clock, listener=self._on_breaker_event,
                                      initial=initial_breaker)
        self.anomaly = LatencyAnomalyDetector(cfg.id, anomaly, clock)
        self.anomaly_enabled = anomaly.enabled
        self.status = ServiceStatus.UNKNOWN
        self.failed = False
        self.consecutive_failures = 0
        self.latencies: deque[float] = deque(maxlen=_WINDOW)
        self.sorted_latencies: list[float] = []  # the same, sorted: p50/p95 per snapshot without a sort
        self.values: deque[float] = deque(maxlen=_WINDOW)
        self.last_latency_ms: float | None = None
        self.last_check_wall: float | None = None
        self.last_ok_wall: float | None = None
        self.last_error: str | None = None
        self.last_value: float | str | bool | None = None
        self.last_detail: tuple[tuple[str, str], ...] = ()
        self.last_reboot_wall: float | None = None
        self.last_failure_type = FailureType.SERVICE_UNAVAILABLE
        self.active_index = 0
        self.primary_streak = 0
        self.paused = False
        self.checks_total = 0
        self.wake_grid_s = 0.0  # set by the engine for the whole fleet (wake_grid_s())
        self.task: asyncio.Task[None] | None = None
        # Seeded from the id, stably across runs (str hashes are salted per process): a device keeps its
        # place in the spread of first checks, and a test on a FakeClock replays the same way.
        self._rng = random.Random(zlib.crc32(cfg.id.encode()))

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"monitor:{self.cfg.id}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        clock = self._clock
        # Spread first checks over one interval so a fleet does not start in lockstep.
        first = self._rng.uniform(0, self.cfg.fault_detection.check_interval_seconds)
        wait = on_grid(clock.monotonic(), first, self.wake_grid_s)
        # How far the grid moved the last wake-up from this service's own schedule: taken back from
        # the next interval, so the grid never stretches or shrinks the interval on average.
        shift = wait - first
        await clock.sleep(wait)
        while True:
            started = clock.monotonic()
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one service's bug must not stop the others
                log.exception("%s: check crashed", self.cfg.id)
            fd = self.cfg.fault_detection
            jitter = fd.check_interval_seconds * fd.jitter_fraction * self._rng.uniform(-0.5, 0.5)
            now = clock.monotonic()
            delay = max(0.05, fd.check_interval_seconds + jitter - (now - started) - shift)
            wait = on_grid(now, delay, self.wake_grid_s)
            shift = wait - delay
            await clock.sleep(wait)

    async def _execute(self, endpoint: str) -> CheckResult:
        fd = self.cfg.fault_detection
        return await execute(self.check, endpoint, check_type=self.cfg.check_type,
                             timeout_s=fd.timeout_seconds, slow_ms=fd.slow_response_threshold_ms)

    async def check_once(self) -> None:
        if self.paused:
            return
        try:
            permit = self.breaker.acquire()
        except CircuitOpen:
            self._ports.changed(self.cfg.id)
            if self.active_index != 0:
                await self._probe_primary_for_failback()
            return
        await self._ports.admit_check()
        try:
            result = await self._execute(self.active_endpoint)
        except asyncio.CancelledError:
            self.breaker.release(permit)
            raise
        if result.status is ServiceStatus.UNKNOWN:
            # Nothing known yet (an MQTT topic before its first message, its broker away): neither a
            # success nor a failure; the check itself turns unhealthy once its data is too old.
            self.breaker.release(permit)
            self._unknown(result)
            return
        duration = result.latency_ms / 1000.0
        if result.ok:
            self.breaker.record_success(permit, duration_s=duration)
        else:
            self.breaker.record_failure(permit, duration_s=duration, reason=result.error or "check failed")
        self.apply(result)
        if self.active_index != 0:
            await self._probe_primary_for_failback()

    def _keep_latency(self, ms: float) -> None:
        window, ordered = self.latencies, self.sorted_latencies
        if len(window) == window.maxlen:
            del ordered[bisect.bisect_left(ordered, window[0])]
        window.append(ms)
        bisect.insort(ordered, ms)

    def _unknown(self, result: CheckResult) -> None:
        now_wall = self._clock.wall()
        self.checks_total += 1
        self.last_check_wall = now_wall
        self.last_detail, self.last_error = result.detail, result.error
        if self.status is not ServiceStatus.UNKNOWN:
            self.status = ServiceStatus.UNKNOWN
            self._ports.publish(ProbeEvent(
                service=self.cfg.id, mono=self._clock.monotonic(), wall=now_wall, status=self.status,
                latency_ms=None, error=result.error, consecutive_failures=self.consecutive_failures,
                endpoint=self.active_endpoint, check=result.check, value=None))
        self._ports.changed(self.cfg.id)

    async def probe(self, endpoint: str) -> CheckResult:
        """One check of another endpoint of this service (a backup, before failing over to it)."""
        return await self._execute(endpoint)

    # ------------------------------------------------------------------ verdicts

    def apply(self, result: CheckResult) -> None:
        """Fold one check result into the service's state and tell the engine what changed."""
        ports = self._ports
        sid = self.cfg.id
        now_wall = self._clock.wall()
        self.checks_total += 1
        self.last_check_wall = now_wall
        prev_status, prev_failed, prev_cf = self.status, self.failed, self.consecutive_failures
        fd = self.cfg.fault_detection
        self.last_value, self.last_detail = result.value, result.detail
        if isinstance(result.value, (int, float)) and not isinstance(result.value, bool):
            self.values.append(float(result.value))
        if result.ok:
            self.last_latency_ms = result.latency_ms
            self._keep_latency(round(result.latency_ms, 2))  # rounded once, not per snapshot
            self.last_ok_wall = now_wall
            self.consecutive_failures = 0
            self.failed = False
            self.status = result.status
            self.last_error = result.error
        else:
            self.last_latency_ms = None
            self.consecutive_failures += 1
            self.status = ServiceStatus.UNHEALTHY
            self.last_error = result.error
            self.last_failure_type = result.failure_type or FailureType.SERVICE_UNAVAILABLE
            self.failed = self.consecutive_failures >= fd.max_failures
        ports.record_check(sid, now_wall, result)
        if result.reboot:
            self.last_reboot_wall = now_wall
            ports.publish(RebootEvent(service=sid, mono=self._clock.monotonic(), wall=now_wall,
                                      reason=result.reboot, check=result.check))
        if result.ok and self.anomaly_enabled:
            anomaly = self.anomaly.observe(result.latency_ms)
            if anomaly is not None:
                ports.publish(anomaly)
        counting = not result.ok and self.consecutive_failures <= fd.max_failures
        if self.status != prev_status or self.failed != prev_failed or (counting and self.consecutive_failures != prev_cf):
            ports.publish(ProbeEvent(
                service=sid, mono=self._clock.monotonic(), wall=now_wall, status=self.status,
                latency_ms=round(result.latency_ms, 2), error=result.error,
                consecutive_failures=self.consecutive_failures, endpoint=self.active_endpoint,
                check=result.check, value=result.value))
        if self.active_index == 0:
            ports.primary_checked(sid, result.ok)
        if self.failed and not prev_failed:
            ports.service_failed(sid, self.last_failure_type)
        ports.changed(sid)

    async def _probe_primary_for_failback(self) -> None:
        """While on a backup, check the primary on the side; enough healthy checks fail back."""
        result = await self._execute(self.cfg.endpoint)
        self.primary_streak = self.primary_streak + 1 if result.ok else 0
        self._ports.primary_checked(self.cfg.id, result.ok)
        if self.primary_streak >= self.cfg.recovery.failback_after_checks:
            backup = self.active_endpoint
            self.switch_endpoint(0, f"primary healthy for {self.primary_streak} checks")
            self._ports.failed_back(self.cfg.id, f"back to primary {self.cfg.endpoint} from {backup}")

    def switch_endpoint(self, index: int, reason: str) -> None:
        """Move checks to another endpoint; its breaker history does not carry over."""
        self.active_index = index
        self.primary_streak = 0
        self.consecutive_failures = 0
        self.failed = False
        if not self.breaker.state.forced:
            self.breaker.reset(reason)
        self._ports.changed(self.cfg.id)

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            prev = self.status
            self.status = ServiceStatus.UNKNOWN
            if prev is not ServiceStatus.UNKNOWN:
                self._ports.publish(ProbeEvent(
                    service=self.cfg.id, mono=self._clock.monotonic(), wall=self._clock.wall(),
                    status=self.status, latency_ms=None, error="checks paused",
                    consecutive_failures=self.consecutive_failures, endpoint=self.active_endpoint,
                    check=self.cfg.check_type))
        self._ports.changed(self.cfg.id)

    def reconfigure(self, cfg: ServiceConfig, anomaly: AnomalyConfig, check: Check | None) -> None:
        """Apply a reloaded config; `check` is the new check when its settings changed, else None."""
        endpoints_changed = cfg.endpoints != self.cfg.endpoints or cfg.health_path != self.cfg.health_path
        self.cfg = cfg
        if check is not None:
            self.check = check
            self.values.clear()
        self.breaker.set_config(cfg.circuit_breaker)
        self.anomaly.set_config(anomaly)
        self.anomaly_enabled = anomaly.enabled
        if endpoints_changed:
            self.active_index = 0
            self.latencies.clear()
            self.sorted_latencies.clear()
            self.switch_endpoint(0, "endpoint changed by config reload")
        self._ports.changed(cfg.id)

    # ------------------------------------------------------------------ views

    def _on_breaker_event(self, event: BreakerEvent) -> None:
        self._ports.changed(self.cfg.id)
        self._ports.breaker_changed(event)

    @property
    def active_endpoint(self) -> str:
        return self.cfg.endpoints[min(self.active_index, len(self.cfg.endpoints) - 1)]
